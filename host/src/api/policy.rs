//! Who may call what: one table, applied by one middleware to every route.
//!
//! A route not in the table needs a platform admin (fail closed). Outsiders asking about a
//! project get `404 not_found`, as if it did not exist, so a project's existence does not leak;
//! members with too small a role get `403 denied`. Every state-changing call, and every call
//! that reads a secret value, is written to the audit log with its outcome.

use super::ApiError;
use crate::app::App;
use crate::auth::{self, Principal};
use crate::code::ErrorCode;
use crate::names::Scope;
use crate::store::Role;
use axum::extract::{FromRequestParts, MatchedPath, RawPathParams, Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::net::SocketAddr;
use std::sync::Arc;

/// The peer address of an API connection, set by the server for each request.
#[derive(Debug, Clone, Copy)]
pub struct RemoteAddr(pub SocketAddr);

/// What a route needs of its caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Nothing: no token required.
    Public,
    /// Any valid token.
    Authenticated,
    /// A platform admin.
    PlatformAdmin,
    /// At least this role in the `{project}` of the path (platform admins always pass).
    Project(Role),
    /// The `{user}` of the path themselves, or a platform admin.
    SelfOrPlatformAdmin,
    /// A platform admin, or an admin of the project named by `?project=`.
    AuditReader,
    /// The `{user}` of the path themselves, and nobody else (user-scope secrets).
    SelfOnly,
    /// A project-scope secret's value: the project's admins, or any member where the project
    /// lets members read its values (`members_read_secrets`, EdgeSecrets' org secrets).
    ProjectSecretValue,
}

impl From<crate::secrets::policy::Right> for Need {
    fn from(right: crate::secrets::policy::Right) -> Need {
        use crate::secrets::policy::Right;
        match right {
            Right::PlatformAdmin => Need::PlatformAdmin,
            Right::Role(role) => Need::Project(role),
            Right::ProjectValue => Need::ProjectSecretValue,
            Right::Owner => Need::SelfOnly,
        }
    }
}

/// The one project a `/v1/audit` query names, decoded as the handler decodes it; `None` when
/// it names none or more than one (`?project=p1&%70roject=p2` must not let p1's admin read
/// p2's log through a parser that keeps the other one).
fn audit_project(query: &str) -> Option<String> {
    let mut named = form_urlencoded::parse(query.as_bytes()).filter(|(k, _)| k == "project");
    match (named.next(), named.next()) {
        (Some((_, p)), None) => Some(p.into_owned()),
        _ => None,
    }
}

/// What `method` on `route` (a path pattern) needs, from the one route table
/// ([`super::routes`]). `HEAD` is judged as `GET` (axum answers `HEAD` with the `GET` handler,
/// so it must not fall to a weaker rule); a method or route not in the table needs a platform
/// admin (fail closed).
pub fn need(method: &Method, route: &str) -> Need {
    /// Path pattern, then method: looked up by `&str` without building a key per request.
    type Table = std::collections::HashMap<String, Vec<(Method, Need)>>;
    static TABLE: std::sync::OnceLock<Table> = std::sync::OnceLock::new();
    let table = TABLE.get_or_init(|| {
        let mut table = Table::new();
        for r in super::routes() {
            table.entry(r.path).or_default().push((r.method, r.need));
        }
        table
    });
    let method = if method == Method::HEAD {
        &Method::GET
    } else {
        method
    };
    table
        .get(route)
        .and_then(|methods| methods.iter().find(|(m, _)| m == method))
        .map_or(Need::PlatformAdmin, |(_, need)| *need)
}

/// The caller of a request that passed the policy.
#[derive(Debug, Clone)]
pub struct Caller {
    /// Who.
    pub principal: Principal,
    /// Their user data key, opened with the token of this request, on routes about that
    /// user (their secrets and tokens) when the token holds a key slot.
    pub user_key: Option<std::sync::Arc<crate::secrets::userkey::UserKey>>,
    /// Whether the console's session cookie authenticated the request (not a bearer token).
    pub session: bool,
}

