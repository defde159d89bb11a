//! Credentials the host attaches to outbound requests (docs/credentials.md): against a
//! loopback HTTPS upstream whose CA the test makes and the server trusts through
//! `--outbound-ca`. The upstream records what it receives and echoes it back, raw and in
//! base64, as a careless or hostile API would.

use crate::harness::{Options, Server, unique};
use base64::Engine as _;
use reqwest::Method;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One request the upstream received.
#[derive(Debug, Clone)]
pub(crate) struct Received {
    pub(crate) host: String,
    pub(crate) path: String,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: String,
}

/// A loopback HTTPS server for `localhost` and `127.0.0.1`, with a CA made for this run.
/// `/echo` answers with the request (headers and body) in its body, and the `authorization`
/// header raw and base64-encoded in response headers; `/redirect` sends the caller to
/// `https://127.0.0.1:PORT/landing`. As stock servers and careless APIs do, whatever the
/// request asked for: `/gzip`, `/deflate`, `/br` and `/zstd` answer the echo compressed;
/// `/range` answers 206 with three bytes of the `authorization` header; `/compress` echoes it
/// in a content coding nobody decodes; `/form?f=NAME` echoes
/// it in the encoding [`encode_form`] names; `/store` keeps it and `/stored` answers with the
/// one kept last (on a later request, which carries none). Anything else answers `ok`. A
/// request whose body cannot be read whole is not recorded.
pub(crate) struct TlsUpstream {
    pub(crate) port: u16,
    ca_pem: String,
    received: Arc<Mutex<Vec<Received>>>,
    /// TLS connections accepted.
    connections: Arc<std::sync::atomic::AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl TlsUpstream {
    pub(crate) async fn start() -> TlsUpstream {
        use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(rcgen::DnType::CommonName, "edgeward test CA");
        let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().unwrap()).unwrap();
        let leaf_key = KeyPair::generate().unwrap();
        let leaf = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
            .unwrap()
            .signed_by(&leaf_key, &ca)
            .unwrap();
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![leaf.der().clone()],
            rustls::pki_types::PrivateKeyDer::try_from(leaf_key.serialize_der()).unwrap(),
        )
        .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let received: Arc<Mutex<Vec<Received>>> = Arc::default();
        let log = received.clone();
        let connections = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let accepted = connections.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    break;
                };
                let (acceptor, log, accepted) = (acceptor.clone(), log.clone(), accepted.clone());
                let _ = stream.set_nodelay(true);
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(stream).await else {
                        return;
                    };
                    accepted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let service = hyper::service::service_fn(move |req| {
                        let log = log.clone();
                        async move { Ok::<_, std::convert::Infallible>(answer(req, port, &log).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                        .await;
                });
            }
        });
        TlsUpstream {
            port,
            ca_pem: ca.pem(),
            received,
            connections,
            task,
        }
    }

    pub(crate) fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }
}

