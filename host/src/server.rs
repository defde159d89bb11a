//! `edgeward serve`: opens the data directory, loads what was deployed, and runs the data
//! plane and the API on their own listeners until asked to stop, then drains.

use crate::app::App;
use crate::auth;
use crate::datadir::{DB_FILE, DataDir, SERVER_FILE};
use crate::packages::Packages;
use crate::runtime::Runtime;
use crate::secrets::SecretBackend;
use crate::secrets::cache::CachedBackend;
use crate::secrets::embedded::EmbeddedBackend;
use crate::secrets::vault::VaultBackend;
use crate::store::Store;
use anyhow::Context as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

pub use crate::config::{SecretsConfig, ServeConfig, default_data_workers};

/// How often audit retention is applied.
const AUDIT_PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// A running server.
#[derive(Debug)]
pub struct Server {
    listen_addr: SocketAddr,
    api_addr: SocketAddr,
    metrics_addr: Option<SocketAddr>,
    admin_token_path: PathBuf,
    admin_token_created: Option<bool>,
    shutdown: watch::Sender<bool>,
    tasks: JoinSet<()>,
    app: Arc<App>,
    drain: Duration,
    /// The data directory's lock, held while the server runs.
    _lock: std::fs::File,
}

/// Installs the metrics recorder and binds its listener, when metrics are asked for.
async fn bind_metrics(
    addr: Option<SocketAddr>,
) -> anyhow::Result<Option<(metrics_exporter_prometheus::PrometheusHandle, TcpListener)>> {
    let Some(addr) = addr else {
        return Ok(None);
    };
    let handle = crate::metrics::install().context("cannot install the metrics recorder")?;
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr} (metrics)"))?;
    Ok(Some((handle, listener)))
}

/// The metadata store: PostgreSQL in cluster mode, else SQLite in the data directory.
async fn open_store(config: &ServeConfig, data_dir: &DataDir) -> anyhow::Result<Store> {
    Ok(match &config.store {
        Some(url) => {
            if config.secrets.vault.is_none() && config.master_key.is_none() {
                anyhow::bail!(
                    "cluster mode (--store postgres://...) with the embedded secret backend \
                     needs EDGEWARD_MASTER_KEY, the same on every host: a key file in one \
                     host's data directory would leave the others unable to decrypt"
                );
            }
            tracing::info!("metadata in PostgreSQL (cluster mode)");
            Store::connect_with(
                secrecy::ExposeSecret::expose_secret(url),
                &config.store_options,
            )
            .await
            .context("cannot open the metadata store")?
        }
        None => {
            // The store's file is created 0600 before SQLite opens it (its WAL and
            // shared-memory files take the same mode).
            if !data_dir.exists(DB_FILE) {
                data_dir.write_atomic(DB_FILE, b"", 0o600)?;
            }
            Store::open(&data_dir.path().join(DB_FILE)).context("cannot open the metadata store")?
        }
    })
}

/// The secret backend (Vault, or the embedded one), behind the cache every host keeps.
async fn open_backend(
    config: &ServeConfig,
    vault: Option<crate::secrets::vault::VaultConfig>,
    data_dir: &DataDir,
    store: &Store,
) -> anyhow::Result<(Arc<CachedBackend>, Arc<dyn SecretBackend>)> {
    let backend: Arc<dyn SecretBackend> = match vault {
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
                data_dir,
                config
                    .master_key
                    .as_ref()
                    .map(secrecy::ExposeSecret::expose_secret),
            )?;
            Arc::new(
                EmbeddedBackend::new(store.clone(), &key).keeping(config.secrets.versions_kept),
            )
        }
    };
    let cache = Arc::new(
        CachedBackend::new(backend, config.secrets.cache_ttl, config.secrets.timeout)
            .with_feed(store.clone()),
    );
    let backend: Arc<dyn SecretBackend> = cache.clone();
    Ok((cache, backend))
}

