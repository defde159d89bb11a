//! A loopback HTTPS upstream for `bench/credentials.sh`: a CA and a certificate for
//! `localhost` made at start, the CA written to `DIR/ca.pem`, `port N` printed when ready.
//! Every request is answered with a small JSON body that echoes the `authorization` header
//! (as a careless API would, so the bench pays for redacting it).
//!
//! ```sh
//! cargo run --release -p edgeward-bench --example tls_upstream -- DIR
//! ```

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use std::io::Write;
use std::sync::Arc;

#[tokio::main]
async fn main() {
    let dir = std::env::args().nth(1).expect("usage: tls_upstream DIR");
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["localhost".to_string()])
        .unwrap()
        .signed_by(&key, &ca)
        .unwrap();
    std::fs::write(format!("{dir}/ca.pem"), ca.pem()).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(
        vec![leaf.der().clone()],
        rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der()).unwrap(),
    )
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    println!("port {}", listener.local_addr().unwrap().port());
    std::io::stdout().flush().unwrap();
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let acceptor = acceptor.clone();
        // Without it, Nagle holds the response's second TLS record for the client's delayed
        // ACK (40 ms), and the bench measures that.
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let Ok(tls) = acceptor.accept(stream).await else {
                return;
            };
            let service = hyper::service::service_fn(|req: hyper::Request<_>| {
                let auth = req
                    .headers()
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("none")
                    .to_string();
                async move {
                    let body = format!(
                        "{{\"id\":\"ch_3PqX1bLkdIwHu7ix0a1b2c3d\",\"amount\":2000,\"currency\":\
                         \"usd\",\"status\":\"succeeded\",\"seen\":\"{auth}\"}}"
                    );
                    Ok::<_, std::convert::Infallible>(hyper::Response::new(
                        http_body_util::Full::new(bytes::Bytes::from(body)),
                    ))
                }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                .await;
        });
    }
}
