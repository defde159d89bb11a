//! Hostile: streams a 1 GiB response (`?declare=1` also announces it in Content-Length).

use edgeward_sdk::bindings::wasi::http::types::{
    Fields, IncomingRequest, OutgoingBody, OutgoingResponse, ResponseOutparam,
};

fn handle(request: IncomingRequest, out: ResponseOutparam) {
    let declare = request
        .path_with_query()
        .is_some_and(|p| p.contains("declare=1"));
    let mut headers = vec![(
        "content-type".to_string(),
        b"application/octet-stream".to_vec(),
    )];
    if declare {
        headers.push(("content-length".to_string(), b"1073741824".to_vec()));
    }
    let Ok(fields) = Fields::from_list(&headers) else {
        return;
    };
    let response = OutgoingResponse::new(fields);
    let Ok(body) = response.body() else { return };
    ResponseOutparam::set(out, Ok(response));
    let Ok(stream) = body.write() else { return };
    let chunk = [b'x'; 4096];
    for _ in 0..(1u64 << 30) / 4096 {
        if stream.blocking_write_and_flush(&chunk).is_err() {
            return;
        }
    }
    drop(stream);
    let _ = OutgoingBody::finish(body, None);
}

edgeward_sdk::raw_handler!(handle);
