//! `edgeward serve`: its flags, and the server configuration they describe.

use super::*;

/// `edgeward serve` flags.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// A TOML file of these flags by their long names (`api-listen = "0.0.0.0:8081"`,
    /// `timeout-ms = 5000`, `log = "info"`); flags and environment variables win over it.
    /// SIGHUP reads it again and applies the log filter, the package limits and the
    /// outbound CA bundle.
    #[arg(long, env = "EDGEWARD_CONFIG")]
    pub config: Option<PathBuf>,
    /// The log filter (`info`, `edgeward_host=debug`, …), as `EDGEWARD_LOG`.
    #[arg(long, env = "EDGEWARD_LOG")]
    pub log: Option<String>,
    /// Log lines as `text` or as `json` (one object per line).
    #[arg(long, env = "EDGEWARD_LOG_FORMAT", default_value = "text", value_parser = ["text", "json"])]
    pub log_format: String,
    /// Where state lives (SQLite, keys, compiled artifacts).
    #[arg(long, env = "EDGEWARD_DATA_DIR", default_value = ".edgeward")]
    pub data_dir: PathBuf,
    /// The metadata store: `sqlite` (a file in the data directory), or
    /// `postgres://user:password@host:port/database` for a cluster of hosts sharing one
    /// database (prefer the environment: a flag shows in `ps`).
    #[arg(
        long,
        env = "EDGEWARD_STORE",
        hide_env_values = true,
        default_value = "sqlite"
    )]
    pub store: Redacted,
    /// A PEM bundle of CA certificates for the PostgreSQL server's certificate (as
    /// `sslrootcert` in the URL; with it and no `sslmode`, the mode is `verify-full`).
    #[arg(long, env = "EDGEWARD_STORE_CA", value_name = "FILE")]
    pub store_ca: Option<PathBuf>,
    /// Connections to PostgreSQL in this host's pool (each host has its own, plus one that
    /// listens for changes).
    #[arg(long, env = "EDGEWARD_STORE_POOL", default_value_t = 16,
          value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub store_pool: u16,
    /// How long opening one PostgreSQL connection (TCP, TLS, authentication) may take:
    /// seconds (`5`) or a duration (`500ms`, `1m`).
    #[arg(long, env = "EDGEWARD_STORE_CONNECT_TIMEOUT", default_value = "5s",
          value_parser = parse_connect_timeout)]
    pub store_connect_timeout: std::time::Duration,
    /// The data-plane address (port 0 picks a free port).
    #[arg(long, env = "EDGEWARD_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// The API address (port 0 picks a free port).
    #[arg(long, env = "EDGEWARD_API_LISTEN", default_value = "127.0.0.1:8081")]
    pub api_listen: SocketAddr,
    /// Serve Prometheus metrics at `http://ADDR/metrics` (off unless given).
    #[arg(long, env = "EDGEWARD_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,
    /// The largest component accepted, in bytes.
    #[arg(long, env = "EDGEWARD_MAX_UPLOAD_BYTES", default_value_t = 50 << 20)]
    pub max_upload_bytes: usize,
    /// Default wall time per request, in milliseconds.
    #[arg(long, env = "EDGEWARD_TIMEOUT_MS", default_value_t = 30_000)]
    pub timeout_ms: u64,
    /// How long shutdown waits for in-flight requests, in seconds.
    #[arg(long, default_value_t = 30)]
    pub drain_seconds: u64,
    /// Where secrets live: `embedded` (encrypted in the data directory) or `vault`.
    #[arg(long, env = "EDGEWARD_SECRETS_BACKEND", default_value = "embedded", value_parser = ["embedded", "vault"])]
    pub secrets_backend: String,
    /// Vault's address (vault backend).
    #[arg(long, env = "VAULT_ADDR", default_value = "http://127.0.0.1:8200")]
    pub vault_addr: String,
    /// The KV v2 mount (vault backend).
    #[arg(long, env = "EDGEWARD_VAULT_MOUNT", default_value = "secret")]
    pub vault_mount: String,
    /// The path prefix under the mount (vault backend).
    #[arg(long, env = "EDGEWARD_VAULT_PREFIX", default_value = "edgeward")]
    pub vault_prefix: String,
    /// The AppRole auth mount, when `VAULT_ROLE_ID` and `VAULT_SECRET_ID` are set.
    #[arg(long, env = "EDGEWARD_VAULT_APPROLE_MOUNT", default_value = "approle")]
    pub vault_approle_mount: String,
    /// How long a client may take to send a request's headers, in milliseconds; on a new
    /// connection, from accept to the first request's headers (first byte, protocol detection).
    #[arg(long, env = "EDGEWARD_HEADER_TIMEOUT_MS", default_value_t = 10_000)]
    pub header_timeout_ms: u64,
    /// How long a connection may stay open with no request in flight, in milliseconds
    /// (HTTP/1 keep-alive and HTTP/2 alike).
    #[arg(long, env = "EDGEWARD_IDLE_TIMEOUT_MS", default_value_t = 60_000)]
    pub idle_timeout_ms: u64,
    /// The longest pause inside a request body, in milliseconds.
    #[arg(long, env = "EDGEWARD_BODY_IDLE_TIMEOUT_MS", default_value_t = 30_000)]
    pub body_idle_timeout_ms: u64,
    /// Connections one client address may hold open, per listener (behind a load balancer,
    /// every client has its address: raise this to what the balancer may open).
    #[arg(long, env = "EDGEWARD_MAX_CONNECTIONS_PER_IP", default_value_t = 1024)]
    pub max_connections_per_ip: usize,
    /// Execution records kept per package.
    #[arg(long, env = "EDGEWARD_EXECUTIONS_PER_PACKAGE", default_value_t = 1000)]
    pub executions_per_package: u32,
    /// Execution records one project may have waiting to be written; past it, its newest
    /// are dropped (counted in `edgeward_records_dropped_total`), never another project's.
    #[arg(
        long,
        env = "EDGEWARD_RECORD_QUEUE_PER_PROJECT",
        default_value_t = 2000
    )]
    pub record_queue_per_project: usize,
    /// Execution records older than this many hours are dropped.
    #[arg(long, env = "EDGEWARD_EXECUTIONS_MAX_AGE_HOURS", default_value_t = 168)]
    pub executions_max_age_hours: u64,
    /// Instances alive at once, platform-wide (the instance pool's size).
    #[arg(long, env = "EDGEWARD_MAX_INSTANCES", default_value_t = 1000)]
    pub max_instances: u32,
    /// Linear memory of all running instances together, MiB (each counts its `memory-mb`).
    #[arg(long, env = "EDGEWARD_MAX_MEMORY_MB", default_value_t = 16384)]
    pub max_memory_mb: u32,
    /// Instances one project may have alive at once.
    #[arg(long, env = "EDGEWARD_PROJECT_MAX_INSTANCES", default_value_t = 250)]
    pub project_max_instances: u32,
    /// Linear memory one project's running instances may hold together, MiB.
    #[arg(long, env = "EDGEWARD_PROJECT_MAX_MEMORY_MB", default_value_t = 4096)]
    pub project_max_memory_mb: u32,
    /// Guests that keep computing past their first epoch tick (2 ms) run at most this many at
    /// once, one tick per turn, turns going round the projects (default: one fewer than the
    /// CPUs, at least 1; 0 turns this off).
    #[arg(long, env = "EDGEWARD_CPU_SLOTS")]
    pub cpu_slots: Option<u32>,
    /// Let functions reach private destinations (loopback, RFC 1918, link-local, CGNAT, ULA,
    /// metadata names), which are refused by default whatever a manifest allows.
    #[arg(long, env = "EDGEWARD_OUTBOUND_ALLOW_PRIVATE")]
    pub outbound_allow_private: bool,
    /// A PEM bundle of CA certificates trusted for functions' outbound https, in addition to
    /// the public web PKI roots (for an internal CA). SIGHUP reads it again (a file that
    /// does not read keeps the bundle in use).
    #[arg(long, env = "EDGEWARD_OUTBOUND_CA", value_name = "FILE")]
    pub outbound_ca: Option<std::path::PathBuf>,
    /// Execution output (stdout and stderr) kept per project, across all its packages, in MiB;
    /// past it the project's oldest records go first.
    #[arg(
        long,
        env = "EDGEWARD_EXECUTIONS_MAX_MB_PER_PROJECT",
        default_value_t = 256
    )]
    pub executions_max_mb_per_project: u64,
    /// Audit records older than this many days are dropped (checked hourly).
    #[arg(long, env = "EDGEWARD_AUDIT_MAX_AGE_DAYS", default_value_t = 365)]
    pub audit_max_age_days: u64,
    /// How long resolved secrets are cached, in milliseconds (0 turns the cache off).
    #[arg(long, env = "EDGEWARD_SECRETS_CACHE_TTL_MS", default_value_t = 30_000)]
    pub secrets_cache_ttl_ms: u64,
    /// How long one secret-backend call may take, in milliseconds.
    #[arg(long, env = "EDGEWARD_SECRETS_TIMEOUT_MS", default_value_t = 2_000)]
    pub secrets_timeout_ms: u64,
    /// How many versions of each secret the embedded backend keeps (Vault keeps its own
    /// mount's `max_versions`).
    #[arg(long, env = "EDGEWARD_SECRET_VERSIONS", default_value_t = 10,
          value_parser = clap::value_parser!(u32).range(1..=100))]
    pub secret_versions: u32,
    /// The rule for new secret names: `default` (`[A-Za-z0-9][A-Za-z0-9_.-]*` per folder) or
    /// `rfc1123` (lowercase DNS names per folder, as Kubernetes and Lightning ask). Applies to
    /// writes; secrets already there stay readable.
    #[arg(long, env = "EDGEWARD_SECRET_NAMES", value_enum, default_value_t)]
    pub secret_names: crate::names::NameRule,
    /// Data-plane worker threads, each with its own runtime and listener (default: one per
    /// CPU; 0 serves the data plane on the shared runtime).
    #[arg(long, env = "EDGEWARD_DATA_WORKERS")]
    pub data_workers: Option<usize>,
    /// Seconds without a request after which a component's code pages are given back (the
    /// page cache keeps them; the next request maps what it touches again). 0 keeps them.
    #[arg(long, env = "EDGEWARD_CODE_IDLE_SECONDS", default_value_t = 10)]
    pub code_idle_seconds: u64,
}

