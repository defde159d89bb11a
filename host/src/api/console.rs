//! The web console's files (page, script modules, style sheet, icon), embedded in the binary (`cargo build` needs no Node, and
//! `edgeward serve` nothing beside itself), served by the API listener at `/` with a strict
//! Content-Security-Policy: scripts and styles from this origin only, no inline script, no
//! framing, no form posting elsewhere. The console is a client of the `/v1` API alone.

use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

const INDEX: &str = include_str!("../../console/index.html");
const SCRIPT: &str = include_str!("../../console/console.js");
const UI: &str = include_str!("../../console/ui.js");
const PACKAGES: &str = include_str!("../../console/packages.js");
const STYLE: &str = include_str!("../../console/console.css");
const ICON: &str = include_str!("../../console/favicon.svg");

/// The console's Content-Security-Policy.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
                       img-src 'self' data:; connect-src 'self'; form-action 'self'; \
                       frame-ancestors 'none'; base-uri 'none'";

fn file(body: &'static str, content_type: &'static str) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// `GET /`: the console's page.
pub(super) async fn index() -> Response {
    file(INDEX, "text/html; charset=utf-8")
}

/// `GET /console/{file}`: its script modules, style sheet and icon.
pub(super) async fn asset(Path(name): Path<String>) -> Response {
    match name.as_str() {
        "console.js" => file(SCRIPT, "text/javascript; charset=utf-8"),
        "ui.js" => file(UI, "text/javascript; charset=utf-8"),
        "packages.js" => file(PACKAGES, "text/javascript; charset=utf-8"),
        "console.css" => file(STYLE, "text/css; charset=utf-8"),
        "favicon.svg" => file(ICON, "image/svg+xml"),
        _ => (StatusCode::NOT_FOUND, "no such console file").into_response(),
    }
}
