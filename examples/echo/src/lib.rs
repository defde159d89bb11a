//! Sends the request back as JSON: method, path, query, headers and body.

use edgeward_sdk::{Request, Response};
use serde_json::json;

fn handle(req: Request) -> Response {
    let headers: Vec<_> = req
        .headers()
        .iter()
        .map(|(k, v)| json!([k, String::from_utf8_lossy(v)]))
        .collect();
    let body = json!({
        "method": req.method(),
        "path": req.path(),
        "query": req.query(),
        "headers": headers,
        "body": req.text(),
    });
    Response::json(200, body.to_string())
}

edgeward_sdk::handler!(handle);
