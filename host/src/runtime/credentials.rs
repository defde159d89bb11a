//! Credentials the host attaches to outgoing requests, so a function can use an API key
//! without its value ever entering the guest (docs/credentials.md).
//!
//! A package declares each credential (`[[outbound.credentials]]`: a secret, the https hosts it
//! may go to, a header and a format). Each execution gets a [`CredentialSession`] with a random
//! placeholder per credential. The guest puts a placeholder in a request, either itself (an
//! env binding `credential:NAME` holds it) or through `edgeward:platform/credentials.attach`,
//! which sets the declared header to it. When the request leaves through
//! `outgoing-handler.handle`, [`CredentialSession::prepare`] finds every placeholder in it:
//!
//! - in the declared header, alone or where the format puts the value, on an https request to
//!   a declared host: replaced by the formatted value, resolved now like `get()` (so a rotation
//!   is seen by the next execution);
//! - anywhere else (the URL, another header, a header's name, a host not declared, plain
//!   http, the body): the request fails with `HTTP-request-denied`, and the execution record
//!   says where.
//!
//! Every response an execution of such a package reads is redacted ([`Redactor`]): the value
//! of each of its credentials, and its encoded forms, become `[REDACTED]` in headers and body,
//! in one streaming pass. The host never follows redirects, so a credential goes only where
//! the guest sent it, and only to a declared host.

use super::forms::{Finder, Patterns, Redacting};
use crate::manifest::credential::Part;
pub use crate::manifest::credential::Spec;
use crate::secrets::{ResolveError, Resolver, Scope, SecretValue};
pub use crate::store::{CredentialLog, CredentialRefusal, CredentialUse, RefusalKind};
use base64::Engine as _;
use bytes::{Bytes, BytesMut};
use http_body::{Body, Frame};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use wasmtime_wasi_http::Error as ErrorCode;
use zeroize::Zeroizing;

/// What replaces a credential's value in a response.
pub const REDACTED: &[u8] = b"[REDACTED]";
/// What every placeholder starts with.
pub const PLACEHOLDER_PREFIX: &str = "edgeward-credential-";
/// The random part of a placeholder: 128 bits in hex.
const PLACEHOLDER_ID_LEN: usize = 32;
/// The `secret` of a refusal that concerns the package's credentials as a whole (a response
/// refused, a credential that could not be resolved before the first request).
pub const EVERY_CREDENTIAL: &str = "*";

/// The header value for `value`, and the forms of it a response is redacted of.
fn render(spec: &Spec, value: &SecretValue) -> Result<Rendered, String> {
    let fields = if value.is_object() {
        Some(
            serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(value.expose())
                .map_err(|_| "the secret's fields could not be read".to_string())?,
        )
    } else {
        None
    };
    let field_text = |name: &str| -> Result<Zeroizing<String>, String> {
        if fields.is_none() {
            return Err(format!(
                "the format names field {name}, but the secret is a plain value"
            ));
        }
        value
            .field(name)
            .ok_or_else(|| format!("the secret has no field {name}"))
    };
    let secret = match (&spec.field, fields.is_some()) {
        (None, false) => Zeroizing::new(value.expose().to_string()),
        (Some(f), true) => field_text(f)?,
        (None, true) => {
            return Err(
                "the secret has fields: name the one to send with `field` in the declaration"
                    .into(),
            );
        }
        (Some(f), false) => {
            return Err(format!(
                "the declaration names field {f}, but the secret is a plain value"
            ));
        }
    };
    let mut text = Zeroizing::new(String::new());
    for part in &spec.format.parts {
        match part {
            Part::Literal(s) => text.push_str(s),
            Part::Value => text.push_str(&secret),
            Part::Field(name) => text.push_str(&field_text(name)?),
        }
    }
    let header = if spec.format.basic {
        let encoded = Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(&*text));
        Zeroizing::new(format!("Basic {}", &*encoded))
    } else {
        text
    };
    let mut header = http::HeaderValue::from_str(&header).map_err(|_| {
        "the value cannot be sent in a header (it holds control characters)".to_string()
    })?;
    header.set_sensitive(true);
    let mut forms = Patterns::new();
    forms
        .add_text(&secret)
        .map_err(|_| "the value has more forms than redaction handles".to_string())?;
    Ok(Rendered { header, forms })
}

