//! What `edgeward serve` is configured with (flags, environment, config file).

use crate::net::ConnLimits;
use crate::runtime::RuntimeConfig;
use crate::secrets::vault::VaultConfig;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Everything `edgeward serve` is configured with.
#[derive(Debug)]
pub struct ServeConfig {
    /// The data directory.
    pub data_dir: PathBuf,
    /// The data-plane address.
    pub listen: SocketAddr,
    /// The API address.
    pub api_listen: SocketAddr,
    /// Where Prometheus scrapes `/metrics`; none records no metrics.
    pub metrics_listen: Option<SocketAddr>,
    /// The largest component accepted, bytes.
    pub max_upload_bytes: usize,
    /// The embedded backend's master key (hex), instead of `<data-dir>/master.key`.
    pub master_key: Option<secrecy::SecretString>,
    /// The metadata store: `None` for SQLite in the data directory, or a PostgreSQL URL
    /// (cluster mode). Secret, since the URL may carry a password.
    pub store: Option<secrecy::SecretString>,
    /// How to reach a PostgreSQL store: its CA, the pool's size, the connect timeout.
    pub store_options: crate::store::PgOptions,
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
    /// How long a component goes without a request before its code pages are given back; none
    /// keeps them mapped.
    pub code_idle: Option<Duration>,
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
    /// How many versions of each secret the embedded backend keeps.
    pub versions_kept: u32,
    /// The rule new secret names follow.
    pub names: crate::names::NameRule,
}

impl Default for SecretsConfig {
    fn default() -> Self {
        SecretsConfig {
            vault: None,
            cache_ttl: Duration::from_secs(30),
            timeout: Duration::from_secs(2),
            versions_kept: crate::secrets::embedded::DEFAULT_VERSIONS_KEPT,
            names: crate::names::NameRule::Default,
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
            metrics_listen: None,
            max_upload_bytes: 50 << 20,
            master_key: None,
            store: None,
            store_options: crate::store::PgOptions::default(),
            drain_timeout: Duration::from_secs(30),
            runtime: RuntimeConfig::default(),
            secrets: SecretsConfig::default(),
            retention: crate::executions::Retention::default(),
            audit_max_age: Duration::from_secs(365 * 24 * 3600),
            limits: ConnLimits::default(),
            data_workers: default_data_workers(),
            code_idle: Some(Duration::from_secs(10)),
        }
    }
}

/// One data-plane worker per CPU.
pub fn default_data_workers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}
