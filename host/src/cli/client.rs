//! The API client behind the CLI's commands.

//!
//! This file holds what every command shares: the connection ([`Client`]), the error type
//! ([`ClientError`]), output (`--output json`, tables) and prompts. Each command group lives in a
//! module of its own (`secrets`, `packages`, `projects`, `identity`, `logs`, `grants`), and
//! [`run`] only dispatches.

use super::{Command, ConnArgs, PackagesCommand, ProjectsCommand};
use crate::auth::ADMIN_TOKEN_FILE;
use crate::code::ErrorCode;
use crate::datadir::SERVER_FILE;
use serde_json::Value;
use std::fmt;
use std::io::Read;
use std::path::Path;
use std::time::Duration;

/// A client-side failure: a stable code and a one-line message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientError {
    /// The stable code (the server's, or `unavailable`, `bad_entry`, `io` from the client).
    pub code: String,
    /// What went wrong.
    pub message: String,
}

impl ClientError {
    /// The process exit code for this error's class (documented in the README): 2 usage or
    /// invalid input, 3 authentication or permission, 4 not found, 5 conflict, 6 unavailable,
    /// 1 anything else.
    pub fn exit_code(&self) -> u8 {
        // A code this CLI does not know (a newer server's) is "anything else".
        self.code
            .parse::<crate::code::ErrorCode>()
            .map_or(1, crate::code::ErrorCode::exit_code)
    }
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for ClientError {}

/// A failure the CLI itself finds (a code of the server's table, so a script handles both alike).
pub(super) fn err(code: ErrorCode, message: impl Into<String>) -> ClientError {
    ClientError::remote(code.as_str(), message)
}

impl ClientError {
    /// A failure the server reported, with its code (which may be newer than this CLI).
    pub(super) fn remote(code: &str, message: impl Into<String>) -> ClientError {
        ClientError {
            code: code.into(),
            message: message.into(),
        }
    }
}

/// `--output json`: each command prints one JSON document (streams: one per line), with the
/// shapes of the API's bodies, and nothing else on stdout.
static JSON: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Chooses how results are printed, before any command runs.
pub fn set_output(output: super::Output) {
    JSON.store(
        output == super::Output::Json,
        std::sync::atomic::Ordering::Relaxed,
    );
}

/// Whether results are printed as JSON.
pub fn json_mode() -> bool {
    JSON.load(std::sync::atomic::Ordering::Relaxed)
}

/// Prints `value` as one JSON document on a line of its own.
pub fn emit(value: &impl serde::Serialize) {
    match serde_json::to_string(value) {
        Ok(text) => println!("{text}"),
        Err(e) => eprintln!("error: internal: cannot encode the result: {e}"),
    }
}

/// A table for people: a header row and aligned columns, no borders.
pub fn table(header: &[&str], rows: Vec<Vec<String>>) -> String {
    let mut t = comfy_table::Table::new();
    t.load_preset(comfy_table::presets::NOTHING)
        .set_content_arrangement(comfy_table::ContentArrangement::Disabled)
        .set_header(header.iter().copied());
    for row in rows {
        t.add_row(row);
    }
    for column in t.column_iter_mut() {
        column.set_padding((0, 2));
    }
    t.lines()
        .map(|l| l.trim_end().to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

/// A connection to the API.
pub struct Client {
    http: reqwest::Client,
    api: String,
    token: Option<String>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("api", &self.api)
            .finish_non_exhaustive()
    }
}

pub(super) fn server_file(data_dir: &Path) -> Option<Value> {
    let text = std::fs::read_to_string(data_dir.join(SERVER_FILE)).ok()?;
    serde_json::from_str(&text).ok()
}

impl Client {
    /// Resolves the API address and token from flags, environment and the data directory.
    /// A profile (`--profile`, or the current one when no --api, --token or server data
    /// directory is there to say otherwise) gives both URL and token, so that a profile's
    /// token is only ever sent to that profile's API; --api and --token override it.
    pub fn from_args(conn: &ConnArgs) -> Result<Client, ClientError> {
        let local = server_file(&conn.data_dir);
        let profile = if conn.profile.is_some()
            || (conn.api.is_none() && conn.token.is_none() && local.is_none())
        {
            super::profiles::Profiles::load()?.pick(conn.profile.as_deref())?
        } else {
            None
        };
        if let Some((_, p)) = profile {
            let http = http_builder()
                .connect_timeout(Duration::from_secs(5))
                .build()
                .map_err(|e| err(ErrorCode::Internal, e.to_string()))?;
            return Ok(Client {
                http,
                api: conn
                    .api
                    .clone()
                    .unwrap_or(p.api)
                    .trim_end_matches('/')
                    .to_string(),
                token: Some(conn.token.clone().unwrap_or(p.token)),
            });
        }
        let api = conn
            .api
            .clone()
            .or_else(|| local?.get("api")?.as_str().map(str::to_string))
            .unwrap_or_else(|| "http://127.0.0.1:8081".into());
        let token = conn.token.clone().or_else(|| {
            std::fs::read_to_string(conn.data_dir.join(ADMIN_TOKEN_FILE))
                .ok()
                .map(|t| t.trim().to_string())
        });
        let http = http_builder()
            .connect_timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| err(ErrorCode::Internal, e.to_string()))?;
        Ok(Client {
            http,
            api: api.trim_end_matches('/').to_string(),
            token,
        })
    }

    /// A request without the token (for calls whose credential is in the body).
    /// The API's base URL.
    pub(super) fn api(&self) -> &str {
        &self.api
    }

    pub(super) fn anonymous(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http.request(method, format!("{}{path}", self.api))
    }

    pub(super) fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let builder = self.http.request(method, format!("{}{path}", self.api));
        match &self.token {
            Some(token) => builder.bearer_auth(token),
            None => builder,
        }
    }

