//! Browser sessions for the web console: an API token exchanged for an `HttpOnly` cookie.
//!
//! A session is a token of its own, minted for the signed-in user with a 12-hour life and the
//! label `console session`: it expires and is revoked like any token (`edgeward tokens
//! revoke`), sign-out revokes it, and it opens the user's data key when the token signed in
//! with did. The cookie is `HttpOnly` (no script reads it), `SameSite=Strict` (no other site's
//! page sends it), `Secure` behind TLS, and scoped to `/v1`. A request it authenticates that
//! changes anything must carry `X-CSRF-Token`, a value derived from the session token that the
//! sign-in answer gives the page and nothing else can compute; a request the browser marks
//! `Sec-Fetch-Site` other than `same-origin` is not authenticated by the cookie at all. The bearer API is
//! unchanged. The data plane strips the cookie before a function sees the request (cookies
//! ignore ports: the browser would send it to the data plane's host too).

use super::extract::Body;
use super::policy::{AuditDetail, Caller};
use super::{ApiError, model, rfc3339};
use crate::app::App;
use crate::code::ErrorCode;
pub use crate::cookies::{COOKIE, HOST_COOKIE, is_session_cookie};
use axum::Extension;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

/// The header a cookie-authenticated change must carry.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// How long a session lasts.
pub const SESSION_SECONDS: i64 = 12 * 3600;
/// The label of the tokens sessions are.
pub const SESSION_LABEL: &str = "console session";

/// The CSRF token of a session: derived from its token (HKDF-SHA256), so the server needs no
/// state for it and only a holder of the session token (the server, and the page it told)
/// knows it.
pub fn csrf_for(token: &str) -> String {
    let hk = hkdf::Hkdf::<sha2::Sha256>::new(Some(b"edgeward console csrf v1"), token.as_bytes());
    let mut out = [0u8; 32];
    // 32 bytes are always within HKDF-SHA256's output limit.
    let _ = hk.expand(b"csrf", &mut out);
    hex::encode(out)
}

/// A request with more than one session cookie: one may have been planted (a page of another
/// port of the same host can set cookies the console's requests then carry), and the API will
/// not guess which is the user's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TwoSessions;

impl TwoSessions {
    /// The API's answer.
    pub fn error(self) -> ApiError {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::BadRequest,
            "the request carries more than one session cookie; sign out and in again (clear \
             this site's cookies if that does not help)",
        )
    }
}

/// The session token a request's cookies carry, if any; more than one session cookie (under
/// either name, any case) is refused.
pub fn session_token(headers: &HeaderMap) -> Result<Option<String>, TwoSessions> {
    let mut found = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .filter(|(k, _)| is_session_cookie(k));
    let first = found.next();
    if found.next().is_some() {
        return Err(TwoSessions);
    }
    Ok(first
        .map(|(_, v)| v.trim().to_string())
        .filter(|v| v.starts_with(crate::auth::TOKEN_PREFIX)))
}

/// Whether a cookie-authenticated request may use the cookie: only one the browser says comes
/// from the console's own origin (or from the user, typing a URL). A page of another origin
/// is refused even on the same site: the data plane is another port of the same host, and a
/// function's page must not act with the console's session.
pub fn same_site(headers: &HeaderMap) -> bool {
    headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .is_none_or(|site| site == "same-origin" || site == "none")
}

/// Whether `headers` carry the CSRF token of session `token` (compared in constant time).
pub fn csrf_ok(headers: &HeaderMap, token: &str) -> bool {
    let Some(sent) = headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let want = csrf_for(token);
    sent.len() == want.len()
        && sent
            .bytes()
            .zip(want.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

/// Whether the request came over TLS (directly, or through a proxy that says so).
fn over_tls(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|p| p.eq_ignore_ascii_case("https"))
}

fn cookie(value: &str, max_age: i64, secure: bool) -> Result<HeaderValue, ApiError> {
    let text = if secure {
        format!(
            "{HOST_COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}; Secure"
        )
    } else {
        format!("{COOKIE}={value}; Path=/v1; HttpOnly; SameSite=Strict; Max-Age={max_age}")
    };
    HeaderValue::from_str(&text).map_err(|_| ApiError::bad_entry("cannot set the session cookie"))
}

/// Whether the request's body is declared JSON: a sign-in takes nothing else, so no other
/// site's form (which can send only form and text types) can sign a browser in.
fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"))
}

