//! `secrets …`: a scope's secrets, their versions, and wrapped single-use tokens.

use super::client::{Client, ClientError, arg_or_stdin, confirm, emit, err, json_mode, table};
use super::identity::{read_hidden, whoami_name};
use super::{ConnArgs, ScopeArgs, SecretsCommand, ValueArgs, parse_duration_secs};
use crate::api::model::{SecretList, SecretVersions};
use crate::code::ErrorCode;
use reqwest::Method;
use serde_json::Value;
use std::io::Read;

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
            ErrorCode::BadEntry,
            "say which scope: --platform, --project P [--package K], or --user",
        )),
    }
}

/// On a terminal, asks `question` and goes on only on `y`; elsewhere (a script, a pipe) or
fn read_value(v: &ValueArgs) -> Result<Value, ClientError> {
    let text = match (&v.value, &v.file, v.stdin) {
        (Some(value), _, _) => value.clone(),
        (None, Some(file), _) => std::fs::read_to_string(file)
            .map_err(|e| err(ErrorCode::Io, format!("{}: {e}", file.display())))?,
        (None, None, true) => {
            let mut s = String::new();
            std::io::stdin()
                .read_to_string(&mut s)
                .map_err(|e| err(ErrorCode::Io, format!("stdin: {e}")))?;
            s
        }
        (None, None, false) if std::io::IsTerminal::is_terminal(&std::io::stdin()) => {
            read_hidden("value (not shown): ")
                .map_err(|e| err(ErrorCode::Io, format!("cannot read the value: {e}")))?
        }
        (None, None, false) => {
            return Err(err(
                ErrorCode::BadEntry,
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
        let parsed: Value = serde_json::from_str(&text).map_err(|e| {
            err(
                ErrorCode::BadEntry,
                format!("--json: the value is not JSON: {e}"),
            )
        })?;
        if !parsed.is_object() {
            return Err(err(
                ErrorCode::BadEntry,
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
                ErrorCode::BadEntry,
                format!("--label {label:?}: write it KEY=VALUE"),
            )
        })?;
        labels.insert(k.to_string(), Value::String(v.to_string()));
    }
    let description = value.description.clone();
    // `update` with only --description or --label changes the metadata, not the value.
    let metadata_only = method == Method::PATCH
        && value.value.is_none()
        && value.file.is_none()
        && !value.stdin
        && (description.is_some() || !labels.is_empty());
    let (path, mut body) = if metadata_only {
        (one(&base, name), serde_json::json!({}))
    } else if method == Method::POST {
        let value = read_value(value)?;
        (base, serde_json::json!({ "name": name, "value": value }))
    } else {
        let value = read_value(value)?;
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
/// `secrets …`.
pub(super) async fn run(cmd: SecretsCommand) -> Result<(), ClientError> {
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
        } => get(name, field, version, scope, conn).await,
        SecretsCommand::List {
            prefix,
            scope,
            conn,
        } => list(prefix, scope, conn).await,
        SecretsCommand::Versions { name, scope, conn } => versions(name, scope, conn).await,
        SecretsCommand::Rollback {
            name,
            to,
            scope,
            conn,
        } => rollback(name, to, scope, conn).await,
        SecretsCommand::Rm {
            name,
            yes,
            force,
            scope,
            conn,
        } => rm(name, yes, force, scope, conn).await,
        SecretsCommand::Import { file, scope, conn } => import(file, scope, conn).await,
        SecretsCommand::Wrap {
            name,
            ttl,
            scope,
            conn,
        } => wrap(name, ttl, scope, conn).await,
        SecretsCommand::Unwrap {
            wrapping_token: crate::cli::Redacted(token),
            conn,
        } => unwrap(token, conn).await,
    }
}

/// `secrets get`.
async fn get(
    name: String,
    field: Option<String>,
    version: Option<u64>,
    scope: ScopeArgs,
    conn: ConnArgs,
) -> Result<(), ClientError> {
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
                        ErrorCode::NotFound,
                        format!(
                            "{name} has no field {field:?} (its fields: {})",
                            known.join(", ")
                        ),
                    ));
                }
            },
            _ => {
                return Err(err(
                    ErrorCode::BadEntry,
                    format!("{name} is a plain value, not fields: drop --field"),
                ));
            }
        },
    }
    Ok(())
}

