//! The audit log. (SQLite)

use super::SqliteStore;
use crate::store::*;
use rusqlite::params_from_iter;

#[async_trait::async_trait]
impl AuditStore for SqliteStore {
    /// Appends a record.
    async fn append_audit(&self, row: AuditRow) -> Result<(), StoreError> {
        self.call(move |c| {
            c.execute(
                "INSERT INTO audit (at, actor, token_id, action, target, project, scope, remote, \
                 status, outcome, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                rusqlite::params![
                    row.at,
                    row.actor,
                    row.token_id,
                    row.action,
                    row.target,
                    row.project,
                    row.scope,
                    row.remote,
                    row.status,
                    row.outcome,
                    row.detail
                ],
            )?;
            Ok(())
        })
        .await
    }

    /// Deletes records older than `before` (Unix milliseconds); how many.
    async fn prune_audit(&self, before: i64) -> Result<usize, StoreError> {
        self.call(move |c| Ok(c.execute("DELETE FROM audit WHERE at < ?1", [before])?))
            .await
    }

    /// Records matching `filter`, newest first.
    async fn query_audit(&self, filter: AuditFilter) -> Result<Vec<AuditRow>, StoreError> {
        self.call(move |c| {
            let mut sql = String::from(
                "SELECT id, at, actor, token_id, action, target, project, scope, remote, status, \
                 outcome, detail FROM audit WHERE 1 = 1",
            );
            let mut args: Vec<rusqlite::types::Value> = Vec::new();
            if let Some(since) = filter.since {
                sql.push_str(" AND at >= ?");
                args.push(since.into());
            }
            if let Some(until) = filter.until {
                sql.push_str(" AND at < ?");
                args.push(until.into());
            }
            if let Some(actor) = filter.actor {
                sql.push_str(" AND actor = ?");
                args.push(actor.into());
            }
            for (column, value) in [
                ("project", filter.project),
                ("action", filter.action),
                ("outcome", filter.outcome),
            ] {
                if let Some(value) = value {
                    sql.push_str(&format!(" AND {column} = ?"));
                    args.push(value.into());
                }
            }
            if let Some(before) = filter.before {
                sql.push_str(" AND id < ?");
                args.push(before.into());
            }
            sql.push_str(" ORDER BY id DESC LIMIT ?");
            args.push(i64::from(filter.limit).into());
            let mut st = c.prepare(&sql)?;
            let rows = st.query_map(params_from_iter(args), |r| {
                Ok(AuditRow {
                    id: r.get(0)?,
                    at: r.get(1)?,
                    actor: r.get(2)?,
                    token_id: r.get(3)?,
                    action: r.get(4)?,
                    target: r.get(5)?,
                    project: r.get(6)?,
                    scope: r.get(7)?,
                    remote: r.get(8)?,
                    status: r.get(9)?,
                    outcome: r.get(10)?,
                    detail: r.get(11)?,
                })
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }
}
