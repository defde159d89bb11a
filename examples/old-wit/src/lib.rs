//! Built against the WIT of 2026-11-27 (before `credentials` and `secret.field`): reads the
//! secret named by the query (`?NAME`) with the old `get` and answers whether it was found,
//! its scope and its length, never the value.

wit_bindgen::generate!({
    path: "wit",
    world: "edgeward:platform/function",
    generate_all,
});

use edgeward::platform::secrets;
use exports::wasi::http::incoming_handler::Guest;
use wasi::http::types::{
    Fields, IncomingRequest, OutgoingBody, OutgoingResponse, ResponseOutparam,
};

struct OldWit;

impl Guest for OldWit {
    fn handle(request: IncomingRequest, out: ResponseOutparam) {
        let pq = request.path_with_query().unwrap_or_default();
        let name = pq.split_once('?').map(|(_, q)| q).unwrap_or("");
        let answer = match secrets::get(name) {
            Ok(Some(secret)) => {
                let len = match secret.reveal() {
                    secrets::SecretValue::Text(s) | secrets::SecretValue::Object(s) => s.len(),
                };
                let scope = match secret.scope() {
                    secrets::Scope::Package => "package",
                    secrets::Scope::Project => "project",
                    secrets::Scope::Platform => "platform",
                    secrets::Scope::User => "user",
                };
                format!("{{\"found\":true,\"scope\":\"{scope}\",\"len\":{len}}}")
            }
            Ok(None) => "{\"found\":false}".to_string(),
            Err(_) => "{\"error\":true}".to_string(),
        };
        let response = OutgoingResponse::new(Fields::new());
        let Ok(body) = response.body() else { return };
        ResponseOutparam::set(out, Ok(response));
        if let Ok(stream) = body.write() {
            let _ = stream.blocking_write_and_flush(answer.as_bytes());
        }
        let _ = OutgoingBody::finish(body, None);
    }
}

export!(OldWit);