/// A version's declared credentials, with what was built from their current values (shared by
/// its executions: a header value and a redactor are built once per value, not per request).
pub struct Declared {
    specs: Box<[Spec]>,
    /// Per credential: the value last rendered, and what it rendered to.
    rendered: Mutex<Vec<Option<Resolved>>>,
    /// The redactor of the values it was built from (index-aligned with `specs`).
    redactor: Mutex<Option<Built>>,
}

/// A credential's value and what it rendered to.
type Resolved = (SecretValue, Arc<Rendered>);

/// A redactor and the values (index-aligned with the declarations) it was built from.
type Built = (Vec<Option<SecretValue>>, Arc<Redactor>);

impl std::fmt::Debug for Declared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Declared")
            .field("specs", &self.specs)
            .finish_non_exhaustive()
    }
}

impl Declared {
    /// The credentials a version declares.
    pub fn new(specs: Vec<Spec>) -> Arc<Declared> {
        let n = specs.len();
        Arc::new(Declared {
            specs: specs.into(),
            rendered: Mutex::new(vec![None; n]),
            redactor: Mutex::new(None),
        })
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.specs.is_empty()
    }

    /// What credential `i` renders to with `value`, from the cache when the value is the one
    /// last rendered.
    fn render(&self, i: usize, value: &SecretValue) -> Result<Arc<Rendered>, String> {
        {
            let cached = self.rendered.lock().unwrap_or_else(|e| e.into_inner());
            if let Some((v, r)) = &cached[i]
                && v.expose() == value.expose()
            {
                return Ok(r.clone());
            }
        }
        let rendered = Arc::new(render(&self.specs[i], value)?);
        let mut cached = self.rendered.lock().unwrap_or_else(|e| e.into_inner());
        cached[i] = Some((value.clone(), rendered.clone()));
        Ok(rendered)
    }

    /// A redactor of `values` (some may be unresolved), from the cache when they are the ones
    /// it was last built from.
    fn redactor(&self, values: &[Option<Resolved>]) -> Option<Arc<Redactor>> {
        let same = |cached: &[Option<SecretValue>]| {
            cached.len() == values.len()
                && cached.iter().zip(values).all(|(a, b)| match (a, b) {
                    (None, None) => true,
                    (Some(a), Some((b, _))) => a.expose() == b.expose(),
                    _ => false,
                })
        };
        {
            let cached = self.redactor.lock().unwrap_or_else(|e| e.into_inner());
            if let Some((key, r)) = &*cached
                && same(key)
            {
                return Some(r.clone());
            }
        }
        let sets: Vec<&Patterns> = values.iter().flatten().map(|(_, r)| &r.forms).collect();
        let redactor = Arc::new(Redactor::new(&sets)?);
        let key = values
            .iter()
            .map(|v| v.as_ref().map(|(v, _)| v.clone()))
            .collect();
        *self.redactor.lock().unwrap_or_else(|e| e.into_inner()) = Some((key, redactor.clone()));
        Some(redactor)
    }
}

/// A credential's header value and the forms of its secret a response is redacted of.
struct Rendered {
    header: http::HeaderValue,
    forms: Patterns,
}

/// The most refusals one execution's record keeps.
const MAX_REFUSALS: usize = 32;

/// One execution's credentials: the declarations, a placeholder for each, and what was done.
pub struct CredentialSession {
    declared: Arc<Declared>,
    placeholders: Box<[String]>,
    /// The execution's resolver with a lookup budget of its own: the guest's lookups cannot
    /// spend what redaction needs.
    resolver: Resolver,
    state: Mutex<State>,
    /// Every declaration resolved, once, before the first outbound request; or the first
    /// that could not be.
    ready: tokio::sync::OnceCell<Result<(), Unresolved>>,
}

/// A credential that could not be resolved, and why (never its value).
#[derive(Debug, Clone)]
struct Unresolved {
    secret: String,
    why: String,
}

impl std::fmt::Debug for CredentialSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CredentialSession")
            .field("credentials", &self.declared.specs.len())
            .finish_non_exhaustive()
    }
}

#[derive(Default)]
struct State {
    log: CredentialLog,
    /// Each credential's value and rendering, once resolved (index-aligned with `specs`):
    /// every response of this execution is redacted of them, its output masked of them.
    resolved: Vec<Option<Resolved>>,
    /// The scope each was found in.
    scopes: Vec<Option<Scope>>,
}

