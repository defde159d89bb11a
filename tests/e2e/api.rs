//! The API against its own OpenAPI document: every route is documented with its rule, and a
//! property-based tester no one here wrote (schemathesis, installed by `./scripts/test` into
//! `.venv`) finds no server error and no response off the document.

use crate::harness::{Options, Server, repo_root};
use reqwest::Method;
use serde_json::{Value, json};

#[tokio::test]
async fn the_document_has_every_route_with_its_rule_and_types() {
    let server = Server::start().await;
    // Public: a client generator needs no token to fetch it.
    let r = server
        .api_as(Method::GET, "/v1/openapi.json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let doc: Value = r.json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."), "{doc}");
    let routes = edgeward_host::api::routes();
    let mut operations = 0;
    for path in doc["paths"].as_object().unwrap().values() {
        operations += path.as_object().unwrap().len();
    }
    assert_eq!(operations, routes.len(), "one operation per route, no more");
    for route in &routes {
        let op = &doc["paths"][&route.path][route.method.as_str().to_ascii_lowercase()];
        assert!(
            op.is_object(),
            "{} {} is not documented",
            route.method,
            route.path
        );
        let public = matches!(route.need, edgeward_host::api::Need::Public);
        assert_eq!(
            op["security"].is_array(),
            !public,
            "{} {}: the document says a token is needed exactly where the policy does",
            route.method,
            route.path
        );
        if !public {
            assert!(
                op["responses"]["401"].is_object(),
                "{} {}",
                route.method,
                route.path
            );
        }
        let ok = op["responses"]
            .as_object()
            .unwrap()
            .keys()
            .any(|s| s.starts_with('2'));
        assert!(ok, "{} {} documents its success", route.method, route.path);
        for param in route.path.split('/').filter(|s| s.starts_with('{')) {
            let name = param.trim_matches(|c| c == '{' || c == '}');
            let params = op["parameters"].as_array().unwrap();
            assert!(
                params
                    .iter()
                    .any(|p| p["name"] == name && p["in"] == "path"),
                "{} {}: path parameter {name}",
                route.method,
                route.path
            );
        }
    }
    // Every error code is in the document, and the error body names them.
    let codes = &doc["components"]["schemas"]["ErrorCode"]["enum"];
    for code in edgeward_host::code::ErrorCode::ALL {
        assert!(
            codes.as_array().unwrap().contains(&json!(code.as_str())),
            "{code} missing from ErrorCode"
        );
    }
    // A typed answer matches its schema's fields: the listing of projects.
    let props = &doc["components"]["schemas"]["Project"]["properties"];
    let (_, projects) = server.json(Method::GET, "/v1/projects").await;
    server.deploy("acme/hello", "hello").await;
    let (_, projects2) = server.json(Method::GET, "/v1/projects").await;
    assert_eq!(projects["projects"], json!([]));
    for key in projects2["projects"][0].as_object().unwrap().keys() {
        assert!(
            props[key].is_object(),
            "field {key} of Project is documented"
        );
    }
}

