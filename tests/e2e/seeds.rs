//! The seeds' workflows end to end (issue 31), on both backends: a metadata-only update (002),
//! a version deleted in Vault outside Edgeward (000), a delete of a secret a serving version
//! binds (004), the seed's redeem of a wrapping token (001), and writes from a function
//! without a caller token (003).

use crate::harness::OpenBao;
use crate::harness::Options;
use crate::identity::Fixture;
use reqwest::Method;
use serde_json::{Value, json};

const PKG: &str = "/v1/projects/acme/packages/api/secrets";

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

async fn workflows(bao: Option<&OpenBao>) {
    let fx = crate::identity::fixture_with(Options::backend(bao)).await;
    metadata_only_update(&fx, bao).await;
    deleted_in_vault(&fx, bao).await;
    delete_of_a_bound_secret(&fx).await;
    unwrap_as_the_seed_redeems(&fx, bao).await;
    writes_as_the_package(&fx).await;
}

/// 002: `PATCH` with only a description and labels keeps the value and its version; the CLI's
/// `secrets update --description` needs no value; text `secrets list` shows folders.
async fn metadata_only_update(fx: &Fixture, bao: Option<&OpenBao>) {
    let one = format!("{PKG}/team%2Fdb");
    let (s, b) = call(fx, "dev", Method::PUT, &one, Some(json!({ "value": "v1" }))).await;
    assert_eq!(s, 200, "{b}");
    let (s, b) = call(
        fx,
        "dev",
        Method::PATCH,
        &one,
        Some(json!({ "description": "the database", "labels": { "env": "prod" } })),
    )
    .await;
    assert_eq!((s, &b["version"]), (200, &json!(1)), "no new version: {b}");
    let (_, list) = call(
        fx,
        "viewer",
        Method::GET,
        &format!("{PKG}?prefix=team/"),
        None,
    )
    .await;
    let meta = &list["secrets"][0];
    assert_eq!(
        (
            &meta["version"],
            &meta["description"],
            &meta["labels"]["env"]
        ),
        (&json!(1), &json!("the database"), &json!("prod")),
        "{list}"
    );
    let (_, read) = call(fx, "padmin", Method::GET, &one, None).await;
    assert_eq!(
        (&read["value"], &read["version"]),
        (&json!("v1"), &json!(1))
    );
    if let Some(bao) = bao {
        // Vault: custom metadata only, no new KV version.
        let path = format!(
            "{}/projects/acme/packages/api/team/db",
            fx.server.vault_prefix.clone().unwrap()
        );
        let meta = bao.cli(&[
            "kv",
            "metadata",
            "get",
            "-format=json",
            "-mount=secret",
            &path,
        ]);
        let meta: Value = serde_json::from_str(&meta).unwrap();
        assert_eq!(meta["data"]["current_version"], 1, "{meta}");
    }
    // Nothing to change, or an unknown secret: clear errors.
    let (s, b) = call(fx, "dev", Method::PATCH, &one, Some(json!({}))).await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (400, Some("bad_entry")),
        "{b}"
    );
    let (s, b) = call(
        fx,
        "dev",
        Method::PATCH,
        &format!("{PKG}/absent"),
        Some(json!({ "description": "x" })),
    )
    .await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (404, Some("not_found")),
        "{b}"
    );
    // A viewer may not, as for any write.
    let (s, _) = call(
        fx,
        "viewer",
        Method::PATCH,
        &one,
        Some(json!({ "description": "x" })),
    )
    .await;
    assert_eq!(s, 403);
    // The CLI, without a value.
    let scope = ["--project", "acme", "--package", "api"];
    let (ok, out, err) = fx.server.cli(
        &[
            &[
                "secrets",
                "update",
                "team/db",
                "--description",
                "from the CLI",
            ][..],
            &scope[..],
        ]
        .concat(),
    );
    assert!(ok, "{out}{err}");
    assert!(out.contains("version 1"), "{out}");
    let (ok, out, err) = fx
        .server
        .cli(&[&["secrets", "list"][..], &scope[..]].concat());
    assert!(ok, "{err}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("team/") && l.contains("(folder)")),
        "text listings show folders: {out}"
    );
    let (ok, out, _) = fx
        .server
        .cli(&[&["secrets", "list", "team/"][..], &scope[..]].concat());
    assert!(
        ok && out.contains("team/db") && out.contains("from the CLI"),
        "{out}"
    );
}

