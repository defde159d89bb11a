//! The web console's server side, attacked without a browser: its page and its
//! Content-Security-Policy, the session cookie's attributes, CSRF on every change made with
//! the cookie, a cross-site form post, sign-out, and the cookie kept from functions.

use crate::harness::{Server, http};
use crate::identity::fixture_with;
use reqwest::Method;
use serde_json::{Value, json};

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' \
                   data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; \
                   base-uri 'none'";

/// Signs in with `token`: the session token (from the cookie) and the CSRF token.
async fn sign_in(server: &Server, token: &str, tls: bool) -> (String, String, String) {
    let mut req = http()
        .post(format!("{}/v1/sessions", server.api))
        .json(&json!({ "token": token }));
    if tls {
        req = req.header("x-forwarded-proto", "https");
    }
    let r = req.send().await.unwrap();
    assert_eq!(r.status(), 201);
    let cookie = r
        .headers()
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    let body: Value = r.json().await.unwrap();
    // Behind TLS the cookie is `__Host-` prefixed.
    let pair = cookie.split(';').next().unwrap();
    let session = pair
        .strip_prefix("edgeward_session=")
        .or_else(|| pair.strip_prefix("__Host-edgeward_session="))
        .unwrap()
        .to_string();
    (
        session,
        body["csrf_token"].as_str().unwrap().to_string(),
        cookie,
    )
}

fn with_cookie(
    method: Method,
    server: &Server,
    path: &str,
    session: &str,
) -> reqwest::RequestBuilder {
    http()
        .request(method, format!("{}{path}", server.api))
        .header("cookie", format!("theme=dark; edgeward_session={session}"))
}