/// The admin token: made on first start of a single host; a cluster's first admin is made once
/// by `edgeward admin init`, not by whichever host starts first.
async fn admin_token(
    cluster: bool,
    store: &Store,
    data_dir: &DataDir,
) -> anyhow::Result<Option<bool>> {
    if cluster {
        if !store.user_exists(auth::ADMIN_USER.into()).await? {
            tracing::warn!(
                "this cluster has no admin yet: run `edgeward admin init --store ...` once"
            );
        }
        return Ok(None);
    }
    Ok(Some(auth::ensure_admin_token(store, data_dir).await?))
}

/// Audit retention and expired key slots: once at start, then every hour.
fn spawn_housekeeping(
    store: &Store,
    audit_max_age: Duration,
    shutdown: &watch::Sender<bool>,
    tasks: &mut JoinSet<()>,
) {
    let (store, mut rx) = (store.clone(), shutdown.subscribe());
    tasks.spawn(async move {
        let mut tick = tokio::time::interval(AUDIT_PRUNE_EVERY);
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    crate::audit::apply_retention(&store, audit_max_age).await;
                    // An expired token's key slot is of no use to anyone but a thief of the
                    // database and the token both.
                    if let Err(e) = store.drop_expired_slots().await {
                        tracing::error!(error = %e, "could not drop expired key slots");
                    }
                }
                _ = rx.changed() => break,
            }
        }
    });
}

/// Every half of `idle`, gives back the code pages of the components idle that long
/// ([`crate::packages::Packages::release_idle_code`]).
fn spawn_code_release(
    app: Arc<App>,
    idle: Duration,
    shutdown: &watch::Sender<bool>,
    tasks: &mut JoinSet<()>,
) {
    let mut rx = shutdown.subscribe();
    tasks.spawn(async move {
        let mut tick = tokio::time::interval((idle / 2).max(Duration::from_secs(1)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    let app = app.clone();
                    let released = tokio::task::spawn_blocking(move || {
                        app.packages.release_idle_code(idle)
                    })
                    .await
                    .unwrap_or(0);
                    if released > 0 {
                        tracing::debug!(released, "gave back the code pages of idle components");
                    }
                }
                _ = rx.changed() => break,
            }
        }
    });
}

/// The data directory, opened, locked for this server and made private.
fn open_data_dir(path: &std::path::Path) -> anyhow::Result<(Arc<DataDir>, std::fs::File)> {
    let data_dir = Arc::new(
        DataDir::open(path)
            .with_context(|| format!("cannot open data directory {}", path.display()))?,
    );
    let lock = data_dir.lock()?;
    data_dir
        .restrict(&[crate::packages::ARTIFACTS_DIR])
        .context("cannot make the data directory private")?;
    Ok((data_dir, lock))
}

/// Removes the temp files a crash mid-write left (the real files were never replaced by them).
fn sweep_temp_files(data_dir: &DataDir) -> anyhow::Result<()> {
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
    Ok(())
}

/// Binds the data plane's and the API's listeners.
async fn bind_listeners(config: &ServeConfig) -> anyhow::Result<(TcpListener, TcpListener)> {
    let data = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {} (data plane)", config.listen))?;
    let api = TcpListener::bind(config.api_listen)
        .await
        .with_context(|| format!("cannot listen on {} (API)", config.api_listen))?;
    Ok((data, api))
}

/// `server.json` in the data directory: where this server listens, for the CLI on this host.
fn write_server_file(
    data_dir: &DataDir,
    listen: SocketAddr,
    api: SocketAddr,
) -> anyhow::Result<()> {
    let server_file = serde_json::json!({
        "listen": format!("http://{listen}"),
        "api": format!("http://{api}"),
        "pid": std::process::id(),
    });
    data_dir.write_atomic(SERVER_FILE, server_file.to_string().as_bytes(), 0o600)?;
    Ok(())
}

