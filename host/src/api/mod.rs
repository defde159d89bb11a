//! The control plane: JSON over HTTP under `/v1`, bearer tokens.
//!
//! | method | path | what |
//! |---|---|---|
//! | GET | `/v1/health` | liveness (no token) |
//! | GET, POST | `/v1/projects` | list, create `{"name"}` |
//! | GET | `/v1/projects/{p}/packages` | packages of a project |
//! | GET, DELETE | `/v1/projects/{p}/packages/{pkg}` | a package and its versions; delete it |
//! | POST | `/v1/projects/{p}/packages/{pkg}/versions` | upload a version (raw or multipart) |
//! | POST | `/v1/projects/{p}/packages/{pkg}/rollback` | make `{"version"}` (or the previous) current |
//!
//! Errors are `{"error": {"code", "message"}}` with a stable code.

mod error;
mod executions;
mod identity;
pub mod policy;
pub mod secrets;
mod upload;

pub use error::ApiError;
pub use policy::{Caller, RemoteAddr};

use crate::names::Name;
use crate::server::App;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::middleware;
use axum::response::IntoResponse;
use axum::routing::{delete, get, post, put};
use axum::{Extension, Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;

/// The `/v1` router over the shared application state. Every route passes through
/// [`policy::enforce`].
pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/v1/health", get(health))
        .route("/v1/whoami", get(identity::whoami))
        .route(
            "/v1/users",
            get(identity::list_users).post(identity::create_user),
        )
        .route(
            "/v1/users/{user}/tokens",
            get(identity::list_tokens).post(identity::create_token),
        )
        .route(
            "/v1/users/{user}/tokens/{token}",
            delete(identity::revoke_token),
        )
        .route("/v1/audit", get(identity::audit))
        .route("/v1/projects", get(list_projects).post(create_project))
        .route(
            "/v1/projects/{project}/members",
            get(identity::list_members),
        )
        .route(
            "/v1/projects/{project}/members/{user}",
            put(identity::set_member).delete(identity::remove_member),
        )
        .route("/v1/projects/{project}/packages", get(list_packages))
        .route("/v1/projects/{project}/executions", get(executions::list))
        .route(
            "/v1/projects/{project}/executions/{id}",
            get(executions::show),
        )
        .route(
            "/v1/projects/{project}/packages/{package}",
            get(show_package).delete(delete_package),
        )
        .route(
            "/v1/projects/{project}/packages/{package}/versions",
            post(upload::upload_version).layer(axum::extract::DefaultBodyLimit::disable()),
        )
        .route(
            "/v1/projects/{project}/packages/{package}/rollback",
            post(rollback),
        )
        .merge(secret_routes("/v1/secrets/platform"))
        .merge(secret_routes("/v1/projects/{project}/secrets"))
        .merge(secret_routes(
            "/v1/projects/{project}/packages/{package}/secrets",
        ))
        .merge(secret_routes("/v1/users/{user}/secrets"))
        .route("/v1/unwrap", post(secrets::unwrap))
        .layer(axum::extract::DefaultBodyLimit::max(secrets::BODY_LIMIT))
        .route_layer(middleware::from_fn_with_state(app.clone(), policy::enforce))
        .fallback(|| async { ApiError::not_found("no such API route; see /v1 in the README") })
        .with_state(app)
}

/// The same five routes for every scope: list, create and import on the collection; read,
/// set, update and delete on a name; wrap below a name.
fn secret_routes(base: &str) -> Router<Arc<App>> {
    Router::new()
        .route(
            base,
            get(secrets::list)
                .post(secrets::create)
                .put(secrets::import),
        )
        .route(
            &format!("{base}/{{name}}"),
            get(secrets::read)
                .put(secrets::set)
                .patch(secrets::update)
                .delete(secrets::remove),
        )
        .route(&format!("{base}/{{name}}/wrap"), post(secrets::wrap))
}