/// `POST /v1/sessions`: signs in with a token; the answer sets the session cookie and gives
/// the page its CSRF token.
pub(super) async fn create(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Body(body): Body<model::CreateSession>,
) -> Result<Response, ApiError> {
    if !is_json(&headers) {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorCode::BadEntry,
            "sign-in takes `Content-Type: application/json` only",
        ));
    }
    let principal = crate::auth::authenticate_token(&app.store, &app.tokens, &body.token).await?;
    let key = principal.open_user_key(&body.token);
    // A session is a child of the token it signs in with: it ends when that token expires or
    // is revoked, if that comes first.
    let now = crate::store::now_ms();
    let expires_at = principal
        .child_expiry(Some(now.saturating_add(SESSION_SECONDS * 1000)))
        .unwrap_or_default();
    let (id, token) = crate::auth::issue_token(
        &app.store,
        &principal.user,
        SESSION_LABEL,
        Some(expires_at),
        &principal.issued_by,
        key.as_deref(),
        Some(&principal.token_id),
    )
    .await?;
    let mut response = (
        StatusCode::CREATED,
        axum::Json(model::Session {
            user: principal.user.clone(),
            token_id: id.clone(),
            expires_at: rfc3339(expires_at),
            csrf_token: csrf_for(&token),
        }),
    )
        .into_response();
    let max_age = (expires_at - now).max(0) / 1000;
    response.headers_mut().insert(
        header::SET_COOKIE,
        cookie(&token, max_age, over_tls(&headers))?,
    );
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response.extensions_mut().insert(AuditDetail(format!(
        "console session {id} for {} (signed in with {})",
        principal.user, principal.token_id
    )));
    Ok(response)
}

/// `DELETE /v1/sessions/current`: signs out, revoking the session's token and clearing the
/// cookie. Only a session signs out: a bearer token is revoked with `edgeward tokens revoke`.
pub(super) async fn remove(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if !caller.session {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::BadEntry,
            "sign-out ends a console session (the cookie); an API token is revoked with \
             `edgeward tokens revoke`",
        ));
    }
    let revoked = app
        .store
        .revoke_token(
            caller.principal.user.clone(),
            caller.principal.token_id.clone(),
        )
        .await?;
    app.tokens.forget(&revoked);
    let mut response = StatusCode::NO_CONTENT.into_response();
    response
        .headers_mut()
        .insert(header::SET_COOKIE, cookie("", 0, over_tls(&headers))?);
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cookies::{strip_cookie, strip_set_cookie};

    #[test]
    fn the_session_cookie_is_found_and_stripped_alone() {
        let mut h = HeaderMap::new();
        h.append(
            header::COOKIE,
            HeaderValue::from_static("a=1; edgeward_session=ew_abc; b=2"),
        );
        h.append(
            header::COOKIE,
            HeaderValue::from_static("edgeward_session=ew_x"),
        );
        // Two session cookies: refused, whichever comes first.
        assert_eq!(session_token(&h), Err(TwoSessions));
        strip_cookie(&mut h);
        let left: Vec<&str> = h
            .get_all(header::COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap())
            .collect();
        assert_eq!(left, ["a=1; b=2"]);
        assert_eq!(session_token(&h), Ok(None));
        let one = |v: &'static str| {
            let mut h = HeaderMap::new();
            h.append(header::COOKIE, HeaderValue::from_static(v));
            session_token(&h)
        };
        assert_eq!(
            one("a=1; edgeward_session=ew_abc").unwrap().as_deref(),
            Some("ew_abc")
        );
        assert_eq!(
            one("__Host-edgeward_session=ew_h").unwrap().as_deref(),
            Some("ew_h")
        );
        assert_eq!(
            one("__Host-edgeward_session=ew_h; EDGEWARD_SESSION=ew_m"),
            Err(TwoSessions)
        );
        let mut h = HeaderMap::new();
        h.append(
            header::COOKIE,
            HeaderValue::from_static("Edgeward_Session=ew_x; __host-edgeward_session=ew_y; k=v"),
        );
        strip_cookie(&mut h);
        assert_eq!(h.get(header::COOKIE).unwrap(), "k=v");
    }

    #[test]
    fn a_function_cannot_set_the_session_cookie() {
        let mut r = http::Response::new(());
        for v in [
            "edgeward_session=ew_mallory; Path=/v1/whoami",
            "EDGEWARD_SESSION=ew_m; Domain=localhost",
            " __Host-edgeward_session=ew_m; Path=/; Secure",
            "theirs=1; Path=/",
        ] {
            r.headers_mut()
                .append(header::SET_COOKIE, HeaderValue::from_static(v));
        }
        strip_set_cookie(&mut r);
        let left: Vec<_> = r.headers().get_all(header::SET_COOKIE).iter().collect();
        assert_eq!(left, ["theirs=1; Path=/"]);
    }

    #[test]
    fn csrf_tokens_belong_to_their_session() {
        let a = csrf_for("ew_a");
        assert_eq!(a.len(), 64);
        assert_ne!(a, csrf_for("ew_b"));
        let mut h = HeaderMap::new();
        assert!(!csrf_ok(&h, "ew_a"));
        h.insert(CSRF_HEADER, HeaderValue::from_str(&a).unwrap());
        assert!(csrf_ok(&h, "ew_a"));
        assert!(!csrf_ok(&h, "ew_b"));
    }
}
