//! The data plane: `ANY /{project}/{package}/{rest…}` runs the package's current version.
//!
//! The guest sees `/{rest…}` with the query, the headers and the body; its response is
//! streamed back with an `x-edgeward-execution-id` header. Unknown routes get a JSON 404.

use crate::app::App;
use crate::code::ErrorCode;
use crate::names::Name;
use crate::runtime::execute::error_response;
use crate::runtime::{Trigger, execute};
use crate::store::ExecutionRow;
use http::uri::{Authority, PathAndQuery, Uri};
use std::sync::Arc;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;

/// Where a request goes: project, package, and what the guest should see as its path.
#[derive(Debug, PartialEq, Eq)]
pub struct Target {
    /// The project.
    pub project: Name,
    /// The package.
    pub package: Name,
    /// `/{rest…}` plus `?query` if any.
    pub path_and_query: String,
}

/// Splits `/{project}/{package}/{rest…}`. `None` for anything that cannot name a package
/// (including `..` and other names outside the naming rule).
pub fn route(path: &str, query: Option<&str>) -> Option<Target> {
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
    Some(Target {
        project,
        package,
        path_and_query,
    })
}

/// The route of a request and the version serving it, or the 404 to answer.
fn serving(
    app: &App,
    request: &hyper::Request<crate::net::IdleBody>,
) -> Result<(Target, Arc<crate::runtime::Deployed>), Box<hyper::Response<HyperOutgoingBody>>> {
    let Some(route) = route(request.uri().path(), request.uri().query()) else {
        return Err(Box::new(error_response(
            404,
            ErrorCode::NotFound,
            "no function here: call /{project}/{package}/…",
            None,
        )));
    };
    let Some(deployed) = app
        .packages
        .serving(route.project.as_str(), route.package.as_str())
    else {
        let message = format!("no package {}/{}", route.project, route.package);
        return Err(Box::new(error_response(
            404,
            ErrorCode::NotFound,
            &message,
            None,
        )));
    };
    Ok((route, deployed))
}

/// Handles one data-plane request.
pub async fn handle(
    app: Arc<App>,
    request: hyper::Request<crate::net::IdleBody>,
) -> hyper::Response<HyperOutgoingBody> {
    let execution_id = uuid::Uuid::now_v7().to_string();
    let (route, deployed) = match serving(&app, &request) {
        Ok(found) => found,
        Err(not_found) => return *not_found,
    };

    // The path only: a query string is the caller's and may carry its own credentials.
    tracing::debug!(
        execution = %execution_id, project = %route.project, package = %route.package,
        path = %crate::credential::redact_tokens(route.path_and_query.split('?').next().unwrap_or_default()),
        "request routed"
    );
    let (mut parts, body) = request.into_parts();
    // A user's Edgeward token makes this execution theirs (for user-scope secrets). Every
    // Authorization header is examined, whatever its scheme's case: any that holds an `ew_`
    // token is removed, so the function never sees an API token, and the token is checked.
    // Two different Edgeward tokens are refused. Any other Authorization header is the
    // function's.
    // The console's session cookie is the API's, never a function's (browsers send cookies to
    // every port of a host).
    crate::cookies::strip_cookie(&mut parts.headers);
    let tokens = match take_edgeward_tokens(&mut parts.headers) {
        Ok(tokens) => tokens,
        Err(message) => {
            crate::net::drain(body, 1 << 20).await;
            return error_response(400, ErrorCode::BadRequest, message, Some(&execution_id));
        }
    };
    let (user, writer) = match tokens {
        // Without a token, a package that writes as itself still writes its own scope.
        None if deployed.manifest.write_secrets_as == crate::manifest::WriteAs::Package => {
            let writer = crate::secrets::writes::Writer::package_only(
                app.store.clone(),
                &execution_id,
                (
                    deployed.project.clone(),
                    deployed.package.clone(),
                    deployed.version,
                ),
                deployed.manifest.write_secrets.clone(),
                app.secret_names,
            );
            (None, Some(Arc::new(writer)))
        }
        None => (None, None),
        Some(token) => match caller(&app, &deployed, &token, &execution_id).await {
            Ok(found) => found,
            Err((response, drain)) => {
                if drain {
                    crate::net::drain(body, 1 << 20).await;
                }
                return *response;
            }
        },
    };
    let Some(uri) = guest_uri(&parts.headers, &route.path_and_query) else {
        return error_response(
            400,
            ErrorCode::BadRequest,
            "the request path is not valid",
            None,
        );
    };
    parts.uri = uri;
    let request = hyper::Request::from_parts(parts, body);

    let on_done = recorder(&app, user.as_ref());
    let mut response = execute(
        &app.runtime,
        deployed,
        app.backend.clone(),
        Trigger {
            id: execution_id,
            user,
            writer,
        },
        request,
        on_done,
    )
    .await;
    // The console's session cookie is the API's: no function sets it (cookies ignore ports).
    crate::cookies::strip_set_cookie(&mut response);
    response
}