    /// Sends, and reads the answer as `T` (one of the API's typed bodies).
    pub(super) async fn send_as<T: serde::de::DeserializeOwned>(
        &self,
        builder: reqwest::RequestBuilder,
    ) -> Result<T, ClientError> {
        let body = self.send(builder).await?;
        serde_json::from_value(body).map_err(|e| {
            err(
                ErrorCode::Internal,
                format!("the server's answer is not the documented shape: {e}"),
            )
        })
    }

    pub(super) async fn send(
        &self,
        builder: reqwest::RequestBuilder,
    ) -> Result<Value, ClientError> {
        let response = builder.send().await.map_err(|e| self.transport(e))?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(|e| self.transport(e))?;
        if status.is_success() {
            if bytes.is_empty() {
                return Ok(Value::Null);
            }
            return serde_json::from_slice(&bytes).map_err(|e| {
                err(
                    ErrorCode::Internal,
                    format!("the server sent invalid JSON: {e}"),
                )
            });
        }
        let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        let code = body["error"]["code"].as_str().unwrap_or("http_error");
        let message = body["error"]["message"]
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| format!("the server answered {status}"));
        let hint = if code == "unauthenticated" && self.token.is_none() {
            " (no token found: pass --token, set EDGEWARD_TOKEN, or run from the directory \
             that holds .edgeward/admin.token)"
        } else {
            ""
        };
        Err(ClientError::remote(code, format!("{message}{hint}")))
    }

    pub(super) fn transport(&self, e: reqwest::Error) -> ClientError {
        if e.is_connect() || e.is_timeout() {
            err(
                ErrorCode::Unavailable,
                format!(
                    "cannot reach the Edgeward API at {}: is `edgeward serve` running? (set \
                     --api or EDGEWARD_API)",
                    self.api
                ),
            )
        } else {
            err(
                ErrorCode::Unavailable,
                format!("request to {} failed: {e}", self.api),
            )
        }
    }
}

