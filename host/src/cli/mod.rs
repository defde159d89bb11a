//! The `edgeward` command line: `serve`, and client commands that talk to the API.
//!
//! Client commands find the API and token in flags, then `EDGEWARD_API`/`EDGEWARD_TOKEN`,
//! then the local data directory (`server.json` and `admin.token` written by `serve`). Errors
//! are one line: `error: <code>: <message>`.

pub mod client;

pub use client::{Client, ClientError};

use crate::runtime::RuntimeConfig;
use crate::server::ServeConfig;
use clap::{Args, Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;

/// Edgeward: run WebAssembly functions on HTTP requests, with scoped secrets.
#[derive(Debug, Parser)]
#[command(name = "edgeward", version, about, propagate_version = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands. (`conn` fields are the shared connection flags.)
#[allow(missing_docs)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (data plane and API).
    Serve(ServeArgs),
    /// Upload a component as the new version of a package and make it current.
    Deploy {
        /// `project/package`.
        target: String,
        /// The component (`.wasm`, built for wasm32-wasip2).
        file: PathBuf,
        /// A manifest (TOML or JSON).
        #[arg(long)]
        manifest: Option<PathBuf>,
        #[command(flatten)]
        conn: ConnArgs,
    },
    /// Projects.
    #[command(subcommand)]
    Projects(ProjectsCommand),
    /// Packages and their versions.
    #[command(subcommand)]
    Packages(PackagesCommand),
    /// Make an earlier version of a package current.
    Rollback {
        /// `project/package`.
        target: String,
        /// The version to serve (default: the one before the current).
        #[arg(long)]
        to: Option<i64>,
        #[command(flatten)]
        conn: ConnArgs,
    },
    /// Call a function over the data plane and print its response body.
    Invoke {
        /// `project/package`.
        target: String,
        /// The path the function sees (default `/`), with an optional `?query`.
        path: Option<String>,
        /// The HTTP method.
        #[arg(short = 'X', long, default_value = "GET")]
        method: String,
        /// A request body (`@file` reads a file, `@-` stdin).
        #[arg(short = 'd', long)]
        data: Option<String>,
        /// A header, `Name: value` (repeatable).
        #[arg(short = 'H', long = "header")]
        headers: Vec<String>,
        /// Print the status line and headers too.
        #[arg(short = 'i', long)]
        include: bool,
        /// The data-plane URL.
        #[arg(long, env = "EDGEWARD_URL")]
        url: Option<String>,
        #[command(flatten)]
        conn: ConnArgs,
    },
}

/// `edgeward projects …`
#[allow(missing_docs)]
#[derive(Debug, Subcommand)]
pub enum ProjectsCommand {
    /// Create a project.
    Create {
        /// Its name: a-z, 0-9 and '-'.
        name: String,
        #[command(flatten)]
        conn: ConnArgs,
    },
    /// List projects.
    List {
        #[command(flatten)]
        conn: ConnArgs,
    },
}

/// `edgeward packages …`
#[allow(missing_docs)]
#[derive(Debug, Subcommand)]
pub enum PackagesCommand {
    /// List packages (of one project, or of all).
    List {
        /// The project (default: all).
        project: Option<String>,
        #[command(flatten)]
        conn: ConnArgs,
    },
    /// Show a package's versions.
    Show {
        /// `project/package`.
        target: String,
        #[command(flatten)]
        conn: ConnArgs,
    },
    /// Delete a package and all its versions.
    Delete {
        /// `project/package`.
        target: String,
        #[command(flatten)]
        conn: ConnArgs,
    },
}

/// How a client command reaches the server.
#[derive(Debug, Clone, Args)]
pub struct ConnArgs {
    /// The API's base URL (default: from `<data-dir>/server.json`, else http://127.0.0.1:8081).
    #[arg(long, env = "EDGEWARD_API", global = true)]
    pub api: Option<String>,
    /// An API token (default: `<data-dir>/admin.token`).
    #[arg(long, env = "EDGEWARD_TOKEN", global = true, hide_env_values = true)]
    pub token: Option<String>,
    /// The local data directory to read defaults from.
    #[arg(
        long,
        env = "EDGEWARD_DATA_DIR",
        default_value = ".edgeward",
        global = true
    )]
    pub data_dir: PathBuf,
}

/// `edgeward serve` flags.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Where state lives (SQLite, keys, compiled artifacts).
    #[arg(long, env = "EDGEWARD_DATA_DIR", default_value = ".edgeward")]
    pub data_dir: PathBuf,
    /// The data-plane address (port 0 picks a free port).
    #[arg(long, env = "EDGEWARD_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// The API address (port 0 picks a free port).
    #[arg(long, env = "EDGEWARD_API_LISTEN", default_value = "127.0.0.1:8081")]
    pub api_listen: SocketAddr,
    /// The largest component accepted, in bytes.
    #[arg(long, env = "EDGEWARD_MAX_UPLOAD_BYTES", default_value_t = 50 << 20)]
    pub max_upload_bytes: usize,
    /// Default wall time per request, in milliseconds.
    #[arg(long, env = "EDGEWARD_TIMEOUT_MS", default_value_t = 30_000)]
    pub timeout_ms: u64,
    /// How long shutdown waits for in-flight requests, in seconds.
    #[arg(long, default_value_t = 30)]
    pub drain_seconds: u64,
}

impl ServeArgs {
    /// The server configuration these flags describe. The master key comes only from the
    /// environment (`EDGEWARD_MASTER_KEY`), never from a flag that would show in `ps`.
    pub fn into_config(self) -> ServeConfig {
        let mut config = ServeConfig::with_data_dir(self.data_dir);
        config.listen = self.listen;
        config.api_listen = self.api_listen;
        config.max_upload_bytes = self.max_upload_bytes;
        config.drain_timeout = std::time::Duration::from_secs(self.drain_seconds);
        config.master_key = std::env::var("EDGEWARD_MASTER_KEY").ok();
        config.runtime = RuntimeConfig {
            default_timeout: std::time::Duration::from_millis(self.timeout_ms),
            ..RuntimeConfig::default()
        };
        config
    }
}

/// Splits `project/package`.
pub fn split_target(target: &str) -> Result<(&str, &str), ClientError> {
    target
        .split_once('/')
        .filter(|(p, k)| !p.is_empty() && !k.is_empty() && !k.contains('/'))
        .ok_or_else(|| ClientError {
            code: "bad_entry".into(),
            message: format!("expected project/package, got {target:?}"),
        })
}
