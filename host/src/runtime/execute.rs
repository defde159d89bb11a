//! One request, one execution: a fresh store from the version's `ProxyPre`, the guest's
//! `wasi:http/incoming-handler`, and its response streamed back, all within the package's
//! limits. Every execution ends in exactly one record, with masked, capped output.

use super::body::{CappedBody, Direction};
use super::state::{HostState, HostStateProxyPre};
use super::{CapturedOutput, Deployed, Runtime, Stop, Unmasked};
use crate::code::ErrorCode;
use crate::manifest::EnvBinding;
use crate::secrets::guest::SecretsCtx;
use crate::secrets::{ResolveError, Resolver, SecretBackend};
use crate::store::ExecutionRow;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use wasmtime::Store;
use wasmtime::component::Resource;
use wasmtime_wasi_http::WasiHttpView;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;

/// The response header that carries the execution id.
pub const EXECUTION_ID_HEADER: &str = "x-edgeward-execution-id";

/// How an execution ended.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    serde::Serialize,
    serde::Deserialize,
    utoipa::ToSchema,
    strum::IntoStaticStr,
    strum::EnumString,
    strum::VariantArray,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum ExecutionStatus {
    /// The guest answered.
    Ok,
    /// The guest reported an error instead of a response, or never answered.
    GuestError,
    /// The guest trapped (panic, unreachable, stack overflow…).
    Trapped,
    /// The guest ran past its wall-time limit.
    TimedOut,
    /// The guest asked for more memory than its limit.
    OutOfMemory,
    /// A limit stopped it: instance slots, body sizes, outbound requests.
    Limited,
    /// It never ran: a secret its environment binds could not be resolved (no scope holds
    /// it, the backend was unavailable, or the name was refused).
    Unbound,
}

impl ExecutionStatus {
    /// Every status, in the order metrics count them.
    pub const ALL: &[ExecutionStatus] = <ExecutionStatus as strum::VariantArray>::VARIANTS;

    /// The status as the API and the store spell it (`timed_out`).
    pub fn parse(s: &str) -> Option<ExecutionStatus> {
        s.parse().ok()
    }

    /// The status as the API and the store spell it.
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// The status's position in [`ExecutionStatus::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }
}

/// A JSON error response from the host (not the guest).
pub fn error_response(
    status: u16,
    code: ErrorCode,
    message: &str,
    execution_id: Option<&str>,
) -> hyper::Response<HyperOutgoingBody> {
    let body = serde_json::json!({ "error": { "code": code.as_str(), "message": message } });
    json_response(status, &body, execution_id)
}

/// A JSON answer from the host (not the guest): an error body, with what it adds beside it.
pub fn json_response(
    status: u16,
    body: &serde_json::Value,
    execution_id: Option<&str>,
) -> hyper::Response<HyperOutgoingBody> {
    let body = body.to_string();
    let mut builder = hyper::Response::builder()
        .status(status)
        .header(http::header::CONTENT_TYPE, "application/json");
    if let Some(id) = execution_id {
        builder = builder.header(EXECUTION_ID_HEADER, id);
    }
    if status == 503 {
        builder = builder.header(http::header::RETRY_AFTER, "1");
    }
    let body = Full::new(Bytes::from(body))
        .map_err(|never| match never {})
        .boxed_unsync();
    builder.body(body).unwrap_or_else(|_| {
        let mut resp = hyper::Response::new(
            Full::new(Bytes::new())
                .map_err(|never| match never {})
                .boxed_unsync(),
        );
        *resp.status_mut() = http::StatusCode::INTERNAL_SERVER_ERROR;
        resp
    })
}

/// What the caller knows about the request beyond its bytes.
pub struct Trigger {
    /// The execution id.
    pub id: String,
    /// The user whose token came with the request, with their data key if it opens it.
    pub user: Option<crate::secrets::UserContext>,
    /// What the function may write, as that user (none without a user's token).
    pub writer: Option<Arc<crate::secrets::writes::Writer>>,
}

/// What every record of one execution shares, whichever stage it ends in.
struct Recording {
    metrics: Arc<crate::metrics::PackageMetrics>,
    id: String,
    method: String,
    path: String,
    project: String,
    package: String,
    version: i64,
    user: Option<String>,
    start: Instant,
    started_at: i64,
}

