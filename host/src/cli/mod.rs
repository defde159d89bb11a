//! The `edgeward` command line: `serve`, and client commands that talk to the API.
//!
//! Client commands find the API and token in flags, then `EDGEWARD_API`/`EDGEWARD_TOKEN`,
//! then the local data directory (`server.json` and `admin.token` written by `serve`). Errors
//! are one line: `error: <code>: <message>`.

pub mod client;
pub mod dev;
mod grants;
mod identity;
mod logs;
pub mod new;
mod packages;
pub mod profiles;
pub mod project;
mod projects;
mod secrets;
mod serve;
pub mod wit;

pub use client::{Client, ClientError};
pub use serve::ServeArgs;

use crate::config::ServeConfig;
use crate::runtime::RuntimeConfig;
use clap::{Args, Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;

/// Edgeward: run WebAssembly functions on HTTP requests, with scoped secrets.
#[derive(Debug, Parser)]
// `--version` only on `edgeward` itself: on a subcommand it would shadow the subcommand's own
// flags (`secrets get --version 1` printed the CLI's version).
#[command(name = "edgeward", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
    /// How results are printed: `text` for people, `json` for scripts (one JSON document
    /// per result, in the API's shapes; `logs` prints one per line).
    #[arg(short = 'o', long, global = true, value_enum, default_value_t = Output::Text)]
    pub output: Output,
}

/// How a command prints its result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    /// Lines and tables for people.
    Text,
    /// JSON for scripts.
    Json,
}

