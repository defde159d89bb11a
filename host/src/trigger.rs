//! The data plane: `ANY /{project}/{package}/{rest…}` runs the package's current version.
//!
//! The guest sees `/{rest…}` with the query, the headers and the body; its response is
//! streamed back with an `x-edgeward-execution-id` header. Unknown routes get a JSON 404.

use crate::names::Name;
use crate::runtime::execute::error_response;
use crate::runtime::{Trigger, execute};
use crate::server::App;
use crate::store::ExecutionRow;
use http::uri::{Authority, PathAndQuery, Uri};
use hyper::body::Incoming;
use std::sync::Arc;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;

/// Where a request goes: project, package, and what the guest should see as its path.
#[derive(Debug, PartialEq, Eq)]
pub struct Route {
    /// The project.
    pub project: Name,
    /// The package.
    pub package: Name,
    /// `/{rest…}` plus `?query` if any.
    pub path_and_query: String,
}

/// Splits `/{project}/{package}/{rest…}`. `None` for anything that cannot name a package
/// (including `..` and other names outside the naming rule).
pub fn route(path: &str, query: Option<&str>) -> Option<Route> {
    let path = path.strip_prefix('/')?;
    let (project, rest) = path.split_once('/').unwrap_or((path, ""));
    let (package, rest) = match rest.split_once('/') {
        Some((package, rest)) => (package, format!("/{rest}")),
        None => (rest, "/".to_string()),
    };
    let project = Name::parse("project", project).ok()?;
    let package = Name::parse("package", package).ok()?;
    let path_and_query = match query {
        Some(q) => format!("{rest}?{q}"),
        None => rest,
    };
    Some(Route {
        project,
        package,
        path_and_query,
    })
}

/// Handles one data-plane request.
pub async fn handle(
    app: Arc<App>,
    request: hyper::Request<Incoming>,
) -> hyper::Response<HyperOutgoingBody> {
    let execution_id = uuid::Uuid::now_v7().to_string();
    let Some(route) = route(request.uri().path(), request.uri().query()) else {
        return error_response(
            404,
            "not_found",
            "no function here: call /{project}/{package}/…",
            None,
        );
    };
    let Some(deployed) = app
        .packages
        .serving(route.project.as_str(), route.package.as_str())
    else {
        return error_response(
            404,
            "not_found",
            &format!("no package {}/{}", route.project, route.package),
            None,
        );
    };

    // The path only: a query string is the caller's and may carry its own credentials.
    tracing::debug!(
        execution = %execution_id, project = %route.project, package = %route.package,
        path = %crate::auth::redact_tokens(route.path_and_query.split('?').next().unwrap_or_default()),
        "request routed"
    );
    let (mut parts, body) = request.into_parts();
    // A user's Edgeward token makes this execution theirs (for user-scope secrets). It is
    // checked here and never passed on; any other Authorization header is the function's.
    let mut user = None;
    let ours = parts
        .headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(crate::auth::bearer)
        .filter(|t| t.starts_with(crate::auth::TOKEN_PREFIX))
        .map(str::to_string);
    if let Some(token) = ours {
        parts.headers.remove(http::header::AUTHORIZATION);
        match crate::auth::authenticate_token(&app.store, &token).await {
            Ok(principal) => user = Some(principal.user),
            Err(crate::auth::AuthError::Unauthenticated(m)) => {
                crate::server::drain(body, 1 << 20).await;
                return error_response(401, "unauthenticated", m, Some(&execution_id));
            }
            Err(e) => {
                tracing::error!(error = %e, "token check failed");
                return error_response(
                    503,
                    "unavailable",
                    "cannot check the token now",
                    Some(&execution_id),
                );
            }
        }
    }
    let authority = parts
        .headers
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.parse::<Authority>().ok())
        .unwrap_or_else(|| Authority::from_static("localhost"));
    let uri = PathAndQuery::try_from(route.path_and_query.as_str())
        .ok()
        .and_then(|pq| {
            Uri::builder()
                .scheme("http")
                .authority(authority)
                .path_and_query(pq)
                .build()
                .ok()
        });
    let Some(uri) = uri else {
        return error_response(400, "bad_request", "the request path is not valid", None);
    };
    parts.uri = uri;
    let request = hyper::Request::from_parts(parts, body);

    let recorder_app = app.clone();
    let pending = app.recorder.expect();
    let on_done = move |row: ExecutionRow| {
        let _pending = pending;
        // Names and scopes only: output may hold secret values and is never logged. Successful
        // executions log at debug: their record is the access log, and a line per request on
        // stderr would cost more than the request (EDGEWARD_LOG=debug shows them).
        let duration_ms = row.duration_us as f64 / 1000.0;
        if row.status == "ok" {
            tracing::debug!(
                execution = %row.id, project = %row.project, package = %row.package,
                version = row.version, status = %row.status, http_status = ?row.http_status,
                duration_ms, secrets = ?row.secrets, "execution finished"
            );
        } else {
            tracing::warn!(
                execution = %row.id, project = %row.project, package = %row.package,
                version = row.version, status = %row.status, http_status = ?row.http_status,
                duration_ms, secrets = ?row.secrets, "execution failed"
            );
        }
        recorder_app.recorder.record(row);
    };
    execute(
        &app.runtime,
        deployed,
        app.backend.clone(),
        Trigger {
            id: execution_id,
            user,
        },
        request,
        on_done,
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        let r = route("/acme/hello/a/b", Some("x=1")).unwrap();
        assert_eq!(
            (
                r.project.as_str(),
                r.package.as_str(),
                r.path_and_query.as_str()
            ),
            ("acme", "hello", "/a/b?x=1")
        );
        assert_eq!(route("/acme/hello", None).unwrap().path_and_query, "/");
        assert_eq!(route("/acme/hello/", None).unwrap().path_and_query, "/");
        for bad in [
            "/",
            "/acme",
            "/acme/",
            "/acme/../x",
            "/../acme/hello",
            "/Acme/hello",
            "//x",
        ] {
            assert!(route(bad, None).is_none(), "{bad}");
        }
    }
}
