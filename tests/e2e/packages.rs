//! Deploying, calling, rejecting bad uploads, rolling back, deleting, restarting.

use crate::harness::{Options, Server, guest};
use reqwest::Method;
use serde_json::Value;

#[tokio::test]
async fn deploy_then_call_hello() {
    let server = Server::start().await;
    let body = server.deploy("acme/hello", "hello").await;
    assert_eq!(body["version"], 1);
    assert_eq!(body["sha256"].as_str().unwrap().len(), 64);

    let r = server
        .call(Method::GET, "/acme/hello/")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let id = r.headers()["x-edgeward-execution-id"]
        .to_str()
        .unwrap()
        .to_string();
    assert_eq!(id.len(), 36, "a UUID: {id}");
    let text = r.text().await.unwrap();
    assert!(text.starts_with("Hello from Edgeward!"), "{text}");
    // Without the trailing slash too, and deeper paths are passed on.
    let (status, text) = server.get("/acme/hello").await;
    assert_eq!((status, text.contains("You asked for /")), (200, true));
    let (_, text) = server.get("/acme/hello/a/b").await;
    assert!(text.contains("You asked for /a/b"), "{text}");
    // Each request gets its own execution id.
    let a = server
        .call(Method::GET, "/acme/hello/")
        .send()
        .await
        .unwrap();
    assert_ne!(a.headers()["x-edgeward-execution-id"].to_str().unwrap(), id);
}

#[tokio::test]
async fn echo_sees_method_path_query_headers_and_body() {
    let server = Server::start().await;
    server.deploy("acme/echo", "echo").await;
    let r = server
        .call(Method::POST, "/acme/echo/some/path?x=1&y=two")
        .header("x-custom", "yes")
        .body("the body")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["method"], "POST");
    assert_eq!(v["path"], "/some/path");
    assert_eq!(v["query"], "x=1&y=two");
    assert_eq!(v["body"], "the body");
    let headers = v["headers"].as_array().unwrap();
    assert!(
        headers.iter().any(|h| h[0] == "x-custom" && h[1] == "yes"),
        "{headers:?}"
    );
    // A large body goes through whole.
    let big = "z".repeat(300_000);
    let r = server
        .call(Method::PUT, "/acme/echo/")
        .body(big.clone())
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["method"], "PUT");
    assert_eq!(v["body"].as_str().unwrap().len(), big.len());
}

/// A component whose only import is one the host does not provide.
fn component_with_foreign_import() -> Vec<u8> {
    wat::parse_str(
        r#"(component
             (import "acme:nope/thing@1.0.0" (instance (export "f" (func))))
           )"#,
    )
    .unwrap()
}

#[tokio::test]
async fn every_bad_upload_gets_its_own_code_and_changes_nothing() {
    let server = Server::start_with(Options {
        extra_args: vec!["--max-upload-bytes".into(), "1500000".into()],
        ..Options::default()
    })
    .await;
    server.deploy("acme/app", "hello").await;

    let core_module = wat::parse_str("(module (func (export \"f\")))").unwrap();
    let empty_component = wat::parse_str("(component)").unwrap();
    let mut truncated = std::fs::read(guest("hello")).unwrap();
    truncated.truncate(truncated.len() / 2);
    let random: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    let cases: Vec<(&str, Vec<u8>, u16, &str, &str)> = vec![
        ("empty body", vec![], 422, "empty_body", "empty"),
        ("random bytes", random, 422, "not_wasm", "not WebAssembly"),
        (
            "core module",
            core_module,
            422,
            "not_a_component",
            "core WebAssembly module",
        ),
        (
            "truncated component",
            truncated,
            422,
            "invalid_component",
            "does not validate",
        ),
        (
            "no incoming-handler",
            empty_component,
            422,
            "missing_export",
            "incoming-handler",
        ),
        (
            "foreign import",
            component_with_foreign_import(),
            422,
            "unsupported_import",
            "acme:nope/thing",
        ),
        (
            "over the size limit",
            vec![0u8; 1_700_000],
            413,
            "too_large",
            "1500000",
        ),
    ];
    for (what, bytes, status, code, says) in cases {
        let (got, body) = server.upload("acme/app", bytes).await;
        assert_eq!(got, status, "{what}: {body}");
        assert_eq!(body["error"]["code"], code, "{what}: {body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(
            message.contains(says),
            "{what}: {message:?} should mention {says:?}"
        );
    }

    // Over the limit without a Content-Length (chunked) is refused the same way. The server
    // answers before the client has finished sending, so read while writing.
    let response = server.raw_chunked_upload("/v1/projects/acme/packages/app/versions", 1_700_000);
    assert!(response.starts_with("HTTP/1.1 413"), "{response}");
    assert!(response.contains("\"too_large\""), "{response}");

    // A bad manifest beside a good component.
    let form = reqwest::multipart::Form::new()
        .part(
            "component",
            reqwest::multipart::Part::bytes(std::fs::read(guest("hello")).unwrap()),
        )
        .part(
            "manifest",
            reqwest::multipart::Part::text("secrets = [\"../x\"]"),
        );
    let r = server
        .api(Method::POST, "/v1/projects/acme/packages/app/versions")
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "bad_manifest");

    // Bad names.
    let (status, body) = server.upload("Acme/app", vec![1]).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("bad_entry"))
    );

    // Nothing changed: still one version, still serving hello.
    let (_, pkg) = server
        .json(Method::GET, "/v1/projects/acme/packages/app")
        .await;
    assert_eq!(pkg["current_version"], 1);
    assert_eq!(pkg["versions"].as_array().unwrap().len(), 1);
    let (status, text) = server.get("/acme/app/").await;
    assert_eq!((status, text.starts_with("Hello")), (200, true));
}