#[tokio::test]
async fn the_console_page_sessions_csrf_and_the_cookie_kept_from_functions() {
    let fx = fixture_with(crate::harness::Options::backend(None)).await;
    let server = &fx.server;

    // The page and its files: a strict CSP, no inline script, nothing but /v1 behind them.
    for (path, kind) in [
        ("/", "text/html"),
        ("/console/console.js", "text/javascript"),
        ("/console/ui.js", "text/javascript"),
        ("/console/packages.js", "text/javascript"),
        ("/console/console.css", "text/css"),
    ] {
        let r = http()
            .get(format!("{}{path}", server.api))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{path}");
        let h = r.headers();
        assert!(
            h["content-type"].to_str().unwrap().starts_with(kind),
            "{path}"
        );
        assert_eq!(h["content-security-policy"], CSP, "{path}");
        assert_eq!(h["x-content-type-options"], "nosniff");
        assert_eq!(h["x-frame-options"], "DENY");
        let text = r.text().await.unwrap();
        if path == "/" {
            assert!(text.contains(r#"<script type="module" src="/console/console.js"></script>"#));
            assert_eq!(text.matches("<script").count(), 1, "no inline script");
        }
        if path.ends_with(".js") {
            for sink in [
                ".innerHTML",
                ".outerHTML",
                "insertAdjacentHTML",
                "document.write",
                "eval(",
            ] {
                assert!(
                    !text.contains(sink),
                    "the console builds the DOM from text only: {sink}"
                );
            }
        }
    }
    let r = http()
        .get(format!("{}/console/../v1/whoami", server.api))
        .send()
        .await
        .unwrap();
    assert_ne!(r.status(), 200);

    // Sign-in: a session cookie no script reads, sent to no other site, Secure behind TLS.
    let (session, csrf, cookie) = sign_in(server, &server.token, false).await;
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/v1", "Max-Age=43200"] {
        assert!(cookie.contains(attr), "{attr}: {cookie}");
    }
    assert!(!cookie.contains("Secure"), "plain HTTP: {cookie}");
    assert_ne!(session, server.token, "the session is a token of its own");
    let (_, _, tls_cookie) = sign_in(server, &server.token, true).await;
    assert!(tls_cookie.contains("; Secure"), "{tls_cookie}");
    let r = http()
        .post(format!("{}/v1/sessions", server.api))
        .json(&json!({ "token": format!("ew_{}", "0".repeat(64)) }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "a wrong token signs nobody in");

    // The cookie authenticates reads.
    let r = with_cookie(Method::GET, server, "/v1/whoami", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let me: Value = r.json().await.unwrap();
    assert_eq!(me["user"], "admin", "{me}");

    // A change with the cookie needs the session's CSRF token: none, another session's, or a
    // cross-site form post is refused, and nothing is made.
    let (_, other_csrf, _) = sign_in(server, fx.token("viewer").unwrap(), false).await;
    for (what, csrf_header, site) in [
        ("no CSRF token", None, None),
        ("another session's", Some(other_csrf.as_str()), None),
        (
            "a cross-site form post",
            Some(csrf.as_str()),
            Some("cross-site"),
        ),
        (
            "a data-plane page (same site, another origin)",
            Some(csrf.as_str()),
            Some("same-site"),
        ),
    ] {
        let mut req = with_cookie(Method::POST, server, "/v1/projects", &session)
            .header("content-type", "application/x-www-form-urlencoded")
            .body("name=forged");
        if let Some(c) = csrf_header {
            req = req.header("x-csrf-token", c);
        }
        if let Some(s) = site {
            req = req
                .header("sec-fetch-site", s)
                .header("origin", "https://evil.example");
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), 403, "{what}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"]["code"], "denied", "{what}: {body}");
    }
    let (_, projects) = fx.admin(Method::GET, "/v1/projects", None).await;
    assert!(!projects.to_string().contains("forged"), "{projects}");
    let r = with_cookie(Method::POST, server, "/v1/projects", &session)
        .header("x-csrf-token", &csrf)
        .json(&json!({ "name": "from-console" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "with its CSRF token the change is made");

    // A value read through the session is audited as the user, with the session's token id.
    let (s, _) = fx
        .admin(
            Method::PUT,
            "/v1/projects/acme/secrets/team%2Fdb",
            Some(json!({ "value": { "user": "u", "password": "console-pw" } })),
        )
        .await;
    assert_eq!(s, 200);
    let r = with_cookie(
        Method::GET,
        server,
        "/v1/projects/acme/secrets/team%2Fdb",
        &session,
    )
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    let (viewer_session, _, _) = sign_in(server, fx.token("viewer").unwrap(), false).await;
    let r = with_cookie(
        Method::GET,
        server,
        "/v1/projects/acme/secrets/team%2Fdb",
        &viewer_session,
    )
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), 403, "a viewer's session reveals nothing");
    let (_, audit) = fx.admin(Method::GET, "/v1/audit?limit=50", None).await;
    let session_id = me["token_id"].as_str().unwrap();
    assert!(
        audit["entries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["actor"] == "admin"
                && e["token_id"] == session_id
                && e["target"] == "/v1/projects/acme/secrets/team/db"
                && e["status"] == 200),
        "{audit}"
    );

    // A bearer token beside the cookie is the caller: the cookie never lends a viewer the
    // admin's session; a cookie that holds no token, or a revoked token, signs nobody in.
    let r = with_cookie(Method::POST, server, "/v1/projects", &session)
        .bearer_auth(fx.token("viewer").unwrap())
        .header("x-csrf-token", &csrf)
        .json(&json!({ "name": "via-viewer" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "the viewer's bearer token decides");
    let r = with_cookie(Method::GET, server, "/v1/whoami", "not-a-token")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = http()
        .post(format!("{}/v1/sessions", server.api))
        .json(&json!({ "token": fx.token("revoked").unwrap_or("ew_none") }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "a revoked token opens no session");

    // Functions never see the session cookie (browsers send cookies to every port of a
    // host); the page's other cookies pass.
    server.deploy("acme/echo", "echo").await;
    let r = http()
        .get(format!("{}/acme/echo/", server.listen))
        .header(
            "cookie",
            format!("theme=dark; edgeward_session={session}; lang=en"),
        )
        .send()
        .await
        .unwrap();
    let echoed = r.text().await.unwrap();
    assert!(!echoed.contains(&session), "{echoed}");
    assert!(echoed.contains("theme=dark; lang=en"), "{echoed}");

    // Sign-out revokes the session; a bearer token is not signed out this way.
    let r = http()
        .delete(format!("{}/v1/sessions/current", server.api))
        .bearer_auth(&server.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = with_cookie(Method::DELETE, server, "/v1/sessions/current", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "signing out is a change: CSRF applies");
    let r = with_cookie(Method::DELETE, server, "/v1/sessions/current", &session)
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert!(
        r.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    let r = with_cookie(Method::GET, server, "/v1/whoami", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "a signed-out session is dead");
    let r = http()
        .get(format!("{}/v1/whoami", server.api))
        .bearer_auth(&server.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "the token signed in with still works");
}

/// The console in Debian's Chromium (tests/console/drive.mjs, Playwright): sign in, a folder
/// secret with two fields made and revealed (and the audit row seen), edited, its versions
/// listed, one viewed and rolled back to after a confirmation; a bulk import (lines and JSON,
/// a bad name refusing all); the audit log paged, filtered, fitting 1280 px; a viewer refused;
/// a component uploaded (then with a manifest and secrets.json), its executions seen live and
/// paged back; a package's settings saved as a new version that serves; a rollback, a revoke
/// confirmed, sign-out; an injected inline script and a cross-site form post fail. Screenshots
/// of each page go to target/console-screenshots.
#[tokio::test]
async fn the_console_in_a_real_browser() {
    let root = crate::harness::repo_root();
    let driver = root.join("tests/console");
    assert!(
        driver.join("node_modules/playwright-core").exists(),
        "tests/console/node_modules is missing: run ./scripts/test, which installs Chromium \
         (Debian's chromium) and the driver (npm ci in tests/console)"
    );
    let fx = fixture_with(crate::harness::Options::backend(None)).await;
    let server = &fx.server;
    let marker = crate::harness::unique("console-pw");
    server.plant_value(&marker);
    // A package that asks for its callers' user secrets: alice grants it in the browser.
    server
        .deploy_with("acme/needs", "secrets", "user-secrets = [\"API_KEY\"]")
        .await;
    let config = json!({
        "api": server.api,
        "listen": server.listen,
        "admin": server.token,
        "viewer": fx.token("viewer").unwrap(),
        "alice": fx.token("alice").unwrap(),
        "wasm": crate::harness::guest("hello"),
        "inspect": crate::harness::guest("inspect"),
        "shots": root.join("target/console-screenshots"),
        "marker": marker,
    });
    let out = tokio::process::Command::new("node")
        .arg("drive.mjs")
        .arg(config.to_string())
        .current_dir(&driver)
        .output()
        .await
        .expect("run node");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("every flow passed"), "{stdout}");
    // What the browser did, seen from the API: the forged post made nothing, the version
    // rolled back to is current, the reveal is audited with the session's token.
    let (_, projects) = fx.admin(Method::GET, "/v1/projects", None).await;
    assert!(!projects.to_string().contains("forged"), "{projects}");
    let (_, package) = fx
        .admin(Method::GET, "/v1/projects/acme/packages/greeter", None)
        .await;
    assert_eq!(package["current_version"], 1, "{package}");
    // Alice's grant, made in the browser, is hers and verifies under her key.
    let r = crate::harness::http()
        .get(format!("{}/v1/users/alice/grants", server.api))
        .bearer_auth(fx.token("alice").unwrap())
        .send()
        .await
        .unwrap();
    let grants: Value = r.json().await.unwrap();
    assert_eq!(grants["grants"][0]["package"], "needs", "{grants}");
    assert_eq!(grants["grants"][0]["valid"], true, "{grants}");
    // The settings saved in the browser: a new version of the same code with the new bindings.
    let (_, insp) = fx
        .admin(Method::GET, "/v1/projects/acme/packages/insp", None)
        .await;
    let versions = insp["versions"].as_array().unwrap();
    assert_eq!(versions.len(), 3, "{insp}");
    assert_eq!(versions[1]["sha256"], versions[2]["sha256"], "{insp}");
    assert_eq!(versions[2]["manifest"]["env"]["GREETING"], "from-settings");
    assert_eq!(versions[2]["manifest"]["write-secrets"], json!(["package"]));
    // The rollback of team/db made its first value current again, as version 3; the refused
    // import wrote nothing.
    let (s, db) = fx
        .admin(Method::GET, "/v1/projects/acme/secrets/team%2Fdb", None)
        .await;
    assert_eq!(
        (s, &db["version"], &db["value"]["user"]),
        (200, &json!(3), &json!("app")),
        "{db}"
    );
    let (s, _) = fx
        .admin(Method::GET, "/v1/projects/acme/secrets/IMP_GOOD", None)
        .await;
    assert_eq!(s, 404, "a refused import wrote nothing");
    for page in [
        "secret-versions",
        "secrets-import",
        "audit-filtered",
        "upload-form",
        "package-settings",
        "grants",
        "sign-in",
        "secrets",
        "secret-revealed",
        "audit",
        "executions",
        "package",
    ] {
        let shot = root.join(format!("target/console-screenshots/{page}.png"));
        assert!(shot.exists(), "{}", shot.display());
    }
}
