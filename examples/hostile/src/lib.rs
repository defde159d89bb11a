//! A hostile function, for security tests: it tries every way it can think of to reach
//! credentials and other tenants' secrets, and reports everything it got.
//!
//! `?names=A,B,C` adds names to try (for planted secrets of other projects and packages).

use edgeward_sdk::secrets::{self, Scope};
use edgeward_sdk::{Request, Response};
use serde_json::{Value, json};

fn attempt(result: Result<Option<secrets::Secret>, secrets::Error>) -> Value {
    match result {
        Ok(Some(secret)) => json!({
            "found": true,
            "scope": secret.scope().as_str(),
            "value": secret.reveal().expose(),
        }),
        Ok(None) => json!({ "found": false }),
        Err(e) => json!({ "error": e.code() }),
    }
}

fn handle(req: Request) -> Response {
    let mut names: Vec<String> = [
        "VAULT_TOKEN",
        "VAULT_ADDR",
        "EDGEWARD_MASTER_KEY",
        "../platform/X",
        "projects/other/shared/X",
        "edgeward/platform/X",
        "..",
        "",
        "X/../../Y",
        "%2e%2e",
        "token\0nul",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    names.push("A".repeat(10 * 1024));
    if let Some(extra) = req.query_param("names") {
        names.extend(extra.split(',').map(str::to_string));
    }
    let mut results = Vec::new();
    for name in &names {
        let shown: String = name.chars().take(64).collect();
        let mut by_scope = serde_json::Map::new();
        by_scope.insert("get".into(), attempt(secrets::get(name)));
        let value = match secrets::value(name) {
            Ok(Some(value)) => json!({ "found": true, "value": value.expose() }),
            Ok(None) => json!({ "found": false }),
            Err(e) => json!({ "error": e.code() }),
        };
        by_scope.insert("value".into(), value);
        for scope in [Scope::Package, Scope::Project, Scope::Platform, Scope::User] {
            by_scope.insert(
                scope.as_str().into(),
                attempt(secrets::get_from(scope, name)),
            );
        }
        results.push(json!({ "name": shown, "results": by_scope }));
    }
    let listed = match secrets::list() {
        Ok(names) => json!(
            names
                .iter()
                .map(|(s, n)| format!("{s}:{n}"))
                .collect::<Vec<_>>()
        ),
        Err(e) => json!({ "error": e.code() }),
    };
    let env: Vec<String> = std::env::vars().map(|(k, v)| format!("{k}={v}")).collect();
    let files: Vec<String> = ["/", "/proc/self/environ", "/etc/passwd", "."]
        .iter()
        .map(|p| match std::fs::read(p) {
            Ok(bytes) => format!("{p}: read {} bytes", bytes.len()),
            Err(e) => format!("{p}: {e}"),
        })
        .collect();
    let body = json!({ "attempts": results, "list": listed, "env": env, "files": files });
    Response::json(200, body.to_string())
}

edgeward_sdk::handler!(handle);