pub(super) fn confirm(yes: bool, question: &str) -> Result<(), ClientError> {
    use std::io::{BufRead, IsTerminal, Write};
    if yes || !std::io::stdin().is_terminal() {
        return Ok(());
    }
    eprint!("{question} [y/N] ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .map_err(|e| err(ErrorCode::Io, format!("stdin: {e}")))?;
    if matches!(answer.trim(), "y" | "Y" | "yes") {
        Ok(())
    } else {
        Err(err(ErrorCode::Cancelled, "nothing was deleted"))
    }
}
/// A reqwest client builder with the host's TLS provider installed (reqwest has none of its
/// own), naming itself (`edgeward-cli/VERSION`: an enrollment records the client that redeemed
/// it, which `whoami` shows).
pub(super) fn http_builder() -> reqwest::ClientBuilder {
    crate::install_crypto();
    reqwest::Client::builder().user_agent(concat!("edgeward-cli/", env!("CARGO_PKG_VERSION")))
}

/// `arg`, or when it is `-`, what stdin holds (trimmed): credentials stay out of `ps` and
/// shell history.
pub(super) fn arg_or_stdin(arg: String) -> Result<String, ClientError> {
    if arg != "-" {
        return Ok(arg);
    }
    let mut s = String::new();
    std::io::stdin()
        .read_to_string(&mut s)
        .map_err(|e| err(ErrorCode::Io, format!("stdin: {e}")))?;
    Ok(s.trim().to_string())
}

/// A deploy with neither its arguments nor a project file cannot happen (the file is read
/// whenever one is missing); an error rather than a panic all the same.
fn unreachable_target<T>() -> Result<T, ClientError> {
    Err(err(
        ErrorCode::Internal,
        "deploy without a target and without a project file",
    ))
}

/// What a deploy sends, from its arguments and, for what they leave out, the project file
/// (built first unless `--no-build`): the target, the component and the manifest (`--manifest`,
/// empty for `--no-manifest`, else the project file's, else none: the current one is kept).
async fn deploy_inputs(
    (target, file, project_file): (
        Option<String>,
        Option<std::path::PathBuf>,
        Option<std::path::PathBuf>,
    ),
    no_build: bool,
    (manifest, no_manifest): (Option<std::path::PathBuf>, bool),
) -> Result<(String, std::path::PathBuf, Option<Vec<u8>>), ClientError> {
    // Both named and no -f: no project file. Otherwise the file fills in the rest.
    let project = match (&target, &file, &project_file) {
        (Some(_), Some(_), None) => None,
        _ => Some(super::project::Project::load(project_file.as_deref())?),
    };
    let target = match (target, &project) {
        (Some(target), _) => target,
        (None, Some(project)) => project.target()?.to_string(),
        (None, None) => unreachable_target()?,
    };
    let file = match (file, &project) {
        (Some(file), _) => file,
        (None, Some(project)) => {
            if !no_build {
                project.run_build().await?;
            }
            project.component()?.to_path_buf()
        }
        (None, None) => unreachable_target()?,
    };
    let manifest = match (manifest, no_manifest, &project) {
        (Some(path), _, _) => Some(
            tokio::fs::read(&path)
                .await
                .map_err(|e| err(ErrorCode::Io, format!("{}: {e}", path.display())))?,
        ),
        (None, true, _) => Some(Vec::new()),
        (None, false, Some(project)) => Some(project.manifest.clone()),
        (None, false, None) => None,
    };
    Ok((target, file, manifest))
}

/// Runs a client command, printing its result to stdout.
pub async fn run(command: Command) -> Result<(), ClientError> {
    use super::{logs, packages, projects, secrets};
    match command {
        Command::Serve(_)
        | Command::Admin(_)
        | Command::Completions { .. }
        | Command::New(_)
        | Command::Dev(_)
        | Command::Wit { .. } => Err(err(
            ErrorCode::Internal,
            "serve, admin, completions, new, dev and wit are not client commands",
        )),
        Command::Build { project_file } => {
            super::project::Project::load(project_file.as_deref())?
                .run_build()
                .await
        }
        Command::Deploy {
            target,
            file,
            project_file,
            no_build,
            manifest,
            no_manifest,
            secrets,
            bind,
            env,
            conn,
        } => {
            let (target, file, manifest) = deploy_inputs(
                (target, file, project_file),
                no_build,
                (manifest, no_manifest),
            )
            .await?;
            let options = packages::DeployFiles {
                manifest,
                secrets: secrets.as_deref(),
                bind: &bind,
                env: &env,
            };
            packages::deploy(&Client::from_args(&conn)?, &target, &file, options).await
        }
        Command::Secrets(cmd) => secrets::run(cmd).await,
        Command::Logs {
            target,
            follow,
            status,
            limit,
            conn,
        } => {
            logs::logs(
                &Client::from_args(&conn)?,
                &target,
                follow,
                status,
                limit,
                None,
            )
            .await
        }
        Command::Projects(ProjectsCommand::Create { name, conn }) => {
            projects::create(name, conn).await
        }
        Command::Projects(ProjectsCommand::List { conn }) => projects::list(conn).await,
        Command::Projects(ProjectsCommand::Delete {
            name,
            force,
            yes,
            conn,
        }) => projects::delete(name, force, yes, conn).await,
        Command::Projects(ProjectsCommand::Set {
            project,
            members_read_secrets,
            conn,
        }) => projects::set(project, members_read_secrets, conn).await,
        Command::Projects(ProjectsCommand::Members(cmd)) => projects::members(cmd).await,
        Command::Packages(PackagesCommand::List { project, conn }) => {
            packages::list(project, conn).await
        }
        Command::Packages(PackagesCommand::Show { target, conn }) => {
            packages::show(target, conn).await
        }
        Command::Packages(PackagesCommand::Delete { target, yes, conn }) => {
            packages::delete(target, yes, conn).await
        }
        Command::Rollback { target, to, conn } => packages::rollback(target, to, conn).await,
        other => run_identity(other).await,
    }
}

/// Runs the commands about who the caller is (users, tokens, grants, profiles, the audit log).
async fn run_identity(command: Command) -> Result<(), ClientError> {
    use super::{grants, identity, logs, packages};
    match command {
        Command::Users(cmd) => identity::users(cmd).await,
        Command::Tokens(cmd) => identity::tokens(cmd).await,
        Command::Grants(cmd) => grants::run(cmd).await,
        Command::Sealed { id, conn } => grants::sealed(id, conn).await,
        Command::Login { conn } => identity::login(conn).await,
        Command::Logout { profile } => identity::logout(profile),
        Command::Whoami { conn } => identity::whoami(conn).await,
        Command::Enroll {
            code: crate::cli::Redacted(code),
            name,
            conn,
        } => identity::enroll(code, name, conn).await,
        Command::Audit {
            project,
            actor,
            since,
            until,
            limit,
            conn,
        } => logs::audit(project, actor, since, until, limit, conn).await,
        Command::Invoke {
            target,
            path,
            method,
            data,
            headers,
            include,
            url,
            conn,
        } => {
            let request = packages::Invocation {
                path,
                method: &method,
                data,
                headers: &headers,
                include,
                url,
            };
            packages::invoke(&target, request, &conn).await
        }
        _ => Err(err(ErrorCode::Internal, "not a client command")),
    }
}
