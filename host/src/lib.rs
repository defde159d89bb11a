//! Edgeward's host: runs WebAssembly components on HTTP requests and hands them secrets.
//!
//! One module per capability, each owning its types and errors:
//! - [`store`]: metadata and package blobs in SQLite, with migrations.
//! - [`datadir`]: files under the data directory, opened through a `cap_std` directory.
//! - [`runtime`]: the wasmtime engine, compiled package versions and per-request instances.
//! - [`secrets`]: scopes, names, the backend trait, the embedded backend and the guest interface.
//! - [`manifest`]: what a package declares about itself.
//! - [`trigger`]: the data-plane listener that routes requests to packages.
//! - [`api`]: the control-plane JSON API under `/v1`.
//! - [`auth`]: API tokens.
//! - [`server`]: wires the above into `edgeward serve`.
//! - [`cli`]: the `edgeward` command-line client of the API.
//! - [`faults`]: named crash and failure points for the crash tests (feature `fault-injection`).
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
pub mod auth;
pub mod cli;
pub mod code;
pub mod config;
pub mod datadir;
pub mod executions;
pub mod faults;
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
pub mod trigger;

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
    /// The server module starts things; nothing that serves requests depends on it. Shared
    /// state is `app`, listeners are `listeners`, configuration is `config`. (The binary and
    /// the API walk test, which starts a whole server, are the exceptions.)
    #[test]
    fn no_module_imports_the_server() {
        fn walk(dir: &std::path::Path, found: &mut Vec<String>) {
            for entry in std::fs::read_dir(dir).unwrap().flatten() {
                let path = entry.path();
                if path.is_dir() {
                    walk(&path, found);
                } else if path.extension().is_some_and(|e| e == "rs")
                    && !path.ends_with("server.rs")
                    && !path.ends_with("main.rs")
                    && !path.ends_with("api/walk.rs")
                    && !path.ends_with("lib.rs")
                {
                    let text = std::fs::read_to_string(&path).unwrap();
                    if text.contains("crate::server") || text.contains("super::server") {
                        found.push(path.display().to_string());
                    }
                }
            }
        }
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut found = Vec::new();
        walk(&src, &mut found);
        assert!(found.is_empty(), "modules importing the server: {found:?}");
        // And the walk does look: the binary does use it.
        let main = std::fs::read_to_string(src.join("main.rs")).unwrap();
        assert!(main.contains("edgeward_host::server"));
    }

    #[test]
    fn the_log_cap_is_a_valid_directive() {
        let cap: Result<tracing_subscriber::filter::Directive, _> =
            crate::store::DRIVER_LOG_CAP.parse();
        assert!(cap.is_ok());
    }
}
