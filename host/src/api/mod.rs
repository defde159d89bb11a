//! The control plane: JSON over HTTP under `/v1`, bearer tokens or the console's session.
//!
//! Every route is one entry of [`routes`]: method, path, the right it needs ([`policy::Need`]),
//! its handler and what it takes and gives. The router, the policy middleware and the OpenAPI
//! document (`GET /v1/openapi.json`, [`openapi`]) are all built from that one table, so none of
//! them can list a route the others do not. A secret scope's rights come from
//! [`crate::secrets::policy`], the table a function's writes follow too.
//!
//! Errors are `{"error": {"code", "message"}}` with a stable code ([`crate::code::ErrorCode`]).

mod console;
mod error;
mod executions;
pub mod extract;
mod grants;
mod identity;
pub mod model;
pub mod openapi;
pub mod policy;
mod removal;
pub mod secrets;
pub mod session;
mod upload;
#[cfg(test)]
mod walk;

pub use error::ApiError;
pub use policy::{Caller, Need, RemoteAddr};

use crate::app::App;
use crate::names::{Name, Scope};
use crate::store::Role;
use axum::extract::{Path, State};
use axum::http::{Method, StatusCode};
use axum::middleware;
use axum::routing::{MethodRouter, delete, get, patch, post, put};
use axum::{Extension, Json, Router};
use extract::{Body, MaybeBody};
use std::sync::Arc;

/// One route: method, path, what its caller needs, its handler, and what it takes and gives.
/// The router, the policy and the OpenAPI document are all made from [`routes`], so a route
/// cannot exist without its rule or its documentation.
pub struct Route {
    /// The method (`HEAD` is judged as `GET`, which axum also serves it with).
    pub method: Method,
    /// The path pattern, as axum matches it.
    pub path: String,
    /// What the caller needs.
    pub need: Need,
    /// What it takes and gives, for the OpenAPI document.
    pub doc: openapi::Doc,
    handler: MethodRouter<Arc<App>>,
}

fn route(method: Method, path: &str, need: Need, handler: MethodRouter<Arc<App>>) -> Route {
    Route {
        method,
        path: path.to_string(),
        need,
        doc: openapi::Doc::default(),
        handler,
    }
}

impl Route {
    /// A one-line summary.
    fn doc(mut self, summary: &'static str) -> Route {
        self.doc.summary = summary;
        self
    }

    /// Its JSON request body.
    fn takes<T: utoipa::ToSchema>(mut self) -> Route {
        self.doc.request = Some(openapi::Payload::json::<T>());
        self
    }

    /// Its JSON request body, which may be left out.
    fn may_take<T: utoipa::ToSchema>(mut self) -> Route {
        self.doc.request = Some(openapi::Payload::json::<T>());
        self.doc.body_optional = true;
        self
    }

    /// Its success status and JSON body.
    fn gives<T: utoipa::ToSchema>(mut self, status: u16) -> Route {
        self.doc.response = Some((status, Some(openapi::Payload::json::<T>())));
        self
    }

    /// `204 No Content` on success.
    fn no_content(mut self) -> Route {
        self.doc.response = Some((204, None));
        self
    }

    /// Its query parameters.
    fn query<Q: utoipa::IntoParams>(mut self) -> Route {
        self.doc.query =
            Some(|| Q::into_params(|| Some(utoipa::openapi::path::ParameterIn::Query)));
        self
    }

    /// Other statuses it answers, beyond those its need, parameters and body imply.
    fn also(mut self, statuses: &[u16]) -> Route {
        self.doc.extra.extend_from_slice(statuses);
        self
    }
}

