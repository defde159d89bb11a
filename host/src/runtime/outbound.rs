//! Outbound HTTP from guests: only to the hosts a package's manifest allows, at most so many
//! requests per execution. Anything else fails in the guest with `HTTP-request-denied`.
//!
//! Patterns name a host (`api.example.com`, `*.example.com`), optionally a port, and optionally
//! a scheme (`http://…`); without one, only `https` is allowed. Whatever the manifest says, the
//! platform refuses destinations that *resolve* to loopback, link-local (cloud metadata),
//! private, CGNAT, unique-local, multicast or reserved addresses, and the metadata host names,
//! unless the operator allows private destinations (`--outbound-allow-private`). The address
//! that was checked is the one connected to (no second lookup a rebinding DNS server could
//! answer differently), and TLS verifies the host name the guest asked for.

pub use crate::manifest::HostPattern;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;
use wasmtime_wasi_http::Error;

/// Host names that lead to the platform itself or its cloud's metadata service, refused
/// whatever they resolve to (unless private destinations are allowed).
/// (`localhost` itself is left to the address check: it resolves to loopback.)
const DENIED_NAMES: &[&str] = &[
    "metadata",
    "metadata.google.internal",
    "metadata.goog",
    "instance-data",
    "instance-data.ec2.internal",
];

/// Whether `host` (a name) is refused by name.
pub(super) fn denied_name(host: &str) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    DENIED_NAMES.contains(&host.as_str()) || host.ends_with(".localhost")
}

/// Whether `ip` is an address no guest may reach: loopback, unspecified, private (RFC 1918),
/// link-local (169.254/16: cloud metadata), CGNAT (100.64/10), benchmarking, IETF protocol
/// assignments, multicast, broadcast and reserved; for IPv6 also unique-local (fc00::/7),
/// link-local, site-local, and IPv4 addresses mapped, compatible or translated (NAT64) into v6.
pub fn denied_ip(ip: IpAddr) -> bool {
    metadata_ip(ip)
        || match ip {
            IpAddr::V4(v4) => denied_v4(v4),
            IpAddr::V6(v6) => {
                if let Some(v4) = embedded_v4(v6) {
                    return denied_v4(v4);
                }
                let s = v6.segments();
                v6.is_loopback()
                    || v6.is_unspecified()
                    || v6.is_multicast()
                    || (s[0] & 0xfe00) == 0xfc00 // unique local
                    || (s[0] & 0xffc0) == 0xfe80 // link local
                    || (s[0] & 0xffc0) == 0xfec0 // site local (deprecated)
                    || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
                    || (s[0] == 0x2001 && s[1] == 0) // Teredo: tunnels to anywhere
                    || (s[0] == 0x64 && s[1] == 0xff9b && s[2] == 1) // local-use NAT64
            }
        }
}

/// The IPv4 address carried inside an IPv6 one: mapped (`::ffff:a.b.c.d`), compatible
/// (`::a.b.c.d`), well-known NAT64 (`64:ff9b::/96`) or 6to4 (`2002:aabb:ccdd::/16`).
fn embedded_v4(v6: std::net::Ipv6Addr) -> Option<Ipv4Addr> {
    if let Some(v4) = v6.to_ipv4_mapped() {
        return Some(v4);
    }
    let s = v6.segments();
    let o = v6.octets();
    if (s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0, 0, 0, 0])
        || (s[..6] == [0, 0, 0, 0, 0, 0] && !v6.is_loopback() && !v6.is_unspecified())
    {
        return Some(Ipv4Addr::new(o[12], o[13], o[14], o[15]));
    }
    if s[0] == 0x2002 {
        return Some(Ipv4Addr::new(o[2], o[3], o[4], o[5]));
    }
    None
}

/// Cloud metadata and host-agent services, refused even when private destinations are
/// allowed: link-local (169.254/16, fe80::/10, where AWS, GCP, Azure and others answer with
/// credentials), Azure's WireServer (168.63.129.16), AWS's IPv6 metadata (fd00:ec2::254).
pub fn metadata_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_link_local() || v4 == Ipv4Addr::new(168, 63, 129, 16),
        IpAddr::V6(v6) => {
            if let Some(v4) = embedded_v4(v6) {
                return metadata_ip(IpAddr::V4(v4));
            }
            (v6.segments()[0] & 0xffc0) == 0xfe80
                || v6 == std::net::Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254)
        }
    }
}