impl Drop for TlsUpstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn answer(
    req: hyper::Request<hyper::body::Incoming>,
    port: u16,
    log: &Mutex<Vec<Received>>,
) -> hyper::Response<http_body_util::Full<bytes::Bytes>> {
    use http_body_util::BodyExt;
    let (parts, body) = req.into_parts();
    let Ok(body) = body.collect().await else {
        return hyper::Response::new(http_body_util::Full::new("unread".into()));
    };
    let body = String::from_utf8_lossy(&body.to_bytes()).into_owned();
    let headers: Vec<(String, String)> = parts
        .headers
        .iter()
        .map(|(k, v)| {
            (
                k.to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let received = Received {
        host: parts
            .headers
            .get("host")
            .map(|h| h.to_str().unwrap_or_default().to_string())
            .unwrap_or_default(),
        path: parts.uri.to_string(),
        headers: headers.clone(),
        body: body.clone(),
    };
    log.lock().unwrap().push(received);
    let auth = parts
        .headers
        .get("authorization")
        .map(|v| v.to_str().unwrap_or_default().to_string())
        .unwrap_or_default();
    let mut response = hyper::Response::builder();
    let query = parts.uri.query().unwrap_or_default().to_string();
    let text: Vec<u8> = match parts.uri.path() {
        "/echo" => {
            response = response
                .header("x-echo-authorization", auth.clone())
                .header(
                    "x-echo-b64",
                    base64::engine::general_purpose::STANDARD.encode(&auth),
                );
            json!({ "headers": headers, "body": body, "auth": auth })
                .to_string()
                .into_bytes()
        }
        coding @ ("/gzip" | "/deflate" | "/br" | "/zstd") => {
            let coding = &coding[1..];
            response = response.header("content-encoding", coding);
            let text = json!({ "auth": auth, "headers": headers }).to_string();
            compress(coding, text.as_bytes()).await
        }
        "/range" => {
            response = response
                .status(206)
                .header("content-range", format!("bytes 7-9/{}", auth.len()));
            auth.as_bytes().get(7..10).unwrap_or_default().to_vec()
        }
        "/form" => {
            let form = query.strip_prefix("f=").unwrap_or_default();
            let mut out = b"echo: ".to_vec();
            out.extend(encode_form(form, &auth));
            out.extend_from_slice(b" end");
            out
        }
        "/compress" => {
            // A coding nobody decodes any more (LZW): the body passes for text.
            response = response.header("content-encoding", "compress");
            format!("echo {auth}").into_bytes()
        }
        "/store" => b"stored".to_vec(),
        "/stored" => {
            let kept = log
                .lock()
                .unwrap()
                .iter()
                .rev()
                .find(|r| r.path == "/store")
                .and_then(|r| {
                    r.headers
                        .iter()
                        .find(|(k, _)| k == "authorization")
                        .map(|(_, v)| v.clone())
                })
                .unwrap_or_default();
            json!({ "kept": kept }).to_string().into_bytes()
        }
        "/redirect" => {
            response = response
                .status(302)
                .header("location", format!("https://127.0.0.1:{port}/landing"));
            Vec::new()
        }
        _ => b"ok".to_vec(),
    };
    response
        .body(http_body_util::Full::new(text.into()))
        .unwrap()
}

/// `data` compressed in HTTP content coding `coding`.
async fn compress(coding: &str, data: &[u8]) -> Vec<u8> {
    use async_compression::tokio::bufread::{BrotliEncoder, GzipEncoder, ZlibEncoder, ZstdEncoder};
    use tokio::io::AsyncReadExt;
    let mut out = Vec::new();
    match coding {
        "gzip" => GzipEncoder::new(data).read_to_end(&mut out).await,
        "deflate" => ZlibEncoder::new(data).read_to_end(&mut out).await,
        "br" => BrotliEncoder::new(data).read_to_end(&mut out).await,
        _ => ZstdEncoder::new(data).read_to_end(&mut out).await,
    }
    .unwrap();
    out
}

/// The encodings the upstream echoes a value in (written here, apart from the host's list
/// in host/src/runtime/forms.rs, the way servers and libraries write them).
const FORMS: &[&str] = &[
    "json",
    "json-slash",
    "json-u",
    "debug",
    "percent-lower",
    "percent-upper",
    "plus",
    "hex-lower",
    "hex-upper",
    "base64-lines",
    "base64-spaced",
    "base64url",
    "html-decimal",
    "html-hex",
    "utf16le",
    "utf16be",
    "lower",
    "upper",
];

/// `text` in encoding `form` (one of [`FORMS`]).
fn encode_form(form: &str, text: &str) -> Vec<u8> {
    use base64::engine::general_purpose::{STANDARD, URL_SAFE};
    let b = text.as_bytes();
    match form {
        "json" => serde_json::to_string(text).unwrap().into_bytes(),
        "json-slash" => serde_json::to_string(text)
            .unwrap()
            .replace('/', "\\/")
            .into_bytes(),
        "json-u" => text
            .chars()
            .map(|c| match c {
                '<' | '>' | '&' => format!("\\u{:04X}", c as u32),
                '"' => "\\\"".into(),
                c => c.to_string(),
            })
            .collect::<String>()
            .into_bytes(),
        "debug" => format!("{text:?}").into_bytes(),
        "percent-lower" => b
            .iter()
            .map(|x| format!("%{x:02x}"))
            .collect::<String>()
            .into_bytes(),
        "percent-upper" => b
            .iter()
            .map(|&x| {
                if x.is_ascii_alphanumeric() {
                    (x as char).to_string()
                } else {
                    format!("%{x:02X}")
                }
            })
            .collect::<String>()
            .into_bytes(),
        "plus" => b
            .iter()
            .map(|&x| match x {
                b' ' => "+".to_string(),
                x if x.is_ascii_alphanumeric() || b"*-._".contains(&x) => (x as char).to_string(),
                x => format!("%{x:02X}"),
            })
            .collect::<String>()
            .into_bytes(),
        "hex-lower" => b
            .iter()
            .map(|x| format!("{x:02x}"))
            .collect::<String>()
            .into_bytes(),
        "hex-upper" => b
            .iter()
            .map(|x| format!("{x:02X}"))
            .collect::<String>()
            .into_bytes(),
        "base64-lines" => STANDARD
            .encode(b)
            .as_bytes()
            .chunks(16)
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect::<Vec<_>>()
            .join("\r\n")
            .into_bytes(),
        "base64-spaced" => STANDARD
            .encode(b)
            .chars()
            .map(|c| format!("{c} "))
            .collect::<String>()
            .into_bytes(),
        "base64url" => URL_SAFE.encode(b).into_bytes(),
        "html-decimal" => text
            .chars()
            .map(|c| format!("&#{};", c as u32))
            .collect::<String>()
            .into_bytes(),
        "html-hex" => text
            .chars()
            .map(|c| format!("&#X{:X};", c as u32))
            .collect::<String>()
            .into_bytes(),
        "utf16le" => text.encode_utf16().flat_map(u16::to_le_bytes).collect(),
        "utf16be" => text.encode_utf16().flat_map(u16::to_be_bytes).collect(),
        "lower" => text.to_lowercase().into_bytes(),
        "upper" => text.to_uppercase().into_bytes(),
        other => panic!("no form {other}"),
    }
}

/// Whether `body` holds `needle`, whitespace and ASCII case aside.
fn holds(body: &[u8], needle: &[u8]) -> bool {
    let norm = |b: &[u8]| -> Vec<u8> {
        b.iter()
            .filter(|c| !c.is_ascii_whitespace())
            .map(u8::to_ascii_lowercase)
            .collect()
    };
    let (body, needle) = (norm(body), norm(needle));
    !needle.is_empty() && body.windows(needle.len()).any(|w| w == needle.as_slice())
}

/// The part of `form` of `Bearer {value}` that depends on the value alone: the whole of the
/// value's own encoding, or, for base64, the characters inside the header's encoding that
/// no other byte touches.
fn value_part(form: &str, value: &str) -> Vec<u8> {
    if form.starts_with("base64") {
        let whole =
            base64::engine::general_purpose::STANDARD_NO_PAD.encode(format!("Bearer {value}"));
        let first = (8 * 7usize).div_ceil(6);
        let last = 8 * (7 + value.len()) / 6;
        let part = whole[first..last].to_string();
        if form == "base64url" {
            return part.replace('+', "-").replace('/', "_").into_bytes();
        }
        return part.into_bytes();
    }
    let whole = encode_form(form, value);
    match form {
        // Without the quotes.
        "json" | "json-slash" | "debug" => whole[1..whole.len() - 1].to_vec(),
        _ => whole,
    }
}

/// The rolling hash the plain guest searches its memory with (examples/plain-credential).
fn rolling_hash(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0u64, |h, &b| {
        h.wrapping_mul(1_000_003).wrapping_add(u64::from(b))
    })
}

/// Calls a function; its JSON answer and execution id.
async fn call(server: &Server, path: &str) -> (Value, String) {
    let r = server.call(Method::GET, path).send().await.unwrap();
    let status = r.status();
    let id = r
        .headers()
        .get("x-edgeward-execution-id")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    let text = r.text().await.unwrap();
    assert_eq!(status, 200, "{path}: {text}\n{}", server.log());
    (
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
        id,
    )
}

/// Whether a guest's answer is the outbound refusal (`HttpRequestDenied`).
fn denied(got: &Value) -> bool {
    got["error"]
        .as_str()
        .unwrap_or_default()
        .contains("HttpRequestDenied")
}

/// A server trusting the upstream's CA, allowed to reach loopback.
pub(crate) async fn server_for(upstream: &TlsUpstream) -> (Server, tempfile::TempDir) {
    server_for_with(upstream, &[]).await
}

/// [`server_for`] with more flags.
async fn server_for_with(upstream: &TlsUpstream, more: &[&str]) -> (Server, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, &upstream.ca_pem).unwrap();
    let mut extra_args = vec![
        "--outbound-allow-private".into(),
        "--outbound-ca".into(),
        ca.display().to_string(),
    ];
    extra_args.extend(more.iter().map(|a| a.to_string()));
    let server = Server::start_with(Options {
        extra_args,
        ..Options::default()
    })
    .await;
    (server, dir)
}

fn manifest(port: u16, extra: &str) -> String {
    format!(
        "{extra}\n[outbound]\nhosts = [\"localhost:{port}\", \"127.0.0.1:{port}\", \
         \"http://localhost:{port}\"]\n[[outbound.credentials]]\nsecret = \"STRIPE_KEY\"\nhosts = [\"localhost:{port}\"]\n"
    )
}

#[tokio::test]
async fn a_credential_goes_to_its_host_and_its_value_never_reaches_the_guest() {
    let upstream = TlsUpstream::start().await;
    let port = upstream.port;
    let (server, _dir) = server_for(&upstream).await;
    server
        .deploy_with("acme/sdk", "credentials", &manifest(port, ""))
        .await;
    server
        .deploy_with(
            "acme/plain",
            "plain-credential",
            &manifest(port, "[env]\nKEY = \"credential:STRIPE_KEY\""),
        )
        .await;
    let value = format!("sk_live_{}", unique("v"));
    server.plant_value(&value);
    server
        .put_secret("/v1/projects/acme/secrets/STRIPE_KEY", json!(value))
        .await;
    let echo = format!("https://localhost:{port}/echo");

    // Through the SDK: the upstream gets the exact header; the guest gets the echo redacted.
    let (got, id) = call(
        &server,
        &format!("/acme/sdk/?url={echo}&credential=STRIPE_KEY"),
    )
    .await;
    assert_eq!(got["status"], 200, "{got}");
    let sent = upstream.received();
    let auth = |r: &Received| {
        r.headers
            .iter()
            .find(|(k, _)| k == "authorization")
            .map(|(_, v)| v.clone())
    };
    assert_eq!(auth(&sent[0]), Some(format!("Bearer {value}")));
    assert_eq!(sent[0].host, format!("localhost:{port}"));
    assert!(
        !sent[0]
            .headers
            .iter()
            .any(|(k, _)| k == "transfer-encoding"),
        "a GET without a body stays one: {:?}",
        sent[0].headers
    );
    let text = got.to_string();
    assert!(!text.contains(&value), "the echo reached the guest: {text}");
    let b64 = base64::engine::general_purpose::STANDARD.encode(format!("Bearer {value}"));
    assert!(!text.contains(&b64[..b64.len() - 4]), "{text}");
    let headers = got["headers"].as_array().unwrap();
    let header = |name: &str| {
        headers
            .iter()
            .find(|h| h[0] == name)
            .map(|h| h[1].as_str().unwrap().to_string())
            .unwrap_or_default()
    };
    assert_eq!(header("x-echo-authorization"), "Bearer [REDACTED]");
    assert!(header("x-echo-b64").contains("[REDACTED]"), "{got}");
    assert!(
        got["body"].as_str().unwrap().contains("[REDACTED]"),
        "{got}"
    );
    // The record says which credential went where; the audit log counts it.
    let record = server.execution("acme", &id).await;
    assert_eq!(
        record["credentials"]["used"],
        json!([{ "secret": "STRIPE_KEY", "scope": "project", "host": format!("localhost:{port}"),
                 "count": 1 }]),
        "{record}"
    );

    // Reading the attached header back gives the placeholder; an undeclared name is denied.
    let (got, _) = call(&server, "/acme/sdk/?readback=STRIPE_KEY").await;
    assert_eq!(got["attached"], "ok", "{got}");
    assert_eq!(got["headers"][0][0], "authorization");
    assert!(
        got["headers"][0][1]
            .as_str()
            .unwrap()
            .starts_with("edgeward-credential-"),
        "{got}"
    );
    let (got, _) = call(&server, "/acme/sdk/?readback=OTHER").await;
    assert!(
        got["attached"].as_str().unwrap().contains("Denied"),
        "{got}"
    );

    // Without the SDK: the placeholder from the environment, alone or in the format. After
    // reading the echo, the guest's whole memory holds no copy of the value (and does hold
    // the control, a window of what it read).
    let scan = format!("{}:{:x}", value.len(), rolling_hash(value.as_bytes()));
    for put in ["bearer", "alone"] {
        let before = upstream.received().len();
        let (got, _) = call(
            &server,
            &format!("/acme/plain/?url={echo}&put={put}&scan={scan}"),
        )
        .await;
        assert_eq!(got["status"], 200, "{put}: {got}");
        assert_eq!(got["found_control"], true, "the memory search works: {got}");
        assert_eq!(
            got["found_value"], false,
            "{put}: the value is in guest memory"
        );
        assert!(!got.to_string().contains(&value), "{got}");
        let sent = upstream.received();
        assert_eq!(sent.len(), before + 1);
        assert_eq!(
            auth(&sent[before]),
            Some(format!("Bearer {value}")),
            "{put}"
        );
    }

    // A placeholder anywhere else fails the request, and nothing of it reaches the upstream.
    let before = upstream.received().len();
    let other = format!("https://127.0.0.1:{port}/echo");
    for (url, put, reason) in [
        (&other, "bearer", "does not list"),
        (&echo, "body", "in the body"),
        (&echo, "url", "in the URL"),
        (&echo, "other-header", "in header x-api-key"),
        (&echo, "header-name", "in a header's name"),
    ] {
        let (got, id) = call(&server, &format!("/acme/plain/?url={url}&put={put}")).await;
        assert!(denied(&got), "{put} to {url}: {got}");
        let record = server.execution("acme", &id).await;
        let refused = &record["credentials"]["refused"][0];
        assert_eq!(refused["secret"], "STRIPE_KEY", "{record}");
        assert!(
            refused["reason"].as_str().unwrap().contains(reason),
            "{put}: {record}"
        );
    }
    // `edgeward logs` shows where credentials went, and why requests were refused.
    let (ok, out, err) = server.cli(&["logs", "acme/plain", "--limit", "10"]);
    assert!(ok, "{err}");
    assert!(
        out.contains(&format!("credentials=STRIPE_KEY->localhost:{port}x1")),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "refused | a request to 127.0.0.1:{port} with credential STRIPE_KEY's placeholder \
             to a host"
        )) && out.contains("placeholder in the body"),
        "{out}"
    );
    let after = upstream.received();
    for r in &after[before..] {
        // A refused body may have had its headers sent before the body was read; never the
        // placeholder or a credential.
        let everything = format!("{:?} {} {}", r.headers, r.path, r.body);
        assert!(
            !everything.contains("edgeward-credential-") && !everything.contains(&value),
            "{everything}"
        );
    }

    // A redirect is not followed with the credential: the guest sees it, and taking the
    // credential to the other host itself is refused.
    let (got, _) = call(
        &server,
        &format!("/acme/sdk/?url=https://localhost:{port}/redirect&credential=STRIPE_KEY"),
    )
    .await;
    assert_eq!(got["status"], 302, "{got}");
    let (got, _) = call(
        &server,
        &format!("/acme/sdk/?url=https://127.0.0.1:{port}/landing&credential=STRIPE_KEY"),
    )
    .await;
    assert!(denied(&got), "{got}");
    assert!(
        upstream
            .received()
            .iter()
            .all(|r| r.path != "/landing" || auth(r).is_none()),
        "the credential reached the redirect's target"
    );
    // Nor over plain http to the declared host name, which [outbound] allows.
    let (got, id) = call(
        &server,
        &format!("/acme/sdk/?url=http://localhost:{port}/echo&credential=STRIPE_KEY"),
    )
    .await;
    assert!(denied(&got), "{got}");
    let record = server.execution("acme", &id).await;
    assert!(
        record["credentials"]["refused"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("plain http"),
        "{record}"
    );

    // A rotation is seen by the next execution, without a redeploy.
    let rotated = format!("sk_live_{}", unique("rotated"));
    server.plant_value(&rotated);
    server
        .put_secret("/v1/projects/acme/secrets/STRIPE_KEY", json!(rotated))
        .await;
    let before = upstream.received().len();
    let (got, _) = call(
        &server,
        &format!("/acme/sdk/?url={echo}&credential=STRIPE_KEY"),
    )
    .await;
    assert!(!got.to_string().contains(&rotated), "{got}");
    assert_eq!(
        auth(&upstream.received()[before]),
        Some(format!("Bearer {rotated}"))
    );

    // The audit log counts uses and refusals per package and secret (written with the
    // records, just after them; several executions of one batch share a record).
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (status, audit) = server.json(Method::GET, "/v1/audit?project=acme").await;
        assert_eq!(status, 200);
        let rows = audit["entries"].as_array().unwrap().clone();
        let total = |action: &str, actor: &str| -> u64 {
            rows.iter()
                .filter(|r| r["action"] == action && r["actor"] == actor)
                .map(|r| {
                    let detail = r["detail"].as_str().unwrap();
                    assert!(detail.contains(" to "), "{detail}");
                    detail.split(' ').next().unwrap().parse::<u64>().unwrap()
                })
                .sum()
        };
        let counts = [
            total("CREDENTIAL use", "package:acme/sdk"),
            total("CREDENTIAL use", "package:acme/plain"),
            total("CREDENTIAL refused", "package:acme/sdk"),
            total("CREDENTIAL refused", "package:acme/plain"),
        ];
        if counts == [3, 2, 2, 5] {
            let text = audit.to_string();
            assert!(text.contains(&format!("to localhost:{port}")), "{text}");
            assert!(!text.contains(&value) && !text.contains("edgeward-credential-"));
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "credential audit counts {counts:?}: {audit}\n{}",
            server
                .log()
                .lines()
                .filter(|l| l.contains("credential") || l.contains("ERROR"))
                .collect::<Vec<_>>()
                .join("\n")
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn basic_auth_from_a_multi_field_secret_and_declarations_checked_at_deploy() {
    let upstream = TlsUpstream::start().await;
    let port = upstream.port;
    let (server, _dir) = server_for(&upstream).await;
    let basic = format!(
        "[outbound]\nhosts = [\"localhost:{port}\"]\n[[outbound.credentials]]\n\
         secret = \"DB\"\nhosts = [\"localhost:{port}\"]\nformat = \"Basic {{user}}:{{}}\"\n\
         field = \"password\"\n"
    );
    server
        .deploy_with("acme/basic", "credentials", &basic)
        .await;
    let password = format!("pw-{}", unique("db"));
    server.plant_value(&password);
    server
        .put_secret(
            "/v1/projects/acme/packages/basic/secrets/DB",
            json!({ "user": "svc-reports", "password": password }),
        )
        .await;
    let (got, id) = call(
        &server,
        &format!("/acme/basic/?url=https://localhost:{port}/echo&credential=DB"),
    )
    .await;
    assert_eq!(got["status"], 200, "{got}");
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("svc-reports:{password}"))
    );
    let sent = upstream.received();
    assert!(
        sent[0]
            .headers
            .contains(&("authorization".to_string(), expected.clone())),
        "{:?}",
        sent[0].headers
    );
    // The echo comes back redacted: the password inside the base64 of `user:password` too.
    let text = got.to_string();
    assert!(
        !text.contains(&password) && !text.contains(&expected[6..]),
        "{text}"
    );
    assert!(text.contains("Basic c3ZjLXJlcG9ydHM6[REDACTED]"), "{text}");
    let record = server.execution("acme", &id).await;
    assert_eq!(
        record["credentials"]["used"][0]["scope"], "package",
        "{record}"
    );

    // A secret that does not fit the declaration fails the request with a reason, not a value.
    server
        .put_secret(
            "/v1/projects/acme/packages/basic/secrets/DB",
            json!(password),
        )
        .await;
    let (got, _) = call(
        &server,
        &format!("/acme/basic/?url=https://localhost:{port}/echo&credential=DB"),
    )
    .await;
    let error = got["error"].as_str().unwrap();
    assert!(
        error.contains("plain value") && !error.contains(&password),
        "{got}"
    );

    // Declarations that could send a credential somewhere unintended are refused at deploy,
    // with the stable code and a reason; nothing is deployed.
    let outbound = format!("[outbound]\nhosts = [\"localhost:{port}\", \"http://plain.test\"]\n");
    for (manifest, reason) in [
        (
            format!(
                "{outbound}[[outbound.credentials]]\nsecret = \"K\"\nhosts = [\"other.test\"]\n"
            ),
            "not within [outbound] hosts",
        ),
        (
            format!(
                "{outbound}[[outbound.credentials]]\nsecret = \"K\"\nhosts = [\"http://plain.test\"]\n"
            ),
            "https only",
        ),
        (
            format!(
                "{outbound}[[outbound.credentials]]\nsecret = \"K\"\nhosts = [\"localhost:{port}\"]\nheader = \"host\"\n"
            ),
            "set by the host",
        ),
        (
            format!(
                "{outbound}[[outbound.credentials]]\nsecret = \"K\"\nhosts = [\"localhost:{port}\"]\nformat = \"Bearer\"\n"
            ),
            "exactly once",
        ),
        (
            format!(
                "secrets = [\"A\"]\n{outbound}[[outbound.credentials]]\nsecret = \"K\"\nhosts = [\"localhost:{port}\"]\n"
            ),
            "allowlist",
        ),
        (
            format!("[env]\nKEY = \"credential:K\"\n{outbound}"),
            "no [[outbound.credentials]] declares",
        ),
    ] {
        let (status, body) = server
            .try_deploy_with("acme/refused", "credentials", &manifest)
            .await;
        assert_eq!(status, 422, "{manifest}");
        assert_eq!(body["error"]["code"], "bad_manifest", "{body}");
        assert!(
            body["error"]["message"].as_str().unwrap().contains(reason),
            "{manifest}: {body}"
        );
    }
    let (status, _) = server
        .json(Method::GET, "/v1/projects/acme/packages/refused")
        .await;
    assert_eq!(status, 404, "a refused manifest deploys nothing");

    // Without `--outbound-ca`, the upstream's certificate is not trusted: no credential, no
    // request, whatever the manifest says.
    let untrusting = Server::start_with(Options {
        extra_args: vec!["--outbound-allow-private".into()],
        ..Options::default()
    })
    .await;
    untrusting
        .deploy_with("acme/basic", "credentials", &basic)
        .await;
    untrusting
        .put_secret(
            "/v1/projects/acme/packages/basic/secrets/DB",
            json!({ "user": "svc-reports", "password": password }),
        )
        .await;
    let before = upstream.received().len();
    let (got, _) = call(
        &untrusting,
        &format!("/acme/basic/?url=https://localhost:{port}/echo&credential=DB"),
    )
    .await;
    assert!(got["error"].as_str().unwrap().contains("Tls"), "{got}");
    assert_eq!(
        upstream.received().len(),
        before,
        "nothing reached the upstream"
    );
}

