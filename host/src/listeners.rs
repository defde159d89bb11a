//! The two listeners: the data plane (a listener handing connections to worker threads, each
//! with its own single-threaded runtime) and the API; both serve HTTP/1.1 and HTTP/2 under
//! the connection limits of [`crate::net`], and drain on shutdown.

use crate::app::App;
use crate::net::{self, Activity, ConnLimits, Guarded, IdleBody, IpSlot, PerIp};
use anyhow::Context as _;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

/// Starts the data plane on `listener`: `workers` threads (0: the shared runtime), each
/// serving the connections handed to it until `shutdown` flips, then draining.
pub(crate) fn start_data_plane(
    app: Arc<App>,
    data_listener: TcpListener,
    workers: usize,
    (drain, limits): (Duration, ConnLimits),
    shutdown: &watch::Sender<bool>,
    tasks: &mut JoinSet<()>,
) -> anyhow::Result<()> {
    if workers == 0 {
        let rx = shutdown.subscribe();
        tasks.spawn(async move {
            let service = data_service(app);
            serve_hyper(data_listener, service, rx, drain, limits, "data plane").await;
        });
        return Ok(());
    }
    let mut handles = Vec::with_capacity(workers);
    for i in 0..workers {
        let app = app.clone();
        let (conn_tx, conn_rx) = mpsc::unbounded_channel();
        let open = Arc::new(AtomicUsize::new(0));
        let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
        let worker_open = open.clone();
        std::thread::Builder::new()
            .name(format!("edgeward-data-{i}"))
            .spawn(move || {
                data_worker(app, conn_rx, worker_open, drain, limits);
                let _ = done_tx.send(());
            })
            .context("cannot start a data-plane worker thread")?;
        tasks.spawn(async move {
            let _ = done_rx.await;
        });
        handles.push(Worker {
            conns: conn_tx,
            open,
        });
    }
    let rx = shutdown.subscribe();
    tasks.spawn(accept_for_workers(data_listener, handles, limits, rx));
    Ok(())
}

/// Starts the metrics listener: `GET /metrics` in Prometheus's text format (anything else is
/// 404), and the exporter's upkeep every few seconds.
pub(crate) fn start_metrics(
    app: Arc<App>,
    handle: metrics_exporter_prometheus::PrometheusHandle,
    listener: TcpListener,
    limits: ConnLimits,
    shutdown: &watch::Sender<bool>,
    tasks: &mut JoinSet<()>,
) {
    {
        let (handle, mut rx) = (handle.clone(), shutdown.subscribe());
        tasks.spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(5));
            loop {
                tokio::select! {
                    _ = tick.tick() => handle.run_upkeep(),
                    _ = rx.changed() => break,
                }
            }
        });
    }
    let rx = shutdown.subscribe();
    tasks.spawn(async move {
        let service = move |req: hyper::Request<IdleBody>, _peer| {
            let (app, handle) = (app.clone(), handle.clone());
            async move {
                use http_body_util::Full;
                let response =
                    if req.uri().path() == "/metrics" && req.method() == hyper::Method::GET {
                        hyper::Response::builder()
                            .header("content-type", "text/plain; version=0.0.4; charset=utf-8")
                            .body(Full::new(bytes::Bytes::from(crate::metrics::render(
                                &handle,
                                app.metrics_snapshot(),
                            ))))
                    } else {
                        hyper::Response::builder().status(404).body(Full::new(
                            bytes::Bytes::from_static(b"only /metrics here\n"),
                        ))
                    };
                Ok::<_, std::convert::Infallible>(response.unwrap_or_default())
            }
        };
        serve_hyper(
            listener,
            service,
            rx,
            Duration::from_secs(1),
            limits,
            "metrics",
        )
        .await;
    });
}

