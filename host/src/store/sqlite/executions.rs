//! Execution records. (SQLite)

use super::SqliteStore;
use crate::store::*;
use rusqlite::{OptionalExtension, params, params_from_iter};

const COLUMNS: &str = "id, project, package, version, started_at, duration_us, status, \
                       http_status, user_name, secrets, stdout, stdout_truncated, stderr, \
                       stderr_truncated, method, path, credentials, sealed_for, outbound";

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ExecutionRow> {
    let secrets: String = r.get(9)?;
    Ok(ExecutionRow {
        id: r.get(0)?,
        project: r.get(1)?,
        package: r.get(2)?,
        version: r.get(3)?,
        started_at: r.get(4)?,
        duration_us: r.get(5)?,
        status: r.get(6)?,
        http_status: r.get(7)?,
        user: r.get(8)?,
        secrets: serde_json::from_str(&secrets).unwrap_or_default(),
        stdout: r.get(10)?,
        stdout_truncated: r.get(11)?,
        stderr: r.get(12)?,
        stderr_truncated: r.get(13)?,
        method: r.get(14)?,
        path: r.get(15)?,
        credentials: serde_json::from_str(&r.get::<_, String>(16)?).unwrap_or_default(),
        sealed_for: r.get(17)?,
        outbound: serde_json::from_str(&r.get::<_, String>(18)?).unwrap_or_default(),
    })
}

#[async_trait::async_trait]
impl ExecutionStore for SqliteStore {
    /// Inserts a batch of records in one transaction.
    async fn insert_executions(&self, rows: Vec<ExecutionRow>) -> Result<(), StoreError> {
        self.call(move |c| {
            let tx = c.transaction()?;
            {
                let mut insert = tx.prepare_cached(&format!(
                    "INSERT OR REPLACE INTO executions ({COLUMNS}) VALUES \
                     (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19)"
                ))?;
                for e in &rows {
                    insert.execute(params![
                        e.id,
                        e.project,
                        e.package,
                        e.version,
                        e.started_at,
                        e.duration_us,
                        e.status,
                        e.http_status,
                        e.user,
                        serde_json::to_string(&e.secrets).unwrap_or_else(|_| "[]".into()),
                        e.stdout,
                        e.stdout_truncated,
                        e.stderr,
                        e.stderr_truncated,
                        e.method,
                        e.path,
                        serde_json::to_string(&e.credentials).unwrap_or_else(|_| "{}".into()),
                        e.sealed_for,
                        serde_json::to_string(&e.outbound).unwrap_or_else(|_| "[]".into())
                    ])?;
                }
            }
            tx.commit()?;
            Ok(())
        })
        .await
    }

    /// Trims each of `packages` (project, package) to its newest `keep` records, each of
    /// `projects` to its newest records whose output fits in `project_bytes`, and drops every
    /// record older than `max_age_ms`; returns how many were dropped.
    async fn prune_executions(
        &self,
        packages: Vec<(String, String)>,
        keep: u32,
        max_age_ms: i64,
        projects: Vec<String>,
        project_bytes: u64,
    ) -> Result<usize, StoreError> {
        self.call(move |c| {
            let tx = c.transaction()?;
            let mut dropped = 0;
            {
                let mut trim = tx.prepare_cached(
                    "DELETE FROM executions WHERE rowid IN (SELECT rowid FROM executions \
                     WHERE project = ?1 AND package = ?2 ORDER BY started_at DESC, id DESC \
                     LIMIT -1 OFFSET ?3)",
                )?;
                for (project, package) in &packages {
                    dropped += trim.execute(params![project, package, keep])?;
                }
                let mut quota = tx.prepare_cached(
                    "DELETE FROM executions WHERE rowid IN (SELECT rowid FROM (\
                       SELECT rowid, SUM(length(stdout) + length(stderr)) \
                         OVER (ORDER BY started_at DESC, id DESC) AS kept \
                       FROM executions WHERE project = ?1) WHERE kept > ?2)",
                )?;
                let limit = i64::try_from(project_bytes).unwrap_or(i64::MAX);
                for project in &projects {
                    dropped += quota.execute(params![project, limit])?;
                }
                dropped += tx.execute(
                    "DELETE FROM executions WHERE started_at < ?1",
                    [super::now_ms().saturating_sub(max_age_ms)],
                )?;
            }
            tx.commit()?;
            Ok(dropped)
        })
        .await
    }

    /// Executions matching `filter`, newest first, with their (masked, possibly sealed) output.
    async fn list_executions(
        &self,
        filter: ExecutionFilter,
    ) -> Result<Vec<ExecutionRow>, StoreError> {
        self.call(move |c| {
            let mut sql = format!("SELECT {COLUMNS} FROM executions WHERE TRUE");
            let mut args: Vec<rusqlite::types::Value> = Vec::new();
            for (column, value) in [
                ("project", filter.project),
                ("sealed_for", filter.sealed_for),
                ("id", filter.id),
            ] {
                if let Some(value) = value {
                    sql.push_str(&format!(" AND {column} = ?"));
                    args.push(value.into());
                }
            }
            if let Some(p) = filter.package {
                sql.push_str(" AND package = ?");
                args.push(p.into());
            }
            if let Some(s) = filter.status {
                sql.push_str(" AND status = ?");
                args.push(s.into());
            }
            if let Some(after) = filter.after {
                sql.push_str(" AND started_at > ?");
                args.push(after.into());
            }
            if let Some((at, id)) = filter.before {
                sql.push_str(" AND (started_at < ? OR (started_at = ? AND id < ?))");
                args.extend([at.into(), at.into(), id.into()]);
            }
            sql.push_str(" ORDER BY started_at DESC, id DESC LIMIT ?");
            args.push(i64::from(filter.limit).into());
            let mut st = c.prepare(&sql)?;
            let rows = st.query_map(params_from_iter(args), row)?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }

    /// One execution of `project`, with its output.
    async fn execution(
        &self,
        project: String,
        id: String,
    ) -> Result<Option<ExecutionRow>, StoreError> {
        self.call(move |c| {
            Ok(c.query_row(
                &format!("SELECT {COLUMNS} FROM executions WHERE project = ?1 AND id = ?2"),
                params![project, id],
                row,
            )
            .optional()?)
        })
        .await
    }
}
