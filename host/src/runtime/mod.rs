//! The wasmtime side: one engine, compiled package versions, and a fresh instance per request.
//!
//! Per process: the [`Engine`] (pooling allocator, async, epoch interruption) and the
//! [`Linker`] with exactly the host-provided imports. Per package version: a compiled
//! [`Component`] and its [`ProxyPre`], made once ([`Runtime::prepare`]) and cached on disk as a
//! precompiled artifact keyed by the engine's compatibility hash. Per request: a [`Store`]
//! with a sandboxed WASI context ([`state::HostState`]), see [`execute`].

mod body;
pub mod budgets;
pub mod client;
pub mod compile_cache;
pub mod cpu;
pub mod credentials;
mod decode;
pub mod execute;
pub mod forms;
pub mod gate;
mod limits;
pub mod mask;
pub mod outbound;
pub mod output;
pub mod state;

pub use execute::{ExecutionStatus, Trigger, execute};
pub use mask::{Masked, Masker, Unmasked};
pub use output::CapturedOutput;

use crate::code::ErrorCode;
use crate::manifest::Manifest;
use crate::names::Name;
use crate::secrets::guest::Secrets;
use crate::secrets::guest::SecretsCtx;
use state::HostState;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{
    Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store, UpdateDeadline,
};
use wasmtime_wasi::WasiCtx;
use wasmtime_wasi_http::WasiHttpCtx;
use wasmtime_wasi_http::p2::bindings::ProxyPre;

/// How often the epoch advances; the granularity of wall-time limits and of yielding.
pub const EPOCH_TICK: Duration = Duration::from_millis(1);

/// Engine-wide settings and the defaults for per-package limits.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Instances alive at once across all packages.
    pub max_instances: u32,
    /// Largest linear memory any package may ask for, bytes.
    pub max_memory_bytes: usize,
    /// Default linear memory per instance, bytes.
    pub default_memory_bytes: usize,
    /// Default wall time per request.
    pub default_timeout: Duration,
    /// Longest wall time any package may ask for.
    pub max_timeout: Duration,
    /// Captured stdout/stderr per execution, bytes each.
    pub output_cap: usize,
    /// Default and largest request body, bytes.
    pub request_bytes: (u64, u64),
    /// Default and largest response body, bytes.
    pub response_bytes: (u64, u64),
    /// Default and largest number of instances of one package at once.
    pub concurrency: (u32, u32),
    /// Default and largest number of outbound requests per execution.
    pub outbound_requests: (u32, u32),
    /// How long a request waits for a free instance slot of its package before 503.
    pub queue_wait: Duration,
    /// Whether guests may reach private destinations (loopback, RFC 1918, link-local…).
    pub outbound_allow_private: bool,
    /// CA certificates trusted for outbound https besides the web PKI roots
    /// (`--outbound-ca`).
    pub outbound_ca: Arc<[rustls::pki_types::CertificateDer<'static>]>,
    /// Platform budgets of instances and memory, and each project's share.
    pub shares: budgets::Shares,
    /// Compile without Cranelift's optimisations: components compile several times faster
    /// and run slower (`edgeward dev`, where every save is a new component).
    pub quick_compile: bool,
    /// Cranelift's incremental compilation cache (`edgeward dev` only): functions identical to
    /// ones compiled before are reused, not compiled again.
    pub compile_cache: Option<Arc<compile_cache::CompileCache>>,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            max_instances: 1000,
            max_memory_bytes: 1 << 30,
            default_memory_bytes: 128 << 20,
            default_timeout: Duration::from_secs(30),
            max_timeout: Duration::from_secs(300),
            output_cap: 64 * 1024,
            request_bytes: (10 << 20, 100 << 20),
            response_bytes: (64 << 20, 512 << 20),
            concurrency: (32, 256),
            outbound_requests: (16, 256),
            queue_wait: Duration::from_secs(1),
            outbound_allow_private: false,
            outbound_ca: Arc::from(Vec::new()),
            shares: budgets::Shares::default(),
            quick_compile: false,
            compile_cache: None,
        }
    }
}

/// The error the epoch callback raises to stop an instance.
#[derive(Debug)]
pub(crate) enum Stop {
    TimeLimit,
    OutboundLimit,
}

