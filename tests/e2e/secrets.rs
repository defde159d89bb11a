//! Secrets end to end, on both backends: DESIGN's scope table cell by cell, resolution order,
//! what each guest can read, errors, wrapping, and (with OpenBao) interop with Vault's own
//! tools, cache expiry after a direct rotation, and an unreachable backend.

use crate::harness::{OpenBao, Options, Server, assert_no_leak, unique};
use crate::identity::{Fixture, fixture_with};
use reqwest::Method;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const CALLERS: [&str; 8] = [
    "none", "viewer", "dev", "padmin", "oadmin", "platform", "alice", "bob",
];

const PKG: &str = "/v1/projects/acme/packages/api/secrets";
const PROJ: &str = "/v1/projects/acme/secrets";
const PLAT: &str = "/v1/secrets/platform";
const USER: &str = "/v1/users/alice/secrets";

async fn call(
    fx: &Fixture,
    caller: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = crate::harness::http().request(method, format!("{}{path}", fx.server.api));
    if let Some(token) = fx.token(caller) {
        req = req.bearer_auth(token);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// Sets a secret as the caller that may (platform admin, or alice for her own scope).
async fn seed(fx: &Fixture, collection: &str, name: &str, value: Value) {
    let who = if collection.starts_with("/v1/users/alice") {
        "alice"
    } else {
        "platform"
    };
    let (s, b) = call(
        fx,
        who,
        Method::PUT,
        &format!("{collection}/{name}"),
        Some(json!({ "value": value })),
    )
    .await;
    assert_eq!(s, 200, "seed {collection}/{name}: {b}");
}

/// Calls the `secrets` example deployed at `target` and returns its JSON answer.
async fn guest(fx: &Fixture, target: &str, query: &str, token: Option<&str>) -> Value {
    let mut req = fx
        .server
        .call(Method::GET, &format!("/{target}/?{query}&reveal=1"));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let r = req.send().await.unwrap();
    r.json().await.unwrap()
}

async fn scope_table(bao: Option<&OpenBao>) {
    scope_table_with(Options::backend(bao)).await;
}

async fn scope_table_with(options: Options) {
    let fx = fixture_with(options).await;
    for target in ["acme/api", "acme/web", "other/api"] {
        fx.server
            .deploy_with(target, "secrets", "user-secrets = [\"USR\"]")
            .await;
    }
    // Alice and bob let acme/api read their USR (each with a token of theirs).
    for user in ["alice", "bob"] {
        crate::identity::grant(&fx, user, fx.token(user).unwrap(), "acme/api").await;
    }

    // Every cell of DESIGN's scope table through the API. Callers, in order: no token, acme
    // viewer, acme developer, acme admin, other's admin, platform admin, alice, bob.
    let v = || Some(json!({ "value": "v" }));
    let rows: Vec<(Method, String, Option<Value>, [u16; 8])> = vec![
        // package scope: developers and admins write, admins read values, members list
        (
            Method::PUT,
            format!("{PKG}/K"),
            v(),
            [401, 403, 200, 200, 404, 200, 404, 404],
        ),
        (
            Method::PATCH,
            format!("{PKG}/K"),
            v(),
            [401, 403, 200, 200, 404, 200, 404, 404],
        ),
        (
            Method::GET,
            format!("{PKG}/K"),
            None,
            [401, 403, 403, 200, 404, 200, 404, 404],
        ),
        (
            Method::POST,
            format!("{PKG}/K/wrap"),
            None,
            [401, 403, 403, 201, 404, 201, 404, 404],
        ),
        (
            Method::GET,
            PKG.to_string(),
            None,
            [401, 200, 200, 200, 404, 200, 404, 404],
        ),
        (
            Method::PUT,
            PKG.to_string(),
            Some(json!({ "K3": "x" })),
            [401, 403, 200, 200, 404, 200, 404, 404],
        ),
        // project scope: admins write and read, members list
        (
            Method::PUT,
            format!("{PROJ}/K"),
            v(),
            [401, 403, 403, 200, 404, 200, 404, 404],
        ),
        (
            Method::GET,
            format!("{PROJ}/K"),
            None,
            [401, 403, 403, 200, 404, 200, 404, 404],
        ),
        (
            Method::GET,
            PROJ.to_string(),
            None,
            [401, 200, 200, 200, 404, 200, 404, 404],
        ),
        (
            Method::DELETE,
            format!("{PROJ}/GONE"),
            None,
            [401, 403, 403, 404, 404, 404, 404, 404],
        ),
        // platform scope: platform admins only
        (
            Method::PUT,
            format!("{PLAT}/K"),
            v(),
            [401, 403, 403, 403, 403, 200, 403, 403],
        ),
        (
            Method::GET,
            format!("{PLAT}/K"),
            None,
            [401, 403, 403, 403, 403, 200, 403, 403],
        ),
        (
            Method::GET,
            PLAT.to_string(),
            None,
            [401, 403, 403, 403, 403, 200, 403, 403],
        ),
        // user scope: that user alone, not even a platform admin
        (
            Method::PUT,
            format!("{USER}/K"),
            v(),
            [401, 403, 403, 403, 403, 403, 200, 403],
        ),
        (
            Method::GET,
            format!("{USER}/K"),
            None,
            [401, 403, 403, 403, 403, 403, 200, 403],
        ),
        (
            Method::GET,
            USER.to_string(),
            None,
            [401, 403, 403, 403, 403, 403, 200, 403],
        ),
        (
            Method::POST,
            format!("{USER}/K/wrap"),
            None,
            [401, 403, 403, 403, 403, 403, 201, 403],
        ),
    ];
    let mut failures = Vec::new();
    for (method, path, body, expected) in &rows {
        for (i, caller) in CALLERS.iter().enumerate() {
            let (status, answer) = call(&fx, caller, method.clone(), path, body.clone()).await;
            if status != expected[i] {
                failures.push(format!(
                    "{method} {path} as {caller}: {status}, expected {} {answer}",
                    expected[i]
                ));
            }
            if status == 200 && *method == Method::GET && !path.ends_with("/K") {
                assert!(
                    !answer.to_string().contains("\"v\""),
                    "a listing shows a value: {answer}"
                );
            }
        }
    }
    // Deleting, per role, each on a fresh secret.
    for (i, caller) in CALLERS.iter().enumerate() {
        seed(&fx, PKG, "DEL", json!("d")).await;
        let (status, _) = call(&fx, caller, Method::DELETE, &format!("{PKG}/DEL"), None).await;
        let expected = [401, 403, 204, 204, 404, 204, 404, 404][i];
        if status != expected {
            failures.push(format!(
                "DELETE package secret as {caller}: {status}, expected {expected}"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "scope table mismatches:\n{}",
        failures.join("\n")
    );

    // Which guests read which scope.
    seed(&fx, PKG, "PKG_ONLY", json!("pkg-value")).await;
    seed(&fx, PROJ, "PROJ_ONLY", json!("proj-value")).await;
    seed(&fx, PLAT, "PLAT_ONLY", json!("plat-value")).await;
    seed(&fx, USER, "USR", json!("alice-value")).await;
    type Expect = Option<(&'static str, &'static str)>;
    let cases: &[(&str, &str, Expect)] = &[
        ("acme/api", "PKG_ONLY", Some(("package", "pkg-value"))),
        ("acme/web", "PKG_ONLY", None),
        ("other/api", "PKG_ONLY", None),
        ("acme/api", "PROJ_ONLY", Some(("project", "proj-value"))),
        ("acme/web", "PROJ_ONLY", Some(("project", "proj-value"))),
        ("other/api", "PROJ_ONLY", None),
        ("acme/api", "PLAT_ONLY", Some(("platform", "plat-value"))),
        ("acme/web", "PLAT_ONLY", Some(("platform", "plat-value"))),
        ("other/api", "PLAT_ONLY", Some(("platform", "plat-value"))),
        ("acme/api", "USR", None),
    ];
    for (target, name, want) in cases {
        let got = guest(&fx, target, &format!("name={name}"), None).await;
        match want {
            Some((scope, value)) => {
                assert_eq!(
                    (got["scope"].as_str(), got["value"].as_str()),
                    (Some(*scope), Some(*value)),
                    "{target} {name}: {got}"
                );
            }
            None => assert_eq!(got["found"], false, "{target} {name}: {got}"),
        }
    }
    // User scope: only with that user's token, only by explicit scope.
    let alice = fx.token("alice").unwrap();
    let bob = fx.token("bob").unwrap();
    let got = guest(&fx, "acme/api", "name=USR&scope=user", Some(alice)).await;
    assert_eq!(
        (got["scope"].as_str(), got["value"].as_str()),
        (Some("user"), Some("alice-value")),
        "{got}"
    );
    let got = guest(&fx, "acme/api", "name=USR", Some(alice)).await;
    assert_eq!(got["found"], false, "user scope is never implicit: {got}");
    let got = guest(&fx, "acme/api", "name=USR&scope=user", Some(bob)).await;
    assert_eq!(got["found"], false, "bob does not see alice's: {got}");
    let got = guest(&fx, "acme/api", "name=USR&scope=user", None).await;
    assert_eq!(got["error"], "denied", "{got}");

    // Resolution order with a name in one, two and three scopes.
    seed(&fx, PLAT, "ONE", json!("1-platform")).await;
    seed(&fx, PLAT, "TWO", json!("2-platform")).await;
    seed(&fx, PROJ, "TWO", json!("2-project")).await;
    seed(&fx, PLAT, "THREE", json!("3-platform")).await;
    seed(&fx, PROJ, "THREE", json!("3-project")).await;
    seed(&fx, PKG, "THREE", json!("3-package")).await;
    for (name, scope, value) in [
        ("ONE", "platform", "1-platform"),
        ("TWO", "project", "2-project"),
        ("THREE", "package", "3-package"),
    ] {
        let got = guest(&fx, "acme/api", &format!("name={name}"), None).await;
        assert_eq!(
            (got["scope"].as_str(), got["value"].as_str()),
            (Some(scope), Some(value)),
            "{name}: {got}"
        );
    }
    let got = guest(&fx, "acme/api", "name=THREE&scope=platform", None).await;
    assert_eq!(
        got["value"], "3-platform",
        "get-from reads one scope: {got}"
    );
    let listed = fx
        .server
        .call(Method::GET, "/acme/api/?list=1")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        listed.contains("\"THREE\"") && !listed.contains("3-package"),
        "{listed}"
    );

    semantics(&fx).await;
    assert_no_leak(
        "the server log",
        &fx.server.log(),
        &[
            "pkg-value",
            "proj-value",
            "plat-value",
            "alice-value",
            "3-package",
            "wrapped-value",
        ],
    );
}

/// Create, update, errors, multi-field values, import and wrapping.
async fn semantics(fx: &Fixture) {
    let p = "platform";
    let (s, b) = call(
        fx,
        p,
        Method::POST,
        PKG,
        Some(json!({ "name": "NEW", "value": "n1" })),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    let (s, b) = call(
        fx,
        p,
        Method::POST,
        PKG,
        Some(json!({ "name": "NEW", "value": "n2" })),
    )
    .await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (409, Some("already_exists"))
    );
    let (s, b) = call(
        fx,
        p,
        Method::PATCH,
        &format!("{PKG}/MISSING"),
        Some(json!({ "value": "x" })),
    )
    .await;
    assert_eq!((s, b["error"]["code"].as_str()), (404, Some("not_found")));
    let (s, b) = call(
        fx,
        p,
        Method::PATCH,
        &format!("{PKG}/NEW"),
        Some(json!({ "value": "n3" })),
    )
    .await;
    assert_eq!((s, b["version"].as_u64()), (200, Some(2)), "{b}");
    let (_, b) = call(fx, p, Method::GET, &format!("{PKG}/NEW"), None).await;
    assert_eq!(
        (b["value"].as_str(), b["version"].as_u64()),
        (Some("n3"), Some(2))
    );
    for (path, body, status, code) in [
        (
            format!("{PKG}/bad%20name"),
            json!({ "value": "x" }),
            400,
            "bad_entry",
        ),
        (
            format!("{PKG}/_X"),
            json!({ "value": "x" }),
            400,
            "bad_entry",
        ),
        (format!("{PKG}/N"), json!({ "value": 42 }), 400, "bad_entry"),
        (
            format!("{PKG}/N"),
            json!({ "nothing": 1 }),
            400,
            "bad_entry",
        ),
        (
            format!("{PKG}/N"),
            json!({ "value": "x".repeat(64 * 1024 + 1) }),
            413,
            "too_large",
        ),
    ] {
        let (s, b) = call(fx, p, Method::PUT, &path, Some(body)).await;
        assert_eq!(
            (s, b["error"]["code"].as_str()),
            (status, Some(code)),
            "{path}: {b}"
        );
    }
    // Multi-field values come back as objects.
    let obj = json!({ "host": "db.internal", "password": "obj-pw" });
    seed(fx, PKG, "DB", obj.clone()).await;
    let (_, b) = call(fx, p, Method::GET, &format!("{PKG}/DB"), None).await;
    assert_eq!(b["value"], obj);
    let got = guest(fx, "acme/api", "name=DB", None).await;
    assert_eq!(got["object"], true);
    let revealed: Value = serde_json::from_str(got["value"].as_str().unwrap()).unwrap();
    assert_eq!(revealed, obj);
    // Import: all or nothing.
    let (s, b) = call(
        fx,
        p,
        Method::PUT,
        PKG,
        Some(json!({ "IMP_A": "a", "bad name": "b" })),
    )
    .await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (400, Some("bad_entry")),
        "{b}"
    );
    let (_, list) = call(fx, p, Method::GET, PKG, None).await;
    assert!(
        !list.to_string().contains("IMP_A"),
        "nothing of a refused import is written"
    );
    let (s, b) = call(
        fx,
        p,
        Method::PUT,
        PKG,
        Some(json!({ "IMP_A": "a", "IMP_B": { "k": "v" } })),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    let got = guest(fx, "acme/api", "name=IMP_B", None).await;
    assert_eq!(got["object"], true, "{got}");
    // Wrap: a single-use token; the second redeem fails.
    seed(fx, PKG, "WRAPPED", json!("wrapped-value")).await;
    let (s, w) = call(
        fx,
        p,
        Method::POST,
        &format!("{PKG}/WRAPPED/wrap"),
        Some(json!({ "ttl": 60 })),
    )
    .await;
    assert_eq!(s, 201, "{w}");
    let token = w["token"].as_str().unwrap().to_string();
    assert!(w["unwrap_url"].as_str().unwrap().contains("unwrap"), "{w}");
    let (s, b) = call(
        fx,
        "none",
        Method::POST,
        "/v1/unwrap",
        Some(json!({ "token": token })),
    )
    .await;
    assert_eq!(
        (s, b["value"].as_str()),
        (200, Some("wrapped-value")),
        "{b}"
    );
    let (s, b) = call(
        fx,
        "none",
        Method::POST,
        "/v1/unwrap",
        Some(json!({ "token": token })),
    )
    .await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (404, Some("not_found")),
        "second redeem: {b}"
    );
    let (s, _) = call(
        fx,
        "none",
        Method::POST,
        "/v1/unwrap",
        Some(json!({ "token": "ewr_nope" })),
    )
    .await;
    assert_eq!(s, 404);
    let (s, _) = call(
        fx,
        p,
        Method::POST,
        &format!("{PKG}/WRAPPED/wrap"),
        Some(json!({ "ttl": 0 })),
    )
    .await;
    assert_eq!(s, 400);
    let (s, _) = call(fx, p, Method::POST, &format!("{PKG}/NOPE/wrap"), None).await;
    assert_eq!(s, 404);
    // Value reads and wraps are audited, without values or tokens.
    let (_, audit) = fx.admin(Method::GET, "/v1/audit?limit=1000", None).await;
    let text = audit.to_string();
    assert!(text.contains(&format!("{PKG}/WRAPPED/wrap")) && text.contains("/v1/unwrap"));
    assert!(text.contains(&format!(
        "GET {}",
        "/v1/projects/{project}/packages/{package}/secrets/{name}"
    )));
    assert!(!text.contains("wrapped-value") && !text.contains(&token) && !text.contains("obj-pw"));
}

#[tokio::test]
async fn scope_table_on_the_embedded_backend() {
    scope_table(None).await;
}

#[tokio::test]
async fn scope_table_on_openbao() {
    let bao = OpenBao::start();
    scope_table(Some(&bao)).await;
}

/// Production Vaults speak TLS: the whole table again against OpenBao over HTTPS, trusted
/// through `VAULT_CACERT` (reads and writes through vaultrs; wrap and unwrap through the same
/// client, so the same trust).
#[tokio::test]
async fn scope_table_on_openbao_over_tls() {
    let bao = OpenBao::start_tls();
    assert!(bao.addr.starts_with("https://"));
    scope_table(Some(&bao)).await;
}

/// An OpenBao over TLS whose certificate the server cannot verify (no CA given, or another
/// CA) is never trusted: writes, guest reads and wraps answer 503 `unavailable`, the log says
/// why, and nothing reaches that Vault. The right CA, beside them, works.
#[tokio::test]
async fn openbao_over_tls_without_the_right_ca_is_not_trusted() {
    let bao = OpenBao::start_tls();
    let other = OpenBao::start_tls();
    assert_ne!(bao.ca_cert, other.ca_cert);
    for (case, ca) in [
        ("the right CA", bao.ca_cert.clone()),
        ("no CA", None),
        ("another CA", other.ca_cert.clone()),
    ] {
        let mut options = Options::backend(Some(&bao));
        options.vault_ca = ca;
        let server = Server::start_with(options).await;
        server.deploy("p1/api", "secrets").await;
        let prefix = server.vault_prefix.clone().unwrap();
        let put = server
            .api(Method::PUT, "/v1/projects/p1/secrets/TLS_KEY")
            .json(&json!({ "value": "tls-checked-value-5d1e" }))
            .send()
            .await
            .unwrap();
        let put = (put.status().as_u16(), put.json::<Value>().await.unwrap());
        let read = server
            .call(Method::GET, "/p1/api/?name=TLS_KEY&reveal=1")
            .send()
            .await
            .unwrap();
        let read = (read.status().as_u16(), read.json::<Value>().await.unwrap());
        let wrap = server
            .api(Method::POST, "/v1/projects/p1/secrets/TLS_KEY/wrap")
            .send()
            .await
            .unwrap();
        let wrap = (wrap.status().as_u16(), wrap.json::<Value>().await.unwrap());
        let (_, stored, _) = bao.try_cli(&[
            "kv",
            "list",
            "-mount=secret",
            &format!("{prefix}/projects/p1/shared"),
        ]);
        if case == "the right CA" {
            assert_eq!(put.0, 200, "{case}: {put:?}");
            assert_eq!(
                read.1["value"], "tls-checked-value-5d1e",
                "{case}: {read:?}"
            );
            assert_eq!(wrap.0, 201, "{case}: {wrap:?}");
            assert!(stored.contains("TLS_KEY"), "{case}: {stored}");
            continue;
        }
        for (what, (status, body)) in [("write", &put), ("wrap", &wrap)] {
            assert_eq!(
                (*status, body["error"]["code"].as_str()),
                (503, Some("unavailable")),
                "{case}, {what}: {body}"
            );
        }
        assert_eq!(
            (read.0, read.1["error"].as_str()),
            (503, Some("unavailable")),
            "{case}, guest read: {:?}",
            read.1
        );
        assert!(
            !stored.contains("TLS_KEY"),
            "{case}: nothing reached Vault: {stored}"
        );
        let log = server.log().to_lowercase();
        assert!(
            log.contains("certificate") || log.contains("unknownissuer"),
            "{case}: the log says why"
        );
    }
}

#[tokio::test]
async fn openbao_interop_with_vault_tools_and_cache_expiry() {
    let bao = OpenBao::start();
    let mut options = Options::backend(Some(&bao));
    options.extra_args = vec!["--secrets-cache-ttl-ms".into(), "3000".into()];
    let server = Server::start_with(options).await;
    let prefix = server.vault_prefix.clone().unwrap();
    server.deploy("p1/api", "secrets").await;

    // Written with Vault's own CLI at the documented path: the guest of p1 gets it.
    bao.cli(&[
        "kv",
        "put",
        "-mount=secret",
        &format!("{prefix}/projects/p1/shared/DB_PASS"),
        "value=from-bao-1",
    ]);
    let read = |q: &'static str| {
        let server = &server;
        async move {
            let r = server
                .call(Method::GET, &format!("/p1/api/?{q}&reveal=1"))
                .send()
                .await
                .unwrap();
            r.json::<Value>().await.unwrap()
        }
    };
    let got = read("name=DB_PASS").await;
    assert_eq!(
        (got["scope"].as_str(), got["value"].as_str()),
        (Some("project"), Some("from-bao-1")),
        "{got}"
    );

    // Rotated directly in Vault: still the cached value at once, the new one within the TTL.
    bao.cli(&[
        "kv",
        "put",
        "-mount=secret",
        &format!("{prefix}/projects/p1/shared/DB_PASS"),
        "value=from-bao-2",
    ]);
    let rotated = Instant::now();
    let got = read("name=DB_PASS").await;
    assert_eq!(
        got["value"], "from-bao-1",
        "served from the cache within the TTL"
    );
    loop {
        let got = read("name=DB_PASS").await;
        if got["value"] == "from-bao-2" {
            break;
        }
        assert!(
            rotated.elapsed() < Duration::from_millis(3000 + 2000),
            "rotation not seen within the TTL"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A write through Edgeward is seen at once (the cache entry is dropped).
    let (s, _) = {
        let r = server
            .api(Method::PUT, "/v1/projects/p1/secrets/DB_PASS")
            .json(&json!({ "value": "from-edgeward" }))
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), ())
    };
    assert_eq!(s, 200);
    let got = read("name=DB_PASS").await;
    assert_eq!(got["value"], "from-edgeward");

    // Set through Edgeward: `bao kv get` shows it at its documented path, strings as `value`,
    // objects as their fields.
    for (path, body) in [
        ("/v1/secrets/platform/PLAT", json!({ "value": "plat-text" })),
        (
            "/v1/projects/p1/packages/api/secrets/OBJ",
            json!({ "value": { "host": "db", "password": "pw-obj" } }),
        ),
        (
            "/v1/projects/p1/secrets/SHARED",
            json!({ "value": "shared-text" }),
        ),
    ] {
        let r = server
            .api(Method::PUT, path)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    let kv = |path: String| {
        let out = bao.cli(&["kv", "get", "-mount=secret", "-format=json", &path]);
        serde_json::from_str::<Value>(&out).unwrap()["data"]["data"].clone()
    };
    assert_eq!(
        kv(format!("{prefix}/platform/PLAT")),
        json!({ "value": "plat-text" })
    );
    assert_eq!(
        kv(format!("{prefix}/projects/p1/packages/api/OBJ")),
        json!({ "host": "db", "password": "pw-obj" })
    );
    assert_eq!(
        kv(format!("{prefix}/projects/p1/shared/SHARED")),
        json!({ "value": "shared-text" })
    );
    // And a listing made in Vault shows up through the API.
    bao.cli(&[
        "kv",
        "put",
        "-mount=secret",
        &format!("{prefix}/platform/FROM_CLI"),
        "user=u",
        "password=p",
    ]);
    let r = server
        .api(Method::GET, "/v1/secrets/platform")
        .send()
        .await
        .unwrap();
    let list: Value = r.json().await.unwrap();
    let names: Vec<&str> = list["secrets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"FROM_CLI") && names.contains(&"PLAT"),
        "{names:?}"
    );
    let r = server
        .api(Method::GET, "/v1/secrets/platform/FROM_CLI")
        .send()
        .await
        .unwrap();
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["value"], json!({ "user": "u", "password": "p" }));
    // Vault's own response wrapping: the token redeems once, at Vault or through Edgeward.
    let r = server
        .api(Method::POST, "/v1/secrets/platform/PLAT/wrap")
        .send()
        .await
        .unwrap();
    let w: Value = r.json().await.unwrap();
    assert_eq!(
        w["vault_unwrap_url"],
        format!("{}/v1/sys/wrapping/unwrap", bao.addr)
    );
    let out = bao.cli(&["unwrap", "-format=json", w["token"].as_str().unwrap()]);
    assert!(out.contains("plat-text"), "{out}");
    let r = server
        .api(Method::POST, "/v1/unwrap")
        .json(&json!({ "token": w["token"] }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404, "a wrapping token works once");
    assert_no_leak(
        "the server log",
        &server.log(),
        &["from-bao-1", "from-bao-2", "pw-obj", "plat-text"],
    );
}

#[tokio::test]
async fn an_unreachable_backend_gives_unavailable_promptly_and_the_host_stays_up() {
    let (_refusing, vault) = crate::harness::refusing_address();
    let options = Options {
        extra_args: vec!["--secrets-timeout-ms".into(), "500".into()],
        vault: Some((vault.clone(), unique("edgeward"))),
        ..Options::default()
    };
    let server = Server::start_with(options).await;
    server.deploy("acme/secrets", "secrets").await;
    server.deploy("acme/hello", "hello").await;
    let started = Instant::now();
    let r = server
        .call(Method::GET, "/acme/secrets/?name=X")
        .send()
        .await
        .unwrap();
    let elapsed = started.elapsed();
    assert_eq!(r.status(), 503, "the guest's own handling of `unavailable`");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "unavailable", "{body}");
    assert!(elapsed < Duration::from_secs(5), "took {elapsed:?}");
    // The guest learns that the backend failed, not where it lives; the operator's log says.
    let address = vault.trim_start_matches("http://");
    let message = body["message"].as_str().unwrap();
    assert!(
        message.contains("secret backend could not answer") && !message.contains(address),
        "{message}"
    );
    assert!(
        server.log().contains(address),
        "the cause is in the host's log"
    );
    // Nor does an anonymous caller of a function whose env binding could not be resolved.
    server
        .deploy_with("acme/env", "inspect", "[env]\nX = \"secret:X\"\n")
        .await;
    let r = server.call(Method::GET, "/acme/env/").send().await.unwrap();
    assert_eq!(r.status(), 503);
    let body = r.text().await.unwrap();
    assert!(
        body.contains("\"unavailable\"") && !body.contains(address),
        "{body}"
    );
    let r = server
        .api(Method::PUT, "/v1/secrets/platform/X")
        .json(&json!({ "value": "v" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unavailable");
    let (status, _) = server.get("/acme/hello/").await;
    assert_eq!(status, 200, "the host and other functions carry on");
}

#[tokio::test]
async fn manifest_allowlist_env_bindings_and_secrets_json_beside_an_upload() {
    let server = Server::start().await;
    for (path, value) in [
        ("/v1/secrets/platform/DBP", "db-pass-value"),
        ("/v1/secrets/platform/HIDDEN", "hidden-value"),
    ] {
        let r = server
            .api(Method::PUT, path)
            .json(&json!({ "value": value }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    let manifest = r#"
secrets = ["DBP", "SEEDED"]
[env]
DB_PASSWORD = "secret:DBP"
MODE = "production"
"#;
    let upload = |guest_name: &str, target: &str, manifest: &str, secrets_json: Option<&str>| {
        let mut form = reqwest::multipart::Form::new()
            .part(
                "component",
                reqwest::multipart::Part::bytes(
                    std::fs::read(crate::harness::guest(guest_name)).unwrap(),
                ),
            )
            .part(
                "manifest",
                reqwest::multipart::Part::text(manifest.to_string()),
            );
        if let Some(s) = secrets_json {
            form = form.part("secrets", reqwest::multipart::Part::text(s.to_string()));
        }
        let (project, package) = target.split_once('/').unwrap();
        server
            .api(
                Method::POST,
                &format!("/v1/projects/{project}/packages/{package}/versions"),
            )
            .multipart(form)
            .send()
    };
    // A bad secrets.json refuses the whole upload.
    let r = upload("secrets", "acme/app", manifest, Some(r#"{"SEEDED": 7}"#))
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let (status, _) = server
        .json(Method::GET, "/v1/projects/acme/packages/app")
        .await;
    assert_eq!(status, 404, "no version was recorded");
    let r = upload(
        "secrets",
        "acme/app",
        manifest,
        Some(r#"{"SEEDED": "seeded-value"}"#),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 201);
    let read = |q: String| {
        let server = &server;
        async move {
            server
                .call(Method::GET, &format!("/acme/app/?{q}&reveal=1"))
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    let got = read("name=SEEDED".into()).await;
    assert_eq!(
        (got["scope"].as_str(), got["value"].as_str()),
        (Some("package"), Some("seeded-value")),
        "{got}"
    );
    let got = read("name=DBP".into()).await;
    assert_eq!(got["value"], "db-pass-value");
    let got = read("name=HIDDEN".into()).await;
    assert_eq!(got["error"], "denied", "outside the allowlist: {got}");
    let got = read("list=1".into()).await;
    assert!(!got.to_string().contains("HIDDEN"), "{got}");

    // Env bindings reach the guest's environment, and nothing else does.
    let r = upload("inspect", "acme/env", manifest, None).await.unwrap();
    assert_eq!(r.status(), 201);
    let (_, text) = server.get("/acme/env/").await;
    let v: Value = serde_json::from_str(&text).unwrap();
    let mut env: Vec<(String, String)> = v["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p[0].as_str().unwrap().into(), p[1].as_str().unwrap().into()))
        .collect();
    env.sort();
    assert_eq!(
        env,
        vec![
            ("DB_PASSWORD".into(), "db-pass-value".into()),
            ("MODE".into(), "production".into())
        ]
    );
    // A binding to a secret no scope holds fails the request clearly.
    let r = upload(
        "inspect",
        "acme/broken",
        "[env]\nX = \"secret:NOT_THERE\"\n",
        None,
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 201);
    let r = server
        .call(Method::GET, "/acme/broken/")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 500);
    let id = r.headers()["x-edgeward-execution-id"]
        .to_str()
        .unwrap()
        .to_string();
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unresolved_binding", "{body}");
    // Recorded with a status of its own, not as a limit, and listed by it.
    let rec = server.execution("acme", &id).await;
    assert_eq!(
        (rec["status"].as_str(), rec["http_status"].as_u64()),
        (Some("unbound"), Some(500)),
        "{rec}"
    );
    let (s, list) = server
        .json(Method::GET, "/v1/projects/acme/executions?status=unbound")
        .await;
    assert_eq!(s, 200);
    assert_eq!(list["executions"][0]["id"], id.as_str(), "{list}");
    assert_no_leak(
        "the server log",
        &server.log(),
        &["db-pass-value", "seeded-value", "hidden-value"],
    );
}

#[tokio::test]
async fn hostile_guests_get_nothing_they_are_not_owed() {
    let bao = OpenBao::start();
    let server = Server::start_with(Options::backend(Some(&bao))).await;
    let markers = [
        "marker-other-project-7d1",
        "marker-sibling-package-9e2",
        "marker-user-secret-4c3",
    ];
    for (path, value) in [
        ("/v1/projects/other/secrets/OTHER_SECRET", markers[0]),
        (
            "/v1/projects/acme/packages/web/secrets/SIBLING_SECRET",
            markers[1],
        ),
    ] {
        // Projects must exist for their scopes.
        let project = path.split('/').nth(3).unwrap();
        server
            .api(Method::POST, "/v1/projects")
            .json(&json!({ "name": project }))
            .send()
            .await
            .unwrap();
        let r = server
            .api(Method::PUT, path)
            .json(&json!({ "value": value }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{path}");
    }
    // The admin's own user secret, through an enrolled token (the bootstrap token opens none).
    let (s, b) = server
        .json(Method::POST, "/v1/users/admin/enrollments")
        .await;
    assert_eq!(s, 201, "{b}");
    let r = crate::harness::http()
        .post(format!("{}/v1/enroll", server.api))
        .json(&json!({ "code": b["code"] }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let mine: Value = r.json().await.unwrap();
    server.plant_credential(mine["token"].as_str().unwrap());
    let r = crate::harness::http()
        .put(format!("{}/v1/users/admin/secrets/MINE", server.api))
        .bearer_auth(mine["token"].as_str().unwrap())
        .json(&json!({ "value": markers[2] }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    server.deploy("acme/api", "hostile").await;
    server.deploy("acme/inspect", "inspect").await;
    // The positive control: its own package's secret, which it must get.
    let r = server
        .api(
            Method::PUT,
            "/v1/projects/acme/packages/api/secrets/OWN_SECRET",
        )
        .json(&json!({ "value": "own-secret-value-6b0" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let (status, text) = server
        .get("/acme/api/?names=OTHER_SECRET,SIBLING_SECRET,MINE,OWN_SECRET")
        .await;
    assert_eq!(status, 200, "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    for attempt in v["attempts"].as_array().unwrap() {
        let own = attempt["name"] == "OWN_SECRET";
        for (how, result) in attempt["results"].as_object().unwrap() {
            if own && (how == "get" || how == "value" || how == "package") {
                assert_eq!(
                    (&result["found"], &result["value"]),
                    (&json!(true), &json!("own-secret-value-6b0")),
                    "its own secret via {how}: {result}"
                );
                continue;
            }
            assert_ne!(
                result["found"], true,
                "{} via {how} found {result}",
                attempt["name"]
            );
        }
        // Another tenant's name reads as absent, not as an outage that would hide a leak.
        if ["OTHER_SECRET", "SIBLING_SECRET"].contains(&attempt["name"].as_str().unwrap_or("")) {
            assert_eq!(
                attempt["results"]["get"],
                json!({"found": false}),
                "{attempt}"
            );
        }
    }
    // Malformed names are refused as such, not looked up.
    let first = |name: &str| {
        v["attempts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["name"] == name)
            .unwrap()["results"]["get"]
            .clone()
    };
    for name in ["../platform/X", "", "..", "X/../../Y"] {
        assert_eq!(first(name)["error"], "bad_entry", "{name}");
    }
    // `get-value` (one host call) resolves and refuses exactly as `get` does.
    for attempt in v["attempts"].as_array().unwrap() {
        let results = &attempt["results"];
        assert_eq!(
            results["value"].get("error"),
            results["get"].get("error"),
            "{attempt}"
        );
        assert_eq!(
            results["value"].get("found"),
            results["get"].get("found"),
            "{attempt}"
        );
    }
    // A folder name that spells another owner's path is a name in its own folders: absent.
    assert_eq!(first("projects/other/shared/X"), json!({"found": false}));
    assert_eq!(v["env"], json!([]));
    // Its listing holds its own secret, and nothing of anyone else's.
    assert_eq!(v["list"], json!(["package:OWN_SECRET"]));
    let (_, inspect) = server.get("/acme/inspect/").await;
    for body in [&text, &inspect] {
        assert_no_leak("a guest's response", body, &markers);
    }
    assert_no_leak("the server log", &server.log(), &markers);
    assert_no_leak(
        "the OpenBao token in the server log",
        &server.log(),
        &[crate::harness::BAO_ROOT_TOKEN],
    );
}

#[tokio::test]
async fn a_version_deleted_or_destroyed_in_vault_reads_as_absent() {
    let bao = OpenBao::start();
    let mut options = Options::backend(Some(&bao));
    options.extra_args = vec!["--secrets-cache-ttl-ms".into(), "0".into()];
    let server = Server::start_with(options).await;
    let prefix = server.vault_prefix.clone().unwrap();
    server.deploy("p1/api", "secrets").await;
    let pkg_path = format!("{prefix}/projects/p1/packages/api/K");
    bao.cli(&[
        "kv",
        "put",
        "-mount=secret",
        &format!("{prefix}/projects/p1/shared/K"),
        "value=project-value",
    ]);
    bao.cli(&[
        "kv",
        "put",
        "-mount=secret",
        &pkg_path,
        "value=package-value",
    ]);
    let read = || async {
        let r = server
            .call(Method::GET, "/p1/api/?name=K&reveal=1")
            .send()
            .await
            .unwrap();
        r.json::<Value>().await.unwrap()
    };
    let api = || async {
        server
            .json(Method::GET, "/v1/projects/p1/packages/api/secrets/K")
            .await
    };
    assert_eq!(read().await["value"], "package-value");
    // `kv delete` (soft): the package's version is gone, so the project's value is next.
    bao.cli(&["kv", "delete", "-mount=secret", &pkg_path]);
    let got = read().await;
    assert_eq!(
        (got["scope"].as_str(), got["value"].as_str()),
        (Some("project"), Some("project-value")),
        "{got}"
    );
    let (s, b) = api().await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (404, Some("not_found")),
        "{b}"
    );
    // Undeleted, it is back.
    bao.cli(&["kv", "undelete", "-mount=secret", "-versions=1", &pkg_path]);
    assert_eq!(read().await["value"], "package-value");
    // Destroyed: absent again.
    bao.cli(&["kv", "destroy", "-mount=secret", "-versions=1", &pkg_path]);
    let got = read().await;
    assert_eq!(got["scope"], "project", "{got}");
    let (s, _) = api().await;
    assert_eq!(s, 404);
    // A new version written over it reads as usual.
    bao.cli(&["kv", "put", "-mount=secret", &pkg_path, "value=package-2"]);
    assert_eq!(read().await["value"], "package-2");
}

/// The token holds the README's policy (docs/vault-policy.hcl) and nothing else: the whole
/// scope table passes. With values only (no metadata paths), what needs metadata is 403
/// `denied` to the caller (not 503), and the host log names the path.
#[tokio::test]
async fn openbao_with_exactly_the_documented_policy() {
    let bao = OpenBao::start();
    let prefix = unique("edgeward");
    let policy = std::fs::read_to_string(crate::harness::repo_root().join("docs/vault-policy.hcl"))
        .unwrap()
        .replace("edgeward/", &format!("{prefix}/"));
    let dir = tempfile::tempdir().unwrap();
    let write_policy = |name: &str, text: &str| {
        let file = dir.path().join(format!("{name}.hcl"));
        std::fs::write(&file, text).unwrap();
        bao.cli(&["policy", "write", name, file.to_str().unwrap()]);
        bao.cli(&[
            "token",
            "create",
            "-policy",
            name,
            "-field=token",
            "-ttl=1h",
        ])
        .trim()
        .to_string()
    };
    let token = write_policy("edgeward-doc", &policy);
    let mut options = Options::backend(Some(&bao));
    options.vault = Some((bao.addr.clone(), prefix.clone()));
    options.vault_token = Some(token);
    scope_table_with(options).await;

    // Values only: no metadata paths.
    let data_only = format!(
        "path \"secret/data/{prefix}/*\" {{ capabilities = [\"create\", \"read\", \"update\"] }}\n"
    );
    let token = write_policy("edgeward-data-only", &data_only);
    let mut options = Options::backend(Some(&bao));
    options.vault = Some((bao.addr.clone(), prefix.clone()));
    options.vault_token = Some(token);
    let server = Server::start_with(options).await;
    let r = server
        .api(Method::PUT, "/v1/secrets/platform/K")
        .json(&json!({ "value": "v" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "a plain write needs the data path only");
    for (method, path) in [
        (Method::PATCH, "/v1/secrets/platform/K"),
        (Method::GET, "/v1/secrets/platform"),
        (Method::DELETE, "/v1/secrets/platform/K"),
    ] {
        let r = server
            .api(method.clone(), path)
            .json(&json!({ "value": "v2" }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403, "{method} {path}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"]["code"], "denied", "{body}");
        assert!(!body.to_string().contains(&bao.addr), "{body}");
    }
    let log = server.log();
    assert!(
        log.contains(&format!("{prefix}/platform")) && log.contains("denied"),
        "the host log names the path"
    );
}

/// Vault's own clients redeem Edgeward's wrapping tokens at `/v1/sys/wrapping/unwrap`: `bao
/// unwrap TOKEN` (token in the body) and `VAULT_TOKEN=TOKEN bao unwrap` (X-Vault-Token), on
/// both backends.
#[tokio::test]
async fn bao_unwrap_redeems_edgeward_wrapping_tokens_on_both_backends() {
    let bao = OpenBao::start();
    for backend in [None, Some(&bao)] {
        let server = Server::start_with(Options::backend(backend)).await;
        let r = server
            .api(Method::PUT, "/v1/secrets/platform/W")
            .json(&json!({ "value": "wrapped-for-bao" }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let wrap = || async {
            let (s, w) = server
                .json(Method::POST, "/v1/secrets/platform/W/wrap")
                .await;
            assert_eq!(s, 201, "{w}");
            w["token"].as_str().unwrap().to_string()
        };
        let bao_cli = |vault_token: &str, args: &[&str]| {
            std::process::Command::new(crate::harness::bao_binary())
                .args(args)
                .env("VAULT_ADDR", &server.api)
                .env("VAULT_TOKEN", vault_token)
                .env("HOME", std::env::temp_dir())
                .output()
                .unwrap()
        };
        // In the body, as `bao unwrap TOKEN` sends it (its own VAULT_TOKEN is ignored).
        let token = wrap().await;
        let out = bao_cli("unrelated", &["unwrap", "-field=value", &token]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            "wrapped-for-bao"
        );
        // As X-Vault-Token, as `VAULT_TOKEN=TOKEN bao unwrap` sends it.
        let token = wrap().await;
        let out = bao_cli(&token, &["unwrap", "-field=value"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            "wrapped-for-bao"
        );
        // Once only.
        let out = bao_cli(&token, &["unwrap", "-field=value"]);
        assert!(!out.status.success());
    }
}

/// Ordinary traffic on Vault (hits in every scope, misses that fall through, listings, API
/// reads of absent names) writes no ERROR line at the default log level: vaultrs and rustify
/// log an error for every 404, and those are expected answers here.
#[tokio::test]
async fn ordinary_lookups_and_misses_log_no_errors() {
    let bao = OpenBao::start();
    let mut options = Options::backend(Some(&bao));
    options.default_log = true;
    options.extra_args = vec!["--secrets-cache-ttl-ms".into(), "0".into()];
    let server = Server::start_with(options).await;
    server.deploy("acme/api", "secrets").await;
    for (path, value) in [
        ("/v1/projects/acme/packages/api/secrets/A", "a-value"),
        ("/v1/projects/acme/secrets/B", "b-value"),
        ("/v1/secrets/platform/C", "c-value"),
    ] {
        let r = server
            .api(Method::PUT, path)
            .json(&json!({ "value": value }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    for _ in 0..5 {
        for q in [
            "name=A",
            "name=B",
            "name=C",
            "name=MISSING",
            "name=A&scope=platform",
            "list=1",
        ] {
            let (status, body) = server.get(&format!("/acme/api/?{q}")).await;
            assert_eq!(status, 200, "{q}: {body}");
        }
        let (s, _) = server.json(Method::GET, "/v1/secrets/platform/NOPE").await;
        assert_eq!(s, 404);
        let (s, _) = server
            .json(Method::GET, "/v1/projects/acme/packages/api/secrets")
            .await;
        assert_eq!(s, 200);
    }
    let (_, found) = server.get("/acme/api/?name=C").await;
    assert!(found.contains("\"platform\""), "positive control: {found}");
    let log = server.log();
    let errors: Vec<&str> = log.lines().filter(|l| l.contains("ERROR")).collect();
    assert!(
        errors.is_empty(),
        "{} ERROR lines, first: {:?}",
        errors.len(),
        errors.first()
    );
    assert!(
        log.contains("secrets in Vault"),
        "the log is the server's own: {log:.500}"
    );
}

/// Import journals are settled at start with Edgeward's own Vault token: a journal planted by
/// anyone who can write under the prefix must not steer that token outside Edgeward's scopes
/// (another path of the mount, or `..` out of a scope), while a real entry beside them is
/// still put back.
#[tokio::test]
async fn a_forged_import_journal_cannot_steer_the_host_outside_its_scopes() {
    let bao = OpenBao::start();
    let prefix = unique("edgeward");
    let other = format!("other-app-{}", unique("x"));
    bao.cli(&[
        "kv",
        "put",
        "-mount=secret",
        &format!("{other}/DB"),
        "value=real-db-value",
    ]);
    // A platform secret the "import" wrote over, to be put back (the positive control).
    bao.cli(&[
        "kv",
        "put",
        "-mount=secret",
        &format!("{prefix}/platform/MINE"),
        "value=imported-value",
    ]);
    let journal = json!({
        "by": "attacker",
        "entries": [
            { "path": format!("{other}/DB"), "before": {"value": "attacker-value"},
              "after": {"value": "real-db-value"} },
            { "path": format!("{prefix}/platform/../../{other}/DB"),
              "before": {"value": "attacker-value"}, "after": {"value": "real-db-value"} },
            { "path": format!("{prefix}/platform/MINE"), "before": {"value": "restored-value"},
              "after": {"value": "imported-value"} },
            { "path": format!("{prefix}/platform/NEVER_WRITTEN"), "before": null,
              "after": {"value": "x"} },
        ]
    });
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), journal.to_string()).unwrap();
    bao.cli(&[
        "kv",
        "put",
        "-mount=secret",
        &format!("{prefix}/_imports/forged"),
        &format!("@{}", file.path().display()),
    ]);
    let options = Options {
        vault: Some((bao.addr.clone(), prefix.clone())),
        ..Options::default()
    };
    let server = Server::start_with(options).await;
    let get = |path: String| {
        bao.cli(&["kv", "get", "-mount=secret", "-field=value", &path])
            .trim()
            .to_string()
    };
    assert_eq!(
        get(format!("{other}/DB")),
        "real-db-value",
        "outside: untouched"
    );
    assert_eq!(
        get(format!("{prefix}/platform/MINE")),
        "restored-value",
        "inside: put back"
    );
    assert!(
        server
            .log()
            .contains("names a path outside Edgeward's scopes")
    );
    let (_, left, _) = bao.try_cli(&["kv", "list", "-mount=secret", &format!("{prefix}/_imports")]);
    assert!(left.trim().is_empty(), "the journal is settled: {left}");
}

/// The environment the `inspect` guest reports in `body`.
fn env_of(body: &str) -> std::collections::BTreeMap<String, String> {
    let body: Value = serde_json::from_str(body).unwrap();
    body["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|kv| {
            (
                kv[0].as_str().unwrap().into(),
                kv[1].as_str().unwrap().into(),
            )
        })
        .collect()
}

/// One field at a time (issue 16, item 1): `field` on the guest's handle (through the SDK),
/// `secret:NAME#FIELD` env bindings, and `[env.expand]` (a variable per field, the manifest's
/// own variables winning), with what a plain value or a missing field gets.
async fn one_field_at_a_time(bao: Option<&OpenBao>) {
    let server = Server::start_with(Options::backend(bao)).await;
    server.deploy("acme/reader", "secrets").await;
    server
        .deploy_with(
            "acme/env",
            "inspect",
            "[env]\nDB_HOST = \"secret:db#HOST\"\nDB_PORT = \"from-the-manifest\"\n\
             [env.expand]\nDB_ = \"secret:db\"\n",
        )
        .await;
    server
        .deploy_with(
            "acme/flat",
            "inspect",
            "[env.expand]\nP_ = \"secret:plain\"\n",
        )
        .await;
    let password = format!("pw-{}", unique("field"));
    server.plant_value(&password);
    for (name, value) in [
        (
            "db",
            json!({ "HOST": "db.internal", "PASSWORD": password, "PORT": 5432, "TLS": true,
                    "opt": null, "weird-key.x": "w" }),
        ),
        ("plain", json!("plain-text-value")),
    ] {
        server
            .put_secret(&format!("/v1/projects/acme/secrets/{name}"), value)
            .await;
    }
    for (query, want) in [
        ("name=db&field=HOST", json!("db.internal")),
        ("name=db&field=PASSWORD", json!(password)),
        ("name=db&field=PORT", json!("5432")),
        ("name=db&field=TLS", json!("true")),
        ("name=db&field=opt", Value::Null),
        ("name=db&field=missing", Value::Null),
        ("name=plain&field=HOST", Value::Null),
    ] {
        let (status, body) = server.get(&format!("/acme/reader/?{query}")).await;
        assert_eq!(status, 200, "{query}: {body}");
        let body: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(body["field"], want, "{query}: {body}");
    }

    let (status, body) = server.get("/acme/env/").await;
    assert_eq!(status, 200, "{body}");
    let env = env_of(&body);
    let want: std::collections::BTreeMap<String, String> = [
        ("DB_HOST", "db.internal"),
        ("DB_PASSWORD", password.as_str()),
        ("DB_PORT", "from-the-manifest"),
        ("DB_TLS", "true"),
        ("DB_weird_key_x", "w"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    assert_eq!(
        env, want,
        "null fields are left out, the manifest's variables win"
    );

    // Expanding a plain value is refused per request with the reason, never the value.
    let r = server
        .call(Method::GET, "/acme/flat/")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 500);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unresolved_binding", "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("plain value") && !message.contains("plain-text-value"),
        "{body}"
    );

    // A name may start with a digit (as EdgeSecrets allows `1abc`), on both backends.
    server
        .put_secret("/v1/projects/acme/secrets/1abc", json!("digit-first"))
        .await;
    let (_, body) = server.get("/acme/reader/?name=1abc&reveal=1").await;
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (&body["found"], &body["value"]),
        (&json!(true), &json!("digit-first")),
        "{body}"
    );
    let r = server
        .api(Method::PUT, "/v1/projects/acme/secrets/_x")
        .json(&json!({ "value": "v" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400, "a leading '_' stays refused");

    // A guest built against the WIT before `field` and `credentials` (examples/old-wit) still
    // deploys and runs.
    server.deploy("acme/old", "old-wit").await;
    let (status, body) = server.get("/acme/old/?db").await;
    assert_eq!(status, 200, "{body}");
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (&body["found"], &body["scope"]),
        (&json!(true), &json!("project")),
        "{body}"
    );
    assert!(body["len"].as_u64().unwrap() > 20, "{body}");

    // Deploy-time bindings (item 4): `--secret ENV=NAME[#FIELD]` and `--env K=V`, over the
    // manifest; one that cannot resolve is refused at deploy, naming it, and the version
    // before keeps serving.
    let inspect = crate::harness::guest("inspect");
    let inspect = inspect.to_str().unwrap();
    let (ok, _, err) = server.cli(&[
        "deploy",
        "acme/cli",
        inspect,
        "--secret",
        "PASS=db#PASSWORD",
        "--secret",
        "WHOLE=plain",
        "--env",
        "MODE=prod",
    ]);
    assert!(ok, "{err}");
    let expected: std::collections::BTreeMap<String, String> = [
        ("MODE", "prod"),
        ("PASS", password.as_str()),
        ("WHOLE", "plain-text-value"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let (status, body) = server.get("/acme/cli/").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(env_of(&body), expected);
    let (ok, _, err) = server.cli(&[
        "deploy",
        "acme/cli",
        inspect,
        "--secret",
        "X=nope",
        "--secret",
        "Y=db#NOPE",
    ]);
    assert!(!ok);
    assert!(
        err.contains("X (nope: no scope holds it)") && err.contains("Y (db has no field NOPE)"),
        "{err}"
    );
    let (_, body) = server.get("/acme/cli/").await;
    assert_eq!(env_of(&body), expected, "the version before keeps serving");
    let (ok, _, err) = server.cli(&["deploy", "acme/cli", inspect, "--secret", "no-equals"]);
    assert!(!ok && err.contains("KEY=VALUE"), "{err}");

    // Malformed bindings are refused at deploy.
    for (manifest, reason) in [
        ("[env]\nX = \"secret:db#\"\n", "not a field name"),
        ("[env]\nX = \"secret:db#a b\"\n", "not a field name"),
        (
            "[env.expand]\nP_ = \"literal\"\n",
            "bind a multi-field secret",
        ),
        (
            "[env.expand]\nP_ = \"secret:db#HOST\"\n",
            "bind a multi-field secret",
        ),
        (
            "[env.expand]\n\"1P\" = \"secret:db\"\n",
            "invalid variable name",
        ),
        (
            "secrets = [\"A\"]\n[env.expand]\nP_ = \"secret:db\"\n",
            "allowlist",
        ),
    ] {
        let (status, body) = server
            .try_deploy_with("acme/bad", "inspect", manifest)
            .await;
        assert_eq!(status, 422, "{manifest}");
        assert_eq!(body["error"]["code"], "bad_manifest");
        assert!(
            body["error"]["message"].as_str().unwrap().contains(reason),
            "{manifest}: {body}"
        );
    }

    // The upload's `bindings` and `env` parts, as a client other than the CLI could send
    // them: anything but an object of strings, a name that could widen a binding's reach, or
    // a variable name the manifest would refuse gets 422 with the reason; nothing deploys.
    for (part, text, reason) in [
        ("bindings", "[\"X\"]", "not a JSON object"),
        ("bindings", "{\"X\": 1}", "must be a string"),
        ("env", "not json", "not a JSON object"),
        (
            "bindings",
            "{\"X\": \"../platform/db\"}",
            "invalid secret name",
        ),
        ("bindings", "{\"X\": \"db#a b\"}", "not a field name"),
        ("bindings", "{\"1X\": \"db\"}", "invalid variable name"),
        ("env", "{\"A B\": \"v\"}", "invalid variable name"),
        // A "literal" that is a reference would bind a secret past the deploy-time check.
        ("env", "{\"X\": \"secret:nope\"}", "`env` takes literals"),
        ("env", "{\"X\": \"credential:K\"}", "`env` takes literals"),
    ] {
        let form = reqwest::multipart::Form::new()
            .part(
                "component",
                reqwest::multipart::Part::bytes(
                    std::fs::read(crate::harness::guest("inspect")).unwrap(),
                ),
            )
            .part(part, reqwest::multipart::Part::text(text));
        let r = server
            .api(Method::POST, "/v1/projects/acme/packages/bad/versions")
            .multipart(form)
            .send()
            .await
            .unwrap();
        let status = r.status();
        let body: Value = r.json().await.unwrap();
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(
            status == 422 && message.contains(reason),
            "{part} {text}: {status} {body}"
        );
    }
    let (status, _) = server
        .json(Method::GET, "/v1/projects/acme/packages/bad")
        .await;
    assert_eq!(status, 404, "a refused deploy deploys nothing");
}

#[tokio::test]
async fn one_field_at_a_time_on_the_embedded_backend() {
    one_field_at_a_time(None).await;
}

#[tokio::test]
async fn one_field_at_a_time_on_openbao() {
    let bao = OpenBao::start();
    one_field_at_a_time(Some(&bao)).await;
}

/// `bao kv` and hvac see what Edgeward wrote at the same paths: folders as Vault's nested
/// paths, versions as KV v2's, description and labels in the custom metadata.
fn vault_tools_agree(bao: &OpenBao, shared: &str) {
    let listed = bao.cli(&["kv", "list", "-mount=secret", "-format=json", shared]);
    let listed: Vec<String> = serde_json::from_str(&listed).unwrap();
    assert!(listed.contains(&"team/".to_string()), "{listed:?}");
    let team = bao.cli(&[
        "kv",
        "list",
        "-mount=secret",
        "-format=json",
        &format!("{shared}/team"),
    ]);
    let team: Vec<String> = serde_json::from_str(&team).unwrap();
    assert_eq!(
        team,
        ["cache", "db", "sub/"],
        "bao kv list shows the folder"
    );
    let meta = bao.cli(&[
        "kv",
        "metadata",
        "get",
        "-mount=secret",
        "-format=json",
        &format!("{shared}/team/db"),
    ]);
    let meta: Value = serde_json::from_str(&meta).unwrap();
    let data = &meta["data"];
    assert_eq!(data["current_version"], 14, "{meta}");
    assert_eq!(
        data["custom_metadata"]["description"], "the team database",
        "{meta}"
    );
    assert_eq!(data["custom_metadata"]["label.env"], "prod", "{meta}");
    let v5 = bao.cli(&[
        "kv",
        "get",
        "-mount=secret",
        "-format=json",
        "-version=5",
        &format!("{shared}/team/db"),
    ]);
    let v5: Value = serde_json::from_str(&v5).unwrap();
    assert_eq!(v5["data"]["data"]["HOST"], "h5", "{v5}");

    // hvac, the Python client Vault users script with, against the same paths.
    let script = format!(
        r#"
import hvac, json, os
c = hvac.Client(url={addr:?}, token=os.environ["VAULT_TOKEN"])
kv = c.secrets.kv.v2
out = {{
  "keys": kv.list_secrets(path={team:?}, mount_point="secret")["data"]["keys"],
  "v14": kv.read_secret_version(path={db:?}, version=14, mount_point="secret",
                                raise_on_deleted_version=True)["data"]["data"],
  "versions": sorted(int(v) for v in kv.read_secret_metadata(path={db:?},
                     mount_point="secret")["data"]["versions"]),
}}
print(json.dumps(out))
"#,
        addr = bao.addr,
        team = format!("{shared}/team"),
        db = format!("{shared}/team/db"),
    );
    let out = std::process::Command::new(crate::harness::repo_root().join(".venv/bin/python"))
        .args(["-c", &script])
        .env("VAULT_TOKEN", crate::harness::BAO_ROOT_TOKEN)
        .output()
        .expect("run python with hvac");
    assert!(
        out.status.success(),
        "hvac: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(got["keys"], json!(["cache", "db", "sub/"]), "{got}");
    assert_eq!(got["v14"]["HOST"], "h5", "rolled back: {got}");
    assert_eq!(
        got["versions"],
        json!((5..=14).collect::<Vec<u64>>()),
        "KV v2 keeps the last ten: {got}"
    );
}

const SEEDED: &str = "/v1/projects/acme/packages/seeded/secrets";
const SEEDED_PKG: &str = "/v1/projects/acme/packages/reader/secrets";

/// Issue 16, items 2, 5, 6, 7 and 8: folders (`team/db`), versions with rollback, description and
/// labels, and the RFC 1123 name mode, through the API, the CLI and a guest.
async fn folders_versions_and_labels(bao: Option<&OpenBao>) {
    let mut options = Options::backend(bao);
    options
        .extra_args
        .extend(["--secret-names".into(), "rfc1123".into()]);
    let fx = crate::identity::fixture_with(options).await;
    let server = &fx.server;
    server.deploy("acme/reader", "secrets").await;
    let secret = |name: &str| format!("{PROJ}/{}", name.replace('/', "%2F"));
    // Passwords no log, error or file may hold (the leak search at the end looks).
    let mark = unique("fold");
    let pw = |v: u32| format!("{mark}-{v}");
    for v in 1..=13 {
        server.plant_value(&pw(v));
    }

    // The CLI writes into a folder, with a description and labels.
    let (ok, out, err) = server.cli(&[
        "secrets",
        "set",
        "team/db",
        &json!({ "HOST": "h1", "PASSWORD": pw(1) }).to_string(),
        "--json",
        "--project",
        "acme",
        "--description",
        "the team database",
        "--label",
        "env=prod",
        "--label",
        "owner=team-a",
    ]);
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "project team/db version 1");
    for (name, value) in [
        ("team/cache", json!("c")),
        ("team/sub/deep", json!("d")),
        ("other", json!("o")),
    ] {
        server.put_secret(&secret(name), value).await;
    }

    // Listing by prefix: everything under it, and the folders directly under it.
    let (s, all) = call(&fx, "viewer", Method::GET, PROJ, None).await;
    assert_eq!(s, 200, "{all}");
    assert_eq!(all["folders"], json!(["team/"]), "{all}");
    let names = |list: &Value| -> Vec<String> {
        list["secrets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["name"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        names(&all),
        ["other", "team/cache", "team/db", "team/sub/deep"],
        "{all}"
    );
    let (s, team) = call(
        &fx,
        "viewer",
        Method::GET,
        &format!("{PROJ}?prefix=team/"),
        None,
    )
    .await;
    assert_eq!(s, 200, "{team}");
    assert_eq!(
        names(&team),
        ["team/cache", "team/db", "team/sub/deep"],
        "{team}"
    );
    assert_eq!(team["folders"], json!(["team/sub/"]), "{team}");
    let db = &team["secrets"][1];
    assert_eq!(db["description"], "the team database", "{db}");
    assert_eq!(
        db["labels"],
        json!({"env": "prod", "owner": "team-a"}),
        "{db}"
    );
    let (ok, out, err) = server.cli(&["secrets", "list", "--project", "acme", "team/"]);
    assert!(ok, "{err}");
    assert!(
        out.contains("team/db")
            && out.contains("the team database")
            && out.contains("env=prod")
            && !out.contains("other"),
        "{out}"
    );

    // A guest asks for a folder secret (and one field of it) by its full name.
    let got = guest(&fx, "acme/reader", "name=team/db&field=HOST", None).await;
    assert_eq!(got["field"], "h1", "{got}");

    // The slash written raw in the path gets a 404 that says how to write it.
    let (s, body) = call(&fx, "padmin", Method::GET, &format!("{PROJ}/team/db"), None).await;
    assert_eq!(s, 404, "{body}");
    assert!(
        body["error"]["message"].as_str().unwrap().contains("%2F"),
        "{body}"
    );
    // Bad folder names are refused whole, nothing written; RFC 1123 mode refuses what it must.
    for bad in [
        "team//x",
        "team/../x",
        "team/",
        "team/_x",
        "Team/db",
        "DB_PASS",
        "team/a_b",
    ] {
        let (s, body) = call(
            &fx,
            "padmin",
            Method::POST,
            PROJ,
            Some(json!({ "name": bad, "value": "v" })),
        )
        .await;
        assert_eq!(s, 400, "{bad}: {body}");
        assert_eq!(body["error"]["code"], "bad_entry", "{bad}: {body}");
    }
    let (_, body) = call(
        &fx,
        "padmin",
        Method::PUT,
        &secret("DB_PASS"),
        Some(json!({ "value": "v" })),
    )
    .await;
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("RFC 1123"),
        "{body}"
    );
    let (s, body) = call(
        &fx,
        "padmin",
        Method::PUT,
        PROJ,
        Some(json!({ "ok-name": "v", "Not_OK": "v" })),
    )
    .await;
    assert_eq!(
        s, 400,
        "an import with one bad name is refused whole: {body}"
    );
    let (_, all) = call(&fx, "viewer", Method::GET, PROJ, None).await;
    assert_eq!(names(&all).len(), 4, "nothing written: {all}");

    // Malformed queries, bodies and annotations: a clear 400 or 404, nothing written.
    let long_prefix = format!("{PROJ}?prefix={}", "a".repeat(300));
    for (method, path, body, want) in [
        (
            Method::GET,
            format!("{}?version=abc", secret("team/db")),
            None,
            400,
        ),
        (
            Method::GET,
            format!("{}?version=-1", secret("team/db")),
            None,
            400,
        ),
        (
            Method::GET,
            format!("{}?versions=1", secret("team/db")),
            None,
            400,
        ),
        (Method::GET, long_prefix, None, 400),
        (
            Method::GET,
            format!("{}/versions", secret("team/none")),
            None,
            404,
        ),
        (
            Method::POST,
            format!("{}/rollback", secret("team/db")),
            Some(json!({})),
            400,
        ),
        (
            Method::POST,
            format!("{}/rollback", secret("team/db")),
            Some(json!({ "version": "1" })),
            400,
        ),
        (
            Method::POST,
            format!("{}/rollback", secret("team/none")),
            Some(json!({ "version": 1 })),
            404,
        ),
        (
            Method::PUT,
            secret("team/db"),
            Some(
                json!({ "value": "x", "labels": (0..33).map(|i| (format!("k{i}"), "v")).collect::<std::collections::BTreeMap<_, _>>() }),
            ),
            400,
        ),
        (
            Method::PUT,
            secret("team/db"),
            Some(json!({ "value": "x", "labels": { "_bad": "v" } })),
            400,
        ),
        (
            Method::PUT,
            secret("team/db"),
            Some(json!({ "value": "x", "description": "line\nbreak" })),
            400,
        ),
        (
            Method::PATCH,
            "/v1/projects/acme".to_string(),
            Some(json!({ "members_read_secrets": "yes" })),
            400,
        ),
        (
            Method::PATCH,
            "/v1/projects/acme".to_string(),
            Some(json!({ "owner": "me" })),
            400,
        ),
    ] {
        let (s, body) = call(&fx, "padmin", method.clone(), &path, body).await;
        assert_eq!(s, want, "{method} {path}: {body}");
        assert!(body["error"]["code"].is_string(), "{method} {path}: {body}");
    }
    let (_, db) = call(&fx, "padmin", Method::GET, &secret("team/db"), None).await;
    assert_eq!(db["version"], 1, "refused writes wrote nothing: {db}");

    // Versions: thirteen more writes, the last ten kept (the embedded default, Vault's too).
    for v in 2..=13 {
        let (s, body) = call(
            &fx,
            "padmin",
            Method::PUT,
            &secret("team/db"),
            Some(json!({ "value": { "HOST": format!("h{v}"), "PASSWORD": pw(v) } })),
        )
        .await;
        assert_eq!((s, &body["version"]), (200, &json!(v)), "{body}");
    }
    let (s, versions) = call(
        &fx,
        "viewer",
        Method::GET,
        &format!("{}/versions", secret("team/db")),
        None,
    )
    .await;
    assert_eq!(s, 200, "members see version numbers: {versions}");
    let numbers: Vec<u64> = versions["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_u64().unwrap())
        .collect();
    assert_eq!(numbers, (4..=13).collect::<Vec<_>>(), "{versions}");
    assert_eq!(versions["versions"][9]["current"], true, "{versions}");
    assert!(
        !versions.to_string().contains(&mark),
        "no values: {versions}"
    );
    // An older version's value: for those who may read values, audited.
    let (s, _) = call(
        &fx,
        "viewer",
        Method::GET,
        &format!("{}?version=5", secret("team/db")),
        None,
    )
    .await;
    assert_eq!(s, 403, "a viewer reads no values, old or new");
    let (ok, out, err) = server.cli(&[
        "secrets",
        "get",
        "team/db",
        "--project",
        "acme",
        "--version",
        "5",
        "--field",
        "HOST",
    ]);
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "h5");
    let (s, body) = call(
        &fx,
        "padmin",
        Method::GET,
        &format!("{}?version=2", secret("team/db")),
        None,
    )
    .await;
    assert_eq!(
        (s, &body["error"]["code"]),
        (404, &json!("not_found")),
        "{body}"
    );
    let (ok, out, err) = server.cli(&["secrets", "versions", "team/db", "--project", "acme"]);
    assert!(ok, "{err}");
    assert!(out.contains("current") && out.contains("13"), "{out}");

    // Rollback: version 5's value becomes current as version 14; the guest sees it.
    let (s, _) = call(
        &fx,
        "dev",
        Method::POST,
        &format!("{}/rollback", secret("team/db")),
        Some(json!({ "version": 5 })),
    )
    .await;
    assert_eq!(
        s, 403,
        "rolling back a project secret is a project admin's write"
    );
    let (ok, out, err) = server.cli(&[
        "secrets",
        "rollback",
        "team/db",
        "--to",
        "5",
        "--project",
        "acme",
    ]);
    assert!(ok, "{err}");
    assert!(out.contains("now version 14"), "{out}");
    let got = guest(&fx, "acme/reader", "name=team/db&field=HOST", None).await;
    assert_eq!(got["field"], "h5", "{got}");
    let (ok, _, err) = server.cli(&[
        "secrets",
        "rollback",
        "team/db",
        "--to",
        "1",
        "--project",
        "acme",
    ]);
    assert!(!ok && err.contains("not_found"), "{err}");
    // Writes without a description keep it; the audit names the reads of old versions.
    let (_, team) = call(
        &fx,
        "viewer",
        Method::GET,
        &format!("{PROJ}?prefix=team/d"),
        None,
    )
    .await;
    assert_eq!(
        team["secrets"][0]["description"], "the team database",
        "{team}"
    );
    assert_eq!(team["secrets"][0]["version"], 14, "{team}");
    let (_, audit) = call(&fx, "platform", Method::GET, "/v1/audit?limit=1000", None).await;
    let entries = audit["entries"].as_array().unwrap();
    let find = |detail: &str| {
        entries.iter().any(|e| {
            let suffix = if detail.starts_with("rolled") {
                "/rollback"
            } else {
                ""
            };
            e["target"] == format!("{PROJ}/team/db{suffix}")
                && e["detail"] == detail
                && e["status"] == 200
        })
    };
    assert!(
        find("version 5") && find("rolled back to version 5's value"),
        "reads of old versions and rollbacks are audited with the name and version: {audit}"
    );

    // Item 6: a project may let every member read its project-scope values (EdgeSecrets'
    // organisation secrets); off by default, a project admin's switch, each read audited.
    let other = format!("{PROJ}/other");
    let (s, _) = call(&fx, "viewer", Method::GET, &other, None).await;
    assert_eq!(s, 403, "off by default");
    let (s, _) = call(
        &fx,
        "dev",
        Method::PATCH,
        "/v1/projects/acme",
        Some(json!({ "members_read_secrets": true })),
    )
    .await;
    assert_eq!(s, 403, "a project admin's setting");
    let (ok, out, err) = server.cli(&["projects", "set", "acme", "--members-read-secrets", "on"]);
    assert!(
        ok && out.contains("every member may now read"),
        "{out}{err}"
    );
    let (ok, out, _) = server.cli(&["-o", "json", "projects", "list"]);
    assert!(
        ok && out.contains(r#""members_read_secrets":true"#),
        "{out}"
    );
    for who in ["viewer", "dev"] {
        let (s, body) = call(&fx, who, Method::GET, &other, None).await;
        assert_eq!((s, &body["value"]), (200, &json!("o")), "{who}: {body}");
    }
    let (s, body) = call(&fx, "viewer", Method::POST, &format!("{other}/wrap"), None).await;
    assert_eq!(s, 201, "wrapping is a read: {body}");
    let (s, _) = call(
        &fx,
        "viewer",
        Method::PUT,
        &other,
        Some(json!({ "value": "w" })),
    )
    .await;
    assert_eq!(s, 403, "writes stay with project admins");
    let (s, _) = call(
        &fx,
        "viewer",
        Method::GET,
        &format!("{SEEDED_PKG}/keep"),
        None,
    )
    .await;
    assert_eq!(s, 403, "package-scope values stay with project admins");
    let (s, _) = call(&fx, "oadmin", Method::GET, &other, None).await;
    assert_eq!(s, 404, "another project's admin is no member");
    let (_, audit) = call(&fx, "platform", Method::GET, "/v1/audit?limit=1000", None).await;
    assert!(
        audit["entries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["actor"] == "viewer"
                && e["target"] == other
                && e["action"] == "GET /v1/projects/{project}/secrets/{name}"
                && e["status"] == 200),
        "a member's read is audited: {audit}"
    );
    let (s, body) = call(
        &fx,
        "padmin",
        Method::PATCH,
        "/v1/projects/acme",
        Some(json!({ "members_read_secrets": false })),
    )
    .await;
    assert_eq!(
        (s, &body["members_read_secrets"]),
        (200, &json!(false)),
        "{body}"
    );
    let (s, _) = call(&fx, "viewer", Method::GET, &other, None).await;
    assert_eq!(s, 403, "off again");

    // Item 8: a redeploy's secrets.json replaces what the previous one set; names written
    // through the API since, or only through the API, stay.
    let dir = tempfile::tempdir().unwrap();
    let (first, second) = (
        dir.path().join("first.json"),
        dir.path().join("second.json"),
    );
    std::fs::write(
        &first,
        json!({ "keep": "k1", "drop": "d1", "changed": "c1", "team/seeded": "s1" }).to_string(),
    )
    .unwrap();
    std::fs::write(&second, json!({ "keep": "k2" }).to_string()).unwrap();
    let inspect = crate::harness::guest("inspect");
    let deploy = |file: Option<&std::path::Path>| {
        let mut args = vec!["deploy", "acme/seeded", inspect.to_str().unwrap()];
        if let Some(f) = file {
            args.extend(["--secrets", f.to_str().unwrap()]);
        }
        let (ok, out, err) = server.cli(&args);
        assert!(ok, "{err}");
        out
    };
    let out = deploy(Some(&first));
    assert!(
        out.contains("secrets.json set package secrets: changed, drop, keep, team/seeded"),
        "{out}"
    );
    for name in ["changed", "api-only"] {
        server
            .put_secret(&format!("{SEEDED}/{name}"), json!("from-the-api"))
            .await;
    }
    let out = deploy(Some(&second));
    assert!(
        out.contains("removed package secrets the previous --secrets set and this one leaves out: drop, team/seeded"),
        "{out}"
    );
    let out = deploy(None);
    assert!(
        !out.contains("removed"),
        "no --secrets, nothing removed: {out}"
    );
    let (_, left) = call(&fx, "viewer", Method::GET, SEEDED, None).await;
    assert_eq!(names(&left), ["api-only", "changed", "keep"], "{left}");
    let (_, keep) = call(&fx, "padmin", Method::GET, &format!("{SEEDED}/keep"), None).await;
    assert_eq!(keep["value"], "k2", "{keep}");

    if let Some(bao) = bao {
        let prefix = server.vault_prefix.clone().unwrap();
        let shared = format!("{prefix}/projects/acme/shared");
        vault_tools_agree(bao, &shared);
        // A folder made in Vault directly is listed and read, names of either case (reads
        // take the default rule whatever the write mode).
        bao.cli(&[
            "kv",
            "put",
            "-mount=secret",
            &format!("{shared}/vault-only/Key_1"),
            "value=from-bao",
        ]);
        let (_, all) = call(&fx, "viewer", Method::GET, PROJ, None).await;
        assert!(
            names(&all).contains(&"vault-only/Key_1".to_string()),
            "{all}"
        );
        assert_eq!(all["folders"], json!(["team/", "vault-only/"]), "{all}");
        let got = guest(&fx, "acme/reader", "name=vault-only/Key_1", None).await;
        assert_eq!(got["value"], "from-bao", "{got}");
    }
}

#[tokio::test]
async fn folders_versions_and_labels_on_the_embedded_backend() {
    folders_versions_and_labels(None).await;
}

#[tokio::test]
async fn folders_versions_and_labels_on_openbao() {
    let bao = OpenBao::start();
    folders_versions_and_labels(Some(&bao)).await;
}

/// Issue 16, item 3: a function writes and deletes secrets, where its manifest grants the
/// scope, with the rights of the user whose token triggered it (none without a token), every
/// attempt audited as that user through that package.
async fn written_from_a_function(bao: Option<&OpenBao>) {
    let fx = crate::identity::fixture_with(Options::backend(bao)).await;
    let server = &fx.server;
    server
        .deploy_with(
            "acme/writer",
            "secrets",
            "write-secrets = [\"package\", \"project\"]\n",
        )
        .await;
    server
        .deploy_with(
            "acme/mine",
            "secrets",
            "user-secrets = [\"note\"]\nwrite-secrets = [\"user\"]\n",
        )
        .await;
    crate::identity::grant(&fx, "alice", fx.token("alice").unwrap(), "acme/mine").await;
    server.deploy("acme/plain", "secrets").await;
    let run = |who: &'static str, target: &'static str, query: String| {
        let fx = &fx;
        async move {
            let mut req = fx.server.call(Method::GET, &format!("/{target}/?{query}"));
            if let Some(t) = fx.token(who) {
                req = req.bearer_auth(t);
            }
            let r = req.send().await.unwrap();
            assert_eq!(r.status(), 200);
            r.json::<Value>().await.unwrap()
        }
    };
    let set = |who, target, scope: &str, name: &str, value: &str| {
        run(
            who,
            target,
            format!("set={name}&scope={scope}&value={value}"),
        )
    };
    let denied = |got: &Value, says: &str| {
        assert_eq!(got["error"], "denied", "{got}");
        assert!(
            got["message"].as_str().unwrap().contains(says),
            "{says}: {got}"
        );
    };

    denied(
        &set("none", "acme/writer", "package", "w1", "v").await,
        "token",
    );
    denied(
        &set("viewer", "acme/writer", "package", "w1", "v").await,
        "developer role",
    );
    let got = set("dev", "acme/writer", "package", "w1", "written-by-dev").await;
    assert_eq!(got["version"], 1, "{got}");
    denied(
        &set("dev", "acme/writer", "project", "p1", "v").await,
        "admin role",
    );
    let got = set("padmin", "acme/writer", "project", "p1", "project-value").await;
    assert_eq!(got["version"], 1, "{got}");
    denied(
        &set("platform", "acme/writer", "platform", "x", "v").await,
        "write-secrets",
    );
    denied(
        &set("padmin", "acme/plain", "package", "w1", "v").await,
        "write-secrets",
    );
    // What was written is what the API and every function read, written by that user.
    let pkg = "/v1/projects/acme/packages/writer/secrets";
    let (s, read) = call(&fx, "padmin", Method::GET, &format!("{pkg}/w1"), None).await;
    assert_eq!(
        (s, &read["value"]),
        (200, &json!("written-by-dev")),
        "{read}"
    );
    let (_, list) = call(&fx, "viewer", Method::GET, pkg, None).await;
    assert_eq!(list["secrets"][0]["updated_by"], "dev", "{list}");
    let got = guest(&fx, "acme/plain", "name=p1", None).await;
    assert_eq!(
        (&got["scope"], &got["value"]),
        (&json!("project"), &json!("project-value")),
        "{got}"
    );
    // The API's checks and limits: names, values, sizes; a folder name is a name.
    let bad = run(
        "dev",
        "acme/writer",
        "set=../x&scope=package&value=v".into(),
    )
    .await;
    assert_eq!(bad["error"], "bad_entry", "{bad}");
    let big = run(
        "dev",
        "acme/writer",
        "set=big&scope=package&value_len=70000".into(),
    )
    .await;
    assert_eq!(big["error"], "too_large", "{big}");
    let enc = |v: &str| {
        percent_encoding::utf8_percent_encode(v, percent_encoding::NON_ALPHANUMERIC).to_string()
    };
    for fields in ["not-json", "[1,2]", "{\"n\":1e3}"] {
        let got = run(
            "dev",
            "acme/writer",
            format!("set=obj&scope=package&fields=1&value={}", enc(fields)),
        )
        .await;
        assert_eq!(got["error"], "bad_entry", "{fields}: {got}");
    }
    let got = run(
        "dev",
        "acme/writer",
        format!(
            "set=team/obj&scope=package&fields=1&value={}",
            enc(r#"{"user":"u","port":5432}"#)
        ),
    )
    .await;
    assert_eq!(got["version"], 1, "{got}");
    let got = guest(&fx, "acme/writer", "name=team/obj&field=port", None).await;
    assert_eq!(got["field"], "5432", "{got}");
    // Deletes, under the same rules.
    let del = |who| run(who, "acme/writer", "delete=w1&scope=package".into());
    denied(&del("viewer").await, "developer role");
    assert_eq!(del("dev").await, json!({ "deleted": true }));
    assert_eq!(del("dev").await, json!({ "deleted": false }));
    // A user's own scope, sealed under the key their token opens.
    let got = set("alice", "acme/mine", "user", "note", "alice-note").await;
    assert_eq!(got["version"], 1, "{got}");
    let (s, note) = call(
        &fx,
        "alice",
        Method::GET,
        "/v1/users/alice/secrets/note",
        None,
    )
    .await;
    assert_eq!((s, &note["value"]), (200, &json!("alice-note")), "{note}");

    // Every attempt is in the audit log as the user, naming the package and execution.
    let (_, audit) = call(&fx, "platform", Method::GET, "/v1/audit?limit=1000", None).await;
    let entries = audit["entries"].as_array().unwrap();
    let has = |actor: &str, action: &str, target: &str, outcome: &str| {
        entries.iter().any(|e| {
            e["actor"] == actor
                && e["action"] == action
                && e["target"] == target
                && e["outcome"] == outcome
                && e["detail"]
                    .as_str()
                    .is_some_and(|d| d.contains("acme/writer") && d.contains("execution"))
        })
    };
    assert!(
        has("dev", "function secrets.set", &format!("{pkg}/w1"), "ok"),
        "{audit}"
    );
    assert!(
        has(
            "viewer",
            "function secrets.set",
            &format!("{pkg}/w1"),
            "denied"
        ),
        "{audit}"
    );
    assert!(
        has("dev", "function secrets.delete", &format!("{pkg}/w1"), "ok"),
        "{audit}"
    );
    assert!(
        has(
            "padmin",
            "function secrets.set",
            "/v1/projects/acme/secrets/p1",
            "ok"
        ),
        "{audit}"
    );
    assert!(
        !audit.to_string().contains("written-by-dev"),
        "no values in the audit log"
    );
    // A guest looping on a refused write gets at most 64 attempts: 65 audited attempts (one
    // for the limit), not one per loop. The log keeps at most 20 a second per user and
    // package (a burst of 20, then one every 50 ms); the rest are counted into that user and
    // package's next record kept.
    let got = run(
        "viewer",
        "acme/writer",
        "set=loop&scope=package&value=v&repeat=500".into(),
    )
    .await;
    denied(&got, "at most 64");
    // The next attempt, a full second later, when the rate (20 a second, a generic cell rate)
    // has its whole allowance back (waited for on the clock, not guessed).
    let looped_at = std::time::Instant::now();
    while looped_at.elapsed() < Duration::from_millis(1050) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    denied(
        &run(
            "viewer",
            "acme/writer",
            "set=after&scope=package&value=v".into(),
        )
        .await,
        "developer role",
    );
    let (_, audit) = call(&fx, "platform", Method::GET, "/v1/audit?limit=1000", None).await;
    let entries = audit["entries"].as_array().unwrap();
    let kept: Vec<&Value> = entries
        .iter()
        .filter(|e| e["target"] == format!("{pkg}/loop") || e["target"] == format!("{pkg}/after"))
        .collect();
    let looped = kept.len() - 1;
    // What each kept record says was not recorded before it.
    let folded: usize = kept
        .iter()
        .map(|e| {
            e["detail"]
                .as_str()
                .unwrap()
                .split_once(" earlier attempts")
                .map_or(0, |(head, _)| {
                    head.rsplit('(').next().unwrap().trim().parse().unwrap()
                })
        })
        .sum();
    assert_eq!(
        looped + folded,
        65,
        "{looped} kept, {folded} folded: {kept:?}"
    );
    assert!(looped >= 1, "{audit}");

    if let Some(bao) = bao {
        let prefix = server.vault_prefix.clone().unwrap();
        let got = bao.cli(&[
            "kv",
            "get",
            "-mount=secret",
            "-format=json",
            &format!("{prefix}/projects/acme/packages/writer/team/obj"),
        ]);
        let got: Value = serde_json::from_str(&got).unwrap();
        assert_eq!(got["data"]["data"]["user"], "u", "{got}");
    }
}

#[tokio::test]
async fn secrets_written_from_a_function_on_the_embedded_backend() {
    written_from_a_function(None).await;
}

#[tokio::test]
async fn secrets_written_from_a_function_on_openbao() {
    let bao = OpenBao::start();
    written_from_a_function(Some(&bao)).await;
}

/// `?prefix=` on the Vault backend reads the metadata of the matching secrets only (and lists
/// only the folders the prefix reaches), counted in OpenBao's own audit log: a scope of many
/// secrets pays for the ones asked for.
#[tokio::test]
async fn a_prefixed_listing_reads_only_the_matching_metadata_on_openbao() {
    let bao = OpenBao::start_audited();
    let server = Server::start_with(Options::backend(Some(&bao))).await;
    server.deploy("acme/hello", "hello").await;
    let secret = |name: &str| format!("{PROJ}/{}", name.replace('/', "%2F"));
    let mut names = vec!["team/db".to_string(), "team/sub/deep".to_string()];
    names.extend((0..12).map(|i| format!("other/s{i}")));
    names.extend(["teamwork".to_string(), "z".to_string()]);
    for name in &names {
        server.put_secret(&secret(name), json!("v")).await;
    }
    let audit_log = bao.audit_log.clone().unwrap();
    let folder = format!(
        "secret/metadata/{}/projects/acme/shared/",
        server.vault_prefix.as_deref().unwrap()
    );
    // The requests OpenBao has seen under the scope's folder since the last look:
    // (operation, path below the folder).
    let mut seen = std::fs::read_to_string(&audit_log)
        .unwrap_or_default()
        .lines()
        .count();
    let mut requests = || {
        let text = std::fs::read_to_string(&audit_log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let new: Vec<(String, String)> = lines[seen..]
            .iter()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|e| e["type"] == "request")
            .filter_map(|e| {
                let path = e["request"]["path"].as_str()?;
                let rest = path.strip_prefix(&folder)?.to_string();
                Some((e["request"]["operation"].as_str()?.to_string(), rest))
            })
            .collect();
        seen = lines.len();
        new
    };

    let (status, team) = server
        .json(Method::GET, &format!("{PROJ}?prefix=team/"))
        .await;
    assert_eq!(status, 200, "{team}");
    let listed: Vec<&str> = team["secrets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(listed, ["team/db", "team/sub/deep"], "{team}");
    assert_eq!(team["folders"], json!(["team/sub/"]), "{team}");
    let mut asked = requests();
    asked.sort();
    assert_eq!(
        asked,
        [
            ("list", ""),
            ("list", "team/"),
            ("list", "team/sub/"),
            ("read", "team/db"),
            ("read", "team/sub/deep"),
        ]
        .map(|(o, p)| (o.to_string(), p.to_string())),
        "what a prefixed listing asked OpenBao for"
    );

    // Without a prefix, every secret's metadata is read (the count above is not blind).
    let (status, all) = server.json(Method::GET, PROJ).await;
    assert_eq!(status, 200, "{all}");
    assert_eq!(all["secrets"].as_array().unwrap().len(), names.len());
    let reads = requests().iter().filter(|(o, _)| o == "read").count();
    assert_eq!(reads, names.len());
}
