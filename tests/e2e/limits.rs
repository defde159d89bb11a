//! Hostile guests, bad callers and limits: each offender gets its own clear answer and record,
//! and everyone else carries on.

use crate::harness::{Options, Server, Upstream, with_steady_traffic};
use reqwest::Method;
use serde_json::{Value, json};
use std::io::{Read, Write};
use std::time::{Duration, Instant};

async fn call(server: &Server, method: Method, path: &str, body: Vec<u8>) -> (u16, String, Value) {
    let r = server
        .call(method, path)
        .body(body)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{path}: {e}"));
    let status = r.status().as_u16();
    let id = r
        .headers()
        .get("x-edgeward-execution-id")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let bytes = r.bytes().await.unwrap_or_default();
    (
        status,
        id,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn hostile_guests_are_stopped_and_recorded_while_others_carry_on() {
    let upstream = Upstream::start().await;
    // The upstream is on loopback, which guests may reach only when the operator allows it.
    let server = Server::start_with(Options {
        extra_args: vec!["--outbound-allow-private".into()],
        ..Options::default()
    })
    .await;
    server.deploy("acme/hello", "hello").await;
    let port = upstream.port;
    server
        .deploy_with("acme/loop", "hostile-loop", "[limits]\ntimeout-ms = 1000\n")
        .await;
    server
        .deploy_with("acme/alloc", "hostile-alloc", "[limits]\nmemory-mb = 32\n")
        .await;
    server.deploy("acme/recurse", "hostile-recurse").await;
    server.deploy("acme/panic", "hostile-panic").await;
    server
        .deploy_with(
            "acme/big",
            "hostile-big",
            "[limits]\nmax-response-bytes = 1048576\ntimeout-ms = 60000\n",
        )
        .await;
    server.deploy("acme/noread", "hostile-noread").await;
    server
        .deploy_with(
            "acme/fanout",
            "hostile-fanout",
            &format!(
                "[outbound]\nhosts = [\"http://127.0.0.1:{port}\"]\n[limits]\nmax-outbound-requests = 10\n"
            ),
        )
        .await;

    with_steady_traffic(&server, "acme/hello", async {
        // (path, HTTP status, error code, execution status)
        let cases = [
            ("/acme/loop/", 504, "timed_out", "timed_out"),
            ("/acme/alloc/", 500, "out_of_memory", "out_of_memory"),
            ("/acme/recurse/", 500, "guest_trapped", "trapped"),
            ("/acme/panic/", 500, "guest_trapped", "trapped"),
            ("/acme/big/?declare=1", 502, "too_large", "limited"),
        ];
        for (path, status, code, record) in cases {
            let started = Instant::now();
            let (got, id, body) = call(&server, Method::GET, path, Vec::new()).await;
            assert_eq!(
                (got, body["error"]["code"].as_str()),
                (status, Some(code)),
                "{path}: {body}"
            );
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "{path} took {:?}",
                started.elapsed()
            );
            let rec = server.execution("acme", &id).await;
            assert_eq!(rec["status"], record, "{path}: {rec}");
            assert_eq!(rec["http_status"], status, "{path}: {rec}");
        }
        // A panic's output is kept.
        let (_, id, _) = call(&server, Method::GET, "/acme/panic/x", Vec::new()).await;
        let rec = server.execution("acme", &id).await;
        assert!(
            rec["stdout"]
                .as_str()
                .unwrap()
                .contains("about to panic for /x"),
            "{rec}"
        );
        assert!(
            rec["stderr"].as_str().unwrap().contains("always panics"),
            "{rec}"
        );

        // A 1 GiB stream is cut at the package's limit; the record says so.
        let r = server.call(Method::GET, "/acme/big/").send().await.unwrap();
        assert_eq!(r.status(), 200, "headers were already sent");
        let id = r.headers()["x-edgeward-execution-id"]
            .to_str()
            .unwrap()
            .to_string();
        let mut received = 0usize;
        let mut stream = r;
        while let Ok(Some(chunk)) = stream.chunk().await {
            received += chunk.len();
        }
        assert!(
            received <= 1_048_576,
            "received {received} bytes past the limit"
        );
        let rec = server.execution("acme", &id).await;
        assert_eq!(rec["status"], "limited", "{rec}");

        // A guest that never reads its body answers, and the caller is not left hanging.
        let (got, id, _) = call(&server, Method::POST, "/acme/noread/", vec![0u8; 4 << 20]).await;
        assert_eq!(got, 200);
        assert_eq!(server.execution("acme", &id).await["status"], "ok");

        // Thousands of outbound requests: stopped at the limit.
        let url = format!("/acme/fanout/?url=http://127.0.0.1:{port}/x");
        let (got, id, body) = call(&server, Method::GET, &url, Vec::new()).await;
        assert_eq!(
            (got, body["error"]["code"].as_str()),
            (503, Some("limited")),
            "{body}"
        );
        assert_eq!(server.execution("acme", &id).await["status"], "limited");
        let hits = upstream.hits.load(std::sync::atomic::Ordering::SeqCst);
        assert!(hits <= 10, "the upstream saw {hits} requests");
    })
    .await;
}

#[tokio::test]
async fn outbound_http_only_to_allowed_hosts() {
    let allowed = Upstream::start().await;
    let other = Upstream::start().await;
    let server = Server::start_with(Options {
        extra_args: vec!["--outbound-allow-private".into()],
        ..Options::default()
    })
    .await;
    server
        .deploy_with(
            "acme/fetch",
            "fetch",
            &format!(
                "[outbound]\nhosts = [\"http://127.0.0.1:{}\"]\n",
                allowed.port
            ),
        )
        .await;
    server.deploy("acme/nofetch", "fetch").await;
    let fetch = |target: &'static str, port: u16| {
        let server = &server;
        async move {
            let (status, id, body) = call(
                server,
                Method::GET,
                &format!("/{target}/?url=http://127.0.0.1:{port}/p"),
                Vec::new(),
            )
            .await;
            assert_eq!(status, 200);
            (id, body)
        }
    };
    // Every outbound request, sent or refused, is in the execution's record with its host.
    let outbound = |id: String| {
        let server = &server;
        async move { server.execution("acme", &id).await["outbound"].clone() }
    };
    let (id, got) = fetch("acme/fetch", allowed.port).await;
    assert_eq!(
        outbound(id).await,
        serde_json::json!([{ "host": format!("127.0.0.1:{}", allowed.port), "sent": 1, "refused": 0 }])
    );
    assert_eq!(
        (got["status"].as_u64(), got["body"].as_str()),
        (Some(200), Some("upstream says hi")),
        "{got}"
    );
    let (id, got) = fetch("acme/fetch", other.port).await;
    assert!(
        got["error"].as_str().unwrap().contains("HttpRequestDenied"),
        "{got}"
    );
    assert_eq!(
        outbound(id).await,
        serde_json::json!([{ "host": format!("127.0.0.1:{}", other.port), "sent": 0, "refused": 1 }])
    );
    let (_, got) = fetch("acme/nofetch", allowed.port).await;
    assert!(
        got["error"].as_str().unwrap().contains("HttpRequestDenied"),
        "no hosts by default: {got}"
    );
    assert_eq!(other.hits.load(std::sync::atomic::Ordering::SeqCst), 0);
    assert_eq!(allowed.hits.load(std::sync::atomic::Ordering::SeqCst), 1);
}

