//! Functions in Python and JavaScript, and `edgeward new`: the helper modules
//! (`sdk/python/edgeward.py`, `sdk/js/edgeward.js`) against a real server, over the same WIT
//! as Rust guests (scope order, allowlist, bad names, fields, a credential the host attaches);
//! projects `edgeward new` makes, built by their language's tool and deployed with the CLI;
//! and a newcomer's Rust project outside the repository on the SDK as `cargo package` packs it.

use crate::credentials::{TlsUpstream, server_for};
use crate::harness::{Server, cleared, path_with_componentizers, repo_root, unique};
use reqwest::Method;
use serde_json::{Value, json};
use std::path::Path;
use std::process::{Command, Stdio};

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

/// Runs a project's build command (as its README says) in `dir`.
async fn build(dir: &Path, command: &str, env: &[(&str, &Path)]) {
    let mut cmd = cleared(Command::new("sh"));
    cmd.current_dir(dir)
        .args(["-c", command])
        .env("PATH", path_with_componentizers());
    for keep in ["CARGO_HOME", "RUSTUP_HOME"] {
        if let Some(v) = std::env::var_os(keep) {
            cmd.env(keep, v);
        }
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = tokio::task::spawn_blocking(move || cmd.output().expect("run the build"))
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{command} in {}: {}{}",
        dir.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The build command a project's README gives.
fn readme_build_command(dir: &Path) -> String {
    let readme = std::fs::read_to_string(dir.join("README.md")).unwrap();
    let block = readme.split("```sh\n").nth(1).unwrap();
    block.lines().next().unwrap().to_string()
}

/// The deploy command a project's README gives, as arguments after `edgeward`.
fn readme_deploy_args(dir: &Path) -> Vec<String> {
    let readme = std::fs::read_to_string(dir.join("README.md")).unwrap();
    let line = readme
        .lines()
        .find(|l| l.starts_with("edgeward deploy "))
        .unwrap();
    line.split_whitespace().skip(1).map(String::from).collect()
}

#[tokio::test]
async fn new_makes_python_and_javascript_projects_that_build_and_deploy_as_their_readme_says() {
    let server = Server::start().await;
    let work = tempfile::tempdir().unwrap();
    for lang in ["python", "js"] {
        let name = format!("greet-{lang}");
        let (code, _, err) = edgeward_in(
            work.path(),
            None,
            &[
                "new",
                &name,
                "--lang",
                lang,
                "--template",
                "secrets",
                "--project",
                "acme",
            ],
        )
        .await;
        assert_eq!(code, 0, "{err}");
        let dir = work.path().join(&name);
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

        build(&dir, &readme_build_command(&dir), &[]).await;
        let args = readme_deploy_args(&dir);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (code, out, err) = edgeward_in(&dir, Some(&server), &args).await;
        assert_eq!(code, 0, "{args:?}: {out}{err}");
        let r = server
            .call(Method::GET, &format!("/acme/{name}/hi"))
            .send()
            .await;
        let r = r.unwrap_or_else(|e| panic!("{lang}: {e}\n{}", server.log()));
        let (status, body) = (r.status().as_u16(), r.text().await.unwrap());
        assert_eq!(
            (status, body.as_str()),
            (
                200,
                "hello from dev-secrets.json (GREETING from package scope; you asked for /hi)\n"
            ),
            "{lang}"
        );
    }

    // Never over an existing directory (exit 5), never a bad name (exit 2); nothing written.
    let before = std::fs::read(work.path().join("greet-js/app.js")).unwrap();
    let (code, _, err) = edgeward_in(work.path(), None, &["new", "greet-js", "--lang", "js"]).await;
    assert_eq!(code, 5, "{err}");
    assert!(err.contains("already_exists"), "{err}");
    assert_eq!(
        std::fs::read(work.path().join("greet-js/app.js")).unwrap(),
        before
    );
    for bad in ["Greet", "../up", "a_b", "", "x".repeat(64).as_str()] {
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
    assert_eq!(
        made.len(),
        3,
        "only the two projects and wit-copy: {made:?}"
    );
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
}

/// A newcomer outside the repository: the SDK as `cargo package` packs it (its own WIT, no
/// path into the repository), a project from `edgeward new --sdk-path`, built with Cargo and
/// deployed as its README says.
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
        ]
        .into_iter()
        .chain(["--sdk-path", sdk.to_str().unwrap()])
        .collect::<Vec<_>>(),
    )
    .await;
    assert_eq!(code, 0, "{err}");
    let dir = outside.path().join("hello-newcomer");
    // Cargo's own target directory for it, kept between runs (the SDK's dependencies build once).
    build(
        &dir,
        &readme_build_command(&dir),
        &[("CARGO_TARGET_DIR", &target.join("project"))],
    )
    .await;
    // The component is where the README says: under the project's target/ unless redirected.
    let args: Vec<String> = readme_deploy_args(&dir)
        .into_iter()
        .map(|a| {
            if a.ends_with(".wasm") {
                target
                    .join("project")
                    .join(a.trim_start_matches("target/"))
                    .display()
                    .to_string()
            } else {
                a
            }
        })
        .collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, out, err) = edgeward_in(&dir, Some(&server), &args).await;
    assert_eq!(code, 0, "{args:?}: {out}{err}");
    let (status, body) = server.get("/acme/hello-newcomer/x").await;
    assert_eq!(
        (status, body.as_str()),
        (
            200,
            "hello from dev-secrets.json (GREETING from package scope; you asked for /x)\n"
        )
    );
}
