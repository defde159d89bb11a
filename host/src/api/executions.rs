//! Execution records over the API (project viewers and up).

use super::{ApiError, rfc3339};
use crate::names::Name;
use crate::server::App;
use crate::store::{ExecutionFilter, ExecutionRow};
use axum::Json;
use axum::extract::{Path, Query, State};
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ListQuery {
    package: Option<String>,
    status: Option<String>,
    /// Only executions started after this (Unix milliseconds), for following.
    after: Option<i64>,
    limit: Option<u32>,
}

fn summary(e: &ExecutionRow) -> Value {
    json!({
        "id": e.id,
        "package": e.package,
        "version": e.version,
        "started_at": rfc3339(e.started_at),
        "started_at_ms": e.started_at,
        "duration_ms": e.duration_us as f64 / 1000.0,
        "status": e.status,
        "http_status": e.http_status,
        "user": e.user,
        "secrets": e.secrets,
        "stdout_bytes": e.stdout.len(),
        "stderr_bytes": e.stderr.len(),
    })
}

const STATUSES: [&str; 6] = [
    "ok",
    "guest_error",
    "trapped",
    "timed_out",
    "out_of_memory",
    "limited",
];

pub(super) async fn list(
    State(app): State<Arc<App>>,
    Path(project): Path<String>,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::bad_entry(e.to_string()))?;
    let project = super::project_name(&app, &project).await?;
    if let Some(p) = &q.package {
        Name::parse("package", p)?;
    }
    if let Some(s) = &q.status
        && !STATUSES.contains(&s.as_str())
    {
        return Err(ApiError::bad_entry(format!(
            "unknown status {s:?}: use one of {}",
            STATUSES.join(", ")
        )));
    }
    let rows = app
        .store
        .list_executions(ExecutionFilter {
            project: project.to_string(),
            package: q.package,
            status: q.status,
            after: q.after,
            limit: q.limit.unwrap_or(50).clamp(1, 1000),
        })
        .await?;
    let executions: Vec<Value> = rows.iter().map(summary).collect();
    Ok(Json(
        json!({ "project": project, "executions": executions }),
    ))
}

pub(super) async fn show(
    State(app): State<Arc<App>>,
    Path((project, id)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let project = super::project_name(&app, &project).await?;
    let row = app
        .store
        .execution(project.to_string(), id.clone())
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no execution {id:?} in {project}")))?;
    let mut v = summary(&row);
    v["stdout"] = json!(String::from_utf8_lossy(&row.stdout));
    v["stdout_truncated"] = json!(row.stdout_truncated);
    v["stderr"] = json!(String::from_utf8_lossy(&row.stderr));
    v["stderr_truncated"] = json!(row.stderr_truncated);
    Ok(Json(v))
}
