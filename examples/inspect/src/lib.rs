//! Reports what the sandbox exposes to a function: environment, arguments, working directory
//! and any file system it can reach. Security tests deploy it and check that nothing of the
//! host shows through.

use edgeward_sdk::{Request, Response};
use serde_json::json;

fn handle(_req: Request) -> Response {
    let env: Vec<_> = std::env::vars_os()
        .map(|(k, v)| json!([k.to_string_lossy(), v.to_string_lossy()]))
        .collect();
    let args: Vec<_> = std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let cwd = std::env::current_dir()
        .map(|p| p.display().to_string())
        .map_err(|e| e.to_string());
    let mut files = serde_json::Map::new();
    for path in [
        "/",
        ".",
        "/etc/passwd",
        "/proc/self/environ",
        ".edgeward/admin.token",
    ] {
        let outcome = match std::fs::metadata(path) {
            Ok(meta) if meta.is_dir() => match std::fs::read_dir(path) {
                Ok(entries) => {
                    json!({"dir": entries.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect::<Vec<_>>()})
                }
                Err(e) => json!({"error": e.to_string()}),
            },
            Ok(_) => match std::fs::read(path) {
                Ok(bytes) => json!({"file_bytes": bytes.len()}),
                Err(e) => json!({"error": e.to_string()}),
            },
            Err(e) => json!({"error": e.to_string()}),
        };
        files.insert(path.to_string(), outcome);
    }
    let body = json!({
        "env": env,
        "args": args,
        "cwd": cwd.unwrap_or_else(|e| format!("error: {e}")),
        "files": files,
    });
    Response::json(200, body.to_string())
}

edgeward_sdk::handler!(handle);
