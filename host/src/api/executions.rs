//! Execution records over the API: project viewers and up see the records; output (stdout,
//! stderr and their sizes) only project developers and up, since output is the guest's and
//! may carry what masking cannot know of.

use super::policy::Caller;
use super::{ApiError, rfc3339};
use crate::names::Name;
use crate::server::App;
use crate::store::{ExecutionFilter, ExecutionRow};
use axum::extract::{Path, Query, State};
use axum::{Extension, Json};
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

fn summary(e: &ExecutionRow, output: bool) -> Value {
    let mut v = json!({
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
    });
    if output {
        v["stdout_bytes"] = json!(e.stdout.len());
        v["stderr_bytes"] = json!(e.stderr.len());
    }
    v
}

const STATUSES: [&str; 7] = [
    "ok",
    "guest_error",
    "trapped",
    "timed_out",
    "out_of_memory",
    "limited",
    "unbound",
];

pub(super) async fn list(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
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
    let output = sees_output(&app, &caller, &project).await?;
    let executions: Vec<Value> = rows.iter().map(|r| summary(r, output)).collect();
    Ok(Json(
        json!({ "project": project, "executions": executions }),
    ))
}

pub(super) async fn show(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    Path((project, id)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let project = super::project_name(&app, &project).await?;
    let row = app
        .store
        .execution(project.to_string(), id.clone())
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no execution {id:?} in {project}")))?;
    let output = sees_output(&app, &caller, &project).await?;
    let mut v = summary(&row, output);
    if output {
        v["stdout"] = json!(String::from_utf8_lossy(&row.stdout));
        v["stdout_truncated"] = json!(row.stdout_truncated);
        v["stderr"] = json!(String::from_utf8_lossy(&row.stderr));
        v["stderr_truncated"] = json!(row.stderr_truncated);
    } else {
        v["output"] = json!("hidden: execution output is for project developers and up");
    }
    Ok(Json(v))
}
