//! Issue 26, attacked as it was found: a platform admin reading a user's secret through a
//! function the user calls (hex on stdout, a reversed copy in package scope, a new upload, a
//! rollback), tokens outliving the token that made them, an enrollment the admin redeemed
//! himself, and cookies tossed from the data plane. Each attack is made and shown to fail, with
//! the user's own granted function as the positive control.

use crate::harness::{OpenBao, Options, unique};
use crate::identity::{Fixture, enrolled_token, fixture_with};
use reqwest::Method;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// An API call with `token` (none: anonymous); (status, JSON body).
async fn send(
    fx: &Fixture,
    token: Option<&str>,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = fx.server.api_as(method, path);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// Calls the `secrets` example at `target` with `query` and `token`: (status, execution id,
/// JSON body).
async fn run(fx: &Fixture, target: &str, query: &str, token: &str) -> (u16, String, Value) {
    let r = fx
        .server
        .call(Method::GET, &format!("/{target}/?{query}"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let id = r
        .headers()
        .get("x-edgeward-execution-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    (status, id, r.json().await.unwrap_or(Value::Null))
}

fn hex(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

/// The value reversed: a form no masking knows, so only sealing keeps it from a viewer.
fn reversed(s: &str) -> String {
    s.chars().rev().collect()
}

/// What the attacking admin's manifest asks for: alice's API_KEY, and writes to package scope
/// (where he would read a copy).
const GREEDY: &str = "user-secrets = [\"API_KEY\"]\nwrite-secrets = [\"package\", \"user\"]\n";

/// The sealed record of execution `id`, as alice reads it, waiting (bounded) for it.
async fn sealed_record(fx: &Fixture, alice: &str, id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (s, b) = send(
            fx,
            Some(alice),
            Method::GET,
            &format!("/v1/users/alice/executions/{id}"),
            None,
        )
        .await;
        if s == 200 {
            return b;
        }
        assert!(Instant::now() < deadline, "no sealed record {id}: {s} {b}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn an_admin_cannot_read_a_user_secret_through_code_she_calls(bao: Option<&OpenBao>) {
    let fx = fixture_with(Options::backend(bao)).await;
    let alice = fx.token("alice").unwrap().to_string();
    let admin = fx.server.token.clone();
    let value = format!("sk_alice_{}", unique("key"));
    let (s, b) = send(
        &fx,
        Some(&alice),
        Method::PUT,
        "/v1/users/alice/secrets/API_KEY",
        Some(json!({ "value": value })),
    )
    .await;
    assert_eq!(s, 200, "{b}");

    // 1. The admin deploys code with no manifest: the user scope is closed to it.
    fx.server.deploy("acme/tool", "secrets").await;
    let (s, _, b) = run(&fx, "acme/tool", "name=API_KEY&scope=user&hex=1", &alice).await;
    assert_eq!((s, b["error"].as_str()), (200, Some("denied")), "{b}");
    assert!(
        b["message"].as_str().unwrap().contains("user-secrets"),
        "{b}"
    );

    // There is nothing to grant it; a package that does not exist answers the same, so
    // granting tells no one which packages a project has.
    for package in ["tool", "nope"] {
        let (s, b) = send(
            &fx,
            Some(&alice),
            Method::POST,
            "/v1/users/alice/grants",
            Some(json!({ "project": "acme", "package": package, "preview": true })),
        )
        .await;
        assert_eq!(s, 404, "{b}");
        assert_eq!(
            b["error"]["message"],
            format!("no version of acme/{package} that asks for user secrets"),
            "{b}"
        );
    }

    // 2. He declares what he wants: alice's request is refused before the code runs.
    let v2 = fx.server.deploy_with("acme/tool", "secrets", GREEDY).await;
    let (s, id, b) = run(&fx, "acme/tool", "name=API_KEY&scope=user&hex=1", &alice).await;
    assert_eq!(s, 403, "{b}");
    assert_eq!(b["error"]["code"], "consent_required", "{b}");
    let consent = &b["consent"];
    assert_eq!(consent["user_secrets"], json!(["API_KEY"]), "{b}");
    assert_eq!(consent["version"], v2["version"], "{b}");
    assert_eq!(consent["sha256"], v2["sha256"], "{b}");
    assert_eq!(
        consent["command"],
        format!("edgeward grants add acme/tool --version {}", v2["version"]),
        "{b}"
    );
    assert!(!id.is_empty());
    // No record of a run that did not happen holds anything of hers.
    let (_, list) = send(
        &fx,
        Some(&admin),
        Method::GET,
        "/v1/projects/acme/executions",
        None,
    )
    .await;
    assert!(!list.to_string().contains(&reversed(&value)), "{list}");

    // A token the admin issues for alice opens no key, so it holds no grant either.
    let (s, b) = send(
        &fx,
        Some(&admin),
        Method::POST,
        "/v1/users/alice/tokens",
        Some(json!({ "name": "for-alice" })),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    let keyless = b["token"].as_str().unwrap().to_string();
    let (s, _, b) = run(&fx, "acme/tool", "name=API_KEY&scope=user", &keyless).await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (403, Some("consent_required")),
        "{b}"
    );
    // ...and cannot make one.
    let (s, b) = send(
        &fx,
        Some(&keyless),
        Method::POST,
        "/v1/users/alice/grants",
        Some(json!({ "project": "acme", "package": "tool" })),
    )
    .await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (403, Some("denied")),
        "{b}"
    );
    // Nor can the admin, for her.
    let (s, _) = send(
        &fx,
        Some(&admin),
        Method::POST,
        "/v1/users/alice/grants",
        Some(json!({ "project": "acme", "package": "tool" })),
    )
    .await;
    assert_eq!(s, 403);

    // 3. Alice reviews and grants this version (the positive control starts here).
    let (s, preview) = send(
        &fx,
        Some(&alice),
        Method::POST,
        "/v1/users/alice/grants",
        Some(json!({ "project": "acme", "package": "tool", "preview": true })),
    )
    .await;
    assert_eq!(s, 200, "{preview}");
    assert_eq!(preview["writes_user_secrets"], true, "{preview}");
    assert!(
        preview["id"].is_null(),
        "a preview grants nothing: {preview}"
    );
    let (_, grants) = send(
        &fx,
        Some(&alice),
        Method::GET,
        "/v1/users/alice/grants",
        None,
    )
    .await;
    assert_eq!(grants["grants"], json!([]), "{grants}");
    let (s, grant) = send(
        &fx,
        Some(&alice),
        Method::POST,
        "/v1/users/alice/grants",
        Some(json!({ "project": "acme", "package": "tool" })),
    )
    .await;
    assert_eq!(s, 201, "{grant}");
    assert_eq!(grant["sha256"], v2["sha256"], "{grant}");

    // She reads her secret through it, and sees its output; the admin sees that it ran. (The
    // hex is masked, as every form in the one list is; the reversed value is in no list: only
    // sealing keeps it from the admin.)
    let (s, id, b) = run(
        &fx,
        "acme/tool",
        "name=API_KEY&scope=user&hex=1&reverse=1&reveal=1",
        &alice,
    )
    .await;
    assert_eq!((s, b["value"].as_str()), (200, Some(value.as_str())), "{b}");
    let mine = sealed_record(&fx, &alice, &id).await;
    let stdout = mine["stdout"].as_str().unwrap().to_string();
    assert!(stdout.contains(&reversed(&value)), "{mine}");
    assert!(!stdout.contains(&hex(&value)), "masked for her too: {mine}");
    let record = fx.server.execution("acme", &id).await;
    assert_eq!(record["sealed_for"], "alice", "{record}");
    assert!(record["stdout"].is_null(), "{record}");
    assert_eq!(
        record["stdout_bytes"].as_u64(),
        Some(stdout.len() as u64),
        "sizes stay visible: {record}"
    );
    assert!(
        record["output"]
            .as_str()
            .unwrap()
            .contains("sealed for alice")
    );
    let all = record.to_string();
    for form in [hex(&value), reversed(&value), value.clone()] {
        assert!(!all.contains(&form), "{record}");
    }
    // Not in the listing, the stream's source, nor the admin's view of the sealed route.
    let (_, list) = send(
        &fx,
        Some(&admin),
        Method::GET,
        "/v1/projects/acme/executions",
        None,
    )
    .await;
    assert!(!list.to_string().contains(&reversed(&value)), "{list}");
    let (s, _) = send(
        &fx,
        Some(&admin),
        Method::GET,
        &format!("/v1/users/alice/executions/{id}"),
        None,
    )
    .await;
    assert_eq!(s, 403);

    // The reversed copy into package scope is refused, and nothing lands there.
    let (_, _, b) = run(
        &fx,
        "acme/tool",
        "name=API_KEY&scope=user&copy=leak",
        &alice,
    )
    .await;
    assert_eq!(b["copy"]["error"], "denied", "{b}");
    assert!(
        b["copy"]["message"]
            .as_str()
            .unwrap()
            .contains("writes only there"),
        "{b}"
    );
    let (s, _) = send(
        &fx,
        Some(&admin),
        Method::GET,
        "/v1/projects/acme/packages/tool/secrets/leak",
        None,
    )
    .await;
    assert_eq!(s, 404, "no copy in package scope");
    // Writing a declared name in her own scope works, sealed under her key.
    let (_, _, b) = run(
        &fx,
        "acme/tool",
        "set=API_KEY&scope=user&value=rotated-by-tool",
        &alice,
    )
    .await;
    assert!(b["version"].is_u64(), "{b}");
    let (_, _, b) = run(&fx, "acme/tool", "set=OTHER&scope=user&value=x", &alice).await;
    assert_eq!(b["error"], "denied", "an undeclared name: {b}");
    let (s, b) = send(
        &fx,
        Some(&alice),
        Method::PUT,
        "/v1/users/alice/secrets/API_KEY",
        Some(json!({ "value": value })),
    )
    .await;
    assert_eq!(s, 200, "{b}");

    // 4. A new upload of the same package (same code, another manifest): asks again.
    let v3 = fx
        .server
        .deploy_with(
            "acme/tool",
            "secrets",
            "user-secrets = [\"API_KEY\"]\n[outbound]\nhosts = [\"collector.example.com\"]\n",
        )
        .await;
    assert_eq!(v3["sha256"], v2["sha256"], "the same component");
    let (s, _, b) = run(&fx, "acme/tool", "name=API_KEY&scope=user&hex=1", &alice).await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (403, Some("consent_required")),
        "{b}"
    );
    // Other code under the granted manifest: asks again.
    fx.server.deploy_with("acme/tool", "echo", GREEDY).await;
    let (s, _, b) = run(&fx, "acme/tool", "x=1", &alice).await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (403, Some("consent_required")),
        "{b}"
    );

    // 5. Rolling back to the version she granted works; to one she did not, asks.
    let rollback = |version: &Value| json!({ "version": version.as_i64().unwrap() });
    let (s, b) = send(
        &fx,
        Some(&admin),
        Method::POST,
        "/v1/projects/acme/packages/tool/rollback",
        Some(rollback(&v2["version"])),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    let (s, _, b) = run(&fx, "acme/tool", "name=API_KEY&scope=user&reveal=1", &alice).await;
    assert_eq!((s, b["value"].as_str()), (200, Some(value.as_str())), "{b}");
    let (s, b) = send(
        &fx,
        Some(&admin),
        Method::POST,
        "/v1/projects/acme/packages/tool/rollback",
        Some(rollback(&v3["version"])),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    let (s, _, b) = run(&fx, "acme/tool", "name=API_KEY&scope=user", &alice).await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (403, Some("consent_required")),
        "{b}"
    );

    // 6. A grant altered in the store to point at other code opens nothing: the admin can only
    //    delete grants, not make or move them. (Through the API he cannot even list them.)
    let (s, _) = send(
        &fx,
        Some(&admin),
        Method::GET,
        "/v1/users/alice/grants",
        None,
    )
    .await;
    assert_eq!(s, 403);

    // 7. Revoking her grant closes the version again.
    let (s, b) = send(
        &fx,
        Some(&admin),
        Method::POST,
        "/v1/projects/acme/packages/tool/rollback",
        Some(rollback(&v2["version"])),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    let (_, grants) = send(
        &fx,
        Some(&alice),
        Method::GET,
        "/v1/users/alice/grants",
        None,
    )
    .await;
    let g = &grants["grants"][0];
    assert_eq!(
        (g["valid"].as_bool(), g["serving"].as_bool()),
        (Some(true), Some(true)),
        "{grants}"
    );
    let gid = g["id"].as_str().unwrap().to_string();
    // Bob cannot revoke it, through his own path or hers; nor can the admin list or touch it.
    let bob = fx.token("bob").unwrap().to_string();
    for (who, path) in [
        (&bob, format!("/v1/users/bob/grants/{gid}")),
        (&bob, format!("/v1/users/alice/grants/{gid}")),
        (&admin, format!("/v1/users/alice/grants/{gid}")),
    ] {
        let (s, b) = send(&fx, Some(who), Method::DELETE, &path, None).await;
        assert!(s == 403 || s == 404, "{path}: {s} {b}");
    }
    // Malformed grant requests are refused with a stable code and grant nothing.
    for body in [
        json!({ "project": "acme" }),
        json!({ "project": "acme", "package": "tool", "version": "2" }),
        json!({ "project": "acme", "package": "tool", "extra": true }),
        json!({ "project": "../x", "package": "tool" }),
        json!({ "project": "acme", "package": "tool", "version": -1 }),
    ] {
        let (s, b) = send(
            &fx,
            Some(&alice),
            Method::POST,
            "/v1/users/alice/grants",
            Some(body.clone()),
        )
        .await;
        assert!(
            (s == 400 && b["error"]["code"] == "bad_entry") || s == 404,
            "{body}: {s} {b}"
        );
    }
    let (_, grants) = send(
        &fx,
        Some(&alice),
        Method::GET,
        "/v1/users/alice/grants",
        None,
    )
    .await;
    assert_eq!(grants["grants"].as_array().unwrap().len(), 1, "{grants}");
    let (s, _) = send(
        &fx,
        Some(&alice),
        Method::DELETE,
        &format!("/v1/users/alice/grants/{gid}"),
        None,
    )
    .await;
    assert_eq!(s, 204);
    let (s, _, b) = run(&fx, "acme/tool", "name=API_KEY&scope=user", &alice).await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (403, Some("consent_required")),
        "{b}"
    );

    // Her sealed executions are listed for her alone.
    let (s, b) = send(
        &fx,
        Some(&alice),
        Method::GET,
        "/v1/users/alice/executions",
        None,
    )
    .await;
    assert_eq!(s, 200, "{b}");
    assert!(!b["executions"].as_array().unwrap().is_empty(), "{b}");
    assert!(
        !b.to_string().contains(&reversed(&value)),
        "listings carry no output: {b}"
    );
    let bob = fx.token("bob").unwrap();
    let (s, _) = send(
        &fx,
        Some(bob),
        Method::GET,
        "/v1/users/alice/executions",
        None,
    )
    .await;
    assert_eq!(s, 403);
    // Nowhere in the admin's reach: the data directory, the log (the leak search at drop
    // covers the rest), and the audit log.
    let (_, audit) = send(&fx, Some(&admin), Method::GET, "/v1/audit?limit=1000", None).await;
    assert!(!audit.to_string().contains(&reversed(&value)), "{audit}");
    assert!(!fx.server.log().contains(&reversed(&value)));
}

#[tokio::test]
async fn an_admin_cannot_read_a_user_secret_through_code_she_calls_embedded() {
    an_admin_cannot_read_a_user_secret_through_code_she_calls(None).await;
}

#[tokio::test]
async fn an_admin_cannot_read_a_user_secret_through_code_she_calls_on_openbao() {
    let bao = OpenBao::start();
    an_admin_cannot_read_a_user_secret_through_code_she_calls(Some(&bao)).await;
}

/// A token minted with `parent` for its own user: (id, token, body).
async fn mint(
    fx: &Fixture,
    parent: &str,
    user: &str,
    expires_in: Option<u64>,
) -> (String, String, Value) {
    let (s, b) = send(
        fx,
        Some(parent),
        Method::POST,
        &format!("/v1/users/{user}/tokens"),
        Some(json!({ "name": "child", "expires_in": expires_in })),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    (
        b["id"].as_str().unwrap().to_string(),
        b["token"].as_str().unwrap().to_string(),
        b,
    )
}

async fn whoami(fx: &Fixture, token: &str) -> (u16, Value) {
    send(fx, Some(token), Method::GET, "/v1/whoami", None).await
}

/// A console session signed in with `token`: its cookie's value.
async fn session(fx: &Fixture, token: &str) -> (String, Value) {
    let r = fx
        .server
        .api_as(Method::POST, "/v1/sessions")
        .json(&json!({ "token": token }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let cookie = r
        .headers()
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    let value = cookie
        .split(';')
        .next()
        .unwrap()
        .split_once('=')
        .unwrap()
        .1
        .to_string();
    (value, r.json().await.unwrap())
}

#[tokio::test]
async fn tokens_and_sessions_die_with_the_token_that_made_them() {
    let fx = fixture_with(Options::default()).await;
    let alice = enrolled_token(&fx, "alice").await;
    // A 3-second parent: a child asked for without expiry inherits it, one asked for longer is
    // held to it, and a session too.
    let (parent_id, parent, _) = mint(&fx, &alice, "alice", Some(3)).await;
    let (child_id, child, body) = mint(&fx, &parent, "alice", None).await;
    let (_, parent_row) = whoami(&fx, &parent).await;
    let (_, parent_list) = send(
        &fx,
        Some(&alice),
        Method::GET,
        "/v1/users/alice/tokens",
        None,
    )
    .await;
    let expiry = |id: &str| {
        parent_list["tokens"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["id"] == id)
            .map(|t| t["expires_at"].clone())
            .unwrap_or(Value::Null)
    };
    assert!(expiry(&parent_id).is_string(), "{parent_list}");
    assert_eq!(body["expires_at"], expiry(&parent_id), "{body}");
    let (_, _, long) = mint(&fx, &parent, "alice", Some(86_400)).await;
    assert_eq!(long["expires_at"], expiry(&parent_id), "{long}");
    let (cookie, s) = session(&fx, &parent).await;
    assert_eq!(s["expires_at"], expiry(&parent_id), "{s}");
    // whoami lists what descends from the token asking.
    let ids: Vec<&str> = parent_row["descendants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&child_id.as_str()), "{parent_row}");
    let (_, me) = whoami(&fx, &alice).await;
    assert!(me["descendants"].to_string().contains(&child_id), "{me}");
    // The child reads her user secrets while the parent lives...
    let (s, b) = send(
        &fx,
        Some(&child),
        Method::PUT,
        "/v1/users/alice/secrets/NOTE",
        Some(json!({ "value": "n" })),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    // ...and nothing made from the parent works once it expired.
    let deadline = Instant::now() + Duration::from_secs(15);
    while whoami(&fx, &parent).await.0 != 401 {
        assert!(Instant::now() < deadline, "the parent never expired");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(whoami(&fx, &child).await.0, 401);
    let r = fx
        .server
        .api_as(Method::GET, "/v1/whoami")
        .header("cookie", format!("edgeward_session={cookie}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "the session died with its parent");

    // Revocation: a grandchild, a session and a token alice minted for herself all die with
    // the token they descend from, even without expiry.
    let (mid_id, mid, _) = mint(&fx, &alice, "alice", None).await;
    let (_, leaf, b) = mint(&fx, &mid, "alice", None).await;
    assert!(b["expires_at"].is_null(), "no expiry to inherit: {b}");
    let (_, grandleaf, _) = mint(&fx, &leaf, "alice", None).await;
    let (cookie, _) = session(&fx, &leaf).await;
    let (s, b) = send(
        &fx,
        Some(&grandleaf),
        Method::GET,
        "/v1/users/alice/secrets/NOTE",
        None,
    )
    .await;
    assert_eq!((s, b["value"].as_str()), (200, Some("n")), "{b}");
    let (s, _) = send(
        &fx,
        Some(&alice),
        Method::DELETE,
        &format!("/v1/users/alice/tokens/{mid_id}"),
        None,
    )
    .await;
    assert_eq!(s, 204);
    for t in [&mid, &leaf, &grandleaf] {
        assert_eq!(whoami(&fx, t).await.0, 401);
    }
    let r = fx
        .server
        .api_as(Method::GET, "/v1/whoami")
        .header("cookie", format!("edgeward_session={cookie}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // The token they came from lives on; the revocation is audited with its reach.
    assert_eq!(whoami(&fx, &alice).await.0, 200);
    let (_, audit) = send(
        &fx,
        Some(&fx.server.token),
        Method::GET,
        "/v1/audit?actor=alice&limit=50",
        None,
    )
    .await;
    assert!(
        audit.to_string().contains("with 3 token(s) made from it"),
        "{audit}"
    );
}

#[tokio::test]
async fn an_enrollment_shows_when_where_and_with_what_it_was_redeemed() {
    let fx = fixture_with(Options::default()).await;
    let admin = fx.server.token.clone();
    let redeem = |agent: &'static str| {
        let fx = &fx;
        let admin = admin.clone();
        async move {
            let (s, b) = send(
                fx,
                Some(&admin),
                Method::POST,
                "/v1/users/alice/enrollments",
                None,
            )
            .await;
            assert_eq!(s, 201, "{b}");
            let code = b["code"].as_str().unwrap().to_string();
            let r = fx
                .server
                .api_as(Method::POST, "/v1/enroll")
                .header("user-agent", agent)
                .json(&json!({ "code": code }))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 201);
            let body: Value = r.json().await.unwrap();
            (code, body["token"].as_str().unwrap().to_string())
        }
    };
    let (code, mine) = redeem("edgeward-cli/0.1.0").await;
    let (other_code, handed) = redeem("curl/8.0 (the admin's)").await;
    let (_, me) = whoami(&fx, &mine).await;
    let origin = &me["key_origin"];
    assert_eq!(origin["code_hint"], code[code.len() - 4..], "{me}");
    assert_eq!(origin["redeemed_from"], "127.0.0.1", "{me}");
    assert_eq!(origin["redeemed_client"], "edgeward-cli/0.1.0", "{me}");
    assert_eq!(origin["created_by"], "admin", "{me}");
    assert!(origin["redeemed_at"].is_string(), "{me}");
    // The one the admin redeemed and handed over does not look like hers.
    let (_, them) = whoami(&fx, &handed).await;
    assert_ne!(them["key_origin"], me["key_origin"], "{them}");
    assert_eq!(
        them["key_origin"]["code_hint"],
        other_code[other_code.len() - 4..]
    );
    assert_eq!(
        them["key_origin"]["redeemed_client"],
        "curl/8.0 (the admin's)"
    );
    // The CLI says it in words.
    let (ok, out, err) = fx.server.cli(&["whoami", "--token", &mine]);
    assert!(ok, "{err}");
    assert!(
        out.contains(&format!("redeeming code ewe_…{}", &code[code.len() - 4..])),
        "{out}"
    );
}

#[tokio::test]
async fn cookies_cannot_be_tossed_from_the_data_plane_nor_forms() {
    let fx = fixture_with(Options::default()).await;
    fx.server.deploy("acme/cookie", "secrets").await;
    let alice = fx.token("alice").unwrap().to_string();
    // A function's Set-Cookie naming the session cookie, in any case and with any attributes,
    // is removed; its other cookies pass.
    for planted in [
        "edgeward_session=ew_mallory; Path=/v1/whoami",
        "EDGEWARD_SESSION=ew_mallory; Path=/",
        "__Host-edgeward_session=ew_mallory; Path=/; Secure",
    ] {
        let r = fx
            .server
            .call(
                Method::GET,
                &format!(
                    "/acme/cookie/?set_cookie={}",
                    percent_encoding::utf8_percent_encode(
                        planted,
                        percent_encoding::NON_ALPHANUMERIC
                    )
                ),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert!(r.headers().get("set-cookie").is_none(), "{planted}");
    }
    let r = fx
        .server
        .call(Method::GET, "/acme/cookie/?set_cookie=theirs%3D1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers().get("set-cookie").unwrap(), "theirs=1");

    // Two session cookies: refused, whichever is first (mallory's planted one, alice's own).
    let (alice_cookie, _) = session(&fx, &alice).await;
    let (mallory_cookie, _) = session(&fx, fx.token("bob").unwrap()).await;
    for cookies in [
        format!("edgeward_session={mallory_cookie}; edgeward_session={alice_cookie}"),
        format!("edgeward_session={alice_cookie}; __Host-edgeward_session={mallory_cookie}"),
    ] {
        let r = fx
            .server
            .api_as(Method::GET, "/v1/whoami")
            .header("cookie", cookies.as_str())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400);
        let b: Value = r.json().await.unwrap();
        assert_eq!(b["error"]["code"], "bad_request", "{b}");
    }
    // One works.
    let r = fx
        .server
        .api_as(Method::GET, "/v1/whoami")
        .header("cookie", format!("edgeward_session={alice_cookie}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // A cross-site form can send text/plain or a form type, never JSON: sign-in takes JSON only.
    for content_type in [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data",
    ] {
        let r = fx
            .server
            .api_as(Method::POST, "/v1/sessions")
            .header("content-type", content_type)
            .body(json!({ "token": alice }).to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 415, "{content_type}");
        assert!(r.headers().get("set-cookie").is_none());
    }
    // Behind TLS the cookie is `__Host-`: Secure, Path=/, no Domain.
    let r = fx
        .server
        .api_as(Method::POST, "/v1/sessions")
        .header("x-forwarded-proto", "https")
        .json(&json!({ "token": alice }))
        .send()
        .await
        .unwrap();
    let cookie = r
        .headers()
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        cookie.starts_with("__Host-edgeward_session=ew_"),
        "{cookie}"
    );
    assert!(
        cookie.contains("; Path=/;") && cookie.contains("; Secure"),
        "{cookie}"
    );
    assert!(!cookie.to_ascii_lowercase().contains("domain"), "{cookie}");
}

#[tokio::test]
async fn the_cli_grants_after_showing_what_it_grants_and_reads_sealed_output() {
    let fx = fixture_with(Options::default()).await;
    let alice = fx.token("alice").unwrap().to_string();
    let v = fx
        .server
        .deploy_with(
            "acme/tool",
            "secrets",
            "user-secrets = [\"API_KEY\", \"team/*\"]\n[outbound]\nhosts = [\"api.example.com\"]\n",
        )
        .await;
    let (ok, _, err) = fx.server.cli(&[
        "secrets",
        "set",
        "API_KEY",
        "cli-user-value-4321",
        "--user",
        "--token",
        &alice,
    ]);
    assert!(ok, "{err}");
    // Without a terminal and without --yes, nothing is granted, and it says why.
    let (ok, _, err) = fx
        .server
        .cli(&["grants", "add", "acme/tool", "--token", &alice]);
    assert!(!ok);
    assert!(err.contains("cancelled") && err.contains("--yes"), "{err}");
    // What it grants is shown before it is granted.
    for shown in [
        v["sha256"].as_str().unwrap(),
        "API_KEY, team/*",
        "api.example.com",
    ] {
        assert!(err.contains(shown), "{shown}: {err}");
    }
    let (_, list) = send(
        &fx,
        Some(&alice),
        Method::GET,
        "/v1/users/alice/grants",
        None,
    )
    .await;
    assert_eq!(list["grants"], json!([]), "{list}");
    let (ok, out, err) = fx
        .server
        .cli(&["grants", "add", "acme/tool", "--yes", "--token", &alice]);
    assert!(ok, "{err}");
    assert!(out.contains("granted grant_"), "{out}");
    let (ok, out, _) = fx.server.cli(&["grants", "list", "--token", &alice]);
    assert!(
        ok && out.contains("acme/tool") && out.contains("serving"),
        "{out}"
    );
    // Her call runs; its output is hers to read with `sealed`.
    let (s, id, _) = run(
        &fx,
        "acme/tool",
        "name=API_KEY&scope=user&reverse=1",
        &alice,
    )
    .await;
    assert_eq!(s, 200);
    sealed_record(&fx, &alice, &id).await;
    let (ok, out, err) = fx.server.cli(&["sealed", &id, "--token", &alice]);
    assert!(ok, "{err}");
    assert!(out.contains(&reversed("cli-user-value-4321")), "{out}");
    let (ok, out, _) = fx.server.cli(&["sealed", "--token", &alice]);
    assert!(ok && out.contains(&id), "{out}");
    // The admin's logs say it is sealed, and show none of it.
    let (ok, out, _) = fx.server.cli(&["logs", "acme/tool"]);
    assert!(ok && out.contains("sealed for alice"), "{out}");
    assert!(!out.contains(&reversed("cli-user-value-4321")), "{out}");
    let (ok, _, err) = fx.server.cli(&["sealed", &id]);
    assert!(
        !ok && err.contains("not_found"),
        "not even that it exists: {err}"
    );
    // Revoked by id, and gone.
    let (_, list) = send(
        &fx,
        Some(&alice),
        Method::GET,
        "/v1/users/alice/grants",
        None,
    )
    .await;
    let gid = list["grants"][0]["id"].as_str().unwrap().to_string();
    let (ok, out, _) = fx.server.cli(&["grants", "rm", &gid, "--token", &alice]);
    assert!(ok && out.contains(&gid), "{out}");
    let (s, _, _) = run(&fx, "acme/tool", "name=API_KEY&scope=user", &alice).await;
    assert_eq!(s, 403);
}
