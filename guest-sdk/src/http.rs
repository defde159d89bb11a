//! Typed request and response over the raw `wasi:http` resources.

use crate::bindings::wasi::http::outgoing_handler;
use crate::bindings::wasi::http::types::{
    ErrorCode, Fields, IncomingRequest, Method, OutgoingBody, OutgoingRequest, OutgoingResponse,
    ResponseOutparam, Scheme,
};
use crate::bindings::wasi::io::streams::StreamError;

/// An incoming HTTP request, read whole.
///
/// The path is what follows `/{project}/{package}` in the URL the caller used, so a function
/// does not depend on where it is deployed.
#[derive(Debug, Clone)]
pub struct Request {
    method: String,
    path_with_query: String,
    headers: Vec<(String, Vec<u8>)>,
    body: Vec<u8>,
}

impl Request {
    /// The method, upper-case (`GET`, `POST`, …).
    pub fn method(&self) -> &str {
        &self.method
    }

    /// The path without the query, starting with `/`.
    pub fn path(&self) -> &str {
        self.path_with_query
            .split_once('?')
            .map_or(self.path_with_query.as_str(), |(p, _)| p)
    }

    /// The raw query string without the `?`, if any.
    pub fn query(&self) -> Option<&str> {
        self.path_with_query.split_once('?').map(|(_, q)| q)
    }

    /// The value of query parameter `key` (first occurrence, `+` and `%XX` decoded).
    pub fn query_param(&self, key: &str) -> Option<String> {
        self.query()?.split('&').find_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k) == key).then(|| percent_decode(v))
        })
    }

    /// All headers in the order received; names are lower-case.
    pub fn headers(&self) -> &[(String, Vec<u8>)] {
        &self.headers
    }

    /// The first value of header `name` (case-insensitive), if it is valid UTF-8.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .and_then(|(_, v)| std::str::from_utf8(v).ok())
    }

    /// The request body.
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// The request body as text, with invalid UTF-8 replaced.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// An HTTP response to send back.
#[derive(Debug, Clone)]
pub struct Response {
    status: u16,
    headers: Vec<(String, Vec<u8>)>,
    body: Vec<u8>,
}