/// The subcommands. (`conn` fields are the shared connection flags.)
#[allow(missing_docs)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (data plane and API).
    Serve(Box<ServeArgs>),
    /// Set up a store for a cluster (run once, not on every host).
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Print a shell completion script: `edgeward completions bash > /etc/bash_completion.d/edgeward`
    /// (or zsh, fish, elvish, powershell).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Make a new function's project directory, ready to build and deploy: `edgeward new
    /// my-fn [--template http|secrets|credentials] [--lang rust|python|js]`.
    New(new::NewArgs),
    /// Run the project here on this machine: builds, serves it on an embedded server (no
    /// login; data in .edgeward-dev/, secrets from dev-secrets.json), prints each request, and
    /// rebuilds and redeploys on every saved change. Ctrl-C stops.
    Dev(dev::DevArgs),
    /// Write the WIT package this binary was built with (the `edgeward:platform` world
    /// functions target) into DIR, or print its own file.
    Wit {
        /// The directory to write `secrets.wit` and `deps/` into (made if missing).
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
    },
    /// Run the project file's build command (`[package] build` in ./edgeward.toml or -f).
    Build {
        /// The project file (default `./edgeward.toml`).
        #[arg(short = 'f', long = "file", value_name = "FILE")]
        project_file: Option<PathBuf>,
    },
    /// Upload a component as the new version of a package and make it current. With no
    /// arguments in a project directory (or with -f): builds, and deploys the project file's
    /// component under its name with its manifest; arguments and flags override the file.
    Deploy {
        /// `project/package` (default: the project file's `[package] name`).
        target: Option<String>,
        /// The component (`.wasm`, built for wasm32-wasip2; default: the project file's
        /// `[package] component`, built first).
        file: Option<PathBuf>,
        /// The project file (default `./edgeward.toml`, read when TARGET or FILE is left out).
        #[arg(short = 'f', long = "file", value_name = "FILE")]
        project_file: Option<PathBuf>,
        /// Do not run the project's build command first.
        #[arg(long)]
        no_build: bool,
        /// A manifest (TOML or JSON). Without one (and without a project file), the new
        /// version keeps the current version's manifest and bindings.
        #[arg(long, conflicts_with = "no_manifest")]
        manifest: Option<PathBuf>,
        /// Deploy with the default manifest instead of keeping the current version's.
        #[arg(long)]
        no_manifest: bool,
        /// A secrets.json object seeding the package's own secrets (all or nothing).
        #[arg(long)]
        secrets: Option<PathBuf>,
        /// `ENV=NAME` (or `ENV=NAME#FIELD`): bind a secret into the function's environment,
        /// over the manifest's `[env]`. A name no scope holds is refused at deploy. Repeatable.
        #[arg(long = "secret", value_name = "ENV=NAME")]
        bind: Vec<String>,
        /// `KEY=VALUE`: a literal environment variable, over the manifest's `[env]`.
        /// Repeatable.
        #[arg(long = "env", value_name = "KEY=VALUE")]
        env: Vec<String>,
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
    /// Secrets in every scope: set, get, list, rm, import, wrap, unwrap.
    #[command(subcommand)]
    Secrets(SecretsCommand),
    /// Users (platform admins).
    #[command(subcommand)]
    Users(UsersCommand),
    /// API tokens.
    #[command(subcommand)]
    Tokens(TokensCommand),
    /// Your grants: which package versions may read the user secrets they declare, on your
    /// calls. A new version needs a new grant.
    #[command(subcommand)]
    Grants(GrantsCommand),
    /// The executions sealed for you (they opened your user scope; only you read their
    /// output), or one of them with its output.
    Sealed {
        /// An execution id: show it with its output.
        id: Option<String>,
        #[command(flatten)]
        conn: ConnArgs,
    },
    /// Keep an API URL and token under a profile in your config directory
    /// (`~/.config/edgeward/profiles.toml`, 0600), so commands work from anywhere. The token
    /// comes from --token, EDGEWARD_TOKEN, a prompt on a terminal, or stdin; it is checked
    /// against the server before it is kept.
    Login {
        /// (The profile's name is --profile, default `default`.)
        #[command(flatten)]
        conn: ConnArgs,
    },
    /// Forget a profile.
    Logout {
        /// The profile's name.
        #[arg(long, env = "EDGEWARD_PROFILE", default_value = "default")]
        profile: String,
    },
    /// Show who the token belongs to, their roles, and every token someone else issued for
    /// them.
    Whoami {
        #[command(flatten)]
        conn: ConnArgs,
    },
    /// Redeem an enrollment code an admin gave you: prints your first token (with a fresh key
    /// to your user secrets) once. `-` reads the code from stdin.
    Enroll {
        #[arg(value_name = "CODE")]
        code: Redacted,
        /// What the token is for.
        #[arg(long)]
        name: Option<String>,
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
    /// Show a package's recent executions with their (masked) output.
    Logs {
        /// `project/package`.
        target: String,
        /// Keep printing new executions as they happen.
        #[arg(short, long)]
        follow: bool,
        /// Only executions with this status (ok, guest_error, trapped, timed_out,
        /// out_of_memory, limited, unbound).
        #[arg(long)]
        status: Option<String>,
        /// How many recent executions to show first.
        #[arg(long, default_value_t = 20)]
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
    /// Change a project's settings (project admins).
    Set {
        /// The project.
        project: String,
        /// Let every member read the project's secret values (on/off; off by default), as
        /// EdgeSecrets' organisation secrets. Each read is audited.
        #[arg(long, value_name = "on|off", value_parser = parse_switch)]
        members_read_secrets: Option<bool>,
        #[command(flatten)]
        conn: ConnArgs,
    },
    /// Delete a project (platform admins) with its members, grants and execution records.
    /// Refused while it has packages unless --force (then its packages, every version and
    /// its project and package secrets go too).
    Delete {
        /// The project.
        name: String,
        /// Delete it even though it has packages (deleted with it, and their secrets).
        #[arg(long)]
        force: bool,
        /// Do not ask for confirmation (asked only on a terminal).
        #[arg(long, short = 'y')]
        yes: bool,
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

/// Which scope a `secrets` command works on. Exactly one of `--platform`, `--project`
/// (with `--package` for package scope) or `--user`.
#[derive(Debug, Clone, Args)]
pub struct ScopeArgs {
    /// The platform scope (platform admins).
    #[arg(long, conflicts_with_all = ["project", "user"])]
    pub platform: bool,
    /// The project scope of PROJECT (with --package: that package's scope).
    #[arg(long)]
    pub project: Option<String>,
    /// The package scope (needs --project).
    #[arg(long, requires = "project")]
    pub package: Option<String>,
    /// Your own user scope (or USER's: only they may use it).
    #[arg(long, num_args = 0..=1, default_missing_value = "", conflicts_with = "project")]
    pub user: Option<String>,
}

/// Where a value comes from; arguments stay out of shell history when you use a file or stdin.
/// `Debug` never shows the value.
#[derive(Clone, Args)]
pub struct ValueArgs {
    /// The value (prefer --file or --stdin: arguments end up in shell history). Without any
    /// of the three, a terminal is asked for it, without echo.
    pub value: Option<String>,
    /// Read the value from a file.
    #[arg(long, conflicts_with = "value")]
    pub file: Option<PathBuf>,
    /// Read the value from standard input.
    #[arg(long, conflicts_with_all = ["value", "file"])]
    pub stdin: bool,
    /// The value is a JSON object of fields (a multi-field secret).
    #[arg(long)]
    pub json: bool,
    /// What the secret is for (shown in listings; replaces the one it had).
    #[arg(long)]
    pub description: Option<String>,
    /// A label, KEY=VALUE; repeat for more. Any given replace the labels it had.
    #[arg(long = "label", value_name = "KEY=VALUE")]
    pub labels: Vec<String>,
}

/// `edgeward secrets …`
#[allow(missing_docs)]
#[derive(Debug, Subcommand)]
pub enum SecretsCommand {
    /// Create or replace a secret (`put` too, as in wrangler and Vault).
    #[command(visible_alias = "put")]
    Set {
        name: String,
        #[command(flatten)]
        value: ValueArgs,
        #[command(flatten)]
        scope: ScopeArgs,
        #[command(flatten)]
        conn: ConnArgs,
    },
    /// Create a secret; fails with already_exists if it is there.
    Create {
        name: String,
        #[command(flatten)]
        value: ValueArgs,
        #[command(flatten)]
        scope: ScopeArgs,
        #[command(flatten)]
        conn: ConnArgs,
    },
    /// Replace a secret's value; fails with not_found if it is not there. With only
    /// --description or --label, changes those and keeps the value and its version.
    Update {
        name: String,
        #[command(flatten)]
        value: ValueArgs,
        #[command(flatten)]
        scope: ScopeArgs,
        #[command(flatten)]
        conn: ConnArgs,
    },
    /// Print a secret's value.
    Get {
        name: String,
        /// Print only this field of a multi-field (JSON object) secret.
        #[arg(long)]
        field: Option<String>,
        /// A kept version instead of the current one (`secrets versions NAME` lists them).
        #[arg(long)]
        version: Option<u64>,
        #[command(flatten)]
        scope: ScopeArgs,
        #[command(flatten)]
        conn: ConnArgs,
    },
    /// List names and metadata (never values), folders walked; PREFIX (`team/`) keeps the
    /// names under it.
    List {
        prefix: Option<String>,
        #[command(flatten)]
        scope: ScopeArgs,
        #[command(flatten)]
        conn: ConnArgs,
    },
    /// List a secret's kept versions (numbers, times, writers; never values).
    Versions {
        name: String,
        #[command(flatten)]
        scope: ScopeArgs,
        #[command(flatten)]
        conn: ConnArgs,
    },
    /// Make a kept version's value current again, as a new version.
    Rollback {
        name: String,
        /// The version to go back to.
        #[arg(long)]
        to: u64,
        #[command(flatten)]
        scope: ScopeArgs,
        #[command(flatten)]
        conn: ConnArgs,
    },
    /// Delete a secret (`delete` too).
    #[command(visible_alias = "delete")]
    Rm {
        name: String,
        /// Do not ask for confirmation (asked only on a terminal).
        #[arg(long, short = 'y')]
        yes: bool,
        /// Delete it even though serving package versions bind it (refused `in_use` without).
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        scope: ScopeArgs,
        #[command(flatten)]
        conn: ConnArgs,
    },
    /// Import a secrets.json object (NAME: value, ...) all or nothing; `-` reads stdin.
    Import {
        file: PathBuf,
        #[command(flatten)]
        scope: ScopeArgs,
        #[command(flatten)]
        conn: ConnArgs,
    },
    /// Exchange a secret for a single-use token (printed on stdout).
    Wrap {
        name: String,
        /// Lifetime: seconds, or a number with s, m, h or d (default 5m).
        #[arg(long)]
        ttl: Option<String>,
        #[command(flatten)]
        scope: ScopeArgs,
        #[command(flatten)]
        conn: ConnArgs,
    },
    /// Redeem a wrapping token once and print the value; `-` reads the token from stdin.
    Unwrap {
        #[arg(value_name = "TOKEN")]
        wrapping_token: Redacted,
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
    /// Delete a user (platform admins): every token of theirs, and every token made from one,
    /// is revoked; their memberships and grants go. Refused while they keep user secrets
    /// unless --force (then those are destroyed too: no one else can read them).
    Delete {
        /// The user.
        name: String,
        /// Delete them even though they keep user secrets (destroyed with them).
        #[arg(long)]
        force: bool,
        /// Do not ask for confirmation (asked only on a terminal).
        #[arg(long, short = 'y')]
        yes: bool,
        #[command(flatten)]
        conn: ConnArgs,
    },
    /// Make a single-use enrollment code for a user (printed once): they redeem it with
    /// `edgeward enroll` for a token of their own that opens their user secrets.
    Enroll {
        /// The user.
        name: String,
        /// How long the code stays valid: seconds, or a number with s, m, h or d (default 24h,
        /// at most 7d).
        #[arg(long)]
        expires_in: Option<String>,
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

/// `edgeward grants …`
#[allow(missing_docs)]
#[derive(Debug, Subcommand)]
pub enum GrantsCommand {
    /// Grant a package version the user secrets it declares: shows the version, its sha256,
    /// the names, its outbound hosts and whether it writes, and asks (on a terminal; --yes
    /// for scripts, which must say it).
    Add {
        /// `project/package`.
        target: String,
        /// The version (default: the one serving).
        #[arg(long)]
        version: Option<i64>,
        /// Grant without asking.
        #[arg(long, short = 'y')]
        yes: bool,
        #[command(flatten)]
        conn: ConnArgs,
    },
    /// List your grants, each checked under your token's key.
    List {
        #[command(flatten)]
        conn: ConnArgs,
    },
    /// Revoke a grant by its id.
    Rm {
        /// The grant id (grant_…).
        id: String,
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
        /// Do not ask for confirmation (asked only on a terminal).
        #[arg(long, short = 'y')]
        yes: bool,
        #[command(flatten)]
        conn: ConnArgs,
    },
}

/// How a client command reaches the server. `Debug` never shows the token.
#[derive(Clone, Args)]
pub struct ConnArgs {
    /// The API's base URL (default: from `<data-dir>/server.json`, else http://127.0.0.1:8081).
    #[arg(long, env = "EDGEWARD_API", global = true)]
    pub api: Option<String>,
    /// An API token (default: `<data-dir>/admin.token`).
    #[arg(long, env = "EDGEWARD_TOKEN", global = true, hide_env_values = true)]
    pub token: Option<String>,
    /// A profile saved by `edgeward login` (without one: the profile last logged in, when no
    /// --api, --token or server data directory says otherwise).
    #[arg(
        long = "profile",
        id = "use_profile",
        env = "EDGEWARD_PROFILE",
        global = true
    )]
    pub profile: Option<String>,
    /// The local data directory to read defaults from.
    #[arg(
        long,
        env = "EDGEWARD_DATA_DIR",
        default_value = ".edgeward",
        global = true
    )]
    pub data_dir: PathBuf,
}

/// A credential given on the command line (a wrapping token): `Debug` shows `***`.
#[derive(Clone)]
pub struct Redacted(pub String);

impl std::str::FromStr for Redacted {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Redacted(s.to_string()))
    }
}

impl std::fmt::Debug for Redacted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

impl std::fmt::Debug for ConnArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnArgs")
            .field("api", &self.api)
            .field("token", &self.token.as_ref().map(|_| "***"))
            .field("data_dir", &self.data_dir)
            .finish()
    }
}

