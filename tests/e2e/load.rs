//! A bounded load test on loopback: concurrent deploys, secret writes and invocations across
//! several packages for a fixed time. Every request is accounted for and no write is lost.

use crate::harness::{Server, guest};
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const RUN_FOR: Duration = Duration::from_secs(8);

#[derive(Default)]
struct Tally {
    invocations: usize,
    deploys: usize,
    secret_writes: usize,
    secret_reads: usize,
    unexpected: Vec<String>,
}

#[tokio::test]
async fn load_with_deploys_secret_writes_and_invocations() {
    let server = Arc::new(Server::start().await);
    for i in 0..4 {
        server
            .deploy(
                &format!("acme/p{i}"),
                if i % 2 == 0 { "hello" } else { "echo" },
            )
            .await;
    }
    server.deploy("acme/sec", "secrets").await;
    let hello = Arc::new(std::fs::read(guest("hello")).unwrap());
    let echo = Arc::new(std::fs::read(guest("echo")).unwrap());
    let tally = Arc::new(Mutex::new(Tally::default()));
    // The last acknowledged value of every secret written.
    let written: Arc<Mutex<HashMap<String, String>>> = Arc::default();
    let hot_values: Arc<Mutex<Vec<String>>> = Arc::default();
    let start = Instant::now();
    let mut tasks = Vec::new();
    let client = crate::harness::http_builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();

    for w in 0..6 {
        let (server, tally, client) = (server.clone(), tally.clone(), client.clone());
        tasks.push(tokio::spawn(async move {
            let mut n = 0;
            while start.elapsed() < RUN_FOR {
                let url = format!("{}/acme/p{}/", server.listen, (w + n) % 4);
                n += 1;
                let result = client.get(&url).send().await;
                let mut t = tally.lock().unwrap();
                t.invocations += 1;
                match result {
                    Ok(r) if r.status() == 200 => {}
                    Ok(r) => t.unexpected.push(format!("GET {url}: {}", r.status())),
                    Err(e) => t.unexpected.push(format!("GET {url}: {e}")),
                }
            }
        }));
    }
    {
        let (server, tally, client) = (server.clone(), tally.clone(), client.clone());
        tasks.push(tokio::spawn(async move {
            let mut n = 0;
            while start.elapsed() < RUN_FOR {
                let bytes = if n % 2 == 0 {
                    echo.to_vec()
                } else {
                    hello.to_vec()
                };
                n += 1;
                let result = client
                    .post(format!(
                        "{}/v1/projects/acme/packages/p0/versions",
                        server.api
                    ))
                    .bearer_auth(&server.token)
                    .body(bytes)
                    .send()
                    .await;
                let mut t = tally.lock().unwrap();
                t.deploys += 1;
                match result {
                    Ok(r) if r.status() == 201 => {}
                    Ok(r) => t.unexpected.push(format!("deploy: {}", r.status())),
                    Err(e) => t.unexpected.push(format!("deploy: {e}")),
                }
            }
        }));
    }
    let hot_acked = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    for w in 0..2 {
        let hot_acked = hot_acked.clone();
        let (server, tally, client, written, hot) = (
            server.clone(),
            tally.clone(),
            client.clone(),
            written.clone(),
            hot_values.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut n = 0;
            while start.elapsed() < RUN_FOR {
                let (name, value) = if n % 3 == 0 {
                    ("HOT".to_string(), format!("hot-{w}-{n}"))
                } else {
                    (format!("W{w}_{n}"), format!("value-{w}-{n}"))
                };
                n += 1;
                if name == "HOT" {
                    hot.lock().unwrap().push(value.clone());
                }
                let result = client
                    .put(format!(
                        "{}/v1/projects/acme/packages/sec/secrets/{name}",
                        server.api
                    ))
                    .bearer_auth(&server.token)
                    .json(&json!({ "value": value }))
                    .send()
                    .await;
                let mut t = tally.lock().unwrap();
                t.secret_writes += 1;
                match result {
                    Ok(r) if r.status() == 200 => {
                        if name == "HOT" {
                            hot_acked.store(true, std::sync::atomic::Ordering::SeqCst);
                        } else {
                            written.lock().unwrap().insert(name, value);
                        }
                    }
                    Ok(r) => t.unexpected.push(format!("secret write: {}", r.status())),
                    Err(e) => t.unexpected.push(format!("secret write: {e}")),
                }
            }
        }));
    }
    {
        let hot_acked = hot_acked.clone();
        let (server, tally, client, hot) = (
            server.clone(),
            tally.clone(),
            client.clone(),
            hot_values.clone(),
        );
        tasks.push(tokio::spawn(async move {
            while start.elapsed() < RUN_FOR {
                // Once a write of HOT was acknowledged, HOT exists: `found: false` is a loss.
                let acked = hot_acked.load(std::sync::atomic::Ordering::SeqCst);
                let result = client
                    .get(format!("{}/acme/sec/?name=HOT&reveal=1", server.listen))
                    .send()
                    .await;
                let answer = match result {
                    Ok(r) if r.status() == 200 => r.json::<Value>().await.ok(),
                    _ => None,
                };
                let known = hot.lock().unwrap().clone();
                let mut t = tally.lock().unwrap();
                t.secret_reads += 1;
                match answer {
                    Some(v) if v["found"] == false && !acked => {}
                    Some(v) if known.iter().any(|k| v["value"] == k.as_str()) => {}
                    other => t.unexpected.push(format!("guest read of HOT: {other:?}")),
                }
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let elapsed = start.elapsed();

    // No acknowledged write lost: every one reads back with its value.
    let written = written.lock().unwrap().clone();
    let mut lost = Vec::new();
    for (name, value) in &written {
        let (status, body) = server
            .json(
                Method::GET,
                &format!("/v1/projects/acme/packages/sec/secrets/{name}"),
            )
            .await;
        if status != 200 || body["value"] != value.as_str() {
            lost.push(format!("{name}: {status} {body}"));
        }
    }
    let t = tally.lock().unwrap();
    println!(
        "load: {} invocations ({:.0}/s), {} deploys, {} secret writes ({} distinct names read back), \
         {} guest secret reads in {:.1}s; {} unexpected, {} lost",
        t.invocations,
        t.invocations as f64 / elapsed.as_secs_f64(),
        t.deploys,
        t.secret_writes,
        written.len(),
        t.secret_reads,
        elapsed.as_secs_f64(),
        t.unexpected.len(),
        lost.len()
    );
    assert!(
        t.unexpected.is_empty(),
        "unexpected results: {:?}",
        &t.unexpected[..t.unexpected.len().min(10)]
    );
    assert!(lost.is_empty(), "lost writes: {lost:?}");
    assert!(
        t.invocations > 100 && t.deploys > 3 && t.secret_writes > 10,
        "too little load to mean anything"
    );
}
