//! Functions in Python and JavaScript, and the developer's loop: the helper modules
//! (`sdk/python/edgeward.py`, `sdk/js/edgeward.js`) against a real server, over the same WIT
//! as Rust guests (scope order, allowlist, bad names, fields, a credential the host attaches);
//! per language `edgeward new` -> `edgeward dev` (rebuilt on save) -> `edgeward deploy` from
//! the project file; and a newcomer's Rust project outside the repository on the SDK as
//! `cargo package` packs it.

use crate::credentials::{TlsUpstream, server_for};
use crate::harness::{Server, cleared, path_with_componentizers, repo_root, unique};
use reqwest::Method;
use serde_json::{Value, json};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Calls a function; its JSON answer (status 200 asserted).
async fn call(server: &Server, path: &str) -> Value {
    let r = server.call(Method::GET, path).send().await.unwrap();
    let status = r.status();
    let text = r.text().await.unwrap();
    assert_eq!(status, 200, "{path}: {text}\n{}", server.log());
    serde_json::from_str(&text).unwrap_or_else(|_| panic!("{path}: not JSON: {text}"))
}

/// What a Python or JavaScript guest reaches through its helper module: the same answers a
/// Rust guest gets from the SDK.
async fn secrets_and_credentials(example: &str, lang: &str) {
    let upstream = TlsUpstream::start().await;
    let port = upstream.port;
    let (server, _dir) = server_for(&upstream).await;
    let manifest = format!(
        "secrets = [\"GREETING\", \"DB\", \"MISSING\", \"API_KEY\"]\n\
         [outbound]\nhosts = [\"localhost:{port}\"]\n\
         [[outbound.credentials]]\nsecret = \"API_KEY\"\nhosts = [\"localhost:{port}\"]\n"
    );
    server.deploy_with("acme/fn", example, &manifest).await;
    let key = format!("key_{}", unique("v"));
    server.plant_value(&key);
    server
        .put_secret("/v1/secrets/platform/GREETING", json!("platform-hi"))
        .await;
    server
        .put_secret("/v1/projects/acme/secrets/GREETING", json!("project-hi"))
        .await;
    server
        .put_secret("/v1/projects/acme/secrets/OTHER", json!("not-allowed"))
        .await;
    server
        .put_secret("/v1/projects/acme/secrets/API_KEY", json!(key))
        .await;
    server
        .put_secret(
            "/v1/projects/acme/packages/fn/secrets/DB",
            json!({"host": "db.internal", "port": 5432}),
        )
        .await;

    // The request as the function sees it.
    let r = server
        .call(Method::POST, "/acme/fn/some/path?a=1&b=two")
        .header("x-probe", "probe-value")
        .body("the body")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers().get("x-lang").unwrap(), lang);
    let got: Value = r.json().await.unwrap();
    assert_eq!(
        got,
        json!({"lang": lang, "method": "POST", "path": "/some/path", "query": "a=1&b=two",
               "header": "probe-value", "body": "the body"})
    );

    // package -> project -> platform, the scope said; one scope on request.
    let got = call(&server, "/acme/fn/?name=GREETING&reveal=1").await;
    assert_eq!(
        (&got["found"], &got["scope"], &got["value"]),
        (&json!(true), &json!("project"), &json!("project-hi")),
        "{got}"
    );
    let got = call(&server, "/acme/fn/?name=GREETING&scope=platform&reveal=1").await;
    assert_eq!(
        (&got["scope"], &got["value"]),
        (&json!("platform"), &json!("platform-hi"))
    );
    // The value alone, in one host call (WIT `get-value`), resolved the same way.
    let got = call(&server, "/acme/fn/?value=GREETING").await;
    assert_eq!(got, json!({"lang": lang, "value": "project-hi"}), "{got}");
    let got = call(&server, "/acme/fn/?value=MISSING").await;
    assert_eq!(got, json!({"lang": lang, "value": null}), "{got}");
    // A multi-field secret: one field without parsing; a missing field is null.
    let got = call(&server, "/acme/fn/?name=DB&field=host").await;
    assert_eq!(
        (
            &got["scope"],
            &got["object"],
            &got["field"],
            &got["version"]
        ),
        (
            &json!("package"),
            &json!(true),
            &json!("db.internal"),
            &json!(1)
        ),
        "{got}"
    );
    assert_eq!(
        call(&server, "/acme/fn/?name=DB&field=port").await["field"],
        "5432"
    );
    assert_eq!(
        call(&server, "/acme/fn/?name=DB&field=nope").await["field"],
        Value::Null
    );
    // Allowed but held by no scope: not found, not an error.
    assert_eq!(
        call(&server, "/acme/fn/?name=MISSING").await,
        json!({"lang": lang, "found": false})
    );
    // Outside the allowlist (though the project holds it): denied; a bad name: bad_entry.
    assert_eq!(
        call(&server, "/acme/fn/?name=OTHER").await["error"],
        "denied"
    );
    assert_eq!(
        call(&server, "/acme/fn/?name=../x").await["error"],
        "bad_entry"
    );
    assert_eq!(
        call(&server, "/acme/fn/?name=GREETING&scope=user").await["error"],
        "denied",
        "user scope without a user's token"
    );
    // The list: names in the allowlist, never values, never other names.
    let names = call(&server, "/acme/fn/?list=1").await["names"].clone();
    assert!(
        names
            .as_array()
            .unwrap()
            .contains(&json!(["package", "DB"])),
        "{names}"
    );
    assert!(!names.to_string().contains("OTHER"), "{names}");
    assert!(!names.to_string().contains("hi"), "{names}");

    // A credential the host attaches: the upstream gets it, the function sees it redacted.
    let echo = format!("https://localhost:{port}/echo");
    let got = call(&server, &format!("/acme/fn/?url={echo}&credential=API_KEY")).await;
    assert_eq!(got["status"], 200, "{got}");
    let sent = upstream.received();
    let auth: Vec<&String> = sent[0]
        .headers
        .iter()
        .filter(|(k, _)| k == "authorization")
        .map(|(_, v)| v)
        .collect();
    assert_eq!(auth, [&format!("Bearer {key}")]);
    assert!(
        !got.to_string().contains(&key),
        "the echo reached the guest: {got}"
    );
    assert!(
        got["body"].as_str().unwrap().contains("Bearer [REDACTED]"),
        "{got}"
    );
    // An undeclared credential is denied; an undeclared host is refused by wasi:http.
    assert_eq!(
        call(&server, &format!("/acme/fn/?url={echo}&credential=NOPE")).await["error"],
        "denied"
    );
    let got = call(&server, "/acme/fn/?url=https://example.com/").await;
    let error = got["error"].as_str().unwrap_or_default().to_lowercase();
    assert!(
        error.contains("request") && error.contains("denied"),
        "{got}"
    );
    assert_eq!(
        upstream.received().len(),
        1,
        "nothing else reached the upstream"
    );
    server.search_for_leaks();
}