/// Every API route, with the rule its caller must pass.
pub fn routes() -> Vec<Route> {
    use Need::*;
    use Role::{Admin, Developer, Viewer};
    use model as m;
    const P: &str = "/v1/projects/{project}";
    let mut r = vec![
        route(Method::GET, "/v1/health", Public, get(health))
            .doc("Liveness")
            .gives::<m::Health>(200),
        route(Method::GET, "/v1/ready", Public, get(ready))
            .doc("Readiness: the store, the change feed and the secret backend answer")
            .gives::<m::Ready>(200)
            .also(&[503]),
        route(Method::GET, "/v1/openapi.json", Public, get(openapi::serve))
            .doc("This document")
            .gives::<openapi::AnyJson>(200),
        route(Method::GET, "/v1/whoami", Authenticated, get(identity::whoami))
            .doc("The caller, its projects, and credentials others made for it")
            .gives::<m::Whoami>(200),
        route(Method::GET, "/v1/users", PlatformAdmin, get(identity::list_users))
            .doc("List users")
            .gives::<m::UserList>(200),
        route(Method::POST, "/v1/users", PlatformAdmin, post(identity::create_user))
            .doc("Create a user")
            .takes::<m::CreateUser>()
            .gives::<m::UserCreated>(201),
        route(
            Method::DELETE,
            "/v1/users/{user}",
            PlatformAdmin,
            delete(removal::delete_user),
        )
        .doc("Delete a user: every token of theirs (and made from one) revoked, their memberships and grants gone; refused 409 `in_use` while they keep user secrets unless `force=true` (then those go too); never `admin` or yourself (409 `conflict`)")
        .query::<m::ForceDelete>()
        .gives::<m::UserDeleted>(200)
        .also(&[409]),
        route(
            Method::GET,
            "/v1/users/{user}/tokens",
            SelfOrPlatformAdmin,
            get(identity::list_tokens),
        )
        .doc("List a user's tokens")
        .gives::<m::TokenList>(200),
        route(
            Method::POST,
            "/v1/users/{user}/tokens",
            SelfOrPlatformAdmin,
            post(identity::create_token),
        )
        .doc("Issue a token (shown once)")
        .may_take::<m::CreateToken>()
        .gives::<m::IssuedToken>(201),
        route(
            Method::DELETE,
            "/v1/users/{user}/tokens/{token}",
            SelfOrPlatformAdmin,
            delete(identity::revoke_token),
        )
        .doc("Revoke a token (by id, or the token itself)")
        .no_content(),
        route(
            Method::POST,
            "/v1/users/{user}/enrollments",
            PlatformAdmin,
            post(identity::create_enrollment),
        )
        .doc("Make a single-use enrollment code for a user")
        .may_take::<m::CreateEnrollment>()
        .gives::<m::Enrollment>(201),
        route(
            Method::GET,
            "/v1/users/{user}/grants",
            SelfOnly,
            get(grants::list),
        )
        .doc("The user's grants: which package versions may use which of their user secrets")
        .gives::<m::GrantList>(200),
        route(
            Method::POST,
            "/v1/users/{user}/grants",
            SelfOnly,
            post(grants::create),
        )
        .doc("Grant one package version (its code and manifest) the user secrets it declares; with `preview`, only show what it asks")
        .takes::<m::CreateGrant>()
        .gives::<m::Grant>(201)
        .also(&[200]),
        route(
            Method::DELETE,
            "/v1/users/{user}/grants/{grant}",
            SelfOnly,
            delete(grants::remove),
        )
        .doc("Revoke a grant")
        .no_content(),
        route(
            Method::GET,
            "/v1/users/{user}/executions",
            SelfOnly,
            get(executions::sealed_list),
        )
        .doc("The executions sealed for the user (they opened the user's scope), newest first")
        .query::<m::ExecutionsQuery>()
        .gives::<m::SealedExecutionList>(200),
        route(
            Method::GET,
            "/v1/users/{user}/executions/{id}",
            SelfOnly,
            get(executions::sealed_show),
        )
        .doc("One execution sealed for the user, its output opened with the user's key")
        .gives::<m::SealedExecution>(200),
        // The enrollment code is the credential.
        route(Method::POST, "/v1/enroll", Public, post(identity::enroll))
            .doc("Redeem an enrollment code for a token with a fresh data key")
            .takes::<m::Enroll>()
            .gives::<m::Enrolled>(201),
        route(Method::GET, "/v1/audit", AuditReader, get(identity::audit))
            .doc("The audit log, newest first")
            .query::<m::AuditQuery>()
            .gives::<m::AuditList>(200),
        route(Method::GET, "/v1/projects", Authenticated, get(list_projects))
            .doc("The caller's projects (all, for platform admins)")
            .gives::<m::ProjectList>(200),
        route(Method::POST, "/v1/projects", PlatformAdmin, post(create_project))
            .doc("Create a project")
            .takes::<m::CreateProject>()
            .gives::<m::ProjectCreated>(201),
        route(Method::DELETE, P, PlatformAdmin, delete(removal::delete_project))
            .doc("Delete a project with its members, grants and execution records; refused 409 `in_use`, naming them, while it has packages unless `force=true` (then its packages, every version and its project and package secrets go too)")
            .query::<m::ForceDelete>()
            .gives::<m::ProjectDeleted>(200)
            .also(&[409]),
        route(Method::PATCH, P, Project(Admin), patch(update_project))
            .doc("Change a project's settings (members_read_secrets: every member may read its project-scope values)")
            .takes::<m::ProjectSettings>()
            .gives::<m::Project>(200),
        route(
            Method::GET,
            &format!("{P}/members"),
            Project(Viewer),
            get(identity::list_members),
        )
        .doc("List a project's members")
        .gives::<m::MemberList>(200),
        route(
            Method::PUT,
            &format!("{P}/members/{{user}}"),
            Project(Admin),
            put(identity::set_member),
        )
        .doc("Grant a role")
        .takes::<m::SetMember>()
        .gives::<m::MemberSet>(200),
        route(
            Method::DELETE,
            &format!("{P}/members/{{user}}"),
            Project(Admin),
            delete(identity::remove_member),
        )
        .doc("Remove a member")
        .no_content(),
        route(
            Method::GET,
            &format!("{P}/packages"),
            Project(Viewer),
            get(list_packages),
        )
        .doc("List a project's packages")
        .gives::<m::PackageList>(200),
        route(
            Method::GET,
            &format!("{P}/executions"),
            Project(Viewer),
            get(executions::list),
        )
        .doc("Execution records, newest first")
        .query::<m::ExecutionsQuery>()
        .gives::<m::ExecutionList>(200),
        route(
            Method::GET,
            &format!("{P}/executions/stream"),
            Project(Viewer),
            get(executions::stream),
        )
        .doc("Execution records as they are written: server-sent events, one `execution` event each")
        .query::<m::ExecutionsQuery>()
        .also(&[200]),
        route(
            Method::GET,
            &format!("{P}/executions/{{id}}"),
            Project(Viewer),
            get(executions::show),
        )
        .doc("One execution, with its masked output")
        .gives::<m::Execution>(200),
        route(
            Method::GET,
            &format!("{P}/packages/{{package}}"),
            Project(Viewer),
            get(show_package),
        )
        .doc("A package and its versions")
        .gives::<m::Package>(200),
        route(
            Method::DELETE,
            &format!("{P}/packages/{{package}}"),
            Project(Developer),
            delete(delete_package),
        )
        .doc("Delete a package and every version")
        .no_content(),
        route(
            Method::POST,
            &format!("{P}/packages/{{package}}/versions"),
            Project(Developer),
            post(upload::upload_version).layer(axum::extract::DefaultBodyLimit::disable()),
        )
        .doc("Deploy a version: a component (application/wasm), or multipart with `component`, `manifest` and `secrets` parts")
        .gives::<m::Deployed>(201)
        .also(&[413, 422]),
        route(
            Method::PUT,
            &format!("{P}/packages/{{package}}/manifest"),
            Project(Developer),
            put(upload::replace_manifest),
        )
        .doc("Deploy a version made of the serving version's component and this manifest (a package's settings changed): the same checks as an upload; a user's grant does not carry over to a changed manifest")
        .takes::<m::NewManifest>()
        .gives::<m::Deployed>(201)
        .also(&[409, 422]),
        route(
            Method::POST,
            &format!("{P}/packages/{{package}}/rollback"),
            Project(Developer),
            post(rollback),
        )
        .doc("Make a version (or the one before the current) current")
        .may_take::<m::Rollback>()
        .gives::<m::RolledBack>(200)
        .also(&[422]),
        // The token in the body is the credential, as for enrollment.
        route(Method::POST, "/v1/sessions", Public, post(session::create))
            .doc("Sign in to the web console: a token exchanged for an HttpOnly session cookie and the CSRF token its changes must carry")
            .takes::<m::CreateSession>()
            .gives::<m::Session>(201)
            .also(&[401, 415]),
        route(
            Method::DELETE,
            "/v1/sessions/current",
            Authenticated,
            delete(session::remove),
        )
        .doc("Sign out of the web console: the session's token is revoked and its cookie cleared")
        .no_content(),
        // The wrapping token is the credential.
        route(Method::POST, "/v1/unwrap", Public, post(secrets::unwrap))
            .doc("Redeem a wrapping token once: `{\"token\"}` or X-Vault-Token; the same answer whichever backend holds the value")
            .may_take::<m::VaultUnwrap>()
            .gives::<m::Unwrapped>(200),
        // The same, as Vault's clients call it (X-Vault-Token, Vault's answer shape).
        route(
            Method::POST,
            "/v1/sys/wrapping/unwrap",
            Public,
            post(secrets::unwrap_vault_style),
        )
        .doc("Redeem a wrapping token, as Vault's clients call it")
        .may_take::<m::VaultUnwrap>()
        .gives::<m::VaultUnwrapped>(200),
        // Vault's CLI writes with PUT.
        route(
            Method::PUT,
            "/v1/sys/wrapping/unwrap",
            Public,
            put(secrets::unwrap_vault_style),
        )
        .doc("Redeem a wrapping token, as Vault's CLI calls it")
        .may_take::<m::VaultUnwrap>()
        .gives::<m::VaultUnwrapped>(200),
    ];
    // Each scope's rights come from the one table a function's writes also follow.
    for (base, scope) in secret_collections() {
        let rights = crate::secrets::policy::rights(scope);
        r.extend(secret_routes(
            &base,
            [rights.list, rights.write, rights.read, rights.wrap].map(Need::from),
        ));
    }
    r
}