/// Starts the API on `listener`: the `/v1` router, each request tagged with its peer address.
pub(crate) fn start_api(
    app: Arc<App>,
    api_listener: TcpListener,
    (drain, limits): (Duration, ConnLimits),
    shutdown: &watch::Sender<bool>,
    tasks: &mut JoinSet<()>,
) {
    let router = crate::api::router(app);
    let rx = shutdown.subscribe();
    tasks.spawn(async move {
        let service = move |mut req: hyper::Request<IdleBody>, peer| {
            let router = router.clone();
            req.extensions_mut().insert(crate::api::RemoteAddr(peer));
            async move {
                use tower::ServiceExt;
                router.oneshot(req.map(axum::body::Body::new)).await
            }
        };
        serve_hyper(api_listener, service, rx, drain, limits, "API").await;
    });
}

/// A connection accepted for a data-plane worker, with its place under the per-address cap.
type Handoff = (std::net::TcpStream, SocketAddr, IpSlot);

/// A data-plane worker as the acceptor sees it.
struct Worker {
    /// Where its connections go.
    conns: mpsc::UnboundedSender<Handoff>,
    /// How many connections it has open.
    open: Arc<AtomicUsize>,
}

/// Accepts data-plane connections and hands each to the worker with the fewest open ones,
/// until `shutdown` flips; dropping the workers' channels then starts their drain.
async fn accept_for_workers(
    listener: TcpListener,
    workers: Vec<Worker>,
    limits: ConnLimits,
    mut shutdown: watch::Receiver<bool>,
) {
    let per_ip = Arc::new(PerIp::default());
    let mut backoff = Duration::ZERO;
    loop {
        tokio::select! {
            accepted = net::accept(&listener, "data plane", &per_ip, limits.max_per_ip, &mut backoff) => {
                let Some((stream, peer, slot)) = accepted else { continue };
                let Ok(stream) = stream.into_std() else { continue };
                let Some(worker) = workers
                    .iter()
                    .filter(|w| !w.conns.is_closed())
                    .min_by_key(|w| w.open.load(Ordering::Relaxed))
                else {
                    tracing::error!("data plane: no worker is running; refusing connections");
                    break;
                };
                worker.open.fetch_add(1, Ordering::Relaxed);
                if worker.conns.send((stream, peer, slot)).is_err() {
                    worker.open.fetch_sub(1, Ordering::Relaxed);
                }
            }
            _ = shutdown.changed() => break,
        }
    }
}

/// One data-plane worker thread: a single-threaded runtime serving the connections handed to
/// it until the acceptor stops, then draining them (within `drain`) and waiting for the
/// executions it started to finish writing their records.
fn data_worker(
    app: Arc<App>,
    mut conns: mpsc::UnboundedReceiver<Handoff>,
    open: Arc<AtomicUsize>,
    drain: Duration,
    limits: ConnLimits,
) {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(error = %e, "cannot start a data-plane worker runtime");
            return;
        }
    };
    runtime.block_on(async move {
        let builder = http_builder(limits);
        let graceful = GracefulShutdown::new();
        let service = data_service(app);
        while let Some((stream, peer, slot)) = conns.recv().await {
            let stream = match tokio::net::TcpStream::from_std(stream) {
                Ok(s) => s,
                Err(e) => {
                    open.fetch_sub(1, Ordering::Relaxed);
                    tracing::warn!(error = %e, "data plane: cannot take a connection");
                    continue;
                }
            };
            let open = open.clone();
            serve_connection(
                &builder,
                &graceful,
                (stream, peer, slot),
                service.clone(),
                limits,
                "data plane",
                move || {
                    open.fetch_sub(1, Ordering::Relaxed);
                },
            );
        }
        let deadline = tokio::time::Instant::now() + drain;
        if tokio::time::timeout_at(deadline, graceful.shutdown())
            .await
            .is_err()
        {
            tracing::warn!("data plane: drain timeout passed with requests still in flight");
        }
        // Connections are done; guest tasks may still be writing their execution records.
        // Idle upstream connections of this worker's guests close now, not at the deadline.
        crate::runtime::client::release_thread_pools();
        let metrics = tokio::runtime::Handle::current().metrics();
        while metrics.num_alive_tasks() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    });
}

