//! Execution records over the API: project viewers and up see the records; output (stdout,
//! stderr and their sizes) only project developers and up, since output is the guest's and
//! may carry what masking cannot know of.

use super::model::{self, ExecutionsQuery};
use super::policy::Caller;
use super::{ApiError, rfc3339};
use crate::app::App;
use crate::names::Name;
use crate::store::{ExecutionFilter, ExecutionRow};
use axum::extract::{Path, Query, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::{Extension, Json};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// Whether `caller` may read execution output in `project`: developers and up.
async fn sees_output(app: &App, caller: &Caller, project: &Name) -> Result<bool, ApiError> {
    if caller.principal.platform_admin {
        return Ok(true);
    }
    let role = app
        .store
        .role_of(project.to_string(), caller.principal.user.clone())
        .await?;
    Ok(role >= Some(crate::store::Role::Developer))
}

fn summary(e: &ExecutionRow, output: bool) -> model::Execution {
    // A sealed record's sizes are its plaintext's; the ciphertext tells no more than that.
    let size = |bytes: &[u8]| match e.sealed_for {
        Some(_) => crate::secrets::userkey::sealed_len(bytes) as u64,
        None => bytes.len() as u64,
    };
    model::Execution {
        id: e.id.clone(),
        package: e.package.clone(),
        version: e.version,
        started_at: rfc3339(e.started_at),
        started_at_ms: e.started_at,
        duration_ms: e.duration_us as f64 / 1000.0,
        status: crate::runtime::ExecutionStatus::parse(&e.status)
            .unwrap_or(crate::runtime::ExecutionStatus::GuestError),
        http_status: e.http_status,
        method: e.method.clone(),
        path: e.path.clone(),
        user: e.user.clone(),
        secrets: e.secrets.clone(),
        credentials: (!e.credentials.is_empty()).then(|| e.credentials.clone()),
        stdout_bytes: output.then(|| size(&e.stdout)),
        stderr_bytes: output.then(|| size(&e.stderr)),
        stdout: None,
        stdout_truncated: None,
        stderr: None,
        stderr_truncated: None,
        output: None,
        sealed_for: e.sealed_for.clone(),
        outbound: e.outbound.clone(),
    }
}

/// The store's filter for a query of `project`'s executions.
fn filter(
    project: &Name,
    q: &ExecutionsQuery,
    default_limit: u32,
) -> Result<ExecutionFilter, ApiError> {
    if let Some(p) = &q.package {
        Name::parse("package", p)?;
    }
    Ok(ExecutionFilter {
        project: Some(project.to_string()),
        package: q.package.clone(),
        status: q.status.map(|s| s.as_str().to_string()),
        after: q.after,
        limit: q.limit.unwrap_or(default_limit).clamp(1, 1000),
        ..Default::default()
    })
}

pub(super) async fn list(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    Path(project): Path<String>,
    query: Result<Query<ExecutionsQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<model::ExecutionList>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::bad_entry(e.to_string()))?;
    let project = super::project_name(&app, &project).await?;
    let mut filter = filter(&project, &q, 50)?;
    filter.before = cursor(&app, &filter, q.before.as_deref()).await?;
    let limit = filter.limit as usize;
    let rows = app.store.list_executions(filter).await?;
    let output = sees_output(&app, &caller, &project).await?;
    let executions: Vec<_> = rows.iter().map(|r| summary(r, output)).collect();
    Ok(Json(model::ExecutionList {
        project: project.to_string(),
        next_before: next_before(&executions, limit),
        executions,
    }))
}

/// The position of the record a page starts after (`before`), found among the records the
/// same query may see (so a cursor cannot reach into another project or user's records).
async fn cursor(
    app: &App,
    scope: &ExecutionFilter,
    before: Option<&str>,
) -> Result<Option<(i64, String)>, ApiError> {
    let Some(id) = before else {
        return Ok(None);
    };
    let row = app
        .store
        .list_executions(ExecutionFilter {
            project: scope.project.clone(),
            sealed_for: scope.sealed_for.clone(),
            id: Some(id.to_string()),
            limit: 1,
            ..Default::default()
        })
        .await?
        .pop()
        .ok_or_else(|| {
            ApiError::bad_entry(format!(
                "`before`: no execution {id:?} here to page from (retention may have dropped \
                 it; start again from the newest)"
            ))
        })?;
    Ok(Some((row.started_at, row.id)))
}

/// The cursor of the next (older) page: the last record's id, when the page is full.
fn next_before(page: &[model::Execution], limit: usize) -> Option<String> {
    (page.len() >= limit)
        .then(|| page.last().map(|e| e.id.clone()))
        .flatten()
}

/// How often the stream asks the store for new records. Records come from every host of a
/// cluster, so the store (not this host's record writer) is what is followed.
const STREAM_POLL: Duration = Duration::from_millis(250);
/// How far back each poll looks: a long execution is recorded when it ends, after shorter
/// ones that started later, and must still be sent once.
const STREAM_WINDOW_MS: i64 = 10 * 60 * 1000;
/// How often (in polls) an open stream checks that its caller may still read it: a token
/// revoked or expired, or a membership removed, ends the stream within 5 s.
const STREAM_RECHECK_POLLS: u32 = 20;
/// Open event streams a user may hold on one host (each asks the store four times a second).
pub const STREAMS_PER_USER: usize = 8;
/// Open event streams a host serves at once.
pub const STREAMS_PER_HOST: usize = 256;