impl Response {
    /// A response with `status` and an empty body.
    pub fn new(status: u16) -> Self {
        Response {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// A `text/plain; charset=utf-8` response.
    pub fn text(status: u16, body: impl Into<String>) -> Self {
        Response::new(status)
            .with_header("content-type", "text/plain; charset=utf-8")
            .with_body(body.into().into_bytes())
    }

    /// An `application/json` response from JSON text the caller has already encoded.
    pub fn json(status: u16, json: impl Into<String>) -> Self {
        Response::new(status)
            .with_header("content-type", "application/json")
            .with_body(json.into().into_bytes())
    }

    /// Adds a header (names are case-insensitive; repeated names are kept).
    pub fn with_header(mut self, name: impl Into<String>, value: impl AsRef<[u8]>) -> Self {
        self.headers.push((name.into(), value.as_ref().to_vec()));
        self
    }

    /// Replaces the body.
    pub fn with_body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// The status code.
    pub fn status(&self) -> u16 {
        self.status
    }
}

/// Reads the request, calls the handler, writes its response. Used by [`crate::handler!`].
pub fn run(request: IncomingRequest, out: ResponseOutparam, handler: fn(Request) -> Response) {
    let request = match read_request(request) {
        Ok(request) => request,
        Err(code) => {
            ResponseOutparam::set(out, Err(code));
            return;
        }
    };
    let response = handler(request);
    write_response(response, out);
}

fn read_request(request: IncomingRequest) -> Result<Request, ErrorCode> {
    let method = match request.method() {
        Method::Get => "GET".to_string(),
        Method::Head => "HEAD".to_string(),
        Method::Post => "POST".to_string(),
        Method::Put => "PUT".to_string(),
        Method::Delete => "DELETE".to_string(),
        Method::Connect => "CONNECT".to_string(),
        Method::Options => "OPTIONS".to_string(),
        Method::Trace => "TRACE".to_string(),
        Method::Patch => "PATCH".to_string(),
        Method::Other(other) => other,
    };
    let path_with_query = request.path_with_query().unwrap_or_else(|| "/".to_string());
    let headers = request.headers().entries();
    let body_resource = request
        .consume()
        .map_err(|()| ErrorCode::InternalError(Some("request body already taken".into())))?;
    let stream = body_resource
        .stream()
        .map_err(|()| ErrorCode::InternalError(Some("request body stream unavailable".into())))?;
    let mut body = Vec::new();
    loop {
        match stream.blocking_read(64 * 1024) {
            Ok(chunk) => body.extend_from_slice(&chunk),
            Err(StreamError::Closed) => break,
            Err(StreamError::LastOperationFailed(e)) => {
                return Err(ErrorCode::InternalError(Some(e.to_debug_string())));
            }
        }
    }
    drop(stream);
    Ok(Request {
        method,
        path_with_query,
        headers,
        body,
    })
}

fn write_response(response: Response, out: ResponseOutparam) {
    let headers = match Fields::from_list(&response.headers) {
        Ok(headers) => headers,
        Err(e) => {
            let message = format!("the function returned an invalid header: {e:?}");
            ResponseOutparam::set(out, Err(ErrorCode::InternalError(Some(message))));
            return;
        }
    };
    let outgoing = OutgoingResponse::new(headers);
    if outgoing.set_status_code(response.status).is_err() {
        let message = format!(
            "the function returned an invalid status {}",
            response.status
        );
        ResponseOutparam::set(out, Err(ErrorCode::InternalError(Some(message))));
        return;
    }
    let Ok(body) = outgoing.body() else {
        return;
    };
    ResponseOutparam::set(out, Ok(outgoing));
    let Ok(stream) = body.write() else {
        return;
    };
    // `blocking-write-and-flush` takes at most 4096 bytes per call.
    for chunk in response.body.chunks(4096) {
        if stream.blocking_write_and_flush(chunk).is_err() {
            // The client went away; nothing more to do.
            return;
        }
    }
    drop(stream);
    let _ = OutgoingBody::finish(body, None);
}

/// The answer to an outgoing request, read whole.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// The status code.
    pub status: u16,
    /// The headers; names are lower-case.
    pub headers: Vec<(String, Vec<u8>)>,
    /// The body.
    pub body: Vec<u8>,
}

/// Sends an HTTP request and reads the whole answer. Only hosts the package's manifest lists
/// under `[outbound] hosts` can be reached; others fail with `HttpRequestDenied`. The error is
/// the `wasi:http` error code, printed. [`Outgoing`] builds a request step by step, and can
/// carry a credential the host attaches.
pub fn fetch(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<Fetched, String> {
    let mut request = Outgoing::new(method, url).body(body);
    for (k, v) in headers {
        request = request.header(k, v);
    }
    // No credential to attach: a function that only fetches does not import
    // `edgeward:platform/credentials` (the attaching code is never linked in), so it also
    // runs on hosts without it, such as `wasmtime serve`.
    transmit(request, |_, _| Ok(()))
}

/// An outgoing HTTP request, built step by step and sent with [`Outgoing::send`] (or
/// [`send`]).
///
/// ```no_run
/// use edgeward_sdk::Outgoing;
///
/// // The host puts `authorization: Bearer <STRIPE_KEY>` on the request as it leaves, if the
/// // manifest declares the credential for this host; the value never enters the function.
/// let answer = Outgoing::get("https://api.stripe.com/v1/balance")
///     .with_credential("STRIPE_KEY")
///     .send();
/// ```
#[derive(Debug, Clone)]
pub struct Outgoing {
    method: String,
    url: String,
    headers: Vec<(String, Vec<u8>)>,
    body: Vec<u8>,
    credentials: Vec<String>,
}

impl Outgoing {
    /// A request with `method` to `url` (absolute: `https://host/path?query`).
    pub fn new(method: &str, url: &str) -> Outgoing {
        Outgoing {
            method: method.to_string(),
            url: url.to_string(),
            headers: Vec::new(),
            body: Vec::new(),
            credentials: Vec::new(),
        }
    }

    /// A `GET` request.
    pub fn get(url: &str) -> Outgoing {
        Outgoing::new("GET", url)
    }

    /// A `POST` request.
    pub fn post(url: &str) -> Outgoing {
        Outgoing::new("POST", url)
    }

    /// Adds a header.
    pub fn header(mut self, name: &str, value: impl AsRef<[u8]>) -> Outgoing {
        self.headers
            .push((name.to_string(), value.as_ref().to_vec()));
        self
    }

    /// Sets the body.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Outgoing {
        self.body = body.into();
        self
    }

    /// Asks the host to attach the credential `name`, declared in the manifest under
    /// `[[outbound.credentials]]` (its secret, hosts, header and format). The host sets the
    /// header as the request leaves, only over https to a declared host; the function never
    /// sees the value (reading the header back gives a placeholder). Sending fails with
    /// `denied` when the manifest declares no such credential, and with `HttpRequestDenied`
    /// when the request goes elsewhere.
    pub fn with_credential(mut self, name: &str) -> Outgoing {
        self.credentials.push(name.to_string());
        self
    }

    /// Sends the request and reads the whole answer.
    pub fn send(self) -> Result<Fetched, String> {
        send(self)
    }
}

/// Sends `request` (see [`Outgoing`]) and reads the whole answer.
pub fn send(request: Outgoing) -> Result<Fetched, String> {
    transmit(request, |request, credentials| {
        for name in credentials {
            crate::bindings::edgeward::platform::credentials::attach(request, name)
                .map_err(|e| format!("credential {name}: {}", crate::secrets::Error::from(e)))?;
        }
        Ok(())
    })
}

/// Sends `request`, with `attach` asking the host for its credentials before it leaves.
fn transmit(
    request: Outgoing,
    attach: impl FnOnce(&OutgoingRequest, &[String]) -> Result<(), String>,
) -> Result<Fetched, String> {
    let Outgoing {
        method,
        url,
        headers,
        body,
        credentials,
    } = request;
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| format!("not an absolute URL: {url}"))?;
    let scheme = match scheme {
        "http" => Scheme::Http,
        "https" => Scheme::Https,
        other => Scheme::Other(other.to_string()),
    };
    let (authority, path) = match rest.find(['/', '?']) {
        Some(i) => (&rest[..i], rest[i..].to_string()),
        None => (rest, "/".to_string()),
    };
    let path = if path.starts_with('?') {
        format!("/{path}")
    } else {
        path
    };
    let fields = Fields::from_list(&headers).map_err(|e| format!("invalid header: {e:?}"))?;
    let request = OutgoingRequest::new(fields);
    let method = match method.to_ascii_uppercase().as_str() {
        "GET" => Method::Get,
        "POST" => Method::Post,
        "PUT" => Method::Put,
        "DELETE" => Method::Delete,
        "HEAD" => Method::Head,
        "PATCH" => Method::Patch,
        "OPTIONS" => Method::Options,
        other => Method::Other(other.to_string()),
    };
    request
        .set_method(&method)
        .map_err(|()| "invalid method".to_string())?;
    request
        .set_scheme(Some(&scheme))
        .map_err(|()| "invalid scheme".to_string())?;
    request
        .set_authority(Some(authority))
        .map_err(|()| format!("invalid authority {authority}"))?;
    request
        .set_path_with_query(Some(&path))
        .map_err(|()| format!("invalid path {path}"))?;
    attach(&request, &credentials)?;
    let outgoing_body = request
        .body()
        .map_err(|()| "request body unavailable".to_string())?;
    let future = outgoing_handler::handle(request, None).map_err(|e| format!("{e:?}"))?;
    {
        let stream = outgoing_body
            .write()
            .map_err(|()| "request body stream unavailable".to_string())?;
        for chunk in body.chunks(4096) {
            stream
                .blocking_write_and_flush(chunk)
                .map_err(|e| format!("writing the request body: {e:?}"))?;
        }
    }
    OutgoingBody::finish(outgoing_body, None).map_err(|e| format!("{e:?}"))?;
    future.subscribe().block();
    let response = future
        .get()
        .ok_or_else(|| "no response".to_string())?
        .map_err(|()| "response already taken".to_string())?
        .map_err(|e| format!("{e:?}"))?;
    let status = response.status();
    let headers = response.headers().entries();
    let incoming = response
        .consume()
        .map_err(|()| "response body unavailable".to_string())?;
    let stream = incoming
        .stream()
        .map_err(|()| "response body stream unavailable".to_string())?;
    let mut body = Vec::new();
    loop {
        match stream.blocking_read(64 * 1024) {
            Ok(chunk) => body.extend_from_slice(&chunk),
            Err(StreamError::Closed) => break,
            Err(StreamError::LastOperationFailed(e)) => return Err(e.to_debug_string()),
        }
    }
    Ok(Fetched {
        status,
        headers,
        body,
    })
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_parameters_are_decoded() {
        let req = Request {
            method: "GET".into(),
            path_with_query: "/a/b?name=DB%5FPASS&x=a+b&flag&bad=%zz".into(),
            headers: vec![("X-Thing".into(), b"yes".to_vec())],
            body: Vec::new(),
        };
        assert_eq!(req.path(), "/a/b");
        assert_eq!(req.query_param("name").as_deref(), Some("DB_PASS"));
        assert_eq!(req.query_param("x").as_deref(), Some("a b"));
        assert_eq!(req.query_param("flag").as_deref(), Some(""));
        assert_eq!(req.query_param("bad").as_deref(), Some("%zz"));
        assert_eq!(req.query_param("missing"), None);
        assert_eq!(req.header("x-thing"), Some("yes"));
    }
}
