//! A function written without the Edgeward SDK: plain `wasi:http` bindings, as any language's
//! HTTP client would use them. Its manifest binds `KEY = "credential:NAME"`, so its
//! environment holds a placeholder, never the value; the host swaps the value in where the
//! declaration allows.
//!
//! `?url=U&put=WHERE[&scan=LEN:HASH]` sends one request with the placeholder `WHERE`:
//! `bearer` (`authorization: Bearer $KEY`), `alone` (`authorization: $KEY`), `other-header`
//! (`x-api-key: $KEY`), `header-name` (a header named `$KEY`), `body` (POST body), `url` (in
//! the query), anything else (none). `hdr=name:value;…` adds headers of its own. With `scan`,
//! it then searches its whole linear memory for a window of `LEN` bytes whose rolling hash is
//! `HASH` (so the value itself is never handed to it), and for a window of the response it
//! read (a control: the search must find that). Answers JSON, with the body read as text and
//! in hex.

#![allow(unsafe_code)]

wit_bindgen::generate!({
    path: "../../wit",
    world: "wasi:http/proxy@0.2.12",
    generate_all,
});

use exports::wasi::http::incoming_handler::Guest;
use wasi::http::outgoing_handler;
use wasi::http::types::{
    Fields, IncomingRequest, Method, OutgoingBody, OutgoingRequest, OutgoingResponse,
    ResponseOutparam, Scheme,
};

struct Plain;

/// The rolling hash the test computes the same way: Σ b·B^(n-1-i) mod 2^64.
const BASE: u64 = 1_000_003;

fn hash(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0u64, |h, &b| {
        h.wrapping_mul(BASE).wrapping_add(u64::from(b))
    })
}

/// Whether linear memory holds a window of `len` bytes hashing to `want`.
fn memory_holds(len: usize, want: u64) -> bool {
    let size = core::arch::wasm32::memory_size(0) * 65536;
    if len == 0 || len >= size {
        return false;
    }
    let top = (0..len - 1).fold(1u64, |p, _| p.wrapping_mul(BASE));
    let read = |addr: usize| -> u8 {
        // SAFETY: every address below the memory's size is readable in wasm32; the bytes are
        // only hashed.
        unsafe { core::ptr::read_volatile(addr as *const u8) }
    };
    // Address 0 is never data; start at 1.
    let mut h = 0u64;
    for addr in 1..=len {
        h = h.wrapping_mul(BASE).wrapping_add(u64::from(read(addr)));
    }
    let mut start = 1;
    loop {
        if h == want {
            return true;
        }
        let next = start + len;
        if next >= size {
            return false;
        }
        h = h
            .wrapping_sub(u64::from(read(start)).wrapping_mul(top))
            .wrapping_mul(BASE)
            .wrapping_add(u64::from(read(next)));
        start += 1;
    }
}

fn query_param(query: &str, key: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == key).then(|| v.replace("%3A", ":").replace("%2F", "/"))
    })
}

