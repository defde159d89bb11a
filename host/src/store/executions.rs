//! Execution records: one row per request, with masked and capped output.

use super::StoreError;

/// One execution, as stored.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ExecutionRow {
    /// Its id (`x-edgeward-execution-id`).
    pub id: String,
    /// Its project.
    pub project: String,
    /// Its package.
    pub package: String,
    /// The package version that ran.
    pub version: i64,
    /// Start, Unix milliseconds.
    pub started_at: i64,
    /// Duration, microseconds.
    pub duration_us: i64,
    /// `ok`, `guest_error`, `trapped`, `timed_out`, `out_of_memory` or `limited`.
    pub status: String,
    /// The HTTP status answered, if one was.
    pub http_status: Option<u16>,
    /// The request's method.
    pub method: String,
    /// The request's path under the package, without the query (which may carry
    /// credentials), masked like the output.
    pub path: String,
    /// The user whose token triggered it, if any.
    pub user: Option<String>,
    /// The secrets it resolved, as `scope:name`.
    pub secrets: Vec<String>,
    /// The credentials the host attached to its outbound requests, and the requests refused
    /// for a placeholder where it may not go.
    pub credentials: CredentialLog,
    /// Its stdout, masked and capped.
    pub stdout: Vec<u8>,
    /// Whether stdout was cut at the cap.
    pub stdout_truncated: bool,
    /// Its stderr, masked and capped.
    pub stderr: Vec<u8>,
    /// Whether stderr was cut at the cap.
    pub stderr_truncated: bool,
    /// The user this execution's output is sealed for: it opened their user scope, so its
    /// stdout and stderr are stored sealed under their data key and only they read them.
    pub sealed_for: Option<String>,
    /// Where its outbound requests went (or were refused going), by host.
    pub outbound: Vec<OutboundHost>,
}

/// The outbound requests of one execution to one host.
#[derive(
    Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
pub struct OutboundHost {
    /// The host (and port, where not the scheme's).
    pub host: String,
    /// Requests sent.
    pub sent: u32,
    /// Requests refused (not allowed, or over the execution's limit).
    pub refused: u32,
}

/// Which executions to list.
#[derive(Debug, Clone, Default)]
pub struct ExecutionFilter {
    /// Only this project.
    pub project: Option<String>,
    /// Only the executions sealed for this user.
    pub sealed_for: Option<String>,
    /// Only this execution.
    pub id: Option<String>,
    /// Only this package.
    pub package: Option<String>,
    /// Only this status.
    pub status: Option<String>,
    /// Started after this, Unix milliseconds.
    pub after: Option<i64>,
    /// Older than this record, in the list's order: its start time and id (a page's cursor).
    pub before: Option<(i64, String)>,
    /// At most this many, newest first.
    pub limit: u32,
}

/// Execution records.
#[async_trait::async_trait]
pub trait ExecutionStore: Send + Sync {
    /// Inserts a batch of records in one transaction.
    async fn insert_executions(&self, rows: Vec<ExecutionRow>) -> Result<(), StoreError>;

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
    ) -> Result<usize, StoreError>;

    /// Executions matching `filter`, newest first, with their (masked, possibly sealed) output.
    async fn list_executions(
        &self,
        filter: ExecutionFilter,
    ) -> Result<Vec<ExecutionRow>, StoreError>;

    /// One execution of `project`, with its output.
    async fn execution(
        &self,
        project: String,
        id: String,
    ) -> Result<Option<ExecutionRow>, StoreError>;
}

/// One credential sent: which, from which scope, to which host, how many times.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct CredentialUse {
    /// The secret.
    pub secret: String,
    /// The scope it was found in.
    pub scope: String,
    /// The host it went to (`host` or `host:port`).
    pub host: String,
    /// How many requests carried it.
    pub count: u32,
}

/// A request refused because it carried a placeholder where it may not go, or a response
/// refused because it could carry a value redaction cannot see (a partial response, a coding
/// it cannot undo), or every request of an execution whose credentials could not be resolved.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct CredentialRefusal {
    /// The credential whose placeholder it was, or the one that could not be resolved; `*`
    /// for a response refused for every credential of the package.
    pub secret: String,
    /// The host the request went to.
    pub host: String,
    /// What was refused.
    #[serde(default)]
    pub kind: RefusalKind,
    /// Where the placeholder was, and why that is refused.
    pub reason: String,
}

/// What a [`CredentialRefusal`] refused.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    serde::Serialize,
    serde::Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum RefusalKind {
    /// A request holding a placeholder where it may not go.
    #[default]
    Placeholder,
    /// A response redaction could not read whole (partial, or in a coding it cannot undo).
    Response,
    /// A request of an execution whose credentials could not all be resolved.
    Unresolved,
}

/// What an execution did with its credentials, for its record.
#[derive(
    Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
pub struct CredentialLog {
    /// Credentials sent.
    #[serde(default)]
    pub used: Vec<CredentialUse>,
    /// Requests refused.
    #[serde(default)]
    pub refused: Vec<CredentialRefusal>,
}

impl CredentialLog {
    /// Whether nothing happened.
    pub fn is_empty(&self) -> bool {
        self.used.is_empty() && self.refused.is_empty()
    }
}
