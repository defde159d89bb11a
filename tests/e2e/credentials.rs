//! Credentials the host attaches to outbound requests (docs/credentials.md): against a
//! loopback HTTPS upstream whose CA the test makes and the server trusts through
//! `--outbound-ca`. The upstream records what it receives and echoes it back, raw and in
//! base64, as a careless or hostile API would.

use crate::harness::{Options, Server, unique};
use base64::Engine as _;
use reqwest::Method;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One request the upstream received.
#[derive(Debug, Clone)]
struct Received {
    host: String,
    path: String,
    headers: Vec<(String, String)>,
    body: String,
}

/// A loopback HTTPS server for `localhost` and `127.0.0.1`, with a CA made for this run.
/// `/echo` answers with the request (headers and body) in its body, and the `authorization`
/// header raw and base64-encoded in response headers; `/redirect` sends the caller to
/// `https://127.0.0.1:PORT/landing`; anything else answers `ok`. A request whose body cannot
/// be read whole is not recorded.
struct TlsUpstream {
    port: u16,
    ca_pem: String,
    received: Arc<Mutex<Vec<Received>>>,
    task: tokio::task::JoinHandle<()>,
}

impl TlsUpstream {
    async fn start() -> TlsUpstream {
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
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    break;
                };
                let (acceptor, log) = (acceptor.clone(), log.clone());
                let _ = stream.set_nodelay(true);
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(stream).await else {
                        return;
                    };
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
            task,
        }
    }

    fn received(&self) -> Vec<Received> {
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
    let text = match parts.uri.path() {
        "/echo" => {
            response = response
                .header("x-echo-authorization", auth.clone())
                .header(
                    "x-echo-b64",
                    base64::engine::general_purpose::STANDARD.encode(&auth),
                );
            json!({ "headers": headers, "body": body, "auth": auth }).to_string()
        }
        "/redirect" => {
            response = response
                .status(302)
                .header("location", format!("https://127.0.0.1:{port}/landing"));
            String::new()
        }
        _ => "ok".into(),
    };
    response
        .body(http_body_util::Full::new(text.into()))
        .unwrap()
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
async fn server_for(upstream: &TlsUpstream) -> (Server, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, &upstream.ca_pem).unwrap();
    let server = Server::start_with(Options {
        extra_args: vec![
            "--outbound-allow-private".into(),
            "--outbound-ca".into(),
            ca.display().to_string(),
        ],
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