fn is_mutating(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// The middleware: authenticate, authorise by the table, run, audit.
pub async fn enforce(State(app): State<Arc<App>>, request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string())
        .unwrap_or_default();
    let target = request.uri().path().to_string();
    let query = request.uri().query().unwrap_or_default().to_string();
    let remote = request
        .extensions()
        .get::<RemoteAddr>()
        .map(|r| r.0.to_string());
    let (mut parts, body) = request.into_parts();
    let params: Vec<(String, String)> = RawPathParams::from_request_parts(&mut parts, &app)
        .await
        .map(|p| {
            p.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        })
        .unwrap_or_default();
    let param = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let project = param("project");
    let need = need(&method, &route);

    let mut actor = ("anonymous".to_string(), None);
    let response = match authorise(
        &app,
        &parts,
        need,
        project.as_deref(),
        param("user"),
        &query,
    )
    .await
    {
        Ok(caller) => {
            if let Some(caller) = &caller {
                actor = (
                    caller.principal.user.clone(),
                    Some(caller.principal.token_id.clone()),
                );
            }
            let mut request = Request::from_parts(parts, body);
            if let Some(caller) = caller {
                request.extensions_mut().insert(caller);
            }
            next.run(request).await
        }
        Err((who, e)) => {
            if let Some(p) = who {
                actor = (p.user, Some(p.token_id));
            }
            // Read what the client is still sending (bounded), so it sees this answer rather
            // than a connection closed under its upload.
            crate::net::drain(body, app.max_upload_bytes + (1 << 20)).await;
            e.into_response()
        }
    };

    let call = Call {
        method,
        route,
        target,
        project,
        remote,
    };
    if let Some(entry) = audit_entry(call, actor, &response) {
        crate::audit::record(&app.store, entry).await;
    }
    response
}

/// What the audit record of a call names, taken from the request before it is consumed.
struct Call {
    method: Method,
    route: String,
    target: String,
    project: Option<String>,
    remote: Option<String>,
}

/// Audits a call if it changed anything or returned a value: as its actor (a user with their
/// token's id, or anonymous), with the scope its handler or route names. Anonymous failures are
/// limited per address, the rest folded into a count on the next kept record.
fn audit_entry(
    call: Call,
    actor: (String, Option<String>),
    response: &Response,
) -> Option<crate::audit::Entry> {
    let reads_value = response.extensions().get::<ValueRead>().is_some();
    if !is_mutating(&call.method) && !reads_value {
        return None;
    }
    let status = response.status();
    let suppressed = if actor.1.is_none() && !status.is_success() {
        let ip = call
            .remote
            .as_deref()
            .and_then(|r| r.parse::<SocketAddr>().ok())
            .map(|a| a.ip());
        ANONYMOUS_FAILURES.admit(ip)?
    } else {
        0
    };
    // The handler says which scope a call concerned; a call refused before or by its handler
    // gets the scope its route names.
    let scope = response
        .extensions()
        .get::<AuditScope>()
        .map(|s| s.0)
        .or_else(|| route_scope(&call.route));
    let mut detail = response
        .extensions()
        .get::<AuditDetail>()
        .map(|d| d.0.clone());
    if suppressed > 0 {
        detail = Some(format!(
            "{suppressed} earlier anonymous failures from this address were not recorded \
             (over {} a second)",
            ANONYMOUS_FAILURES.per_second()
        ));
    }
    let pattern = if call.route.is_empty() {
        &call.target
    } else {
        &call.route
    };
    Some(crate::audit::Entry {
        actor: match actor {
            (name, Some(token_id)) => crate::audit::Actor::User {
                name,
                token_id: Some(token_id),
            },
            (_, None) => crate::audit::Actor::Anonymous,
        },
        action: format!("{} {pattern}", call.method),
        target: call.target,
        project: call.project,
        scope,
        remote: call.remote,
        status: status.as_u16(),
        outcome: crate::audit::Outcome::of_status(status.as_u16()),
        detail,
    })
}