/// `--store`: `sqlite` (or nothing) for the data directory's SQLite, or a PostgreSQL URL.
fn store_url(store: &str) -> Result<Option<secrecy::SecretString>, String> {
    match store {
        "" | "sqlite" => Ok(None),
        url if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
            Ok(Some(secrecy::SecretString::from(url.to_string())))
        }
        _ => Err(
            "--store must be `sqlite` or a postgres://user:password@host:port/database URL".into(),
        ),
    }
}

/// Vault credentials, from the environment only (never a flag, which `ps` shows): an AppRole
/// (`VAULT_ROLE_ID`, `VAULT_SECRET_ID`) or a token (`VAULT_TOKEN`).
fn vault_auth(approle_mount: String) -> Result<crate::secrets::vault::VaultAuth, String> {
    use crate::secrets::vault::VaultAuth;
    use zeroize::Zeroizing;
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    match (
        env("VAULT_ROLE_ID"),
        env("VAULT_SECRET_ID"),
        env("VAULT_TOKEN"),
    ) {
        (Some(role_id), Some(secret_id), _) => Ok(VaultAuth::AppRole {
            mount: approle_mount,
            role_id,
            secret_id: Zeroizing::new(secret_id),
        }),
        (_, _, Some(token)) => Ok(VaultAuth::Token(Zeroizing::new(token))),
        _ => Err(
            "the vault backend needs VAULT_TOKEN, or VAULT_ROLE_ID and VAULT_SECRET_ID, \
                  in the environment"
                .into(),
        ),
    }
}

