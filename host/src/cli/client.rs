//! The API client behind the CLI's commands.

use super::{
    Command, ConnArgs, MembersCommand, PackagesCommand, ProjectsCommand, ScopeArgs, SecretsCommand,
    TokensCommand, UsersCommand, ValueArgs, parse_duration_secs, split_target,
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

fn err(code: &str, message: impl Into<String>) -> ClientError {
    ClientError {
        code: code.into(),
        message: message.into(),
    }
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
    pub fn from_args(conn: &ConnArgs) -> Result<Client, ClientError> {
        let api = conn
            .api
            .clone()
            .or_else(|| {
                server_file(&conn.data_dir)?
                    .get("api")?
                    .as_str()
                    .map(str::to_string)
            })
            .unwrap_or_else(|| "http://127.0.0.1:8081".into());
        let token = conn.token.clone().or_else(|| {
            std::fs::read_to_string(conn.data_dir.join(ADMIN_TOKEN_FILE))
                .ok()
                .map(|t| t.trim().to_string())
        });
        let http = reqwest::Client::builder()
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

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let builder = self.http.request(method, format!("{}{path}", self.api));
        match &self.token {
            Some(token) => builder.bearer_auth(token),
            None => builder,
        }
    }

    async fn send(&self, builder: reqwest::RequestBuilder) -> Result<Value, ClientError> {
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
            conn,
        } => {
            deploy(
                &Client::from_args(&conn)?,
                &target,
                &file,
                manifest.as_deref(),
                secrets.as_deref(),
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
            client
                .send(
                    client
                        .request(reqwest::Method::POST, "/v1/projects")
                        .json(&serde_json::json!({ "name": name })),
                )
                .await?;
            println!("created project {name}");
            Ok(())
        }
        Command::Projects(ProjectsCommand::List { conn }) => {
            let client = Client::from_args(&conn)?;
            let body = client
                .send(client.request(reqwest::Method::GET, "/v1/projects"))
                .await?;
            for p in body["projects"].as_array().into_iter().flatten() {
                println!("{}", p["name"].as_str().unwrap_or_default());
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
            let mut rows = Vec::new();
            for project in projects {
                let body = client
                    .send(client.request(
                        reqwest::Method::GET,
                        &format!("/v1/projects/{project}/packages"),
                    ))
                    .await?;
                for p in body["packages"].as_array().into_iter().flatten() {
                    rows.push(format!(
                        "{:<40} {:>8} {:>9}  {}",
                        format!("{project}/{}", p["name"].as_str().unwrap_or_default()),
                        p["current_version"]
                            .as_i64()
                            .map_or("-".into(), |v| v.to_string()),
                        p["versions"].as_i64().unwrap_or(0),
                        p["created_at"].as_str().unwrap_or_default()
                    ));
                }
            }
            println!(
                "{:<40} {:>8} {:>9}  CREATED",
                "PACKAGE", "CURRENT", "VERSIONS"
            );
            for row in rows {
                println!("{row}");
            }
            Ok(())
        }
        Command::Packages(PackagesCommand::Show { target, conn }) => {
            let (project, package) = split_target(&target)?;
            let client = Client::from_args(&conn)?;
            let body = client
                .send(client.request(
                    reqwest::Method::GET,
                    &format!("/v1/projects/{project}/packages/{package}"),
                ))
                .await?;
            println!("{:>8}  {:<64}  {:>9}  CREATED", "VERSION", "SHA256", "SIZE");
            for v in body["versions"].as_array().into_iter().flatten() {
                println!(
                    "{:>7}{}  {:<64}  {:>9}  {}",
                    v["version"].as_i64().unwrap_or(0),
                    if v["current"].as_bool() == Some(true) {
                        "*"
                    } else {
                        " "
                    },
                    v["sha256"].as_str().unwrap_or_default(),
                    v["size"].as_i64().unwrap_or(0),
                    v["created_at"].as_str().unwrap_or_default()
                );
            }
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
            println!("deleted {project}/{package}");
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
            println!(
                "{project}/{package} now serves version {}",
                body["version"].as_i64().unwrap_or(0)
            );
            Ok(())
        }
        Command::Projects(ProjectsCommand::Members(cmd)) => members(cmd).await,
        Command::Users(cmd) => users(cmd).await,
        Command::Tokens(cmd) => tokens(cmd).await,
        Command::Whoami { conn } => {
            let client = Client::from_args(&conn)?;
            let me = client
                .send(client.request(Method::GET, "/v1/whoami"))
                .await?;
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
            let body = client
                .send(client.request(Method::GET, "/v1/audit").query(&query))
                .await?;
            for e in body["entries"].as_array().into_iter().flatten() {
                println!(
                    "{}  {:<10} {:<15} {:>3} {:<8} {}",
                    e["at"].as_str().unwrap_or_default(),
                    e["actor"].as_str().unwrap_or_default(),
                    e["remote"].as_str().unwrap_or("-"),
                    e["status"].as_u64().unwrap_or(0),
                    e["outcome"].as_str().unwrap_or_default(),
                    e["action"]
                        .as_str()
                        .unwrap_or_default()
                        .split_once(' ')
                        .map_or(
                            e["target"].as_str().unwrap_or_default().to_string(),
                            |(m, _)| format!("{m} {}", e["target"].as_str().unwrap_or_default())
                        ),
                );
            }
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
            rpassword::prompt_password("value (not shown): ")
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

async fn write_secret(
    method: Method,
    name: &str,
    value: &ValueArgs,
    scope: &ScopeArgs,
    conn: &ConnArgs,
) -> Result<(), ClientError> {
    let client = Client::from_args(conn)?;
    let base = scope_path(&client, scope).await?;
    let value = read_value(value)?;
    let (path, body) = if method == Method::POST {
        (base, serde_json::json!({ "name": name, "value": value }))
    } else {
        (
            format!("{base}/{name}"),
            serde_json::json!({ "value": value }),
        )
    };
    let body = client
        .send(client.request(method, &path).json(&body))
        .await?;
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
            scope,
            conn,
        } => {
            let client = Client::from_args(&conn)?;
            let base = scope_path(&client, &scope).await?;
            let body = client
                .send(client.request(Method::GET, &format!("{base}/{name}")))
                .await?;
            match field {
                None => print_value(&body["value"]),
                Some(field) => match &body["value"] {
                    Value::Object(fields) => match fields.get(&field) {
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
        SecretsCommand::List { scope, conn } => {
            let client = Client::from_args(&conn)?;
            let base = scope_path(&client, &scope).await?;
            let body = client.send(client.request(Method::GET, &base)).await?;
            println!("{:<40} {:>7}  {:<25} BY", "NAME", "VERSION", "UPDATED");
            for s in body["secrets"].as_array().into_iter().flatten() {
                println!(
                    "{:<40} {:>7}  {:<25} {}",
                    s["name"].as_str().unwrap_or_default(),
                    s["version"].as_u64().unwrap_or(0),
                    s["updated_at"].as_str().unwrap_or_default(),
                    s["updated_by"].as_str().unwrap_or_default()
                );
            }
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
                .send(client.request(Method::DELETE, &format!("{base}/{name}")))
                .await?;
            println!("deleted {name}");
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
                        .request(Method::POST, &format!("{base}/{name}/wrap"))
                        .json(&serde_json::json!({ "ttl": ttl })),
                )
                .await?;
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
    let mut after: Option<i64> = None;
    let mut seen = std::collections::HashSet::new();
    loop {
        let mut query = vec![
            ("package", package.to_string()),
            ("limit", limit.to_string()),
        ];
        if let Some(s) = &status {
            query.push(("status", s.clone()));
        }
        if let Some(a) = after {
            // Records of the same millisecond may arrive later: look back a little, skip seen.
            query.push(("after", (a - 1000).to_string()));
        }
        let body = client
            .send(
                client
                    .request(Method::GET, &format!("/v1/projects/{project}/executions"))
                    .query(&query),
            )
            .await?;
        let mut rows: Vec<Value> = body["executions"].as_array().cloned().unwrap_or_default();
        rows.reverse();
        for row in rows {
            let id = row["id"].as_str().unwrap_or_default().to_string();
            if !seen.insert(id.clone()) {
                continue;
            }
            after = after.max(row["started_at_ms"].as_i64());
            let detail = client
                .send(client.request(
                    Method::GET,
                    &format!("/v1/projects/{project}/executions/{id}"),
                ))
                .await?;
            print_execution(&detail);
        }
        if !follow {
            return Ok(());
        }
        if after.is_none() {
            after = Some(0);
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

fn print_execution(e: &Value) {
    let secrets: Vec<&str> = e["secrets"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    println!(
        "{} {} v{} {} {} {:.1}ms{}",
        e["started_at"].as_str().unwrap_or_default(),
        e["id"].as_str().unwrap_or_default(),
        e["version"].as_i64().unwrap_or(0),
        e["status"].as_str().unwrap_or_default(),
        e["http_status"]
            .as_u64()
            .map_or("-".into(), |s| s.to_string()),
        e["duration_ms"].as_f64().unwrap_or(0.0),
        if secrets.is_empty() {
            String::new()
        } else {
            format!(" secrets={}", secrets.join(","))
        }
    );
    for (stream, cut) in [
        ("stdout", "stdout_truncated"),
        ("stderr", "stderr_truncated"),
    ] {
        let text = e[stream].as_str().unwrap_or_default();
        for line in text.lines() {
            println!("  {stream} | {line}");
        }
        if e[cut].as_bool() == Some(true) {
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
            client
                .send(
                    client
                        .request(
                            Method::PUT,
                            &format!("/v1/projects/{project}/members/{user}"),
                        )
                        .json(&serde_json::json!({ "role": role })),
                )
                .await?;
            println!("{user} is now {role} in {project}");
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
            println!("removed {user} from {project}");
        }
        MembersCommand::List { project, conn } => {
            let client = Client::from_args(&conn)?;
            let body = client
                .send(client.request(Method::GET, &format!("/v1/projects/{project}/members")))
                .await?;
            for m in body["members"].as_array().into_iter().flatten() {
                println!(
                    "{:<30} {}",
                    m["user"].as_str().unwrap_or_default(),
                    m["role"].as_str().unwrap_or_default()
                );
            }
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
            client
                .send(
                    client.request(Method::POST, "/v1/users").json(
                        &serde_json::json!({ "name": name, "platform_admin": platform_admin }),
                    ),
                )
                .await?;
            println!("created user {name}");
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
            let body = client
                .send(client.request(Method::GET, "/v1/users"))
                .await?;
            for u in body["users"].as_array().into_iter().flatten() {
                println!(
                    "{}{}",
                    u["name"].as_str().unwrap_or_default(),
                    if u["platform_admin"].as_bool() == Some(true) {
                        " (platform admin)"
                    } else {
                        ""
                    }
                );
            }
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

async fn whoami_name(client: &Client, user: Option<String>) -> Result<String, ClientError> {
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
            eprintln!(
                "created token {} for {user}; it is shown once, store it now",
                body["id"].as_str().unwrap_or_default()
            );
            println!("{}", body["token"].as_str().unwrap_or_default());
        }
        TokensCommand::List { user, conn } => {
            let client = Client::from_args(&conn)?;
            let user = whoami_name(&client, user).await?;
            let body = client
                .send(client.request(Method::GET, &format!("/v1/users/{user}/tokens")))
                .await?;
            println!(
                "{:<21} {:<20} {:<25} {:<12} {:<21} STATE",
                "ID", "NAME", "EXPIRES", "ISSUED BY", "USER KEY"
            );
            for t in body["tokens"].as_array().into_iter().flatten() {
                let state = if t["revoked_at"].is_string() {
                    "revoked"
                } else {
                    "active"
                };
                println!(
                    "{:<21} {:<20} {:<25} {:<12} {:<21} {state}",
                    t["id"].as_str().unwrap_or_default(),
                    t["name"].as_str().unwrap_or_default(),
                    t["expires_at"].as_str().unwrap_or("never"),
                    t["issued_by"].as_str().unwrap_or_default(),
                    t["user_key"].as_str().unwrap_or("-"),
                );
            }
        }
        TokensCommand::Revoke { id, user, conn } => {
            let client = Client::from_args(&conn)?;
            let user = whoami_name(&client, user).await?;
            client
                .send(client.request(Method::DELETE, &format!("/v1/users/{user}/tokens/{id}")))
                .await?;
            println!("revoked {id}");
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
) -> Result<(), ClientError> {
    let (project, package) = split_target(target)?;
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

    let bar = ProgressBar::new(size);
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
    println!(
        "deployed {project}/{package} version {} (sha256 {}, {} bytes)",
        body["version"].as_i64().unwrap_or(0),
        body["sha256"].as_str().unwrap_or_default(),
        body["size"].as_u64().unwrap_or(0)
    );
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
    let mut request = reqwest::Client::new().request(method, &url);
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