impl std::fmt::Display for Stop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Stop::TimeLimit => "the request ran past its time limit",
            Stop::OutboundLimit => "the request made more outbound requests than allowed",
        })
    }
}

impl std::error::Error for Stop {}

/// Why an upload was refused. `code` is stable; `message` says what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct Rejection {
    /// The stable error code.
    pub code: crate::code::ErrorCode,
    /// A message a person can act on.
    pub message: String,
}

fn reject(code: crate::code::ErrorCode, message: impl Into<String>) -> Rejection {
    Rejection {
        code,
        message: message.into(),
    }
}

/// A package version ready to serve: compiled, pre-instantiated, with its manifest.
pub struct Deployed {
    /// Its project.
    pub project: Name,
    /// Its package.
    pub package: Name,
    /// Its version number.
    pub version: i64,
    /// The sha256 of its component; versions with the same one share a compiled component.
    pub sha256: String,
    /// The pre-instantiated component.
    pub pre: ProxyPre<HostState>,
    /// What it declared.
    pub manifest: Arc<Manifest>,
    /// The sha256 of its normalised manifest: with `sha256`, what a user's grant binds.
    pub manifest_sha256: String,
    /// What it declared of its caller's user scope, shared with every execution.
    pub user_secrets: Arc<crate::manifest::UserSecrets>,
    /// The manifest's secrets allowlist, shared with every execution.
    pub allow: Option<Arc<[String]>>,
    /// The owners its secret lookups try (package, project, platform), shared with every
    /// execution.
    pub owners: Arc<[crate::secrets::Owner; 3]>,
    /// The manifest's env bindings, parsed once: literals and secret names to resolve per
    /// execution.
    pub env: Arc<[(String, crate::manifest::EnvBinding)]>,
    /// Its wall-time limit per request.
    pub timeout: Duration,
    /// Its linear-memory limit per instance, bytes.
    pub memory_bytes: usize,
    /// Its request body limit, bytes.
    pub request_bytes: u64,
    /// Its response body limit, bytes.
    pub response_bytes: u64,
    /// Instance slots of this version; requests wait briefly for one.
    pub slots: gate::Gate,
    /// How many slots it has.
    pub concurrency: u32,
    /// Its project's share of instances and memory (one per project, found once here).
    pub share: Arc<budgets::ProjectShare>,
    /// Its linear memory limit in MiB, as the memory budgets count it.
    pub memory_mb: u32,
    /// Hosts it may call.
    pub outbound_hosts: Arc<[outbound::HostPattern]>,
    /// The credentials the host attaches to its outbound requests.
    pub credentials: Arc<credentials::Declared>,
    /// Outbound requests per execution.
    pub outbound_requests: u32,
    /// Its metric handles.
    pub metrics: Arc<crate::metrics::PackageMetrics>,
    /// When it last took a request: what [`release_idle_code`] judges idleness by.
    pub last_use: Arc<LastUse>,
}

/// When a version last took a request, in whole seconds since the process started. Written
/// only when the second changes, so the many threads serving a busy version do not all write
/// one cache line per request.
#[derive(Debug)]
pub struct LastUse(std::sync::atomic::AtomicU32);

impl LastUse {
    /// Used now.
    pub fn now() -> LastUse {
        LastUse(std::sync::atomic::AtomicU32::new(process_seconds(
            Instant::now(),
        )))
    }

    /// Records a use at `at`.
    pub fn touch(&self, at: Instant) {
        let s = process_seconds(at);
        if self.0.load(Ordering::Relaxed) < s {
            self.0.store(s, Ordering::Relaxed);
        }
    }

    /// The second of the last use.
    pub fn second(&self) -> u32 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Whole seconds from the process's first call to `at` (saturating at both ends).
pub fn process_seconds(at: Instant) -> u32 {
    static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    let start = *START.get_or_init(Instant::now);
    u32::try_from(at.saturating_duration_since(start).as_secs()).unwrap_or(u32::MAX)
}

/// The limits a version runs with: its manifest's, the defaults where it names none, held to
/// the platform's maxima.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct EffectiveLimits {
    /// Wall time per request, milliseconds.
    pub timeout_ms: u64,
    /// Linear memory per instance, MiB.
    pub memory_mb: u64,
    /// Largest request body, bytes.
    pub max_request_bytes: u64,
    /// Largest response body, bytes.
    pub max_response_bytes: u64,
    /// Instances at once.
    pub max_concurrency: u32,
    /// Outbound requests per execution.
    pub max_outbound_requests: u32,
}

