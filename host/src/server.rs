//! `edgeward serve`: opens the data directory, loads what was deployed, and runs the data
//! plane and the API on their own listeners until asked to stop, then drains.

use crate::auth;
use crate::datadir::DataDir;
use crate::net::{self, Activity, ConnLimits, Guarded, IdleBody, IpSlot, PerIp};
use crate::packages::Packages;
use crate::runtime::{Runtime, RuntimeConfig};
use crate::secrets::SecretBackend;
use crate::secrets::cache::CachedBackend;
use crate::secrets::embedded::EmbeddedBackend;
use crate::secrets::vault::{VaultBackend, VaultConfig};
use crate::store::Store;
use anyhow::Context as _;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

/// The SQLite file under the data directory.
pub const DB_FILE: &str = "edgeward.db";
/// How often audit retention is applied.
const AUDIT_PRUNE_EVERY: Duration = Duration::from_secs(3600);
/// Where a running server writes its real addresses, for the CLI.
pub const SERVER_FILE: &str = "server.json";

/// Everything `edgeward serve` is configured with.
#[derive(Debug)]
pub struct ServeConfig {
    /// The data directory.
    pub data_dir: PathBuf,
    /// The data-plane address.
    pub listen: SocketAddr,
    /// The API address.
    pub api_listen: SocketAddr,
    /// The largest component accepted, bytes.
    pub max_upload_bytes: usize,
    /// The embedded backend's master key (hex), instead of `<data-dir>/master.key`.
    pub master_key: Option<secrecy::SecretString>,
    /// The metadata store: `None` for SQLite in the data directory, or a PostgreSQL URL
    /// (cluster mode). Secret, since the URL may carry a password.
    pub store: Option<secrecy::SecretString>,
    /// How long to wait for in-flight requests on shutdown.
    pub drain_timeout: Duration,
    /// Engine settings and default limits.
    pub runtime: RuntimeConfig,
    /// Where secrets live and how they are cached.
    pub secrets: SecretsConfig,
    /// How long execution records are kept.
    pub retention: crate::executions::Retention,
    /// How long audit records are kept.
    pub audit_max_age: Duration,
    /// Deadlines and the per-address cap of both listeners.
    pub limits: ConnLimits,
    /// Data-plane worker threads, each with its own single-threaded async runtime: the
    /// listener hands each connection to the worker with the fewest open connections, and every
    /// request on it is then read, run and answered on that one thread. 0 serves the data plane
    /// on the shared multi-threaded runtime.
    pub data_workers: usize,
}

/// The secret backend and its cache.
#[derive(Debug)]
pub struct SecretsConfig {
    /// Vault (or OpenBao) when set; the embedded store otherwise.
    pub vault: Option<VaultConfig>,
    /// How long a resolved secret (or its absence) is cached.
    pub cache_ttl: Duration,
    /// How long one backend call may take before it counts as `unavailable`.
    pub timeout: Duration,
}

impl Default for SecretsConfig {
    fn default() -> Self {
        SecretsConfig {
            vault: None,
            cache_ttl: Duration::from_secs(30),
            timeout: Duration::from_secs(2),
        }
    }
}

impl ServeConfig {
    /// The defaults, with `data_dir`.
    pub fn with_data_dir(data_dir: PathBuf) -> ServeConfig {
        ServeConfig {
            data_dir,
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            api_listen: SocketAddr::from(([127, 0, 0, 1], 8081)),
            max_upload_bytes: 50 << 20,
            master_key: None,
            store: None,
            drain_timeout: Duration::from_secs(30),
            runtime: RuntimeConfig::default(),
            secrets: SecretsConfig::default(),
            retention: crate::executions::Retention::default(),
            audit_max_age: Duration::from_secs(365 * 24 * 3600),
            limits: ConnLimits::default(),
            data_workers: default_data_workers(),
        }
    }
}

/// One data-plane worker per CPU.
pub fn default_data_workers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The state shared by both listeners.
pub struct App {
    /// The engine and linker.
    pub runtime: Arc<Runtime>,
    /// The metadata store.
    pub store: Store,
    /// The data directory.
    pub data_dir: Arc<DataDir>,
    /// Where secrets are kept.
    pub backend: Arc<dyn SecretBackend>,
    /// Deployed packages and what serves.
    pub packages: Packages,
    /// The largest component accepted, bytes.
    pub max_upload_bytes: usize,
    /// The API's base URL (for unwrap links).
    pub api_url: String,
    /// Where execution records go.
    pub recorder: crate::executions::Recorder,
    /// The secret cache, which the change feed keeps current.
    pub cache: Arc<CachedBackend>,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App").finish_non_exhaustive()
    }
}

/// A running server.
#[derive(Debug)]
pub struct Server {
    listen_addr: SocketAddr,
    api_addr: SocketAddr,
    admin_token_path: PathBuf,
    admin_token_created: Option<bool>,
    shutdown: watch::Sender<bool>,
    tasks: JoinSet<()>,
    app: Arc<App>,
    drain: Duration,
    /// The data directory's lock, held while the server runs.
    _lock: std::fs::File,
}