#[tokio::test]
async fn a_python_function_reads_secrets_and_sends_credentials_through_edgeward_py() {
    secrets_and_credentials("python-secrets", "python").await;
}

#[tokio::test]
async fn a_javascript_function_reads_secrets_and_sends_credentials_through_edgeward_js() {
    secrets_and_credentials("js-secrets", "js").await;
}

/// Runs `edgeward ARGS` in `dir` against `server`; (exit code, stdout, stderr). On the
/// blocking pool, so the test's runtime keeps serving its HTTP client's connections meanwhile
/// (a pooled connection the server closed must be seen closed before it is reused).
async fn edgeward_in(dir: &Path, server: Option<&Server>, args: &[&str]) -> (i32, String, String) {
    let mut cmd = cleared(Command::new(env!("CARGO_BIN_EXE_edgeward")));
    cmd.current_dir(dir).args(args).stdin(Stdio::null());
    cmd.env("PATH", path_with_componentizers());
    if let Some(server) = server {
        cmd.env("EDGEWARD_API", &server.api)
            .env("EDGEWARD_TOKEN", &server.token);
    }
    let out = tokio::task::spawn_blocking(move || cmd.output().expect("run edgeward"))
        .await
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `edgeward dev` running in a project directory, its stdout and stderr in files outside it;
/// stopped with SIGINT (Ctrl-C) when dropped, if a test has not stopped it already.
struct Dev {
    child: std::process::Child,
    out: std::path::PathBuf,
    err: std::path::PathBuf,
}

impl Dev {
    fn start(dir: &Path, logs: &Path) -> Dev {
        let (out, err) = (logs.join("dev.out"), logs.join("dev.err"));
        let child = cleared(Command::new(env!("CARGO_BIN_EXE_edgeward")))
            .current_dir(dir)
            .args(["dev", "--listen", "127.0.0.1:0"])
            .env("PATH", path_with_componentizers())
            .envs(
                ["CARGO_HOME", "RUSTUP_HOME"]
                    .iter()
                    .filter_map(|k| Some((k, std::env::var_os(k)?))),
            )
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&out).unwrap())
            .stderr(std::fs::File::create(&err).unwrap())
            .spawn()
            .expect("start edgeward dev");
        Dev { child, out, err }
    }

    fn stdout(&self) -> String {
        std::fs::read_to_string(&self.out).unwrap_or_default()
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.err).unwrap_or_default()
    }

    /// Polls `what` (stdout, stderr) until `found` says yes, up to `within`.
    async fn wait_for(&self, within: Duration, found: impl Fn(&str, &str) -> bool) {
        let deadline = Instant::now() + within;
        loop {
            let (out, err) = (self.stdout(), self.stderr());
            if found(&out, &err) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "edgeward dev did not get there in {within:?}\nstdout:\n{out}\nstderr:\n{err}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Ctrl-C, and the exit it makes.
    async fn interrupt(&mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "edgeward dev ignored Ctrl-C\n{}",
                self.stderr()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Dev {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = Command::new("kill")
                .args(["-INT", &self.child.id().to_string()])
                .status();
            let _ = self.child.wait();
        }
    }
}

/// A GET with a fresh client (no pooled connection to a server that may have gone).
async fn get(url: &str) -> Option<(u16, String)> {
    let r = crate::harness::http_get(url).await.ok()?;
    Some((r.status().as_u16(), r.text().await.ok()?))
}

/// Points a new Rust project's `target/` at one kept between runs and tests (the SDK's
/// dependencies build once).
fn shared_rust_target(dir: &Path) {
    let cache = repo_root().join("target/newcomer/loop-rust");
    std::fs::create_dir_all(&cache).unwrap();
    std::os::unix::fs::symlink(&cache, dir.join("target")).unwrap();
}

/// Edits the http template's source (any language) to answer `Hello from MARKER!`.
fn greet_from(source: &Path, marker: &str) {
    let text = std::fs::read_to_string(source).unwrap();
    let at = text
        .find("Hello from")
        .expect("the http template's greeting");
    let end = at + text[at..].find('!').unwrap();
    std::fs::write(
        source,
        format!("{}Hello from {marker}{}", &text[..at], &text[end..]),
    )
    .unwrap();
}

/// The source file of a new project, by language.
fn source_of(lang: &str) -> &'static str {
    match lang {
        "rust" => "src/lib.rs",
        "python" => "app.py",
        _ => "app.js",
    }
}