/// A request that may go, with the headers to fill in when it does.
pub struct Plan {
    /// The credentials (indexes of the declarations) whose headers to fill in.
    attach: Vec<usize>,
}

impl CredentialSession {
    /// A session for one execution of a package declaring `specs` (none: no session).
    pub fn new(declared: &Arc<Declared>, resolver: Resolver) -> Option<Arc<CredentialSession>> {
        if declared.is_empty() {
            return None;
        }
        let placeholders: Box<[String]> = declared
            .specs
            .iter()
            .map(|_| format!("{PLACEHOLDER_PREFIX}{:032x}", rand::random::<u128>()))
            .collect();
        Some(Arc::new(CredentialSession {
            state: Mutex::new(State {
                log: CredentialLog::default(),
                resolved: vec![None; declared.specs.len()],
                scopes: vec![None; declared.specs.len()],
            }),
            declared: declared.clone(),
            placeholders,
            resolver: resolver.with_own_budget(),
            ready: tokio::sync::OnceCell::new(),
        }))
    }

    /// The credential whose placeholder `hay` holds first, if any. Placeholders share a
    /// prefix, so one substring search finds every candidate; one of another execution (or
    /// made up) is not a match.
    fn find(&self, hay: &[u8]) -> Option<usize> {
        static PREFIX: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
            std::sync::LazyLock::new(|| memchr::memmem::Finder::new(PLACEHOLDER_PREFIX));
        let mut from = 0;
        while let Some(at) = PREFIX.find(&hay[from..]) {
            let tail = from + at + PLACEHOLDER_PREFIX.len();
            if let Some(id) = hay.get(tail..tail + PLACEHOLDER_ID_LEN)
                && let Some(i) = self
                    .placeholders
                    .iter()
                    .position(|p| &p.as_bytes()[PLACEHOLDER_PREFIX.len()..] == id)
            {
                return Some(i);
            }
            from += at + 1;
        }
        None
    }

    /// The placeholder of credential `secret`, if the package declares it.
    pub fn placeholder(&self, secret: &str) -> Option<&str> {
        let i = self.index(secret)?;
        Some(&self.placeholders[i])
    }

    /// The header credential `secret` goes in, and its placeholder.
    pub fn header(&self, secret: &str) -> Option<(&http::HeaderName, &str)> {
        let i = self.index(secret)?;
        Some((&self.declared.specs[i].header, &self.placeholders[i]))
    }

    fn index(&self, secret: &str) -> Option<usize> {
        self.declared
            .specs
            .iter()
            .position(|s| s.secret.as_str() == secret)
    }

    fn refuse(&self, i: usize, uri: &http::Uri, reason: String) -> ErrorCode {
        self.note_refusal(
            self.declared.specs[i].secret.to_string(),
            RefusalKind::Placeholder,
            uri,
            reason,
        );
        ErrorCode::HttpRequestDenied
    }

    /// Records a refusal in the execution's record (and so in the audit log).
    fn note_refusal(&self, secret: String, kind: RefusalKind, uri: &http::Uri, reason: String) {
        let refusal = CredentialRefusal {
            secret,
            host: authority(uri),
            kind,
            reason,
        };
        tracing::debug!(secret = %refusal.secret, host = %refusal.host, reason = %refusal.reason,
            "outbound request refused: a credential placeholder where it may not go");
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.log.refused.len() < MAX_REFUSALS {
            state.log.refused.push(refusal);
        }
    }

    /// Checks where `request` carries placeholders: the ones in a declared header, going to a
    /// declared https host, are planned for; any other refuses the whole request.
    pub fn prepare<B>(&self, request: &http::Request<B>) -> Result<Plan, ErrorCode> {
        let uri = request.uri();
        // The URL's parts as they are (no string built per request); a scheme cannot hold one.
        let in_url = [
            uri.authority().map(|a| a.as_str()),
            uri.path_and_query().map(|p| p.as_str()),
        ]
        .into_iter()
        .flatten()
        .find_map(|part| self.find(part.as_bytes()));
        if let Some(i) = in_url {
            return Err(self.refuse(i, uri, "in the URL".into()));
        }
        let mut attach = Vec::new();
        for (name, value) in request.headers() {
            if let Some(i) = self.find(name.as_str().as_bytes()) {
                return Err(self.refuse(i, uri, "in a header's name".into()));
            }
            let Some(i) = self.find(value.as_bytes()) else {
                continue;
            };
            let spec = &self.declared.specs[i];
            if *name != spec.header {
                return Err(self.refuse(
                    i,
                    uri,
                    format!(
                        "in header {name}; this credential goes in {} only",
                        spec.header
                    ),
                ));
            }
            if !self.alone_or_formatted(i, value.as_bytes()) {
                return Err(self.refuse(
                    i,
                    uri,
                    format!(
                        "in header {name} with other text; put the placeholder alone, or where \
                         the declared format puts the value"
                    ),
                ));
            }
            if uri.scheme_str() != Some("https") {
                return Err(self.refuse(
                    i,
                    uri,
                    "over plain http; credentials go over https".into(),
                ));
            }
            if !spec.admits(uri) {
                return Err(self.refuse(
                    i,
                    uri,
                    "to a host this credential's declaration does not list".into(),
                ));
            }
            if request.headers().get_all(name).iter().count() > 1 {
                return Err(self.refuse(i, uri, format!("in header {name}, given twice")));
            }
            if !attach.contains(&i) {
                attach.push(i);
            }
        }
        Ok(Plan { attach })
    }