/// Open streams, by user.
static STREAMS: std::sync::Mutex<Option<HashMap<String, usize>>> = std::sync::Mutex::new(None);

/// A place among the open streams, given back when the stream ends.
struct StreamSlot(String);

impl StreamSlot {
    fn take(user: &str) -> Result<StreamSlot, ApiError> {
        let mut open = STREAMS
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let open = open.get_or_insert_with(HashMap::new);
        let total: usize = open.values().sum();
        if open.get(user).copied().unwrap_or(0) >= STREAMS_PER_USER || total >= STREAMS_PER_HOST {
            return Err(ApiError::new(
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                crate::code::ErrorCode::Capacity,
                format!(
                    "too many open execution streams ({STREAMS_PER_USER} per user, \
                     {STREAMS_PER_HOST} per host); close one and retry"
                ),
            ));
        }
        *open.entry(user.to_string()).or_default() += 1;
        Ok(StreamSlot(user.to_string()))
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut open = STREAMS
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(open) = open.as_mut()
            && let Some(n) = open.get_mut(&self.0)
        {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.remove(&self.0);
            }
        }
    }
}

/// Whether the holder of the token hashed as `token_hash` may still read `project`'s
/// records (`None`: no longer), and whether their output.
async fn still_allowed(
    app: &App,
    token_hash: &str,
    project: &str,
) -> Result<Option<bool>, crate::store::StoreError> {
    let Some(owner) = app.store.token_by_hash(token_hash.to_string()).await? else {
        return Ok(None);
    };
    let t = &owner.token;
    if t.revoked_at.is_some() || t.expires_at.is_some_and(|at| at <= crate::store::now_ms()) {
        return Ok(None);
    }
    if owner.platform_admin {
        return Ok(Some(true));
    }
    let role = app
        .store
        .role_of(project.to_string(), t.user_name.clone())
        .await?;
    Ok(role.map(|r| r >= crate::store::Role::Developer))
}

/// What an open stream carries from one event to the next.
struct Following {
    app: Arc<App>,
    _slot: StreamSlot,
    token_hash: String,
    project: String,
    filter: ExecutionFilter,
    since: i64,
    output: bool,
    polls: u32,
    seen: HashMap<String, i64>,
    queue: Vec<model::Execution>,
}

impl Following {
    /// The next record to send; `None` ends the stream (the caller lost the right).
    async fn next(&mut self) -> Option<model::Execution> {
        loop {
            if let Some(e) = self.queue.pop() {
                return Some(e);
            }
            tokio::time::sleep(STREAM_POLL).await;
            self.polls = self.polls.wrapping_add(1);
            if self.polls.is_multiple_of(STREAM_RECHECK_POLLS) {
                match still_allowed(&self.app, &self.token_hash, &self.project).await {
                    Ok(Some(output)) => self.output = output,
                    Ok(None) => return None,
                    Err(e) => tracing::debug!(error = %e, "execution stream: cannot recheck"),
                }
            }
            let newest = self.seen.values().copied().max().unwrap_or(self.since);
            let mut f = self.filter.clone();
            f.after = Some(self.since.max(newest - STREAM_WINDOW_MS) - 1);
            let rows = match self.app.store.list_executions(f).await {
                Ok(rows) => rows,
                // The store is away: keep the stream, try again at the next poll.
                Err(e) => {
                    tracing::debug!(error = %e, "execution stream: store unavailable");
                    continue;
                }
            };
            // Newest first from the store; the queue pops from its end: oldest first out.
            for row in rows {
                if row.started_at < self.since || self.seen.contains_key(&row.id) {
                    continue;
                }
                self.seen.insert(row.id.clone(), row.started_at);
                self.queue.push(summary(&row, self.output));
            }
            let horizon =
                self.seen.values().copied().max().unwrap_or(self.since) - STREAM_WINDOW_MS;
            self.seen.retain(|_, at| *at >= horizon);
        }
    }
}