/// Set on a response by a handler whose audit record needs more than the route says (the id
/// of a token it created, say). Never a value or a token.
#[derive(Debug, Clone)]
pub struct AuditDetail(pub String);

/// Audit records of anonymous failures (a missing or bad token, a bad wrapping token), per
/// client address: 20 a second.
static ANONYMOUS_FAILURES: crate::audit::Limit<Option<std::net::IpAddr>> =
    crate::audit::Limit::new(20);

/// Set on a response (as an extension) by a handler that returned a secret value, so the call
/// is audited like a write.
#[derive(Debug, Clone, Copy)]
pub struct ValueRead;

/// The secret scope a route pattern is about, if it is a secret route.
fn route_scope(route: &str) -> Option<Scope> {
    super::secret_collections()
        .into_iter()
        .find(|(base, _)| route.starts_with(base.as_str()))
        .map(|(_, scope)| scope)
}

/// Set on a response by a handler whose call concerned one secret scope.
#[derive(Debug, Clone, Copy)]
pub struct AuditScope(pub Scope);

type Denial = (Option<Box<Principal>>, ApiError);

async fn authorise(
    app: &App,
    parts: &axum::http::request::Parts,
    need: Need,
    project: Option<&str>,
    user: Option<String>,
    query: &str,
) -> Result<Option<Caller>, Denial> {
    if need == Need::Public {
        return Ok(None);
    }
    let (header, session) = credential(parts).map_err(|e| (None, e))?;
    let header = header.as_deref();
    let principal = auth::authenticate(&app.store, &app.tokens, header)
        .await
        .map_err(|e| (None, ApiError::from(e)))?;
    // The data key is opened only where the route is about the caller themselves.
    let user_key = match need {
        Need::SelfOnly | Need::SelfOrPlatformAdmin
            if user.as_deref() == Some(principal.user.as_str()) =>
        {
            header
                .and_then(auth::bearer)
                .and_then(|token| principal.open_user_key(token))
        }
        _ => None,
    };
    let asked = Asked {
        need,
        project,
        user: user.as_deref(),
        query,
    };
    if let Err(e) = check(app, &principal, asked).await {
        return Err((Some(Box::new(principal)), e));
    }
    Ok(Some(Caller {
        principal,
        user_key,
        session,
    }))
}

/// The request's credential as an `Authorization` value, and whether it came from the console's
/// session cookie. Without an `Authorization` header, the cookie counts, but never from a page
/// of another site, and for a change only with the session's CSRF token.
fn credential(parts: &axum::http::request::Parts) -> Result<(Option<String>, bool), ApiError> {
    let header = parts
        .headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let cookie = super::session::session_token(&parts.headers).map_err(|e| e.error())?;
    let (None, Some(token)) = (&header, cookie) else {
        return Ok((header, false));
    };
    let denied = |m: &str| ApiError::new(StatusCode::FORBIDDEN, ErrorCode::Denied, m.to_string());
    if !super::session::same_site(&parts.headers) {
        return Err(denied(
            "the session cookie is accepted only from the console's own pages \
             (Sec-Fetch-Site: same-origin)",
        ));
    }
    if is_mutating(&parts.method) && !super::session::csrf_ok(&parts.headers, &token) {
        return Err(denied(
            "a change made with the session cookie needs its X-CSRF-Token header",
        ));
    }
    Ok((Some(format!("Bearer {token}")), true))
}

/// What a route needs, and of what: its project and user path parameters and its query.
#[derive(Clone, Copy)]
struct Asked<'a> {
    need: Need,
    project: Option<&'a str>,
    user: Option<&'a str>,
    query: &'a str,
}

