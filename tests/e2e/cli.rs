//! The `edgeward` CLI against a real server: the README's session, and its errors.

use crate::harness::{Server, guest};

#[tokio::test]
async fn readme_session_deploy_invoke_list_rollback() {
    let server = Server::start().await;
    let hello = guest("hello");
    let (ok, out, err) = server.cli(&["deploy", "acme/hello", hello.to_str().unwrap()]);
    assert!(ok, "deploy failed: {err}");
    assert!(out.starts_with("deployed acme/hello version 1"), "{out}");

    let (ok, out, err) = server.cli(&["invoke", "acme/hello"]);
    assert!(ok, "{err}");
    assert!(out.starts_with("Hello from Edgeward!"), "{out}");

    let echo = guest("echo");
    let manifest = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(manifest.path(), "[limits]\ntimeout-ms = 5000\n").unwrap();
    let (ok, out, err) = server.cli(&[
        "deploy",
        "acme/hello",
        echo.to_str().unwrap(),
        "--manifest",
        manifest.path().to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    assert!(out.contains("version 2"), "{out}");
    let (ok, out, _) = server.cli(&["invoke", "acme/hello", "/p?q=1", "-X", "POST", "-d", "hi"]);
    assert!(ok);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (v["path"].as_str(), v["query"].as_str(), v["body"].as_str()),
        (Some("/p"), Some("q=1"), Some("hi"))
    );

    let (ok, out, _) = server.cli(&["packages", "list"]);
    assert!(ok);
    assert!(
        out.lines()
            .any(|l| l.starts_with("acme/hello") && l.contains(" 2 ")),
        "{out}"
    );
    let (ok, out, _) = server.cli(&["packages", "show", "acme/hello"]);
    assert!(ok);
    assert!(
        out.lines().any(|l| l.trim_start().starts_with("2*")),
        "{out}"
    );

    let (ok, out, err) = server.cli(&["rollback", "acme/hello"]);
    assert!(ok, "{err}");
    assert!(out.contains("now serves version 1"), "{out}");
    let (_, out, _) = server.cli(&["invoke", "acme/hello"]);
    assert!(out.starts_with("Hello"), "{out}");
}

#[tokio::test]
async fn cli_errors_are_one_line_with_a_code() {
    let server = Server::start().await;
    let not_wasm = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(not_wasm.path(), b"definitely not wasm").unwrap();
    let (_refusing, refused_api) = crate::harness::refusing_address();
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec![
                "deploy".into(),
                "acme/x".into(),
                not_wasm.path().display().to_string(),
            ],
            "error: not_wasm: ",
        ),
        (
            vec![
                "deploy".into(),
                "acme/x".into(),
                "/no/such/file.wasm".into(),
            ],
            "error: io: ",
        ),
        (
            vec![
                "deploy".into(),
                "acme".into(),
                not_wasm.path().display().to_string(),
            ],
            "error: bad_entry: ",
        ),
        (
            // A binding to a secret no scope holds: invalid input, class 2 like bad_manifest.
            vec![
                "deploy".into(),
                "acme/x".into(),
                crate::harness::guest("hello").display().to_string(),
                "--secret".into(),
                "API_KEY=no-such-secret".into(),
            ],
            "error: unresolved_binding: ",
        ),
        (
            vec!["rollback".into(), "acme/none".into()],
            "error: not_found: ",
        ),
        (
            vec!["invoke".into(), "acme/none".into()],
            "error: not_found: ",
        ),
        (
            vec!["projects".into(), "create".into(), "Bad Name".into()],
            "error: bad_entry: ",
        ),
        (
            vec![
                "projects".into(),
                "list".into(),
                "--token".into(),
                "ew_wrong".into(),
            ],
            "error: unauthenticated: ",
        ),
        (
            vec![
                "projects".into(),
                "list".into(),
                "--api".into(),
                refused_api.clone(),
            ],
            "error: unavailable: ",
        ),
    ];
    for (args, prefix) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (ok, _, err) = server.cli(&args);
        // Each class of error has its exit code (README, "Deploy a function and call it").
        let code =
            crate::harness::cleared(std::process::Command::new(env!("CARGO_BIN_EXE_edgeward")))
                .args(&args)
                .env("EDGEWARD_API", &server.api)
                .env("EDGEWARD_URL", &server.listen)
                .env("EDGEWARD_TOKEN", &server.token)
                .output()
                .unwrap()
                .status
                .code();
        let expected = match prefix {
            "error: bad_entry: " | "error: not_wasm: " | "error: unresolved_binding: " => 2,
            "error: unauthenticated: " => 3,
            "error: not_found: " => 4,
            "error: unavailable: " => 6,
            _ => 1,
        };
        assert_eq!(code, Some(expected), "{args:?}: {err}");
        assert!(!ok, "{args:?} should fail");
        assert!(err.starts_with(prefix), "{args:?}: {err:?}");
        assert_eq!(
            err.trim_end().lines().count(),
            1,
            "{args:?}: one line: {err:?}"
        );
        assert!(!err.contains(&server.token), "errors never show the token");
    }
    // A conflict (5) and a usage error from the parser itself (2).
    let code = |args: &[&str]| {
        crate::harness::cleared(std::process::Command::new(env!("CARGO_BIN_EXE_edgeward")))
            .args(args)
            .env("EDGEWARD_API", &server.api)
            .env("EDGEWARD_TOKEN", &server.token)
            .output()
            .unwrap()
            .status
            .code()
    };
    assert_eq!(code(&["projects", "create", "twice"]), Some(0));
    assert_eq!(code(&["projects", "create", "twice"]), Some(5));
    assert_eq!(code(&["frobnicate"]), Some(2));
    assert_eq!(code(&["secrets", "get"]), Some(2));
}