impl ServeArgs {
    /// The server configuration these flags describe. Credentials (the master key,
    /// `VAULT_TOKEN`, `VAULT_SECRET_ID`) come only from the environment, never from a flag that
    /// would show in `ps`.
    pub fn into_config(self) -> Result<ServeConfig, String> {
        let mut config = ServeConfig::with_data_dir(self.data_dir);
        config.store = store_url(&self.store.0)?;
        config.store_options = crate::store::PgOptions {
            ca: self.store_ca,
            pool_size: usize::from(self.store_pool),
            connect_timeout: self.store_connect_timeout,
        };
        if let Some(url) = &config.store {
            crate::store::Store::check_url(
                secrecy::ExposeSecret::expose_secret(url),
                &config.store_options,
            )?;
        }
        config.listen = self.listen;
        config.api_listen = self.api_listen;
        config.metrics_listen = self.metrics_listen;
        config.max_upload_bytes = self.max_upload_bytes;
        config.drain_timeout = std::time::Duration::from_secs(self.drain_seconds);
        config.master_key = std::env::var("EDGEWARD_MASTER_KEY")
            .ok()
            .map(secrecy::SecretString::from);
        config.runtime = RuntimeConfig {
            default_timeout: std::time::Duration::from_millis(self.timeout_ms),
            outbound_allow_private: self.outbound_allow_private,
            outbound_ca: match &self.outbound_ca {
                Some(path) => crate::runtime::outbound::read_ca_bundle(path)?.into(),
                None => Vec::new().into(),
            },
            max_instances: self.max_instances.max(1),
            shares: crate::runtime::budgets::Shares {
                instances: self.max_instances.max(1),
                memory_mb: self.max_memory_mb.max(1),
                project_instances: self.project_max_instances.max(1),
                project_memory_mb: self.project_max_memory_mb.max(1),
                cpu_slots: self
                    .cpu_slots
                    .unwrap_or(crate::runtime::cpu::Cpu::default_slots() as u32),
            },
            ..RuntimeConfig::default()
        };
        config.limits = crate::net::ConnLimits {
            header_timeout: std::time::Duration::from_millis(self.header_timeout_ms.max(1)),
            idle_timeout: std::time::Duration::from_millis(self.idle_timeout_ms.max(1)),
            body_idle_timeout: std::time::Duration::from_millis(self.body_idle_timeout_ms.max(1)),
            max_per_ip: self.max_connections_per_ip.max(1),
        };
        config.code_idle = (self.code_idle_seconds > 0)
            .then(|| std::time::Duration::from_secs(self.code_idle_seconds));
        if let Some(workers) = self.data_workers {
            config.data_workers = workers;
        }
        config.retention = crate::executions::Retention {
            per_package: self.executions_per_package.max(1),
            max_age: std::time::Duration::from_secs(
                self.executions_max_age_hours.saturating_mul(3600),
            ),
            project_bytes: self
                .executions_max_mb_per_project
                .max(1)
                .saturating_mul(1 << 20),
            queue: crate::executions::QueueBounds {
                project_records: self.record_queue_per_project.max(1),
                ..crate::executions::QueueBounds::default()
            },
        };
        config.audit_max_age =
            std::time::Duration::from_secs(self.audit_max_age_days.max(1).saturating_mul(86_400));
        config.secrets.cache_ttl = std::time::Duration::from_millis(self.secrets_cache_ttl_ms);
        config.secrets.timeout = std::time::Duration::from_millis(self.secrets_timeout_ms.max(1));
        config.secrets.versions_kept = self.secret_versions;
        config.secrets.names = self.secret_names;
        if self.secrets_backend == "vault" {
            use crate::secrets::vault::VaultConfig;
            let auth = vault_auth(self.vault_approle_mount)?;
            config.secrets.vault = Some(VaultConfig {
                addr: self.vault_addr,
                auth,
                mount: self.vault_mount,
                prefix: self.vault_prefix,
                timeout: config.secrets.timeout,
            });
        }
        Ok(config)
    }
}
