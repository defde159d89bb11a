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

#[cfg(test)]
mod tests {
    #[test]
    fn the_log_cap_is_a_valid_directive() {
        let cap: Result<tracing_subscriber::filter::Directive, _> =
            crate::store::DRIVER_LOG_CAP.parse();
        assert!(cap.is_ok());
    }
}
