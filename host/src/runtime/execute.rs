//! One request, one execution: a fresh store from the version's `ProxyPre`, the guest's
//! `wasi:http/incoming-handler`, and its response streamed back.

use super::state::{HostState, OutboundPolicy};
use super::{CapturedOutput, Deployed, Runtime};
use crate::manifest::EnvBinding;
use crate::secrets::guest::SecretsCtx;
use crate::secrets::{ResolveError, Resolver, SecretBackend};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use std::sync::Arc;
use std::time::{Duration, Instant};
use wasmtime::component::ResourceTable;
use wasmtime::{Store, StoreLimitsBuilder, UpdateDeadline};
use wasmtime_wasi::WasiCtx;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpView};

/// The response header that carries the execution id.
pub const EXECUTION_ID_HEADER: &str = "x-edgeward-execution-id";

/// How an execution ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ExecutionStatus {
    /// The guest answered.
    Ok,
    /// The guest reported an error instead of a response, or never answered.
    GuestError,
    /// The guest trapped (panic, unreachable, out of bounds…).
    Trapped,
    /// The guest ran past its wall-time limit.
    TimedOut,
    /// The host refused to run it (capacity, secrets unavailable for env bindings…).
    Limited,
}

/// The record of one execution. Output is kept for the execution log, never logged.
#[derive(Debug)]
pub struct Execution {
    /// Its id, also sent as `x-edgeward-execution-id`.
    pub id: String,
    /// How it ended.
    pub status: ExecutionStatus,
    /// Wall time from start to the end of the guest's work.
    pub duration: Duration,
    /// Secret names resolved, with scopes.
    pub resolved: Vec<(crate::secrets::Scope, String)>,
    /// Captured stdout and whether it was cut.
    pub stdout: (Vec<u8>, bool),
    /// Captured stderr and whether it was cut.
    pub stderr: (Vec<u8>, bool),
}

/// The error the epoch callback raises when the wall-time limit passes.
#[derive(Debug)]
struct TimeLimitExceeded;

impl std::fmt::Display for TimeLimitExceeded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the request ran past its time limit")
    }
}

impl std::error::Error for TimeLimitExceeded {}