/// `secrets list`.
async fn list(prefix: Option<String>, scope: ScopeArgs, conn: ConnArgs) -> Result<(), ClientError> {
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
    // Folders first, as a file explorer shows them; `--prefix FOLDER/` lists one.
    let mut rows: Vec<Vec<String>> = body
        .folders
        .into_iter()
        .map(|f| {
            let mut row = vec![f, "(folder)".to_string()];
            row.resize(6, String::new());
            row
        })
        .collect();
    rows.extend(body.secrets.into_iter().map(|s| {
        let labels: Vec<String> = s.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        vec![
            s.name,
            s.version.to_string(),
            s.updated_at,
            s.updated_by,
            s.description,
            labels.join(" "),
        ]
    }));
    println!(
        "{}",
        table(
            &["NAME", "VERSION", "UPDATED", "BY", "DESCRIPTION", "LABELS"],
            rows
        )
    );
    Ok(())
}

/// `secrets versions`.
async fn versions(name: String, scope: ScopeArgs, conn: ConnArgs) -> Result<(), ClientError> {
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

/// `secrets rollback`.
async fn rollback(
    name: String,
    to: u64,
    scope: ScopeArgs,
    conn: ConnArgs,
) -> Result<(), ClientError> {
    let client = Client::from_args(&conn)?;
    let base = scope_path(&client, &scope).await?;
    let body = client
        .send(
            client
                .request(Method::POST, &format!("{}/rollback", one(&base, &name)))
                .json(&crate::api::model::SecretRollback { version: to }),
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

/// `secrets rm`.
async fn rm(
    name: String,
    yes: bool,
    force: bool,
    scope: ScopeArgs,
    conn: ConnArgs,
) -> Result<(), ClientError> {
    confirm(yes, &format!("delete the secret {name}?"))?;
    let client = Client::from_args(&conn)?;
    let base = scope_path(&client, &scope).await?;
    let mut request = client.request(Method::DELETE, &one(&base, &name));
    if force {
        request = request.query(&[("force", "true")]);
    }
    client.send(request).await?;
    if json_mode() {
        emit(&serde_json::json!({ "deleted": name }));
    } else {
        println!("deleted {name}");
    }
    Ok(())
}

/// `secrets import`.
async fn import(
    file: std::path::PathBuf,
    scope: ScopeArgs,
    conn: ConnArgs,
) -> Result<(), ClientError> {
    let client = Client::from_args(&conn)?;
    let base = scope_path(&client, &scope).await?;
    let text = if file.as_os_str() == "-" {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .map_err(|e| err(ErrorCode::Io, format!("stdin: {e}")))?;
        s
    } else {
        std::fs::read_to_string(&file)
            .map_err(|e| err(ErrorCode::Io, format!("{}: {e}", file.display())))?
    };
    let json: Value = serde_json::from_str(&text)
        .map_err(|e| err(ErrorCode::BadEntry, format!("the file is not JSON: {e}")))?;
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

/// `secrets wrap`.
async fn wrap(
    name: String,
    ttl: Option<String>,
    scope: ScopeArgs,
    conn: ConnArgs,
) -> Result<(), ClientError> {
    let client = Client::from_args(&conn)?;
    let base = scope_path(&client, &scope).await?;
    let ttl = ttl.as_deref().map(parse_duration_secs).transpose()?;
    let body = client
        .send(
            client
                .request(Method::POST, &format!("{}/wrap", one(&base, &name)))
                .json(&crate::api::model::Wrap { ttl }),
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

/// `secrets unwrap`.
async fn unwrap(token: String, conn: ConnArgs) -> Result<(), ClientError> {
    let client = Client::from_args(&conn)?;
    let token = arg_or_stdin(token)?;
    let body = client
        .send(
            client
                .request(Method::POST, "/v1/unwrap")
                .json(&crate::api::model::Unwrap { token }),
        )
        .await?;
    if json_mode() {
        emit(&body);
        return Ok(());
    }
    print_value(&body["value"]);
    Ok(())
}
