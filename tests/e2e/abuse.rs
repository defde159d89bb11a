//! Abuse and fair sharing: what a tenant, or anyone on the network, can do to the platform and
//! to other tenants, reproduced as it was tried, and shown to be refused or contained.

use crate::harness::{Options, Server, Upstream};
use reqwest::Method;
use serde_json::Value;

async fn fetch(server: &Server, target: &str, url: &str) -> Value {
    let r = server
        .call(Method::GET, &format!("/{target}/?url={url}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

#[tokio::test]
async fn outbound_to_private_addresses_is_denied_whatever_the_manifest_says() {
    let upstream = Upstream::start().await;
    let port = upstream.port;
    let server = Server::start().await;
    let api_port = server.api.rsplit(':').next().unwrap().to_string();
    // Everything the attack allowlisted, and then some.
    let manifest = format!(
        "[outbound]\nhosts = [\"http://127.0.0.1:{port}\", \"http://localhost:{port}\", \
         \"http://127.0.0.1:{api_port}\", \"http://169.254.169.254\", \
         \"http://metadata.google.internal\", \"http://10.0.0.1\", \"http://*.internal\", \
         \"http://[::1]:{port}\", \"http://[::ffff:127.0.0.1]:{port}\", \"http://0.0.0.0:{port}\", \
         \"127.0.0.1:{port}\"]\n"
    );
    server.deploy_with("acme/fetch", "fetch", &manifest).await;
    for url in [
        format!("http://127.0.0.1:{port}/"),
        // A name that resolves to loopback: refused by the address it resolves to.
        format!("http://localhost:{port}/"),
        // The control plane, over loopback.
        format!("http://127.0.0.1:{api_port}/v1/health"),
        "http://169.254.169.254/latest/meta-data/".to_string(),
        "http://metadata.google.internal/computeMetadata/v1/".to_string(),
        "http://10.0.0.1/".to_string(),
        format!("http://[::1]:{port}/"),
        format!("http://[::ffff:127.0.0.1]:{port}/"),
        format!("http://0.0.0.0:{port}/"),
    ] {
        let got = fetch(&server, "acme/fetch", &url).await;
        let error = got["error"].as_str().unwrap_or_default();
        assert!(error.contains("DestinationIpProhibited"), "{url}: {got}");
    }
    // A bare pattern means https: plain http to it is not allowed at all.
    let got = fetch(&server, "acme/fetch", &format!("http://127.0.0.1:{port}/x")).await;
    assert!(got["error"].is_string(), "{got}");
    assert_eq!(
        upstream.hits.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "nothing reached the loopback service"
    );

    // Positive control: the operator allows private destinations, and the same guest reaches it.
    let open = Server::start_with(Options {
        extra_args: vec!["--outbound-allow-private".into()],
        ..Options::default()
    })
    .await;
    open.deploy_with("acme/fetch", "fetch", &manifest).await;
    let got = fetch(&open, "acme/fetch", &format!("http://localhost:{port}/p")).await;
    assert_eq!(got["body"], "upstream says hi", "{got}");
    assert_eq!(upstream.hits.load(std::sync::atomic::Ordering::SeqCst), 1);
}
