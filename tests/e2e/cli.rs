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
                "http://127.0.0.1:9".into(),
            ],
            "error: unavailable: ",
        ),
    ];
    for (args, prefix) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (ok, _, err) = server.cli(&args);
        assert!(!ok, "{args:?} should fail");
        assert!(err.starts_with(prefix), "{args:?}: {err:?}");
        assert_eq!(
            err.trim_end().lines().count(),
            1,
            "{args:?}: one line: {err:?}"
        );
        assert!(!err.contains(&server.token), "errors never show the token");
    }
}
