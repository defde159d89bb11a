//! Execution records (PostgreSQL).

use super::{Filters, PgStore};
use crate::store::*;
use tokio_postgres::Row;

const COLUMNS: &str = "id, project, package, version, started_at, duration_us, status, \
                       http_status, user_name, secrets, stdout, stdout_truncated, stderr, \
                       stderr_truncated, method, path, credentials, sealed_for, outbound";

fn row(r: &Row) -> ExecutionRow {
    let secrets: String = r.get(9);
    let http_status: Option<i32> = r.get(7);
    ExecutionRow {
        id: r.get(0),
        project: r.get(1),
        package: r.get(2),
        version: r.get(3),
        started_at: r.get(4),
        duration_us: r.get(5),
        status: r.get(6),
        http_status: http_status.and_then(|s| u16::try_from(s).ok()),
        user: r.get(8),
        secrets: serde_json::from_str(&secrets).unwrap_or_default(),
        stdout: r.get(10),
        stdout_truncated: r.get(11),
        stderr: r.get(12),
        stderr_truncated: r.get(13),
        method: r.get(14),
        path: r.get(15),
        credentials: serde_json::from_str(r.get::<_, &str>(16)).unwrap_or_default(),
        sealed_for: r.get(17),
        outbound: serde_json::from_str(r.get::<_, &str>(18)).unwrap_or_default(),
    }
}

#[async_trait::async_trait]
impl ExecutionStore for PgStore {
    async fn insert_executions(&self, rows: Vec<ExecutionRow>) -> Result<(), StoreError> {
        // One statement per batch (columns as arrays): a round trip per record would make a
        // busy host's record writer fall behind.
        let mut ids = Vec::with_capacity(rows.len());
        let (mut projects, mut packages, mut versions) = (Vec::new(), Vec::new(), Vec::new());
        let (mut started, mut durations, mut statuses) = (Vec::new(), Vec::new(), Vec::new());
        let (mut http, mut users, mut secrets) = (Vec::new(), Vec::new(), Vec::new());
        let (mut stdout, mut stdout_cut) = (Vec::new(), Vec::new());
        let (mut stderr, mut stderr_cut) = (Vec::new(), Vec::new());
        let (mut methods, mut paths) = (Vec::new(), Vec::new());
        let (mut credentials, mut sealed_for) = (Vec::new(), Vec::new());
        let mut outbound = Vec::new();
        for e in rows {
            sealed_for.push(e.sealed_for);
            outbound.push(serde_json::to_string(&e.outbound).unwrap_or_else(|_| "[]".into()));
            credentials.push(serde_json::to_string(&e.credentials).unwrap_or_else(|_| "{}".into()));
            methods.push(e.method);
            paths.push(e.path);
            ids.push(e.id);
            projects.push(e.project);
            packages.push(e.package);
            versions.push(e.version);
            started.push(e.started_at);
            durations.push(e.duration_us);
            statuses.push(e.status);
            http.push(e.http_status.map(i32::from));
            users.push(e.user);
            secrets.push(serde_json::to_string(&e.secrets).unwrap_or_else(|_| "[]".into()));
            stdout.push(e.stdout);
            stdout_cut.push(e.stdout_truncated);
            stderr.push(e.stderr);
            stderr_cut.push(e.stderr_truncated);
        }
        self.client()
            .await?
            .execute(
                &format!(
                    "INSERT INTO executions ({COLUMNS}) SELECT * FROM UNNEST(\
                     $1::TEXT[], $2::TEXT[], $3::TEXT[], $4::BIGINT[], $5::BIGINT[], \
                     $6::BIGINT[], $7::TEXT[], $8::INTEGER[], $9::TEXT[], $10::TEXT[], \
                     $11::BYTEA[], $12::BOOLEAN[], $13::BYTEA[], $14::BOOLEAN[], $15::TEXT[], $16::TEXT[], \
                     $17::TEXT[], $18::TEXT[], $19::TEXT[]) \
                     ON CONFLICT (id) DO NOTHING"
                ),
                &[
                    &ids,
                    &projects,
                    &packages,
                    &versions,
                    &started,
                    &durations,
                    &statuses,
                    &http,
                    &users,
                    &secrets,
                    &stdout,
                    &stdout_cut,
                    &stderr,
                    &stderr_cut,
                    &methods,
                    &paths,
                    &credentials,
                    &sealed_for,
                    &outbound,
                ],
            )
            .await?;
        Ok(())
    }

    async fn prune_executions(
        &self,
        packages: Vec<(String, String)>,
        keep: u32,
        max_age_ms: i64,
        projects: Vec<String>,
        project_bytes: u64,
    ) -> Result<usize, StoreError> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        let mut dropped = 0u64;
        let keep = i64::from(keep);
        for (project, package) in &packages {
            dropped += tx
                .execute(
                    "DELETE FROM executions WHERE id IN (SELECT id FROM executions \
                     WHERE project = $1 AND package = $2 ORDER BY started_at DESC, id DESC \
                     OFFSET $3)",
                    &[project, package, &keep],
                )
                .await?;
        }
        let limit = i64::try_from(project_bytes).unwrap_or(i64::MAX);
        for project in &projects {
            dropped += tx
                .execute(
                    "DELETE FROM executions WHERE id IN (SELECT id FROM (\
                       SELECT id, SUM(length(stdout) + length(stderr)) \
                         OVER (ORDER BY started_at DESC, id DESC) AS kept \
                       FROM executions WHERE project = $1) s WHERE kept > $2)",
                    &[project, &limit],
                )
                .await?;
        }
        dropped += tx
            .execute(
                "DELETE FROM executions WHERE started_at < $1",
                &[&now_ms().saturating_sub(max_age_ms)],
            )
            .await?;
        tx.commit().await?;
        Ok(usize::try_from(dropped).unwrap_or(usize::MAX))
    }

    async fn list_executions(
        &self,
        filter: ExecutionFilter,
    ) -> Result<Vec<ExecutionRow>, StoreError> {
        let mut filters = Filters::default();
        filters
            .and(" AND project = $", filter.project)
            .and(" AND sealed_for = $", filter.sealed_for)
            .and(" AND id = $", filter.id)
            .and(" AND package = $", filter.package)
            .and(" AND status = $", filter.status)
            .and(" AND started_at > $", filter.after)
            .before(filter.before)
            .and(
                " ORDER BY started_at DESC, id DESC LIMIT $",
                Some(i64::from(filter.limit)),
            );
        Ok(self
            .client()
            .await?
            .query(
                &format!("SELECT {COLUMNS} FROM executions WHERE TRUE{}", filters.sql),
                &filters.params(),
            )
            .await?
            .iter()
            .map(row)
            .collect())
    }

    async fn execution(
        &self,
        project: String,
        id: String,
    ) -> Result<Option<ExecutionRow>, StoreError> {
        Ok(self
            .client()
            .await?
            .query_opt(
                &format!("SELECT {COLUMNS} FROM executions WHERE project = $1 AND id = $2"),
                &[&project, &id],
            )
            .await?
            .map(|r| row(&r)))
    }
}
