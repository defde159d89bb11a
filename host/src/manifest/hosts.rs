//! Outbound destinations as a manifest declares them (`[outbound] hosts`, a credential's
//! `hosts`): `host`, `*.suffix`, an optional port and scheme. The runtime checks requests
//! against these; the manifest checks declarations with them.

/// One allowed destination: `host`, `*.suffix`, optionally with `:port`, optionally behind
/// `http://` or `https://` (default: `https` only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPattern {
    host: String,
    wildcard: bool,
    port: Option<u16>,
    https: bool,
}

impl HostPattern {
    /// Parses `api.example.com`, `*.example.com`, `https://x.example.com:8443`,
    /// `http://10.0.0.5:8080`, `*.example.org:443`.
    pub fn parse(s: &str) -> Result<HostPattern, String> {
        let s = s.trim().to_ascii_lowercase();
        let (https, s) = match (s.strip_prefix("https://"), s.strip_prefix("http://")) {
            (Some(rest), _) => (true, rest.to_string()),
            (_, Some(rest)) => (false, rest.to_string()),
            _ => (true, s),
        };
        // An IPv6 literal, bracketed as in a URI: `[::1]` or `[::1]:8080`.
        if let Some(rest) = s.strip_prefix('[') {
            let (ip, after) = rest
                .split_once(']')
                .ok_or_else(|| format!("invalid outbound host {s:?}: unclosed '['"))?;
            ip.parse::<std::net::Ipv6Addr>()
                .map_err(|_| format!("invalid IPv6 address in {s:?}"))?;
            let port = match after.strip_prefix(':') {
                Some(p) => Some(
                    p.parse::<u16>()
                        .map_err(|_| format!("invalid port in {s:?}"))?,
                ),
                None if after.is_empty() => None,
                None => return Err(format!("invalid outbound host {s:?}")),
            };
            return Ok(HostPattern {
                host: format!("[{ip}]"),
                wildcard: false,
                port,
                https,
            });
        }
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
            https,
        })
    }

    /// Whether the pattern admits https (the default) rather than plain http.
    pub fn is_https(&self) -> bool {
        self.https
    }

    /// Whether every destination this pattern admits is admitted by `outer` as well.
    pub fn within(&self, outer: &HostPattern) -> bool {
        let default_port = if self.https { 443 } else { 80 };
        let host_ok = match (outer.wildcard, self.wildcard) {
            (false, false) => self.host == outer.host,
            (false, true) => false,
            // `*.a.example.com` and `b.example.com` are within `*.example.com`.
            (true, _) => {
                (self.wildcard && self.host == outer.host)
                    || (self.host.len() > outer.host.len()
                        && self.host.ends_with(&outer.host)
                        && self.host.as_bytes()[self.host.len() - outer.host.len() - 1] == b'.')
            }
        };
        let port = self.port.unwrap_or(default_port);
        self.https == outer.https && host_ok && outer.port.unwrap_or(default_port) == port
    }

    /// Whether `scheme://host:port` is allowed by this pattern. A pattern without a port
    /// allows the scheme's default port only (443 for https, 80 for http).
    pub fn matches_scheme(&self, https: bool, host: &str, port: u16) -> bool {
        let default_port = if https { 443 } else { 80 };
        self.https == https
            && self.matches(host, port)
            && (self.port.is_some() || port == default_port)
    }

    /// Whether `host:port` is allowed by this pattern, whatever the scheme.
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