/// new -> dev (a value from dev-secrets.json) -> an edit served -> a broken build printed
/// while the last good version serves -> Ctrl-C -> deploy from the directory to a real server
/// -> a second deploy keeps the file's bindings; an upload without a manifest keeps the
/// current one's and says so; --no-manifest clears it.
async fn the_developer_loop(lang: &str) {
    let work = tempfile::tempdir().unwrap();
    let name = format!("loop-{lang}");
    let mut args = vec![
        "new",
        &name,
        "--lang",
        lang,
        "--template",
        "secrets",
        "--project",
        "acme",
    ];
    let sdk = repo_root().join("guest-sdk");
    if lang == "rust" {
        args.extend(["--sdk-path", sdk.to_str().unwrap()]);
    }
    let (code, _, err) = edgeward_in(work.path(), None, &args).await;
    assert_eq!(code, 0, "{err}");
    let dir = work.path().join(&name);
    if lang == "rust" {
        shared_rust_target(&dir);
    }
    let logs = work.path().join("logs");
    std::fs::create_dir(&logs).unwrap();

    let mut dev = Dev::start(&dir, &logs);
    dev.wait_for(Duration::from_secs(300), |out, _| {
        out.contains("serving http://")
    })
    .await;
    let url = dev
        .stdout()
        .lines()
        .find_map(|l| l.strip_prefix("serving ").map(str::to_string))
        .unwrap();
    assert_eq!(
        url,
        format!("{}acme/{name}/", &url[..url.find("acme/").unwrap()])
    );
    let hi = format!("{url}hi");
    assert_eq!(
        get(&hi).await,
        Some((
            200,
            "hello from dev-secrets.json (GREETING from package scope; you asked for /hi)\n"
                .to_string()
        ))
    );
    // A line per request: method, path, status, the secret it read.
    dev.wait_for(Duration::from_secs(10), |out, _| {
        out.lines()
            .any(|l| l.contains(" GET /hi v1 ok 200 ") && l.contains("secrets=package:GREETING"))
    })
    .await;

    // An edit is served once rebuilt: polled, and timed (BENCHMARKS.md).
    let source = dir.join(source_of(lang));
    let text = std::fs::read_to_string(&source).unwrap();
    std::fs::write(
        &source,
        text.replace("GREETING from", "GREETING (edited) from"),
    )
    .unwrap();
    let edited = Instant::now();
    let deadline = edited + Duration::from_secs(180);
    loop {
        if let Some((200, body)) = get(&hi).await
            && body.contains("(edited)")
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the edit never served\n{}",
            dev.stderr()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!(
        "edit-to-serving in edgeward dev ({lang}): {:.1} s",
        edited.elapsed().as_secs_f64()
    );
    // The rebuilt component's unchanged functions came from Cranelift's incremental cache:
    // `deployed version 2 (built in …, deployed in …; HITS of ALL functions from the compile
    // cache)`. Python and JavaScript relink the same interpreter: nearly all of it is reused.
    // Rust's edit lengthens a string, which moves the addresses of the data after it, and
    // every function naming one of those is new (349 of 452 reused when measured).
    dev.wait_for(Duration::from_secs(10), |_, err| {
        err.contains("deployed version 2 ")
    })
    .await;
    let stderr = dev.stderr();
    let line = stderr
        .lines()
        .find(|l| l.starts_with("deployed version 2 "))
        .unwrap();
    let counts: Vec<u64> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|n| n.parse().ok())
        .collect();
    let (hits, all) = (counts[counts.len() - 2], counts[counts.len() - 1]);
    let share = if lang == "rust" { 5 } else { 9 };
    assert!(
        line.ends_with("functions from the compile cache)") && hits * 10 >= all * share && all > 0,
        "most functions reused: {line}"
    );

    // A broken build is printed, dev carries on, the last good version keeps serving.
    let good = std::fs::read_to_string(&source).unwrap();
    std::fs::write(&source, format!("{good}\n)(broken\n")).unwrap();
    dev.wait_for(Duration::from_secs(180), |_, err| {
        err.contains("error: build_failed")
    })
    .await;
    let (status, body) = get(&hi).await.unwrap();
    assert_eq!(status, 200);
    assert!(body.contains("(edited)"), "{body}");
    std::fs::write(&source, &good).unwrap();

    let status = dev.interrupt().await;
    assert!(status.success(), "{status}: {}", dev.stderr());
    assert!(dev.stderr().contains("stopped"), "{}", dev.stderr());
    assert!(get(&hi).await.is_none(), "still serving after Ctrl-C");

    // To a real server: `deploy` with no arguments builds and deploys the file's package
    // with its manifest; the file's bindings stay through a second deploy.
    let server = Server::start().await;
    let project_file = dir.join("edgeward.toml");
    let mut file = std::fs::read_to_string(&project_file).unwrap();
    file.push_str("\n[env]\nFROM_FILE = \"secret:GREETING\"\n");
    std::fs::write(&project_file, &file).unwrap();
    let (code, out, err) = edgeward_in(
        &dir,
        Some(&server),
        &["deploy", "--secrets", "dev-secrets.json"],
    )
    .await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains(&format!("deployed acme/{name} version 1")),
        "{out}"
    );
    let (code, out, err) = edgeward_in(&dir, Some(&server), &["deploy", "--no-build"]).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("version 2") && !out.contains("kept"), "{out}");
    let env_of = |package: &Value, version: i64| {
        package["versions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["version"] == version)
            .map(|v| v["manifest"]["env"].to_string())
            .unwrap()
    };
    let (_, package) = server
        .json(Method::GET, &format!("/v1/projects/acme/packages/{name}"))
        .await;
    assert!(env_of(&package, 2).contains("FROM_FILE"), "{package}");
    let (status, body) = server.get(&format!("/acme/{name}/hi")).await;
    assert_eq!(status, 200);
    assert!(body.contains("(edited)"), "{body}");

    // Without a manifest (no project file: target and component named), the current
    // version's is kept and the CLI says so; flags still add to it; --no-manifest clears it.
    let component = std::fs::read_to_string(&project_file)
        .unwrap()
        .lines()
        .find_map(|l| {
            l.strip_prefix("component = \"")?
                .strip_suffix('"')
                .map(str::to_string)
        })
        .unwrap();
    let target = format!("acme/{name}");
    let (code, out, err) = edgeward_in(
        &dir,
        Some(&server),
        &["deploy", &target, &component, "--env", "FLAG=on"],
    )
    .await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("manifest: kept from version 2"), "{out}");
    let (code, out, err) = edgeward_in(
        &dir,
        Some(&server),
        &["deploy", &target, &component, "--no-manifest"],
    )
    .await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(!out.contains("kept"), "{out}");
    let (_, package) = server
        .json(Method::GET, &format!("/v1/projects/acme/packages/{name}"))
        .await;
    let v3 = env_of(&package, 3);
    assert!(v3.contains("FROM_FILE") && v3.contains("FLAG"), "{package}");
    assert!(!env_of(&package, 4).contains("FROM_FILE"), "{package}");
}