    /// Whether `value` is the placeholder alone, or the format with the placeholder for `{}`.
    fn alone_or_formatted(&self, i: usize, value: &[u8]) -> bool {
        let placeholder = self.placeholders[i].as_bytes();
        if value == placeholder {
            return true;
        }
        let format = &self.declared.specs[i].format;
        if format.basic || format.parts.iter().any(|p| matches!(p, Part::Field(_))) {
            return false;
        }
        let mut expected = Vec::with_capacity(value.len());
        for part in &format.parts {
            match part {
                Part::Literal(s) => expected.extend_from_slice(s.as_bytes()),
                Part::Value => expected.extend_from_slice(placeholder),
                Part::Field(_) => return false,
            }
        }
        expected == value
    }

    /// Resolves every declared credential, once per execution, before its first outbound
    /// request, so that every response is redacted of every value the package could have sent
    /// (an upstream may store one and hand it back later), whichever credentials the request
    /// carries. Through the session's own lookup budget, so a guest that spent its own cannot
    /// switch redaction off. When one cannot be resolved (missing, unreadable, the backend
    /// slow or down), the request is refused and recorded: no response reaches an execution
    /// that could not be redacted of every value (fail closed).
    pub async fn ready(&self, uri: &http::Uri) -> Result<(), ErrorCode> {
        let outcome = self.ready.get_or_init(|| self.resolve_all()).await;
        match outcome {
            Ok(()) => Ok(()),
            Err(u) => {
                self.note_refusal(
                    u.secret.clone(),
                    RefusalKind::Unresolved,
                    uri,
                    format!(
                        "credential {} could not be resolved ({}): no request of this execution \
                         goes out, since its responses could not be redacted",
                        u.secret, u.why
                    ),
                );
                Err(ErrorCode::InternalError(Some(format!(
                    "credential {}: {}",
                    u.secret, u.why
                ))))
            }
        }
    }

    async fn resolve_all(&self) -> Result<(), Unresolved> {
        for (i, spec) in self.declared.specs.iter().enumerate() {
            let unresolved = |why: String| {
                tracing::debug!(secret = %spec.secret, %why, "credential not resolved");
                Unresolved {
                    secret: spec.secret.to_string(),
                    why,
                }
            };
            let (scope, value) = match self.resolver.get(spec.secret.as_str()).await {
                Ok(Some((scope, secret))) => (scope, secret.value),
                Ok(None) => return Err(unresolved("no scope holds this secret".into())),
                Err(ResolveError::Unavailable(_)) => {
                    return Err(unresolved(
                        "the secret backend is unavailable; retry later".into(),
                    ));
                }
                Err(e) => return Err(unresolved(e.to_string())),
            };
            let rendered = self.declared.render(i, &value).map_err(unresolved)?;
            let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
            state.resolved[i] = Some((value, rendered));
            state.scopes[i] = Some(scope);
        }
        Ok(())
    }