impl Deployed {
    /// The limits it runs with, and a notice for each limit its manifest asked above the
    /// platform's maximum (held to the maximum, not refused: the same package deploys on
    /// platforms with different maxima).
    pub fn limits(&self) -> (EffectiveLimits, Vec<String>) {
        let effective = EffectiveLimits {
            timeout_ms: u64::try_from(self.timeout.as_millis()).unwrap_or(u64::MAX),
            memory_mb: (self.memory_bytes as u64).div_ceil(1 << 20),
            max_request_bytes: self.request_bytes,
            max_response_bytes: self.response_bytes,
            max_concurrency: self.concurrency,
            max_outbound_requests: self.outbound_requests,
        };
        let l = &self.manifest.limits;
        let notices = [
            ("timeout-ms", l.timeout_ms, effective.timeout_ms),
            ("memory-mb", l.memory_mb, effective.memory_mb),
            (
                "max-request-bytes",
                l.max_request_bytes,
                effective.max_request_bytes,
            ),
            (
                "max-response-bytes",
                l.max_response_bytes,
                effective.max_response_bytes,
            ),
            (
                "max-concurrency",
                l.max_concurrency.map(u64::from),
                u64::from(effective.max_concurrency),
            ),
            (
                "max-outbound-requests",
                l.max_outbound_requests.map(u64::from),
                u64::from(effective.max_outbound_requests),
            ),
        ]
        .into_iter()
        .filter_map(|(name, asked, applied)| {
            asked.filter(|a| *a > applied).map(|a| {
                format!("limits.{name} = {a} is over this platform's maximum: {applied} applies")
            })
        })
        .collect();
        (effective, notices)
    }
}

impl std::fmt::Debug for Deployed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deployed")
            .field("project", &self.project)
            .field("package", &self.package)
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

/// The engine, the linker and the epoch ticker.
pub struct Runtime {
    engine: Engine,
    linker: Linker<HostState>,
    config: std::sync::RwLock<Arc<RuntimeConfig>>,
    compat_key: String,
    budgets: budgets::Budgets,
    /// The TLS client configuration of outbound https (web PKI roots and `--outbound-ca`);
    /// replaced whole on SIGHUP, each execution taking the one current when it starts.
    /// The pooled client of guests' outbound requests, rebuilt when `--outbound-ca` changes.
    outbound_client: std::sync::RwLock<Arc<client::OutboundClient>>,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("config", &self.config())
            .finish_non_exhaustive()
    }
}