/// 000: a version soft-deleted or destroyed in Vault outside Edgeward disappears from
/// listings and API reads at once, with the default cache (30 s); on the embedded backend an
/// API delete does the same.
async fn deleted_in_vault(fx: &Fixture, bao: Option<&OpenBao>) {
    let one = format!("{PKG}/GONE");
    let (s, _) = call(
        fx,
        "dev",
        Method::PUT,
        &one,
        Some(json!({ "value": "was-here" })),
    )
    .await;
    assert_eq!(s, 200);
    // Read once, so the cache holds it, as a guest's lookup would.
    let (s, _) = call(fx, "padmin", Method::GET, &one, None).await;
    assert_eq!(s, 200);
    let listed = |list: &Value| {
        list["secrets"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["name"] == "GONE")
    };
    let (_, list) = call(fx, "viewer", Method::GET, PKG, None).await;
    assert!(listed(&list), "{list}");
    match bao {
        Some(bao) => {
            let path = format!(
                "{}/projects/acme/packages/api/GONE",
                fx.server.vault_prefix.clone().unwrap()
            );
            bao.cli(&["kv", "delete", "-mount=secret", &path]);
            let (s, b) = call(fx, "padmin", Method::GET, &one, None).await;
            assert_eq!(
                (s, b["error"]["code"].as_str()),
                (404, Some("not_found")),
                "{b}"
            );
            let (_, list) = call(fx, "viewer", Method::GET, PKG, None).await;
            assert!(!listed(&list), "soft-deleted, not listed: {list}");
            // Undeleted, it is back; destroyed, gone again.
            bao.cli(&["kv", "undelete", "-mount=secret", "-versions=1", &path]);
            let (s, _) = call(fx, "padmin", Method::GET, &one, None).await;
            assert_eq!(s, 200);
            bao.cli(&["kv", "destroy", "-mount=secret", "-versions=1", &path]);
            let (s, _) = call(fx, "padmin", Method::GET, &one, None).await;
            assert_eq!(s, 404);
            let (_, list) = call(fx, "viewer", Method::GET, PKG, None).await;
            assert!(!listed(&list), "destroyed, not listed: {list}");
        }
        None => {
            let (s, _) = call(fx, "dev", Method::DELETE, &one, None).await;
            assert_eq!(s, 204);
            let (s, _) = call(fx, "padmin", Method::GET, &one, None).await;
            assert_eq!(s, 404);
            let (_, list) = call(fx, "viewer", Method::GET, PKG, None).await;
            assert!(!listed(&list), "{list}");
        }
    }
}

/// 004: a secret a serving version binds is not deleted without `force`; the refusal names
/// the versions; forced, the delete is audited as such.
async fn delete_of_a_bound_secret(fx: &Fixture) {
    let server = &fx.server;
    let (s, _) = call(
        fx,
        "padmin",
        Method::PUT,
        "/v1/projects/acme/secrets/DB",
        Some(json!({ "value": "db-url" })),
    )
    .await;
    assert_eq!(s, 200);
    server
        .deploy_with("acme/bound", "secrets", "[env]\nDB_URL = \"secret:DB\"\n")
        .await;
    server
        .deploy_with(
            "acme/cred",
            "secrets",
            "[outbound]\nhosts = [\"https://api.example.com\"]\n\
             [[outbound.credentials]]\nsecret = \"DB\"\nhosts = [\"https://api.example.com\"]\n",
        )
        .await;
    let proj = "/v1/projects/acme/secrets/DB";
    let (s, b) = call(fx, "padmin", Method::DELETE, proj, None).await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (409, Some("in_use")),
        "{b}"
    );
    let message = b["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("acme/bound v1") && message.contains("acme/cred v1"),
        "{message}"
    );
    assert!(!message.contains("db-url"), "{message}");
    // Still there, and the package still serves.
    let r = server
        .call(Method::GET, "/acme/bound/?name=DB")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // The CLI says the same, with its conflict exit status; --force deletes.
    let (ok, _, err) = server.cli(&["secrets", "rm", "DB", "-y", "--project", "acme"]);
    assert!(!ok && err.contains("in_use"), "{err}");
    let (ok, _, err) = server.cli(&["secrets", "rm", "DB", "-y", "--force", "--project", "acme"]);
    assert!(ok, "{err}");
    let r = server
        .call(Method::GET, "/acme/bound/?name=DB")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 500, "unbound once forced");
    let (_, audit) = fx.admin(Method::GET, "/v1/audit?limit=1000", None).await;
    assert!(
        audit["entries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["target"] == proj
                && e["detail"]
                    .as_str()
                    .is_some_and(|d| d.starts_with("forced; bound by"))),
        "{audit}"
    );
    // A secret nobody binds deletes as before; a package-scope name of another package does
    // not count as bound.
    let (s, _) = call(
        fx,
        "dev",
        Method::PUT,
        "/v1/projects/acme/packages/other/secrets/DB",
        Some(json!({ "value": "x" })),
    )
    .await;
    assert_eq!(s, 200);
    let (s, b) = call(
        fx,
        "dev",
        Method::DELETE,
        "/v1/projects/acme/packages/other/secrets/DB",
        None,
    )
    .await;
    assert_eq!(s, 204, "{b}");
}

