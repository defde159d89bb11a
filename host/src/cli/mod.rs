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
    /// Users (platform admins).
    #[command(subcommand)]
    Users(UsersCommand),
    /// API tokens.
    #[command(subcommand)]
    Tokens(TokensCommand),
    /// Show who the token belongs to and their roles.
    Whoami {
        #[command(flatten)]
        conn: ConnArgs,
    },
    /// Read the audit log (platform admins; project admins with --project).
    Audit {
        /// Only this project.
        #[arg(long)]
        project: Option<String>,
        /// Only this user.
        #[arg(long)]
        actor: Option<String>,
        /// From this time (RFC 3339).
        #[arg(long)]
        since: Option<String>,
        /// Before this time (RFC 3339).
        #[arg(long)]
        until: Option<String>,
        /// At most this many entries, newest first.
        #[arg(long, default_value_t = 100)]
        limit: u32,
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
    /// Project members and their roles.
    #[command(subcommand)]
    Members(MembersCommand),
}

/// `edgeward projects members …`
#[allow(missing_docs)]
#[derive(Debug, Subcommand)]
pub enum MembersCommand {
    /// Grant a user a role (viewer, developer, admin) in a project, or change it.
    Add {
        /// The project.
        project: String,
        /// The user.
        user: String,
        /// viewer, developer or admin.
        #[arg(long)]
        role: String,
        #[command(flatten)]
        conn: ConnArgs,
    },
    /// Remove a user from a project.
    Remove {
        /// The project.
        project: String,
        /// The user.
        user: String,
        #[command(flatten)]
        conn: ConnArgs,
    },
    /// List a project's members.
    List {
        /// The project.
        project: String,
        #[command(flatten)]
        conn: ConnArgs,
    },
}

/// `edgeward users …`
#[allow(missing_docs)]
#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Create a user.
    Create {
        /// Their name: a-z, 0-9 and '-'.
        name: String,
        /// Make them a platform admin.
        #[arg(long)]
        platform_admin: bool,
        #[command(flatten)]
        conn: ConnArgs,
    },
    /// List users.
    List {
        #[command(flatten)]
        conn: ConnArgs,
    },
}

/// `edgeward tokens …`
#[allow(missing_docs)]
#[derive(Debug, Subcommand)]
pub enum TokensCommand {
    /// Create a token (printed once).
    Create {
        /// For this user (default: yourself).
        #[arg(long)]
        user: Option<String>,
        /// What it is for.
        #[arg(long)]
        name: Option<String>,
        /// Lifetime: seconds, or a number with s, m, h or d (e.g. 30d).
        #[arg(long)]
        expires_in: Option<String>,
        #[command(flatten)]
        conn: ConnArgs,
    },
    /// List tokens (never the tokens themselves).
    List {
        /// Of this user (default: yourself).
        #[arg(long)]
        user: Option<String>,
        #[command(flatten)]
        conn: ConnArgs,
    },
    /// Revoke a token by its id.
    Revoke {
        /// The token id (tok_…).
        id: String,
        /// Whose (default: yourself).
        #[arg(long)]
        user: Option<String>,
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

/// Parses a lifetime: seconds, or a number with `s`, `m`, `h` or `d`.
pub fn parse_duration_secs(s: &str) -> Result<u64, ClientError> {
    let bad = || ClientError {
        code: "bad_entry".into(),
        message: format!("invalid duration {s:?}: use e.g. 3600, 90m, 12h or 30d"),
    };
    let (digits, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = digits.parse().map_err(|_| bad())?;
    let mult = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86400,
        _ => return Err(bad()),
    };
    n.checked_mul(mult).filter(|n| *n > 0).ok_or_else(bad)
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
