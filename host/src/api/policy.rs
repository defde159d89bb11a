//! Who may call what: one table, applied by one middleware to every route.
//!
//! A route not in the table needs a platform admin (fail closed). Outsiders asking about a
//! project get `404 not_found`, as if it did not exist, so a project's existence does not leak;
//! members with too small a role get `403 denied`. Every state-changing call, and every call
//! that reads a secret value, is written to the audit log with its outcome.

use super::ApiError;
use crate::auth::{self, Principal};
use crate::server::App;
use crate::store::{AuditRow, Role, now_ms};
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
}

/// The policy table.
pub fn need(method: &Method, route: &str) -> Need {
    use Need::*;
    const P: &str = "/v1/projects/{project}";
    let m = method.as_str();
    match (m, route) {
        ("GET", "/v1/health") => Public,
        ("GET", "/v1/whoami") => Authenticated,
        ("GET", "/v1/projects") => Authenticated,
        ("POST", "/v1/projects") => PlatformAdmin,
        ("GET", "/v1/users") | ("POST", "/v1/users") => PlatformAdmin,
        ("GET" | "POST", "/v1/users/{user}/tokens") => SelfOrPlatformAdmin,
        ("DELETE", "/v1/users/{user}/tokens/{token}") => SelfOrPlatformAdmin,
        ("GET", "/v1/audit") => AuditReader,
        // The wrapping token is the credential.
        ("POST", "/v1/unwrap") => Public,
        _ if route.starts_with("/v1/secrets/platform") => PlatformAdmin,
        _ if route.starts_with("/v1/users/{user}/secrets") => SelfOnly,
        _ => match route.strip_prefix(P) {
            // Project scope: names for members, everything else for project admins.
            Some("/secrets") if m == "GET" => Project(Role::Viewer),
            Some(r) if r.starts_with("/secrets") => Project(Role::Admin),
            // Package scope: names for members, writes for developers, values for admins.
            Some("/packages/{package}/secrets") if m == "GET" => Project(Role::Viewer),
            Some("/packages/{package}/secrets/{name}") if m == "GET" => Project(Role::Admin),
            Some("/packages/{package}/secrets/{name}/wrap") => Project(Role::Admin),
            Some(r) if r.starts_with("/packages/{package}/secrets") => Project(Role::Developer),
            Some(
                "/packages"
                | "/packages/{package}"
                | "/members"
                | "/executions"
                | "/executions/{id}",
            ) if m == "GET" => Project(Role::Viewer),
            Some("/packages/{package}") if m == "DELETE" => Project(Role::Developer),
            Some("/packages/{package}/versions" | "/packages/{package}/rollback")
                if m == "POST" =>
            {
                Project(Role::Developer)
            }
            Some("/members/{user}") if m == "PUT" || m == "DELETE" => Project(Role::Admin),
            _ => PlatformAdmin,
        },
    }
}

/// The caller of a request that passed the policy.
#[derive(Debug, Clone)]
pub struct Caller {
    /// Who.
    pub principal: Principal,
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
    let target = crate::auth::redact_tokens(request.uri().path()).into_owned();
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
            crate::server::drain(body, app.max_upload_bytes + (1 << 20)).await;
            e.into_response()
        }
    };

    let reads_value = response.extensions().get::<ValueRead>().is_some();
    if is_mutating(&method) || reads_value {
        let status = response.status();
        let outcome = match status {
            s if s.is_success() => "ok",
            StatusCode::UNAUTHORIZED => "unauthenticated",
            StatusCode::FORBIDDEN => "denied",
            s if s.is_client_error() => "rejected",
            _ => "error",
        };
        let scope = response
            .extensions()
            .get::<AuditScope>()
            .map(|s| s.0.to_string());
        let row = AuditRow {
            id: 0,
            at: now_ms(),
            actor: actor.0,
            token_id: actor.1,
            action: format!(
                "{method} {}",
                if route.is_empty() { &target } else { &route }
            ),
            target,
            project,
            scope,
            remote,
            status: status.as_u16(),
            outcome: outcome.into(),
        };
        if let Err(e) = app.store.append_audit(row).await {
            tracing::error!(error = %e, "could not write the audit log");
        }
    }
    response
}

/// Set on a response (as an extension) by a handler that returned a secret value, so the call
/// is audited like a write.
#[derive(Debug, Clone, Copy)]
pub struct ValueRead;

/// Set on a response by a handler whose call concerned one secret scope.
#[derive(Debug, Clone, Copy)]
pub struct AuditScope(pub &'static str);

type Refusal = (Option<Principal>, ApiError);

async fn authorise(
    app: &App,
    parts: &axum::http::request::Parts,
    need: Need,
    project: Option<&str>,
    user: Option<String>,
    query: &str,
) -> Result<Option<Caller>, Refusal> {
    if need == Need::Public {
        return Ok(None);
    }
    let header = parts
        .headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let principal = auth::authenticate(&app.store, header)
        .await
        .map_err(|e| (None, ApiError::from(e)))?;
    let deny = |p: &Principal, message: String| {
        Err((
            Some(p.clone()),
            ApiError::new(StatusCode::FORBIDDEN, "denied", message),
        ))
    };
    let role = match project {
        Some(project) => app
            .store
            .role_of(project.to_string(), principal.user.clone())
            .await
            .map_err(|e| (Some(principal.clone()), ApiError::from(e)))?,
        None => None,
    };
    match need {
        Need::Public | Need::Authenticated => {}
        Need::PlatformAdmin if principal.platform_admin => {}
        Need::PlatformAdmin => {
            return deny(&principal, "this needs a platform admin".into());
        }
        Need::Project(_) if principal.platform_admin => {}
        Need::Project(wanted) => match role {
            None => {
                let project = project.unwrap_or_default();
                return Err((
                    Some(principal),
                    ApiError::not_found(format!("no project {project:?}")),
                ));
            }
            Some(have) if have < wanted => {
                return deny(
                    &principal,
                    format!(
                        "this needs the {} role in the project; you are {}",
                        wanted.as_str(),
                        have.as_str()
                    ),
                );
            }
            Some(_) => {}
        },
        Need::SelfOnly => {
            if user.as_deref() != Some(principal.user.as_str()) {
                return deny(
                    &principal,
                    "user secrets are readable and writable by that user alone".into(),
                );
            }
        }
        Need::SelfOrPlatformAdmin => {
            if !principal.platform_admin && user.as_deref() != Some(principal.user.as_str()) {
                return deny(
                    &principal,
                    "only that user or a platform admin may do this".into(),
                );
            }
        }
        Need::AuditReader => {
            if !principal.platform_admin {
                let asked = query
                    .split('&')
                    .find_map(|kv| kv.strip_prefix("project="))
                    .map(str::to_string);
                let is_admin = match &asked {
                    Some(p) => {
                        app.store
                            .role_of(p.clone(), principal.user.clone())
                            .await
                            .map_err(|e| (Some(principal.clone()), ApiError::from(e)))?
                            == Some(Role::Admin)
                    }
                    None => false,
                };
                if !is_admin {
                    return deny(
                        &principal,
                        "platform admins read the whole audit log; project admins read their \
                         project's with ?project=NAME"
                            .into(),
                    );
                }
            }
        }
    }
    Ok(Some(Caller { principal }))
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
            need(&Method::GET, "/v1/users/{user}/secrets/{name}"),
            Need::SelfOnly
        );
    }
}
