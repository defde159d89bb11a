//! Outages and crashes: a secret backend that goes away and comes back, and a host killed with
//! SIGKILL in the middle of an upload, a deploy and a secret import.

use crate::harness::{OpenBao, Options, Server, guest};
use reqwest::Method;
use serde_json::{Value, json};
use std::io::Write;
use std::time::{Duration, Instant};

#[tokio::test]
async fn openbao_killed_and_restarted_under_a_running_host() {
    let mut bao = OpenBao::start();
    let options = Options {
        extra_args: vec![
            "--secrets-cache-ttl-ms".into(),
            "1000".into(),
            "--secrets-timeout-ms".into(),
            "500".into(),
        ],
        ..Options::backend(Some(&bao))
    };
    let server = Server::start_with(options).await;
    server.deploy("acme/api", "secrets").await;
    let put = |value: &'static str| {
        server
            .api(Method::PUT, "/v1/projects/acme/secrets/DB_PASS")
            .json(&json!({ "value": value }))
            .send()
    };
    assert_eq!(put("before-outage").await.unwrap().status(), 200);
    let read = || async {
        let r = server
            .call(Method::GET, "/acme/api/?name=DB_PASS&reveal=1")
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json::<Value>().await.unwrap())
    };
    assert_eq!(read().await.1["value"], "before-outage");

    bao.stop();
    // Within the TTL a guest may get the cached value; after it, `unavailable`; never a wrong
    // value, never a crash.
    let stopped = Instant::now();
    let mut saw_unavailable = false;
    while stopped.elapsed() < Duration::from_secs(4) {
        let (status, v) = read().await;
        match (status, v["value"].as_str(), v["error"].as_str()) {
            (200, Some("before-outage"), _) => assert!(
                stopped.elapsed() < Duration::from_millis(1000 + 500),
                "a cached value served past its TTL"
            ),
            (503, None, Some("unavailable")) => saw_unavailable = true,
            other => panic!("unexpected answer during the outage: {other:?}"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(saw_unavailable);
    let r = put("during-outage").await.unwrap();
    assert_eq!(r.status(), 503);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["code"],
        "unavailable"
    );
    let (status, _) = server.json(Method::GET, "/v1/projects").await;
    assert_eq!(
        status, 200,
        "the API answers what does not need the backend"
    );

    // Back (a dev server comes back empty): writes work again and guests see them, with no
    // restart of the host.
    assert!(bao.restart(), "OpenBao restarts");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let status = put("after-outage").await.unwrap().status();
        if status == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "writes never recovered: {status}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(read().await.1["value"], "after-outage");
}

/// Sends the first `sent` bytes of a request of `total` declared bytes and leaves it hanging.
fn start_request(addr: &str, head: &str, body: &[u8], sent: usize) -> std::net::TcpStream {
    let mut s = std::net::TcpStream::connect(addr.trim_start_matches("http://")).unwrap();
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(&body[..sent]).unwrap();
    s.flush().unwrap();
    s
}

fn wait_for_log(server: &Server, needle: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !server.log().contains(needle) {
        assert!(Instant::now() < deadline, "never logged {needle:?}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

async fn check(server: &Server) -> (Value, u16, String) {
    let (_, pkg) = server
        .json(Method::GET, "/v1/projects/acme/packages/app")
        .await;
    let (status, text) = server.get("/acme/app/").await;
    (pkg, status, text)
}

#[tokio::test]
async fn sigkill_during_upload_deploy_and_import_leaves_the_previous_state() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let log = tmp.path().join("server.log");
    let mut server = Server::spawn(&data, &Options::default(), log.clone());
    server.deploy("acme/app", "hello").await;
    let seed = server
        .api(Method::PUT, "/v1/projects/acme/secrets/KEEP")
        .json(&json!({ "value": "kept" }))
        .send()
        .await
        .unwrap();
    assert_eq!(seed.status(), 200);
    let token = server.token.clone();
    let echo = std::fs::read(guest("echo")).unwrap();
    let upload_head = |len: usize| {
        format!(
            "POST /v1/projects/acme/packages/app/versions HTTP/1.1\r\nHost: x\r\n\
             Authorization: Bearer {token}\r\nContent-Type: application/wasm\r\n\
             Content-Length: {len}\r\n\r\n"
        )
    };
    // 1. Killed halfway through receiving an upload.
    let _hanging = start_request(&server.api, &upload_head(echo.len()), &echo, echo.len() / 2);
    // Whenever the kill lands, nothing of this upload may have been recorded.
    server.kill9();
    let server = Server::spawn(&data, &Options::default(), log.clone());
    let (pkg, status, text) = check(&server).await;
    assert_eq!(pkg["versions"].as_array().unwrap().len(), 1, "{pkg}");
    assert_eq!((status, text.starts_with("Hello")), (200, true));

    // 2. Killed while the upload is being compiled and recorded.
    let mut server = server;
    let _stream = start_request(&server.api, &upload_head(echo.len()), &echo, echo.len());
    wait_for_log(&server, "compiling an upload");
    server.kill9();
    let server = Server::spawn(&data, &Options::default(), log.clone());
    let (pkg, status, text) = check(&server).await;
    let versions = pkg["versions"].as_array().unwrap().len();
    let current = pkg["current_version"].as_i64().unwrap();
    assert!(versions == 1 || versions == 2, "{pkg}");
    assert_eq!(
        current as usize, versions,
        "the current version is the newest recorded"
    );
    assert_eq!(status, 200, "{text}");
    let leftovers: Vec<_> = std::fs::read_dir(data.join("artifacts"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp-"))
        .collect();
    assert!(
        leftovers.is_empty(),
        "temp files swept at start: {leftovers:?}"
    );

    // 3. Killed during a secret import: all of it or none of it.
    let mut server = server;
    let mut entries = serde_json::Map::new();
    for i in 0..200 {
        entries.insert(format!("IMP_{i}"), json!(format!("value-{i}")));
    }
    let body = Value::Object(entries).to_string().into_bytes();
    let head = format!(
        "PUT /v1/projects/acme/secrets HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        server.token,
        body.len()
    );
    let _half = start_request(&server.api, &head, &body, body.len() / 2);
    let _full = start_request(&server.api, &head, &body, body.len());
    server.kill9();
    let server = Server::spawn(&data, &Options::default(), log);
    let (_, list) = server.json(Method::GET, "/v1/projects/acme/secrets").await;
    let names: Vec<&str> = list["secrets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    let imported = names.iter().filter(|n| n.starts_with("IMP_")).count();
    assert!(
        imported == 0 || imported == 200,
        "a partial import survived: {imported}"
    );
    assert!(names.contains(&"KEEP"), "{names:?}");
    let (status, _) = server
        .json(Method::GET, "/v1/projects/acme/secrets/KEEP")
        .await;
    assert_eq!(status, 200);
}
