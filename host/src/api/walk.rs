//! Every route × method × kind of caller, from the router's own table, against an in-process
//! server: a caller the policy refuses gets 401, 403 or the outsider's 404 and never a planted
//! value; a caller it admits is not refused. A route added later is walked without anyone
//! having to remember it.

use super::{Need, routes};
use crate::server::{ServeConfig, Server};
use crate::store::Role;
use reqwest::Method;
use serde_json::{Value, json};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    Anonymous,
    Bad,
    Revoked,
    Expired,
    Outsider,
    Member(Role),
    OtherAdmin,
    Platform,
    TheUser,
}

impl Who {
    fn valid(self) -> bool {
        !matches!(
            self,
            Who::Anonymous | Who::Bad | Who::Revoked | Who::Expired
        )
    }
}

/// Whether the policy should let `who` through `need` (paths name project `p1` and user
/// `alice`; audit is asked without `?project=`).
fn admits(need: Need, who: Who) -> bool {
    if need == Need::Public {
        return true;
    }
    if !who.valid() {
        return false;
    }
    match need {
        Need::Public | Need::Authenticated => true,
        Need::PlatformAdmin | Need::AuditReader => who == Who::Platform,
        Need::Project(wanted) => match who {
            Who::Platform => true,
            Who::Member(have) => have >= wanted,
            _ => false,
        },
        // The walk's projects keep `members_read_secrets` off (the e2e secrets tests turn it
        // on): admins only.
        Need::ProjectSecretValue => matches!(who, Who::Platform | Who::Member(Role::Admin)),
        Need::SelfOnly => who == Who::TheUser,
        Need::SelfOrPlatformAdmin => matches!(who, Who::TheUser | Who::Platform),
    }
}

const PLANTED: &str = "planted-value-7f3a";

