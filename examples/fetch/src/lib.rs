//! Fetches `?url=` with outbound HTTP and reports what came back (or the error).

use edgeward_sdk::{Request, Response, fetch};
use serde_json::json;

fn handle(req: Request) -> Response {
    let url = req.query_param("url").unwrap_or_default();
    let answer = match fetch("GET", &url, &[("x-from", "edgeward")], b"") {
        Ok(r) => json!({ "status": r.status, "body": String::from_utf8_lossy(&r.body) }),
        Err(e) => json!({ "error": e }),
    };
    Response::json(200, answer.to_string())
}

edgeward_sdk::handler!(handle);