/// `GET …/executions/stream`: the records written from now on (or after `after`), as
/// server-sent events (`event: execution`, `id:` the execution's id, `data:` its JSON as in
/// the listing), oldest first; a comment every 5 s keeps proxies from closing it (and finds
/// clients gone). The caller's right is checked again every 5 s.
pub(super) async fn stream(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    Path(project): Path<String>,
    headers: axum::http::HeaderMap,
    query: Result<Query<ExecutionsQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Sse<impl futures::Stream<Item = Result<Event, std::convert::Infallible>>>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::bad_entry(e.to_string()))?;
    // The policy let the caller in with this token; the stream asks again as it goes.
    let token_hash = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(crate::auth::bearer)
        .map(crate::credential::hash_token)
        // The console's EventSource sends its session cookie.
        .or_else(|| {
            super::session::session_token(&headers)
                .ok()
                .flatten()
                .map(|t| crate::credential::hash_token(&t))
        })
        .ok_or_else(|| {
            ApiError::bad_entry("the stream needs the Authorization header's token (or a session)")
        })?;
    let project = super::project_name(&app, &project).await?;
    if q.before.is_some() {
        return Err(ApiError::bad_entry(
            "`before` pages the listing back; a stream only goes forward (use `after`)",
        ));
    }
    let mut filter = filter(&project, &q, 1000)?;
    filter.limit = 1000;
    let output = sees_output(&app, &caller, &project).await?;
    let slot = StreamSlot::take(&caller.principal.user)?;
    let following = Following {
        app,
        _slot: slot,
        token_hash,
        project: project.to_string(),
        filter,
        // `after` is exclusive, as in the listing.
        since: q
            .after
            .map_or_else(crate::store::now_ms, |a| a.saturating_add(1)),
        output,
        polls: 0,
        seen: HashMap::new(),
        queue: Vec::new(),
    };
    let events = futures::stream::unfold(following, |mut f| async move {
        let e = f.next().await?;
        let event = Event::default()
            .event("execution")
            .id(e.id.clone())
            .json_data(&e)
            .unwrap_or_else(|_| Event::default().comment("unencodable record"));
        Some((Ok(event), f))
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(5))))
}

pub(super) async fn show(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    Path((project, id)): Path<(String, String)>,
) -> Result<Json<model::Execution>, ApiError> {
    let project = super::project_name(&app, &project).await?;
    let row = app
        .store
        .execution(project.to_string(), id.clone())
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no execution {id:?} in {project}")))?;
    let output = sees_output(&app, &caller, &project).await?;
    let mut v = summary(&row, output);
    if let Some(user) = &row.sealed_for {
        v.output = Some(format!(
            "sealed for {user}: this execution opened {user}'s user scope, so its output is \
             kept under {user}'s key and only {user} reads it (GET /v1/users/{user}/executions/{})",
            row.id
        ));
    } else if output {
        v.stdout = Some(String::from_utf8_lossy(&row.stdout).into_owned());
        v.stdout_truncated = Some(row.stdout_truncated);
        v.stderr = Some(String::from_utf8_lossy(&row.stderr).into_owned());
        v.stderr_truncated = Some(row.stderr_truncated);
    } else {
        v.output = Some("hidden: execution output is for project developers and up".into());
    }
    Ok(Json(v))
}

/// `GET /v1/users/{user}/executions`: the executions sealed for the user (they opened the
/// user's scope), newest first, without output.
pub(super) async fn sealed_list(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    query: Result<Query<ExecutionsQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<model::SealedExecutionList>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::bad_entry(e.to_string()))?;
    let user = caller.principal.user.clone();
    let mut filter = ExecutionFilter {
        sealed_for: Some(user.clone()),
        package: q.package.clone(),
        status: q.status.map(|s| s.as_str().to_string()),
        after: q.after,
        limit: q.limit.unwrap_or(50).clamp(1, 1000),
        ..Default::default()
    };
    filter.before = cursor(&app, &filter, q.before.as_deref()).await?;
    let limit = filter.limit as usize;
    let rows = app.store.list_executions(filter).await?;
    let executions: Vec<_> = rows
        .iter()
        .map(|r| model::SealedExecution {
            project: r.project.clone(),
            execution: summary(r, true),
        })
        .collect();
    let next_before = (executions.len() >= limit)
        .then(|| executions.last().map(|e| e.execution.id.clone()))
        .flatten();
    Ok(Json(model::SealedExecutionList {
        user,
        executions,
        next_before,
    }))
}

/// `GET /v1/users/{user}/executions/{id}`: one execution sealed for the user, its output
/// opened with the data key of the asking token.
pub(super) async fn sealed_show(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    Path((user, id)): Path<(String, String)>,
) -> Result<Json<model::SealedExecution>, ApiError> {
    let row = app
        .store
        .list_executions(ExecutionFilter {
            sealed_for: Some(caller.principal.user.clone()),
            id: Some(id.clone()),
            limit: 1,
            ..Default::default()
        })
        .await?
        .pop()
        .ok_or_else(|| ApiError::not_found(format!("no execution {id:?} sealed for {user}")))?;
    let key = caller.user_key.as_deref().ok_or_else(|| {
        ApiError::new(
            axum::http::StatusCode::FORBIDDEN,
            crate::code::ErrorCode::Denied,
            "a sealed execution's output opens with a token that holds your data key",
        )
    })?;
    let (stdout, stderr) = crate::executions::unseal(&row, key).map_err(|e| {
        ApiError::new(
            axum::http::StatusCode::FORBIDDEN,
            crate::code::ErrorCode::Denied,
            e.to_string(),
        )
    })?;
    let mut v = summary(&row, true);
    v.stdout = Some(String::from_utf8_lossy(&stdout).into_owned());
    v.stdout_truncated = Some(row.stdout_truncated);
    v.stderr = Some(String::from_utf8_lossy(&stderr).into_owned());
    v.stderr_truncated = Some(row.stderr_truncated);
    Ok(Json(model::SealedExecution {
        project: row.project.clone(),
        execution: v,
    }))
}