#[tokio::test]
async fn execution_records_mask_secret_values_and_are_retained_boundedly() {
    let server = Server::start_with(Options {
        extra_args: vec!["--executions-per-package".into(), "3".into()],
        ..Options::default()
    })
    .await;
    let value = "masked-marker-value-0912";
    let r = server
        .api(Method::PUT, "/v1/projects/acme/packages/sec/secrets/TOKEN")
        .json(&json!({ "value": value }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404, "no project yet");
    server.deploy("acme/sec", "secrets").await;
    let r = server
        .api(Method::PUT, "/v1/projects/acme/packages/sec/secrets/TOKEN")
        .json(&json!({ "value": value }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let (status, id, _) = call(
        &server,
        Method::GET,
        "/acme/sec/?name=TOKEN&print=1",
        Vec::new(),
    )
    .await;
    assert_eq!(status, 200);
    let rec = server.execution("acme", &id).await;
    assert_eq!(rec["status"], "ok");
    assert_eq!(rec["http_status"], 200);
    assert_eq!(rec["secrets"], json!(["package:TOKEN"]));
    assert_eq!(rec["version"], 1);
    assert_eq!(
        rec["stdout"], "value: *** (end)\n",
        "split across two writes, still masked: {rec}"
    );
    assert_eq!(rec["stderr"], "stderr sees ***\n");
    assert!(!rec.to_string().contains(value));
    // The CLI shows the same.
    let (ok, out, err) = server.cli(&["logs", "acme/sec"]);
    assert!(ok, "{err}");
    assert!(
        out.contains("stdout | value: *** (end)") && out.contains("package:TOKEN"),
        "{out}"
    );
    assert!(!out.contains(value));
    // `get-value` (the value in one host call) is recorded and masked the same way.
    let (status, id, _) = call(
        &server,
        Method::GET,
        "/acme/sec/?values=TOKEN&print=1",
        Vec::new(),
    )
    .await;
    assert_eq!(status, 200);
    let rec = server.execution("acme", &id).await;
    assert_eq!(rec["secrets"], json!(["package:TOKEN"]));
    assert_eq!(rec["stdout"], "TOKEN=***\n", "{rec}");
    assert!(!rec.to_string().contains(value));
    // Listing, filters, retention.
    for _ in 0..4 {
        call(&server, Method::GET, "/acme/sec/?name=NONE", Vec::new()).await;
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, list) = server
            .json(Method::GET, "/v1/projects/acme/executions?package=sec")
            .await;
        let n = list["executions"].as_array().unwrap().len();
        if n == 3 && !list.to_string().contains(&id) {
            break;
        }
        assert!(Instant::now() < deadline, "retention never applied: {list}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (status, _) = server
        .json(Method::GET, "/v1/projects/acme/executions?status=bogus")
        .await;
    assert_eq!(status, 400);
    let (status, _) = server
        .json(Method::GET, "/v1/projects/acme/executions/nope")
        .await;
    assert_eq!(status, 404);
    let db = server.database_text();
    assert!(!db.contains(value), "the value is nowhere in the database");
}

fn raw(server: &Server, bytes: &[u8], read_timeout: Duration) -> String {
    let addr = server.listen.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(read_timeout)).unwrap();
    let _ = s.write_all(bytes);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn bad_callers_get_clear_4xx_and_the_host_is_unharmed() {
    let server = Server::start_with(Options {
        extra_args: vec!["--header-timeout-ms".into(), "500".into()],
        ..Options::default()
    })
    .await;
    server.deploy("acme/hello", "hello").await;
    server
        .deploy_with("acme/small", "echo", "[limits]\nmax-request-bytes = 1000\n")
        .await;
    server
        .deploy_with(
            "acme/one",
            "hostile-loop",
            "[limits]\ntimeout-ms = 3000\nmax-concurrency = 1\n",
        )
        .await;
    with_steady_traffic(&server, "acme/hello", async {
        let t = Duration::from_secs(10);
        let malformed = raw(&server, b"THIS IS NOT HTTP\r\n\r\n", t);
        assert!(malformed.starts_with("HTTP/1.1 400"), "{malformed}");
        let bad_method = raw(&server, b"G@T /acme/hello/ HTTP/1.1\r\nHost: x\r\n\r\n", t);
        assert!(bad_method.starts_with("HTTP/1.1 400"), "{bad_method}");
        let huge = format!("GET /acme/hello/ HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n", "a".repeat(200_000));
        let huge = raw(&server, huge.as_bytes(), t);
        assert!(huge.starts_with("HTTP/1.1 431"), "{:.80}", huge);
        let traversal = raw(&server, b"GET /acme/../acme/hello/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", t);
        assert!(traversal.starts_with("HTTP/1.1 404"), "{traversal}");
        // Slow headers: the connection is closed after the header timeout.
        let started = Instant::now();
        let slow = raw(&server, b"GET /acme/hello/ HTTP/1.1\r\nHost: x\r\n", t);
        assert!(started.elapsed() < Duration::from_secs(5), "slow client held for {:?}", started.elapsed());
        assert!(!slow.contains("Hello"), "{slow}");
        // Bodies over the limit: declared, and chunked.
        let (status, _, body) = call(&server, Method::POST, "/acme/small/", vec![1u8; 5000]).await;
        assert_eq!((status, body["error"]["code"].as_str()), (413, Some("too_large")), "{body}");
        let chunked = format!(
            "POST /acme/small/ HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n{:x}\r\n{}\r\n0\r\n\r\n",
            5000,
            "b".repeat(5000)
        );
        let chunked = raw(&server, chunked.as_bytes(), t);
        assert!(chunked.starts_with("HTTP/1.1 413") && chunked.contains("too_large"), "{chunked}");
        // Within the limit, fine.
        let (status, _, _) = call(&server, Method::POST, "/acme/small/", vec![b'a'; 900]).await;
        assert_eq!(status, 200);
        // One instance slot, two requests at once: whichever gets it runs to its time limit
        // (504); the other waits briefly, then gets 503 with Retry-After. No sleep decides
        // which is which.
        let (a, b) = tokio::join!(
            server.call(Method::GET, "/acme/one/").send(),
            server.call(Method::GET, "/acme/one/").send()
        );
        let (a, b) = (a.unwrap(), b.unwrap());
        let (ran, waited) = if a.status() == 504 { (a, b) } else { (b, a) };
        assert_eq!((ran.status().as_u16(), waited.status().as_u16()), (504, 503));
        assert_eq!(waited.headers()["retry-after"], "1");
        let body: Value = waited.json().await.unwrap();
        assert_eq!(body["error"]["code"], "capacity");
    })
    .await;
}
