//! `edgeward grants …` and `edgeward sealed`: a user's consent to the code that reads their
//! user secrets, and the executions sealed for them.

use super::client::{Client, ClientError, emit, err, json_mode, table};
use super::identity::whoami_name;
use super::{ConnArgs, GrantsCommand};
use crate::api::model::CreateGrant;
use crate::code::ErrorCode;
use reqwest::Method;
use serde_json::Value;

/// `project/package`.
fn split_target(target: &str) -> Result<(&str, &str), ClientError> {
    target
        .split_once('/')
        .filter(|(p, k)| !p.is_empty() && !k.is_empty() && !k.contains('/'))
        .ok_or_else(|| err(ErrorCode::BadEntry, "give the package as PROJECT/PACKAGE"))
}

/// What a version asks for, as a person reads it before granting.
fn describe(g: &Value) -> String {
    let list = |v: &Value| {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "none".into())
    };
    format!(
        "{}/{} version {}\n  code sha256:     {}\n  manifest sha256: {}\n  reads your:      {}\n  \
         writes them:     {}\n  may send to:     {}",
        g["project"].as_str().unwrap_or_default(),
        g["package"].as_str().unwrap_or_default(),
        g["version"].as_i64().unwrap_or_default(),
        g["sha256"].as_str().unwrap_or_default(),
        g["manifest_sha256"].as_str().unwrap_or_default(),
        list(&g["user_secrets"]),
        if g["writes_user_secrets"].as_bool() == Some(true) {
            "yes"
        } else {
            "no"
        },
        list(&g["outbound_hosts"]),
    )
}