impl std::fmt::Debug for ValueArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ValueArgs")
            .field("value", &self.value.as_ref().map(|_| "***"))
            .field("file", &self.file)
            .field("stdin", &self.stdin)
            .field("json", &self.json)
            .finish()
    }
}

/// `edgeward admin`: operations on the store itself, not through a server.
#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Create the cluster's first platform admin and print its token once. Refused if the
    /// store has an admin already. (A single host on SQLite makes its own `admin.token`.)
    Init {
        /// The cluster's store, `postgres://user:password@host:port/database` (prefer the
        /// environment: a flag shows in `ps`).
        #[arg(long, env = "EDGEWARD_STORE", hide_env_values = true)]
        store: Redacted,
        /// A PEM bundle of CA certificates for the PostgreSQL server's certificate (as
        /// `sslrootcert` in the URL).
        #[arg(long, env = "EDGEWARD_STORE_CA", value_name = "FILE")]
        store_ca: Option<PathBuf>,
        /// Write the token to this new file (0600) instead of printing it.
        #[arg(long)]
        token_file: Option<PathBuf>,
    },
}

/// Parses a lifetime: seconds (`3600`), or a duration like `90m`, `12h`, `1h30m`, `30d`.
pub fn parse_duration_secs(s: &str) -> Result<u64, ClientError> {
    let bad = || ClientError {
        code: "bad_entry".into(),
        message: format!("invalid duration {s:?}: use e.g. 3600, 90m, 1h30m, 12h or 30d"),
    };
    let secs = match s.parse::<u64>() {
        Ok(n) => n,
        Err(_) => humantime::parse_duration(s).map_err(|_| bad())?.as_secs(),
    };
    Some(secs).filter(|n| *n > 0).ok_or_else(bad)
}