impl Runtime {
    /// Builds the engine and linker and starts the epoch ticker (a thread that lives as long
    /// as the engine).
    pub fn new(config: RuntimeConfig) -> anyhow::Result<Runtime> {
        let mut pool = PoolingAllocationConfig::default();
        pool.total_component_instances(config.max_instances)
            .total_core_instances(config.max_instances * 4)
            .total_memories(config.max_instances)
            .total_tables(config.max_instances * 2)
            .max_memory_size(config.max_memory_bytes)
            // Keeping a little memory resident between instances saves most of the kernel
            // time of resetting a slot, and PAGEMAP_SCAN (Linux 6.7+; ignored where missing)
            // resets only the pages an instance dirtied instead of memset-ing all of it: together
            // they halve the CPU per request (BENCHMARKS.md).
            .linear_memory_keep_resident(2 << 20)
            .table_keep_resident(512 << 10)
            .pagemap_scan(wasmtime::Enabled::Auto);
        let mut wasm = Config::new();
        wasm.epoch_interruption(true)
            .wasm_component_model(true)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        if config.quick_compile {
            wasm.cranelift_opt_level(wasmtime::OptLevel::None);
        }
        if let Some(cache) = &config.compile_cache {
            wasm.enable_incremental_compilation(cache.clone())?;
        }
        let engine = Engine::new(&wasm)?;

        let mut linker = Linker::<HostState>::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
        crate::secrets::guest::add_to_linker::<HostState, Secrets>(&mut linker, |s| {
            s.secrets_view()
        })?;
        crate::secrets::guest::add_credentials_to_linker::<
            HostState,
            wasmtime::component::HasSelf<HostState>,
        >(&mut linker, |s| s)?;
        let outbound_tls = outbound::tls_config(&config.outbound_ca).map_err(anyhow::Error::msg)?;

        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        let compat_key = format!("{:016x}", hasher.finish());
        // The platform's instance budget is the pool's size: requests wait for a share rather
        // than fail in the allocator.
        let mut shares = config.shares;
        shares.instances = config.max_instances;
        shares.project_instances = shares.project_instances.clamp(1, config.max_instances);
        let budgets = budgets::Budgets::new(shares);

        let weak = engine.weak();
        let cpu = Arc::downgrade(budgets.cpu());
        std::thread::Builder::new()
            .name("edgeward-epoch".into())
            .spawn(move || {
                while let Some(engine) = weak.upgrade() {
                    engine.increment_epoch();
                    drop(engine);
                    if let Some(cpu) = cpu.upgrade() {
                        cpu.tick();
                    }
                    std::thread::sleep(EPOCH_TICK);
                }
            })?;
        Ok(Runtime {
            engine,
            linker,
            config: std::sync::RwLock::new(Arc::new(config)),
            compat_key,
            budgets,
            outbound_client: std::sync::RwLock::new(Arc::new(client::OutboundClient::new(
                outbound_tls,
            ))),
        })
    }