#[tokio::test]
async fn rollback_moves_the_pointer_and_versions_are_kept() {
    let server = Server::start().await;
    server.deploy("acme/app", "hello").await;
    let v2 = server.deploy("acme/app", "echo").await;
    assert_eq!(v2["version"], 2);
    let (_, text) = server.get("/acme/app/").await;
    assert!(text.contains("\"method\""), "v2 (echo) serves: {text}");

    let (status, body) = server
        .json(Method::POST, "/v1/projects/acme/packages/app/rollback")
        .await;
    assert_eq!((status, body["version"].as_i64()), (200, Some(1)), "{body}");
    let (_, text) = server.get("/acme/app/").await;
    assert!(text.starts_with("Hello"), "v1 (hello) serves again: {text}");

    let r = server
        .api(Method::POST, "/v1/projects/acme/packages/app/rollback")
        .json(&serde_json::json!({ "version": 2 }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let (_, text) = server.get("/acme/app/").await;
    assert!(text.contains("\"method\""), "{text}");

    let r = server
        .api(Method::POST, "/v1/projects/acme/packages/app/rollback")
        .json(&serde_json::json!({ "version": 99 }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "not_found");

    let (_, pkg) = server
        .json(Method::GET, "/v1/projects/acme/packages/app")
        .await;
    assert_eq!(pkg["current_version"], 2);
    assert_eq!(pkg["versions"].as_array().unwrap().len(), 2);

    // Delete: gone from the API and the data plane.
    let (status, _) = server
        .json(Method::DELETE, "/v1/projects/acme/packages/app")
        .await;
    assert_eq!(status, 204);
    let (status, body) = server.get("/acme/app/").await;
    assert_eq!(status, 404, "{body}");
    let (status, _) = server
        .json(Method::DELETE, "/v1/projects/acme/packages/app")
        .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn a_restart_keeps_every_package_and_reuses_compiled_artifacts() {
    let tmp = tempfile::tempdir().unwrap();
    let data_dir = tmp.path().join("data");
    let log = tmp.path().join("server.log");
    let mut server = Server::spawn(&data_dir, &Options::default(), log.clone());
    // On SQLite the first start makes admin.token; in cluster mode `admin init` did.
    let first_start = if crate::harness::on_postgres() {
        "admin token: none on this host (cluster mode: `edgeward admin init`)"
    } else {
        "(created)"
    };
    assert!(
        server
            .stdout_lines()
            .iter()
            .any(|l| l.ends_with(first_start))
    );
    server.deploy("acme/hello", "hello").await;
    server.deploy("acme/echo", "echo").await;
    server.deploy("other/hello", "hello").await;
    server.deploy("acme/hello", "echo").await;
    server
        .json(Method::POST, "/v1/projects/acme/packages/hello/rollback")
        .await;
    let token = server.token.clone();
    assert!(server.stop(), "SIGTERM exits 0");
    let stopped_at = std::time::SystemTime::now();

    let artifacts: Vec<_> = std::fs::read_dir(data_dir.join("artifacts"))
        .unwrap()
        .collect();
    assert_eq!(artifacts.len(), 2, "one artifact per distinct component");

    let server = Server::spawn(&data_dir, &Options::default(), log.clone());
    let restart = if crate::harness::on_postgres() {
        first_start
    } else {
        "(existing)"
    };
    assert!(server.stdout_lines().iter().any(|l| l.ends_with(restart)));
    assert_eq!(server.token, token, "the admin token survives");
    let (status, text) = server.get("/acme/hello/").await;
    assert_eq!(
        (status, text.starts_with("Hello")),
        (200, true),
        "rollback survived: {text}"
    );
    let (status, text) = server.get("/acme/echo/").await;
    assert_eq!((status, text.contains("\"method\"")), (200, true));
    let (status, _) = server.get("/other/hello/").await;
    assert_eq!(status, 200);
    let (_, projects) = server.json(Method::GET, "/v1/projects").await;
    assert_eq!(projects["projects"].as_array().unwrap().len(), 2);
    let log_text = server.log();
    assert!(
        !log_text.contains("recompiling") && !log_text.contains("compiling the stored component"),
        "artifacts were reused:\n{log_text}"
    );
    let after: Vec<_> = std::fs::read_dir(data_dir.join("artifacts"))
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (e.file_name(), e.metadata().unwrap().modified().unwrap())
        })
        .collect();
    assert_eq!(after.len(), 2, "no artifact was written again");
    assert!(
        after.iter().all(|(_, modified)| *modified <= stopped_at),
        "an artifact was rewritten at restart: {after:?}"
    );
    assert!(
        !log_text.contains(&token),
        "the admin token is never logged"
    );

    // The positive control: an artifact gone is seen, compiled again and written back.
    drop(server);
    let (gone, _) = &after[0];
    std::fs::remove_file(data_dir.join("artifacts").join(gone)).unwrap();
    let logged_before = std::fs::read_to_string(&log).unwrap().len();
    let server = Server::spawn(&data_dir, &Options::default(), log.clone());
    for path in ["/acme/hello/", "/acme/echo/"] {
        assert_eq!(server.get(path).await.0, 200);
    }
    let new_log = server.log()[logged_before..].to_string();
    assert_eq!(
        new_log.matches("compiling the stored component").count(),
        1,
        "{new_log}"
    );
    assert!(data_dir.join("artifacts").join(gone).exists());
}

#[tokio::test]
async fn the_api_wants_a_valid_token() {
    let server = Server::start().await;
    let http = crate::harness::http();
    let url = format!("{}/v1/projects", server.api);
    for auth in [
        None,
        Some("Bearer ew_0000"),
        Some("Bearer nope"),
        Some("Basic YTpi"),
    ] {
        let mut req = http.get(&url);
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), 401, "{auth:?}");
        assert_eq!(r.headers()["www-authenticate"], "Bearer");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"]["code"], "unauthenticated");
    }
    let r = http
        .get(format!("{}/v1/health", server.api))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // Liveness, and nothing about what this host serves: anyone may ask.
    let body: Value = r.json().await.unwrap();
    assert_eq!(body, serde_json::json!({ "status": "ok" }));
    let (status, body) = server.json(Method::GET, "/v1/nope").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("not_found"))
    );

    // Projects: create, duplicate, bad name, list.
    let create = |name: &str| {
        server
            .api(Method::POST, "/v1/projects")
            .json(&serde_json::json!({ "name": name }))
            .send()
    };
    assert_eq!(create("team-a").await.unwrap().status(), 201);
    let r = create("team-a").await.unwrap();
    assert_eq!(r.status(), 409);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["code"],
        "already_exists"
    );
    let r = create("Team A").await.unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["code"],
        "bad_entry"
    );
    let (_, body) = server.json(Method::GET, "/v1/projects").await;
    assert_eq!(body["projects"][0]["name"], "team-a");
    let (status, _) = server.json(Method::GET, "/v1/projects/nope/packages").await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn sigterm_drains_in_flight_requests_then_exits_zero() {
    // The default: one data-plane worker runtime per CPU, sharing the port (SO_REUSEPORT).
    drains_in_flight_requests(Options::default()).await;
}

