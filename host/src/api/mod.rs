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
#[cfg(test)]
mod walk;

pub use error::ApiError;
pub use policy::{Caller, Need, RemoteAddr};

use crate::names::Name;
use crate::server::App;
use crate::store::Role;
use axum::extract::{Path, State};
use axum::http::{Method, StatusCode};
use axum::middleware;
use axum::response::IntoResponse;
use axum::routing::{MethodRouter, delete, get, patch, post, put};
use axum::{Extension, Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;

/// One route: method, path, what its caller needs, and its handler. The router and the
/// policy are both made from [`routes`], so a route cannot exist without its rule.
pub struct Route {
    /// The method (`HEAD` is judged as `GET`, which axum also serves it with).
    pub method: Method,
    /// The path pattern, as axum matches it.
    pub path: String,
    /// What the caller needs.
    pub need: Need,
    handler: MethodRouter<Arc<App>>,
}

fn route(method: Method, path: &str, need: Need, handler: MethodRouter<Arc<App>>) -> Route {
    Route {
        method,
        path: path.to_string(),
        need,
        handler,
    }
}

/// Every API route, with the rule its caller must pass.
pub fn routes() -> Vec<Route> {
    use Need::*;
    use Role::{Admin, Developer, Viewer};
    const P: &str = "/v1/projects/{project}";
    let mut r = vec![
        route(Method::GET, "/v1/health", Public, get(health)),
        route(Method::GET, "/v1/ready", Public, get(ready)),
        route(
            Method::GET,
            "/v1/whoami",
            Authenticated,
            get(identity::whoami),
        ),
        route(
            Method::GET,
            "/v1/users",
            PlatformAdmin,
            get(identity::list_users),
        ),
        route(
            Method::POST,
            "/v1/users",
            PlatformAdmin,
            post(identity::create_user),
        ),
        route(
            Method::GET,
            "/v1/users/{user}/tokens",
            SelfOrPlatformAdmin,
            get(identity::list_tokens),
        ),
        route(
            Method::POST,
            "/v1/users/{user}/tokens",
            SelfOrPlatformAdmin,
            post(identity::create_token),
        ),
        route(
            Method::DELETE,
            "/v1/users/{user}/tokens/{token}",
            SelfOrPlatformAdmin,
            delete(identity::revoke_token),
        ),
        route(
            Method::POST,
            "/v1/users/{user}/enrollments",
            PlatformAdmin,
            post(identity::create_enrollment),
        ),
        // The enrollment code is the credential.
        route(Method::POST, "/v1/enroll", Public, post(identity::enroll)),
        route(Method::GET, "/v1/audit", AuditReader, get(identity::audit)),
        route(
            Method::GET,
            "/v1/projects",
            Authenticated,
            get(list_projects),
        ),
        route(
            Method::POST,
            "/v1/projects",
            PlatformAdmin,
            post(create_project),
        ),
        route(
            Method::GET,
            &format!("{P}/members"),
            Project(Viewer),
            get(identity::list_members),
        ),
        route(
            Method::PUT,
            &format!("{P}/members/{{user}}"),
            Project(Admin),
            put(identity::set_member),
        ),
        route(
            Method::DELETE,
            &format!("{P}/members/{{user}}"),
            Project(Admin),
            delete(identity::remove_member),
        ),
        route(
            Method::GET,
            &format!("{P}/packages"),
            Project(Viewer),
            get(list_packages),
        ),
        route(
            Method::GET,
            &format!("{P}/executions"),
            Project(Viewer),
            get(executions::list),
        ),
        route(
            Method::GET,
            &format!("{P}/executions/{{id}}"),
            Project(Viewer),
            get(executions::show),
        ),
        route(
            Method::GET,
            &format!("{P}/packages/{{package}}"),
            Project(Viewer),
            get(show_package),
        ),
        route(
            Method::DELETE,
            &format!("{P}/packages/{{package}}"),
            Project(Developer),
            delete(delete_package),
        ),
        route(
            Method::POST,
            &format!("{P}/packages/{{package}}/versions"),
            Project(Developer),
            post(upload::upload_version).layer(axum::extract::DefaultBodyLimit::disable()),
        ),
        route(
            Method::POST,
            &format!("{P}/packages/{{package}}/rollback"),
            Project(Developer),
            post(rollback),
        ),
        // The wrapping token is the credential.
        route(Method::POST, "/v1/unwrap", Public, post(secrets::unwrap)),
        // The same, as Vault's clients call it (X-Vault-Token, Vault's answer shape).
        route(
            Method::POST,
            "/v1/sys/wrapping/unwrap",
            Public,
            post(secrets::unwrap_vault_style),
        ),
        // Vault's CLI writes with PUT.
        route(
            Method::PUT,
            "/v1/sys/wrapping/unwrap",
            Public,
            put(secrets::unwrap_vault_style),
        ),
    ];
    // Platform scope: platform admins only.
    r.extend(secret_routes("/v1/secrets/platform", [PlatformAdmin; 4]));
    // Project scope: names for members, everything else for project admins.
    r.extend(secret_routes(
        &format!("{P}/secrets"),
        [
            Project(Viewer),
            Project(Admin),
            Project(Admin),
            Project(Admin),
        ],
    ));
    // Package scope: names for members, writes for developers, values for admins.
    r.extend(secret_routes(
        &format!("{P}/packages/{{package}}/secrets"),
        [
            Project(Viewer),
            Project(Developer),
            Project(Admin),
            Project(Admin),
        ],
    ));
    // User scope: that user alone, whoever else asks.
    r.extend(secret_routes("/v1/users/{user}/secrets", [SelfOnly; 4]));
    r
}

/// The routes of one secret scope. `needs` are, in order: listing names; writing (create,
/// import, set, update, delete); reading a value; wrapping a value.
fn secret_routes(base: &str, needs: [Need; 4]) -> Vec<Route> {
    let [list, write, read, wrap] = needs;
    let one = format!("{base}/{{name}}");
    vec![
        route(Method::GET, base, list, get(secrets::list)),
        route(Method::POST, base, write, post(secrets::create)),
        route(Method::PUT, base, write, put(secrets::import)),
        route(Method::GET, &one, read, get(secrets::read)),
        route(Method::PUT, &one, write, put(secrets::set)),
        route(Method::PATCH, &one, write, patch(secrets::update)),
        route(Method::DELETE, &one, write, delete(secrets::remove)),
        route(
            Method::POST,
            &format!("{one}/wrap"),
            wrap,
            post(secrets::wrap),
        ),
    ]
}

/// The `/v1` router over the shared application state, made from [`routes`]. Every route
/// passes through [`policy::enforce`].
pub fn router(app: Arc<App>) -> Router {
    let mut router = Router::new();
    for r in routes() {
        router = router.route(&r.path, r.handler);
    }
    router
        .layer(axum::extract::DefaultBodyLimit::max(secrets::BODY_LIMIT))
        .route_layer(middleware::from_fn_with_state(app.clone(), policy::enforce))
        .fallback(|| async { ApiError::not_found("no such API route; see /v1 in the README") })
        .with_state(app)
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

/// Whether this host can do its work: its store answers, its change feed is connected, its
/// secret backend answers. For load balancers: 503 takes the host out of rotation (it keeps
/// serving what it has to whoever still reaches it). Causes are logged, not shown to callers.
async fn ready(State(app): State<Arc<App>>) -> (StatusCode, Json<Value>) {
    let (health, secrets) = tokio::join!(app.store.health(), app.cache.ping());
    let word = |r: &Result<(), String>, what: &str| match r {
        Ok(()) => "ok",
        Err(e) => {
            tracing::warn!(error = %e, "not ready: {what}");
            "unavailable"
        }
    };
    let secrets = secrets.map_err(|e| e.to_string());
    let body = json!({
        "ready": health.store.is_ok() && health.feed.is_ok() && secrets.is_ok(),
        "store": word(&health.store, "metadata store"),
        "feed": word(&health.feed, "change feed"),
        "secrets": word(&secrets, "secret backend"),
        "engine": app.store.engine(),
    });
    let status = if body["ready"] == json!(true) {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body))
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