#[tokio::test]
async fn schemathesis_finds_no_server_error_and_no_response_off_the_document() {
    let st = repo_root().join(".venv/bin/schemathesis");
    assert!(
        st.exists(),
        "{} is missing: ./scripts/test installs it (pip install schemathesis into .venv)",
        st.display()
    );
    let server = Server::start().await;
    // Something for it to find: a project with a package, secrets in each scope, a member.
    server.deploy("acme/hello", "hello").await;
    for (path, body) in [
        (
            "/v1/secrets/platform",
            json!({"name": "PLAT", "value": "p-value"}),
        ),
        (
            "/v1/projects/acme/secrets",
            json!({"name": "DB", "value": {"user": "u", "pw": "x"}}),
        ),
        (
            "/v1/projects/acme/packages/hello/secrets",
            json!({"name": "KEY", "value": "k"}),
        ),
        ("/v1/users", json!({"name": "bob"})),
    ] {
        let r = server
            .api(Method::POST, path)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201, "{path}");
    }
    let r = server
        .api(Method::PUT, "/v1/projects/acme/members/bob")
        .json(&json!({"role": "developer"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("schemathesis.toml");
    // Real names for the path parameters, so that calls reach past "no such project".
    std::fs::write(
        &config,
        "[parameters]\n\"path.project\" = \"acme\"\n\"path.package\" = \"hello\"\n\
         \"path.user\" = \"bob\"\n\"path.name\" = \"DB\"\n",
    )
    .unwrap();
    let out = std::process::Command::new(&st)
        .current_dir(dir.path())
        .args(["--config-file", config.to_str().unwrap(), "run"])
        .arg(format!("{}/v1/openapi.json", server.api))
        .args(["-H", &format!("Authorization: Bearer {}", server.token)])
        .args([
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance",
            // The event stream never ends by design; its own test follows it.
            "--exclude-path-regex",
            "/executions/stream$",
            "--phases",
            "examples,coverage,fuzzing",
            "--max-examples",
            "15",
            "--seed",
            "20261127",
            // Generation health, not the API's: a path parameter's rule filters out many
            // draws, which hypothesis would otherwise report as an error.
            "--suppress-health-check",
            "filter_too_much,too_slow",
            "--generation-database",
            "none",
            // One worker: hypothesis 6's lambda-source cache is not thread-safe (a
            // "recursion depth mismatch" runtime error seen with two).
            "--workers",
            "1",
            "--no-color",
        ])
        .output()
        .expect("run schemathesis");
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "schemathesis found problems:\n{report}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(report.contains("passed"), "{report}");
    let summary: Vec<&str> = report.lines().rev().take(25).collect();
    eprintln!(
        "{}",
        summary.into_iter().rev().collect::<Vec<_>>().join("\n")
    );
    // It took the server through thousands of requests and the server is still well.
    // (A new connection: the server has closed the harness's idle one meanwhile.)
    let r = crate::harness::http_get(format!("{}/v1/health", server.api))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(!server.log().contains("panicked"), "{}", server.log());
}

/// The value of the sample `name` (with its labels, as Prometheus prints them) in `text`.
fn sample(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

#[tokio::test]
async fn metrics_are_served_on_their_own_listener_with_the_values_traffic_made() {
    let server = Server::start_with(Options {
        extra_args: vec!["--metrics-listen".into(), "127.0.0.1:0".into()],
        ..Options::backend(None)
    })
    .await;
    let metrics = server
        .stdout_lines()
        .iter()
        .find_map(|l| l.strip_prefix("listening: metrics ").map(str::to_string))
        .expect("the server prints `listening: metrics http://ADDR`");
    server.deploy("acme/hello", "hello").await;
    server
        .deploy_with("acme/unbound", "hello", "[env]\nKEY = \"secret:NOWHERE\"\n")
        .await;
    let mut ids = Vec::new();
    for (path, expected) in [
        ("/acme/hello", 200),
        ("/acme/hello", 200),
        ("/acme/hello", 200),
        // A binding no scope holds.
        ("/acme/unbound", 500),
    ] {
        let r = server.call(Method::GET, path).send().await.unwrap();
        assert_eq!(r.status(), expected, "{path}");
        ids.push(
            r.headers()["x-edgeward-execution-id"]
                .to_str()
                .unwrap()
                .to_string(),
        );
    }
    // Metrics are counted as the record is made, after the response: once every record can
    // be read, every count is in.
    for id in &ids {
        server.execution("acme", id).await;
    }
    let text = crate::harness::http_get(format!("{metrics}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let hello = r#"{package="acme/hello",status="ok"}"#;
    assert_eq!(
        sample(&text, &format!("edgeward_requests_total{hello}")),
        Some(3.0),
        "{text}"
    );
    let unbound = r#"{package="acme/unbound",status="unbound"}"#;
    assert_eq!(
        sample(&text, &format!("edgeward_requests_total{unbound}")),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            r#"edgeward_request_duration_seconds_count{package="acme/hello"}"#
        ),
        Some(3.0),
        "{text}"
    );
    // Every hello ran in under half a minute, and took some time.
    assert_eq!(
        sample(
            &text,
            r#"edgeward_request_duration_seconds_bucket{package="acme/hello",le="30"}"#
        ),
        Some(3.0)
    );
    assert!(
        sample(
            &text,
            r#"edgeward_request_duration_seconds_sum{package="acme/hello"}"#
        )
        .unwrap()
            > 0.0
    );
    assert_eq!(
        sample(&text, "edgeward_instantiation_seconds_count"),
        Some(3.0),
        "{text}"
    );
    assert!(
        sample(&text, "edgeward_secret_cache_misses_total").unwrap() >= 1.0,
        "{text}"
    );
    assert!(
        sample(&text, "edgeward_secret_backend_seconds_count").unwrap() >= 1.0,
        "{text}"
    );
    assert_eq!(
        sample(&text, "edgeward_packages_serving"),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            r#"edgeward_instance_slots_in_use{package="acme/hello"}"#
        ),
        Some(0.0)
    );
    assert!(sample(&text, r#"edgeward_instance_slots{package="acme/hello"}"#).unwrap() >= 1.0);
    assert_eq!(sample(&text, "edgeward_record_queue"), Some(0.0), "{text}");
    assert!(sample(&text, r#"edgeward_open_connections{listener="data_plane"}"#).is_some());
    assert!(
        text.contains("# TYPE edgeward_requests_total counter"),
        "{text}"
    );
    // Nothing of a secret, a token or a request in it: names of packages and statuses only.
    assert!(!text.contains(&server.token));
    // The metrics are on their listener only; the API does not serve them.
    let (status, _) = server.json(Method::GET, "/metrics").await;
    assert_eq!(status, 404);
    let r = crate::harness::http_get(format!("{metrics}/other"))
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}

#[tokio::test]
async fn without_the_flag_there_is_no_metrics_listener() {
    let server = Server::start().await;
    assert!(
        !server.stdout_lines().iter().any(|l| l.contains("metrics")),
        "{:?}",
        server.stdout_lines()
    );
}