impl Server {
    /// Opens everything, binds both listeners and starts serving.
    pub async fn start(config: ServeConfig) -> anyhow::Result<Server> {
        let data_dir = Arc::new(DataDir::open(&config.data_dir).with_context(|| {
            format!("cannot open data directory {}", config.data_dir.display())
        })?);
        let lock = data_dir.lock()?;
        data_dir
            .restrict(&[crate::packages::ARTIFACTS_DIR])
            .context("cannot make the data directory private")?;
        let cluster = config.store.is_some();
        let store = match &config.store {
            Some(url) => {
                if config.secrets.vault.is_none() && config.master_key.is_none() {
                    anyhow::bail!(
                        "cluster mode (--store postgres://...) with the embedded secret backend \
                         needs EDGEWARD_MASTER_KEY, the same on every host: a key file in one \
                         host's data directory would leave the others unable to decrypt"
                    );
                }
                tracing::info!("metadata in PostgreSQL (cluster mode)");
                Store::connect(secrecy::ExposeSecret::expose_secret(url))
                    .await
                    .context("cannot open the metadata store")?
            }
            None => {
                // The store's file is created 0600 before SQLite opens it (its WAL and
                // shared-memory files take the same mode).
                if !data_dir.exists(DB_FILE) {
                    data_dir.write_atomic(DB_FILE, b"", 0o600)?;
                }
                Store::open(&data_dir.path().join(DB_FILE))
                    .context("cannot open the metadata store")?
            }
        };
        // Changes from now on, from every host; subscribed before anything is loaded so that
        // nothing falls between the load and the first change heard.
        let changes = store.subscribe();
        // A crash mid-write leaves temp files; the real files were never replaced by them.
        for dir in [".", crate::packages::ARTIFACTS_DIR] {
            let removed = data_dir.sweep_temp_files(dir)?;
            if removed > 0 {
                tracing::info!(
                    removed,
                    dir,
                    "removed temp files left by an interrupted write"
                );
            }
        }
        let backend: Arc<dyn SecretBackend> = match config.secrets.vault {
            Some(vault) => {
                tracing::info!(addr = %vault.addr, mount = %vault.mount, prefix = %vault.prefix, "secrets in Vault");
                let vault = VaultBackend::new(vault)?;
                // Imports a crash interrupted are settled before anything is served.
                match vault.recover_imports().await {
                    Ok((0, 0)) => {}
                    Ok((undone, kept)) => {
                        tracing::warn!(undone, kept, "settled imports interrupted by a crash")
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "could not settle interrupted imports; retried at the next start")
                    }
                }
                Arc::new(vault)
            }
            None => {
                let key = EmbeddedBackend::load_key(
                    &data_dir,
                    config
                        .master_key
                        .as_ref()
                        .map(secrecy::ExposeSecret::expose_secret),
                )?;
                Arc::new(EmbeddedBackend::new(store.clone(), &key))
            }
        };
        let cache = Arc::new(
            CachedBackend::new(backend, config.secrets.cache_ttl, config.secrets.timeout)
                .with_feed(store.clone()),
        );
        let backend: Arc<dyn SecretBackend> = cache.clone();
        let runtime = Arc::new(Runtime::new(config.runtime.clone())?);
        let packages = Packages::new(runtime.clone(), store.clone(), data_dir.clone());
        let started = std::time::Instant::now();
        let loaded = packages.load_all().await?;
        tracing::info!(
            loaded,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "packages loaded"
        );
        // One host does not make the first admin of a cluster: `edgeward admin init` does, once.
        let admin_token_created = if cluster {
            if !store.user_exists(auth::ADMIN_USER.into()).await? {
                tracing::warn!(
                    "this cluster has no admin yet: run `edgeward admin init --store ...` once"
                );
            }
            None
        } else {
            Some(auth::ensure_admin_token(&store, &data_dir).await?)
        };
        let admin_token_path = data_dir.path().join(auth::ADMIN_TOKEN_FILE);