#[tokio::test]
async fn sigterm_drains_on_the_shared_runtime_too() {
    drains_in_flight_requests(Options {
        extra_args: vec!["--data-workers".into(), "0".into()],
        ..Options::default()
    })
    .await;
}

/// A request in flight when SIGTERM arrives is answered, new connections are refused, the
/// server exits 0, and the drained request's execution record was written.
async fn drains_in_flight_requests(options: Options) {
    use std::io::{Read, Write};
    let tmp = tempfile::tempdir().unwrap();
    let data_dir = tmp.path().join("data");
    let log = tmp.path().join("server.log");
    let mut server = Server::spawn(&data_dir, &options, log.clone());
    server.deploy("acme/echo", "echo").await;
    let addr = server.listen.trim_start_matches("http://").to_string();
    let mut stream = std::net::TcpStream::connect(&addr).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .unwrap();
    // Half a request: the guest is now waiting for the rest of the body.
    stream
        .write_all(b"POST /acme/echo/slow HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nhello")
        .unwrap();
    // Signal only once the server has routed the request (it logs that at debug level).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !server.log().contains("path=/slow") {
        assert!(std::time::Instant::now() < deadline, "request never routed");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    server.terminate();
    // New connections are refused once the listener is closed...
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::net::TcpStream::connect(&addr).is_ok() {
        assert!(
            std::time::Instant::now() < deadline,
            "listener still open after SIGTERM"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    // ...but the one in flight finishes.
    stream.write_all(b"world").unwrap();
    let mut response = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = stream.read(&mut buf) {
        if n == 0 {
            break;
        }
        response.extend_from_slice(&buf[..n]);
        if response.ends_with(b"0\r\n\r\n") || response.ends_with(b"}") {
            break;
        }
    }
    let response = String::from_utf8_lossy(&response);
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains("helloworld"), "{response}");
    let id = response
        .lines()
        .find_map(|l| l.strip_prefix("x-edgeward-execution-id: "))
        .expect("execution id header")
        .trim()
        .to_string();
    drop(stream);
    assert!(server.stop(), "exit status 0 after draining");

    let server = Server::spawn(&data_dir, &options, log);
    let record = server.execution("acme", &id).await;
    assert_eq!(
        (record["status"].as_str(), record["http_status"].as_u64()),
        (Some("ok"), Some(200)),
        "{record}"
    );
}

#[tokio::test]
async fn one_component_under_several_names_is_compiled_once_and_serves_each() {
    let server = Server::start().await;
    let started = std::time::Instant::now();
    for target in ["acme/a", "acme/b", "other/c"] {
        server.deploy(target, "hello").await;
    }
    let artifacts = std::fs::read_dir(server.data_dir.join("artifacts"))
        .unwrap()
        .count();
    assert_eq!(artifacts, 1, "one artifact for one component");
    // Deleting one name leaves the others serving the shared component.
    let (status, body) = server
        .json(Method::DELETE, "/v1/projects/acme/packages/a")
        .await;
    assert_eq!(status, 204, "{body}");
    assert_eq!(server.get("/acme/a/").await.0, 404);
    for path in ["/acme/b/x", "/other/c/y"] {
        let (status, text) = server.get(path).await;
        assert_eq!(
            (status, text.starts_with("Hello")),
            (200, true),
            "{path}: {text}"
        );
    }
    // Uploading the same bytes again (the artifact exists) is accepted and serves.
    server.deploy("acme/a", "hello").await;
    assert_eq!(server.get("/acme/a/").await.0, 200);
    let log = server.log();
    assert_eq!(
        log.matches("compiling an upload").count(),
        1,
        "only the first upload was compiled ({:?}):\n{log}",
        started.elapsed()
    );
}

/// Deleting a package deletes the compiled artifacts of the components no other version
/// uses (they used to stay in `artifacts/` for ever); one another package still runs stays,
/// and that package still serves.
#[tokio::test]
async fn deleting_a_package_deletes_the_artifacts_no_version_uses() {
    let server = Server::start().await;
    let a = server.deploy("acme/a", "hello").await;
    server.deploy("acme/b", "hello").await;
    let c = server.deploy("acme/c", "echo").await;
    let artifacts = || crate::harness::artifact_names(&server.data_dir);
    let sha = |v: &serde_json::Value| v["sha256"].as_str().unwrap().to_string();
    let (hello, echo) = (sha(&a), sha(&c));
    let has = |names: &[String], sha: &str| names.iter().any(|n| n.starts_with(sha));
    let before = artifacts();
    assert!(has(&before, &hello) && has(&before, &echo), "{before:?}");

    for package in ["c", "a"] {
        let r = server
            .api(
                reqwest::Method::DELETE,
                &format!("/v1/projects/acme/packages/{package}"),
            )
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{}", r.status());
    }
    let after = artifacts();
    assert!(!has(&after, &echo), "echo's artifact stayed: {after:?}");
    assert!(has(&after, &hello), "b still runs hello: {after:?}");
    let (status, _) = server.get("/acme/b/").await;
    assert_eq!(status, 200);
}

/// At start, the artifacts nothing can load any more are removed: one of a component no
/// version uses (deleted on another host, or before a crash) and one compiled by another
/// engine (its name carries another compatibility key), each older than ten minutes. A fresh
/// unknown one stays (an upload writes its artifact before its version is committed), and so
/// does the serving component's, however old.
#[tokio::test]
async fn a_start_removes_the_artifacts_nothing_can_load() {
    let tmp = tempfile::tempdir().unwrap();
    let data_dir = tmp.path().join("data");
    let log = tmp.path().join("server.log");
    let mut server = Server::spawn(&data_dir, &Options::default(), log.clone());
    server.deploy("acme/hello", "hello").await;
    assert!(server.stop(), "SIGTERM exits 0");

    let dir = data_dir.join("artifacts");
    let names = || -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    let real = names().pop().expect("hello's artifact");
    let (sha, compat) = real
        .strip_suffix(".cwasm")
        .unwrap()
        .split_once('-')
        .unwrap();
    let age = |name: &str, secs: u64| {
        std::fs::File::options()
            .write(true)
            .open(dir.join(name))
            .unwrap()
            .set_modified(std::time::SystemTime::now() - std::time::Duration::from_secs(secs))
            .unwrap();
    };
    let unknown_old = format!("{}-{compat}.cwasm", "0".repeat(64));
    let foreign_old = format!("{sha}-0123456789abcdef.cwasm");
    let unknown_fresh = format!("{}-{compat}.cwasm", "1".repeat(64));
    for name in [&unknown_old, &foreign_old, &unknown_fresh] {
        std::fs::write(dir.join(name), b"not an artifact").unwrap();
    }
    age(&unknown_old, 3600);
    age(&foreign_old, 3600);
    age(&real, 3600);

    let server = Server::spawn(&data_dir, &Options::default(), log.clone());
    let mut kept = vec![real.clone(), unknown_fresh.clone()];
    kept.sort();
    assert_eq!(names(), kept);
    let (status, text) = server.get("/acme/hello/").await;
    assert_eq!(status, 200, "{text}");
}

/// Kilobytes of `pid`'s memory resident from its artifacts' read-only mappings, their code and
/// tables (`/proc/PID/smaps`); a writable mapping of one is an instance slot's copy-on-write
/// view of its data image, the instance's memory.
fn artifact_resident_kb(pid: u32) -> u64 {
    let smaps = std::fs::read_to_string(format!("/proc/{pid}/smaps")).unwrap();
    let mut in_artifact = false;
    let mut kb = 0;
    for line in smaps.lines() {
        let first = line.split_ascii_whitespace().next().unwrap_or("");
        if first.contains('-') && first.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
            let perms = line.split_ascii_whitespace().nth(1).unwrap_or("");
            in_artifact = line.ends_with(".cwasm") && !perms.contains('w');
        } else if in_artifact && let Some(rest) = line.strip_prefix("Rss:") {
            kb += rest.trim().trim_end_matches(" kB").parse::<u64>().unwrap();
        }
    }
    kb
}

/// A component that takes no request for `--code-idle-seconds` gives its code pages back (its
/// artifact's mapping holds nothing resident), and the next request maps them again and gets
/// the same answer.
#[tokio::test]
async fn an_idle_component_gives_back_its_code_and_serves_the_same_after() {
    let server = Server::start_with(Options {
        extra_args: vec!["--code-idle-seconds".into(), "1".into()],
        ..Options::default()
    })
    .await;
    server.deploy("acme/hello", "hello").await;
    let (status, first) = server.get("/acme/hello/x").await;
    assert_eq!(status, 200, "{first}");
    assert!(
        artifact_resident_kb(server.pid()) > 0,
        "a request maps the code it runs"
    );

    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let mut resident = artifact_resident_kb(server.pid());
    while resident > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "{resident} kB of the idle artifact still resident after 30 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        resident = artifact_resident_kb(server.pid());
    }

    let (status, again) = server.get("/acme/hello/x").await;
    assert_eq!((status, again), (200, first));
    assert!(artifact_resident_kb(server.pid()) > 0);
}