#[test]
fn an_unreadable_outbound_ca_stops_the_server_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let not_pem = dir.path().join("ca.pem");
    std::fs::write(&not_pem, "not a certificate\n").unwrap();
    for (path, reason) in [
        (dir.path().join("missing.pem"), "--outbound-ca"),
        (not_pem, "no PEM certificate"),
    ] {
        let out =
            crate::harness::cleared(std::process::Command::new(env!("CARGO_BIN_EXE_edgeward")))
                .args(["serve", "--data-dir"])
                .arg(dir.path().join("data"))
                .arg("--outbound-ca")
                .arg(&path)
                .args(["--listen", "127.0.0.1:0", "--api-listen", "127.0.0.1:0"])
                .output()
                .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{stderr}");
        assert!(stderr.contains(reason), "{stderr}");
    }
}

/// The plain guest's answer: its JSON and the body it read, byte for byte.
fn body_read(got: &Value) -> Vec<u8> {
    hex::decode(got["body_hex"].as_str().unwrap_or_default()).unwrap()
}

#[tokio::test]
async fn compressed_partial_encoded_and_stored_echoes_never_reach_the_guest() {
    let upstream = TlsUpstream::start().await;
    let port = upstream.port;
    let (server, _dir) = server_for(&upstream).await;
    server
        .deploy_with(
            "acme/plain",
            "plain-credential",
            &manifest(port, "[env]\nKEY = \"credential:STRIPE_KEY\""),
        )
        .await;
    server
        .deploy_with("acme/sdk", "credentials", &manifest(port, ""))
        .await;
    // Characters that every encoding writes differently.
    let value = format!("sk_live_A/b+c&d<e>'q={}", unique("f"));
    server.plant_value(&value);
    server
        .put_secret("/v1/projects/acme/secrets/STRIPE_KEY", json!(value))
        .await;
    let scan = format!("{}:{:x}", value.len(), rolling_hash(value.as_bytes()));
    let base = format!("https://localhost:{port}");
    let plain = |path: &str, put: &str, hdr: &str| {
        format!("/acme/plain/?url={base}{path}&put={put}&hdr={hdr}&scan={scan}")
    };
    let last_sent = |path: &str| {
        upstream
            .received()
            .into_iter()
            .rev()
            .find(|r| r.path.starts_with(path))
            .unwrap()
    };
    let header = |r: &Received, name: &str| {
        r.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };

    // The control: a plain echo comes back redacted, and the memory search works.
    let (got, _) = call(&server, &plain("/echo", "bearer", "")).await;
    assert_eq!(got["status"], 200, "{got}");
    assert_eq!(got["found_control"], true, "{got}");
    assert_eq!(got["found_value"], false, "{got}");
    assert!(holds(&body_read(&got), b"[REDACTED]"), "{got}");

    // Compressed answers, whatever the request asked for: the guest reads them decoded and
    // redacted. The upstream was asked for identity, whatever the guest asked for.
    for coding in ["gzip", "deflate", "br", "zstd"] {
        let (got, _) = call(
            &server,
            &plain(
                &format!("/{coding}"),
                "bearer",
                &format!("accept-encoding:{coding}"),
            ),
        )
        .await;
        assert_eq!(got["status"], 200, "{coding}: {got}");
        let body = body_read(&got);
        let text: Value = serde_json::from_slice(&body)
            .unwrap_or_else(|_| panic!("{coding}: not decoded: {got}"));
        assert_eq!(text["auth"], "Bearer [REDACTED]", "{coding}: {text}");
        assert!(!holds(&body, value.as_bytes()), "{coding}");
        assert_eq!(
            got["found_value"], false,
            "{coding}: the value is in guest memory"
        );
        assert_eq!(
            header(&last_sent(&format!("/{coding}")), "accept-encoding").as_deref(),
            Some("identity"),
            "{coding}"
        );
    }

    // A range is not asked for, and a partial answer is refused (and recorded).
    let (got, id) = call(
        &server,
        &plain("/range", "bearer", "range:bytes=7-9;if-range:x"),
    )
    .await;
    assert!(denied(&got), "{got}");
    let sent = last_sent("/range");
    assert!(
        header(&sent, "range").is_none() && header(&sent, "if-range").is_none(),
        "{:?}",
        sent.headers
    );
    let record = server.execution("acme", &id).await;
    let refused = &record["credentials"]["refused"][0];
    assert_eq!(refused["secret"], "*", "{record}");
    assert_eq!(refused["kind"], "response", "{record}");
    assert!(
        refused["reason"]
            .as_str()
            .unwrap()
            .contains("partial response"),
        "{record}"
    );

    // A coding the host cannot undo is refused, not passed through.
    let (got, id) = call(&server, &plain("/compress", "bearer", "")).await;
    assert!(
        got["error"]
            .as_str()
            .unwrap_or_default()
            .contains("HttpResponseContentCoding"),
        "{got}"
    );
    let record = server.execution("acme", &id).await;
    let refused = &record["credentials"]["refused"][0];
    assert_eq!(refused["kind"], "response", "{record}");
    assert!(
        refused["reason"].as_str().unwrap().contains("\"compress\""),
        "{record}"
    );

    // Every echo form: none of the value's bytes come back in it.
    for form in FORMS {
        let (got, _) = call(&server, &plain(&format!("/form?f={form}"), "bearer", "")).await;
        assert_eq!(got["status"], 200, "{form}: {got}");
        let body = body_read(&got);
        let part = value_part(form, &value);
        // The control: the upstream did echo it (in the unredacted form the test computes).
        assert!(
            holds(&encode_form(form, &format!("Bearer {value}")), &part),
            "{form}: the test's own encoding"
        );
        assert!(
            !holds(&body, &part),
            "{form}: the value came back: {}",
            String::from_utf8_lossy(&body)
        );
        assert!(
            holds(&body, b"[REDACTED]"),
            "{form}: {}",
            String::from_utf8_lossy(&body)
        );
        assert_eq!(got["found_value"], false, "{form}");
    }

    // A key the upstream stored and returns on a later request that carries none.
    let (got, _) = call(&server, &plain("/store", "bearer", "")).await;
    assert_eq!(got["status"], 200, "{got}");
    let (got, _) = call(&server, &plain("/stored", "none", "")).await;
    let body = body_read(&got);
    assert!(!holds(&body, value.as_bytes()), "{got}");
    assert!(holds(&body, b"Bearer [REDACTED]"), "{got}");
    assert_eq!(got["found_value"], false, "{got}");

    // Burning the guest's secret-lookup budget first (with the cache cold: the same value
    // written again) does not switch redaction off.
    server
        .put_secret("/v1/projects/acme/secrets/STRIPE_KEY", json!(value))
        .await;
    let (got, _) = call(&server, &format!("/acme/sdk/?burn=60&url={base}/stored")).await;
    assert!(
        got["lookups_refused"].as_u64().unwrap() > 0,
        "the budget was not spent: {got}"
    );
    assert_eq!(got["status"], 200, "{got}");
    let text = got.to_string();
    assert!(!text.contains(&value), "{text}");
    assert!(text.contains("Bearer [REDACTED]"), "{text}");
}