    /// Puts the planned credentials (resolved by [`CredentialSession::ready`]) in `request`'s headers,
    /// records each use, and makes the request one whose answer redaction can read whole:
    /// `accept-encoding: identity`, and no `range`, `if-range` or `te`.
    pub fn apply<B>(&self, plan: &Plan, request: &mut http::Request<B>) -> Result<(), ErrorCode> {
        let host = authority(request.uri());
        let headers = request.headers_mut();
        headers.insert(
            http::header::ACCEPT_ENCODING,
            http::HeaderValue::from_static("identity"),
        );
        for name in [
            http::header::RANGE,
            http::header::IF_RANGE,
            http::header::TE,
        ] {
            headers.remove(name);
        }
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        for &i in &plan.attach {
            let spec = &self.declared.specs[i];
            let found = match (&state.resolved[i], state.scopes[i]) {
                (Some((_, rendered)), Some(scope)) => Some((rendered.header.clone(), scope)),
                _ => None,
            };
            // `ready` resolved every declaration before any request goes.
            let Some((value, scope)) = found else {
                return Err(ErrorCode::InternalError(Some(format!(
                    "credential {}: not resolved",
                    spec.secret
                ))));
            };
            headers.insert(spec.header.clone(), value);
            note_use(&mut state.log, spec, scope, &host);
        }
        Ok(())
    }

    /// Checks a response before the guest reads it: a partial one (206), one in a transfer
    /// coding other than chunked, or in a content coding redaction cannot undo is refused
    /// (and recorded); a compressed one is decoded, so that redaction reads what the guest
    /// will, and loses its `content-encoding`; then headers and body are redacted.
    pub fn receive(
        &self,
        uri: &http::Uri,
        response: http::Response<wasmtime_wasi_http::WasiBody>,
    ) -> Result<http::Response<wasmtime_wasi_http::WasiBody>, ErrorCode> {
        let refuse = |reason: String, code: ErrorCode| {
            self.note_refusal(EVERY_CREDENTIAL.into(), RefusalKind::Response, uri, reason);
            Err(code)
        };
        if response.status() == http::StatusCode::PARTIAL_CONTENT {
            return refuse(
                "a partial response (206): pieces of a value could each pass redaction".into(),
                ErrorCode::HttpRequestDenied,
            );
        }
        let transfer = response
            .headers()
            .get_all(http::header::TRANSFER_ENCODING)
            .iter()
            .flat_map(|v| v.to_str().unwrap_or("?").split(','))
            .map(|t| t.trim().to_ascii_lowercase())
            .find(|t| !t.is_empty() && t != "chunked");
        if let Some(coding) = transfer {
            return refuse(
                format!("a response in transfer coding {coding:?}, which redaction cannot read"),
                ErrorCode::HttpResponseTransferCoding(Some(coding)),
            );
        }
        let codings = match super::decode::codings(response.headers()) {
            Ok(codings) => codings,
            Err(coding) => {
                return refuse(
                    format!("a response in content coding {coding:?}, which redaction cannot undo"),
                    ErrorCode::HttpResponseContentCoding(Some(coding)),
                );
            }
        };
        let response = if codings.is_empty() {
            response
        } else if http_body::Body::is_end_stream(response.body()) {
            // No body (HEAD, 204, 304): nothing to decode, and no coding left to claim.
            let (mut parts, body) = response.into_parts();
            parts.headers.remove(http::header::CONTENT_ENCODING);
            http::Response::from_parts(parts, body)
        } else {
            let (mut parts, body) = response.into_parts();
            parts.headers.remove(http::header::CONTENT_ENCODING);
            parts.headers.remove(http::header::CONTENT_LENGTH);
            http::Response::from_parts(parts, super::decode::decode(body, &codings))
        };
        Ok(match self.redactor() {
            Some(redactor) => redactor.response(response),
            None => response,
        })
    }

    /// A redactor for one response, of every value resolved so far.
    pub fn redactor(&self) -> Option<Arc<Redactor>> {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        self.declared.redactor(&state.resolved)
    }

    /// Every value resolved in this execution.
    pub fn values(&self) -> Vec<SecretValue> {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let mut values: Vec<SecretValue> = Vec::new();
        for (v, _) in state.resolved.iter().flatten() {
            if !values.iter().any(|k| k.expose() == v.expose()) {
                values.push(v.clone());
            }
        }
        values
    }

    /// What the execution did with its credentials.
    pub fn take_log(&self) -> CredentialLog {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        std::mem::take(&mut state.log)
    }