impl Recording {
    fn row(
        self,
        status: ExecutionStatus,
        http_status: Option<u16>,
        secrets: Vec<String>,
        (credentials, outbound): (
            super::credentials::CredentialLog,
            Vec<crate::store::OutboundHost>,
        ),
    ) -> ExecutionRow {
        let elapsed = self.start.elapsed();
        self.metrics.finished(status.index(), elapsed.as_secs_f64());
        ExecutionRow {
            id: self.id,
            project: self.project,
            package: self.package,
            version: self.version,
            started_at: self.started_at,
            duration_us: i64::try_from(elapsed.as_micros()).unwrap_or(i64::MAX),
            status: status.as_str().into(),
            http_status,
            user: self.user,
            secrets,
            credentials,
            stdout: Vec::new(),
            stdout_truncated: false,
            stderr: Vec::new(),
            stderr_truncated: false,
            sealed_for: None,
            outbound,
            method: self.method,
            path: self.path,
        }
    }
}

/// Why an execution ended before its guest ran: recorded as `status`, answered as `http`
/// with `code`.
struct EarlyAnswer {
    status: ExecutionStatus,
    http: u16,
    code: ErrorCode,
    message: String,
}

impl EarlyAnswer {
    fn new(status: ExecutionStatus, http: u16, code: ErrorCode, message: String) -> EarlyAnswer {
        EarlyAnswer {
            status,
            http,
            code,
            message,
        }
    }

    /// Records the execution as refused and answers the caller.
    fn answer(
        self,
        recording: Recording,
        secrets: Vec<String>,
        on_done: impl FnOnce(ExecutionRow, Option<Unmasked>),
    ) -> hyper::Response<HyperOutgoingBody> {
        let id = recording.id.clone();
        on_done(
            recording.row(self.status, Some(self.http), secrets, Default::default()),
            None,
        );
        error_response(self.http, self.code, &self.message, Some(&id))
    }
}

/// Runs `deployed` on `request` and returns the response to send, in four stages: admit
/// (instance slot, budgets, declared body size), bind (env bindings), run (the guest, on its
/// own task) and respond (the guest's response, or the error that stands for it). Never
/// fails: every failure becomes a JSON error response carrying the execution id. `on_done`
/// receives the record when the guest's work is over, with the output still to be masked
/// (the record writer masks it, off the data plane).
pub async fn execute<B>(
    runtime: &Runtime,
    deployed: Arc<Deployed>,
    backend: Arc<dyn SecretBackend>,
    trigger: Trigger,
    request: hyper::Request<B>,
    on_done: impl FnOnce(ExecutionRow, Option<Unmasked>) + Send + 'static,
) -> hyper::Response<HyperOutgoingBody>
where
    B: hyper::body::Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error:
        Into<wasmtime_wasi_http::Error> + Into<Box<dyn std::error::Error + Send + Sync>> + Send,
{
    let start = Instant::now();
    let recording = Recording {
        metrics: deployed.metrics.clone(),
        id: trigger.id.clone(),
        method: request.method().as_str().to_string(),
        path: request.uri().path().to_string(),
        project: deployed.project.to_string(),
        package: deployed.package.to_string(),
        version: deployed.version,
        user: trigger.user.as_ref().map(|u| u.name.clone()),
        start,
        started_at: crate::store::now_ms(),
    };
    let (permit, request) = match admit(runtime, &deployed, start, request).await {
        Ok(admitted) => admitted,
        Err(refusal) => return refusal.answer(recording, Vec::new(), on_done),
    };
    let resolver = Resolver::with_owners(
        backend,
        deployed.owners.clone(),
        deployed.allow.clone(),
        trigger.user,
    );
    let mut secrets = SecretsCtx::new(resolver.clone()).with_writer(trigger.writer);
    let credentials =
        super::credentials::CredentialSession::new(&deployed.credentials, resolver.clone());
    let env = match bind_env(&deployed, &resolver, &mut secrets, credentials.as_deref()).await {
        Ok(env) => env,
        Err((http, code, message)) => {
            let (names, _) = secrets.take();
            let refusal = EarlyAnswer::new(ExecutionStatus::Unbound, http, code, message);
            return refusal.answer(recording, names, on_done);
        }
    };
    match run(
        runtime,
        deployed.clone(),
        (secrets, credentials, env),
        request,
        permit,
        recording,
        on_done,
    ) {
        Ok(running) => respond(running, &deployed).await,
        Err(response) => *response,
    }
}

/// An instance slot of the package and its share of the platform's budgets.
struct Permit {
    /// Given back first: a waiter the slot wakes then finds the budgets free.
    _budgets: super::budgets::Admitted,
    _slot: super::gate::Permit,
}

