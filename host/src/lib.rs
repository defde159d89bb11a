//! Edgeward's host: runs WebAssembly components on HTTP requests and hands them secrets.
//!
//! One module per capability, each owning its types and errors, in layers: a module uses only
//! modules of the layers below it ([`layers::LAYERS`], enforced by a test; `ARCHITECTURE.md`
//! at the repository's root explains each). From the bottom:
//! - foundations: [`code`] (stable error codes), [`names`] (names and scopes), [`credential`]
//!   (tokens made, hashed, redacted), [`cookies`] (the console's session cookie), [`datadir`],
//!   [`faults`] (named crash points, feature `fault-injection`), [`net`] (connection deadlines
//!   and accept loops), [`metrics`];
//! - [`store`]: metadata in SQLite or PostgreSQL, its row types and change feed;
//! - [`audit`]: typed audit records, target redaction, flood limits, retention;
//! - [`manifest`]: what a package declares (env, allowlist, hosts, credentials, limits);
//! - [`secrets`]: scopes, backends (embedded, Vault), resolution, consent, the guest interface;
//! - [`auth`] (API tokens and principals) and [`runtime`] (wasmtime, instances, outbound,
//!   credentials, masking);
//! - [`packages`] (versions and the deploy orchestration) and [`executions`] (records);
//! - [`app`]: the state one server shares;
//! - [`api`] (the control plane under `/v1`), [`dataplane`] (requests to functions) and
//!   [`config`] (serve's settings);
//! - [`listeners`], then [`server`] (`edgeward serve`) and [`cli`] (the command-line client).
//!
//! Embedding the server in-process (as the integration tests' helpers do through the binary):
//!
//! ```no_run
//! # async fn run() -> anyhow::Result<()> {
//! let config = edgeward_host::server::ServeConfig::with_data_dir("/tmp/edgeward".into());
//! let server = edgeward_host::server::Server::start(config).await?;
//! println!("data plane on {}", server.listen_addr());
//! server.shutdown().await;
//! # Ok(()) }
//! ```

#![deny(missing_docs)]

pub mod api;
pub mod app;
pub mod audit;
pub mod auth;
pub mod cli;
pub mod code;
pub mod config;
pub mod cookies;
pub mod credential;
pub mod datadir;
pub mod dataplane;
pub mod executions;
pub mod faults;
#[doc(hidden)]
pub mod layers;
pub mod listeners;
pub mod manifest;
pub mod metrics;
pub mod names;
pub mod net;
pub mod packages;
pub mod runtime;
pub mod secrets;
pub mod server;
pub mod store;

/// The log filter when `EDGEWARD_LOG` is not set. `rustify` (under vaultrs) logs an `ERROR`
/// for every non-2xx answer, including the 404 of each name a lookup falls through, and
/// vaultrs repeats Vault's error list; Edgeward logs backend failures itself (rate-limited),
/// so both are off.
pub const DEFAULT_LOG_FILTER: &str = "info,wasmtime_wasi_http=warn,rustify=off,vaultrs=off";

/// Installs rustls's ring provider as the process's default, once; every TLS client of the
/// host (reqwest's, Vault's, the CLI's) takes it. Call before building one. Idempotent.
pub fn install_crypto() {
    // An error means a provider is installed already: the first one stays.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Installs the server's log subscriber: to stderr, filtered by `EDGEWARD_LOG` (an
/// `EnvFilter` directive, default [`DEFAULT_LOG_FILTER`]). The benchmarks install it too, so
/// what they measure pays what `edgeward serve` pays for disabled log sites.
pub fn init_logging() {
    let mut filter = tracing_subscriber::EnvFilter::try_from_env("EDGEWARD_LOG")
        .unwrap_or_else(|_| DEFAULT_LOG_FILTER.into());
    // The store's driver logs every statement's parameters at debug (ciphertexts, token
    // hashes, execution output): never, whatever EDGEWARD_LOG asks for.
    if let Ok(cap) = store::DRIVER_LOG_CAP.parse() {
        filter = filter.add_directive(cap);
    }
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

/// Changes the running server's log filter (SIGHUP); installed by [`init_server_logging`].
static LOG_RELOAD: std::sync::OnceLock<
    tracing_subscriber::reload::Handle<tracing_subscriber::EnvFilter, tracing_subscriber::Registry>,
> = std::sync::OnceLock::new();

fn filter_from(directives: Option<&str>) -> Result<tracing_subscriber::EnvFilter, String> {
    let mut filter = match directives {
        Some(d) => tracing_subscriber::EnvFilter::try_new(d)
            .map_err(|e| format!("bad log filter {d:?}: {e}"))?,
        None => DEFAULT_LOG_FILTER.into(),
    };
    // The store's driver logs every statement's parameters at debug: never.
    if let Ok(cap) = store::DRIVER_LOG_CAP.parse() {
        filter = filter.add_directive(cap);
    }
    Ok(filter)
}

/// The server's log subscriber: to stderr, as text or one JSON object per line (`json`),
/// filtered by `directives` (default [`DEFAULT_LOG_FILTER`]); the filter can be replaced while
/// running ([`reload_log_filter`]).
pub fn init_server_logging(directives: Option<&str>, json: bool) -> Result<(), String> {
    use tracing_subscriber::prelude::*;
    let (filter, handle) = tracing_subscriber::reload::Layer::new(filter_from(directives)?);
    let registry = tracing_subscriber::registry().with(filter);
    let installed = if json {
        registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_writer(std::io::stderr),
            )
            .try_init()
    } else {
        registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_writer(std::io::stderr)
                    .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())),
            )
            .try_init()
    };
    if installed.is_ok() {
        let _ = LOG_RELOAD.set(handle);
    }
    Ok(())
}

/// Replaces the running server's log filter.
pub fn reload_log_filter(directives: Option<&str>) -> Result<(), String> {
    let filter = filter_from(directives)?;
    match LOG_RELOAD.get() {
        Some(handle) => handle.reload(filter).map_err(|e| e.to_string()),
        None => Err("the log filter cannot be reloaded in this process".into()),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_log_cap_is_a_valid_directive() {
        let cap: Result<tracing_subscriber::filter::Directive, _> =
            crate::store::DRIVER_LOG_CAP.parse();
        assert!(cap.is_ok());
    }
}
