//! `logs` (a package's executions, `--follow` streams them) and `audit`.

use super::client::{Client, ClientError, emit, err, json_mode, table};
use super::{ConnArgs, split_target};
use crate::api::model::{AuditList, Execution};
use crate::code::ErrorCode;
use futures::StreamExt;
use reqwest::Method;
use serde_json::Value;

/// `audit`.
pub(super) async fn audit(
    project: Option<String>,
    actor: Option<String>,
    since: Option<String>,
    until: Option<String>,
    limit: u32,
    conn: ConnArgs,
) -> Result<(), ClientError> {
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

/// `logs`: the `limit` most recent executions, then with `follow` every new one. `since`
/// (Unix ms) makes the follow start there rather than where the listing ends or now (`dev`
/// starts following after a deploy and must not miss a request made meanwhile).
pub(super) async fn logs(
    client: &Client,
    target: &str,
    follow: bool,
    status: Option<String>,
    limit: u32,
    since: Option<i64>,
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
    // `after` is exclusive.
    let mut newest = since.map(|ms| ms - 1);
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
        return Err(ClientError::remote(
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
        ErrorCode::Unavailable,
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
