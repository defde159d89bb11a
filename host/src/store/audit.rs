//! The audit log: append-only records of who did what, never a value or a token.

use super::StoreError;

/// One audit record.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AuditRow {
    /// Its sequence number.
    pub id: i64,
    /// When, Unix milliseconds.
    pub at: i64,
    /// Who (a user name, or `anonymous`).
    pub actor: String,
    /// With which token (its public id).
    pub token_id: Option<String>,
    /// What: method and route pattern, e.g. `POST /v1/projects/{project}/packages/{package}/versions`.
    pub action: String,
    /// On what: the concrete path.
    pub target: String,
    /// The project concerned, if any.
    pub project: Option<String>,
    /// The secret scope concerned, if any.
    pub scope: Option<String>,
    /// From where (remote address).
    pub remote: Option<String>,
    /// The HTTP status answered.
    pub status: u16,
    /// `ok`, `denied`, `unauthenticated`, `rejected` or `error`.
    pub outcome: String,
    /// What else the record needs (the id of a token created, a count of records not kept).
    pub detail: Option<String>,
}

/// Which records to return.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// At or after, Unix milliseconds.
    pub since: Option<i64>,
    /// Before, Unix milliseconds.
    pub until: Option<i64>,
    /// By this actor.
    pub actor: Option<String>,
    /// About this project.
    pub project: Option<String>,
    /// This action (method and route pattern).
    pub action: Option<String>,
    /// This outcome (`ok`, `denied`, …).
    pub outcome: Option<String>,
    /// Records older than this one (its id: a page's cursor).
    pub before: Option<i64>,
    /// At most this many, newest first.
    pub limit: u32,
}

/// The audit log.
#[async_trait::async_trait]
pub trait AuditStore: Send + Sync {
    /// Appends a record.
    async fn append_audit(&self, row: AuditRow) -> Result<(), StoreError>;

    /// Deletes records older than `before` (Unix milliseconds); how many.
    async fn prune_audit(&self, before: i64) -> Result<usize, StoreError>;

    /// Records matching `filter`, newest first.
    async fn query_audit(&self, filter: AuditFilter) -> Result<Vec<AuditRow>, StoreError>;
}