/// Each scope's secret collection, as a route pattern: the routes are made from it, and the
/// policy names a refused call's scope by it.
pub(crate) fn secret_collections() -> [(String, Scope); 4] {
    [
        ("/v1/secrets/platform".to_string(), Scope::Platform),
        ("/v1/projects/{project}/secrets".to_string(), Scope::Project),
        (
            "/v1/projects/{project}/packages/{package}/secrets".to_string(),
            Scope::Package,
        ),
        ("/v1/users/{user}/secrets".to_string(), Scope::User),
    ]
}

/// The routes of one secret scope. `needs` are, in order: listing names; writing (create,
/// import, set, update, delete); reading a value; wrapping a value.
fn secret_routes(base: &str, needs: [Need; 4]) -> Vec<Route> {
    use model as m;
    let [list, write, read, wrap] = needs;
    let one = format!("{base}/{{name}}");
    vec![
        route(Method::GET, base, list, get(secrets::list))
            .doc("List a scope's secrets, folders walked: names and metadata, never values")
            .query::<m::SecretsQuery>()
            .gives::<m::SecretList>(200),
        route(Method::POST, base, write, post(secrets::create))
            .doc("Create a secret (refused if the name is taken)")
            .takes::<m::CreateSecret>()
            .gives::<m::SecretWritten>(201),
        route(Method::PUT, base, write, put(secrets::import))
            .doc("Import a secrets.json object, all or nothing")
            .takes::<m::ImportSecrets>()
            .gives::<m::Imported>(200),
        route(Method::GET, &one, read, get(secrets::read))
            .doc("Read a secret's value, or a kept version's (audited); a name in a folder is one path segment (team%2Fdb)")
            .query::<m::SecretQuery>()
            .gives::<m::SecretRead>(200),
        route(
            Method::GET,
            &format!("{one}/versions"),
            list,
            get(secrets::versions),
        )
        .doc("A secret's kept versions, oldest first: numbers and times, never values")
        .gives::<m::SecretVersions>(200),
        route(
            Method::POST,
            &format!("{one}/rollback"),
            write,
            post(secrets::rollback),
        )
        .doc("Make a kept version's value current again, as a new version")
        .takes::<m::SecretRollback>()
        .gives::<m::SecretWritten>(200),
        route(Method::PUT, &one, write, put(secrets::set))
            .doc("Set a secret's value, creating it if need be")
            .takes::<m::SetSecret>()
            .gives::<m::SecretWritten>(200),
        route(Method::PATCH, &one, write, patch(secrets::update))
            .doc("Replace an existing secret's value, or with no `value` change only its description and labels (no new version)")
            .takes::<m::UpdateSecret>()
            .gives::<m::SecretWritten>(200),
        route(Method::DELETE, &one, write, delete(secrets::remove))
            .doc("Delete a secret; refused 409 `in_use`, naming them, while serving package versions bind it, unless `force=true`")
            .query::<m::DeleteSecret>()
            .no_content(),
        route(
            Method::POST,
            &format!("{one}/wrap"),
            wrap,
            post(secrets::wrap),
        )
        .doc("Wrap a secret's value in a single-use token (audited)")
        .may_take::<m::Wrap>()
        .gives::<m::Wrapped>(201),
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
        // The web console's files: static, public, outside /v1 and its policy table.
        .route("/", get(console::index))
        .route("/console/{file}", get(console::asset))
        .fallback(no_route)
        .with_state(app)
}

/// The answer for a path no route takes. A secret in a folder is one path segment, its `/`
/// written `%2F` (as GitLab's file API takes paths): a caller who wrote the slash is told so.
async fn no_route(uri: axum::http::Uri) -> ApiError {
    let folder_secret = uri
        .path()
        .split_once("/secrets/")
        .is_some_and(|(_, rest)| rest.trim_end_matches('/').contains('/'));
    if folder_secret {
        return ApiError::not_found(
            "no such API route: a secret name in a folder is one path segment, with its '/' \
             written %2F (…/secrets/team%2Fdb; …/secrets/team%2Fdb/versions)",
        );
    }
    ApiError::not_found("no such API route; see /v1 in the README")
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

/// Liveness and nothing more: anyone may ask, so it tells nothing about what this host serves
/// (the counts are on the metrics listener, `edgeward_packages_serving`).
async fn health() -> Json<model::Health> {
    Json(model::Health {
        status: "ok".into(),
    })
}

/// Whether this host can do its work: its store answers, its change feed is connected, its
/// secret backend answers. For load balancers: 503 takes the host out of rotation (it keeps
/// serving what it has to whoever still reaches it). Causes are logged, not shown to callers.
async fn ready(State(app): State<Arc<App>>) -> (StatusCode, Json<model::Ready>) {
    use model::PartState;
    let (health, secrets) = tokio::join!(app.store.health(), app.cache.ping());
    let word = |r: &Result<(), String>, what: &str| match r {
        Ok(()) => PartState::Ok,
        Err(e) => {
            tracing::warn!(error = %e, "not ready: {what}");
            PartState::Unavailable
        }
    };
    let secrets = secrets.map_err(|e| e.to_string());
    let body = model::Ready {
        ready: health.store.is_ok() && health.feed.is_ok() && secrets.is_ok(),
        store: word(&health.store, "metadata store"),
        feed: word(&health.feed, "change feed"),
        secrets: word(&secrets, "secret backend"),
        engine: app.store.engine().to_string(),
    };
    let status = if body.ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body))
}