#[tokio::test]
async fn cli_secrets_in_every_scope() {
    use std::io::Write;
    use std::process::Stdio;
    let server = Server::start().await;
    let ok = |args: &[&str]| {
        let (ok, out, err) = server.cli(args);
        assert!(ok, "{args:?}: {err}");
        out
    };
    ok(&["projects", "create", "acme"]);
    // From an argument, a file and stdin (the last two keep values out of shell history).
    ok(&["secrets", "set", "ARG", "arg-value", "--platform"]);
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), "file-value\n").unwrap();
    ok(&[
        "secrets",
        "set",
        "FROM_FILE",
        "--file",
        file.path().to_str().unwrap(),
        "--project",
        "acme",
    ]);
    let mut child =
        crate::harness::cleared(std::process::Command::new(env!("CARGO_BIN_EXE_edgeward")))
            .args([
                "secrets",
                "set",
                "DB",
                "--stdin",
                "--json",
                "--project",
                "acme",
                "--package",
                "api",
            ])
            .env("EDGEWARD_API", &server.api)
            .env("EDGEWARD_TOKEN", &server.token)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(br#"{"host":"db","password":"stdin-pw"}"#)
        .unwrap();
    assert!(child.wait().unwrap().success());

    assert_eq!(ok(&["secrets", "get", "ARG", "--platform"]), "arg-value\n");
    assert_eq!(
        ok(&["secrets", "get", "FROM_FILE", "--project", "acme"]),
        "file-value\n",
        "the trailing newline is not part of it"
    );
    let db = ok(&[
        "secrets",
        "get",
        "DB",
        "--project",
        "acme",
        "--package",
        "api",
    ]);
    let db: serde_json::Value = serde_json::from_str(&db).unwrap();
    assert_eq!(db["password"], "stdin-pw");
    let list = ok(&["secrets", "list", "--project", "acme"]);
    assert!(
        list.contains("FROM_FILE") && !list.contains("file-value"),
        "{list}"
    );
    // Create and update semantics.
    let (okc, _, err) = server.cli(&["secrets", "create", "ARG", "x", "--platform"]);
    assert!(!okc && err.starts_with("error: already_exists: "), "{err}");
    let (oku, _, err) = server.cli(&["secrets", "update", "NOPE", "x", "--platform"]);
    assert!(!oku && err.starts_with("error: not_found: "), "{err}");
    // User scope: your own by default, with a token of your own. The bootstrap token opens no
    // user secrets; the admin enrolls like anyone else.
    let (okm, _, err) = server.cli(&["secrets", "set", "MINE", "mine-value", "--user"]);
    assert!(!okm && err.starts_with("error: denied: "), "{err}");
    let code = ok(&["users", "enroll", "admin", "--expires-in", "10m"]);
    let code = code.trim();
    assert!(code.starts_with("ewe_"), "{code}");
    let mine = ok(&["enroll", code, "--name", "cli"]);
    let mine = mine.trim();
    assert!(mine.starts_with("ew_"), "{mine}");
    let (okr, _, err) = server.cli(&["enroll", code]);
    assert!(
        !okr && err.starts_with("error: not_found: "),
        "single use: {err}"
    );
    ok(&[
        "secrets",
        "set",
        "MINE",
        "mine-value",
        "--user",
        "--token",
        mine,
    ]);
    assert_eq!(
        ok(&["secrets", "get", "MINE", "--user", "--token", mine]),
        "mine-value\n"
    );
    // Import, all or nothing.
    let json = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(json.path(), r#"{"I1": "one", "I2": {"k": "v"}}"#).unwrap();
    assert!(
        ok(&[
            "secrets",
            "import",
            json.path().to_str().unwrap(),
            "--project",
            "acme"
        ])
        .contains("imported 2")
    );
    std::fs::write(json.path(), r#"{"I3": "three", "bad name": "x"}"#).unwrap();
    let (oki, _, err) = server.cli(&[
        "secrets",
        "import",
        json.path().to_str().unwrap(),
        "--project",
        "acme",
    ]);
    assert!(!oki && err.starts_with("error: bad_entry: "), "{err}");
    assert!(!ok(&["secrets", "list", "--project", "acme"]).contains("I3"));
    // Wrap and unwrap once.
    let token = ok(&["secrets", "wrap", "ARG", "--platform", "--ttl", "5m"])
        .trim()
        .to_string();
    assert!(token.starts_with("ewr_"), "{token}");
    assert_eq!(ok(&["secrets", "unwrap", &token]), "arg-value\n");
    let (okw, _, err) = server.cli(&["secrets", "unwrap", &token]);
    assert!(!okw && err.starts_with("error: not_found: "), "{err}");
    ok(&["secrets", "rm", "ARG", "--platform"]);
    let (okr, _, err) = server.cli(&["secrets", "get", "ARG", "--platform"]);
    assert!(!okr && err.starts_with("error: not_found: "), "{err}");
    let (oks, _, err) = server.cli(&["secrets", "list"]);
    assert!(
        !oks && err.starts_with("error: bad_entry: "),
        "no scope given: {err}"
    );
    // Deploy with a secrets.json beside it.
    std::fs::write(json.path(), r#"{"SEEDED": "seeded-by-deploy"}"#).unwrap();
    // Sent by the CLI, which the harness does not see: searched for at drop all the same.
    server.plant_value("seeded-by-deploy");
    let secrets = guest("secrets");
    ok(&[
        "deploy",
        "acme/api",
        secrets.to_str().unwrap(),
        "--secrets",
        json.path().to_str().unwrap(),
    ]);
    let (status, text) = server.get("/acme/api/?name=SEEDED&reveal=1").await;
    assert_eq!(status, 200);
    assert!(
        text.contains("seeded-by-deploy") && text.contains("\"package\""),
        "{text}"
    );
    crate::harness::assert_no_leak(
        "the server log",
        &server.log(),
        &["stdin-pw", "mine-value", "file-value", "seeded-by-deploy"],
    );
}

#[tokio::test]
async fn logs_follow_prints_new_executions_as_they_happen() {
    use std::io::BufRead;
    use std::process::{Command, Stdio};
    let server = Server::start().await;
    server.deploy("acme/hello", "hello").await;
    let execution_id = |r: &crate::harness::Resp| {
        r.headers()["x-edgeward-execution-id"]
            .to_str()
            .unwrap()
            .to_string()
    };
    // One execution recorded before `logs --follow` starts: its line ends the first listing.
    let r = server
        .call(reqwest::Method::GET, "/acme/hello/before")
        .send()
        .await
        .unwrap();
    let before = execution_id(&r);
    server.execution("acme", &before).await;
    let mut child = crate::harness::cleared(Command::new(env!("CARGO_BIN_EXE_edgeward")))
        .args(["logs", "acme/hello", "--follow"])
        .env("EDGEWARD_API", &server.api)
        .env("EDGEWARD_TOKEN", &server.token)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
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
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        let line = rx
            .recv_timeout(deadline.saturating_duration_since(std::time::Instant::now()))
            .expect("the first listing never showed the earlier execution");
        if line.contains(&before) {
            break;
        }
    }
    // A request made only after the first listing was printed can show up only by following.
    let r = server
        .call(reqwest::Method::GET, "/acme/hello/followed")
        .send()
        .await
        .unwrap();
    let id = execution_id(&r);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    let mut seen = false;
    while std::time::Instant::now() < deadline {
        if let Ok(line) = rx.recv_timeout(std::time::Duration::from_millis(200))
            && line.contains(&id)
        {
            assert!(line.contains(" ok 200 "), "{line}");
            seen = true;
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(seen, "execution {id} never appeared in logs --follow");
}

/// What a new user ran into (issue 14): `invoke --token` that was never sent, `logs` on a
/// misspelled package that printed nothing and exited 0 (and followed forever), `--version`
/// on a subcommand printing the CLI's version, and `Name("…")` in messages.
#[tokio::test]
async fn cli_mistakes_a_new_user_met_are_mended() {
    let server = Server::start().await;
    server.deploy("acme/hello", "hello").await;
    let r = server
        .api(reqwest::Method::POST, "/v1/users")
        .json(&serde_json::json!({ "name": "alice" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let r = server
        .api(reqwest::Method::POST, "/v1/users/alice/tokens")
        .json(&serde_json::json!({ "name": "cli" }))
        .send()
        .await
        .unwrap();
    let minted: serde_json::Value = r.json().await.unwrap();
    let alice = minted["token"].as_str().unwrap().to_string();

    // `invoke --token` (or EDGEWARD_TOKEN) runs the function as that user; without one, as
    // nobody: the admin token file is never sent to a function.
    let newest_user = || async {
        let (_, list) = server
            .json(reqwest::Method::GET, "/v1/projects/acme/executions?limit=1")
            .await;
        list["executions"][0]["user"].clone()
    };
    let (ok, out, err) = server.cli(&["invoke", "acme/hello", "/as-alice", "--token", &alice]);
    assert!(ok, "{err}");
    assert!(out.contains("/as-alice"), "{out}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while newest_user().await != "alice" {
        assert!(
            std::time::Instant::now() < deadline,
            "the token was not sent"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    // (server.cli sets EDGEWARD_TOKEN, which counts as given: run the CLI without it.)
    let out = crate::harness::cleared(std::process::Command::new(env!("CARGO_BIN_EXE_edgeward")))
        .args(["invoke", "acme/hello", "/as-nobody"])
        .env("EDGEWARD_URL", &server.listen)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let (_, list) = server
            .json(reqwest::Method::GET, "/v1/projects/acme/executions?limit=1")
            .await;
        let newest = &list["executions"][0];
        if newest["user"].is_null() {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{newest}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }

    // `logs` on a package that does not exist is an error, with and without --follow; so is a
    // listing of a project that does not exist, with no table header above the error.
    for args in [
        &["packages", "list", "nope"][..],
        &["logs", "acme/helo"][..],
        &["logs", "acme/helo", "--follow"][..],
        &["logs", "nope/hello"][..],
    ] {
        let (ok, out, err) = server.cli(args);
        assert!(!ok, "{args:?}: {out}");
        assert!(err.starts_with("error: not_found: "), "{args:?}: {err}");
        assert!(out.is_empty(), "{args:?} printed {out:?}");
    }
    let (ok, _, err) = server.cli(&["logs", "acme/hello"]);
    assert!(ok, "{err}");

    // `--version` belongs to `edgeward` alone.
    let (ok, out, _) = server.cli(&["--version"]);
    assert!(ok && out.starts_with("edgeward "), "{out}");
    let (ok, out, err) = server.cli(&["secrets", "list", "--platform", "--version"]);
    assert!(!ok, "{out}");
    assert!(
        !out.starts_with("edgeward "),
        "printed the CLI's version: {out}"
    );
    assert!(err.contains("--version"), "{err}");

    // Names in messages are quoted strings, not Rust's Debug of a type.
    let (ok, _, err) = server.cli(&["tokens", "create", "--user", "nobody"]);
    assert!(!ok);
    assert!(err.contains("no user \"nobody\""), "{err}");
    assert!(!err.contains("Name("), "{err}");
}

/// Runs the CLI under `script`, on a pseudo-terminal; once it shows `prompt`, types `input`.
/// (Typed earlier, the terminal would echo it before the program could turn echo off.)
/// Returns (exit ok, transcript).
fn on_a_terminal(server: &Server, args: &str, prompt: &str, input: &str) -> (bool, String) {
    use std::io::{Read, Write};
    let mut child = crate::harness::cleared(std::process::Command::new("script"))
        .args([
            "-qec",
            &format!("{} {args}", env!("CARGO_BIN_EXE_edgeward")),
            "/dev/null",
        ])
        .env("EDGEWARD_API", &server.api)
        .env("EDGEWARD_TOKEN", &server.token)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("run script(1)");
    let mut stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<Vec<u8>>();
    let reader = std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let mut transcript = Vec::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !String::from_utf8_lossy(&transcript).contains(prompt) {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(left) {
            Ok(chunk) => transcript.extend(chunk),
            Err(_) => panic!(
                "no prompt {prompt:?}: {}",
                String::from_utf8_lossy(&transcript)
            ),
        }
    }
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(input.as_bytes()).unwrap();
    stdin.flush().unwrap();
    let status = child.wait().unwrap();
    drop(stdin);
    reader.join().unwrap();
    transcript.extend(rx.try_iter().flatten());
    (
        status.success(),
        String::from_utf8_lossy(&transcript).into_owned(),
    )
}

/// The CLI for people (issue 14): completions, one field of a secret, durations like `1h30m`,
/// deletes confirmed on a terminal, a secret's value asked for without echo.
#[tokio::test]
async fn cli_completions_fields_durations_prompts_and_confirmations() {
    let server = Server::start().await;
    for (shell, marker) in [
        ("bash", "complete -F _edgeward"),
        ("zsh", "#compdef edgeward"),
        ("fish", "complete -c edgeward"),
    ] {
        let (ok, out, err) = server.cli(&["completions", shell]);
        assert!(ok, "{err}");
        assert!(
            out.contains(marker),
            "{shell}: {}",
            &out[..out.len().min(200)]
        );
        assert!(out.contains("secrets"), "{shell} completes subcommands");
    }

    // One field of a multi-field secret.
    let (ok, _, err) = server.cli(&[
        "secrets",
        "set",
        "DB",
        "--platform",
        "--json",
        r#"{"user": "app", "password": "pw-field-value-77"}"#,
    ]);
    assert!(ok, "{err}");
    let (ok, out, err) = server.cli(&["secrets", "get", "DB", "--platform", "--field", "password"]);
    assert!(ok, "{err}");
    assert_eq!(out, "pw-field-value-77\n");
    let (ok, _, err) = server.cli(&["secrets", "get", "DB", "--platform", "--field", "host"]);
    assert!(!ok);
    assert!(err.starts_with("error: not_found: "), "{err}");
    assert!(
        err.contains("password, user"),
        "names the fields it has: {err}"
    );
    assert!(!err.contains("pw-field-value-77"), "never a value: {err}");
    let (ok, _, _) = server.cli(&["secrets", "set", "PLAIN", "--platform", "plain-value-0099"]);
    assert!(ok);
    let (ok, _, err) = server.cli(&["secrets", "get", "PLAIN", "--platform", "--field", "x"]);
    assert!(!ok && err.starts_with("error: bad_entry: "), "{err}");

    // Durations like 1h30m.
    let (ok, _, err) = server.cli(&[
        "tokens",
        "create",
        "--name",
        "ninety",
        "--expires-in",
        "1h30m",
    ]);
    assert!(ok, "{err}");
    let (_, tokens) = server
        .json(reqwest::Method::GET, "/v1/users/admin/tokens")
        .await;
    let token = tokens["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "ninety")
        .expect("the token")
        .clone();
    let at = |k: &str| {
        time::OffsetDateTime::parse(
            token[k].as_str().unwrap(),
            &time::format_description::well_known::Rfc3339,
        )
        .unwrap()
    };
    let lifetime = (at("expires_at") - at("created_at")).whole_seconds();
    assert!((5399..=5401).contains(&lifetime), "{token}");
    let (ok, _, err) = server.cli(&["tokens", "create", "--expires-in", "soon"]);
    assert!(!ok && err.starts_with("error: bad_entry: "), "{err}");

    // On a terminal, a delete asks first; no answer is no.
    let (ok, transcript) = on_a_terminal(&server, "secrets rm PLAIN --platform", "[y/N]", "n\n");
    assert!(!ok, "{transcript}");
    assert!(
        transcript.contains("delete the secret PLAIN? [y/N]"),
        "{transcript}"
    );
    let (status, _) = server
        .json(reqwest::Method::GET, "/v1/secrets/platform/PLAIN")
        .await;
    assert_eq!(status, 200, "kept");
    let (ok, transcript) = on_a_terminal(&server, "secrets rm PLAIN --platform", "[y/N]", "y\n");
    assert!(ok, "{transcript}");
    let (status, _) = server
        .json(reqwest::Method::GET, "/v1/secrets/platform/PLAIN")
        .await;
    assert_eq!(status, 404, "deleted after yes");
    // Scripts (no terminal) and --yes are not asked.
    server.deploy("acme/gone", "hello").await;
    let (ok, _, err) = server.cli(&["packages", "delete", "acme/gone"]);
    assert!(ok, "{err}");

    // On a terminal, a value not given is asked for, and not echoed.
    let (ok, transcript) = on_a_terminal(
        &server,
        "secrets set TYPED --platform",
        "value (not shown): ",
        "typed-value-31337\n",
    );
    assert!(ok, "{transcript}");
    assert!(transcript.contains("value (not shown): "), "{transcript}");
    assert!(
        !transcript.contains("typed-value-31337"),
        "echoed: {transcript}"
    );
    let (_, body) = server
        .json(reqwest::Method::GET, "/v1/secrets/platform/TYPED")
        .await;
    assert_eq!(body["value"], "typed-value-31337");
}

/// What issue 29's newcomer met: `completions bash | head -1` and `-o json packages list |
/// head -c 10` panicked (exit 101) on the closed pipe; `secrets put` suggested `update` and
/// `secrets delete` was not `rm`; `--role owner` printed serde's `… at line 1 column 15`.
#[tokio::test]
async fn closed_pipes_aliases_and_a_bad_role_as_a_newcomer_meets_them() {
    let server = Server::start().await;
    server.deploy("acme/hello", "hello").await;

    // A reader that is gone before the first byte (what `| head` becomes once it has read
    // enough): the command stops quietly with SIGPIPE's status, no panic report.
    for args in [
        &["completions", "bash"][..],
        &["-o", "json", "packages", "list", "acme"][..],
        &["packages", "list", "acme"][..],
    ] {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let out =
            crate::harness::cleared(std::process::Command::new(env!("CARGO_BIN_EXE_edgeward")))
                .args(args)
                .env("EDGEWARD_API", &server.api)
                .env("EDGEWARD_TOKEN", &server.token)
                .stdin(std::process::Stdio::null())
                .stdout(writer)
                .output()
                .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(141), "{args:?}: {stderr}");
        assert!(stderr.is_empty(), "{args:?}: {stderr}");
    }

    // `put` is `set`, `delete` is `rm`, as wrangler's and Vault's users type them.
    let ok = |args: &[&str]| {
        let (ok, out, err) = server.cli(args);
        assert!(ok, "{args:?}: {err}");
        out
    };
    ok(&[
        "secrets",
        "put",
        "PUT_NAME",
        "put-value-4242",
        "--project",
        "acme",
    ]);
    assert_eq!(
        ok(&["secrets", "get", "PUT_NAME", "--project", "acme"]),
        "put-value-4242\n"
    );
    ok(&[
        "secrets",
        "delete",
        "PUT_NAME",
        "--project",
        "acme",
        "--yes",
    ]);
    let (found, _, err) = server.cli(&["secrets", "get", "PUT_NAME", "--project", "acme"]);
    assert!(!found && err.starts_with("error: not_found: "), "{err}");

    // A role that is not one: the roles named, exit 2, no parser's line and column.
    ok(&["users", "create", "alice"]);
    let out = crate::harness::cleared(std::process::Command::new(env!("CARGO_BIN_EXE_edgeward")))
        .args([
            "projects", "members", "add", "acme", "alice", "--role", "owner",
        ])
        .env("EDGEWARD_API", &server.api)
        .env("EDGEWARD_TOKEN", &server.token)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.starts_with("error: bad_entry: ") && err.contains("viewer, developer or admin"),
        "{err}"
    );
    assert!(!err.contains("line 1") && !err.contains("column"), "{err}");
    let (_, members) = server
        .json(reqwest::Method::GET, "/v1/projects/acme/members")
        .await;
    assert!(!members.to_string().contains("alice"), "{members}");
}
