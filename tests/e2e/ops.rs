//! The CLI as scripts and people use it (`-o json` on every command, tables, `login`
//! profiles, `logs --follow` as a stream), and the server as operators run it (a config file,
//! SIGHUP, JSON logs).

use crate::harness::{Options, Server, cleared, guest};
use serde_json::{Value, json};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Runs the CLI against `server` with `-o json`; the parsed stdout (one document).
fn json_cli(server: &Server, args: &[&str]) -> Value {
    let mut all = vec!["-o", "json"];
    all.extend_from_slice(args);
    let (ok, out, err) = server.cli(&all);
    assert!(ok, "{args:?} failed: {err}");
    serde_json::from_str(out.trim())
        .unwrap_or_else(|e| panic!("{args:?}: not one JSON document ({e}): {out:?}"))
}

#[tokio::test]
async fn every_client_command_speaks_json_in_the_apis_shapes() {
    let server = Server::start().await;
    let hello = guest("hello");
    let hello = hello.to_str().unwrap();
    assert_eq!(
        json_cli(&server, &["projects", "create", "acme"])["name"],
        "acme"
    );
    let d = json_cli(&server, &["deploy", "acme/hello", hello]);
    assert_eq!(
        (d["version"].as_i64(), d["limits"]["timeout_ms"].is_u64()),
        (Some(1), true),
        "{d}"
    );
    json_cli(&server, &["deploy", "acme/hello", hello]);
    assert_eq!(
        json_cli(&server, &["projects", "list"])["projects"][0]["name"],
        "acme"
    );
    let list = json_cli(&server, &["packages", "list"]);
    assert_eq!(
        list["projects"][0]["packages"][0]["current_version"], 2,
        "{list}"
    );
    let show = json_cli(&server, &["packages", "show", "acme/hello"]);
    assert_eq!(show["versions"][1]["current"], true, "{show}");
    assert_eq!(json_cli(&server, &["rollback", "acme/hello"])["version"], 1);
    let inv = json_cli(&server, &["invoke", "acme/hello", "/hi?q=1"]);
    assert_eq!(inv["status"], 200);
    assert!(inv["body"].as_str().unwrap().starts_with("Hello"), "{inv}");
    // logs: one JSON record per line, with method, path (no query), status and duration.
    let id = inv["headers"]["x-edgeward-execution-id"]
        .as_str()
        .unwrap()
        .to_string();
    server.execution("acme", &id).await;
    let (ok, out, err) = server.cli(&["-o", "json", "logs", "acme/hello"]);
    assert!(ok, "{err}");
    let records: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let r = records
        .iter()
        .find(|r| r["id"] == id.as_str())
        .expect("the record");
    assert_eq!(
        (r["method"].as_str(), r["path"].as_str()),
        (Some("GET"), Some("/hi")),
        "{r}"
    );
    assert_eq!(
        (r["status"].as_str(), r["http_status"].as_u64()),
        (Some("ok"), Some(200))
    );
    assert!(r["duration_ms"].as_f64().unwrap() > 0.0);

    let scope = ["--project", "acme"];
    fn with<'a>(args: &[&'a str], scope: &[&'a str]) -> Vec<&'a str> {
        let mut v = args.to_vec();
        v.extend_from_slice(scope);
        v
    }
    let w = json_cli(
        &server,
        &with(
            &["secrets", "set", "DB", r#"{"user":"u","pw":"p"}"#, "--json"],
            &scope,
        ),
    );
    assert_eq!(
        (w["name"].as_str(), w["version"].as_u64()),
        (Some("DB"), Some(1)),
        "{w}"
    );
    assert_eq!(
        json_cli(&server, &with(&["secrets", "create", "K", "v1"], &scope))["version"],
        1
    );
    assert_eq!(
        json_cli(&server, &with(&["secrets", "update", "K", "v2"], &scope))["version"],
        2
    );
    assert_eq!(
        json_cli(&server, &with(&["secrets", "get", "K"], &scope))["value"],
        "v2"
    );
    let f = json_cli(
        &server,
        &with(&["secrets", "get", "DB", "--field", "pw"], &scope),
    );
    assert_eq!(
        (f["field"].as_str(), f["value"].as_str()),
        (Some("pw"), Some("p")),
        "{f}"
    );
    let names: Vec<String> = json_cli(&server, &with(&["secrets", "list"], &scope))["secrets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["DB", "K"]);
    let wrapped = json_cli(
        &server,
        &with(&["secrets", "wrap", "K", "--ttl", "1m"], &scope),
    );
    assert_eq!(wrapped["ttl"], 60);
    let token = wrapped["token"].as_str().unwrap();
    assert_eq!(
        json_cli(&server, &["secrets", "unwrap", token])["value"],
        "v2"
    );
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), r#"{"A": "1", "B": "2"}"#).unwrap();
    let imported = json_cli(
        &server,
        &with(
            &["secrets", "import", file.path().to_str().unwrap()],
            &scope,
        ),
    );
    assert_eq!(imported["imported"], json!(["A", "B"]));
    assert_eq!(
        json_cli(&server, &with(&["secrets", "rm", "A", "--yes"], &scope))["deleted"],
        "A"
    );

    assert_eq!(
        json_cli(&server, &["users", "create", "bob"])["name"],
        "bob"
    );
    assert!(
        json_cli(&server, &["users", "list"])["users"]
            .as_array()
            .unwrap()
            .len()
            >= 2
    );
    let code = json_cli(&server, &["users", "enroll", "bob"])["code"]
        .as_str()
        .unwrap()
        .to_string();
    let enrolled = json_cli(&server, &["enroll", &code]);
    assert_eq!(enrolled["user"], "bob");
    assert_eq!(
        json_cli(
            &server,
            &[
                "projects", "members", "add", "acme", "bob", "--role", "viewer"
            ]
        )["role"],
        "viewer"
    );
    assert_eq!(
        json_cli(&server, &["projects", "members", "list", "acme"])["members"][0]["user"],
        "bob"
    );
    assert_eq!(
        json_cli(&server, &["projects", "members", "remove", "acme", "bob"])["removed"],
        "bob"
    );
    let t = json_cli(
        &server,
        &["tokens", "create", "--name", "ci", "--expires-in", "1h"],
    );
    assert!(t["token"].as_str().unwrap().starts_with("ew_"));
    let tid = t["id"].as_str().unwrap().to_string();
    assert!(
        json_cli(&server, &["tokens", "list"])["tokens"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["id"] == tid.as_str())
    );
    assert_eq!(
        json_cli(&server, &["tokens", "revoke", &tid])["revoked"],
        tid.as_str()
    );
    assert_eq!(json_cli(&server, &["whoami"])["user"], "admin");
    assert!(
        !json_cli(&server, &["audit", "--limit", "5"])["entries"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        json_cli(&server, &["packages", "delete", "acme/hello", "--yes"])["deleted"],
        "acme/hello"
    );
    // An error is one JSON document on stderr with its code (and its exit status), nothing
    // on stdout.
    let (ok, out, err) = server.cli(&["-o", "json", "packages", "show", "acme/nope"]);
    assert!(!ok);
    assert!(out.is_empty(), "{out}");
    assert_eq!(err.lines().count(), 1, "{err}");
    let doc: serde_json::Value = serde_json::from_str(&err).expect("a JSON error document");
    assert_eq!(doc["error"]["code"], "not_found", "{err}");
    assert!(
        doc["error"]["message"].as_str().unwrap().contains("nope"),
        "{err}"
    );
}

#[tokio::test]
async fn tables_are_drawn_with_aligned_columns() {
    let server = Server::start().await;
    server.deploy("acme/hello", "hello").await;
    server
        .deploy("acme/a-much-longer-package-name", "hello")
        .await;
    let (ok, out, err) = server.cli(&["packages", "list"]);
    assert!(ok, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("PACKAGE"), "{out}");
    // Every row's second column starts where the header's does.
    let col = lines[0].find("CURRENT").unwrap();
    for row in &lines[1..] {
        assert_eq!(row.as_bytes()[col - 1], b' ', "{out}");
        assert_ne!(row.as_bytes()[col], b' ', "column 2 starts at {col}: {out}");
    }
}

/// The CLI with no API, token or data directory of its own: profiles only.
fn bare_cli(config_home: &std::path::Path, cwd: &std::path::Path) -> Command {
    let mut cmd = cleared(Command::new(env!("CARGO_BIN_EXE_edgeward")));
    cmd.env("XDG_CONFIG_HOME", config_home).current_dir(cwd);
    cmd
}

fn run(mut cmd: Command, stdin: Option<&str>) -> (bool, String, String) {
    use std::io::Write;
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(s) = stdin {
        input.write_all(s.as_bytes()).unwrap();
    }
    drop(input);
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn login_keeps_two_profiles_private_and_each_token_goes_to_its_own_server() {
    let (a, b) = (Server::start().await, Server::start().await);
    a.deploy("only-a/hello", "hello").await;
    b.deploy("only-b/hello", "hello").await;
    let home = tempfile::tempdir().unwrap();
    let elsewhere = tempfile::tempdir().unwrap();

    // A wrong token is refused by the server and nothing is kept.
    let mut cmd = bare_cli(home.path(), elsewhere.path());
    cmd.args([
        "login",
        "--profile",
        "a",
        "--api",
        &a.api,
        "--token",
        "ew_wrong",
    ]);
    let (ok, _, err) = run(cmd, None);
    assert!(!ok && err.contains("unauthenticated"), "{err}");
    assert!(!home.path().join("edgeward/profiles.toml").exists());

    let mut cmd = bare_cli(home.path(), elsewhere.path());
    cmd.args([
        "login",
        "--profile",
        "a",
        "--api",
        &a.api,
        "--token",
        &a.token,
    ]);
    let (ok, out, err) = run(cmd, None);
    assert!(ok, "{err}");
    assert!(out.contains("as admin (profile a"), "{out}");
    // The second from stdin, as a script passes it.
    let mut cmd = bare_cli(home.path(), elsewhere.path());
    cmd.args(["login", "--profile", "b", "--api", &b.api]);
    let (ok, _, err) = run(cmd, Some(&format!("{}\n", b.token)));
    assert!(ok, "{err}");

    use std::os::unix::fs::PermissionsExt;
    let file = home.path().join("edgeward/profiles.toml");
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(
        std::fs::metadata(file.parent().unwrap())
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o700
    );
    let projects = |profile: Option<&str>| {
        let mut cmd = bare_cli(home.path(), elsewhere.path());
        cmd.args(["-o", "json", "projects", "list"]);
        if let Some(p) = profile {
            cmd.args(["--profile", p]);
        }
        let (ok, out, err) = run(cmd, None);
        assert!(ok, "{err}");
        serde_json::from_str::<Value>(&out).unwrap()["projects"][0]["name"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(projects(Some("a")), "only-a");
    assert_eq!(projects(Some("b")), "only-b");
    // The last login is current.
    assert_eq!(projects(None), "only-b");

    // An unknown profile is an error that names the known ones, exit 4.
    let mut cmd = bare_cli(home.path(), elsewhere.path());
    cmd.args(["projects", "list", "--profile", "nope"]);
    let out = cmd.output().unwrap();
    assert_eq!(out.status.code(), Some(4));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no profile \"nope\"") && err.contains("a, b"),
        "{err}"
    );

    // Logging out of the current profile falls back to the one left...
    let mut cmd = bare_cli(home.path(), elsewhere.path());
    cmd.args(["logout", "--profile", "b"]);
    let (ok, out, err) = run(cmd, None);
    assert!(ok, "{err}");
    assert!(out.contains("current profile: a"), "{out}");
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(!text.contains(&b.token) && text.contains(&a.token));
    assert_eq!(projects(Some("a")), "only-a");
    assert_eq!(projects(None), "only-a");
    // ... and with several left, to `default`: `default` on b, `staging` (current) on a.
    for (profile, server) in [("default", &b), ("staging", &a)] {
        let mut cmd = bare_cli(home.path(), elsewhere.path());
        cmd.args([
            "login",
            "--profile",
            profile,
            "--api",
            &server.api,
            "--token",
            &server.token,
        ]);
        let (ok, _, err) = run(cmd, None);
        assert!(ok, "{err}");
    }
    assert_eq!(projects(None), "only-a");
    let mut cmd = bare_cli(home.path(), elsewhere.path());
    cmd.args(["logout", "--profile", "staging"]);
    let (ok, out, err) = run(cmd, None);
    assert!(ok && out.contains("current profile: default"), "{out}{err}");
    assert_eq!(projects(None), "only-b");
}

/// Reads `child`'s stdout lines on a thread; each line arrives on the channel.
fn lines_of(child: &mut std::process::Child) -> std::sync::mpsc::Receiver<String> {
    use std::io::BufRead;
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

#[tokio::test]
async fn logs_follow_is_a_stream_of_method_path_status_and_duration() {
    let server = Server::start().await;
    server.deploy("acme/hello", "hello").await;
    let mut follow = cleared(Command::new(env!("CARGO_BIN_EXE_edgeward")))
        .args(["logs", "acme/hello", "--follow"])
        .env("EDGEWARD_API", &server.api)
        .env("EDGEWARD_TOKEN", &server.token)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let lines = lines_of(&mut follow);
    // Requests made after the stream is open: retried until one shows up, since the CLI
    // subscribes a moment after it starts.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut seen = Vec::new();
    let mut n = 0;
    while Instant::now() < deadline && !seen.iter().any(|l: &String| l.contains("POST /posted")) {
        n += 1;
        let r = server
            .call(
                reqwest::Method::POST,
                &format!("/acme/hello/posted?token=q{n}"),
            )
            .body("x")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        if let Ok(line) = lines.recv_timeout(Duration::from_millis(500)) {
            seen.push(line);
        }
    }
    let _ = follow.kill();
    let line = seen
        .iter()
        .find(|l| l.contains("POST /posted"))
        .unwrap_or_else(|| panic!("no streamed record: {seen:?}"));
    assert!(line.contains(" ok 200 "), "{line}");
    assert!(line.trim_end().ends_with("ms"), "{line}");
    assert!(!line.contains("token=q"), "the query is not kept: {line}");
}

#[tokio::test]
async fn config_file_sighup_reload_and_json_logs() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("edgeward.toml");
    std::fs::write(
        &config,
        "log-format = \"json\"\nlog = \"info\"\ntimeout-ms = 1000\n",
    )
    .unwrap();
    let server = Server::start_with(Options {
        extra_args: vec!["--config".into(), config.to_str().unwrap().into()],
        default_log: true,
        ..Options::backend(None)
    })
    .await;
    let d = server.deploy("acme/hello", "hello").await;
    assert_eq!(
        d["limits"]["timeout_ms"], 1000,
        "the file's default applies: {d}"
    );
    server.deploy_with("acme/loop", "hostile-loop", "").await;
    let (status, _) = server.get("/acme/hello").await;
    assert_eq!(status, 200);
    // Every log line is one JSON object; a successful execution is not logged at info.
    let log = server.log();
    for line in log.lines().filter(|l| !l.trim().is_empty()) {
        let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(v["level"].is_string() && v["fields"].is_object(), "{line}");
    }
    assert!(!log.contains("execution finished"));

    // New limits and filter in the file; SIGHUP applies them to what already serves.
    std::fs::write(
        &config,
        "log-format = \"json\"\nlog = \"debug,cranelift=info,wasmtime=info\"\ntimeout-ms = 2500\n",
    )
    .unwrap();
    server.signal("-HUP");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !server.log().contains("configuration reloaded") {
        assert!(Instant::now() < deadline, "no reload: {}", server.log());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let r = server
        .call(reqwest::Method::GET, "/acme/loop")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 504);
    let id = r.headers()["x-edgeward-execution-id"]
        .to_str()
        .unwrap()
        .to_string();
    let rec = server.execution("acme", &id).await;
    let ms = rec["duration_ms"].as_f64().unwrap();
    assert!(
        (2400.0..6000.0).contains(&ms),
        "ran {ms} ms under the reloaded 2500 ms limit"
    );
    let (status, _) = server.get("/acme/hello").await;
    assert_eq!(status, 200);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !server.log().contains("execution finished") {
        assert!(Instant::now() < deadline, "the debug filter did not apply");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // A broken file on SIGHUP changes nothing and the server keeps serving.
    std::fs::write(&config, "timeout-ms = \"soon\"\n").unwrap();
    server.signal("-HUP");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !server.log().contains("nothing changed") {
        assert!(Instant::now() < deadline, "{}", server.log());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(server.get("/acme/hello").await.0, 200);

    // A setting that is no flag is refused at start, naming it.
    std::fs::write(&config, "listen-on = \"127.0.0.1:0\"\n").unwrap();
    let out = cleared(Command::new(env!("CARGO_BIN_EXE_edgeward")))
        .args(["serve", "--config", config.to_str().unwrap(), "--data-dir"])
        .arg(dir.path().join("d"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("unknown setting \"listen-on\"") && err.contains("api-listen"),
        "{err}"
    );
}

#[tokio::test]
async fn serve_prints_its_addresses_as_json_for_scripts() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = cleared(Command::new(env!("CARGO_BIN_EXE_edgeward")))
        .args([
            "-o",
            "json",
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--api-listen",
            "127.0.0.1:0",
        ])
        .arg("--data-dir")
        .arg(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let lines = lines_of(&mut child);
    let first = lines.recv_timeout(Duration::from_secs(30)).expect("a line");
    let _ = child.kill();
    let _ = child.wait();
    let v: Value = serde_json::from_str(&first).unwrap();
    assert!(
        v["api"].as_str().unwrap().starts_with("http://127.0.0.1:"),
        "{v}"
    );
    assert!(
        v["data_plane"].as_str().unwrap().starts_with("http://"),
        "{v}"
    );
    assert_eq!(v["admin_token"]["created"], true, "{v}");
    assert_eq!(v["metrics"], Value::Null);
}

/// Reads `r`'s body until it ends; whether it ended within `within`.
async fn ends_within(r: &mut reqwest::Response, within: Duration) -> bool {
    tokio::time::timeout(within, async { while let Ok(Some(_)) = r.chunk().await {} })
        .await
        .is_ok()
}

#[tokio::test]
async fn an_open_stream_ends_when_its_token_is_revoked_and_streams_are_capped() {
    let server = Server::start().await;
    server.deploy("acme/hello", "hello").await;
    for (method, path, body) in [
        (reqwest::Method::POST, "/v1/users", json!({"name": "bob"})),
        (
            reqwest::Method::PUT,
            "/v1/projects/acme/members/bob",
            json!({"role": "viewer"}),
        ),
    ] {
        let r = server.api(method, path).json(&body).send().await.unwrap();
        assert!(r.status().is_success(), "{path}");
    }
    let t: Value = server
        .api(reqwest::Method::POST, "/v1/users/bob/tokens")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let (bob_id, bob) = (t["id"].as_str().unwrap(), t["token"].as_str().unwrap());
    // A plain client: the harness's reads whole bodies, and a stream has no end.
    let http = crate::harness::http();
    let url = format!("{}/v1/projects/acme/executions/stream", server.api);
    let mut streams = Vec::new();
    for _ in 0..8 {
        let r = http.get(&url).bearer_auth(bob).send().await.unwrap();
        assert_eq!(r.status(), 200);
        streams.push(r);
    }
    let r = http.get(&url).bearer_auth(bob).send().await.unwrap();
    assert_eq!(r.status(), 503, "a ninth stream of one user");
    // Another user is not held back by bob's.
    let mut admin = http
        .get(&url)
        .bearer_auth(&server.token)
        .send()
        .await
        .unwrap();
    assert_eq!(admin.status(), 200);
    // Revoked: every stream of bob's ends within seconds; the admin's goes on.
    let r = server
        .api(
            reqwest::Method::DELETE,
            &format!("/v1/users/bob/tokens/{bob_id}"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    for s in &mut streams {
        assert!(
            ends_within(s, Duration::from_secs(15)).await,
            "a revoked token's stream stays open"
        );
    }
    assert!(!ends_within(&mut admin, Duration::from_secs(1)).await);
}