    /// Guards a request body: a placeholder in it fails the request (the bytes before it are
    /// sent; the placeholder, and anything after, are not). `refused` is set when it does.
    pub fn guard_body(
        self: &Arc<Self>,
        body: wasmtime_wasi_http::WasiBody,
        uri: http::Uri,
        refused: Arc<AtomicBool>,
    ) -> wasmtime_wasi_http::WasiBody {
        use http_body_util::BodyExt;
        let hold = self.placeholders.iter().map(String::len).max().unwrap_or(1) - 1;
        Scanning {
            inner: body,
            held: BytesMut::new(),
            hold,
            pending: None,
            done: false,
            check: Check::Placeholders {
                session: self.clone(),
                uri,
                refused,
            },
        }
        .boxed_unsync()
    }
}

fn note_use(log: &mut CredentialLog, spec: &Spec, scope: Scope, host: &str) {
    match log
        .used
        .iter_mut()
        .find(|u| u.secret == spec.secret.as_str() && u.host == host)
    {
        Some(u) => u.count = u.count.saturating_add(1),
        None => log.used.push(CredentialUse {
            secret: spec.secret.to_string(),
            scope: scope.as_str().into(),
            host: host.into(),
            count: 1,
        }),
    }
}

/// `host` or `host:port`, as a record names a destination.
fn authority(uri: &http::Uri) -> String {
    uri.authority()
        .map_or_else(String::new, |a| a.as_str().to_ascii_lowercase())
}

/// Replaces credential values (in every form, [`super::forms`]) with [`REDACTED`] in a
/// response.
pub struct Redactor {
    finder: Finder,
}

impl Redactor {
    fn new(sets: &[&Patterns]) -> Option<Redactor> {
        let mut all = Patterns::new();
        for set in sets {
            all.extend(set).ok()?;
        }
        Some(Redactor {
            finder: Finder::new(&all)?,
        })
    }

    /// Redacts a response's headers (a header whose name holds a value is dropped) and wraps
    /// its body; the length may change, so `content-length` goes.
    pub fn response(
        self: &Arc<Self>,
        response: http::Response<wasmtime_wasi_http::WasiBody>,
    ) -> http::Response<wasmtime_wasi_http::WasiBody> {
        use http_body_util::BodyExt;
        let (mut parts, body) = response.into_parts();
        parts.headers.remove(http::header::CONTENT_LENGTH);
        let mut headers = http::HeaderMap::with_capacity(parts.headers.len());
        for (name, value) in parts.headers.iter() {
            if self.finder.is_match(name.as_str().as_bytes()) {
                continue;
            }
            let value = if self.finder.is_match(value.as_bytes()) {
                http::HeaderValue::from_bytes(&self.finder.replace(value.as_bytes(), REDACTED))
                    .unwrap_or_else(|_| http::HeaderValue::from_static("[REDACTED]"))
            } else {
                value.clone()
            };
            headers.append(name.clone(), value);
        }
        parts.headers = headers;
        let body = Scanning {
            inner: body,
            held: BytesMut::new(),
            hold: 0,
            pending: None,
            done: false,
            check: Check::Redact(
                self.clone(),
                Box::new(Redacting::new(&self.finder, REDACTED)),
            ),
        }
        .boxed_unsync();
        http::Response::from_parts(parts, body)
    }
}

/// What a [`Scanning`] body looks for.
enum Check {
    /// A request body: any placeholder fails it.
    Placeholders {
        session: Arc<CredentialSession>,
        uri: http::Uri,
        refused: Arc<AtomicBool>,
    },
    /// A response body: every value is replaced (the stream holds back what could still be
    /// part of one).
    Redact(Arc<Redactor>, Box<Redacting>),
}

/// A body scanned as it streams, holding back the last few bytes of each frame so that a
/// match split between two frames is still found whole.
struct Scanning {
    inner: wasmtime_wasi_http::WasiBody,
    held: BytesMut,
    hold: usize,
    /// A trailers frame waiting for the held bytes to go first.
    pending: Option<Frame<Bytes>>,
    done: bool,
    check: Check,
}

impl Scanning {
    /// Takes `data` in; returns what may go on now.
    fn feed(&mut self, data: &[u8], end: bool) -> Result<Option<Bytes>, ErrorCode> {
        if let Check::Redact(redactor, stream) = &mut self.check {
            let out = stream.push(&redactor.finder, data, end);
            return Ok((!out.is_empty()).then(|| Bytes::from(out)));
        }
        self.held.extend_from_slice(data);
        match &self.check {
            Check::Placeholders {
                session,
                uri,
                refused,
            } => {
                if let Some(i) = session.find(&self.held[..]) {
                    refused.store(true, Ordering::Relaxed);
                    self.held.clear();
                    return Err(session.refuse(i, uri, "in the body".into()));
                }
                let keep = if end {
                    0
                } else {
                    self.hold.min(self.held.len())
                };
                let out = self.held.split_to(self.held.len() - keep).freeze();
                Ok((!out.is_empty()).then_some(out))
            }
            Check::Redact(..) => Ok(None),
        }
    }
}