async fn create_project(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    Body(body): Body<model::CreateProject>,
) -> Result<(StatusCode, Json<model::ProjectCreated>), ApiError> {
    let name = Name::parse("project", &body.name)?;
    app.store
        .create_project(name.to_string(), caller.principal.user.clone())
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(model::ProjectCreated {
            name: name.to_string(),
        }),
    ))
}

async fn list_projects(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
) -> Result<Json<model::ProjectList>, ApiError> {
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
    let projects = app
        .store
        .list_projects()
        .await?
        .into_iter()
        .filter(|row| p.platform_admin || mine.contains(&row.name))
        .map(project_model)
        .collect();
    Ok(Json(model::ProjectList { projects }))
}

fn project_model(p: crate::store::ProjectRow) -> model::Project {
    model::Project {
        name: p.name,
        created_at: rfc3339(p.created_at),
        created_by: p.created_by,
        members_read_secrets: p.members_read_secrets,
    }
}

/// `PATCH /v1/projects/{project}`: a project admin's settings. Audited as every write is.
async fn update_project(
    State(app): State<Arc<App>>,
    Path(project): Path<String>,
    body: Result<Body<model::ProjectSettings>, ApiError>,
) -> Result<Json<model::Project>, ApiError> {
    let project = project_name(&app, &project).await?;
    let Body(settings) = body?;
    if let Some(on) = settings.members_read_secrets {
        app.store
            .set_members_read_secrets(project.to_string(), on)
            .await?;
        tracing::info!(%project, members_read_secrets = on, "project setting changed");
    }
    let row = app
        .store
        .list_projects()
        .await?
        .into_iter()
        .find(|p| p.name == project.as_str())
        .ok_or_else(|| ApiError::not_found(format!("no project {project:?}")))?;
    Ok(Json(project_model(row)))
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
) -> Result<Json<model::PackageList>, ApiError> {
    let project = project_name(&app, &project).await?;
    let packages = app
        .store
        .list_packages(project.to_string())
        .await?
        .into_iter()
        .map(|p| model::PackageSummary {
            name: p.name,
            current_version: p.current_version,
            versions: p.versions,
            created_at: rfc3339(p.created_at),
        })
        .collect();
    Ok(Json(model::PackageList {
        project: project.to_string(),
        packages,
    }))
}