/// `--store-connect-timeout`: seconds or a duration, more than 0 and at most 10 minutes.
fn parse_connect_timeout(s: &str) -> Result<std::time::Duration, String> {
    let d = match s.parse::<u64>() {
        Ok(secs) => std::time::Duration::from_secs(secs),
        Err(_) => humantime::parse_duration(s)
            .map_err(|_| format!("{s:?}: give seconds (5) or a duration (500ms, 1m)"))?,
    };
    if d.is_zero() || d > std::time::Duration::from_secs(600) {
        return Err(format!("{s:?}: more than 0 and at most 10 minutes"));
    }
    Ok(d)
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

/// `on`/`off` (or `true`/`false`) for a setting.
fn parse_switch(s: &str) -> Result<bool, String> {
    match s {
        "on" | "true" | "yes" => Ok(true),
        "off" | "false" | "no" => Ok(false),
        _ => Err(format!("{s:?}: say on or off")),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_command_line_definition_is_consistent() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }

    #[test]
    fn the_store_flags_default_to_the_store_s_own_defaults() {
        use clap::Parser;
        let cli = super::Cli::parse_from(["edgeward", "serve"]);
        let super::Command::Serve(args) = cli.command else {
            panic!("not serve");
        };
        let options = (*args).into_config().unwrap().store_options;
        assert_eq!(options.pool_size, crate::store::postgres::DEFAULT_POOL_SIZE);
        assert_eq!(
            options.connect_timeout,
            crate::store::postgres::DEFAULT_CONNECT_TIMEOUT
        );
        assert_eq!(options.ca, None);
        for (given, secs) in [("5", 5), ("1m", 60), ("500ms", 0)] {
            let got = super::parse_connect_timeout(given).unwrap();
            assert_eq!(got.as_secs(), secs, "{given}");
        }
        for bad in ["0", "0s", "11m", "soon"] {
            assert!(super::parse_connect_timeout(bad).is_err(), "{bad}");
        }
        let too_many = (crate::store::postgres::MAX_POOL_SIZE + 1).to_string();
        for bad in ["0", too_many.as_str()] {
            assert!(
                super::Cli::try_parse_from(["edgeward", "serve", "--store-pool", bad]).is_err(),
                "--store-pool {bad}"
            );
        }
    }

    #[test]
    fn debug_output_never_shows_tokens_or_values() {
        use clap::Parser;
        let cli = super::Cli::parse_from([
            "edgeward",
            "secrets",
            "set",
            "DB_PASS",
            "value-marker-4471",
            "--platform",
            "--token",
            "ew_token-marker-4471",
        ]);
        let unwrap = super::Cli::parse_from(["edgeward", "secrets", "unwrap", "wrap-marker-4471"]);
        let config = super::ServeConfig {
            master_key: Some("master-key-marker-4471".into()),
            ..super::ServeConfig::with_data_dir(".edgeward".into())
        };
        let printed = format!("{cli:?} {cli:#?} {unwrap:?} {config:?}");
        assert!(printed.contains("DB_PASS"), "{printed}");
        assert!(!printed.contains("marker-4471"), "{printed}");
    }
}