/// Admission: a slot of this package, waiting briefly when all are busy; then the project's
/// share, and the platform's budget, of instances and memory, within the same wait. A
/// declared body over the limit is refused (and drained) before the guest starts.
async fn admit<B>(
    runtime: &Runtime,
    deployed: &Deployed,
    start: Instant,
    request: hyper::Request<B>,
) -> Result<(Permit, hyper::Request<B>), EarlyAnswer>
where
    B: hyper::body::Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>> + Send,
{
    let slot = match deployed.slots.try_acquire(1) {
        Some(slot) => Ok(slot),
        None => tokio::time::timeout(runtime.config().queue_wait, deployed.slots.acquire(1)).await,
    };
    let admitted = match slot {
        Ok(slot) => {
            let remaining = runtime.config().queue_wait.saturating_sub(start.elapsed());
            runtime
                .budgets()
                .admit(&deployed.share, deployed.memory_mb, remaining)
                .await
                .map(|admitted| Permit {
                    _budgets: admitted,
                    _slot: slot,
                })
                .map_err(|full| full.0)
        }
        Err(_) => Err("every instance slot of this package is busy".to_string()),
    };
    let permit = admitted.map_err(|why| {
        EarlyAnswer::new(
            ExecutionStatus::Limited,
            503,
            ErrorCode::Capacity,
            format!("{why}; retry shortly"),
        )
    })?;
    let declared = request
        .headers()
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > deployed.request_bytes) {
        let (_, body) = request.into_parts();
        crate::net::drain(body, 1 << 20).await;
        return Err(EarlyAnswer::new(
            ExecutionStatus::Limited,
            413,
            ErrorCode::TooLarge,
            format!(
                "the request body is over this function's limit of {} bytes",
                deployed.request_bytes
            ),
        ));
    }
    Ok((permit, request))
}

/// A guest running on its own task, as the response path sees it.
struct Running {
    id: String,
    /// The guest's response (or its error code), when it answers.
    response: tokio::sync::oneshot::Receiver<
        Result<
            hyper::Response<HyperOutgoingBody>,
            wasmtime_wasi_http::p2::bindings::http::types::ErrorCode,
        >,
    >,
    /// How the guest's task ended, for a guest that never answered.
    ended: tokio::sync::oneshot::Receiver<ExecutionStatus>,
    /// What the caller was sent, for the record.
    sent: tokio::sync::oneshot::Sender<(u16, Option<ExecutionStatus>)>,
    request_over: Arc<AtomicBool>,
    response_over: Arc<AtomicBool>,
}

/// Running: a fresh store with the bound env and secrets, the request handed to the guest's
/// `incoming-handler` on a task of its own that holds the permit and, when the guest is done,
/// sends the record to `on_done`.
fn run<B>(
    runtime: &Runtime,
    deployed: Arc<Deployed>,
    (secrets, credentials, env): (
        SecretsCtx,
        Option<Arc<super::credentials::CredentialSession>>,
        Vec<(String, String)>,
    ),
    request: hyper::Request<B>,
    permit: Permit,
    recording: Recording,
    on_done: impl FnOnce(ExecutionRow, Option<Unmasked>) + Send + 'static,
) -> Result<Running, Box<hyper::Response<HyperOutgoingBody>>>
where
    B: hyper::body::Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error:
        Into<wasmtime_wasi_http::Error> + Into<Box<dyn std::error::Error + Send + Sync>> + Send,
{
    let id = recording.id.clone();
    let cap = runtime.config().output_cap;
    let (stdout, stderr) = CapturedOutput::pair(cap);
    let session = credentials.clone();
    let (mut store, outbound_over, resumed) = runtime.new_store(
        &deployed,
        (secrets, credentials),
        &env,
        (stdout.clone(), stderr.clone()),
        recording.start + deployed.timeout,
    );

    let request_over = Arc::new(AtomicBool::new(false));
    let (parts, body) = request.into_parts();
    // Detached: a guest that stops reading does not leave the caller's upload hanging.
    let body = super::body::detached(body, deployed.request_bytes, deployed.timeout);
    let body = CappedBody::new(
        body,
        deployed.request_bytes,
        Direction::Request,
        request_over.clone(),
    );
    let request = hyper::Request::from_parts(parts, body);

    let (sender, receiver) = tokio::sync::oneshot::channel();
    let prepared = (|| -> wasmtime::Result<_> {
        let req = store
            .data_mut()
            .http()
            .new_incoming_request(Scheme::Http, request)?;
        let out = store.data_mut().http().new_response_outparam(sender)?;
        Ok((req, out))
    })();
    let (req, out) = match prepared {
        Ok(pair) => pair,
        Err(e) => {
            tracing::debug!(execution = %id, error = %e, "could not pass the request to the guest");
            let refusal = EarlyAnswer::new(
                ExecutionStatus::GuestError,
                400,
                ErrorCode::BadRequest,
                "the request could not be passed to the function".into(),
            );
            return Err(Box::new(refusal.answer(recording, Vec::new(), on_done)));
        }
    };

    let response_over = Arc::new(AtomicBool::new(false));
    // The guest task tells the response path how it ended (for a guest that never answered);
    // the response path tells the task what the caller was sent (for the record).
    let (ended_tx, ended_rx) = tokio::sync::oneshot::channel::<ExecutionStatus>();
    let (sent_tx, sent_rx) = tokio::sync::oneshot::channel::<(u16, Option<ExecutionStatus>)>();
    let guest = Guest {
        store,
        call: (req, out),
        pre: deployed.pre.clone(),
        last_use: deployed.last_use.clone(),
        resumed,
        timeout: deployed.timeout,
        flags: (request_over.clone(), response_over.clone(), outbound_over),
        session,
        output: (stdout, stderr),
        ended: ended_tx,
        sent: sent_rx,
        recording,
        permit,
    };
    tokio::spawn(guest.run(on_done));
    Ok(Running {
        id,
        response: receiver,
        ended: ended_rx,
        sent: sent_tx,
        request_over,
        response_over,
    })
}