/// What the request's Edgeward token makes of the execution: the user it runs as (their scope
/// opened only to a declaring version they granted) and the writer of their secrets. A refusal
/// is the answer to send, and whether the request body is to be read first.
async fn caller(
    app: &App,
    deployed: &Arc<crate::runtime::Deployed>,
    token: &str,
    execution_id: &str,
) -> Result<
    (
        Option<crate::secrets::UserContext>,
        Option<Arc<crate::secrets::writes::Writer>>,
    ),
    (Box<hyper::Response<HyperOutgoingBody>>, bool),
> {
    let principal = match crate::auth::authenticate_token(&app.store, &app.tokens, token).await {
        Ok(principal) => principal,
        Err(crate::auth::AuthError::Unauthenticated(m)) => {
            let refused = error_response(401, ErrorCode::Unauthenticated, m, Some(execution_id));
            return Err((Box::new(refused), true));
        }
        Err(e) => {
            tracing::error!(error = %e, "token check failed");
            let refused = error_response(
                503,
                ErrorCode::Unavailable,
                "cannot check the token now",
                Some(execution_id),
            );
            return Err((Box::new(refused), false));
        }
    };
    // User scope opens only to a version that declares what it wants of it and that the user
    // granted, code and manifest (docs/user-secrets.md); any other version runs with the scope
    // closed. A user's request to a declaring version without a grant is refused before the
    // guest runs.
    let declared = deployed.user_secrets.clone();
    let key = if declared.is_empty() {
        None
    } else {
        let subject = crate::secrets::consent::Subject {
            user: &principal.user,
            project: deployed.project.as_str(),
            package: deployed.package.as_str(),
            sha256: &deployed.sha256,
            manifest_sha256: &deployed.manifest_sha256,
        };
        let opened = principal.open_user_key(token);
        match crate::secrets::consent::check(&app.store, &app.grants, subject, opened).await {
            Ok(key) => Some(key),
            Err(refusal) => {
                let refused = consent_refused(refusal, deployed, execution_id);
                return Err((Box::new(refused), true));
            }
        }
    };
    // Writes as this user, where the manifest grants the scope and the user's rights allow it
    // (checked per write).
    let writer = Arc::new(
        crate::secrets::writes::Writer::new(
            app.store.clone(),
            crate::secrets::writes::Triggered {
                user: &principal.user,
                token_id: &principal.token_id,
                platform_admin: principal.platform_admin,
                key: key.clone(),
                execution: execution_id,
            },
            (
                deployed.project.clone(),
                deployed.package.clone(),
                deployed.version,
            ),
            deployed.manifest.write_secrets.clone(),
            app.secret_names,
        )
        .acting_as_package(deployed.manifest.write_secrets_as == crate::manifest::WriteAs::Package),
    );
    let user = crate::secrets::UserContext {
        name: principal.user,
        key,
        declared,
    };
    Ok((Some(user), Some(writer)))
}

/// The URI the guest sees: its own path and query, under the `Host` the caller named.
fn guest_uri(headers: &http::HeaderMap, path_and_query: &str) -> Option<Uri> {
    let authority = headers
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.parse::<Authority>().ok())
        .unwrap_or_else(|| Authority::from_static("localhost"));
    let pq = PathAndQuery::try_from(path_and_query).ok()?;
    Uri::builder()
        .scheme("http")
        .authority(authority)
        .path_and_query(pq)
        .build()
        .ok()
}