async fn call(
    http: &reqwest::Client,
    api: &str,
    token: Option<&str>,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (u16, String) {
    let mut req = http.request(method, format!("{api}{path}"));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_method_and_caller_gets_what_the_table_says() {
    let tmp = tempfile::tempdir().unwrap();
    let mut config = ServeConfig::with_data_dir(tmp.path().join("data"));
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.api_listen = "127.0.0.1:0".parse().unwrap();
    config.data_workers = 0;
    config.runtime.max_instances = 4;
    config.master_key = Some(secrecy::SecretString::from("ab".repeat(32)));
    let server = Server::start(config).await.unwrap();
    let api = format!("http://{}", server.api_addr());
    let admin = std::fs::read_to_string(server.admin_token().0)
        .unwrap()
        .trim()
        .to_string();
    crate::install_crypto();
    let http = reqwest::Client::new();
    let ok = |(s, b): (u16, String), want: u16| assert_eq!(s, want, "{b}");

    for p in ["p1", "p2"] {
        let r = call(
            &http,
            &api,
            Some(admin.as_str()),
            Method::POST,
            "/v1/projects",
            Some(json!({"name": p})),
        )
        .await;
        ok(r, 201);
    }
    let mut tokens: Vec<(Who, Option<String>)> = vec![
        (Who::Anonymous, None),
        (Who::Bad, Some(format!("ew_{}", "0".repeat(64)))),
        (Who::Platform, Some(admin.clone())),
    ];
    for (user, project, role, who) in [
        (
            "viewer",
            "p1",
            Some(Role::Viewer),
            Who::Member(Role::Viewer),
        ),
        (
            "dev",
            "p1",
            Some(Role::Developer),
            Who::Member(Role::Developer),
        ),
        ("padmin", "p1", Some(Role::Admin), Who::Member(Role::Admin)),
        ("oadmin", "p2", Some(Role::Admin), Who::OtherAdmin),
        ("outsider", "", None, Who::Outsider),
        ("revoked", "p1", Some(Role::Admin), Who::Revoked),
    ] {
        ok(
            call(
                &http,
                &api,
                Some(admin.as_str()),
                Method::POST,
                "/v1/users",
                Some(json!({"name": user})),
            )
            .await,
            201,
        );
        if let Some(role) = role {
            ok(
                call(
                    &http,
                    &api,
                    Some(admin.as_str()),
                    Method::PUT,
                    &format!("/v1/projects/{project}/members/{user}"),
                    Some(json!({"role": role.as_str()})),
                )
                .await,
                200,
            );
        }
        let (s, b) = call(
            &http,
            &api,
            Some(admin.as_str()),
            Method::POST,
            &format!("/v1/users/{user}/tokens"),
            None,
        )
        .await;
        assert_eq!(s, 201, "{b}");
        let b: Value = serde_json::from_str(&b).unwrap();
        let token = b["token"].as_str().unwrap().to_string();
        if who == Who::Revoked {
            let id = b["id"].as_str().unwrap();
            ok(
                call(
                    &http,
                    &api,
                    Some(admin.as_str()),
                    Method::DELETE,
                    &format!("/v1/users/{user}/tokens/{id}"),
                    None,
                )
                .await,
                204,
            );
        }
        tokens.push((who, Some(token)));
    }
    // An expired token, written straight into the store.
    {
        let store =
            crate::store::Store::open(&tmp.path().join("data").join(crate::datadir::DB_FILE))
                .unwrap();
        let (record, token) = crate::auth::new_token("padmin", "old", Some(1), "admin", None, None);
        store.insert_token(record).await.unwrap();
        tokens.push((Who::Expired, Some(token.to_string())));
    }
    // Alice, enrolled: her token opens her user secrets.
    ok(
        call(
            &http,
            &api,
            Some(admin.as_str()),
            Method::POST,
            "/v1/users",
            Some(json!({"name": "alice"})),
        )
        .await,
        201,
    );
    let (_, b) = call(
        &http,
        &api,
        Some(admin.as_str()),
        Method::POST,
        "/v1/users/alice/enrollments",
        None,
    )
    .await;
    let code = serde_json::from_str::<Value>(&b).unwrap()["code"]
        .as_str()
        .unwrap()
        .to_string();
    let (s, b) = call(
        &http,
        &api,
        None,
        Method::POST,
        "/v1/enroll",
        Some(json!({"code": code})),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    let alice = serde_json::from_str::<Value>(&b).unwrap()["token"]
        .as_str()
        .unwrap()
        .to_string();
    tokens.push((Who::TheUser, Some(alice.clone())));

    // A value planted in every scope, under the name the walk reads.
    for (token, path) in [
        (&admin, "/v1/secrets/platform/S1"),
        (&admin, "/v1/projects/p1/secrets/S1"),
        (&admin, "/v1/projects/p1/packages/pk/secrets/S1"),
        (&alice, "/v1/users/alice/secrets/S1"),
    ] {
        ok(
            call(
                &http,
                &api,
                Some(token.as_str()),
                Method::PUT,
                path,
                Some(json!({"value": PLANTED})),
            )
            .await,
            200,
        );
    }

    // A secret per caller in every scope, for that caller's DELETE: one admitted must delete
    // it (204, then gone), one refused must leave it.
    let secret_scopes = [
        ("/v1/secrets/platform/{name}", &admin),
        ("/v1/projects/{project}/secrets/{name}", &admin),
        (
            "/v1/projects/{project}/packages/{package}/secrets/{name}",
            &admin,
        ),
        ("/v1/users/{user}/secrets/{name}", &alice),
    ];
    let concrete = |pattern: &str, name: &str| {
        pattern
            .replace("{project}", "p1")
            .replace("{package}", "pk")
            .replace("{name}", name)
            .replace("{user}", "alice")
    };
    for (pattern, owner) in secret_scopes {
        for i in 0..tokens.len() {
            ok(
                call(
                    &http,
                    &api,
                    Some(owner.as_str()),
                    Method::PUT,
                    &concrete(pattern, &format!("D{i}")),
                    Some(json!({"value": format!("deletable-{i}")})),
                )
                .await,
                200,
            );
        }
    }

    let methods = [
        Method::GET,
        Method::HEAD,
        Method::POST,
        Method::PUT,
        Method::PATCH,
        Method::DELETE,
    ];
    let mut paths: Vec<String> = routes().into_iter().map(|r| r.path).collect();
    paths.sort();
    paths.dedup();
    let mut cells = 0;
    // What GET answered each caller on each path: HEAD must answer the same.
    let mut get_status = std::collections::HashMap::new();
    for pattern in &paths {
        for method in &methods {
            let in_table = routes().iter().any(|r| {
                &r.path == pattern
                    && (r.method == *method || (*method == Method::HEAD && r.method == Method::GET))
            });
            let need = super::policy::need(method, pattern);
            // Nothing destructive lands: deletes name things that do not exist, and every
            // body is malformed, so an admitted write is refused after the policy.
            let destructive = *method == Method::DELETE;
            // A delete of a whole project or user names one that does not exist.
            let whole = destructive
                && matches!(
                    pattern.as_str(),
                    "/v1/projects/{project}" | "/v1/users/{user}"
                );
            let path = pattern
                .replace("{project}", if whole { "gone" } else { "p1" })
                .replace("{package}", "pk")
                .replace("{name}", if destructive { "NOPE" } else { "S1" })
                .replace("{token}", "tok_0000000000000000")
                .replace("{id}", "no-such-execution")
                .replace(
                    "{user}",
                    if pattern.starts_with("/v1/users/{user}") && !whole {
                        "alice"
                    } else {
                        "nobody"
                    },
                );
            let deletes_secret = destructive && secret_scopes.iter().any(|(p, _)| p == pattern);
            for (i, (who, token)) in tokens.iter().enumerate() {
                let path = if deletes_secret {
                    concrete(pattern, &format!("D{i}"))
                } else {
                    path.clone()
                };
                let mut req = http.request(method.clone(), format!("{api}{path}"));
                if let Some(t) = token {
                    req = req.bearer_auth(t);
                }
                if *method != Method::GET && *method != Method::HEAD {
                    req = req.header("content-type", "application/json").body("x");
                }
                let r = req.send().await.unwrap();
                let status = r.status().as_u16();
                // An event stream admitted never ends: its headers are the answer.
                let streaming = r
                    .headers()
                    .get("content-type")
                    .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
                let body = if streaming {
                    String::new()
                } else {
                    r.text().await.unwrap()
                };
                cells += 1;
                let what = format!("{method} {path} as {who:?} ({need:?}): {status} {body}");
                if *method == Method::GET {
                    get_status.insert((path.clone(), i), status);
                }
                if *method == Method::HEAD && in_table {
                    // No body to tell the outsider's 404 by: HEAD answers as GET did.
                    assert_eq!(Some(&status), get_status.get(&(path.clone(), i)), "{what}");
                    continue;
                }
                let hidden = status == 404 && body.contains("no project \\\"p1\\\"");
                let refused = matches!(status, 401 | 403) || hidden;
                if !in_table {
                    assert!(!(200..300).contains(&status), "{what}");
                } else if admits(need, *who) {
                    assert!(!refused, "admitted, yet refused: {what}");
                } else {
                    assert!(refused, "not admitted, yet let through: {what}");
                    if !who.valid() {
                        assert_eq!(status, 401, "{what}");
                    }
                }
                // A value is in a body only where a value was asked for, by one allowed to.
                let reads_value = *method == Method::GET
                    && pattern.contains("/secrets/")
                    && pattern.ends_with("/{name}");
                if reads_value && admits(need, *who) {
                    assert!(
                        status == 200 && body.contains(PLANTED),
                        "the positive control: {what}"
                    );
                } else {
                    assert!(!body.contains(PLANTED), "a planted value reached {what}");
                }
                if deletes_secret {
                    let owner = secret_scopes.iter().find(|(p, _)| p == pattern).unwrap().1;
                    let (after, _) =
                        call(&http, &api, Some(owner.as_str()), Method::GET, &path, None).await;
                    if admits(need, *who) {
                        assert_eq!((status, after), (204, 404), "deleted: {what}");
                    } else {
                        assert_eq!(after, 200, "a refused DELETE left it: {what}");
                    }
                }
            }
        }
    }
    assert_eq!(cells, paths.len() * methods.len() * tokens.len());

    // The audit log by project: a project admin reads their own project's entries and no
    // other's, however the query spells it; duplicates are refused, not half-read.
    for (query, asked) in [
        ("project=p1", Some("p1")),
        ("project=p2", Some("p2")),
        ("project=p%31", Some("p1")),
        ("limit=5&project=p1", Some("p1")),
        ("%70roject=p2&project=p1", None),
        ("project=p1&project=p2", None),
        ("project=p1&project=p1", None),
        ("project=", Some("")),
    ] {
        for (who, token) in &tokens {
            let (status, body) = call(
                &http,
                &api,
                token.as_deref(),
                Method::GET,
                &format!("/v1/audit?{query}"),
                None,
            )
            .await;
            let what = format!("GET /v1/audit?{query} as {who:?}: {status} {body}");
            let admitted = match who {
                Who::Platform => true,
                Who::Member(Role::Admin) => asked == Some("p1"),
                Who::OtherAdmin => asked == Some("p2"),
                _ => false,
            };
            if !admitted {
                assert!(matches!(status, 401 | 403), "{what}");
                continue;
            }
            if asked.is_none() {
                assert_eq!(status, 400, "{what}");
                continue;
            }
            assert_eq!(status, 200, "{what}");
            let entries = serde_json::from_str::<Value>(&body).unwrap()["entries"]
                .as_array()
                .unwrap()
                .clone();
            if asked != Some("") {
                assert!(!entries.is_empty(), "the positive control: {what}");
            }
            for e in entries {
                assert_eq!(e["project"].as_str(), asked, "{what}");
            }
        }
    }
    assert!(
        paths.len() >= 30 && tokens.len() == 11,
        "walked {cells} cells"
    );
    server.shutdown().await;
}

#[test]
fn every_route_has_its_rule_and_head_is_get() {
    for r in routes() {
        assert_eq!(
            super::policy::need(&r.method, &r.path),
            r.need,
            "{} {}",
            r.method,
            r.path
        );
        if r.method == Method::GET {
            assert_eq!(
                super::policy::need(&Method::HEAD, &r.path),
                r.need,
                "HEAD {}",
                r.path
            );
        }
    }
}