#[tokio::test]
async fn an_execution_whose_credentials_cannot_be_resolved_gets_no_response() {
    let upstream = TlsUpstream::start().await;
    let port = upstream.port;
    let (server, _dir) = server_for(&upstream).await;
    let ghost = format!(
        "[[outbound.credentials]]\nsecret = \"GHOST_KEY\"\nhosts = [\"localhost:{port}\"]\n\
         header = \"x-ghost\"\n"
    );
    let text = manifest(port, "[env]\nKEY = \"credential:STRIPE_KEY\"") + &ghost;
    server
        .deploy_with("acme/ghost", "plain-credential", &text)
        .await;
    let value = format!("sk_live_{}", unique("g"));
    server.plant_value(&value);
    server
        .put_secret("/v1/projects/acme/secrets/STRIPE_KEY", json!(value))
        .await;
    // GHOST_KEY is in no scope: not even a request without a credential goes, since its
    // answer could hold a value redaction does not know.
    for put in ["bearer", "none"] {
        let (got, id) = call(
            &server,
            &format!("/acme/ghost/?url=https://localhost:{port}/stored&put={put}"),
        )
        .await;
        assert!(
            got["error"]
                .as_str()
                .unwrap_or_default()
                .contains("GHOST_KEY"),
            "{put}: {got}"
        );
        let record = server.execution("acme", &id).await;
        let refused = &record["credentials"]["refused"][0];
        assert_eq!(refused["secret"], "GHOST_KEY", "{record}");
        assert_eq!(refused["kind"], "unresolved", "{record}");
        assert!(
            refused["reason"]
                .as_str()
                .unwrap()
                .contains("could not be resolved"),
            "{record}"
        );
    }
    assert!(upstream.received().is_empty(), "a request went out");
}