/// What is done with an execution's record when it ends: logged, sealed to the user whose
/// scope it opened (its output kept under their data key, for them alone), and queued.
fn recorder(
    app: &Arc<App>,
    user: Option<&crate::secrets::UserContext>,
) -> impl FnOnce(ExecutionRow, Option<crate::runtime::Unmasked>) + Send + 'static {
    let app = app.clone();
    let pending = app.recorder.expect();
    let sealed = user.and_then(|u| Some((u.name.clone(), u.key.clone()?)));
    move |mut row: ExecutionRow, output| {
        let _pending = pending;
        let sealer = sealed.map(|(user, key)| {
            row.sealed_for = Some(user);
            key
        });
        log_finished(&row);
        app.recorder.record(row, output, sealer);
    }
}

/// One line per finished execution: names and scopes only (output may hold secret values and
/// is never logged). Successful executions log at debug: their record is the access log, and
/// a line per request on stderr would cost more than the request (`EDGEWARD_LOG=debug` shows
/// them).
fn log_finished(row: &ExecutionRow) {
    let duration_ms = row.duration_us as f64 / 1000.0;
    if row.status == "ok" {
        tracing::debug!(
            execution = %row.id, project = %row.project, package = %row.package,
            version = row.version, status = %row.status, http_status = row.http_status,
            duration_ms, secrets = ?row.secrets, "execution finished"
        );
    } else {
        tracing::warn!(
            execution = %row.id, project = %row.project, package = %row.package,
            version = row.version, status = %row.status, http_status = row.http_status,
            duration_ms, secrets = ?row.secrets, "execution failed"
        );
    }
}

/// The answer to a user's request that may not open their scope to `deployed`: what the
/// version asks for, and how to grant it.
fn consent_refused(
    refusal: crate::secrets::consent::Refusal,
    deployed: &crate::runtime::Deployed,
    execution_id: &str,
) -> hyper::Response<HyperOutgoingBody> {
    use crate::secrets::consent::Refusal;
    let package = format!("{}/{}", deployed.project, deployed.package);
    let command = format!(
        "edgeward grants add {package} --version {}",
        deployed.version
    );
    let names = deployed.user_secrets.entries().join(", ");
    let message = match refusal {
        Refusal::Unavailable => {
            return error_response(
                503,
                ErrorCode::Unavailable,
                "cannot check the user's grant now",
                Some(execution_id),
            );
        }
        Refusal::NoKey => format!(
            "{package} version {} reads its caller's user secrets ({names}), and this token \
             opens no user data key (an admin issued it), so it can hold no grant: call with a \
             token you minted or redeemed from an enrollment code",
            deployed.version
        ),
        Refusal::NoGrant => format!(
            "{package} version {} (sha256 {}) asks to read your user secrets ({names}) and you \
             have not granted this code and manifest: review it and run `{command}`",
            deployed.version, deployed.sha256
        ),
    };
    let body = serde_json::json!({
        "error": { "code": ErrorCode::ConsentRequired.as_str(), "message": message },
        "consent": {
            "project": deployed.project.as_str(),
            "package": deployed.package.as_str(),
            "version": deployed.version,
            "sha256": deployed.sha256,
            "manifest_sha256": deployed.manifest_sha256,
            "user_secrets": deployed.user_secrets.entries(),
            "outbound_hosts": deployed.manifest.outbound.hosts,
            "write_secrets": deployed.manifest.write_secrets,
            "command": command,
        }
    });
    crate::runtime::execute::json_response(403, &body, Some(execution_id))
}

/// The first Edgeward API token (`ew_` and 64 hex digits) anywhere in `text`.
fn find_token(text: &str) -> Option<&str> {
    let prefix = crate::auth::TOKEN_PREFIX;
    let mut from = 0;
    while let Some(i) = text[from..].find(prefix) {
        let start = from + i;
        let digits = &text[start + prefix.len()..];
        let n = digits.bytes().take_while(u8::is_ascii_hexdigit).count();
        if n >= 64 {
            return Some(&text[start..start + prefix.len() + 64]);
        }
        from = start + prefix.len();
    }
    None
}

/// The Edgeward token an `Authorization` value carries, in whatever form: a word starting
/// `ew_` under any scheme (`BEARER ew_…`, `Token ew_…`, a bare token), a full token anywhere in
/// the value (`Token token="ew_…"`, `Bearer,ew_…`), or inside Basic credentials (`curl -u
/// me:ew_…`).
fn token_in(value: &http::HeaderValue) -> Option<zeroize::Zeroizing<String>> {
    let text = String::from_utf8_lossy(value.as_bytes());
    if let Some(word) = text
        .split_ascii_whitespace()
        .find(|w| w.starts_with(crate::auth::TOKEN_PREFIX))
    {
        return Some(zeroize::Zeroizing::new(
            find_token(word).unwrap_or(word).to_string(),
        ));
    }
    if let Some(token) = find_token(&text) {
        return Some(zeroize::Zeroizing::new(token.to_string()));
    }
    let (scheme, credentials) = text.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    use base64::Engine as _;
    let decoded = zeroize::Zeroizing::new(
        base64::engine::general_purpose::STANDARD
            .decode(credentials.trim())
            .ok()?,
    );
    let decoded = String::from_utf8_lossy(&decoded);
    find_token(&decoded).map(|t| zeroize::Zeroizing::new(t.to_string()))
}

