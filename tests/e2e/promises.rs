//! README promises that had no end-to-end test of their own: graceful shutdown on SIGINT and
//! the drain timeout, the secrets allowlist through `get_from` and `[env]`, masking of values
//! a guest only had bound into its environment, and the audit record's fields and outcomes.

use crate::harness::{Options, Server, unique};
use reqwest::Method;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// An upstream that counts requests and answers each only when the test says so.
struct HeldUpstream {
    port: u16,
    hits: Arc<AtomicUsize>,
    release: Arc<tokio::sync::Notify>,
    task: tokio::task::JoinHandle<()>,
}

impl HeldUpstream {
    async fn start() -> HeldUpstream {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let hits = Arc::new(AtomicUsize::new(0));
        let release = Arc::new(tokio::sync::Notify::new());
        let (h, r) = (hits.clone(), release.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    break;
                };
                let (h, r) = (h.clone(), r.clone());
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |_req| {
                        let (h, r) = (h.clone(), r.clone());
                        async move {
                            let waiting = r.notified();
                            h.fetch_add(1, Ordering::SeqCst);
                            waiting.await;
                            Ok::<_, std::convert::Infallible>(hyper::Response::new(
                                http_body_util::Full::new(bytes::Bytes::from_static(b"released")),
                            ))
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        HeldUpstream {
            port,
            hits,
            release,
            task,
        }
    }

    /// Waits (bounded) until `n` requests have arrived.
    async fn wait_for(&self, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(15);
        while self.hits.load(Ordering::SeqCst) < n {
            assert!(Instant::now() < deadline, "the guest never called upstream");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

impl Drop for HeldUpstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A server whose `acme/fetch` guest calls the held upstream (loopback, so private
/// destinations are allowed), draining for `drain` seconds at shutdown.
async fn server_calling(upstream: &HeldUpstream, drain: &str) -> Server {
    let server = Server::start_with(Options {
        extra_args: ["--outbound-allow-private", "--drain-seconds", drain]
            .map(String::from)
            .to_vec(),
        ..Options::default()
    })
    .await;
    let manifest = format!(
        "[outbound]\nhosts = [\"http://127.0.0.1:{}\"]\n",
        upstream.port
    );
    server.deploy_with("acme/fetch", "fetch", &manifest).await;
    server
}

/// A server draining for `drain` seconds, and a request to it whose guest is already running,
/// parked on the held upstream when this returns.
async fn request_in_flight(
    upstream: &HeldUpstream,
    drain: &str,
) -> (
    Server,
    tokio::task::JoinHandle<reqwest::Result<reqwest::Response>>,
) {
    let server = server_calling(upstream, drain).await;
    let url = format!(
        "{}/acme/fetch/?url=http://127.0.0.1:{}/held",
        server.listen, upstream.port
    );
    let in_flight = tokio::spawn(crate::harness::http_get(url));
    upstream.wait_for(1).await;
    (server, in_flight)
}

#[tokio::test]
async fn sigint_lets_the_request_in_flight_finish_then_exits_0() {
    let upstream = HeldUpstream::start().await;
    let (mut server, in_flight) = request_in_flight(&upstream, "30").await;
    server.signal("-INT");
    // Still draining: it has not exited while the request is unanswered.
    assert!(server.wait_exit(Duration::from_millis(500)).is_none());
    let refused = crate::harness::http_get(format!("{}/acme/fetch/", server.listen)).await;
    assert!(
        refused.is_err(),
        "no new connection is taken while draining"
    );
    upstream.release.notify_waiters();
    let body = in_flight.await.unwrap().unwrap().text().await.unwrap();
    assert!(body.contains("released"), "{body}");
    let status = server
        .wait_exit(Duration::from_secs(20))
        .expect("exits once drained");
    assert!(status.success(), "{status}");
}

#[tokio::test]
async fn the_drain_timeout_bounds_shutdown_when_a_request_never_finishes() {
    let upstream = HeldUpstream::start().await;
    let (mut server, in_flight) = request_in_flight(&upstream, "1").await;
    let signalled = Instant::now();
    server.signal("-TERM");
    let status = server
        .wait_exit(Duration::from_secs(15))
        .expect("exits after the drain timeout");
    let took = signalled.elapsed();
    assert!(
        took >= Duration::from_millis(900),
        "exited after {took:?}, before the 1 s drain"
    );
    assert!(took < Duration::from_secs(10), "took {took:?}");
    // The request that never finished was cut, not answered.
    match in_flight.await.unwrap() {
        Err(_) => {}
        Ok(r) => assert_ne!(r.status(), 200, "it was never released"),
    }
    let _ = status;
}

#[tokio::test]
async fn the_allowlist_holds_through_get_from_and_env_bindings() {
    let server = Server::start().await;
    let allowlisted = "secrets = [\"ALLOWED\"]\n";
    server.deploy_with("acme/api", "secrets", allowlisted).await;
    for (name, value) in [
        ("ALLOWED", "allowed-value-1a2b"),
        ("REFUSED", "refused-value-3c4d"),
    ] {
        let r = server
            .api(Method::PUT, &format!("/v1/projects/acme/secrets/{name}"))
            .json(&json!({ "value": value }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    for scope in ["project", "package", "platform"] {
        let (status, text) = server
            .get(&format!("/acme/api/?name=REFUSED&scope={scope}&reveal=1"))
            .await;
        let v: Value = serde_json::from_str(&text).unwrap();
        // The guest reports the error code it got (as a 200 of its own).
        assert_eq!(
            (status, v["found"].as_bool(), v["error"].as_str()),
            (200, Some(false), Some("denied")),
            "get_from({scope}): {text}"
        );
    }
    // The positive control: the allowlisted name, through the same scope.
    let (_, text) = server
        .get("/acme/api/?name=ALLOWED&scope=project&reveal=1")
        .await;
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["value"], "allowed-value-1a2b", "{text}");
    // A binding outside the allowlist is refused at deploy, naming it; nothing is deployed.
    let form = reqwest::multipart::Form::new()
        .part(
            "component",
            reqwest::multipart::Part::bytes(
                std::fs::read(crate::harness::guest("secrets")).unwrap(),
            ),
        )
        .part(
            "manifest",
            reqwest::multipart::Part::text(format!("{allowlisted}[env]\nX = \"secret:REFUSED\"\n")),
        );
    let r = server
        .api(Method::POST, "/v1/projects/acme/packages/api/versions")
        .multipart(form)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let body: Value = r.json().await.unwrap();
    assert!(
        status == 422
            && body["error"]["code"] == "bad_manifest"
            && body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("env.X binds secret REFUSED"),
        "{status} {body}"
    );
    let (_, versions) = server
        .json(Method::GET, "/v1/projects/acme/packages/api")
        .await;
    assert_eq!(
        versions["versions"].as_array().map(Vec::len),
        Some(1),
        "{versions}"
    );
}

#[tokio::test]
async fn a_value_only_bound_into_the_environment_is_masked_in_output() {
    let server = Server::start().await;
    let bound = "env-bound-value-7e8f9a";
    server
        .deploy_with(
            "acme/api",
            "secrets",
            "[env]\nBOUND = \"secret:ENV_ONLY\"\n",
        )
        .await;
    for (name, value) in [("ENV_ONLY", bound), ("USED", "used-value-0b1c2d")] {
        let r = server
            .api(Method::PUT, &format!("/v1/projects/acme/secrets/{name}"))
            .json(&json!({ "value": value }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    // The guest never asks for ENV_ONLY; it prints the request body, which carries its value.
    let r = server
        .call(Method::POST, "/acme/api/?name=USED&log_body=1")
        .body(format!("before {bound} after"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let id = r.headers()["x-edgeward-execution-id"]
        .to_str()
        .unwrap()
        .to_string();
    let record = server.execution("acme", &id).await;
    let stdout = record["stdout"].as_str().unwrap();
    assert!(
        stdout.contains("before ") && stdout.contains(" after"),
        "the positive control: the body was printed: {stdout}"
    );
    assert!(!stdout.contains(bound), "{stdout}");
}

#[tokio::test]
async fn audit_records_carry_token_project_scope_and_every_outcome() {
    let server = Server::start().await;
    let admin = |m: Method, p: &str, body: Option<Value>| {
        let r = server.api(m, p);
        async move {
            let r = match body {
                Some(b) => r.json(&b),
                None => r,
            };
            let r = r.send().await.unwrap();
            let status = r.status().as_u16();
            (status, r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    for p in ["p1", "p2"] {
        assert_eq!(
            admin(Method::POST, "/v1/projects", Some(json!({"name": p})))
                .await
                .0,
            201
        );
    }
    let mut tokens = Vec::new();
    for (user, project) in [("dev", "p1"), ("padmin", "p1")] {
        assert_eq!(
            admin(Method::POST, "/v1/users", Some(json!({"name": user})))
                .await
                .0,
            201
        );
        let role = if user == "dev" { "developer" } else { "admin" };
        let (s, b) = admin(
            Method::PUT,
            &format!("/v1/projects/{project}/members/{user}"),
            Some(json!({"role": role})),
        )
        .await;
        assert_eq!(s, 200, "{b}");
        let (s, b) = admin(Method::POST, &format!("/v1/users/{user}/tokens"), None).await;
        assert_eq!(s, 201, "{b}");
        tokens.push((
            b["token"].as_str().unwrap().to_string(),
            b["id"].as_str().unwrap().to_string(),
        ));
    }
    let (dev, dev_id) = tokens[0].clone();
    let (padmin, _) = tokens[1].clone();
    let as_dev =
        |m: Method, p: &str, body: Value| server.api_as(m, p).bearer_auth(&dev).json(&body).send();
    let name = unique("AUD").replace('-', "_").to_uppercase();
    server.deploy("p1/web", "hello").await;
    let package_target = format!("/v1/projects/p1/packages/web/secrets/{name}");
    let project_target = format!("/v1/projects/p1/secrets/{name}");
    let platform_target = format!("/v1/secrets/platform/{name}");
    // ok and rejected (a bad body) in the package scope a developer may write; denied in the
    // project and platform scopes they may not: each by the developer's token.
    for (target, body, want) in [
        (&package_target, json!({"value": "audited-value-5f6e"}), 200),
        (&package_target, json!({"nope": 1}), 400),
        (&project_target, json!({"value": "audited-value-5f6e"}), 403),
        (
            &platform_target,
            json!({"value": "audited-value-5f6e"}),
            403,
        ),
    ] {
        let r = as_dev(Method::PUT, target, body).await.unwrap();
        assert_eq!(r.status().as_u16(), want, "{target}");
    }
    // And one in p2, which p1's admin must not see.
    assert_eq!(
        admin(
            Method::PUT,
            &format!("/v1/projects/p2/secrets/{name}"),
            Some(json!({"value": "p2-value-1234"}))
        )
        .await
        .0,
        200
    );

    let (_, audit) = admin(Method::GET, "/v1/audit?limit=1000", None).await;
    let entries = audit["entries"].as_array().unwrap();
    let find = |target: &str, outcome: &str| {
        entries
            .iter()
            .find(|e| e["target"] == target && e["outcome"] == outcome)
            .unwrap_or_else(|| panic!("no {outcome} entry for {target} in {audit}"))
            .clone()
    };
    for (target, outcome, status, scope, project) in [
        (&package_target, "ok", 200, Some("package"), Some("p1")),
        (
            &package_target,
            "rejected",
            400,
            Some("package"),
            Some("p1"),
        ),
        (&project_target, "denied", 403, Some("project"), Some("p1")),
        (&platform_target, "denied", 403, Some("platform"), None),
    ] {
        let e = find(target, outcome);
        assert_eq!(e["actor"], "dev", "{e}");
        assert_eq!(e["token_id"], dev_id.as_str(), "{e}");
        assert_eq!(e["status"], status, "{e}");
        assert_eq!(e["scope"].as_str(), scope, "{e}");
        assert_eq!(e["project"].as_str(), project, "{e}");
        assert!(
            e["remote"].as_str().unwrap().starts_with("127.0.0.1:"),
            "{e}"
        );
    }

    // A project admin reads their project's log, and only theirs.
    let r = server
        .api_as(Method::GET, "/v1/audit?project=p1&limit=1000")
        .bearer_auth(&padmin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let mine: Value = r.json().await.unwrap();
    let mine = mine["entries"].as_array().unwrap();
    assert!(
        mine.iter().any(|e| e["target"] == package_target.as_str()),
        "the positive control"
    );
    assert!(mine.iter().all(|e| e["project"] == "p1"), "{mine:?}");
    let r = server
        .api_as(Method::GET, "/v1/audit?project=p2")
        .bearer_auth(&padmin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
}

/// The `error` outcome: a write the backend could not take.
#[tokio::test]
async fn a_backend_failure_is_audited_as_error() {
    let (_refusing, vault) = crate::harness::refusing_address();
    let server = Server::start_with(Options {
        extra_args: vec!["--secrets-timeout-ms".into(), "500".into()],
        vault: Some((vault, unique("edgeward"))),
        ..Options::default()
    })
    .await;
    let r = server
        .api(Method::PUT, "/v1/secrets/platform/DOWN")
        .json(&json!({"value": "never-stored-9a8b"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    let (_, audit) = server.json(Method::GET, "/v1/audit").await;
    let e = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["target"] == "/v1/secrets/platform/DOWN")
        .unwrap_or_else(|| panic!("{audit}"))
        .clone();
    assert_eq!(
        (e["outcome"].as_str(), e["status"].as_i64()),
        (Some("error"), Some(503)),
        "{e}"
    );
    assert_eq!(e["scope"], "platform", "{e}");
}

#[tokio::test]
async fn limits_above_the_platform_maxima_are_held_to_them_and_said_so() {
    let server = Server::start().await;
    let deployed = server
        .deploy_with(
            "acme/alloc",
            "hostile-alloc",
            "[limits]\ntimeout-ms = 999999999\nmemory-mb = 99999\nmax-concurrency = 100000\n\
             max-request-bytes = 1\n",
        )
        .await;
    let limits = &deployed["limits"];
    assert_eq!(
        (
            limits["timeout_ms"].as_u64(),
            limits["memory_mb"].as_u64(),
            limits["max_concurrency"].as_u64(),
            limits["max_request_bytes"].as_u64(),
        ),
        (Some(300_000), Some(1024), Some(256), Some(1)),
        "{deployed}"
    );
    let notices: Vec<&str> = deployed["notices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap())
        .collect();
    assert_eq!(notices.len(), 3, "{notices:?}");
    for name in ["timeout-ms", "memory-mb", "max-concurrency"] {
        assert!(
            notices
                .iter()
                .any(|n| n.contains(name) && n.contains("maximum")),
            "{name}: {notices:?}"
        );
    }
    // And held for real: the guest that allocates without end stops at 1 GiB.
    let (status, body) = server.get("/acme/alloc/").await;
    assert_eq!(status, 500, "{body}");
    assert!(body.contains("out_of_memory"), "{body}");
    // A manifest within the maxima gets no notice.
    let plain = server.deploy("acme/hello", "hello").await;
    assert_eq!(plain["notices"], json!([]), "{plain}");
}

#[tokio::test]
async fn without_a_master_key_one_is_created_0600_and_kept_across_restarts() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    if crate::harness::on_postgres() {
        // A cluster never makes a key file: one host's file would leave the others unable to
        // decrypt. Without EDGEWARD_MASTER_KEY the host refuses to start, and says why.
        let out =
            crate::harness::cleared(std::process::Command::new(env!("CARGO_BIN_EXE_edgeward")))
                .args([
                    "serve",
                    "--listen",
                    "127.0.0.1:0",
                    "--api-listen",
                    "127.0.0.1:0",
                ])
                .arg("--data-dir")
                .arg(&data)
                .env(
                    "EDGEWARD_STORE",
                    crate::pg::Postgres::shared().create_database(),
                )
                .output()
                .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{stderr}");
        assert!(stderr.contains("needs EDGEWARD_MASTER_KEY"), "{stderr}");
        assert!(!data.join("master.key").exists());
        return;
    }
    let options = Options {
        unset: vec!["EDGEWARD_MASTER_KEY".into()],
        ..Options::default()
    };
    let server = Server::spawn(&data, &options, tmp.path().join("server.log"));
    let key_file = data.join("master.key");
    let meta = std::fs::metadata(&key_file).expect("master.key is created");
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    let key = std::fs::read_to_string(&key_file).unwrap();
    assert!(
        key.trim().len() == 64 && key.trim().chars().all(|c| c.is_ascii_hexdigit()),
        "64 hex digits"
    );
    let r = server
        .api(Method::PUT, "/v1/secrets/platform/KEPT")
        .json(&json!({"value": "kept-across-restart-31"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    drop(server);
    // The same key opens the same store after a restart.
    let server = Server::spawn(&data, &options, tmp.path().join("server.log"));
    assert_eq!(std::fs::read_to_string(&key_file).unwrap(), key);
    let (status, body) = server.json(Method::GET, "/v1/secrets/platform/KEPT").await;
    assert_eq!(
        (status, body["value"].as_str()),
        (200, Some("kept-across-restart-31")),
        "{body}"
    );
    // The key is a credential like any other: nowhere but its own file.
    server.plant_credential(key.trim());
}

#[tokio::test]
async fn the_server_wide_timeout_applies_where_a_manifest_names_none() {
    let server = Server::start_with(Options {
        extra_args: vec!["--timeout-ms".into(), "700".into()],
        ..Options::default()
    })
    .await;
    server.deploy("acme/loop", "hostile-loop").await;
    let started = Instant::now();
    let (status, body) = server.get("/acme/loop/").await;
    let took = started.elapsed();
    assert_eq!(status, 504, "{body}");
    assert!(body.contains("timed_out"), "{body}");
    assert!(
        took >= Duration::from_millis(700) && took < Duration::from_secs(10),
        "stopped after {took:?}, not at 700 ms (the default is 30 s)"
    );
}

#[tokio::test]
async fn cli_rollback_to_a_version_packages_delete_and_logs_by_status() {
    let server = Server::start().await;
    server.deploy("acme/app", "hello").await;
    server.deploy("acme/app", "echo").await;
    server.deploy("acme/app", "hostile-panic").await;
    let cli = |args: &[&str]| {
        let (ok, out, err) = server.cli(args);
        assert!(ok, "{args:?}: {err}");
        out
    };
    // Version 3 panics: a trapped record, and the ok one before it, for `logs --status`.
    let (status, _) = server.get("/acme/app/").await;
    assert_eq!(status, 500);
    cli(&["rollback", "acme/app", "--to", "1"]);
    let (status, text) = server.get("/acme/app/").await;
    assert_eq!((status, text.starts_with("Hello")), (200, true), "{text}");
    let (_, pkg) = server
        .json(Method::GET, "/v1/projects/acme/packages/app")
        .await;
    assert_eq!(pkg["current_version"], 1, "{pkg}");
    // Both records written, then filtered by status.
    let deadline = Instant::now() + Duration::from_secs(15);
    let trapped = loop {
        let out = cli(&["logs", "acme/app", "--status", "trapped"]);
        let all = cli(&["logs", "acme/app"]);
        if out.contains("trapped") && all.contains(" ok ") {
            break out;
        }
        assert!(Instant::now() < deadline, "records never showed: {all}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        !trapped.contains(" ok "),
        "only trapped executions: {trapped}"
    );
    cli(&["packages", "delete", "acme/app"]);
    let (status, _) = server.get("/acme/app/").await;
    assert_eq!(status, 404);
    let (status, _) = server
        .json(Method::GET, "/v1/projects/acme/packages/app")
        .await;
    assert_eq!(status, 404);
}

/// `edgeward serve` with no flags keeps its state in `./.edgeward`, and client commands run in
/// the same directory find the server and the admin token there, with no flag either.
#[tokio::test]
async fn with_no_flags_the_server_uses_dot_edgeward_and_the_cli_finds_it() {
    use std::io::BufRead;
    let tmp = tempfile::tempdir().unwrap();
    let mut serve =
        crate::harness::cleared(std::process::Command::new(env!("CARGO_BIN_EXE_edgeward")));
    // Loopback ports of its own (the defaults, 8080 and 8081, may be taken on a test machine).
    serve
        .current_dir(tmp.path())
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--api-listen",
            "127.0.0.1:0",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null());
    let mut child = serve.spawn().unwrap();
    // Read to the end on a thread of its own, so the server never writes into a closed pipe.
    let stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in stdout.lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    loop {
        let line = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("the server never said ready");
        if line == "ready" {
            break;
        }
    }
    let state = tmp.path().join(".edgeward");
    for file in ["server.json", "admin.token", "master.key", "edgeward.db"] {
        assert!(state.join(file).exists(), "./.edgeward/{file}");
    }
    let out = crate::harness::cleared(std::process::Command::new(env!("CARGO_BIN_EXE_edgeward")))
        .current_dir(tmp.path())
        .args(["projects", "create", "found-it"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = crate::harness::cleared(std::process::Command::new(env!("CARGO_BIN_EXE_edgeward")))
        .current_dir(tmp.path())
        .args(["projects", "list"])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("found-it"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    assert!(child.wait().unwrap().success(), "SIGTERM exits 0");
}
