//! The web console's session cookie: its names, and keeping it away from functions.
//!
//! Cookies ignore ports, so a browser signed in to the console sends the session cookie to the
//! data plane's host too. The data plane strips it from every request before a function sees
//! it, and strips any `Set-Cookie` of a function that would plant one. The API's sessions
//! (`api::session`) and the data plane share these names from here.

use http::{HeaderMap, HeaderValue, header};

/// The session cookie's name over plain HTTP.
pub const COOKIE: &str = "edgeward_session";
/// Its name behind TLS: the `__Host-` prefix makes the browser refuse it unless it is
/// `Secure`, has `Path=/` and no `Domain`, so no other host or port can plant one.
pub const HOST_COOKIE: &str = "__Host-edgeward_session";

/// Whether a cookie name is (any case of) one of the session cookie's names.
pub fn is_session_cookie(name: &str) -> bool {
    let name = name.trim();
    name.eq_ignore_ascii_case(COOKIE) || name.eq_ignore_ascii_case(HOST_COOKIE)
}

/// Removes every `Set-Cookie` of a function's response that names the session cookie (either
/// name, any case, any attributes): a function must not plant a session in a browser.
pub fn strip_set_cookie<B>(response: &mut http::Response<B>) {
    let headers = response.headers_mut();
    if !headers.contains_key(header::SET_COOKIE) {
        return;
    }
    let all: Vec<HeaderValue> = headers
        .get_all(header::SET_COOKIE)
        .iter()
        .cloned()
        .collect();
    let names_session = |v: &HeaderValue| {
        let text = String::from_utf8_lossy(v.as_bytes());
        let pair = text.split(';').next().unwrap_or_default();
        is_session_cookie(pair.split_once('=').map_or(pair, |(k, _)| k))
    };
    if !all.iter().any(names_session) {
        return;
    }
    headers.remove(header::SET_COOKIE);
    for v in all.into_iter().filter(|v| !names_session(v)) {
        headers.append(header::SET_COOKIE, v);
    }
}

/// Removes the session cookie from a request bound for a function, keeping its other cookies.
pub fn strip_cookie(headers: &mut HeaderMap) {
    let values: Vec<HeaderValue> = headers.get_all(header::COOKIE).iter().cloned().collect();
    if values.is_empty() {
        return;
    }
    let mut kept = Vec::new();
    let mut touched = false;
    for v in &values {
        let Ok(text) = v.to_str() else {
            // Not text: it cannot hold our cookie in a form we would accept; dropped to be safe.
            touched = true;
            continue;
        };
        let pairs: Vec<&str> = text
            .split(';')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .collect();
        let others: Vec<&str> = pairs
            .iter()
            .copied()
            .filter(|p| !is_session_cookie(p.split_once('=').map_or(*p, |(k, _)| k)))
            .collect();
        if others.len() != pairs.len() {
            touched = true;
        }
        if !others.is_empty() {
            kept.push(others.join("; "));
        }
    }
    if !touched {
        return;
    }
    headers.remove(header::COOKIE);
    for k in kept {
        if let Ok(v) = HeaderValue::from_str(&k) {
            headers.append(header::COOKIE, v);
        }
    }
}