/// What the data plane's service returns for a request.
type DataResponse = std::pin::Pin<
    Box<
        dyn Future<
                Output = Result<
                    hyper::Response<wasmtime_wasi_http::p2::body::HyperOutgoingBody>,
                    std::convert::Infallible,
                >,
            > + Send,
    >,
>;

/// The data plane's service: every request goes to [`crate::dataplane::handle`].
fn data_service(
    app: Arc<App>,
) -> impl Fn(hyper::Request<IdleBody>, SocketAddr) -> DataResponse + Clone + Send + Sync + 'static {
    move |req, _peer| {
        let app = app.clone();
        Box::pin(async move { Ok(crate::dataplane::handle(app, req).await) })
    }
}

/// The HTTP/1.1 and HTTP/2 connection settings of both listeners.
fn http_builder(limits: ConnLimits) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_buf_size(64 * 1024);
    // HTTP/2 pings a quiet peer and drops it if it does not answer.
    let ping = (limits.idle_timeout / 2).max(Duration::from_secs(1));
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(ping))
        .keep_alive_timeout(ping.min(Duration::from_secs(20)));
    builder
}

/// Serves one accepted connection with `service` on the current runtime, under `limits`:
/// request bodies fail after the body-idle deadline, and the connection is dropped when it
/// breaks its first-request or idle deadline (see [`crate::net`]). `on_end` runs when it is
/// over; its per-address slot is given back then.
fn serve_connection<S, F, B>(
    builder: &auto::Builder<TokioExecutor>,
    graceful: &GracefulShutdown,
    (stream, peer, slot): (tokio::net::TcpStream, SocketAddr, IpSlot),
    service: S,
    limits: ConnLimits,
    what: &'static str,
    on_end: impl FnOnce() + Send + 'static,
) where
    S: Fn(hyper::Request<IdleBody>, SocketAddr) -> F + Send + Sync + 'static,
    F: Future<Output = Result<hyper::Response<B>, std::convert::Infallible>> + Send + 'static,
    B: hyper::body::Body + Unpin + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let activity = Activity::new();
    let seen = activity.clone();
    let service = Arc::new(service);
    let svc = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
        let in_flight = seen.begin();
        let req = req.map(|body| IdleBody::new(body, limits.body_idle_timeout));
        let response = service(req, peer);
        async move {
            let response = response.await?;
            Ok::<_, std::convert::Infallible>(response.map(|b| Guarded::new(b, in_flight)))
        }
    });
    let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), svc);
    let conn = graceful.watch(conn.into_owned());
    tokio::spawn(async move {
        let _slot = slot;
        let _counted = crate::metrics::connection(what);
        tokio::select! {
            ended = conn => {
                if let Err(e) = ended {
                    tracing::debug!(%what, error = %e, "connection ended with an error");
                }
            }
            () = net::watchdog(activity, limits) => {
                tracing::debug!(%what, %peer, "connection closed: first-request or idle deadline");
            }
        }
        on_end();
    });
}

/// Accepts connections on `listener` and serves HTTP/1.1 and HTTP/2 with `service` until
/// `shutdown` flips, then drains for at most `drain`.
pub(crate) async fn serve_hyper<S, F, B>(
    listener: TcpListener,
    service: S,
    mut shutdown: watch::Receiver<bool>,
    drain: Duration,
    limits: ConnLimits,
    what: &'static str,
) where
    S: Fn(hyper::Request<IdleBody>, SocketAddr) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Result<hyper::Response<B>, std::convert::Infallible>> + Send + 'static,
    B: hyper::body::Body + Unpin + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let builder = http_builder(limits);
    let graceful = GracefulShutdown::new();
    let per_ip = Arc::new(PerIp::default());
    let mut backoff = Duration::ZERO;
    loop {
        tokio::select! {
            accepted = net::accept(&listener, what, &per_ip, limits.max_per_ip, &mut backoff) => {
                let Some(accepted) = accepted else { continue };
                serve_connection(&builder, &graceful, accepted, service.clone(), limits, what, || {});
            }
            _ = shutdown.changed() => break,
        }
    }
    drop(listener);
    if tokio::time::timeout(drain, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(%what, "drain timeout passed with requests still in flight");
    }
}