/// SIGHUP reads `--outbound-ca` again: a bundle that now holds the upstream's CA is trusted
/// from the next execution on; a file that no longer reads keeps the bundle in use, and the
/// log says why.
#[tokio::test]
async fn sighup_rereads_the_outbound_ca_and_a_bad_file_keeps_the_old_one() {
    let upstream = TlsUpstream::start().await;
    let port = upstream.port;
    let stranger = TlsUpstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, &stranger.ca_pem).unwrap();
    let server = Server::start_with(Options {
        extra_args: vec![
            "--outbound-allow-private".into(),
            "--outbound-ca".into(),
            ca.display().to_string(),
        ],
        ..Options::default()
    })
    .await;
    server
        .deploy_with(
            "acme/fetch",
            "fetch",
            &format!("[outbound]\nhosts = [\"localhost:{port}\"]\n"),
        )
        .await;
    let fetch = format!("/acme/fetch/?url=https://localhost:{port}/echo");
    let (got, _) = call(&server, &fetch).await;
    assert!(
        got["error"].as_str().unwrap_or_default().contains("Tls"),
        "a CA the bundle does not hold: {got}"
    );
    let reloads = |server: &Server| server.log().matches("configuration reloaded").count();
    let hup_and_wait = |server: &Server, marker: &'static str| {
        let before = server.log().matches(marker).count();
        server.signal("-HUP");
        let deadline = Instant::now() + Duration::from_secs(10);
        while server.log().matches(marker).count() == before {
            assert!(Instant::now() < deadline, "no {marker:?}: {}", server.log());
            std::thread::sleep(Duration::from_millis(50));
        }
    };

    std::fs::write(&ca, &upstream.ca_pem).unwrap();
    hup_and_wait(&server, "configuration reloaded");
    let (got, _) = call(&server, &fetch).await;
    assert_eq!(got["status"], 200, "the reloaded CA is trusted: {got}");

    let reloaded = reloads(&server);
    std::fs::write(&ca, "not a certificate\n").unwrap();
    hup_and_wait(&server, "nothing changed");
    let log = server.log();
    assert!(log.contains("no PEM certificate"), "the reason: {log}");
    assert_eq!(
        reloads(&server),
        reloaded,
        "a bad bundle reloaded something"
    );
    let (got, _) = call(&server, &fetch).await;
    assert_eq!(got["status"], 200, "the bundle in use is kept: {got}");
}