/// Whether `principal` meets the route's need.
async fn check(app: &App, principal: &Principal, asked: Asked<'_>) -> Result<(), ApiError> {
    let deny = |message: String| {
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            ErrorCode::Denied,
            message,
        ))
    };
    let myself = asked.user == Some(principal.user.as_str());
    match asked.need {
        Need::Public | Need::Authenticated => Ok(()),
        Need::PlatformAdmin if principal.platform_admin => Ok(()),
        Need::PlatformAdmin => deny("this needs a platform admin".into()),
        Need::Project(_) | Need::ProjectSecretValue if principal.platform_admin => Ok(()),
        Need::Project(wanted) => {
            let have = project_role(app, principal, asked.project).await?;
            if have < wanted {
                return deny(format!(
                    "this needs the {} role in the project; you are {}",
                    wanted.as_str(),
                    have.as_str()
                ));
            }
            Ok(())
        }
        Need::ProjectSecretValue => {
            let have = project_role(app, principal, asked.project).await?;
            if have == Role::Admin {
                return Ok(());
            }
            let project = asked.project.unwrap_or_default().to_string();
            if app.store.members_read_secrets(project).await? {
                return Ok(());
            }
            deny(format!(
                "reading a project secret's value needs the admin role in the project, or the \
                 project's members_read_secrets setting; you are {}",
                have.as_str()
            ))
        }
        Need::SelfOnly if myself => Ok(()),
        Need::SelfOnly => deny("user secrets are readable and writable by that user alone".into()),
        Need::SelfOrPlatformAdmin if myself || principal.platform_admin => Ok(()),
        Need::SelfOrPlatformAdmin => deny("only that user or a platform admin may do this".into()),
        Need::AuditReader if principal.platform_admin => Ok(()),
        Need::AuditReader => {
            let is_admin = match audit_project(asked.query) {
                Some(p) => app.store.role_of(p, principal.user.clone()).await? == Some(Role::Admin),
                None => false,
            };
            if is_admin {
                return Ok(());
            }
            deny(
                "platform admins read the whole audit log; project admins read their project's \
                 with ?project=NAME"
                    .into(),
            )
        }
    }
}

/// The caller's role in the route's project; a project they are not in does not exist for
/// them (404, so a project's name is not confirmed to outsiders).
async fn project_role(
    app: &App,
    principal: &Principal,
    project: Option<&str>,
) -> Result<Role, ApiError> {
    let project = project.unwrap_or_default();
    app.store
        .role_of(project.to_string(), principal.user.clone())
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no project {project:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_routes_fail_closed() {
        assert_eq!(need(&Method::GET, "/v1/nope"), Need::PlatformAdmin);
        assert_eq!(
            need(&Method::POST, "/v1/projects/{project}/packages"),
            Need::PlatformAdmin
        );
        assert_eq!(
            need(&Method::GET, "/v1/projects/{project}/packages"),
            Need::Project(Role::Viewer)
        );
        assert_eq!(
            need(&Method::PUT, "/v1/projects/{project}/members/{user}"),
            Need::Project(Role::Admin)
        );
        let pkg = "/v1/projects/{project}/packages/{package}/secrets";
        assert_eq!(need(&Method::GET, pkg), Need::Project(Role::Viewer));
        assert_eq!(need(&Method::PUT, pkg), Need::Project(Role::Developer));
        let name = format!("{pkg}/{{name}}");
        assert_eq!(need(&Method::GET, &name), Need::Project(Role::Admin));
        assert_eq!(need(&Method::PATCH, &name), Need::Project(Role::Developer));
        assert_eq!(
            need(&Method::POST, &format!("{name}/wrap")),
            Need::Project(Role::Admin)
        );
        assert_eq!(
            need(&Method::PUT, "/v1/projects/{project}/secrets/{name}"),
            Need::Project(Role::Admin)
        );
        assert_eq!(
            need(&Method::GET, "/v1/projects/{project}/secrets/{name}"),
            Need::ProjectSecretValue
        );
        assert_eq!(
            need(&Method::GET, "/v1/users/{user}/secrets/{name}"),
            Need::SelfOnly
        );
    }
}