/// 001: the seed's redeem, a POST with `X-Vault-Token` to the `unwrap_url` the wrap answer
/// names, from a Python script; the same answer on both backends; once only.
async fn unwrap_as_the_seed_redeems(fx: &Fixture, bao: Option<&OpenBao>) {
    let script = r#"
import json, os, urllib.request
req = urllib.request.Request(os.environ["UNWRAP_URL"], method="POST",
                             headers={"X-Vault-Token": os.environ["WRAPPED"]})
try:
    with urllib.request.urlopen(req) as r:
        print(json.dumps({"status": r.status, "body": json.load(r)}))
except urllib.error.HTTPError as e:
    print(json.dumps({"status": e.code, "body": json.load(e)}))
"#;
    let redeem = |url: &str, token: &str| {
        let out = std::process::Command::new(crate::harness::repo_root().join(".venv/bin/python"))
            .args(["-c", script])
            .env("UNWRAP_URL", url)
            .env("WRAPPED", token)
            .output()
            .expect("run python");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<Value>(&out.stdout).unwrap()
    };
    for (name, value, data) in [
        ("PLAIN", json!("plain-w"), json!({ "value": "plain-w" })),
        (
            "FIELDS",
            json!({ "user": "u", "password": "pw-w" }),
            json!({ "user": "u", "password": "pw-w" }),
        ),
    ] {
        let one = format!("{PKG}/{name}");
        let (s, _) = call(
            fx,
            "dev",
            Method::PUT,
            &one,
            Some(json!({ "value": value })),
        )
        .await;
        assert_eq!(s, 200);
        let (s, w) = call(fx, "padmin", Method::POST, &format!("{one}/wrap"), None).await;
        assert_eq!(s, 201, "{w}");
        let url = w["unwrap_url"].as_str().unwrap();
        assert_eq!(url, format!("{}/v1/unwrap", fx.server.api), "{w}");
        assert_eq!(w["vault_unwrap_url"].is_string(), bao.is_some(), "{w}");
        let got = redeem(url, w["token"].as_str().unwrap());
        assert_eq!(got["status"], 200, "{got}");
        assert_eq!(
            got["body"],
            json!({ "value": value, "data": data }),
            "{got}"
        );
        let again = redeem(url, w["token"].as_str().unwrap());
        assert_eq!(
            (&again["status"], &again["body"]["error"]["code"]),
            (&json!(404), &json!("not_found")),
            "once only: {again}"
        );
    }
    // Without a token: a clear 400.
    let r = crate::harness::http()
        .post(format!("{}/v1/unwrap", fx.server.api))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
}

/// 003: `write-secrets-as = "package"` lets a function write its own package scope without a
/// caller token, audited as the package, and nothing wider.
async fn writes_as_the_package(fx: &Fixture) {
    let server = &fx.server;
    server
        .deploy_with(
            "acme/selfw",
            "secrets",
            "write-secrets = [\"package\", \"project\"]\nwrite-secrets-as = \"package\"\n",
        )
        .await;
    let run = |who: &'static str, query: &'static str| async move {
        let mut req = fx
            .server
            .call(Method::GET, &format!("/acme/selfw/?{query}"));
        if let Some(t) = fx.token(who) {
            req = req.bearer_auth(t);
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), 200);
        r.json::<Value>().await.unwrap()
    };
    let got = run("none", "set=counter&scope=package&value=1").await;
    assert_eq!(got["version"], 1, "{got}");
    // Nothing wider without a caller: not the project, not the platform, not a user.
    for query in [
        "set=x&scope=project&value=v",
        "set=x&scope=platform&value=v",
        "set=x&scope=user&value=v",
    ] {
        let got = run("none", query).await;
        assert_eq!(got["error"], "denied", "{query}: {got}");
    }
    // A viewer's token does not narrow the package's own scope, nor widen anything else.
    let got = run("viewer", "set=counter&scope=package&value=2").await;
    assert_eq!(got["version"], 2, "{got}");
    let got = run("viewer", "set=x&scope=project&value=v").await;
    assert_eq!(got["error"], "denied", "{got}");
    // Written by the package, audited as the package.
    let base = "/v1/projects/acme/packages/selfw/secrets";
    let (_, list) = call(fx, "viewer", Method::GET, base, None).await;
    assert_eq!(
        list["secrets"][0]["updated_by"], "package:acme/selfw",
        "{list}"
    );
    let (_, audit) = fx.admin(Method::GET, "/v1/audit?limit=1000", None).await;
    let entries = audit["entries"].as_array().unwrap();
    let by_package = entries
        .iter()
        .filter(|e| {
            e["action"] == "function secrets.set" && e["target"] == format!("{base}/counter")
        })
        .collect::<Vec<_>>();
    assert_eq!(by_package.len(), 2, "{audit}");
    assert!(
        by_package
            .iter()
            .all(|e| e["actor"] == "package:acme/selfw"),
        "{by_package:?}"
    );
    // The grant alone, without write-secrets naming the package scope, is refused at upload.
    let (s, b) = server
        .try_deploy_with("acme/bad", "secrets", "write-secrets-as = \"package\"\n")
        .await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (422, Some("bad_manifest")),
        "{b}"
    );
}

#[tokio::test]
async fn seed_workflows_on_the_embedded_backend() {
    workflows(None).await;
}

#[tokio::test]
async fn seed_workflows_on_openbao() {
    let bao = OpenBao::start();
    workflows(Some(&bao)).await;
}
