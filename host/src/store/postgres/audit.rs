//! The audit log (PostgreSQL).

use super::{Filters, PgStore};
use crate::store::*;

#[async_trait::async_trait]
impl AuditStore for PgStore {
    async fn append_audit(&self, row: AuditRow) -> Result<(), StoreError> {
        self.client()
            .await?
            .execute(
                "INSERT INTO audit (at, actor, token_id, action, target, project, scope, remote, \
                 status, outcome, detail) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
                &[
                    &row.at,
                    &row.actor,
                    &row.token_id,
                    &row.action,
                    &row.target,
                    &row.project,
                    &row.scope,
                    &row.remote,
                    &i32::from(row.status),
                    &row.outcome,
                    &row.detail,
                ],
            )
            .await?;
        Ok(())
    }

    async fn prune_audit(&self, before: i64) -> Result<usize, StoreError> {
        let n = self
            .client()
            .await?
            .execute("DELETE FROM audit WHERE at < $1", &[&before])
            .await?;
        Ok(usize::try_from(n).unwrap_or(usize::MAX))
    }

    async fn query_audit(&self, filter: AuditFilter) -> Result<Vec<AuditRow>, StoreError> {
        let mut filters = Filters::default();
        filters
            .and(" AND at >= $", filter.since)
            .and(" AND at < $", filter.until)
            .and(" AND actor = $", filter.actor)
            .and(" AND project = $", filter.project)
            .and(" AND action = $", filter.action)
            .and(" AND outcome = $", filter.outcome)
            .and(" AND id < $", filter.before)
            .and(" ORDER BY id DESC LIMIT $", Some(i64::from(filter.limit)));
        Ok(self
            .client()
            .await?
            .query(
                &format!(
                    "SELECT id, at, actor, token_id, action, target, project, scope, remote, \
                     status, outcome, detail FROM audit WHERE TRUE{}",
                    filters.sql
                ),
                &filters.params(),
            )
            .await?
            .iter()
            .map(|r| AuditRow {
                id: r.get(0),
                at: r.get(1),
                actor: r.get(2),
                token_id: r.get(3),
                action: r.get(4),
                target: r.get(5),
                project: r.get(6),
                scope: r.get(7),
                remote: r.get(8),
                status: u16::try_from(r.get::<_, i32>(9)).unwrap_or(0),
                outcome: r.get(10),
                detail: r.get(11),
            })
            .collect())
    }
}