    /// The engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The engine-wide settings.
    pub fn config(&self) -> Arc<RuntimeConfig> {
        match self.config.read() {
            Ok(c) => c.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Takes the package limits of `new` (defaults and maxima of time, bodies, concurrency,
    /// outbound requests, the default memory, the output cap and the queue wait); what sizes
    /// the engine (instances, the memory maximum, budgets) stays as it started. Versions
    /// loaded from now on get them; [`crate::packages::Packages::reapply_limits`] gives them
    /// to what serves.
    pub fn set_limits(&self, new: &RuntimeConfig) {
        let mut next = (*self.config()).clone();
        next.default_timeout = new.default_timeout;
        next.max_timeout = new.max_timeout;
        next.default_memory_bytes = new.default_memory_bytes.min(next.max_memory_bytes);
        next.output_cap = new.output_cap;
        next.request_bytes = new.request_bytes;
        next.response_bytes = new.response_bytes;
        next.concurrency = new.concurrency;
        next.outbound_requests = new.outbound_requests;
        next.queue_wait = new.queue_wait;
        if let Ok(mut c) = self.config.write() {
            *c = Arc::new(next);
        }
    }

    /// Trusts `ca` (besides the web PKI roots) for outbound https from the next execution
    /// on; executions running keep the configuration they started with. An unusable bundle
    /// changes nothing and says why.
    pub fn set_outbound_ca(
        &self,
        ca: &Arc<[rustls::pki_types::CertificateDer<'static>]>,
    ) -> Result<(), String> {
        let tls = outbound::tls_config(ca)?;
        let mut next = (*self.config()).clone();
        next.outbound_ca = ca.clone();
        if let Ok(mut c) = self.config.write() {
            *c = Arc::new(next);
        }
        // A new pool: connections made under the old bundle are not reused.
        let client = Arc::new(client::OutboundClient::new(tls));
        match self.outbound_client.write() {
            Ok(mut current) => *current = client,
            Err(poisoned) => *poisoned.into_inner() = client,
        }
        Ok(())
    }

    /// The outbound client executions start with now.
    fn outbound_client(&self) -> Arc<client::OutboundClient> {
        match self.outbound_client.read() {
            Ok(c) => c.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The platform's budgets and each project's share.
    pub fn budgets(&self) -> &budgets::Budgets {
        &self.budgets
    }

    /// A key that changes whenever precompiled artifacts stop being loadable.
    pub fn compat_key(&self) -> &str {
        &self.compat_key
    }

    /// Checks an upload and compiles it: a component, not a core module, whose imports the
    /// host provides and which exports `wasi:http/incoming-handler`. CPU-heavy: call from a
    /// blocking thread.
    pub fn compile(&self, bytes: &[u8]) -> Result<(Component, ProxyPre<HostState>), Rejection> {
        if bytes.is_empty() {
            return Err(reject(
                ErrorCode::EmptyBody,
                "the upload is empty: send the .wasm file as the request body",
            ));
        }
        if bytes.len() < 8 || &bytes[..4] != b"\0asm" {
            return Err(reject(
                ErrorCode::NotWasm,
                "the upload is not WebAssembly (no \\0asm header): send the .wasm file built \
                 with `cargo build --target wasm32-wasip2 --release`",
            ));
        }
        // Bytes 4..8 are the version and layer: layer 0 is a core module, 1 a component.
        if bytes[6..8] == [0, 0] {
            return Err(reject(
                ErrorCode::NotAComponent,
                "the upload is a core WebAssembly module, not a component: build for the \
                 wasm32-wasip2 target (or wrap the module with `wasm-tools component new`)",
            ));
        }
        let component = Component::new(&self.engine, bytes).map_err(|e| {
            reject(
                ErrorCode::InvalidComponent,
                format!("the component does not validate: {}", root_cause(&e)),
            )
        })?;
        let pre = self.prepare(&component)?;
        Ok((component, pre))
    }

    /// Links `component` against the host's imports and checks its export.
    pub fn prepare(&self, component: &Component) -> Result<ProxyPre<HostState>, Rejection> {
        let instance_pre = self.linker.instantiate_pre(component).map_err(|e| {
            reject(
                ErrorCode::UnsupportedImport,
                format!(
                    "the component imports something Edgeward does not provide ({}); a \
                     function may import wasi:http, wasi:cli, wasi:io, wasi:clocks, \
                     wasi:random, wasi:filesystem, wasi:sockets and edgeward:platform/secrets",
                    root_cause(&e)
                ),
            )
        })?;
        ProxyPre::new(instance_pre).map_err(|e| {
            reject(
                ErrorCode::MissingExport,
                format!(
                    "the component does not export wasi:http/incoming-handler@0.2.x, so it \
                     cannot handle requests ({}); use the edgeward-sdk `handler!` macro",
                    root_cause(&e)
                ),
            )
        })
    }

    /// The precompiled artifact for `component`, to cache on disk.
    pub fn serialize(&self, component: &Component) -> anyhow::Result<Vec<u8>> {
        Ok(component.serialize()?)
    }

    /// Loads an artifact written by [`Runtime::serialize`] under the same compatibility key,
    /// mapping the file rather than reading it: its code pages are shared with the page cache
    /// and only the pages used become resident.
    pub fn deserialize_file(&self, path: &std::path::Path) -> anyhow::Result<Component> {
        // SAFETY: artifacts are only ever written by `serialize` of this engine configuration
        // into the data directory (0700), under a temporary name and then renamed, never
        // modified in place (their names are content addresses), so a mapped file does not
        // change under us; their names carry the engine's compatibility key and wasmtime checks
        // the header as well. Anyone able to write there could already replace the binary or
        // the database.
        #[allow(unsafe_code)]
        let component = unsafe { Component::deserialize_file(&self.engine, path)? };
        release_loaded_pages(&component);
        Ok(component)
    }

    /// A fresh store for one execution of `deployed`: a sandboxed WASI context (no args, no
    /// preopens, no sockets, only `env`), output captured into `output`, the version's memory
    /// and outbound limits, and an epoch callback that stops the guest at `deadline` or when it
    /// goes over its outbound budget (the returned flag) and otherwise yields every tick; and
    /// what marks the guest's resumptions for its CPU turns (poll it through
    /// [`cpu::Resumed::now`]).
    pub fn new_store(
        &self,
        deployed: &Deployed,
        (secrets, credentials): (SecretsCtx, Option<Arc<credentials::CredentialSession>>),
        env: &[(String, String)],
        output: (CapturedOutput, CapturedOutput),
        deadline: Instant,
    ) -> (Store<HostState>, Arc<AtomicBool>, cpu::Resumed) {
        let (stdout, stderr) = output;
        let wasi = WasiCtx::builder()
            .envs(env)
            .stdout(stdout)
            .stderr(stderr)
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        let outbound = outbound::Outbound::new(
            deployed.outbound_hosts.clone(),
            deployed.outbound_requests,
            self.config().outbound_allow_private,
        )
        .with(credentials, self.outbound_client());
        let outbound_over = outbound.over_limit.clone();
        let state = HostState {
            table: ResourceTable::new(),
            wasi,
            http: WasiHttpCtx::new(),
            outbound,
            secrets,
            limits: limits::GuestLimits::new(deployed.memory_bytes, 100_000),
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limits);
        store.set_epoch_deadline(1);
        let stop_outbound = outbound_over.clone();
        let mut turns = self.budgets.turns(&deployed.share);
        let resumed = turns.resumed();
        store.epoch_deadline_callback(move |_| {
            if Instant::now() >= deadline {
                Err(wasmtime::Error::new(Stop::TimeLimit))
            } else if stop_outbound.load(Ordering::Relaxed) {
                Err(wasmtime::Error::new(Stop::OutboundLimit))
            } else {
                // A guest that keeps computing yields, and takes its turn among the busy
                // guests of every project (module `cpu`); others carry on.
                Ok(match turns.at_tick(deadline) {
                    cpu::AtTick::Continue => UpdateDeadline::Continue(1),
                    cpu::AtTick::Yield(then) => UpdateDeadline::YieldCustom(1, then),
                })
            }
        });
        (store, outbound_over, resumed)
    }

    /// Builds the served form of a version from its component and manifest.
    pub fn deployed(
        &self,
        project: Name,
        package: Name,
        version: i64,
        sha256: String,
        pre: ProxyPre<HostState>,
        manifest: Manifest,
    ) -> Deployed {
        let c = self.config();
        let l = &manifest.limits;
        let timeout = l
            .timeout_ms
            .map_or(c.default_timeout, Duration::from_millis)
            .min(c.max_timeout);
        let memory_bytes = l
            .memory_mb
            .and_then(|mb| usize::try_from(mb.saturating_mul(1 << 20)).ok())
            .unwrap_or(c.default_memory_bytes)
            .min(c.max_memory_bytes);
        let pick = |v: Option<u64>, (default, max): (u64, u64)| v.unwrap_or(default).min(max);
        let pick32 = |v: Option<u32>, (default, max): (u32, u32)| v.unwrap_or(default).min(max);
        let outbound_hosts: Vec<outbound::HostPattern> = manifest
            .outbound
            .hosts
            .iter()
            .filter_map(|h| outbound::HostPattern::parse(h).ok())
            .collect();
        // `Manifest::parse` has checked every declaration, as for the bindings below.
        let credentials: Vec<credentials::Spec> = manifest
            .outbound
            .credentials
            .iter()
            .filter_map(|c| credentials::Spec::parse(c, &outbound_hosts).ok())
            .collect();
        let allow = manifest.secrets.clone().map(Arc::from);
        // `Manifest::parse` has checked every binding; a manifest built otherwise and broken
        // binds nothing rather than failing each request.
        let env = manifest.env_bindings().unwrap_or_else(|e| {
            tracing::error!(%project, %package, version, error = %e, "bad env bindings");
            Vec::new()
        });
        Deployed {
            metrics: Arc::new(crate::metrics::PackageMetrics::new(
                project.as_str(),
                package.as_str(),
                ExecutionStatus::ALL.iter().map(|s| s.as_str()),
            )),
            owners: crate::secrets::owner_chain(project.clone(), package.clone()),
            share: self.budgets.share(project.as_str()),
            memory_mb: u32::try_from(memory_bytes.div_ceil(1 << 20)).unwrap_or(u32::MAX),
            project,
            package,
            version,
            sha256,
            pre,
            allow,
            env: Arc::from(env),
            timeout,
            memory_bytes,
            request_bytes: pick(l.max_request_bytes, c.request_bytes),
            response_bytes: pick(l.max_response_bytes, c.response_bytes),
            slots: gate::Gate::new(pick32(l.max_concurrency, c.concurrency)),
            concurrency: pick32(l.max_concurrency, c.concurrency),
            outbound_hosts: Arc::from(outbound_hosts),
            credentials: credentials::Declared::new(credentials),
            outbound_requests: pick32(l.max_outbound_requests, c.outbound_requests),
            manifest_sha256: manifest.digest(),
            user_secrets: Arc::new(manifest.user_secrets.clone()),
            manifest: Arc::new(manifest),
            last_use: Arc::new(LastUse::now()),
        }
    }
}

/// The innermost message of an error chain: what actually went wrong.
fn root_cause(e: &wasmtime::Error) -> String {
    let mut msg = e.to_string();
    for cause in e.chain().skip(1) {
        msg = format!("{msg}: {cause}");
    }
    let msg: String = msg.chars().take(600).collect();
    msg
}

/// Gives back the code pages of `components`, idle ones the caller picked: each image that is
/// a mapping of its artifact file (`/proc/self/maps` is read to make sure: a component compiled
/// in this process lives in anonymous memory, where the release would zero its code) is
/// released as after loading. The next request maps the pages it touches again from the page
/// cache, a few minor faults. Returns how many were released.
pub fn release_idle_code(components: &[Component]) -> usize {
    let Ok(maps) = std::fs::read_to_string("/proc/self/maps") else {
        return 0;
    };
    let files = file_mappings(&maps);
    let mut released = 0;
    for component in components {
        let range = component.image_range();
        if covered_by(&files, range.start as usize, range.end as usize) {
            release_loaded_pages(component);
            released += 1;
        }
    }
    released
}

/// The address ranges of `/proc/self/maps` (in its order, ascending) that map a file.
fn file_mappings(maps: &str) -> Vec<(usize, usize)> {
    maps.lines()
        .filter_map(|line| {
            let mut fields = line.split_ascii_whitespace();
            let (from, to) = fields.next()?.split_once('-')?;
            let inode = fields.nth(3)?;
            (inode != "0").then_some((
                usize::from_str_radix(from, 16).ok()?,
                usize::from_str_radix(to, 16).ok()?,
            ))
        })
        .collect()
}

/// Whether every byte of `start..end` lies in one of `files` (ascending, as the kernel lists
/// them; adjacent ranges are the one file split by protections).
fn covered_by(files: &[(usize, usize)], start: usize, end: usize) -> bool {
    let mut at = start;
    let first = files.partition_point(|&(_, to)| to <= at);
    for &(from, to) in &files[first..] {
        if from > at {
            return false;
        }
        at = to;
        if at >= end {
            return true;
        }
    }
    false
}

/// Gives back the pages of `component`'s image (its artifact, mapped from the data
/// directory's file) that loading read, and tells the kernel the image is read at random: a
/// later fault maps the page touched alone, not the 64 KiB around it. Loading reads most of an
/// artifact (headers, metadata, unwind tables); a request then touches a few scattered pages of
/// code and tables. With a thousand components, what loading left mapped was most of the
/// server's resident memory (BENCHMARKS.md). Failing changes nothing but the memory.
fn release_loaded_pages(component: &Component) {
    let range = component.image_range();
    let page = rustix::param::page_size();
    let start = range.start as usize & !(page - 1);
    let len = range.end as usize - start;
    // SAFETY: `start..start + len` is within the image's mapping (its start rounded down to the
    // page the mapping begins on), alive as long as `component`. The image was loaded from a
    // file that is never written again (artifacts are content-addressed, written under a
    // temporary name and renamed), wasmtime refuses images with relocations and made it
    // read-only before returning it, so every page is a clean, private mapping of that file:
    // MADV_DONTNEED unmaps them and the next access maps the same bytes again from the page
    // cache. MADV_RANDOM changes only read-ahead and fault-around.
    #[allow(unsafe_code)]
    let advised = unsafe {
        use rustix::mm::{Advice, madvise};
        madvise(start as *mut _, len, Advice::Random)
            .and_then(|()| madvise(start as *mut _, len, Advice::LinuxDontNeed))
    };
    if let Err(e) = advised {
        tracing::debug!(error = %e, "madvise of a loaded artifact refused");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An image is released only where every byte of it maps a file: a range that runs past
    /// the file's mappings, or into an anonymous one, is not.
    #[test]
    fn only_ranges_wholly_inside_file_mappings_count_as_files() {
        let maps = "1000-3000 r--p 00000000 08:01 42 /data/a.cwasm\n\
                    3000-5000 r-xp 00002000 08:01 42 /data/a.cwasm\n\
                    5000-6000 rw-p 00000000 00:00 0 \n\
                    7000-8000 r--p 00000000 08:01 43 /data/b.cwasm\n";
        let files = file_mappings(maps);
        assert_eq!(
            files,
            [(0x1000, 0x3000), (0x3000, 0x5000), (0x7000, 0x8000)]
        );
        assert!(covered_by(&files, 0x1000, 0x5000));
        assert!(covered_by(&files, 0x2800, 0x3800));
        assert!(covered_by(&files, 0x7000, 0x7100));
        assert!(
            !covered_by(&files, 0x4000, 0x5800),
            "runs into anonymous memory"
        );
        assert!(
            !covered_by(&files, 0x6800, 0x7800),
            "starts outside any mapping"
        );
        assert!(
            !covered_by(&files, 0x7800, 0x9000),
            "runs past the last one"
        );
    }

    /// A runtime, a component compiled in process (`f` returns 42), and its artifact written
    /// to a file in a temporary directory (kept alive by the caller).
    fn compiled_and_written() -> (Runtime, Component, (tempfile::TempDir, std::path::PathBuf)) {
        let rt = Runtime::new(RuntimeConfig::default()).unwrap();
        let wasm = wat::parse_str(
            r#"(component
                 (core module $m (func (export "f") (result i32) i32.const 42))
                 (core instance $i (instantiate $m))
                 (func (export "f") (result u32) (canon lift (core func $i "f"))))"#,
        )
        .unwrap();
        let compiled = Component::new(rt.engine(), &wasm).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("artifact.cwasm");
        std::fs::write(&path, rt.serialize(&compiled).unwrap()).unwrap();
        (rt, compiled, (dir, path))
    }

    /// A component compiled in this process is anonymous memory: the idle release leaves it
    /// alone (releasing it would zero its code), and releases one loaded from its artifact,
    /// which still runs the same afterwards.
    #[test]
    fn the_idle_release_takes_only_code_mapped_from_artifacts() {
        let (rt, compiled, (_dir, path)) = compiled_and_written();
        let loaded = rt.deserialize_file(&path).unwrap();

        assert_eq!(release_idle_code(std::slice::from_ref(&compiled)), 0);
        assert_eq!(release_idle_code(&[compiled.clone(), loaded.clone()]), 1);
        for component in [&compiled, &loaded] {
            let mut store = wasmtime::Store::new(rt.engine(), ());
            store.set_epoch_deadline(u64::MAX / 2);
            let instance = Linker::new(rt.engine())
                .instantiate(&mut store, component)
                .unwrap();
            let f = instance
                .get_typed_func::<(), (u32,)>(&mut store, "f")
                .unwrap();
            assert_eq!(f.call(&mut store, ()).unwrap(), (42,));
        }
    }

    /// MADV_DONTNEED on a loaded artifact is sound only because its image is a clean mapping
    /// of the file: were it anonymous memory (a wasmtime that read the file instead of mapping
    /// it), the call would zero the code. After the release the image reads back the file's
    /// bytes, and /proc/self/maps names the file for it.
    #[test]
    fn a_loaded_artifact_is_its_file_mapped_and_reads_the_same_after_its_pages_are_released() {
        let (rt, _, (_dir, path)) = compiled_and_written();
        let loaded = rt.deserialize_file(&path).unwrap();
        let range = loaded.image_range();
        // SAFETY: the image lives as long as `loaded`, which outlives the slice.
        #[allow(unsafe_code)]
        let image = unsafe {
            std::slice::from_raw_parts(range.start, range.end as usize - range.start as usize)
        };
        let file = std::fs::read(&path).unwrap();
        assert_eq!(image, &file[..image.len()]);

        let start = range.start as usize;
        let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
        let mapping = maps
            .lines()
            .find(|line| {
                let (from, to) = line.split_once(' ').unwrap().0.split_once('-').unwrap();
                let from = usize::from_str_radix(from, 16).unwrap();
                let to = usize::from_str_radix(to, 16).unwrap();
                (from..to).contains(&start)
            })
            .unwrap();
        let canonical = std::fs::canonicalize(&path).unwrap();
        assert!(
            mapping.ends_with(&canonical.display().to_string()),
            "{mapping}"
        );
    }
}