fn denied_v4(ip: Ipv4Addr) -> bool {
    let o = ip.octets();
    ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || o[0] == 0 // "this network"
        || (o[0] == 100 && (o[1] & 0xc0) == 64) // CGNAT 100.64/10
        || (o[0] == 192 && o[1] == 0 && o[2] == 0) // IETF protocol assignments
        || (o[0] == 198 && (o[1] & 0xfe) == 18) // benchmarking 198.18/15
        || o[0] >= 240 // reserved
}

/// The outbound policy of one execution.
#[derive(Debug, Clone, Default)]
pub struct Outbound {
    allowed: Arc<[HostPattern]>,
    max_requests: u32,
    sent: Arc<AtomicU32>,
    /// Whether private destinations (loopback, RFC 1918…) are allowed: an operator's choice.
    allow_private: bool,
    /// Set when the execution tried more requests than it may; the host then stops it.
    pub over_limit: Arc<AtomicBool>,
    /// The package's credentials, for this execution (none declared: `None`).
    pub credentials: Option<Arc<super::credentials::CredentialSession>>,
    /// The host's pooled client (TLS with the web PKI roots and the operator's
    /// `--outbound-ca`).
    client: Option<Arc<super::client::OutboundClient>>,
    /// Where the execution's requests went or were refused going, for its record.
    hosts: Arc<std::sync::Mutex<Vec<crate::store::OutboundHost>>>,
}

/// The most hosts one execution's record lists (the rest are counted under `…`).
const MAX_HOSTS: usize = 32;

impl Outbound {
    /// A policy allowing `allowed`, at most `max_requests` per execution, private
    /// destinations only if `allow_private`.
    pub fn new(allowed: Arc<[HostPattern]>, max_requests: u32, allow_private: bool) -> Outbound {
        Outbound {
            allowed,
            max_requests,
            sent: Arc::default(),
            allow_private,
            over_limit: Arc::default(),
            credentials: None,
            client: None,
            hosts: Arc::default(),
        }
    }

    /// Where this execution's requests went, by host: what its record keeps.
    pub fn hosts(&self) -> Vec<crate::store::OutboundHost> {
        std::mem::take(
            &mut *self
                .hosts
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }

    /// Counts a request to `host` (sent, or refused).
    fn note(&self, host: &str, sent: bool) {
        let mut hosts = self
            .hosts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let i = match hosts.iter().position(|h| h.host == host) {
            Some(i) => i,
            None if hosts.len() < MAX_HOSTS => {
                hosts.push(crate::store::OutboundHost {
                    host: host.to_string(),
                    ..Default::default()
                });
                hosts.len() - 1
            }
            None => match hosts.iter().position(|h| h.host == "…") {
                Some(i) => i,
                None => {
                    hosts.push(crate::store::OutboundHost {
                        host: "…".into(),
                        ..Default::default()
                    });
                    hosts.len() - 1
                }
            },
        };
        let h = &mut hosts[i];
        if sent {
            h.sent = h.sent.saturating_add(1);
        } else {
            h.refused = h.refused.saturating_add(1);
        }
    }

    /// With this execution's credentials and the host's pooled client.
    pub fn with(
        mut self,
        credentials: Option<Arc<super::credentials::CredentialSession>>,
        client: Arc<super::client::OutboundClient>,
    ) -> Outbound {
        self.credentials = credentials;
        self.client = Some(client);
        self
    }

    fn admit(&self, uri: &http::Uri) -> bool {
        let Some(host) = uri.host() else {
            return false;
        };
        let https = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => {
                self.note(host, false);
                return false;
            }
        };
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        let shown = match uri.port_u16() {
            Some(p) => format!("{host}:{p}"),
            None => host.to_string(),
        };
        if !self
            .allowed
            .iter()
            .any(|p| p.matches_scheme(https, host, port))
        {
            self.note(&shown, false);
            return false;
        }
        if self.sent.fetch_add(1, Ordering::Relaxed) >= self.max_requests {
            self.over_limit.store(true, Ordering::Relaxed);
            self.note(&shown, false);
            return false;
        }
        self.note(&shown, true);
        true
    }
}

type Io = Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>;

