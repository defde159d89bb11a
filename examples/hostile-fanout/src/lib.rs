//! Hostile: opens thousands of outbound requests to `?url=`. The host must stop it at its
//! per-execution outbound limit.

use edgeward_sdk::{Request, Response, fetch};
use serde_json::json;

fn handle(req: Request) -> Response {
    let url = req.query_param("url").unwrap_or_default();
    let (mut ok, mut failed) = (0u32, 0u32);
    for _ in 0..5000 {
        match fetch("GET", &url, &[], b"") {
            Ok(_) => ok += 1,
            Err(_) => failed += 1,
        }
    }
    Response::json(200, json!({ "ok": ok, "failed": failed }).to_string())
}

edgeward_sdk::handler!(handle);
