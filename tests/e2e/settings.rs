//! A package's settings changed without new code (`PUT …/packages/{package}/manifest`, the
//! console's settings page): a new version of the serving component through the same deploy
//! as an upload, serving the new bindings; refused to readers and outsiders, refused against a
//! stale page, and a user's grant does not follow a changed manifest. Also the pages of the
//! executions list (`before`) and of the audit log (`before`, `action`, `outcome`).

use crate::harness::{OpenBao, Options, unique};
use crate::identity::{Fixture, fixture_with, grant};
use reqwest::Method;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// An API call as `who` (a fixture caller's name); (status, JSON body).
async fn call(
    fx: &Fixture,
    who: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = fx
        .server
        .api_as(method, path)
        .bearer_auth(fx.token(who).unwrap());
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// The environment the `inspect` guest at `target` sees, as a map.
async fn env_of(fx: &Fixture, target: &str) -> serde_json::Map<String, Value> {
    let r = fx
        .server
        .call(Method::GET, &format!("/{target}/"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    body["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|kv| (kv[0].as_str().unwrap().to_string(), kv[1].clone()))
        .collect()
}

async fn versions(fx: &Fixture, target: &str) -> Vec<Value> {
    let (s, b) = fx
        .admin(Method::GET, &format!("/v1/projects/{target}"), None)
        .await;
    assert_eq!(s, 200, "{b}");
    b["versions"].as_array().unwrap().clone()
}

const MANIFEST: &str = "/v1/projects/acme/packages/insp/manifest";

async fn a_settings_change_is_a_new_version_of_the_serving_component(bao: Option<&OpenBao>) {
    let fx = fixture_with(Options::backend(bao)).await;
    let db = unique("db-url");
    let (s, b) = call(
        &fx,
        "padmin",
        Method::PUT,
        "/v1/projects/acme/secrets/DB",
        Some(json!({ "value": db })),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    fx.server
        .deploy_with("acme/insp", "inspect", "[env]\nGREETING = \"v1\"\n")
        .await;
    assert_eq!(env_of(&fx, "acme/insp").await["GREETING"], "v1");

    // A developer binds a secret and changes a literal: version 2, the same code, serving it.
    let settings = json!({
        "env": { "GREETING": "v2", "DB_URL": "secret:DB" },
        "outbound": { "hosts": ["https://api.example.com"] },
        "limits": { "timeout-ms": 5000 },
    });
    let (s, b) = call(
        &fx,
        "dev",
        Method::PUT,
        MANIFEST,
        Some(json!({ "manifest": settings, "base_version": 1 })),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    assert_eq!(b["version"], 2, "{b}");
    let env = env_of(&fx, "acme/insp").await;
    assert_eq!(env["GREETING"], "v2", "{env:?}");
    assert_eq!(
        env["DB_URL"],
        db.as_str(),
        "the new binding serves: {env:?}"
    );
    let v = versions(&fx, "acme/packages/insp").await;
    assert_eq!(v.len(), 2);
    assert_eq!(
        v[0]["sha256"], v[1]["sha256"],
        "the serving version's component"
    );
    assert_eq!(
        v[1]["manifest"]["outbound"]["hosts"][0],
        "https://api.example.com"
    );
    assert_eq!(v[1]["created_by"], "dev");

    // TOML text works as the CLI's edgeward.toml does.
    let (s, b) = call(
        &fx,
        "dev",
        Method::PUT,
        MANIFEST,
        Some(json!({ "manifest": "[env]\nGREETING = \"v3\"\n" })),
    )
    .await;
    assert_eq!((s, &b["version"]), (201, &json!(3)), "{b}");
    let env = env_of(&fx, "acme/insp").await;
    assert_eq!(env["GREETING"], "v3");
    assert!(
        !env.contains_key("DB_URL"),
        "nothing kept that the manifest leaves out"
    );

    // Refused, each with its code, and nothing deployed: a page that went stale, a manifest
    // the upload would refuse, a body that is no manifest, a package with no version.
    for (body, status, code) in [
        (
            json!({ "manifest": {}, "base_version": 2 }),
            409,
            "conflict",
        ),
        (
            json!({ "manifest": { "nonsense": 1 } }),
            422,
            "bad_manifest",
        ),
        (
            json!({ "manifest": { "limits": { "timeout-ms": "soon" } } }),
            422,
            "bad_manifest",
        ),
        (json!({ "manifest": 7 }), 400, "bad_entry"),
        (json!({ "settings": {} }), 400, "bad_entry"),
    ] {
        let (s, b) = call(&fx, "dev", Method::PUT, MANIFEST, Some(body.clone())).await;
        assert_eq!(
            (s, b["error"]["code"].as_str()),
            (status, Some(code)),
            "{body}: {b}"
        );
    }
    let (s, b) = call(
        &fx,
        "dev",
        Method::PUT,
        "/v1/projects/acme/packages/none/manifest",
        Some(json!({ "manifest": {} })),
    )
    .await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (404, Some("not_found")),
        "{b}"
    );
    assert_eq!(versions(&fx, "acme/packages/insp").await.len(), 3);

    // A viewer may not; a member of acme may not touch another project's package (and learns
    // nothing of it); the other project's own admin may.
    fx.server.deploy("other/svc", "inspect").await;
    let (s, _) = call(
        &fx,
        "viewer",
        Method::PUT,
        MANIFEST,
        Some(json!({ "manifest": {} })),
    )
    .await;
    assert_eq!(s, 403);
    for who in ["dev", "padmin"] {
        let (s, _) = call(
            &fx,
            who,
            Method::PUT,
            "/v1/projects/other/packages/svc/manifest",
            Some(json!({ "manifest": { "env": { "X": "1" } } })),
        )
        .await;
        assert_eq!(s, 404, "{who}");
    }
    assert_eq!(versions(&fx, "other/packages/svc").await.len(), 1);
    let (s, b) = call(
        &fx,
        "oadmin",
        Method::PUT,
        "/v1/projects/other/packages/svc/manifest",
        Some(json!({ "manifest": { "env": { "X": "1" } } })),
    )
    .await;
    assert_eq!(s, 201, "{b}");

    // Audited, with who and the version's path; no value in the record.
    let (_, audit) = fx.admin(Method::GET, "/v1/audit?action=PUT%20%2Fv1%2Fprojects%2F%7Bproject%7D%2Fpackages%2F%7Bpackage%7D%2Fmanifest&limit=100", None).await;
    let entries = audit["entries"].as_array().unwrap();
    assert!(
        entries
            .iter()
            .any(|e| e["actor"] == "dev" && e["target"] == MANIFEST && e["status"] == 201),
        "{audit}"
    );
    assert!(
        entries
            .iter()
            .any(|e| e["actor"] == "viewer" && e["outcome"] == "denied"),
        "{audit}"
    );
    assert!(!audit.to_string().contains(&db));
}

#[tokio::test]
async fn a_settings_change_is_a_new_version_of_the_serving_component_embedded() {
    a_settings_change_is_a_new_version_of_the_serving_component(None).await;
}

#[tokio::test]
async fn a_settings_change_is_a_new_version_of_the_serving_component_on_openbao() {
    let bao = OpenBao::start();
    a_settings_change_is_a_new_version_of_the_serving_component(Some(&bao)).await;
}

/// A grant binds the manifest: a settings change (same code) asks the user again, and a
/// change that leaves the manifest as it was does not.
#[tokio::test]
async fn a_settings_change_does_not_carry_a_users_grant() {
    let fx = fixture_with(Options::default()).await;
    let alice = fx.token("alice").unwrap().to_string();
    let r = fx
        .server
        .api_as(Method::PUT, "/v1/users/alice/secrets/API_KEY")
        .bearer_auth(&alice)
        .json(&json!({ "value": unique("sk") }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let declared = "user-secrets = [\"API_KEY\"]\n";
    fx.server
        .deploy_with("acme/tool", "secrets", declared)
        .await;
    grant(&fx, "alice", &alice, "acme/tool").await;
    let run = |token: String| {
        let req = fx
            .server
            .call(Method::GET, "/acme/tool/?name=API_KEY&scope=user")
            .bearer_auth(token);
        async move {
            let r = req.send().await.unwrap();
            let status = r.status().as_u16();
            (status, r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let (s, b) = run(alice.clone()).await;
    assert_eq!(s, 200, "granted: {b}");

    // The same manifest again: nothing the user granted changed.
    let (s, b) = call(
        &fx,
        "dev",
        Method::PUT,
        "/v1/projects/acme/packages/tool/manifest",
        Some(json!({ "manifest": declared })),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    let (s, b) = run(alice.clone()).await;
    assert_eq!(s, 200, "the same code and manifest: {b}");

    // A new outbound host: the same code, but the grant does not cover it.
    let wider = json!({ "user-secrets": ["API_KEY"], "outbound": { "hosts": ["https://collector.example"] } });
    let (s, b) = call(
        &fx,
        "dev",
        Method::PUT,
        "/v1/projects/acme/packages/tool/manifest",
        Some(json!({ "manifest": wider })),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    let (s, b) = run(alice.clone()).await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (403, Some("consent_required")),
        "{b}"
    );
    assert!(
        b["consent"]["outbound_hosts"]
            .to_string()
            .contains("collector.example"),
        "the refusal names the new host: {b}"
    );
    grant(&fx, "alice", &alice, "acme/tool").await;
    let (s, b) = run(alice).await;
    assert_eq!(s, 200, "granted again: {b}");
}

/// Executions page backwards with `before` (an id; `next_before` when a page is full), and a
/// cursor reaches no other project's records.
#[tokio::test]
async fn executions_page_backwards_with_before() {
    let fx = fixture_with(Options::default()).await;
    for _ in 0..5 {
        let r = fx
            .server
            .call(Method::GET, "/acme/hello/")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    fx.server.deploy("other/hello", "hello").await;
    let r = fx
        .server
        .call(Method::GET, "/other/hello/")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // The records are written off the hot path: wait (bounded) for all six.
    let deadline = Instant::now() + Duration::from_secs(15);
    let all = loop {
        let (_, b) = fx
            .admin(Method::GET, "/v1/projects/acme/executions?limit=100", None)
            .await;
        let (_, o) = fx
            .admin(Method::GET, "/v1/projects/other/executions", None)
            .await;
        let ids: Vec<String> = b["executions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["id"].as_str().unwrap().to_string())
            .collect();
        if ids.len() == 5 && o["executions"].as_array().unwrap().len() == 1 {
            assert!(
                b.get("next_before").is_none(),
                "a page that is not full has no next: {b}"
            );
            break ids;
        }
        assert!(Instant::now() < deadline, "records not written: {b}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let mut paged = Vec::new();
    let mut before: Option<String> = None;
    loop {
        let q = before
            .as_ref()
            .map(|b| format!("&before={b}"))
            .unwrap_or_default();
        let (s, b) = call(
            &fx,
            "viewer",
            Method::GET,
            &format!("/v1/projects/acme/executions?limit=2{q}"),
            None,
        )
        .await;
        assert_eq!(s, 200, "{b}");
        paged.extend(
            b["executions"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["id"].as_str().unwrap().to_string()),
        );
        match b["next_before"].as_str() {
            Some(next) => before = Some(next.to_string()),
            None => break,
        }
        assert!(paged.len() <= 6, "paging does not end: {paged:?}");
    }
    assert_eq!(paged, all, "pages of two, newest first, each record once");

    // Another project's record is no cursor here; a stream does not page back.
    let (_, o) = fx
        .admin(Method::GET, "/v1/projects/other/executions", None)
        .await;
    let theirs = o["executions"][0]["id"].as_str().unwrap();
    let (s, b) = call(
        &fx,
        "viewer",
        Method::GET,
        &format!("/v1/projects/acme/executions?before={theirs}"),
        None,
    )
    .await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (400, Some("bad_entry")),
        "{b}"
    );
    let (s, b) = call(
        &fx,
        "viewer",
        Method::GET,
        &format!("/v1/projects/acme/executions/stream?before={}", all[0]),
        None,
    )
    .await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (400, Some("bad_entry")),
        "{b}"
    );
}

/// The audit log pages with `before` and filters by action and outcome (the console's audit
/// page); a project admin's pages stay in their project.
#[tokio::test]
async fn the_audit_log_pages_and_filters() {
    let fx = fixture_with(Options::default()).await;
    for i in 0..5 {
        let (s, _) = call(
            &fx,
            "padmin",
            Method::PUT,
            &format!("/v1/projects/acme/secrets/K{i}"),
            Some(json!({ "value": "v" })),
        )
        .await;
        assert_eq!(s, 200);
    }
    let (s, _) = call(
        &fx,
        "viewer",
        Method::PUT,
        "/v1/projects/acme/secrets/K9",
        Some(json!({ "value": "v" })),
    )
    .await;
    assert_eq!(s, 403);
    let set = "PUT /v1/projects/{project}/secrets/{name}";
    let q = |rest: &str| {
        format!(
            "/v1/audit?project=acme&action={}{rest}",
            set.replace('/', "%2F")
                .replace(' ', "%20")
                .replace('{', "%7B")
                .replace('}', "%7D")
        )
    };
    let (s, b) = call(&fx, "padmin", Method::GET, &q("&outcome=ok&limit=2"), None).await;
    assert_eq!(s, 200, "{b}");
    let mut targets: Vec<String> = Vec::new();
    let mut page = b;
    loop {
        for e in page["entries"].as_array().unwrap() {
            assert_eq!(
                (e["action"].as_str(), e["outcome"].as_str()),
                (Some(set), Some("ok")),
                "{e}"
            );
            targets.push(e["target"].as_str().unwrap().to_string());
        }
        let Some(next) = page["next_before"].as_i64() else {
            break;
        };
        let (s, b) = call(
            &fx,
            "padmin",
            Method::GET,
            &q(&format!("&outcome=ok&limit=2&before={next}")),
            None,
        )
        .await;
        assert_eq!(s, 200, "{b}");
        page = b;
        assert!(targets.len() <= 6, "{targets:?}");
    }
    let expected: Vec<String> = (0..5)
        .rev()
        .map(|i| format!("/v1/projects/acme/secrets/K{i}"))
        .collect();
    assert_eq!(targets, expected, "newest first, each once");
    let (_, denied) = call(&fx, "padmin", Method::GET, &q("&outcome=denied"), None).await;
    let denied = denied["entries"].as_array().unwrap();
    assert_eq!(denied.len(), 1, "{denied:?}");
    assert_eq!(denied[0]["actor"], "viewer");
    // An outcome the log never writes is refused, not answered with an empty page.
    let (s, b) = call(&fx, "padmin", Method::GET, &q("&outcome=failed"), None).await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (400, Some("bad_entry")),
        "{b}"
    );
    // A project admin's query stays in the project, filters or not.
    let (s, _) = call(&fx, "padmin", Method::GET, "/v1/audit?outcome=ok", None).await;
    assert_eq!(s, 403);
    let (s, _) = call(&fx, "padmin", Method::GET, "/v1/audit?before=1", None).await;
    assert_eq!(s, 403);
}