impl Body for Scanning {
    type Data = Bytes;
    type Error = ErrorCode;

    /// As the inner body's: an empty request stays one without a body on the wire (not a
    /// chunked one).
    fn is_end_stream(&self) -> bool {
        let held = match &self.check {
            Check::Redact(_, stream) => stream.held(),
            Check::Placeholders { .. } => self.held.len(),
        };
        self.pending.is_none() && held == 0 && (self.done || self.inner.is_end_stream())
    }

    /// A request body keeps its length (held bytes go out later); a redacted response's may
    /// change.
    fn size_hint(&self) -> http_body::SizeHint {
        if self.is_end_stream() {
            return http_body::SizeHint::with_exact(0);
        }
        match &self.check {
            Check::Placeholders { .. } if !self.done => {
                let inner = self.inner.size_hint();
                let held = self.held.len() as u64;
                match inner.exact() {
                    Some(exact) => http_body::SizeHint::with_exact(exact.saturating_add(held)),
                    None => {
                        let mut hint = http_body::SizeHint::new();
                        hint.set_lower(inner.lower().saturating_add(held));
                        hint
                    }
                }
            }
            _ => http_body::SizeHint::default(),
        }
    }

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, ErrorCode>>> {
        let this = &mut *self;
        loop {
            if let Some(frame) = this.pending.take() {
                return Poll::Ready(Some(Ok(frame)));
            }
            if this.done {
                return Poll::Ready(None);
            }
            match Pin::new(&mut this.inner).poll_frame(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Err(e))) => {
                    this.done = true;
                    return Poll::Ready(Some(Err(e)));
                }
                Poll::Ready(None) => {
                    this.done = true;
                    match this.feed(&[], true) {
                        Ok(Some(rest)) => return Poll::Ready(Some(Ok(Frame::data(rest)))),
                        Ok(None) => return Poll::Ready(None),
                        Err(e) => return Poll::Ready(Some(Err(e))),
                    }
                }
                Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                    // The last frame (a body of known length) goes out whole, held bytes and
                    // all: the reader gets it in one piece.
                    Ok(data) => match this.feed(&data, this.inner.is_end_stream()) {
                        Ok(Some(out)) => return Poll::Ready(Some(Ok(Frame::data(out)))),
                        Ok(None) => continue,
                        Err(e) => {
                            this.done = true;
                            return Poll::Ready(Some(Err(e)));
                        }
                    },
                    Err(trailers) => {
                        // Trailers end the body: what is held goes first.
                        let trailers = match (&this.check, trailers.into_trailers()) {
                            (_, Err(_)) => continue,
                            (
                                Check::Placeholders {
                                    session,
                                    uri,
                                    refused,
                                },
                                Ok(t),
                            ) => {
                                if let Some(i) = t.iter().find_map(|(n, v)| {
                                    session
                                        .find(n.as_str().as_bytes())
                                        .or_else(|| session.find(v.as_bytes()))
                                }) {
                                    refused.store(true, Ordering::Relaxed);
                                    this.done = true;
                                    let code = session.refuse(i, uri, "in the trailers".into());
                                    return Poll::Ready(Some(Err(code)));
                                }
                                t
                            }
                            (Check::Redact(r, _), Ok(t)) => {
                                let mut clean = http::HeaderMap::with_capacity(t.len());
                                for (n, v) in &t {
                                    if !r.finder.is_match(n.as_str().as_bytes())
                                        && !r.finder.is_match(v.as_bytes())
                                    {
                                        clean.append(n.clone(), v.clone());
                                    }
                                }
                                clean
                            }
                        };
                        this.pending = Some(Frame::trailers(trailers));
                        match this.feed(&[], true) {
                            Ok(Some(rest)) => return Poll::Ready(Some(Ok(Frame::data(rest)))),
                            Ok(None) => continue,
                            Err(e) => {
                                this.pending = None;
                                this.done = true;
                                return Poll::Ready(Some(Err(e)));
                            }
                        }
                    }
                },
            }
        }
    }
}

#[cfg(test)]
mod tests;