/// Removes every `Authorization` header that carries an Edgeward API token (under any scheme
/// or none, any case, or inside Basic credentials) and returns the token. Two different tokens
/// are an error.
pub fn take_edgeward_tokens(
    headers: &mut http::HeaderMap,
) -> Result<Option<zeroize::Zeroizing<String>>, &'static str> {
    let all: Vec<http::HeaderValue> = headers
        .get_all(http::header::AUTHORIZATION)
        .iter()
        .cloned()
        .collect();
    if !all.iter().any(|v| token_in(v).is_some()) {
        return Ok(None);
    }
    headers.remove(http::header::AUTHORIZATION);
    let mut found: Option<zeroize::Zeroizing<String>> = None;
    for value in all {
        match token_in(&value) {
            Some(token) => match &found {
                Some(first) if first.as_str() != token.as_str() => {
                    return Err("the request carries two different Edgeward tokens; send one");
                }
                _ => found = Some(token),
            },
            // Not ours: the function's own credential, passed on.
            None => {
                headers.append(http::header::AUTHORIZATION, value);
            }
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_authorization_header_holding_our_token_is_removed() {
        use http::header::AUTHORIZATION;
        let t = "ew_0123";
        for (values, token, left) in [
            (vec!["Bearer ew_0123"], Some(t), vec![]),
            (vec!["BEARER ew_0123"], Some(t), vec![]),
            (vec!["bEaReR   ew_0123 "], Some(t), vec![]),
            (
                vec!["Basic dXNlcjpwdw==", "Bearer ew_0123"],
                Some(t),
                vec!["Basic dXNlcjpwdw=="],
            ),
            (vec!["ew_0123"], Some(t), vec![]),
            (vec!["Bearer ew_0123", "bearer ew_0123"], Some(t), vec![]),
            (vec!["Bearer their-own"], None, vec!["Bearer their-own"]),
        ] {
            let mut h = http::HeaderMap::new();
            for v in &values {
                h.append(AUTHORIZATION, v.parse().unwrap());
            }
            let got = take_edgeward_tokens(&mut h).unwrap();
            assert_eq!(got.as_deref().map(String::as_str), token, "{values:?}");
            let rest: Vec<_> = h
                .get_all(AUTHORIZATION)
                .iter()
                .map(|v| v.to_str().unwrap())
                .collect();
            assert_eq!(rest, left, "{values:?}");
        }
        let mut h = http::HeaderMap::new();
        h.append(AUTHORIZATION, "Bearer ew_1".parse().unwrap());
        h.append(AUTHORIZATION, "Bearer ew_2".parse().unwrap());
        assert!(take_edgeward_tokens(&mut h).is_err());
        // Full tokens in odd places, and inside Basic credentials.
        let full = format!("ew_{}", "ab".repeat(32));
        use base64::Engine as _;
        let basic = base64::engine::general_purpose::STANDARD.encode(format!("me:{full}"));
        for value in [
            format!("Token token=\"{full}\""),
            format!("Bearer,{full}"),
            format!("Basic {basic}"),
        ] {
            let mut h = http::HeaderMap::new();
            h.append(AUTHORIZATION, value.parse().unwrap());
            let got = take_edgeward_tokens(&mut h).unwrap();
            assert_eq!(
                got.as_deref().map(String::as_str),
                Some(full.as_str()),
                "{value}"
            );
            assert!(h.get(AUTHORIZATION).is_none(), "{value}");
        }
        // Basic credentials without a token pass through.
        let mut h = http::HeaderMap::new();
        h.append(AUTHORIZATION, "Basic dXNlcjpwdw==".parse().unwrap());
        assert!(take_edgeward_tokens(&mut h).unwrap().is_none());
        assert!(h.get(AUTHORIZATION).is_some());
    }

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