/// One guest's run on a task of its own: it holds the instance permit, instantiates, calls the
/// handler under the time limit, and when the guest is done sends its record to `on_done`.
struct Guest {
    store: Store<HostState>,
    call: (
        Resource<wasmtime_wasi_http::p2::types::HostIncomingRequest>,
        Resource<wasmtime_wasi_http::p2::types::HostResponseOutparam>,
    ),
    pre: HostStateProxyPre,
    /// Its version's last use, stamped when the guest is done with its code.
    last_use: Arc<super::LastUse>,
    /// Marks each resumption of the guest for its CPU turns.
    resumed: super::cpu::Resumed,
    timeout: Duration,
    /// Request body, response body and outbound requests over their limits.
    flags: (Arc<AtomicBool>, Arc<AtomicBool>, Arc<AtomicBool>),
    session: Option<Arc<super::credentials::CredentialSession>>,
    output: (CapturedOutput, CapturedOutput),
    /// Told how the guest ended (for a guest that never answered).
    ended: tokio::sync::oneshot::Sender<ExecutionStatus>,
    /// Tells what the caller was sent (for the record).
    sent: tokio::sync::oneshot::Receiver<(u16, Option<ExecutionStatus>)>,
    recording: Recording,
    permit: Permit,
}

impl Guest {
    async fn run(self, on_done: impl FnOnce(ExecutionRow, Option<Unmasked>) + Send + 'static) {
        let Guest {
            mut store,
            call: (req, out),
            pre,
            last_use,
            resumed,
            timeout,
            flags,
            session,
            output: (stdout, stderr),
            ended: ended_tx,
            sent: sent_rx,
            recording,
            permit,
        } = self;
        let _permit = permit;
        let run = async {
            let started = Instant::now();
            let proxy = pre.instantiate_async(&mut store).await?;
            crate::metrics::INSTANTIATION.record(started.elapsed().as_secs_f64());
            proxy
                .wasi_http_incoming_handler()
                .call_handle(&mut store, req, out)
                .await
        };
        let outcome = {
            // Every poll is a resumption: what the guest computes counts from there.
            let mut run = std::pin::pin!(run);
            let run = std::future::poll_fn(|cx| {
                resumed.now();
                run.as_mut().poll(cx)
            });
            tokio::time::timeout(timeout, run).await
        };
        let data = store.data_mut();
        let (request_over, response_over, outbound_over) = flags;
        let mut status = match outcome {
            Ok(Ok(())) => ExecutionStatus::Ok,
            Err(_) => ExecutionStatus::TimedOut,
            Ok(Err(_)) if data.limits.hit_memory => ExecutionStatus::OutOfMemory,
            Ok(Err(e)) => classify(&e),
        };
        let limited = request_over.load(Ordering::Relaxed)
            || response_over.load(Ordering::Relaxed)
            || outbound_over.load(Ordering::Relaxed);
        if limited && matches!(status, ExecutionStatus::Ok | ExecutionStatus::Trapped) {
            status = ExecutionStatus::Limited;
        }
        // The output goes to the record writer with every value this execution obtained, to
        // be masked there before it is stored.
        let (secrets, mut revealed) = data.secrets.take();
        let hosts = data.outbound.hosts();
        // Credential values never enter the guest; masking its output of them too costs
        // little and covers an upstream's echo in a form redaction does not know.
        if let Some(session) = &session {
            revealed.extend(session.values());
        }
        drop(store);
        last_use.touch(Instant::now());
        drop(stderr);
        let output = Unmasked {
            captured: stdout.take(),
            values: revealed,
        };
        let _ = ended_tx.send(status);
        let (http_status, overridden) = match sent_rx.await {
            Ok((code, over)) => (Some(code), over),
            Err(_) => (None, None),
        };
        // The body may have been cut after the guest finished writing it.
        if response_over.load(Ordering::Relaxed) && status == ExecutionStatus::Ok {
            status = ExecutionStatus::Limited;
        }
        let status = match overridden {
            Some(o) if status == ExecutionStatus::Ok => o,
            _ => status,
        };
        let used = session.map(|s| s.take_log()).unwrap_or_default();
        on_done(
            recording.row(status, http_status, secrets, (used, hosts)),
            Some(output),
        );
    }
}