async fn show_package(
    State(app): State<Arc<App>>,
    Path((project, package)): Path<(String, String)>,
) -> Result<Json<model::Package>, ApiError> {
    let project = Name::parse("project", &project)?;
    let package = Name::parse("package", &package)?;
    let (pkg, versions) = app
        .store
        .list_versions(project.to_string(), package.to_string())
        .await?;
    let versions = versions
        .into_iter()
        .map(|v| model::PackageVersion {
            version: v.version,
            sha256: v.sha256,
            size: v.size,
            manifest: serde_json::from_str::<serde_json::Value>(&v.manifest)
                .unwrap_or(serde_json::Value::Null),
            created_at: rfc3339(v.created_at),
            created_by: v.created_by,
            current: Some(v.version) == pkg.current_version,
        })
        .collect();
    Ok(Json(model::Package {
        project: project.to_string(),
        name: package.to_string(),
        current_version: pkg.current_version,
        versions,
    }))
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

async fn rollback(
    State(app): State<Arc<App>>,
    Path((project, package)): Path<(String, String)>,
    MaybeBody(body): MaybeBody<model::Rollback>,
) -> Result<Json<model::RolledBack>, ApiError> {
    let project = Name::parse("project", &project)?;
    let package = Name::parse("package", &package)?;
    let version = app
        .packages
        .rollback(&project, &package, body.version)
        .await?;
    Ok(Json(model::RolledBack {
        project: project.to_string(),
        package: package.to_string(),
        version,
    }))
}