impl Server {
    /// Opens everything, binds both listeners and starts serving.
    pub async fn start(mut config: ServeConfig) -> anyhow::Result<Server> {
        crate::install_crypto();
        // The recorder goes in before anything makes a metric handle (packages at load).
        let metrics = bind_metrics(config.metrics_listen).await?;
        let (data_dir, lock) = open_data_dir(&config.data_dir)?;
        let cluster = config.store.is_some();
        let store = open_store(&config, &data_dir).await?;
        // Changes from now on, from every host; subscribed before anything is loaded so that
        // nothing falls between the load and the first change heard.
        let changes = store.subscribe();
        // A crash mid-write leaves temp files; the real files were never replaced by them.
        sweep_temp_files(&data_dir)?;
        let vault = config.secrets.vault.take();
        let (cache, backend) = open_backend(&config, vault, &data_dir, &store).await?;
        let runtime = Arc::new(Runtime::new(config.runtime.clone())?);
        let packages = Packages::new(runtime.clone(), store.clone(), data_dir.clone());
        let started = std::time::Instant::now();
        let loaded = packages.load_all().await?;
        tracing::info!(
            loaded,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "packages loaded"
        );
        match packages.sweep_artifacts(crate::packages::SWEEP_AFTER).await {
            Ok(0) => {}
            Ok(removed) => tracing::info!(removed, "artifacts nothing can load were removed"),
            Err(e) => tracing::warn!(error = %e, "artifacts not swept"),
        }
        let admin_token_created = admin_token(cluster, &store, &data_dir).await?;
        let admin_token_path = data_dir.path().join(auth::ADMIN_TOKEN_FILE);

        let store_for_records = store.clone();
        let (data_listener, api_listener) = bind_listeners(&config).await?;
        let listen_addr = data_listener.local_addr()?;
        let api_addr = api_listener.local_addr()?;
        let metrics_addr = match &metrics {
            Some((_, l)) => Some(l.local_addr()?),
            None => None,
        };
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
            secret_names: config.secrets.names,
            grants: Default::default(),
            tokens: Default::default(),
        });
        write_server_file(&data_dir, listen_addr, api_addr)?;

        let (shutdown, _) = watch::channel(false);
        let mut tasks = JoinSet::new();
        spawn_housekeeping(&app.store, config.audit_max_age, &shutdown, &mut tasks);
        if let Some(idle) = config.code_idle {
            spawn_code_release(app.clone(), idle, &shutdown, &mut tasks);
        }
        tasks.spawn(crate::app::follow_changes(
            app.clone(),
            changes,
            shutdown.subscribe(),
        ));
        let drain = config.drain_timeout;
        crate::listeners::start_data_plane(
            app.clone(),
            data_listener,
            config.data_workers,
            (drain, config.limits),
            &shutdown,
            &mut tasks,
        )?;
        crate::listeners::start_api(
            app.clone(),
            api_listener,
            (drain, config.limits),
            &shutdown,
            &mut tasks,
        );
        if let Some((handle, listener)) = metrics {
            crate::listeners::start_metrics(
                app.clone(),
                handle,
                listener,
                config.limits,
                &shutdown,
                &mut tasks,
            );
        }
        Ok(Server {
            listen_addr,
            api_addr,
            metrics_addr,
            admin_token_path,
            admin_token_created,
            shutdown,
            tasks,
            app,
            drain,
            _lock: lock,
        })
    }

    /// The server's shared state, for callers in the same process (`edgeward dev` deploys
    /// through it).
    pub fn app(&self) -> &Arc<App> {
        &self.app
    }

    /// The data plane's bound address.
    pub fn listen_addr(&self) -> SocketAddr {
        self.listen_addr
    }

    /// Applies a new configuration's reloadable parts: the package limits (to what serves and
    /// to what loads later). Returns the notices of limits held to the new maxima.
    pub fn reload_limits(&self, config: &ServeConfig) -> Vec<String> {
        self.app.runtime.set_limits(&config.runtime);
        self.app.packages.reapply_limits()
    }

    /// Applies a new configuration's `--outbound-ca` to executions from now on; an unusable
    /// bundle keeps the one in use and says why.
    pub fn reload_outbound_ca(&self, config: &ServeConfig) -> Result<(), String> {
        self.app
            .runtime
            .set_outbound_ca(&config.runtime.outbound_ca)
    }

    /// The metrics listener's bound address, when there is one.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
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