/// A JSON error response from the host (not the guest).
pub fn error_response(
    status: u16,
    code: &str,
    message: &str,
    execution_id: Option<&str>,
) -> hyper::Response<HyperOutgoingBody> {
    let body = serde_json::json!({ "error": { "code": code, "message": message } }).to_string();
    let mut builder = hyper::Response::builder()
        .status(status)
        .header(http::header::CONTENT_TYPE, "application/json");
    if let Some(id) = execution_id {
        builder = builder.header(EXECUTION_ID_HEADER, id);
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

/// Runs `deployed` on `request` and returns the response to send. Never fails: every failure
/// becomes a JSON error response carrying the execution id. `on_done` receives the record when
/// the guest's work (including streaming its body) is over.
pub async fn execute<B>(
    runtime: &Runtime,
    deployed: Arc<Deployed>,
    backend: Arc<dyn SecretBackend>,
    user: Option<String>,
    request: hyper::Request<B>,
    execution_id: String,
    on_done: impl FnOnce(Execution) + Send + 'static,
) -> hyper::Response<HyperOutgoingBody>
where
    B: hyper::body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<wasmtime_wasi_http::Error>,
{
    let start = Instant::now();
    let id = execution_id;
    let resolver = Resolver::new(
        backend,
        deployed.project.clone(),
        deployed.package.clone(),
        deployed.allow.clone(),
        user,
    );
    let mut secrets = SecretsCtx::new(resolver.clone());
    let env = match bind_env(&deployed, &resolver, &mut secrets).await {
        Ok(env) => env,
        Err((status, code, message)) => {
            on_done(Execution {
                id: id.clone(),
                status: ExecutionStatus::Limited,
                duration: start.elapsed(),
                resolved: secrets.resolved().to_vec(),
                stdout: (Vec::new(), false),
                stderr: (Vec::new(), false),
            });
            return error_response(status, code, &message, Some(&id));
        }
    };

    let cap = runtime.config().output_cap;
    let stdout = CapturedOutput::new(cap);
    let stderr = CapturedOutput::new(cap);
    let wasi = WasiCtx::builder()
        .envs(&env)
        .stdout(stdout.clone())
        .stderr(stderr.clone())
        .allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false)
        .build();
    let limits = StoreLimitsBuilder::new()
        .memory_size(deployed.memory_bytes)
        .instances(16)
        .tables(16)
        .memories(4)
        .build();
    let state = HostState {
        table: ResourceTable::new(),
        wasi,
        http: WasiHttpCtx::new(),
        outbound: OutboundPolicy,
        secrets,
        limits,
    };
    let mut store = Store::new(runtime.engine(), state);
    store.limiter(|s| &mut s.limits);
    let deadline = start + deployed.timeout;
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(move |_| {
        if Instant::now() >= deadline {
            Err(wasmtime::Error::new(TimeLimitExceeded))
        } else {
            // Yield each tick so a busy guest never holds a worker thread for long.
            Ok(UpdateDeadline::Yield(1))
        }
    });

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
            tracing::warn!(execution = %id, error = %e, "could not pass the request to the guest");
            return error_response(
                400,
                "bad_request",
                "the request could not be passed to the function",
                Some(&id),
            );
        }
    };

    let pre = deployed.pre.clone();
    let timeout = deployed.timeout;
    let task_id = id.clone();
    let task = tokio::spawn(async move {
        let run = async {
            let proxy = pre.instantiate_async(&mut store).await?;
            proxy
                .wasi_http_incoming_handler()
                .call_handle(&mut store, req, out)
                .await
        };
        let status = match tokio::time::timeout(timeout, run).await {
            Ok(Ok(())) => ExecutionStatus::Ok,
            Ok(Err(e)) => classify(&e),
            Err(_) => ExecutionStatus::TimedOut,
        };
        let secrets = &store.data().secrets;
        let execution = Execution {
            id: task_id,
            status,
            duration: start.elapsed(),
            resolved: secrets.resolved().to_vec(),
            stdout: stdout.take(),
            stderr: stderr.take(),
        };
        drop(store);
        let status = execution.status;
        on_done(execution);
        status
    });

    match receiver.await {
        Ok(Ok(mut response)) => {
            if let Ok(value) = http::HeaderValue::from_str(&id) {
                response.headers_mut().insert(EXECUTION_ID_HEADER, value);
            }
            response
        }
        Ok(Err(code)) => error_response(
            502,
            "guest_error",
            &format!("the function answered with an error instead of a response: {code:?}"),
            Some(&id),
        ),
        Err(_) => {
            let status = task.await.unwrap_or(ExecutionStatus::Trapped);
            let (code, http_status, message) = match status {
                ExecutionStatus::TimedOut => (
                    "timed_out",
                    504,
                    "the function ran past its time limit".to_string(),
                ),
                ExecutionStatus::Limited => (
                    "capacity",
                    503,
                    "no instance slot is free; retry shortly".to_string(),
                ),
                ExecutionStatus::Trapped => (
                    "guest_trapped",
                    500,
                    "the function crashed (trapped) before answering".to_string(),
                ),
                ExecutionStatus::Ok | ExecutionStatus::GuestError => (
                    "guest_error",
                    500,
                    "the function returned without sending a response".to_string(),
                ),
            };
            error_response(http_status, code, &message, Some(&id))
        }
    }
}

/// Resolves the manifest's env bindings; secret values join the execution's masking list.
async fn bind_env(
    deployed: &Deployed,
    resolver: &Resolver,
    secrets: &mut SecretsCtx,
) -> Result<Vec<(String, String)>, (u16, &'static str, String)> {
    let bindings = deployed
        .manifest
        .env_bindings()
        .map_err(|e| (500, "bad_manifest", e.0))?;
    let mut env = Vec::with_capacity(bindings.len());
    for (key, binding) in bindings {
        match binding {
            EnvBinding::Literal(value) => env.push((key, value)),
            EnvBinding::Secret(name) => match resolver.get(name.as_str()).await {
                Ok(Some((scope, secret))) => {
                    secrets.note_bound(scope, &secret);
                    env.push((key, secret.value.expose().to_string()));
                }
                Ok(None) => {
                    return Err((
                        500,
                        "unresolved_binding",
                        format!("env {key}: no scope holds secret {name}"),
                    ));
                }
                Err(ResolveError::Unavailable(m)) => {
                    return Err((503, "unavailable", format!("env {key}: {m}")));
                }
                Err(ResolveError::Denied(m) | ResolveError::InvalidName(m)) => {
                    return Err((500, "denied", format!("env {key}: {m}")));
                }
            },
        }
    }
    Ok(env)
}

fn classify(e: &wasmtime::Error) -> ExecutionStatus {
    if e.downcast_ref::<TimeLimitExceeded>().is_some() {
        return ExecutionStatus::TimedOut;
    }
    if e.downcast_ref::<wasmtime::Trap>().is_some() {
        return ExecutionStatus::Trapped;
    }
    let text = format!("{e:#}");
    if text.contains("maximum concurrent") || text.contains("pooling allocator") {
        return ExecutionStatus::Limited;
    }
    ExecutionStatus::Trapped
}