impl wasmtime_wasi_http::WasiHttpHooks for Outbound {
    fn send_request(
        &mut self,
        request: http::Request<wasmtime_wasi_http::WasiBody>,
        options: Option<wasmtime_wasi_http::RequestOptions>,
        _fut: Io,
    ) -> Box<
        dyn Future<
                Output = wasmtime_wasi_http::Result<(
                    http::Response<wasmtime_wasi_http::WasiBody>,
                    Io,
                )>,
            > + Send,
    > {
        if !self.admit(request.uri()) {
            tracing::debug!(uri = %request.uri().host().unwrap_or_default(), "outbound request denied");
            return Box::new(async { Err(Error::HttpRequestDenied) });
        }
        let allow_private = self.allow_private;
        let client = self.client.clone();
        let Some(session) = self.credentials.clone() else {
            return Box::new(async move { send(request, options, allow_private, client).await });
        };
        // A package with credentials: placeholders are checked (and the declared ones filled
        // in) before anything is sent, the body is checked as it streams, and the response is
        // checked, decoded and redacted of every credential's value.
        let plan = match session.prepare(&request) {
            Ok(plan) => plan,
            Err(e) => return Box::new(async move { Err(e) }),
        };
        Box::new(async move {
            let mut request = request;
            let uri = request.uri().clone();
            // Every credential resolved before anything goes: no response is read that could
            // not be redacted of all of them.
            session.ready(&uri).await?;
            session.apply(&plan, &mut request)?;
            let refused = Arc::new(AtomicBool::new(false));
            let request =
                request.map(|body| session.guard_body(body, uri.clone(), refused.clone()));
            match send(request, options, allow_private, client).await {
                Ok((response, io)) => Ok((session.receive(&uri, response)?, io)),
                Err(_) if refused.load(Ordering::Relaxed) => Err(Error::HttpRequestDenied),
                Err(e) => Err(e),
            }
        })
    }
}

/// Sends an admitted request through the host's pooled client (`runtime::client`: the
/// address checks happen where connections are made), within the guest's first-byte timeout.
async fn send(
    request: http::Request<wasmtime_wasi_http::WasiBody>,
    options: Option<wasmtime_wasi_http::RequestOptions>,
    allow_private: bool,
    client: Option<Arc<super::client::OutboundClient>>,
) -> wasmtime_wasi_http::Result<(http::Response<wasmtime_wasi_http::WasiBody>, Io)> {
    use http_body_util::BodyExt;
    let client =
        client.ok_or_else(|| Error::InternalError(Some("no outbound HTTP client".into())))?;
    let first_byte_timeout = options
        .and_then(|o| o.first_byte_timeout)
        .unwrap_or(Duration::from_secs(600));
    let response = client
        .send(request, allow_private, first_byte_timeout)
        .await?;
    // The pool drives the connection; there is nothing more to wait for.
    let io: Io = Box::new(async { Ok(()) });
    Ok((
        response.map(|body| body.map_err(Error::from).boxed_unsync()),
        io,
    ))
}