/// Asks before a grant: only `y` on a terminal goes on; without a terminal, only `--yes`.
fn consent(yes: bool) -> Result<(), ClientError> {
    use std::io::{BufRead, IsTerminal, Write};
    if yes {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() {
        return Err(err(
            ErrorCode::Cancelled,
            "nothing was granted: without a terminal to ask on, say --yes",
        ));
    }
    eprint!("grant it? [y/N] ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .map_err(|e| err(ErrorCode::Io, format!("stdin: {e}")))?;
    if matches!(answer.trim(), "y" | "Y" | "yes") {
        Ok(())
    } else {
        Err(err(ErrorCode::Cancelled, "nothing was granted"))
    }
}

/// Runs `edgeward grants …`.
pub async fn run(cmd: GrantsCommand) -> Result<(), ClientError> {
    match cmd {
        GrantsCommand::Add {
            target,
            version,
            yes,
            conn,
        } => add(&target, version, yes, &conn).await,
        GrantsCommand::List { conn } => list(&conn).await,
        GrantsCommand::Rm { id, conn } => rm(&id, &conn).await,
    }
}

/// `grants add`: shows what the version would read, asks, then grants that very version.
async fn add(
    target: &str,
    version: Option<i64>,
    yes: bool,
    conn: &ConnArgs,
) -> Result<(), ClientError> {
    let (project, package) = split_target(target)?;
    let client = Client::from_args(conn)?;
    let user = whoami_name(&client, None).await?;
    let path = format!("/v1/users/{user}/grants");
    let ask = |preview: bool| {
        client.request(Method::POST, &path).json(&CreateGrant {
            project: project.to_string(),
            package: package.to_string(),
            version,
            preview,
        })
    };
    let preview = client.send(ask(true)).await?;
    if !json_mode() || !yes {
        eprintln!("{}", describe(&preview));
    }
    consent(yes)?;
    // The grant names the version the preview showed, so what was read is what is
    // granted even if the package moves on meanwhile.
    let granted = client
        .send(client.request(Method::POST, &path).json(&CreateGrant {
            project: project.to_string(),
            package: package.to_string(),
            version: preview["version"].as_i64(),
            preview: false,
        }))
        .await?;
    if json_mode() {
        emit(&granted);
    } else {
        println!(
            "granted {} ({}/{} version {})",
            granted["id"].as_str().unwrap_or_default(),
            project,
            package,
            granted["version"].as_i64().unwrap_or_default()
        );
    }
    Ok(())
}

/// `grants list`: each grant, whether it verifies under this token's key and whether its
/// version serves.
async fn list(conn: &ConnArgs) -> Result<(), ClientError> {
    let client = Client::from_args(conn)?;
    let user = whoami_name(&client, None).await?;
    let body = client
        .send(client.request(Method::GET, &format!("/v1/users/{user}/grants")))
        .await?;
    if json_mode() {
        emit(&body);
        return Ok(());
    }
    let rows = body["grants"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|g| {
            let names = g["user_secrets"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(", ");
            vec![
                g["id"].as_str().unwrap_or_default().to_string(),
                format!(
                    "{}/{}",
                    g["project"].as_str().unwrap_or_default(),
                    g["package"].as_str().unwrap_or_default()
                ),
                g["version"].as_i64().unwrap_or_default().to_string(),
                g["sha256"]
                    .as_str()
                    .unwrap_or_default()
                    .chars()
                    .take(12)
                    .collect(),
                names,
                match (g["valid"].as_bool(), g["serving"].as_bool()) {
                    (Some(false), _) => "invalid (another key)",
                    (_, Some(true)) => "serving",
                    _ => "not serving",
                }
                .into(),
                g["granted_at"].as_str().unwrap_or_default().to_string(),
            ]
        })
        .collect();
    println!(
        "{}",
        table(
            &[
                "ID", "PACKAGE", "VERSION", "SHA256", "READS", "STATE", "GRANTED"
            ],
            rows
        )
    );
    Ok(())
}

/// `grants rm`: revokes a grant.
async fn rm(id: &str, conn: &ConnArgs) -> Result<(), ClientError> {
    let client = Client::from_args(conn)?;
    let user = whoami_name(&client, None).await?;
    client
        .send(client.request(Method::DELETE, &format!("/v1/users/{user}/grants/{id}")))
        .await?;
    if json_mode() {
        emit(&serde_json::json!({ "revoked": id }));
    } else {
        println!("revoked {id}");
    }
    Ok(())
}

/// Runs `edgeward sealed [ID]`.
pub async fn sealed(id: Option<String>, conn: ConnArgs) -> Result<(), ClientError> {
    let client = Client::from_args(&conn)?;
    let user = whoami_name(&client, None).await?;
    let path = match &id {
        Some(id) => format!("/v1/users/{user}/executions/{id}"),
        None => format!("/v1/users/{user}/executions"),
    };
    let body = client.send(client.request(Method::GET, &path)).await?;
    if json_mode() {
        emit(&body);
        return Ok(());
    }
    if id.is_some() {
        println!(
            "{} {}/{} v{} {} {}",
            body["id"].as_str().unwrap_or_default(),
            body["project"].as_str().unwrap_or_default(),
            body["package"].as_str().unwrap_or_default(),
            body["version"].as_i64().unwrap_or_default(),
            body["status"].as_str().unwrap_or_default(),
            body["started_at"].as_str().unwrap_or_default(),
        );
        for stream in ["stdout", "stderr"] {
            if let Some(text) = body[stream].as_str().filter(|t| !t.is_empty()) {
                println!("--- {stream}\n{text}");
            }
        }
        return Ok(());
    }
    let rows = body["executions"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            vec![
                e["id"].as_str().unwrap_or_default().to_string(),
                format!(
                    "{}/{}",
                    e["project"].as_str().unwrap_or_default(),
                    e["package"].as_str().unwrap_or_default()
                ),
                e["version"].as_i64().unwrap_or_default().to_string(),
                e["status"].as_str().unwrap_or_default().to_string(),
                e["started_at"].as_str().unwrap_or_default().to_string(),
            ]
        })
        .collect();
    println!(
        "{}",
        table(&["ID", "PACKAGE", "VERSION", "STATUS", "STARTED"], rows)
    );
    Ok(())
}
