//! A package's declared outbound credentials, checked: which secret, to which hosts, in which
//! header and format. The runtime renders and attaches them (`runtime::credentials`).

use super::{Credential, HostPattern};
use crate::names::{SecretName, field_name_ok};

/// Headers a credential may not go in: the HTTP client's own framing and routing.
const RESERVED_HEADERS: &[&str] = &[
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "upgrade",
    "te",
    "trailer",
    "keep-alive",
    "proxy-connection",
];

/// A declared credential, checked.
#[derive(Debug)]
pub struct Spec {
    /// The secret it carries.
    pub secret: SecretName,
    hosts: Box<[HostPattern]>,
    /// The header it goes in.
    pub header: http::HeaderName,
    /// The header value's template.
    pub format: Format,
    /// The field of the secret sent, for a secret with fields.
    pub field: Option<String>,
}

impl Spec {
    /// Checks a declaration against the package's `[outbound] hosts`.
    pub fn parse(c: &Credential, allowed: &[HostPattern]) -> Result<Spec, String> {
        let secret = SecretName::parse(&c.secret).map_err(|e| format!("secret: {e}"))?;
        if c.hosts.is_empty() {
            return Err("hosts: name at least one host the credential may go to".into());
        }
        let mut hosts = Vec::with_capacity(c.hosts.len());
        for h in &c.hosts {
            let p = HostPattern::parse(h).map_err(|e| format!("hosts: {e}"))?;
            if !p.is_https() {
                return Err(format!("hosts: {h}: a credential goes over https only"));
            }
            if !allowed.iter().any(|a| p.within(a)) {
                return Err(format!(
                    "hosts: {h} is not within [outbound] hosts; add it there too"
                ));
            }
            hosts.push(p);
        }
        let header = http::HeaderName::from_bytes(c.header.trim().as_bytes())
            .map_err(|_| format!("header: {:?} is not a valid header name", c.header))?;
        if RESERVED_HEADERS.contains(&header.as_str()) {
            return Err(format!(
                "header: {header} is set by the host's HTTP client, not by a credential"
            ));
        }
        let format = Format::parse(&c.format).map_err(|e| format!("format: {e}"))?;
        if let Some(f) = &c.field
            && !field_name_ok(f)
        {
            return Err(format!(
                "field: {f:?} is not a field name (A-Z, a-z, 0-9, '_', '.', '-')"
            ));
        }
        Ok(Spec {
            secret,
            hosts: hosts.into(),
            header,
            format,
            field: c.field.clone(),
        })
    }

    /// Whether this credential may go to `host:port` over https.
    pub fn admits(&self, uri: &http::Uri) -> bool {
        let Some(host) = uri.host() else {
            return false;
        };
        uri.scheme_str() == Some("https")
            && self
                .hosts
                .iter()
                .any(|p| p.matches_scheme(true, host, uri.port_u16().unwrap_or(443)))
    }
}

/// A header value's template: literal text, `{}` (the secret, exactly once) and `{field}`s.
#[derive(Debug)]
pub struct Format {
    /// Literal text, the value and fields, in order.
    pub parts: Vec<Part>,
    /// `Basic …`: what follows `Basic ` is base64-encoded, as RFC 7617 wants.
    pub basic: bool,
}

/// One piece of a [`Format`].
#[derive(Debug, PartialEq)]
pub enum Part {
    /// Text as it is.
    Literal(String),
    /// The secret (`{}`).
    Value,
    /// A field of the secret (`{name}`).
    Field(String),
}

impl Format {
    fn parse(s: &str) -> Result<Format, String> {
        let basic = s.len() >= 6 && s.is_char_boundary(6) && s[..6].eq_ignore_ascii_case("basic ");
        let body = if basic { &s[6..] } else { s };
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut chars = body.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '{' if chars.peek() == Some(&'{') => {
                    chars.next();
                    literal.push('{');
                }
                '}' if chars.peek() == Some(&'}') => {
                    chars.next();
                    literal.push('}');
                }
                '{' => {
                    let mut name = String::new();
                    loop {
                        match chars.next() {
                            Some('}') => break,
                            Some(c) => name.push(c),
                            None => return Err(format!("{s:?}: an unclosed '{{'")),
                        }
                    }
                    if !literal.is_empty() {
                        parts.push(Part::Literal(std::mem::take(&mut literal)));
                    }
                    if name.is_empty() {
                        parts.push(Part::Value);
                    } else if field_name_ok(&name) {
                        parts.push(Part::Field(name));
                    } else {
                        return Err(format!("{s:?}: {{{name}}} is not a field name"));
                    }
                }
                '}' => return Err(format!("{s:?}: a '}}' without its '{{' (write '}}}}')")),
                c if c == ' ' || c == '\t' || c.is_ascii_graphic() => literal.push(c),
                _ => {
                    return Err(format!(
                        "{s:?}: only printable ASCII can go in a header value"
                    ));
                }
            }
        }
        if !literal.is_empty() {
            parts.push(Part::Literal(literal));
        }
        if parts.iter().filter(|p| **p == Part::Value).count() != 1 {
            return Err(format!(
                "{s:?}: put `{{}}` (where the secret goes) exactly once, e.g. \"Bearer {{}}\""
            ));
        }
        Ok(Format { parts, basic })
    }
}
