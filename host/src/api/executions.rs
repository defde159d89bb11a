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
        stdout_bytes: output.then_some(e.stdout.len() as u64),
        stderr_bytes: output.then_some(e.stderr.len() as u64),
        stdout: None,
        stdout_truncated: None,
        stderr: None,
        stderr_truncated: None,
        output: None,
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
        project: project.to_string(),
        package: q.package.clone(),
        status: q.status.map(|s| s.as_str().to_string()),
        after: q.after,
        limit: q.limit.unwrap_or(default_limit).clamp(1, 1000),
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
    let rows = app.store.list_executions(filter(&project, &q, 50)?).await?;
    let output = sees_output(&app, &caller, &project).await?;
    let executions = rows.iter().map(|r| summary(r, output)).collect();
    Ok(Json(model::ExecutionList {
        project: project.to_string(),
        executions,
    }))
}

/// How often the stream asks the store for new records. Records come from every host of a
/// cluster, so the store (not this host's record writer) is what is followed.
const STREAM_POLL: Duration = Duration::from_millis(250);
/// How far back each poll looks: a long execution is recorded when it ends, after shorter
/// ones that started later, and must still be sent once.
const STREAM_WINDOW_MS: i64 = 10 * 60 * 1000;

/// `GET …/executions/stream`: the records written from now on (or after `after`), as
/// server-sent events (`event: execution`, `id:` the execution's id, `data:` its JSON as in
/// the listing), oldest first; a comment every 15 s keeps proxies from closing it.
pub(super) async fn stream(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    Path(project): Path<String>,
    query: Result<Query<ExecutionsQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Sse<impl futures::Stream<Item = Result<Event, std::convert::Infallible>>>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::bad_entry(e.to_string()))?;
    let project = super::project_name(&app, &project).await?;
    let mut base = filter(&project, &q, 1000)?;
    base.limit = 1000;
    let output = sees_output(&app, &caller, &project).await?;
    // `after` is exclusive, as in the listing.
    let since = q
        .after
        .map_or_else(crate::store::now_ms, |a| a.saturating_add(1));
    let state = (
        app,
        base,
        since,
        HashMap::<String, i64>::new(),
        Vec::<model::Execution>::new(),
    );
    let events = futures::stream::unfold(
        state,
        move |(app, base, since, mut seen, mut queue)| async move {
            loop {
                if let Some(e) = queue.pop() {
                    let event = Event::default()
                        .event("execution")
                        .id(e.id.clone())
                        .json_data(&e)
                        .unwrap_or_else(|_| Event::default().comment("unencodable record"));
                    return Some((Ok(event), (app, base, since, seen, queue)));
                }
                tokio::time::sleep(STREAM_POLL).await;
                let newest = seen.values().copied().max().unwrap_or(since);
                let mut f = base.clone();
                f.after = Some(since.max(newest - STREAM_WINDOW_MS) - 1);
                let rows = match app.store.list_executions(f).await {
                    Ok(rows) => rows,
                    // The store is away: keep the stream, try again at the next poll.
                    Err(e) => {
                        tracing::debug!(error = %e, "execution stream: store unavailable");
                        continue;
                    }
                };
                // Newest first from the store; the queue pops from its end: oldest first out.
                for row in rows {
                    if row.started_at < since || seen.contains_key(&row.id) {
                        continue;
                    }
                    seen.insert(row.id.clone(), row.started_at);
                    queue.push(summary(&row, output));
                }
                let horizon = seen.values().copied().max().unwrap_or(since) - STREAM_WINDOW_MS;
                seen.retain(|_, at| *at >= horizon);
            }
        },
    );
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
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
    if output {
        v.stdout = Some(String::from_utf8_lossy(&row.stdout).into_owned());
        v.stdout_truncated = Some(row.stdout_truncated);
        v.stderr = Some(String::from_utf8_lossy(&row.stderr).into_owned());
        v.stderr_truncated = Some(row.stderr_truncated);
    } else {
        v.output = Some("hidden: execution output is for project developers and up".into());
    }
    Ok(Json(v))
}
