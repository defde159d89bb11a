//! What a guest can and cannot see, routing, and the secrets interface's edges.

use crate::harness::{Server, assert_no_leak};
use reqwest::Method;
use serde_json::Value;

#[tokio::test]
async fn inspect_sees_nothing_of_the_host() {
    let server = Server::start().await;
    server.deploy("acme/inspect", "inspect").await;
    let (status, text) = server.get("/acme/inspect/").await;
    assert_eq!(status, 200, "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        v["env"],
        serde_json::json!([]),
        "no environment variables at all"
    );
    assert_eq!(v["args"], serde_json::json!([]), "no arguments");
    for (path, outcome) in v["files"].as_object().unwrap() {
        assert!(
            outcome.get("error").is_some(),
            "{path} is reachable: {outcome}"
        );
    }
    assert_no_leak("inspect's response", &text, &[&server.token]);
    assert_no_leak("the server log", &server.log(), &[&server.token]);
}

#[tokio::test]
async fn routing_and_unknown_targets() {
    let server = Server::start().await;
    server.deploy("acme/hello", "hello").await;
    for path in [
        "/",
        "/acme",
        "/acme/",
        "/acme/nope/",
        "/nope/hello/",
        "/acme/%2e%2e/hello",
        "/ACME/hello/",
    ] {
        let r = server.call(Method::GET, path).send().await.unwrap();
        assert_eq!(r.status(), 404, "{path}");
        assert_eq!(r.headers()["content-type"], "application/json", "{path}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"]["code"], "not_found", "{path}");
    }
    // Dot segments sent as they are (an HTTP client would normalise them away).
    for path in [
        "/acme/../acme/hello/",
        "/../acme/hello/",
        "/acme/hello/../../other/x/",
    ] {
        let response = server.raw(&format!(
            "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        ));
        let served_hello = response.contains("Hello from Edgeward");
        assert!(
            response.starts_with("HTTP/1.1 404")
                || (path.starts_with("/acme/hello/") && served_hello),
            "{path}: {response}"
        );
    }
    // Every method reaches the guest.
    for method in ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "PURGE"] {
        let m = Method::from_bytes(method.as_bytes()).unwrap();
        let r = server.call(m, "/acme/hello/x").send().await.unwrap();
        assert_eq!(r.status(), 200, "{method}");
    }
}

#[tokio::test]
async fn secrets_interface_edges_without_any_secret() {
    let server = Server::start().await;
    server.deploy("acme/secrets", "secrets").await;
    let get = |q: &'static str| {
        let server = &server;
        async move {
            let (status, text) = server.get(&format!("/acme/secrets/?{q}")).await;
            (status, serde_json::from_str::<Value>(&text).unwrap())
        }
    };
    let (status, v) = get("name=DB_PASS").await;
    assert_eq!((status, v["found"].as_bool()), (200, Some(false)), "{v}");
    let (_, v) = get("name=..%2Fplatform%2FX").await;
    assert_eq!(v["error"], "bad_entry", "{v}");
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("invalid secret name")
    );
    let (_, v) = get("name=").await;
    assert_eq!(v["error"], "bad_entry");
    let (_, v) = get("name=TOKEN&scope=user").await;
    assert_eq!(v["error"], "denied", "user scope needs a user token: {v}");
    let (_, v) = get("list=1").await;
    assert_eq!(v["secrets"], serde_json::json!([]));
    let long = "A".repeat(10 * 1024);
    let (status, text) = server.get(&format!("/acme/secrets/?name={long}")).await;
    assert_eq!(status, 200);
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["error"], "bad_entry");
    assert!(text.len() < 1024, "the error does not echo a 10 KiB name");
}

/// A fresh instance per request: nothing one request leaves in its instance's linear memory
/// (a heap allocation never freed, a static) is visible to the next request, of the same
/// package or of another project's, although the pooling allocator keeps memory resident
/// between instances (Edgeward's default). The guest scans its whole linear memory for the
/// marker, which it is given reversed so the scan request itself never holds it.
#[tokio::test]
async fn a_fresh_instance_never_sees_the_previous_instances_memory() {
    let server = Server::start().await;
    server.deploy("acme/memscan", "memscan").await;
    server.deploy("other/memscan", "memscan").await;
    let marker = |tag: &str| format!("edgeward-marker-{tag}-{}", uuid::Uuid::now_v7().simple());
    let reversed = |m: &str| m.chars().rev().collect::<String>();
    let scan = |path: String| {
        let server = &server;
        async move {
            let (status, text) = server.get(&path).await;
            assert_eq!(status, 200, "{path}: {text}");
            let v: Value = serde_json::from_str(&text).unwrap();
            assert!(v["memory_bytes"].as_u64().unwrap() >= 65536, "{text}");
            v["found"].as_array().unwrap().len()
        }
    };

    // Positive control: within one instance, the scan finds the heap copy and the static.
    let m = marker("control");
    let found = scan(format!("/acme/memscan/?plant={m}&scan={}", reversed(&m))).await;
    assert!(
        found >= 2,
        "the scan cannot see what it planted: found {found}"
    );

    // Planted by one request; looked for by the next ones, on the same package (the same
    // pool slot is likely reused: the pooling allocator keeps slot affinity) and on another
    // project's package.
    for round in 0..5 {
        let m = marker(&format!("round{round}"));
        let (status, text) = server.get(&format!("/acme/memscan/?plant={m}")).await;
        assert_eq!((status, text.as_str()), (200, "planted\n"));
        for target in ["acme", "other", "acme"] {
            let found = scan(format!("/{target}/memscan/?scan={}", reversed(&m))).await;
            assert_eq!(found, 0, "{target}/memscan saw round {round}'s marker");
        }
    }
}
