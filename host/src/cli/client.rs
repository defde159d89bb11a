//! The API client behind the CLI's commands.

use super::{
    Command, ConnArgs, MembersCommand, PackagesCommand, ProjectsCommand, ScopeArgs, SecretsCommand,
    TokensCommand, UsersCommand, ValueArgs, parse_duration_secs, split_target,
};
use crate::api::model::{
    AuditList, Execution, MemberList, Package, PackageList, ProjectList, SecretList,
    SecretVersions, TokenList, UserList,
};
use crate::auth::ADMIN_TOKEN_FILE;
use crate::datadir::SERVER_FILE;
use futures::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use reqwest::Method;
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

pub(super) fn err(code: &str, message: impl Into<String>) -> ClientError {
    ClientError {
        code: code.into(),
        message: message.into(),
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

fn server_file(data_dir: &Path) -> Option<Value> {
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
                .map_err(|e| err("internal", e.to_string()))?;
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
            .map_err(|e| err("internal", e.to_string()))?;
        Ok(Client {
            http,
            api: api.trim_end_matches('/').to_string(),
            token,
        })
    }

    /// A request without the token (for calls whose credential is in the body).
    fn anonymous(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
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
    async fn send_as<T: serde::de::DeserializeOwned>(
        &self,
        builder: reqwest::RequestBuilder,
    ) -> Result<T, ClientError> {
        let body = self.send(builder).await?;
        serde_json::from_value(body).map_err(|e| {
            err(
                "internal",
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
            return serde_json::from_slice(&bytes)
                .map_err(|e| err("internal", format!("the server sent invalid JSON: {e}")));
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
        Err(err(code, format!("{message}{hint}")))
    }

    fn transport(&self, e: reqwest::Error) -> ClientError {
        if e.is_connect() || e.is_timeout() {
            err(
                "unavailable",
                format!(
                    "cannot reach the Edgeward API at {}: is `edgeward serve` running? (set \
                     --api or EDGEWARD_API)",
                    self.api
                ),
            )
        } else {
            err(
                "unavailable",
                format!("request to {} failed: {e}", self.api),
            )
        }
    }
}

/// Runs a client command, printing its result to stdout.
pub async fn run(command: Command) -> Result<(), ClientError> {
    match command {
        Command::Serve(_) | Command::Admin(_) | Command::Completions { .. } => Err(err(
            "internal",
            "serve, admin and completions are not client commands",
        )),
        Command::Deploy {
            target,
            file,
            manifest,
            secrets,
            bind,
            env,
            conn,
        } => {
            deploy(
                &Client::from_args(&conn)?,
                &target,
                &file,
                manifest.as_deref(),
                secrets.as_deref(),
                (&bind, &env),
            )
            .await
        }
        Command::Secrets(cmd) => secrets(cmd).await,
        Command::Logs {
            target,
            follow,
            status,
            limit,
            conn,
        } => logs(&Client::from_args(&conn)?, &target, follow, status, limit).await,
        Command::Projects(ProjectsCommand::Create { name, conn }) => {
            let client = Client::from_args(&conn)?;
            let body = client
                .send(
                    client
                        .request(reqwest::Method::POST, "/v1/projects")
                        .json(&serde_json::json!({ "name": name })),
                )
                .await?;
            if json_mode() {
                emit(&body);
            } else {
                println!("created project {name}");
            }
            Ok(())
        }
        Command::Projects(ProjectsCommand::List { conn }) => {
            let client = Client::from_args(&conn)?;
            let body: ProjectList = client
                .send_as(client.request(reqwest::Method::GET, "/v1/projects"))
                .await?;
            if json_mode() {
                emit(&body);
                return Ok(());
            }
            let rows = body
                .projects
                .into_iter()
                .map(|p| {
                    let members = if p.members_read_secrets { "on" } else { "off" };
                    vec![p.name, p.created_at, p.created_by, members.to_string()]
                })
                .collect();
            println!(
                "{}",
                table(&["NAME", "CREATED", "BY", "MEMBERS READ SECRETS"], rows)
            );
            Ok(())
        }
        Command::Projects(ProjectsCommand::Set {
            project,
            members_read_secrets,
            conn,
        }) => {
            let client = Client::from_args(&conn)?;
            let Some(on) = members_read_secrets else {
                return Err(err(
                    "bad_entry",
                    "say what to change: --members-read-secrets on|off",
                ));
            };
            let body = client
                .send(
                    client
                        .request(reqwest::Method::PATCH, &format!("/v1/projects/{project}"))
                        .json(&serde_json::json!({ "members_read_secrets": on })),
                )
                .await?;
            if json_mode() {
                emit(&body);
            } else if on {
                println!(
                    "{project}: every member may now read its project secrets' values (each \
                     read is audited)"
                );
            } else {
                println!("{project}: only project admins read its project secrets' values");
            }
            Ok(())
        }
        Command::Packages(PackagesCommand::List { project, conn }) => {
            let client = Client::from_args(&conn)?;
            let projects = match project {
                Some(p) => vec![p],
                None => {
                    let body = client
                        .send(client.request(reqwest::Method::GET, "/v1/projects"))
                        .await?;
                    body["projects"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|p| p["name"].as_str().map(str::to_string))
                        .collect()
                }
            };
            // Everything is fetched before the header is printed: an error (a project that
            // does not exist) comes alone, not under a table's header.
            let mut lists = Vec::new();
            for project in projects {
                let list: PackageList = client
                    .send_as(client.request(
                        reqwest::Method::GET,
                        &format!("/v1/projects/{project}/packages"),
                    ))
                    .await?;
                lists.push(list);
            }
            if json_mode() {
                emit(&serde_json::json!({ "projects": lists }));
                return Ok(());
            }
            let rows = lists
                .into_iter()
                .flat_map(|l| {
                    let project = l.project;
                    l.packages.into_iter().map(move |p| {
                        vec![
                            format!("{project}/{}", p.name),
                            p.current_version.map_or("-".into(), |v| v.to_string()),
                            p.versions.to_string(),
                            p.created_at,
                        ]
                    })
                })
                .collect();
            println!(
                "{}",
                table(&["PACKAGE", "CURRENT", "VERSIONS", "CREATED"], rows)
            );
            Ok(())
        }
        Command::Packages(PackagesCommand::Show { target, conn }) => {
            let (project, package) = split_target(&target)?;
            let client = Client::from_args(&conn)?;
            let body: Package = client
                .send_as(client.request(
                    reqwest::Method::GET,
                    &format!("/v1/projects/{project}/packages/{package}"),
                ))
                .await?;
            if json_mode() {
                emit(&body);
                return Ok(());
            }
            let rows = body
                .versions
                .into_iter()
                .map(|v| {
                    vec![
                        format!("{}{}", v.version, if v.current { "*" } else { "" }),
                        v.sha256,
                        v.size.to_string(),
                        v.created_at,
                        v.created_by,
                    ]
                })
                .collect();
            println!(
                "{}",
                table(&["VERSION", "SHA256", "SIZE", "CREATED", "BY"], rows)
            );
            println!("(* serving)");
            Ok(())
        }
        Command::Packages(PackagesCommand::Delete { target, yes, conn }) => {
            let (project, package) = split_target(&target)?;
            confirm(
                yes,
                &format!("delete {project}/{package} and all its versions?"),
            )?;
            let client = Client::from_args(&conn)?;
            client
                .send(client.request(
                    reqwest::Method::DELETE,
                    &format!("/v1/projects/{project}/packages/{package}"),
                ))
                .await?;
            if json_mode() {
                emit(&serde_json::json!({ "deleted": format!("{project}/{package}") }));
            } else {
                println!("deleted {project}/{package}");
            }
            Ok(())
        }
        Command::Rollback { target, to, conn } => {
            let (project, package) = split_target(&target)?;
            let client = Client::from_args(&conn)?;
            let body = client
                .send(
                    client
                        .request(
                            reqwest::Method::POST,
                            &format!("/v1/projects/{project}/packages/{package}/rollback"),
                        )
                        .json(&serde_json::json!({ "version": to })),
                )
                .await?;
            if json_mode() {
                emit(&body);
            } else {
                println!(
                    "{project}/{package} now serves version {}",
                    body["version"].as_i64().unwrap_or(0)
                );
            }
            Ok(())
        }
        Command::Projects(ProjectsCommand::Members(cmd)) => members(cmd).await,
        Command::Users(cmd) => users(cmd).await,
        Command::Tokens(cmd) => tokens(cmd).await,
        Command::Grants(cmd) => super::grants::run(cmd).await,
        Command::Sealed { id, conn } => super::grants::sealed(id, conn).await,
        Command::Login { conn } => login(conn).await,
        Command::Logout { profile } => {
            let mut profiles = super::profiles::Profiles::load()?;
            if profiles.profiles.remove(&profile).is_none() {
                return Err(err("not_found", format!("no profile {profile:?}")));
            }
            if profiles.current.as_deref() == Some(profile.as_str()) {
                profiles.current = None;
            }
            profiles.save()?;
            if json_mode() {
                emit(&serde_json::json!({ "removed": profile }));
            } else {
                println!("forgot profile {profile}");
            }
            Ok(())
        }
        Command::Whoami { conn } => {
            let client = Client::from_args(&conn)?;
            let me = client
                .send(client.request(Method::GET, "/v1/whoami"))
                .await?;
            if json_mode() {
                emit(&me);
                return Ok(());
            }
            println!(
                "{}{}",
                me["user"].as_str().unwrap_or_default(),
                if me["platform_admin"].as_bool() == Some(true) {
                    " (platform admin)"
                } else {
                    ""
                }
            );
            for p in me["projects"].as_array().into_iter().flatten() {
                println!(
                    "  {} {}",
                    p["project"].as_str().unwrap_or_default(),
                    p["role"].as_str().unwrap_or_default()
                );
            }
            match me["user_key"].as_str() {
                Some(key) => println!("this token opens your user secrets (data key {key})"),
                None => println!(
                    "this token opens none of your user secrets (issued by {})",
                    me["issued_by"].as_str().unwrap_or_default()
                ),
            }
            if let Some(origin) = me["key_origin"].as_object() {
                println!(
                    "that key was made by redeeming code ewe_…{} (enrollment {} by {}) at {} \
                     from {} with {}: if that was not you, enroll again and revoke this token",
                    origin["code_hint"].as_str().unwrap_or("?"),
                    origin["enrollment"].as_str().unwrap_or_default(),
                    origin["created_by"].as_str().unwrap_or_default(),
                    origin["redeemed_at"].as_str().unwrap_or_default(),
                    origin["redeemed_from"]
                        .as_str()
                        .unwrap_or("an unknown address"),
                    origin["redeemed_client"]
                        .as_str()
                        .unwrap_or("an unknown client"),
                );
            }
            if let Some(children) = me["descendants"].as_array().filter(|d| !d.is_empty()) {
                println!("tokens made from this one (each dies with it):");
                for t in children {
                    println!(
                        "  {} {:?} expires {}{}",
                        t["id"].as_str().unwrap_or_default(),
                        t["name"].as_str().unwrap_or_default(),
                        t["expires_at"].as_str().unwrap_or("never"),
                        if t["revoked_at"].is_string() {
                            " [revoked]"
                        } else {
                            ""
                        },
                    );
                }
            }
            let others = me["tokens_issued_by_others"].as_array();
            if let Some(others) = others.filter(|o| !o.is_empty()) {
                println!("tokens others issued for you:");
                for t in others {
                    println!(
                        "  {} {:?} issued by {} at {}{}{}",
                        t["id"].as_str().unwrap_or_default(),
                        t["name"].as_str().unwrap_or_default(),
                        t["issued_by"].as_str().unwrap_or_default(),
                        t["created_at"].as_str().unwrap_or_default(),
                        if t["user_key"].is_string() {
                            " (enrolled: holds a data key of its own)"
                        } else {
                            ""
                        },
                        if t["revoked_at"].is_string() {
                            " [revoked]"
                        } else {
                            ""
                        },
                    );
                }
            }
            Ok(())
        }
        Command::Enroll {
            code: crate::cli::Redacted(code),
            name,
            conn,
        } => {
            let client = Client::from_args(&conn)?;
            let code = arg_or_stdin(code)?;
            let body = client
                .send(
                    client
                        .anonymous(Method::POST, "/v1/enroll")
                        .json(&serde_json::json!({ "code": code, "name": name })),
                )
                .await?;
            if json_mode() {
                emit(&body);
                return Ok(());
            }
            eprintln!(
                "enrolled {}: token {} below, with data key {}; it is shown once, store it now",
                body["user"].as_str().unwrap_or_default(),
                body["id"].as_str().unwrap_or_default(),
                body["user_key"].as_str().unwrap_or_default(),
            );
            if let Some(note) = body["note"].as_str().filter(|n| n.contains("NEW data key")) {
                eprintln!("note: {note}");
            }
            println!("{}", body["token"].as_str().unwrap_or_default());
            Ok(())
        }
        Command::Audit {
            project,
            actor,
            since,
            until,
            limit,
            conn,
        } => {
            let client = Client::from_args(&conn)?;
            let mut query: Vec<(&str, String)> = vec![("limit", limit.to_string())];
            for (k, v) in [
                ("project", project),
                ("actor", actor),
                ("since", since),
                ("until", until),
            ] {
                if let Some(v) = v {
                    query.push((k, v));
                }
            }
            let body: AuditList = client
                .send_as(client.request(Method::GET, "/v1/audit").query(&query))
                .await?;
            if json_mode() {
                emit(&body);
                return Ok(());
            }
            let rows = body
                .entries
                .into_iter()
                .map(|e| {
                    let what = e
                        .action
                        .split_once(' ')
                        .map_or(e.target.clone(), |(m, _)| format!("{m} {}", e.target));
                    vec![
                        e.at,
                        e.actor,
                        e.remote.unwrap_or_else(|| "-".into()),
                        e.status.to_string(),
                        e.outcome,
                        what,
                    ]
                })
                .collect();
            println!(
                "{}",
                table(
                    &["AT", "ACTOR", "FROM", "STATUS", "OUTCOME", "REQUEST"],
                    rows
                )
            );
            Ok(())
        }
        Command::Invoke {
            target,
            path,
            method,
            data,
            headers,
            include,
            url,
            conn,
        } => invoke(&target, path, &method, data, &headers, include, url, &conn).await,
    }
}

/// `edgeward login`: checks the token against the API, then keeps both under the profile and
/// makes it the current one.
async fn login(conn: ConnArgs) -> Result<(), ClientError> {
    let name = conn.profile.clone().unwrap_or_else(|| "default".into());
    let api = conn.api.clone().ok_or_else(|| {
        err(
            "bad_entry",
            "login needs the API's URL: --api URL (or EDGEWARD_API)",
        )
    })?;
    let token = match &conn.token {
        Some(t) => t.clone(),
        None if std::io::IsTerminal::is_terminal(&std::io::stdin()) => {
            read_hidden(&format!("token for {api} (not shown): "))
                .map_err(|e| err("io", format!("cannot read the token: {e}")))?
        }
        None => arg_or_stdin("-".into())?,
    };
    let token = token.trim().to_string();
    if token.is_empty() {
        return Err(err("bad_entry", "no token given"));
    }
    let client = Client::from_args(&ConnArgs {
        api: Some(api.clone()),
        token: Some(token.clone()),
        profile: None,
        data_dir: conn.data_dir.clone(),
    })?;
    let me: crate::api::model::Whoami = client
        .send_as(client.request(Method::GET, "/v1/whoami"))
        .await?;
    let mut profiles = super::profiles::Profiles::load()?;
    profiles.profiles.insert(
        name.clone(),
        super::profiles::Profile {
            api: client.api.clone(),
            token,
        },
    );
    profiles.current = Some(name.clone());
    let path = profiles.save()?;
    if json_mode() {
        emit(&serde_json::json!({
            "profile": name,
            "api": client.api,
            "user": me.user,
            "file": path,
        }));
    } else {
        println!(
            "logged in to {} as {} (profile {name}, kept in {})",
            client.api,
            me.user,
            path.display()
        );
    }
    Ok(())
}

/// Reads a line from the terminal without echo. Echo is off before the prompt is shown, so
/// nothing typed as soon as the prompt appears is echoed (rpassword, used before, showed the prompt first),
/// and it is turned back on however the read ends.
fn read_hidden(prompt: &str) -> std::io::Result<String> {
    use rustix::termios::{LocalModes, OptionalActions, tcgetattr, tcsetattr};
    use std::io::{BufRead, Write};
    let tty = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")?;
    let before = tcgetattr(&tty)?;
    let mut hidden = before.clone();
    hidden.local_modes.remove(LocalModes::ECHO);
    hidden.local_modes.insert(LocalModes::ECHONL);
    tcsetattr(&tty, OptionalActions::Flush, &hidden)?;
    struct Restore<'a>(&'a std::fs::File, rustix::termios::Termios);
    impl Drop for Restore<'_> {
        fn drop(&mut self) {
            let _ = tcsetattr(self.0, OptionalActions::Now, &self.1);
        }
    }
    let _restore = Restore(&tty, before);
    let mut out = &tty;
    out.write_all(prompt.as_bytes())?;
    out.flush()?;
    let mut line = zeroize::Zeroizing::new(String::new());
    std::io::BufReader::new(&tty).read_line(&mut line)?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

/// The API collection path of a scope.
async fn scope_path(client: &Client, scope: &ScopeArgs) -> Result<String, ClientError> {
    match scope {
        ScopeArgs { platform: true, .. } => Ok("/v1/secrets/platform".into()),
        ScopeArgs {
            project: Some(p),
            package: Some(k),
            ..
        } => Ok(format!("/v1/projects/{p}/packages/{k}/secrets")),
        ScopeArgs {
            project: Some(p), ..
        } => Ok(format!("/v1/projects/{p}/secrets")),
        ScopeArgs { user: Some(u), .. } => {
            let u = if u.is_empty() {
                whoami_name(client, None).await?
            } else {
                u.clone()
            };
            Ok(format!("/v1/users/{u}/secrets"))
        }
        _ => Err(err(
            "bad_entry",
            "say which scope: --platform, --project P [--package K], or --user",
        )),
    }
}

/// On a terminal, asks `question` and goes on only on `y`; elsewhere (a script, a pipe) or
/// with `--yes`, goes on.
fn confirm(yes: bool, question: &str) -> Result<(), ClientError> {
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
        .map_err(|e| err("io", format!("stdin: {e}")))?;
    if matches!(answer.trim(), "y" | "Y" | "yes") {
        Ok(())
    } else {
        Err(err("cancelled", "nothing was deleted"))
    }
}

fn read_value(v: &ValueArgs) -> Result<Value, ClientError> {
    let text = match (&v.value, &v.file, v.stdin) {
        (Some(value), _, _) => value.clone(),
        (None, Some(file), _) => std::fs::read_to_string(file)
            .map_err(|e| err("io", format!("{}: {e}", file.display())))?,
        (None, None, true) => {
            let mut s = String::new();
            std::io::stdin()
                .read_to_string(&mut s)
                .map_err(|e| err("io", format!("stdin: {e}")))?;
            s
        }
        (None, None, false) if std::io::IsTerminal::is_terminal(&std::io::stdin()) => {
            read_hidden("value (not shown): ")
                .map_err(|e| err("io", format!("cannot read the value: {e}")))?
        }
        (None, None, false) => {
            return Err(err(
                "bad_entry",
                "give the value as an argument, with --file F, or with --stdin",
            ));
        }
    };
    // A file or stdin usually ends with a newline that is not part of the secret.
    let text = if v.value.is_none() {
        text.strip_suffix('\n')
            .map(|t| t.strip_suffix('\r').unwrap_or(t))
            .unwrap_or(&text)
            .to_string()
    } else {
        text
    };
    if v.json {
        let parsed: Value = serde_json::from_str(&text)
            .map_err(|e| err("bad_entry", format!("--json: the value is not JSON: {e}")))?;
        if !parsed.is_object() {
            return Err(err(
                "bad_entry",
                "--json: the value must be a JSON object of fields",
            ));
        }
        Ok(parsed)
    } else {
        Ok(Value::String(text))
    }
}

fn print_value(v: &Value) {
    match v {
        Value::String(s) => println!("{s}"),
        other => println!("{other}"),
    }
}

/// A reqwest client builder with the host's TLS provider installed (reqwest has none of its
/// own), naming itself (`edgeward-cli/VERSION`: an enrollment records the client that redeemed
/// it, which `whoami` shows).
fn http_builder() -> reqwest::ClientBuilder {
    crate::install_crypto();
    reqwest::Client::builder().user_agent(concat!("edgeward-cli/", env!("CARGO_PKG_VERSION")))
}

/// The API path of one secret of the collection `base`: the name is one path segment, a
/// folder's `/` written `%2F`.
fn one(base: &str, name: &str) -> String {
    const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~');
    format!(
        "{base}/{}",
        percent_encoding::utf8_percent_encode(name, SEGMENT)
    )
}

async fn write_secret(
    method: Method,
    name: &str,
    value: &ValueArgs,
    scope: &ScopeArgs,
    conn: &ConnArgs,
) -> Result<(), ClientError> {
    let client = Client::from_args(conn)?;
    let base = scope_path(&client, scope).await?;
    let mut labels = serde_json::Map::new();
    for label in &value.labels {
        let (k, v) = label.split_once('=').ok_or_else(|| {
            err(
                "bad_entry",
                format!("--label {label:?}: write it KEY=VALUE"),
            )
        })?;
        labels.insert(k.to_string(), Value::String(v.to_string()));
    }
    let description = value.description.clone();
    let value = read_value(value)?;
    let (path, mut body) = if method == Method::POST {
        (base, serde_json::json!({ "name": name, "value": value }))
    } else {
        (one(&base, name), serde_json::json!({ "value": value }))
    };
    if let Some(d) = description {
        body["description"] = Value::String(d);
    }
    if !labels.is_empty() {
        body["labels"] = Value::Object(labels);
    }
    let body = client
        .send(client.request(method, &path).json(&body))
        .await?;
    if json_mode() {
        emit(&body);
        return Ok(());
    }
    println!(
        "{} {name} version {}",
        body["scope"].as_str().unwrap_or_default(),
        body["version"].as_u64().unwrap_or(0)
    );
    Ok(())
}

async fn secrets(cmd: SecretsCommand) -> Result<(), ClientError> {
    match cmd {
        SecretsCommand::Set {
            name,
            value,
            scope,
            conn,
        } => write_secret(Method::PUT, &name, &value, &scope, &conn).await,
        SecretsCommand::Create {
            name,
            value,
            scope,
            conn,
        } => write_secret(Method::POST, &name, &value, &scope, &conn).await,
        SecretsCommand::Update {
            name,
            value,
            scope,
            conn,
        } => write_secret(Method::PATCH, &name, &value, &scope, &conn).await,
        SecretsCommand::Get {
            name,
            field,
            version,
            scope,
            conn,
        } => {
            let client = Client::from_args(&conn)?;
            let base = scope_path(&client, &scope).await?;
            let mut request = client.request(Method::GET, &one(&base, &name));
            if let Some(v) = version {
                request = request.query(&[("version", v)]);
            }
            let body = client.send(request).await?;
            if json_mode() && field.is_none() {
                emit(&body);
                return Ok(());
            }
            match field {
                None => print_value(&body["value"]),
                Some(field) => match &body["value"] {
                    Value::Object(fields) => match fields.get(&field) {
                        Some(v) if json_mode() => emit(&serde_json::json!({
                            "name": body["name"],
                            "scope": body["scope"],
                            "version": body["version"],
                            "field": field,
                            "value": v,
                        })),
                        Some(v) => print_value(v),
                        None => {
                            let mut known: Vec<&str> = fields.keys().map(String::as_str).collect();
                            known.sort_unstable();
                            return Err(err(
                                "not_found",
                                format!(
                                    "{name} has no field {field:?} (its fields: {})",
                                    known.join(", ")
                                ),
                            ));
                        }
                    },
                    _ => {
                        return Err(err(
                            "bad_entry",
                            format!("{name} is a plain value, not fields: drop --field"),
                        ));
                    }
                },
            }
            Ok(())
        }
        SecretsCommand::List {
            prefix,
            scope,
            conn,
        } => {
            let client = Client::from_args(&conn)?;
            let base = scope_path(&client, &scope).await?;
            let mut request = client.request(Method::GET, &base);
            if let Some(p) = &prefix {
                request = request.query(&[("prefix", p)]);
            }
            let body: SecretList = client.send_as(request).await?;
            if json_mode() {
                emit(&body);
                return Ok(());
            }
            let rows = body
                .secrets
                .into_iter()
                .map(|s| {
                    let labels: Vec<String> =
                        s.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
                    vec![
                        s.name,
                        s.version.to_string(),
                        s.updated_at,
                        s.updated_by,
                        s.description,
                        labels.join(" "),
                    ]
                })
                .collect();
            println!(
                "{}",
                table(
                    &["NAME", "VERSION", "UPDATED", "BY", "DESCRIPTION", "LABELS"],
                    rows
                )
            );
            Ok(())
        }
        SecretsCommand::Versions { name, scope, conn } => {
            let client = Client::from_args(&conn)?;
            let base = scope_path(&client, &scope).await?;
            let body: SecretVersions = client
                .send_as(client.request(Method::GET, &format!("{}/versions", one(&base, &name))))
                .await?;
            if json_mode() {
                emit(&body);
                return Ok(());
            }
            let rows = body
                .versions
                .into_iter()
                .map(|v| {
                    let state = match (v.current, v.deleted) {
                        (_, true) => "deleted",
                        (true, false) => "current",
                        (false, false) => "",
                    };
                    vec![
                        v.version.to_string(),
                        v.created_at,
                        v.created_by.unwrap_or_else(|| "-".into()),
                        state.to_string(),
                    ]
                })
                .collect();
            println!("{}", table(&["VERSION", "CREATED", "BY", "STATE"], rows));
            Ok(())
        }
        SecretsCommand::Rollback {
            name,
            to,
            scope,
            conn,
        } => {
            let client = Client::from_args(&conn)?;
            let base = scope_path(&client, &scope).await?;
            let body = client
                .send(
                    client
                        .request(Method::POST, &format!("{}/rollback", one(&base, &name)))
                        .json(&serde_json::json!({ "version": to })),
                )
                .await?;
            if json_mode() {
                emit(&body);
                return Ok(());
            }
            println!(
                "{} {name} rolled back to version {to}'s value, now version {}",
                body["scope"].as_str().unwrap_or_default(),
                body["version"].as_u64().unwrap_or(0)
            );
            Ok(())
        }
        SecretsCommand::Rm {
            name,
            yes,
            scope,
            conn,
        } => {
            confirm(yes, &format!("delete the secret {name}?"))?;
            let client = Client::from_args(&conn)?;
            let base = scope_path(&client, &scope).await?;
            client
                .send(client.request(Method::DELETE, &one(&base, &name)))
                .await?;
            if json_mode() {
                emit(&serde_json::json!({ "deleted": name }));
            } else {
                println!("deleted {name}");
            }
            Ok(())
        }
        SecretsCommand::Import { file, scope, conn } => {
            let client = Client::from_args(&conn)?;
            let base = scope_path(&client, &scope).await?;
            let text = if file.as_os_str() == "-" {
                let mut s = String::new();
                std::io::stdin()
                    .read_to_string(&mut s)
                    .map_err(|e| err("io", format!("stdin: {e}")))?;
                s
            } else {
                std::fs::read_to_string(&file)
                    .map_err(|e| err("io", format!("{}: {e}", file.display())))?
            };
            let json: Value = serde_json::from_str(&text)
                .map_err(|e| err("bad_entry", format!("the file is not JSON: {e}")))?;
            let body = client
                .send(client.request(Method::PUT, &base).json(&json))
                .await?;
            if json_mode() {
                emit(&body);
                return Ok(());
            }
            let n = body["imported"].as_array().map_or(0, Vec::len);
            println!("imported {n} secrets");
            Ok(())
        }
        SecretsCommand::Wrap {
            name,
            ttl,
            scope,
            conn,
        } => {
            let client = Client::from_args(&conn)?;
            let base = scope_path(&client, &scope).await?;
            let ttl = ttl.as_deref().map(parse_duration_secs).transpose()?;
            let body = client
                .send(
                    client
                        .request(Method::POST, &format!("{}/wrap", one(&base, &name)))
                        .json(&serde_json::json!({ "ttl": ttl })),
                )
                .await?;
            if json_mode() {
                emit(&body);
                return Ok(());
            }
            eprintln!(
                "single-use token for {name}, valid until {}; redeem with `edgeward secrets \
                 unwrap` or at {}",
                body["expires_at"].as_str().unwrap_or_default(),
                body["unwrap_url"].as_str().unwrap_or_default()
            );
            println!("{}", body["token"].as_str().unwrap_or_default());
            Ok(())
        }
        SecretsCommand::Unwrap {
            wrapping_token: crate::cli::Redacted(token),
            conn,
        } => {
            let client = Client::from_args(&conn)?;
            let token = arg_or_stdin(token)?;
            let body = client
                .send(
                    client
                        .request(Method::POST, "/v1/unwrap")
                        .json(&serde_json::json!({ "token": token })),
                )
                .await?;
            if json_mode() {
                emit(&body);
                return Ok(());
            }
            print_value(&body["value"]);
            Ok(())
        }
    }
}

async fn logs(
    client: &Client,
    target: &str,
    follow: bool,
    status: Option<String>,
    limit: u32,
) -> Result<(), ClientError> {
    let (project, package) = split_target(target)?;
    // A misspelled target is an error, not an empty log (nor a follow that waits forever).
    client
        .send(client.request(
            Method::GET,
            &format!("/v1/projects/{project}/packages/{package}"),
        ))
        .await?;
    let mut query = vec![
        ("package", package.to_string()),
        ("limit", limit.to_string()),
    ];
    if let Some(s) = &status {
        query.push(("status", s.clone()));
    }
    let list: crate::api::model::ExecutionList = client
        .send_as(
            client
                .request(Method::GET, &format!("/v1/projects/{project}/executions"))
                .query(&query),
        )
        .await?;
    let mut newest = None;
    for row in list.executions.into_iter().rev() {
        newest = newest.max(Some(row.started_at_ms));
        let detail: Execution = client
            .send_as(client.request(
                Method::GET,
                &format!("/v1/projects/{project}/executions/{}", row.id),
            ))
            .await?;
        print_execution(&detail);
    }
    if !follow {
        return Ok(());
    }
    // From here on, the server pushes each record as it is written (server-sent events).
    if let Some(after) = newest {
        query.push(("after", after.to_string()));
    }
    query.retain(|(k, _)| *k != "limit");
    let response = client
        .request(
            Method::GET,
            &format!("/v1/projects/{project}/executions/stream"),
        )
        .query(&query)
        .send()
        .await
        .map_err(|e| client.transport(e))?;
    if !response.status().is_success() {
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        return Err(err(
            body["error"]["code"].as_str().unwrap_or("http_error"),
            body["error"]["message"]
                .as_str()
                .map_or_else(|| format!("the server answered {status}"), str::to_string),
        ));
    }
    let mut stream = response.bytes_stream();
    let mut buffer = String::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| client.transport(e))?;
        buffer.push_str(&String::from_utf8_lossy(&chunk));
        // Events end with a blank line; `data:` lines carry the record.
        while let Some(end) = buffer.find("\n\n") {
            let event: String = buffer.drain(..end + 2).collect();
            let data: String = event
                .lines()
                .filter_map(|l| l.strip_prefix("data:"))
                .map(str::trim_start)
                .collect::<Vec<_>>()
                .join("\n");
            if data.is_empty() {
                continue;
            }
            match serde_json::from_str::<Execution>(&data) {
                Ok(e) => print_execution(&e),
                Err(e) => eprintln!("warning: an event the CLI could not read: {e}"),
            }
        }
    }
    Err(err(
        "unavailable",
        "the server closed the log stream (restarted?); run the command again",
    ))
}

/// One execution: a line for people (time, method, path, status, HTTP status, duration,
/// secrets read), then its output; or, with `-o json`, its record as one JSON line.
fn print_execution(e: &Execution) {
    if json_mode() {
        emit(e);
        return;
    }
    let mut credentials = String::new();
    for u in e.credentials.iter().flat_map(|c| &c.used) {
        credentials.push_str(if credentials.is_empty() {
            " credentials="
        } else {
            ","
        });
        credentials.push_str(&format!("{}->{}x{}", u.secret, u.host, u.count));
    }
    println!(
        "{} {} {} {} v{} {} {} {:.1}ms{}{credentials}",
        e.started_at,
        e.id,
        if e.method.is_empty() { "-" } else { &e.method },
        if e.path.is_empty() { "-" } else { &e.path },
        e.version,
        e.status.as_str(),
        e.http_status.map_or("-".into(), |s| s.to_string()),
        e.duration_ms,
        if e.secrets.is_empty() {
            String::new()
        } else {
            format!(" secrets={}", e.secrets.join(","))
        }
    );
    for r in e.credentials.iter().flat_map(|c| &c.refused) {
        use crate::runtime::credentials::RefusalKind;
        match r.kind {
            RefusalKind::Placeholder => println!(
                "  refused | a request to {} with credential {}'s placeholder {}",
                r.host, r.secret, r.reason
            ),
            RefusalKind::Response => {
                println!("  refused | a response from {}: {}", r.host, r.reason)
            }
            RefusalKind::Unresolved => {
                println!("  refused | a request to {}: {}", r.host, r.reason)
            }
        }
    }
    if let Some(user) = &e.sealed_for {
        println!(
            "  sealed | output sealed for {user} (they read it with `edgeward sealed {}`)",
            e.id
        );
    }
    for (stream, text, cut) in [
        ("stdout", &e.stdout, e.stdout_truncated),
        ("stderr", &e.stderr, e.stderr_truncated),
    ] {
        for line in text.as_deref().unwrap_or_default().lines() {
            println!("  {stream} | {line}");
        }
        if cut == Some(true) {
            println!("  {stream} | [output cut at the per-execution cap]");
        }
    }
}

async fn members(cmd: MembersCommand) -> Result<(), ClientError> {
    match cmd {
        MembersCommand::Add {
            project,
            user,
            role,
            conn,
        } => {
            let client = Client::from_args(&conn)?;
            let body = client
                .send(
                    client
                        .request(
                            Method::PUT,
                            &format!("/v1/projects/{project}/members/{user}"),
                        )
                        .json(&serde_json::json!({ "role": role })),
                )
                .await?;
            if json_mode() {
                emit(&body);
            } else {
                println!("{user} is now {role} in {project}");
            }
        }
        MembersCommand::Remove {
            project,
            user,
            conn,
        } => {
            let client = Client::from_args(&conn)?;
            client
                .send(client.request(
                    Method::DELETE,
                    &format!("/v1/projects/{project}/members/{user}"),
                ))
                .await?;
            if json_mode() {
                emit(&serde_json::json!({ "removed": user, "project": project }));
            } else {
                println!("removed {user} from {project}");
            }
        }
        MembersCommand::List { project, conn } => {
            let client = Client::from_args(&conn)?;
            let body: MemberList = client
                .send_as(client.request(Method::GET, &format!("/v1/projects/{project}/members")))
                .await?;
            if json_mode() {
                emit(&body);
                return Ok(());
            }
            let rows = body
                .members
                .into_iter()
                .map(|m| {
                    vec![
                        m.user,
                        format!("{:?}", m.role).to_lowercase(),
                        m.granted_at,
                        m.granted_by,
                    ]
                })
                .collect();
            println!("{}", table(&["USER", "ROLE", "SINCE", "GRANTED BY"], rows));
        }
    }
    Ok(())
}

async fn users(cmd: UsersCommand) -> Result<(), ClientError> {
    match cmd {
        UsersCommand::Create {
            name,
            platform_admin,
            conn,
        } => {
            let client = Client::from_args(&conn)?;
            let body =
                client
                    .send(client.request(Method::POST, "/v1/users").json(
                        &serde_json::json!({ "name": name, "platform_admin": platform_admin }),
                    ))
                    .await?;
            if json_mode() {
                emit(&body);
            } else {
                println!("created user {name}");
            }
        }
        UsersCommand::Enroll {
            name,
            expires_in,
            conn,
        } => {
            let client = Client::from_args(&conn)?;
            let expires_in = expires_in.as_deref().map(parse_duration_secs).transpose()?;
            let body = client
                .send(
                    client
                        .request(Method::POST, &format!("/v1/users/{name}/enrollments"))
                        .json(&serde_json::json!({ "expires_in": expires_in })),
                )
                .await?;
            if json_mode() {
                emit(&body);
                return Ok(());
            }
            eprintln!(
                "enrollment code {} for {name}, valid until {}; single use, shown once: hand \
                 it to {name}, who runs `edgeward enroll CODE`",
                body["id"].as_str().unwrap_or_default(),
                body["expires_at"].as_str().unwrap_or_default()
            );
            println!("{}", body["code"].as_str().unwrap_or_default());
        }
        UsersCommand::List { conn } => {
            let client = Client::from_args(&conn)?;
            let body: UserList = client
                .send_as(client.request(Method::GET, "/v1/users"))
                .await?;
            if json_mode() {
                emit(&body);
                return Ok(());
            }
            let rows = body
                .users
                .into_iter()
                .map(|u| {
                    vec![
                        u.name,
                        if u.platform_admin {
                            "platform admin"
                        } else {
                            ""
                        }
                        .into(),
                        u.created_at,
                        u.created_by,
                    ]
                })
                .collect();
            println!("{}", table(&["NAME", "ROLE", "CREATED", "BY"], rows));
        }
    }
    Ok(())
}

/// `arg`, or when it is `-`, what stdin holds (trimmed): credentials stay out of `ps` and
/// shell history.
fn arg_or_stdin(arg: String) -> Result<String, ClientError> {
    if arg != "-" {
        return Ok(arg);
    }
    let mut s = String::new();
    std::io::stdin()
        .read_to_string(&mut s)
        .map_err(|e| err("io", format!("stdin: {e}")))?;
    Ok(s.trim().to_string())
}

pub(super) async fn whoami_name(
    client: &Client,
    user: Option<String>,
) -> Result<String, ClientError> {
    match user {
        Some(u) => Ok(u),
        None => {
            let me = client
                .send(client.request(Method::GET, "/v1/whoami"))
                .await?;
            Ok(me["user"].as_str().unwrap_or_default().to_string())
        }
    }
}

async fn tokens(cmd: TokensCommand) -> Result<(), ClientError> {
    match cmd {
        TokensCommand::Create {
            user,
            name,
            expires_in,
            conn,
        } => {
            let client = Client::from_args(&conn)?;
            let expires_in = expires_in.as_deref().map(parse_duration_secs).transpose()?;
            let user = whoami_name(&client, user).await?;
            let body = client
                .send(
                    client
                        .request(Method::POST, &format!("/v1/users/{user}/tokens"))
                        .json(&serde_json::json!({ "name": name, "expires_in": expires_in })),
                )
                .await?;
            if json_mode() {
                emit(&body);
                return Ok(());
            }
            eprintln!(
                "created token {} for {user}; it is shown once, store it now",
                body["id"].as_str().unwrap_or_default()
            );
            println!("{}", body["token"].as_str().unwrap_or_default());
        }
        TokensCommand::List { user, conn } => {
            let client = Client::from_args(&conn)?;
            let user = whoami_name(&client, user).await?;
            let body: TokenList = client
                .send_as(client.request(Method::GET, &format!("/v1/users/{user}/tokens")))
                .await?;
            if json_mode() {
                emit(&body);
                return Ok(());
            }
            let rows = body
                .tokens
                .into_iter()
                .map(|t| {
                    let state = if t.revoked_at.is_some() {
                        "revoked"
                    } else {
                        "active"
                    };
                    vec![
                        t.id,
                        t.name,
                        t.expires_at.unwrap_or_else(|| "never".into()),
                        t.issued_by,
                        t.user_key.unwrap_or_else(|| "-".into()),
                        state.into(),
                    ]
                })
                .collect();
            println!(
                "{}",
                table(
                    &["ID", "NAME", "EXPIRES", "ISSUED BY", "USER KEY", "STATE"],
                    rows
                )
            );
        }
        TokensCommand::Revoke { id, user, conn } => {
            let client = Client::from_args(&conn)?;
            let user = whoami_name(&client, user).await?;
            client
                .send(client.request(Method::DELETE, &format!("/v1/users/{user}/tokens/{id}")))
                .await?;
            if json_mode() {
                emit(&serde_json::json!({ "revoked": id }));
            } else {
                println!("revoked {id}");
            }
        }
    }
    Ok(())
}

async fn deploy(
    client: &Client,
    target: &str,
    file: &Path,
    manifest: Option<&Path>,
    secrets: Option<&Path>,
    (bind, env): (&[String], &[String]),
) -> Result<(), ClientError> {
    let (project, package) = split_target(target)?;
    // `--secret ENV=NAME` and `--env KEY=VALUE`, as JSON objects the server merges over the
    // manifest.
    let pairs =
        |flag: &str, list: &[String]| -> Result<serde_json::Map<String, Value>, ClientError> {
            let mut map = serde_json::Map::new();
            for item in list {
                let (k, v) = item
                    .split_once('=')
                    .filter(|(k, _)| !k.is_empty())
                    .ok_or_else(|| err("bad_entry", format!("{flag} {item:?}: write KEY=VALUE")))?;
                map.insert(k.to_string(), Value::String(v.to_string()));
            }
            Ok(map)
        };
    let bindings = pairs("--secret", bind)?;
    let literals = pairs("--env", env)?;
    let io = |path: &Path, e: std::io::Error| err("io", format!("{}: {e}", path.display()));
    let size = tokio::fs::metadata(file)
        .await
        .map_err(|e| io(file, e))?
        .len();
    let component = tokio::fs::File::open(file).await.map_err(|e| io(file, e))?;
    let manifest_text = match manifest {
        Some(path) => Some(tokio::fs::read(path).await.map_err(|e| io(path, e))?),
        None => None,
    };
    let secrets_text = match secrets {
        Some(path) => Some(tokio::fs::read(path).await.map_err(|e| io(path, e))?),
        None => None,
    };

    // The bar is for people; a script asking for JSON gets none.
    let bar = if json_mode() {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(size)
    };
    bar.set_style(
        ProgressStyle::with_template("{msg} [{bar:30}] {bytes}/{total_bytes} ({bytes_per_sec})")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_message(format!("uploading {}", file.display()));
    let progress = bar.clone();
    let stream = tokio_util::io::ReaderStream::new(component).map(move |chunk| {
        if let Ok(bytes) = &chunk {
            progress.inc(bytes.len() as u64);
            if progress.position() >= size {
                progress.set_message("validating and compiling");
            }
        }
        chunk
    });
    let part =
        reqwest::multipart::Part::stream_with_length(reqwest::Body::wrap_stream(stream), size)
            .file_name("component.wasm")
            .mime_str("application/wasm")
            .map_err(|e| err("internal", e.to_string()))?;
    let mut form = reqwest::multipart::Form::new().part("component", part);
    if let Some(text) = manifest_text {
        form = form.part("manifest", reqwest::multipart::Part::bytes(text));
    }
    if let Some(text) = secrets_text {
        form = form.part("secrets", reqwest::multipart::Part::bytes(text));
    }
    if !bindings.is_empty() {
        form = form.part(
            "bindings",
            reqwest::multipart::Part::text(Value::Object(bindings).to_string()),
        );
    }
    if !literals.is_empty() {
        form = form.part(
            "env",
            reqwest::multipart::Part::text(Value::Object(literals).to_string()),
        );
    }
    let result = client
        .send(
            client
                .request(
                    reqwest::Method::POST,
                    &format!("/v1/projects/{project}/packages/{package}/versions"),
                )
                .multipart(form),
        )
        .await;
    bar.finish_and_clear();
    let body = result?;
    if json_mode() {
        emit(&body);
        return Ok(());
    }
    println!(
        "deployed {project}/{package} version {} (sha256 {}, {} bytes)",
        body["version"].as_i64().unwrap_or(0),
        body["sha256"].as_str().unwrap_or_default(),
        body["size"].as_u64().unwrap_or(0)
    );
    let names = |key: &str| -> Vec<String> {
        body[key]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|n| n.as_str().map(str::to_string))
            .collect()
    };
    let (set, removed) = (names("secrets_set"), names("secrets_removed"));
    if !set.is_empty() {
        println!("secrets.json set package secrets: {}", set.join(", "));
    }
    if !removed.is_empty() {
        println!(
            "removed package secrets the previous --secrets set and this one leaves out: {}",
            removed.join(", ")
        );
    }
    for notice in body["notices"].as_array().into_iter().flatten() {
        eprintln!("note: {}", notice.as_str().unwrap_or_default());
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn invoke(
    target: &str,
    path: Option<String>,
    method: &str,
    data: Option<String>,
    headers: &[String],
    include: bool,
    url: Option<String>,
    conn: &ConnArgs,
) -> Result<(), ClientError> {
    let (project, package) = split_target(target)?;
    let base = url
        .or_else(|| {
            server_file(&conn.data_dir)?
                .get("listen")?
                .as_str()
                .map(str::to_string)
        })
        .unwrap_or_else(|| "http://127.0.0.1:8080".into());
    let path = path.unwrap_or_else(|| "/".into());
    let path = if path.starts_with('/') {
        path
    } else {
        format!("/{path}")
    };
    let url = format!("{}/{project}/{package}{path}", base.trim_end_matches('/'));
    let method = reqwest::Method::from_bytes(method.to_ascii_uppercase().as_bytes())
        .map_err(|_| err("bad_entry", format!("invalid method {method:?}")))?;
    let mut request = http_builder()
        .build()
        .map_err(|e| err("internal", e.to_string()))?
        .request(method, &url);
    // A token given for this call (`--token` or EDGEWARD_TOKEN) triggers the execution as its
    // user (their user-scope secrets); the admin token file is never sent to a function.
    if let Some(token) = &conn.token {
        request = request.bearer_auth(token);
    }
    for header in headers {
        let (name, value) = header.split_once(':').ok_or_else(|| {
            err(
                "bad_entry",
                format!("expected `Name: value`, got {header:?}"),
            )
        })?;
        request = request.header(name.trim(), value.trim());
    }
    if let Some(data) = data {
        let body = match data.strip_prefix('@') {
            Some("-") => {
                let mut buf = Vec::new();
                std::io::stdin()
                    .read_to_end(&mut buf)
                    .map_err(|e| err("io", format!("stdin: {e}")))?;
                buf
            }
            Some(file) => std::fs::read(file).map_err(|e| err("io", format!("{file}: {e}")))?,
            None => data.into_bytes(),
        };
        request = request.body(body);
    }
    let response = request.send().await.map_err(|e| {
        err(
            "unavailable",
            format!("cannot reach {url}: {e} (is `edgeward serve` running? set --url)"),
        )
    })?;
    let status = response.status();
    if json_mode() {
        let headers: serde_json::Map<String, Value> = response
            .headers()
            .iter()
            .map(|(k, v)| (k.to_string(), Value::from(v.to_str().unwrap_or("<binary>"))))
            .collect();
        let body = response
            .bytes()
            .await
            .map_err(|e| err("unavailable", e.to_string()))?;
        emit(&serde_json::json!({
            "status": status.as_u16(),
            "headers": headers,
            "body": String::from_utf8_lossy(&body),
        }));
        if !status.is_success() {
            let parsed: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            let code = parsed["error"]["code"].as_str().unwrap_or("http_error");
            return Err(err(code, format!("{url} answered {status}")));
        }
        return Ok(());
    }
    if include {
        println!("{status}");
        for (name, value) in response.headers() {
            println!("{name}: {}", value.to_str().unwrap_or("<binary>"));
        }
        println!();
    }
    let body = response
        .bytes()
        .await
        .map_err(|e| err("unavailable", e.to_string()))?;
    use std::io::Write;
    let _ = std::io::stdout().write_all(&body);
    if !status.is_success() {
        let parsed: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let code = parsed["error"]["code"].as_str().unwrap_or("http_error");
        return Err(err(code, format!("{url} answered {status}")));
    }
    Ok(())
}