#[tokio::test]
async fn the_developer_loop_in_python() {
    the_developer_loop("python").await;
}

#[tokio::test]
async fn the_developer_loop_in_javascript() {
    the_developer_loop("js").await;
}

#[tokio::test]
async fn the_developer_loop_in_rust() {
    the_developer_loop("rust").await;
}

#[tokio::test]
async fn new_refuses_bad_names_and_existing_directories_and_writes_the_wit() {
    let work = tempfile::tempdir().unwrap();
    let (code, _, err) = edgeward_in(work.path(), None, &["new", "greet", "--lang", "js"]).await;
    assert_eq!(code, 0, "{err}");
    let dir = work.path().join("greet");
    let ignore = std::fs::read_to_string(dir.join(".gitignore")).unwrap();
    assert!(ignore.lines().any(|l| l == "dev-secrets.json"), "{ignore}");
    // The project carries the WIT the binary was built with, as `edgeward wit` writes it.
    let (code, _, err) = edgeward_in(work.path(), None, &["wit", "--out", "wit-copy"]).await;
    assert_eq!(code, 0, "{err}");
    for file in ["secrets.wit", "deps/http/http.wit"] {
        let repo = std::fs::read(repo_root().join("wit").join(file)).unwrap();
        assert_eq!(
            std::fs::read(dir.join("wit").join(file)).unwrap(),
            repo,
            "{file}"
        );
        assert_eq!(
            std::fs::read(work.path().join("wit-copy").join(file)).unwrap(),
            repo
        );
    }

    // Never over an existing directory (exit 5), never a bad name (exit 2); nothing written.
    let before = std::fs::read(dir.join("app.js")).unwrap();
    let (code, _, err) =
        edgeward_in(work.path(), None, &["new", "greet", "--lang", "python"]).await;
    assert_eq!(code, 5, "{err}");
    assert!(err.contains("already_exists"), "{err}");
    assert_eq!(std::fs::read(dir.join("app.js")).unwrap(), before);
    assert!(!dir.join("app.py").exists());
    let long = "x".repeat(64);
    for bad in ["Greet", "../up", "a_b", "", long.as_str()] {
        let (code, _, err) =
            edgeward_in(work.path(), None, &["new", bad, "--lang", "python"]).await;
        assert_eq!(code, 2, "{bad:?}: {err}");
        assert!(err.contains("bad_entry"), "{bad:?}: {err}");
    }
    let (code, _, err) = edgeward_in(work.path(), None, &["new", "9lives"]).await;
    assert_eq!(
        (code, err.contains("start it with a letter")),
        (2, true),
        "{err}"
    );
    let (code, _, err) = edgeward_in(
        work.path(),
        None,
        &["new", "x1", "--sdk-path", "/nonexistent"],
    )
    .await;
    assert_eq!((code, err.contains("--sdk-path")), (2, true), "{err}");
    let made: Vec<String> = std::fs::read_dir(work.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(made.len(), 2, "only the project and wit-copy: {made:?}");
    // Without --sdk-path a Rust project points at the SDK beside the binary's source.
    let (code, _, err) = edgeward_in(work.path(), None, &["new", "rusty"]).await;
    assert_eq!(code, 0, "{err}");
    let cargo = std::fs::read_to_string(work.path().join("rusty/Cargo.toml")).unwrap();
    let sdk = std::fs::canonicalize(repo_root().join("guest-sdk")).unwrap();
    assert!(
        cargo.contains(&format!(
            "edgeward-sdk = {{ path = \"{}\" }}",
            sdk.display()
        )),
        "{cargo}"
    );
    // Outside a project, build and deploy say what is missing.
    let (code, _, err) = edgeward_in(work.path(), None, &["deploy"]).await;
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("no edgeward.toml here"), "{err}");
    std::fs::write(dir.join("edgeward.toml"), "[package]\nnmae = \"acme/x\"\n").unwrap();
    let (code, _, err) = edgeward_in(&dir, None, &["build"]).await;
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("bad_manifest") && err.contains("nmae"),
        "{err}"
    );
    std::fs::write(dir.join("edgeward.toml"), "[package]\nbuild = \"exit 7\"\n").unwrap();
    let (code, _, err) = edgeward_in(&dir, None, &["build"]).await;
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("build_failed") && err.contains("exit 7"),
        "{err}"
    );
}