/// Formats Unix milliseconds as RFC 3339.
pub(crate) fn rfc3339(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

async fn health(State(app): State<Arc<App>>) -> Json<Value> {
    Json(json!({ "status": "ok", "packages_serving": app.packages.serving_count() }))
}

#[derive(Deserialize)]
struct CreateProject {
    name: String,
}

async fn create_project(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    body: Result<Json<CreateProject>, axum::extract::rejection::JsonRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let Json(body) =
        body.map_err(|e| ApiError::bad_entry(format!("expected {{\"name\": …}}: {e}")))?;
    let name = Name::parse("project", &body.name)?;
    app.store
        .create_project(name.to_string(), caller.principal.user.clone())
        .await?;
    Ok((StatusCode::CREATED, Json(json!({ "name": name }))))
}

async fn list_projects(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
) -> Result<Json<Value>, ApiError> {
    let p = &caller.principal;
    // Everyone sees the projects they belong to; platform admins see all.
    let mine: Vec<String> = if p.platform_admin {
        Vec::new()
    } else {
        app.store
            .memberships(p.user.clone())
            .await?
            .into_iter()
            .map(|m| m.project)
            .collect()
    };
    let projects: Vec<Value> = app
        .store
        .list_projects()
        .await?
        .into_iter()
        .filter(|row| p.platform_admin || mine.contains(&row.name))
        .map(|p| json!({ "name": p.name, "created_at": rfc3339(p.created_at), "created_by": p.created_by }))
        .collect();
    Ok(Json(json!({ "projects": projects })))
}

pub(crate) async fn project_name(app: &App, project: &str) -> Result<Name, ApiError> {
    let name = Name::parse("project", project)?;
    if !app.store.project_exists(name.to_string()).await? {
        return Err(ApiError::not_found(format!("no project {name:?}")));
    }
    Ok(name)
}

async fn list_packages(
    State(app): State<Arc<App>>,
    Path(project): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let project = project_name(&app, &project).await?;
    let packages: Vec<Value> = app
        .store
        .list_packages(project.to_string())
        .await?
        .into_iter()
        .map(|p| {
            json!({
                "name": p.name,
                "current_version": p.current_version,
                "versions": p.versions,
                "created_at": rfc3339(p.created_at),
            })
        })
        .collect();
    Ok(Json(json!({ "project": project, "packages": packages })))
}

async fn show_package(
    State(app): State<Arc<App>>,
    Path((project, package)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let project = Name::parse("project", &project)?;
    let package = Name::parse("package", &package)?;
    let (pkg, versions) = app
        .store
        .list_versions(project.to_string(), package.to_string())
        .await?;
    let versions: Vec<Value> = versions
        .into_iter()
        .map(|v| {
            json!({
                "version": v.version,
                "sha256": v.sha256,
                "size": v.size,
                "manifest": serde_json::from_str::<Value>(&v.manifest).unwrap_or(Value::Null),
                "created_at": rfc3339(v.created_at),
                "created_by": v.created_by,
                "current": Some(v.version) == pkg.current_version,
            })
        })
        .collect();
    Ok(Json(json!({
        "project": project,
        "name": package,
        "current_version": pkg.current_version,
        "versions": versions,
    })))
}

async fn delete_package(
    State(app): State<Arc<App>>,
    Path((project, package)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let project = Name::parse("project", &project)?;
    let package = Name::parse("package", &package)?;
    app.packages.delete(&project, &package).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Rollback {
    version: Option<i64>,
}

async fn rollback(
    State(app): State<Arc<App>>,
    Path((project, package)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Result<Json<Value>, ApiError> {
    let project = Name::parse("project", &project)?;
    let package = Name::parse("package", &package)?;
    let body: Rollback = if body.iter().all(u8::is_ascii_whitespace) {
        Rollback::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| {
            ApiError::bad_entry(format!("expected {{\"version\": N}} or no body: {e}"))
        })?
    };
    let version = app
        .packages
        .rollback(&project, &package, body.version)
        .await?;
    Ok(Json(
        json!({ "project": project, "package": package, "version": version }),
    ))
}