/// Responding: the guest's response, capped as it streams, or the error that stands for a
/// response over its limit, an error code, or no answer; the record learns what was sent.
async fn respond(running: Running, deployed: &Deployed) -> hyper::Response<HyperOutgoingBody> {
    let Running {
        id,
        response,
        ended,
        sent,
        request_over,
        response_over,
    } = running;
    let limit_message = |what: &str, bytes: u64| {
        format!("the {what} body is over this function's limit of {bytes} bytes")
    };
    let (response, what_was_sent) = match response.await {
        Ok(Ok(mut response)) => {
            let declared = response
                .headers()
                .get(http::header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok());
            if declared.is_some_and(|n| n > deployed.response_bytes) {
                response_over.store(true, Ordering::Relaxed);
                let message = limit_message("response", deployed.response_bytes);
                (
                    error_response(502, ErrorCode::TooLarge, &message, Some(&id)),
                    (502, Some(ExecutionStatus::Limited)),
                )
            } else {
                let code = response.status().as_u16();
                if let Ok(value) = http::HeaderValue::from_str(&id) {
                    response.headers_mut().insert(EXECUTION_ID_HEADER, value);
                }
                let limit = deployed.response_bytes;
                let over = response_over.clone();
                let response = response.map(|body| {
                    CappedBody::new(body, limit, Direction::Response, over).boxed_unsync()
                });
                (response, (code, None))
            }
        }
        Ok(Err(code)) if request_over.load(Ordering::Relaxed) => {
            let _ = code;
            let message = limit_message("request", deployed.request_bytes);
            (
                error_response(413, ErrorCode::TooLarge, &message, Some(&id)),
                (413, Some(ExecutionStatus::Limited)),
            )
        }
        Ok(Err(code)) => {
            let message =
                format!("the function answered with an error instead of a response: {code:?}");
            (
                error_response(502, ErrorCode::GuestError, &message, Some(&id)),
                (502, Some(ExecutionStatus::GuestError)),
            )
        }
        Err(_) => {
            // The guest finished (or died) without answering: its task says how.
            let status = ended.await.unwrap_or(ExecutionStatus::Trapped);
            let (http_status, code, message) =
                no_answer(status, request_over.load(Ordering::Relaxed), deployed);
            let over = (status == ExecutionStatus::Ok).then_some(ExecutionStatus::GuestError);
            (
                error_response(http_status, code, &message, Some(&id)),
                (http_status, over),
            )
        }
    };
    let _ = sent.send(what_was_sent);
    response
}

/// The answer for a guest that finished (or died) without answering, by how it ended.
fn no_answer(
    status: ExecutionStatus,
    request_over: bool,
    deployed: &Deployed,
) -> (u16, ErrorCode, String) {
    match status {
        ExecutionStatus::TimedOut => (
            504,
            ErrorCode::TimedOut,
            "the function ran past its time limit".to_string(),
        ),
        ExecutionStatus::OutOfMemory => (
            500,
            ErrorCode::OutOfMemory,
            "the function ran out of memory".to_string(),
        ),
        ExecutionStatus::Limited if request_over => (
            413,
            ErrorCode::TooLarge,
            format!(
                "the request body is over this function's limit of {} bytes",
                deployed.request_bytes
            ),
        ),
        ExecutionStatus::Limited => (
            503,
            ErrorCode::Limited,
            "the function hit a limit of its package".to_string(),
        ),
        ExecutionStatus::Trapped => (
            500,
            ErrorCode::GuestTrapped,
            "the function crashed (trapped) before answering".to_string(),
        ),
        // (Unbound never gets here: a function whose bindings fail does not run.)
        ExecutionStatus::Ok | ExecutionStatus::GuestError | ExecutionStatus::Unbound => (
            500,
            ErrorCode::GuestError,
            "the function returned without sending a response".to_string(),
        ),
    }
}

