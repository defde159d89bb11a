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
    /// A project-scope secret's value: the project's admins, or any member where the project
    /// lets members read its values (`members_read_secrets`, EdgeSecrets' org secrets).
    ProjectSecretValue,
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
    let target = audit_target(request.uri().path());
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

    let reads_value = response.extensions().get::<ValueRead>().is_some();
    let anonymous_failure = actor.1.is_none() && !response.status().is_success();
    let suppressed = if anonymous_failure && (is_mutating(&method) || reads_value) {
        let ip = remote
            .as_deref()
            .and_then(|r| r.parse::<SocketAddr>().ok())
            .map(|a| a.ip());
        match ANONYMOUS_FAILURES.admit(ip, now_ms()) {
            Some(suppressed) => suppressed,
            None => return response,
        }
    } else {
        0
    };
    if is_mutating(&method) || reads_value {
        let status = response.status();
        let outcome = match status {
            s if s.is_success() => "ok",
            StatusCode::UNAUTHORIZED => "unauthenticated",
            StatusCode::FORBIDDEN => "denied",
            s if s.is_client_error() => "rejected",
            _ => "error",
        };
        // The handler says which scope a call concerned; a call refused before or by its
        // handler gets the scope its route names.
        let scope = response
            .extensions()
            .get::<AuditScope>()
            .map(|s| s.0)
            .or_else(|| route_scope(&route))
            .map(str::to_string);
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
        let row = AuditRow {
            id: 0,
            at: now_ms(),
            actor: actor.0,
            token_id: actor.1,
            action: format!(
                "{method} {}",
                if route.is_empty() { &target } else { &route }
            ),
            detail,
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

/// Set on a response by a handler whose audit record needs more than the route says (the id
/// of a token it created, say). Never a value or a token.
#[derive(Debug, Clone)]
pub struct AuditDetail(pub String);

/// The longest `target` kept in an audit record, in characters.
pub const MAX_AUDIT_TARGET: usize = 512;

/// The path as an audit record keeps it: credentials redacted ([`auth::redact_tokens`]),
/// then cut to [`MAX_AUDIT_TARGET`] characters.
pub fn audit_target(path: &str) -> String {
    let mut target = auth::redact_tokens(path);
    if target.chars().count() > MAX_AUDIT_TARGET {
        target = target.chars().take(MAX_AUDIT_TARGET).collect();
        target.push('…');
    }
    target
}

/// Per key: (second, records kept in it, records not kept since the last kept one).
type FoldTable<K> = std::collections::HashMap<K, (i64, u32, u64)>;

/// A limit on audit records of one kind per key and second, so that a flood cannot grow the
/// log without bound and one noisy key cannot hide another's records. What is over the limit
/// is counted, and the count written with that key's next record that is kept: repeats fold
/// into one row with a count.
pub struct AuditLimit<K> {
    state: std::sync::Mutex<Option<FoldTable<K>>>,
    per_second: u32,
}

impl<K: std::hash::Hash + Eq> AuditLimit<K> {
    /// Keys tracked at once; past that the table starts again (a bound on memory).
    const KEYS: usize = 10_000;

    /// A limit of `per_second` records per key.
    pub const fn new(per_second: u32) -> AuditLimit<K> {
        AuditLimit {
            state: std::sync::Mutex::new(None),
            per_second,
        }
    }

    /// Records kept per second and key.
    pub fn per_second(&self) -> u32 {
        self.per_second
    }

    /// `Some(suppressed so far)` if a record for `key` may be written now, `None` if it is
    /// over the limit.
    pub fn admit(&self, key: K, now_ms: i64) -> Option<u64> {
        let Ok(mut guard) = self.state.lock() else {
            return Some(0);
        };
        let table = guard.get_or_insert_with(std::collections::HashMap::new);
        if table.len() >= Self::KEYS && !table.contains_key(&key) {
            table.clear();
        }
        let s = table.entry(key).or_insert((0, 0, 0));
        let second = now_ms / 1000;
        if s.0 != second {
            s.0 = second;
            s.1 = 0;
        }
        if s.1 >= self.per_second {
            s.2 += 1;
            return None;
        }
        s.1 += 1;
        Some(std::mem::take(&mut s.2))
    }
}

/// Audit records of anonymous failures (a missing or bad token, a bad wrapping token), per
/// client address: 20 a second.
static ANONYMOUS_FAILURES: AuditLimit<Option<std::net::IpAddr>> = AuditLimit::new(20);

/// Set on a response (as an extension) by a handler that returned a secret value, so the call
/// is audited like a write.
#[derive(Debug, Clone, Copy)]
pub struct ValueRead;

/// The secret scope a route pattern is about, if it is a secret route.
fn route_scope(route: &str) -> Option<&'static str> {
    if route.starts_with("/v1/secrets/platform") {
        Some("platform")
    } else if route.starts_with("/v1/users/{user}/secrets") {
        Some("user")
    } else if route.starts_with("/v1/projects/{project}/packages/{package}/secrets") {
        Some("package")
    } else if route.starts_with("/v1/projects/{project}/secrets") {
        Some("project")
    } else {
        None
    }
}

/// Set on a response by a handler whose call concerned one secret scope.
#[derive(Debug, Clone, Copy)]
pub struct AuditScope(pub &'static str);

type Refusal = (Option<Box<Principal>>, ApiError);

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
    let mut header = parts
        .headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    // Without an Authorization header, the console's session cookie: never from a page of
    // another site, and a change only with the session's CSRF token.
    let mut session = false;
    let cookie = super::session::session_token(&parts.headers).map_err(|e| (None, e.error()))?;
    if header.is_none()
        && let Some(token) = cookie
    {
        if !super::session::same_site(&parts.headers) {
            return Err((
                None,
                ApiError::new(
                    StatusCode::FORBIDDEN,
                    ErrorCode::Denied,
                    "the session cookie is accepted only from the console's own pages (Sec-Fetch-Site: same-origin)",
                ),
            ));
        }
        if is_mutating(&parts.method) && !super::session::csrf_ok(&parts.headers, &token) {
            return Err((
                None,
                ApiError::new(
                    StatusCode::FORBIDDEN,
                    ErrorCode::Denied,
                    "a change made with the session cookie needs its X-CSRF-Token header",
                ),
            ));
        }
        header = Some(format!("Bearer {token}"));
        session = true;
    }
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
    let deny = |p: &Principal, message: String| {
        Err((
            Some(Box::new(p.clone())),
            ApiError::new(StatusCode::FORBIDDEN, ErrorCode::Denied, message),
        ))
    };
    let role = match project {
        Some(project) => app
            .store
            .role_of(project.to_string(), principal.user.clone())
            .await
            .map_err(|e| (Some(Box::new(principal.clone())), ApiError::from(e)))?,
        None => None,
    };
    match need {
        Need::Public | Need::Authenticated => {}
        Need::PlatformAdmin if principal.platform_admin => {}
        Need::PlatformAdmin => {
            return deny(&principal, "this needs a platform admin".into());
        }
        Need::Project(_) | Need::ProjectSecretValue if principal.platform_admin => {}
        Need::ProjectSecretValue => match role {
            None => {
                let project = project.unwrap_or_default();
                return Err((
                    Some(Box::new(principal)),
                    ApiError::not_found(format!("no project {project:?}")),
                ));
            }
            Some(Role::Admin) => {}
            Some(have) => {
                let open = app
                    .store
                    .members_read_secrets(project.unwrap_or_default().to_string())
                    .await
                    .map_err(|e| (Some(Box::new(principal.clone())), ApiError::from(e)))?;
                if !open {
                    return deny(
                        &principal,
                        format!(
                            "reading a project secret's value needs the admin role in the \
                             project, or the project's members_read_secrets setting; you are {}",
                            have.as_str()
                        ),
                    );
                }
            }
        },
        Need::Project(wanted) => match role {
            None => {
                let project = project.unwrap_or_default();
                return Err((
                    Some(Box::new(principal)),
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
                let asked = audit_project(query);
                let is_admin = match &asked {
                    Some(p) => {
                        app.store
                            .role_of(p.clone(), principal.user.clone())
                            .await
                            .map_err(|e| (Some(Box::new(principal.clone())), ApiError::from(e)))?
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
    Ok(Some(Caller {
        principal,
        user_key,
        session,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_audit_limit_keeps_twenty_a_second_per_key_and_counts_the_rest_into_the_next() {
        let limit: AuditLimit<&str> = AuditLimit::new(20);
        let kept = (0..65)
            .filter(|_| limit.admit("a", 1_000).is_some())
            .count();
        assert_eq!(kept, 20);
        // Another key is not held back by the first one's flood.
        assert_eq!(limit.admit("b", 1_500), Some(0));
        // The next second's first record carries the count of those not kept.
        assert_eq!(limit.admit("a", 2_000), Some(45));
        assert_eq!(limit.admit("a", 2_001), Some(0));
    }

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