/// `acme/sdk` (the credentials example, allowed to the upstream at `port`) and a project
/// secret STRIPE_KEY for it to attach.
async fn sdk_with_stripe_key(server: &Server, port: u16, tag: &str) {
    server
        .deploy_with("acme/sdk", "credentials", &manifest(port, ""))
        .await;
    server
        .put_secret(
            "/v1/projects/acme/secrets/STRIPE_KEY",
            json!(format!("sk_live_{}", unique(tag))),
        )
        .await;
}

/// Outbound connections are pooled: a function calling one API on every request opens one
/// TCP and TLS connection, not one per request (with and without a credential attached).
#[tokio::test]
async fn outbound_connections_are_reused_across_executions() {
    let upstream = TlsUpstream::start().await;
    let port = upstream.port;
    let (server, _dir) = server_for(&upstream).await;
    sdk_with_stripe_key(&server, port, "reuse").await;
    let echo = format!("https://localhost:{port}/echo");
    for i in 0..6 {
        let credential = if i % 2 == 0 {
            "&credential=STRIPE_KEY"
        } else {
            ""
        };
        call(&server, &format!("/acme/sdk/?url={echo}{credential}")).await;
    }
    assert_eq!(
        upstream.received().len(),
        6,
        "every request reached the upstream"
    );
    assert_eq!(
        upstream
            .connections
            .load(std::sync::atomic::Ordering::SeqCst),
        1,
        "six requests, one after another, should share one connection"
    );
}