/// A newcomer outside the repository: the SDK as `cargo package` packs it (its own WIT, no
/// path into the repository), a project from `edgeward new --sdk-path`, deployed with
/// `edgeward deploy` from its directory.
#[tokio::test]
async fn a_newcomer_builds_and_deploys_a_rust_function_outside_the_repository_on_the_packed_sdk() {
    let root = repo_root();
    let target = root.join("target/newcomer");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(&cargo)
        .current_dir(&root)
        .args([
            "package",
            "-p",
            "edgeward-sdk",
            "--no-verify",
            "--allow-dirty",
        ])
        .arg("--target-dir")
        .arg(&target)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let version = env!("CARGO_PKG_VERSION");
    let packed = target.join(format!("package/edgeward-sdk-{version}.crate"));
    let outside = tempfile::tempdir().unwrap();
    let status = Command::new("tar")
        .arg("xzf")
        .arg(&packed)
        .arg("-C")
        .arg(outside.path())
        .status()
        .unwrap();
    assert!(status.success());
    let sdk = outside.path().join(format!("edgeward-sdk-{version}"));
    assert!(sdk.join("wit/secrets.wit").exists() && sdk.join("LICENSE").exists());
    let manifest = std::fs::read_to_string(sdk.join("Cargo.toml")).unwrap();
    for table in manifest
        .split("\n[")
        .filter(|t| t.starts_with("dependencies"))
    {
        assert!(
            !table.contains("path ="),
            "a path dependency in the packed SDK: {table}"
        );
    }

    let server = Server::start().await;
    let (code, _, err) = edgeward_in(
        outside.path(),
        None,
        &[
            "new",
            "hello-newcomer",
            "--template",
            "secrets",
            "--project",
            "acme",
            "--sdk-path",
            sdk.to_str().unwrap(),
        ],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    let dir = outside.path().join("hello-newcomer");
    // Cargo's target directory kept between runs (the SDK's dependencies build once).
    let cache = target.join("project");
    std::fs::create_dir_all(&cache).unwrap();
    std::os::unix::fs::symlink(&cache, dir.join("target")).unwrap();
    let (code, out, err) = edgeward_in(
        &dir,
        Some(&server),
        &["deploy", "--secrets", "dev-secrets.json"],
    )
    .await;
    assert_eq!(code, 0, "{out}{err}");
    let (status, body) = server.get("/acme/hello-newcomer/x").await;
    assert_eq!(
        (status, body.as_str()),
        (
            200,
            "hello from dev-secrets.json (GREETING from package scope; you asked for /x)\n"
        )
    );
}

/// A new JavaScript project builds with `edgeward-build.mjs`, which keeps componentize-js's
/// engine splice (bindings of the WIT world spliced into SpiderMonkey: 3 of its 5 seconds)
/// in a cache named by everything it depends on. A second build reuses the entry and serves
/// the new code; a changed WIT package is a new entry, never the old one; with the cache
/// turned off nothing is read or written.
#[tokio::test]
async fn the_javascript_build_reuses_the_engine_splice_only_for_the_same_wit() {
    let work = tempfile::tempdir().unwrap();
    let (code, _, err) = edgeward_in(
        work.path(),
        None,
        &["new", "splice", "--lang", "js", "--project", "acme"],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    let dir = work.path().join("splice");
    let cache = work.path().join("cache");
    let entries = || -> Vec<(String, std::time::SystemTime)> {
        let dir = cache.join("edgeward/componentize-js");
        let mut found: Vec<_> = std::fs::read_dir(&dir)
            .map(|d| {
                d.flatten()
                    .map(|e| {
                        let modified = e.metadata().unwrap().modified().unwrap();
                        (e.file_name().to_string_lossy().into_owned(), modified)
                    })
                    .collect()
            })
            .unwrap_or_default();
        found.sort();
        found
    };
    let build = |marker: &'static str, cache_on: bool| {
        let dir = dir.clone();
        let cache = cache.clone();
        async move {
            greet_from(&dir.join("app.js"), marker);
            let mut cmd = cleared(Command::new(env!("CARGO_BIN_EXE_edgeward")));
            cmd.current_dir(&dir)
                .arg("build")
                .env("PATH", path_with_componentizers())
                .env("XDG_CACHE_HOME", &cache)
                .stdin(Stdio::null());
            if !cache_on {
                cmd.env("EDGEWARD_SPLICE_CACHE", "off");
            }
            let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
                .await
                .unwrap();
            assert!(
                out.status.success(),
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            std::fs::read(dir.join("app.wasm")).unwrap()
        }
    };
    let server = Server::start().await;
    let serves = async |component: Vec<u8>, marker: &str| {
        let (status, body) = server.upload("acme/splice", component).await;
        assert_eq!(status, 201, "{body}");
        let (status, body) = server.get("/acme/splice/").await;
        assert_eq!(status, 200, "{body}");
        assert!(body.contains(marker), "{body}");
    };

    let first = build("the first build", true).await;
    let after_first = entries();
    assert_eq!(
        after_first.len(),
        2,
        "one entry, .wasm and .json: {after_first:?}"
    );
    serves(first, "the first build").await;

    // Same WIT: the entry is read, not written again; the new source is what serves.
    let second = build("the second build", true).await;
    assert_eq!(entries(), after_first);
    serves(second, "the second build").await;

    // A changed WIT package (a comment is enough) is a new entry.
    let wit = dir.join("wit/secrets.wit");
    let mut text = std::fs::read_to_string(&wit).unwrap();
    text.push_str("\n// changed\n");
    std::fs::write(&wit, text).unwrap();
    let third = build("the third build", true).await;
    let after_third = entries();
    assert_eq!(after_third.len(), 4, "{after_third:?}");
    assert!(after_first.iter().all(|e| after_third.contains(e)));
    serves(third, "the third build").await;

    // Off: the same build as componentize-js alone, the cache untouched.
    let fourth = build("the fourth build", false).await;
    assert_eq!(entries(), after_third);
    serves(fourth, "the fourth build").await;
}

/// `edgeward dev` keeps the package's newest five versions, not one per save: older versions,
/// their components and their compiled artifacts go after each deploy (a Python save is a
/// 19 MB component and a 46 MB artifact).
#[tokio::test]
async fn dev_keeps_five_versions_not_one_per_save() {
    let work = tempfile::tempdir().unwrap();
    let sdk = repo_root().join("guest-sdk");
    let (code, _, err) = edgeward_in(
        work.path(),
        None,
        &[
            "new",
            "kept",
            "--project",
            "acme",
            "--sdk-path",
            sdk.to_str().unwrap(),
        ],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    let dir = work.path().join("kept");
    shared_rust_target(&dir);
    let logs = work.path().join("logs");
    std::fs::create_dir(&logs).unwrap();
    let dev = Dev::start(&dir, &logs);
    dev.wait_for(Duration::from_secs(300), |out, _| {
        out.contains("serving http://")
    })
    .await;
    let source = dir.join("src/lib.rs");
    for version in 2..=7 {
        greet_from(&source, &format!("save {version}"));
        let line = format!("deployed version {version} ");
        dev.wait_for(Duration::from_secs(120), |_, err| err.contains(&line))
            .await;
    }
    let data = dir.join(".edgeward-dev");
    let api = dev
        .stderr()
        .lines()
        .find_map(|l| l.split("API ").nth(1).map(str::to_string))
        .unwrap();
    let token = std::fs::read_to_string(data.join("admin.token")).unwrap();
    let package: Value = crate::harness::http()
        .get(format!("{api}/v1/projects/acme/packages/kept"))
        .bearer_auth(token.trim())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let versions: Vec<i64> = package["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_i64().unwrap())
        .collect();
    assert_eq!(versions, [3, 4, 5, 6, 7], "{package}");
    let artifacts = std::fs::read_dir(data.join("artifacts"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "cwasm")
        })
        .count();
    assert!(artifacts <= 5, "{artifacts} artifacts kept");
}
