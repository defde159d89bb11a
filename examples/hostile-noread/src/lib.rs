//! Hostile: answers without ever reading the request body.

use edgeward_sdk::bindings::wasi::http::types::{
    Fields, IncomingRequest, OutgoingBody, OutgoingResponse, ResponseOutparam,
};

fn handle(_request: IncomingRequest, out: ResponseOutparam) {
    let response = OutgoingResponse::new(Fields::new());
    let Ok(body) = response.body() else { return };
    ResponseOutparam::set(out, Ok(response));
    if let Ok(stream) = body.write() {
        let _ = stream.blocking_write_and_flush(b"did not read your body");
    }
    let _ = OutgoingBody::finish(body, None);
}

edgeward_sdk::raw_handler!(handle);