/// A function that only fetches (`edgeward_sdk::fetch`, no `with_credential`) imports nothing
/// of Edgeward's: the SDK's credential code is not linked in, so the same component runs on
/// any wasi-http host (`bench/outbound.sh` runs it on `wasmtime serve` as the peer). One that
/// attaches credentials imports the interface.
#[test]
fn a_function_that_only_fetches_imports_nothing_of_edgewards() {
    let holds = |name: &str, needle: &str| {
        let bytes = std::fs::read(crate::harness::guest(name)).unwrap();
        bytes.windows(needle.len()).any(|w| w == needle.as_bytes())
    };
    assert!(holds("credentials", "edgeward:platform/credentials"));
    assert!(!holds("fetch", "edgeward:platform"));
    assert!(holds("fetch", "wasi:http/outgoing-handler"));
}

/// Each data-plane worker keeps its own pool of upstream connections, driven on its own
/// runtime. An idle one must not hold the worker open when it drains: SIGTERM with a 25 s
/// drain and an idle pooled connection exits 0 long before the drain's end (the worker drops
/// its pools once its requests are done).
#[tokio::test]
async fn an_idle_upstream_connection_does_not_hold_a_draining_server() {
    let upstream = TlsUpstream::start().await;
    let port = upstream.port;
    let (mut server, _dir) = server_for_with(&upstream, &["--drain-seconds", "25"]).await;
    sdk_with_stripe_key(&server, port, "drain").await;
    let (got, _) = call(
        &server,
        &format!("/acme/sdk/?url=https://localhost:{port}/echo"),
    )
    .await;
    assert_eq!(got["status"], 200, "{got}");
    assert_eq!(
        upstream
            .connections
            .load(std::sync::atomic::Ordering::SeqCst),
        1
    );
    let stopping = std::time::Instant::now();
    let stopped = tokio::task::spawn_blocking(move || server.stop())
        .await
        .unwrap();
    assert!(stopped, "SIGTERM exits 0");
    assert!(
        stopping.elapsed() < std::time::Duration::from_secs(15),
        "shutdown waited {:?} with a 25 s drain",
        stopping.elapsed()
    );
}