/// Resolves the version's env bindings; secret values join the execution's masking list.
async fn bind_env(
    deployed: &Deployed,
    resolver: &Resolver,
    secrets: &mut SecretsCtx,
    credentials: Option<&super::credentials::CredentialSession>,
) -> Result<Vec<(String, String)>, (u16, ErrorCode, String)> {
    let mut env = Vec::with_capacity(deployed.env.len());
    for (key, binding) in deployed.env.iter() {
        match binding {
            EnvBinding::Literal(value) => env.push((key.clone(), value.clone())),
            // The placeholder, never the value: the host swaps it in where it may go.
            EnvBinding::Credential(name) => {
                match credentials.and_then(|c| c.placeholder(name.as_str())) {
                    Some(placeholder) => env.push((key.clone(), placeholder.to_string())),
                    None => {
                        return Err((
                            500,
                            ErrorCode::UnresolvedBinding,
                            format!("env {key}: credential {name} is not declared"),
                        ));
                    }
                }
            }
            EnvBinding::Secret(name)
            | EnvBinding::SecretField(name, _)
            | EnvBinding::Expand(name) => {
                let (scope, secret) = match resolver.get(name.as_str()).await {
                    Ok(Some(found)) => found,
                    Ok(None) => {
                        return Err((
                            500,
                            ErrorCode::UnresolvedBinding,
                            format!("env {key}: no scope holds secret {name}"),
                        ));
                    }
                    Err(e) => {
                        let status = if matches!(e, ResolveError::Unavailable(_)) {
                            503
                        } else {
                            500
                        };
                        return Err((status, e.code(), format!("env {key}: {e}")));
                    }
                };
                secrets.note_bound(scope, &secret);
                let unbound = |why: String| Err((500, ErrorCode::UnresolvedBinding, why));
                match binding {
                    EnvBinding::SecretField(_, field) => match secret.value.field(field) {
                        Some(text) => env.push((key.clone(), text.to_string())),
                        None => {
                            return unbound(format!(
                                "env {key}: secret {name} has no field {field} (or is a plain \
                                 value)"
                            ));
                        }
                    },
                    EnvBinding::Expand(_) => match secret.value.fields() {
                        Some(fields) => {
                            for (field, text) in fields {
                                // A field whose name cannot be a variable's gets `_` for each
                                // character that cannot.
                                let var: String = format!("{key}{field}")
                                    .chars()
                                    .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
                                    .collect();
                                env.push((var, text.to_string()));
                            }
                        }
                        None => {
                            return unbound(format!(
                                "env.expand {key}: secret {name} is a plain value; expanding \
                                 needs a multi-field secret"
                            ));
                        }
                    },
                    _ => env.push((key.clone(), secret.value.expose().to_string())),
                }
            }
        }
    }
    // A variable named in the manifest wins over an expansion's (expansions come first).
    if !deployed
        .env
        .iter()
        .any(|(_, b)| matches!(b, EnvBinding::Expand(_)))
    {
        return Ok(env);
    }
    let mut seen = std::collections::HashSet::with_capacity(env.len());
    let mut kept: Vec<(String, String)> = env
        .into_iter()
        .rev()
        .filter(|(k, _)| seen.insert(k.clone()))
        .collect();
    kept.reverse();
    Ok(kept)
}

fn classify(e: &wasmtime::Error) -> ExecutionStatus {
    match e.downcast_ref::<Stop>() {
        Some(Stop::TimeLimit) => return ExecutionStatus::TimedOut,
        Some(Stop::OutboundLimit) => return ExecutionStatus::Limited,
        None => {}
    }
    if e.downcast_ref::<wasmtime::PoolConcurrencyLimitError>()
        .is_some()
    {
        // Every instance slot of the engine is taken.
        return ExecutionStatus::Limited;
    }
    ExecutionStatus::Trapped
}