        let store_for_records = store.clone();
        let data_listener = TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("cannot listen on {} (data plane)", config.listen))?;
        let api_listener = TcpListener::bind(config.api_listen)
            .await
            .with_context(|| format!("cannot listen on {} (API)", config.api_listen))?;
        let listen_addr = data_listener.local_addr()?;
        let api_addr = api_listener.local_addr()?;
        let app = Arc::new(App {
            runtime,
            store,
            data_dir: data_dir.clone(),
            backend,
            packages,
            max_upload_bytes: config.max_upload_bytes,
            api_url: format!("http://{api_addr}"),
            recorder: crate::executions::Recorder::start(store_for_records, config.retention)
                .context("cannot start the execution record writer")?,
            cache,
        });
        let server_file = serde_json::json!({
            "listen": format!("http://{listen_addr}"),
            "api": format!("http://{api_addr}"),
            "pid": std::process::id(),
        });
        data_dir.write_atomic(SERVER_FILE, server_file.to_string().as_bytes(), 0o600)?;

        let (shutdown, _) = watch::channel(false);
        let mut tasks = JoinSet::new();
        {
            // Audit retention: once at start, then every hour.
            let (store, mut rx) = (app.store.clone(), shutdown.subscribe());
            let max_age = i64::try_from(config.audit_max_age.as_millis()).unwrap_or(i64::MAX);
            tasks.spawn(async move {
                let mut tick = tokio::time::interval(AUDIT_PRUNE_EVERY);
                loop {
                    tokio::select! {
                        _ = tick.tick() => {
                            let before = crate::store::now_ms().saturating_sub(max_age);
                            match store.prune_audit(before).await {
                                Ok(0) => {}
                                Ok(n) => tracing::info!(removed = n, "audit records past retention removed"),
                                Err(e) => tracing::error!(error = %e, "could not apply audit retention"),
                            }
                            // An expired token's key slot is of no use to anyone but a thief
                            // of the database and the token both.
                            if let Err(e) = store.drop_expired_slots().await {
                                tracing::error!(error = %e, "could not drop expired key slots");
                            }
                        }
                        _ = rx.changed() => break,
                    }
                }
            });
        }
        tasks.spawn(follow_changes(app.clone(), changes, shutdown.subscribe()));
        let drain = config.drain_timeout;
        let limits = config.limits;
        if config.data_workers == 0 {
            let (app, rx) = (app.clone(), shutdown.subscribe());
            tasks.spawn(async move {
                let service = data_service(app);
                serve_hyper(data_listener, service, rx, drain, limits, "data plane").await;
            });
        } else {
            let mut workers = Vec::with_capacity(config.data_workers);
            for i in 0..config.data_workers {
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
                workers.push(Worker {
                    conns: conn_tx,
                    open,
                });
            }
            let rx = shutdown.subscribe();
            tasks.spawn(accept_for_workers(data_listener, workers, limits, rx));
        }
        {
            let router = crate::api::router(app.clone());
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
        Ok(Server {
            listen_addr,
            api_addr,
            admin_token_path,
            admin_token_created,
            shutdown,
            tasks,
            app,
            drain,
            _lock: lock,
        })
    }

    /// The data plane's bound address.
    pub fn listen_addr(&self) -> SocketAddr {
        self.listen_addr
    }

    /// The API's bound address.
    pub fn api_addr(&self) -> SocketAddr {
        self.api_addr
    }

    /// Where the admin token is, and whether it was created by this start.
    /// The admin token file and whether this start created it; `None` in cluster mode,
    /// where `edgeward admin init` makes the first admin.
    pub fn admin_token(&self) -> (&std::path::Path, Option<bool>) {
        (&self.admin_token_path, self.admin_token_created)
    }

    /// Stops accepting, lets in-flight requests finish (up to the drain timeout), and returns.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        while self.tasks.join_next().await.is_some() {}
        // Executions that finished during the drain are still written.
        self.app.recorder.close(self.drain).await;
    }
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
/// Applies the change feed to this host: packages changed on any host serve (or stop) here,
/// secrets written through any host leave this host's cache. After an interruption (a lost
/// feed connection, or this task falling behind) everything is reloaded.
async fn follow_changes(
    app: Arc<App>,
    mut changes: tokio::sync::broadcast::Receiver<crate::store::Change>,
    mut shutdown: watch::Receiver<bool>,
) {
    use crate::store::Change;
    use tokio::sync::broadcast::error::RecvError;
    loop {
        let change = tokio::select! {
            change = changes.recv() => change,
            _ = shutdown.changed() => return,
        };
        match change {
            Ok(Change::Package {
                project,
                package,
                generation,
            }) => app.packages.refresh(&project, &package, generation).await,
            Ok(Change::Secret { scope, owner, name }) => {
                app.cache.forget_change(&scope, &owner, &name)
            }
            // No host caches tokens or roles: each request reads them from the store.
            Ok(Change::Identity { .. }) => {}
            Ok(Change::Resync) | Err(RecvError::Lagged(_)) => {
                app.cache.clear();
                if let Err(e) = app.packages.refresh_all().await {
                    tracing::error!(error = %e, "could not resynchronise packages with the store");
                }
            }
            Err(RecvError::Closed) => return,
        }
    }
}

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

/// The data plane's service: every request goes to [`crate::trigger::handle`].
fn data_service(
    app: Arc<App>,
) -> impl Fn(hyper::Request<IdleBody>, SocketAddr) -> DataResponse + Clone + Send + Sync + 'static {
    move |req, _peer| {
        let app = app.clone();
        Box::pin(async move { Ok(crate::trigger::handle(app, req).await) })
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
async fn serve_hyper<S, F, B>(
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

/// Resolves on Ctrl-C or SIGTERM.
pub async fn wait_for_shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

/// Reads and discards up to `limit` bytes of a request body a handler refused, for at most a
/// few seconds. A client that is still sending then reads the refusal instead of finding the
/// connection closed under it.
pub async fn drain<B>(body: B, limit: usize)
where
    B: hyper::body::Body,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    use http_body_util::BodyExt;
    let limited = http_body_util::Limited::new(body, limit);
    let _ = tokio::time::timeout(Duration::from_secs(5), limited.collect()).await;
}
