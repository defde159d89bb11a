//! Sends a request that carries a credential the host attaches
//! (`Outgoing::with_credential`), and reports what came back.
//!
//! `?url=U&credential=NAME[&method=M][&body=B]`: the request, answered as JSON with the
//! upstream's status, headers and body (or the error). `?readback=NAME&url=U`: attaches the
//! credential to a request it does not send and answers with what the header reads back as.
//! `&burn=N` first makes N lookups of secrets that do not exist (`lookups_refused`: how many
//! failed), as a guest spending its backend budget would.

use edgeward_sdk::bindings::edgeward::platform::credentials;
use edgeward_sdk::bindings::wasi::http::types::{Fields, OutgoingRequest};
use edgeward_sdk::{Outgoing, Request, Response};
use serde_json::json;

fn handle(req: Request) -> Response {
    if let Some(name) = req.query_param("readback") {
        let request = OutgoingRequest::new(Fields::new());
        let attached = credentials::attach(&request, &name);
        let headers: Vec<(String, String)> = request
            .headers()
            .entries()
            .into_iter()
            .map(|(k, v)| (k, String::from_utf8_lossy(&v).into_owned()))
            .collect();
        let answer = json!({
            "attached": match &attached {
                Ok(()) => "ok".to_string(),
                Err(e) => format!("{e:?}"),
            },
            "headers": headers,
        });
        return Response::json(200, answer.to_string());
    }
    // `?burn=N`: first N lookups of names no scope holds, spending this execution's
    // secret-backend budget (redaction must not depend on it).
    let burned = req
        .query_param("burn")
        .and_then(|n| n.parse::<u32>().ok())
        .map(|n| {
            (0..n)
                .filter(|i| edgeward_sdk::secrets::get(&format!("BURN_{i}")).is_err())
                .count()
        });
    let url = req.query_param("url").unwrap_or_default();
    let method = req.query_param("method").unwrap_or_else(|| "GET".into());
    let mut outgoing = Outgoing::new(&method, &url);
    if let Some(body) = req.query_param("body") {
        outgoing = outgoing.body(body);
    }
    if let Some(name) = req.query_param("credential") {
        outgoing = outgoing.with_credential(&name);
    }
    let answer = match outgoing.send() {
        Ok(r) => json!({
            "status": r.status,
            "headers": r.headers.iter()
                .map(|(k, v)| (k.clone(), String::from_utf8_lossy(v).into_owned()))
                .collect::<Vec<_>>(),
            "body": String::from_utf8_lossy(&r.body),
        }),
        Err(e) => json!({ "error": e }),
    };
    let mut answer = answer;
    if let Some(n) = burned {
        answer["lookups_refused"] = json!(n);
    }
    Response::json(200, answer.to_string())
}

edgeward_sdk::handler!(handle);