/// The TLS client configuration for outbound requests: the web PKI roots, and `extra` (the
/// operator's `--outbound-ca`, for internal CAs); ring.
pub fn tls_config(
    extra: &[rustls::pki_types::CertificateDer<'static>],
) -> Result<Arc<rustls::ClientConfig>, String> {
    let mut roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.into(),
    };
    for cert in extra {
        roots
            .add(cert.clone())
            .map_err(|e| format!("a certificate of the outbound CA bundle is not usable: {e}"))?;
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| format!("TLS client configuration: {e}"))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Reads a PEM bundle of CA certificates (`--outbound-ca`).
pub fn read_ca_bundle(
    path: &std::path::Path,
) -> Result<Vec<rustls::pki_types::CertificateDer<'static>>, String> {
    use rustls::pki_types::pem::PemObject;
    let certs: Vec<_> = rustls::pki_types::CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("--outbound-ca {}: {e}", path.display()))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("--outbound-ca {}: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "--outbound-ca {}: no PEM certificate (-----BEGIN CERTIFICATE-----) in it",
            path.display()
        ));
    }
    tls_config(&certs).map_err(|e| format!("--outbound-ca {}: {e}", path.display()))?;
    Ok(certs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns() {
        let exact = HostPattern::parse("API.example.com").unwrap();
        assert!(exact.matches("api.example.com", 443) && exact.matches("api.example.com", 80));
        assert!(!exact.matches("evil.api.example.com", 443));
        let wild = HostPattern::parse("*.example.org:443").unwrap();
        assert!(wild.matches("a.example.org", 443) && wild.matches("a.b.example.org", 443));
        assert!(!wild.matches("example.org", 443) && !wild.matches("a.example.org", 80));
        assert!(!wild.matches("badexample.org", 443));
        let local = HostPattern::parse("127.0.0.1:8080").unwrap();
        assert!(local.matches("127.0.0.1", 8080) && !local.matches("127.0.0.1", 8081));
        // https unless the pattern names http.
        assert!(exact.matches_scheme(true, "api.example.com", 443));
        assert!(
            !exact.matches_scheme(true, "api.example.com", 22),
            "default port only"
        );
        assert!(!exact.matches_scheme(false, "api.example.com", 80));
        let plain = HostPattern::parse("http://api.example.com:8080").unwrap();
        assert!(plain.matches_scheme(false, "api.example.com", 8080));
        assert!(!plain.matches_scheme(true, "api.example.com", 8080));
        let v6 = HostPattern::parse("http://[::1]:8080").unwrap();
        assert!(v6.matches_scheme(false, "[::1]", 8080));
        // A credential's hosts must lie within the outbound ones.
        let outer = HostPattern::parse("*.example.com").unwrap();
        let within = |p: &str| HostPattern::parse(p).unwrap().within(&outer);
        assert!(within("a.example.com") && within("*.a.example.com"));
        assert!(within("a.example.com:443") && within("*.example.com"));
        assert!(!within("example.com") && !within("a.example.com:8443"));
        assert!(!within("http://a.example.com") && !within("a.badexample.com"));
        assert!(!outer.within(&HostPattern::parse("a.example.com").unwrap()));
        for bad in [
            "",
            "*.",
            "a b",
            "host:port",
            "ftp://x",
            "a/b",
            "[::1",
            "[zz]:1",
        ] {
            assert!(HostPattern::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn counts_and_flags_the_limit() {
        let o = Outbound::new(
            Arc::from(vec![HostPattern::parse("x.test").unwrap()]),
            2,
            false,
        );
        let uri: http::Uri = "https://x.test/a".parse().unwrap();
        assert!(o.admit(&uri) && o.admit(&uri));
        assert!(!o.over_limit.load(Ordering::Relaxed));
        assert!(!o.admit(&uri));
        assert!(o.over_limit.load(Ordering::Relaxed));
        let other: http::Uri = "http://y.test/".parse().unwrap();
        assert!(!Outbound::new(Arc::from(vec![]), 5, false).admit(&other));
        // A bare pattern does not admit plain http.
        let o = Outbound::new(
            Arc::from(vec![HostPattern::parse("x.test").unwrap()]),
            2,
            false,
        );
        assert!(!o.admit(&"http://x.test/".parse().unwrap()));
    }

    #[test]
    fn private_and_metadata_destinations_are_denied() {
        for denied in [
            "127.0.0.1",
            "127.9.9.9",
            "0.0.0.0",
            "10.0.0.1",
            "172.16.5.4",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "100.127.255.255",
            "224.0.0.1",
            "255.255.255.255",
            "198.18.0.1",
            "240.0.0.1",
            "::1",
            "::",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a9fe:a9fe",
            "::7f00:1",
            "ff02::1",
        ] {
            assert!(denied_ip(denied.parse().unwrap()), "{denied}");
        }
        for allowed in ["93.184.216.34", "8.8.8.8", "100.128.0.1", "2606:4700::1111"] {
            assert!(!denied_ip(allowed.parse().unwrap()), "{allowed}");
        }
        for more in [
            "2002:7f00:1::1",
            "2001:0:4136:e378::1",
            "64:ff9b:1::a00:1",
            "168.63.129.16",
        ] {
            assert!(denied_ip(more.parse().unwrap()), "{more}");
        }
        // Metadata stays refused when private destinations are allowed.
        for meta in [
            "169.254.169.254",
            "fe80::1",
            "fd00:ec2::254",
            "::ffff:169.254.169.254",
        ] {
            assert!(metadata_ip(meta.parse().unwrap()), "{meta}");
        }
        assert!(!metadata_ip("10.0.0.1".parse().unwrap()));
        for name in [
            "a.localhost",
            "A.LOCALHOST.",
            "metadata.google.internal",
            "metadata",
        ] {
            assert!(denied_name(name), "{name}");
        }
        assert!(!denied_name("api.example.com"));
    }
}