fn json_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Sends the request; `(status, body)` or the error code.
fn send(url: &str, put: &str, key: &str, extra: &str) -> Result<(u16, Vec<u8>), String> {
    let rest = url.strip_prefix("https://").ok_or("https URLs only")?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let mut headers: Vec<(String, Vec<u8>)> = Vec::new();
    let mut path = path.to_string();
    let mut body = Vec::new();
    match put {
        "bearer" => headers.push(("authorization".into(), format!("Bearer {key}").into_bytes())),
        "alone" => headers.push(("authorization".into(), key.as_bytes().to_vec())),
        "other-header" => headers.push(("x-api-key".into(), key.as_bytes().to_vec())),
        "header-name" => headers.push((key.to_string(), b"1".to_vec())),
        "body" => body = format!("{{\"api_key\":\"{key}\"}}").into_bytes(),
        "url" => path = format!("{path}?api_key={key}"),
        _ => {}
    }
    // `hdr=name:value;name:value`: headers of the guest's own (`accept-encoding`, `range`).
    for pair in extra.split(';').filter(|p| !p.is_empty()) {
        if let Some((name, value)) = pair.split_once(':') {
            headers.push((name.to_string(), value.as_bytes().to_vec()));
        }
    }
    let fields = Fields::from_list(&headers).map_err(|e| format!("{e:?}"))?;
    let request = OutgoingRequest::new(fields);
    let method = if body.is_empty() {
        Method::Get
    } else {
        Method::Post
    };
    request.set_method(&method).map_err(|()| "method")?;
    request
        .set_scheme(Some(&Scheme::Https))
        .map_err(|()| "scheme")?;
    request
        .set_authority(Some(authority))
        .map_err(|()| "authority")?;
    request
        .set_path_with_query(Some(&path))
        .map_err(|()| "path")?;
    let outgoing = request.body().map_err(|()| "body")?;
    let future = outgoing_handler::handle(request, None).map_err(|e| format!("{e:?}"))?;
    {
        let stream = outgoing.write().map_err(|()| "body stream")?;
        if !body.is_empty() {
            // A failed write means the host refused the request: `get` below says why.
            let _ = stream.blocking_write_and_flush(&body);
        }
    }
    let _ = OutgoingBody::finish(outgoing, None);
    future.subscribe().block();
    let response = future
        .get()
        .ok_or("no response")?
        .map_err(|()| "taken")?
        .map_err(|e| format!("{e:?}"))?;
    let status = response.status();
    let incoming = response.consume().map_err(|()| "response body")?;
    let stream = incoming.stream().map_err(|()| "response stream")?;
    let mut read = Vec::new();
    while let Ok(chunk) = stream.blocking_read(64 * 1024) {
        read.extend_from_slice(&chunk);
    }
    Ok((status, read))
}

impl Guest for Plain {
    fn handle(request: IncomingRequest, out: ResponseOutparam) {
        let pq = request.path_with_query().unwrap_or_default();
        let query = pq.split_once('?').map(|(_, q)| q).unwrap_or("");
        let url = query_param(query, "url").unwrap_or_default();
        let put = query_param(query, "put").unwrap_or_else(|| "bearer".into());
        let key = std::env::var("KEY").unwrap_or_default();
        let mut answer = String::from("{");
        let extra = query_param(query, "hdr").unwrap_or_default();
        match send(&url, &put, &key, &extra) {
            Ok((status, body)) => {
                // The body exactly as read, in hex, as well: binary answers (compressed,
                // UTF-16) are checked byte for byte.
                let hex: String = body.iter().map(|b| format!("{b:02x}")).collect();
                answer.push_str(&format!(
                    "\"status\":{status},\"body\":{},\"body_hex\":\"{hex}\"",
                    json_string(&String::from_utf8_lossy(&body))
                ));
                if let Some((len, want)) = query_param(query, "scan").and_then(|s| {
                    let (l, h) = s.split_once(':')?;
                    Some((l.parse::<usize>().ok()?, u64::from_str_radix(h, 16).ok()?))
                }) {
                    let control = body.len() >= len && memory_holds(len, hash(&body[..len]));
                    answer.push_str(&format!(
                        ",\"found_value\":{},\"found_control\":{control}",
                        memory_holds(len, want)
                    ));
                }
            }
            Err(e) => answer.push_str(&format!("\"error\":{}", json_string(&e))),
        }
        answer.push_str(&format!(",\"placeholder_len\":{}}}", key.len()));
        let headers =
            Fields::from_list(&[("content-type".to_string(), b"application/json".to_vec())])
                .unwrap_or_else(|_| Fields::new());
        let response = OutgoingResponse::new(headers);
        let body = response.body().unwrap_or_else(|()| unreachable!());
        ResponseOutparam::set(out, Ok(response));
        if let Ok(stream) = body.write() {
            for chunk in answer.as_bytes().chunks(4096) {
                let _ = stream.blocking_write_and_flush(chunk);
            }
        }
        let _ = OutgoingBody::finish(body, None);
    }
}

export!(Plain);
