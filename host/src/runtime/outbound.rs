//! Outbound HTTP from guests: only to the hosts a package's manifest allows, at most so many
//! requests per execution. Anything else fails in the guest with `HTTP-request-denied`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

/// One allowed destination: `host`, `*.suffix`, optionally with `:port`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPattern {
    host: String,
    wildcard: bool,
    port: Option<u16>,
}

impl HostPattern {
    /// Parses `api.example.com`, `*.example.com`, `127.0.0.1:8080`, `*.example.org:443`.
    pub fn parse(s: &str) -> Result<HostPattern, String> {
        let s = s.trim().to_ascii_lowercase();
        let (host, port) = match s.rsplit_once(':') {
            Some((h, p)) if !h.is_empty() && !h.ends_with(':') => (
                h.to_string(),
                Some(
                    p.parse::<u16>()
                        .map_err(|_| format!("invalid port in {s:?}"))?,
                ),
            ),
            _ => (s.clone(), None),
        };
        let (host, wildcard) = match host.strip_prefix("*.") {
            Some(rest) => (rest.to_string(), true),
            None => (host, false),
        };
        let valid = !host.is_empty()
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
            && !host.starts_with('.')
            && !host.ends_with('.');
        if !valid {
            return Err(format!(
                "invalid outbound host {s:?}: use host, *.suffix, optionally :port"
            ));
        }
        Ok(HostPattern {
            host,
            wildcard,
            port,
        })
    }

    /// Whether `host:port` is allowed by this pattern.
    pub fn matches(&self, host: &str, port: u16) -> bool {
        let host = host.to_ascii_lowercase();
        let host_ok = if self.wildcard {
            host.len() > self.host.len()
                && host.ends_with(&self.host)
                && host.as_bytes()[host.len() - self.host.len() - 1] == b'.'
        } else {
            host == self.host
        };
        host_ok && self.port.is_none_or(|p| p == port)
    }
}

/// The outbound policy of one execution.
#[derive(Debug, Clone, Default)]
pub struct Outbound {
    allowed: Arc<[HostPattern]>,
    max_requests: u32,
    sent: Arc<AtomicU32>,
    /// Set when the execution tried more requests than it may; the host then stops it.
    pub over_limit: Arc<AtomicBool>,
}

impl Outbound {
    /// A policy allowing `allowed`, at most `max_requests` per execution.
    pub fn new(allowed: Arc<[HostPattern]>, max_requests: u32) -> Outbound {
        Outbound {
            allowed,
            max_requests,
            sent: Arc::default(),
            over_limit: Arc::default(),
        }
    }

    fn admit(&self, uri: &http::Uri) -> bool {
        let Some(host) = uri.host() else {
            return false;
        };
        let port = uri
            .port_u16()
            .unwrap_or(if uri.scheme_str() == Some("https") {
                443
            } else {
                80
            });
        if !self.allowed.iter().any(|p| p.matches(host, port)) {
            return false;
        }
        if self.sent.fetch_add(1, Ordering::Relaxed) >= self.max_requests {
            self.over_limit.store(true, Ordering::Relaxed);
            return false;
        }
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
            return Box::new(async { Err(wasmtime_wasi_http::Error::HttpRequestDenied) });
        }
        Box::new(async move {
            use http_body_util::BodyExt;
            let (response, io) = wasmtime_wasi_http::default_send_request(request, options).await?;
            Ok((response.map(BodyExt::boxed_unsync), Box::new(io) as Io))
        })
    }
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
        for bad in ["", "*.", "a b", "host:port", "http://x", "a/b"] {
            assert!(HostPattern::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn counts_and_flags_the_limit() {
        let o = Outbound::new(Arc::from(vec![HostPattern::parse("x.test").unwrap()]), 2);
        let uri: http::Uri = "http://x.test/a".parse().unwrap();
        assert!(o.admit(&uri) && o.admit(&uri));
        assert!(!o.over_limit.load(Ordering::Relaxed));
        assert!(!o.admit(&uri));
        assert!(o.over_limit.load(Ordering::Relaxed));
        let other: http::Uri = "http://y.test/".parse().unwrap();
        assert!(!Outbound::new(Arc::from(vec![]), 5).admit(&other));
    }
}
