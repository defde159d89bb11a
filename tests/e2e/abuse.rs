//! Abuse and fair sharing: what a tenant, or anyone on the network, can do to the platform and
//! to other tenants, reproduced as it was tried, and shown to be refused or contained.

use crate::harness::{Options, Server, Upstream};
use reqwest::Method;
use serde_json::Value;

async fn fetch(server: &Server, target: &str, url: &str) -> Value {
    let r = server
        .call(Method::GET, &format!("/{target}/?url={url}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

#[tokio::test]
async fn outbound_to_private_addresses_is_denied_whatever_the_manifest_says() {
    let upstream = Upstream::start().await;
    let port = upstream.port;
    let server = Server::start().await;
    let api_port = server.api.rsplit(':').next().unwrap().to_string();
    // Everything the attack allowlisted, and then some.
    let manifest = format!(
        "[outbound]\nhosts = [\"http://127.0.0.1:{port}\", \"http://localhost:{port}\", \
         \"http://127.0.0.1:{api_port}\", \"http://169.254.169.254\", \
         \"http://metadata.google.internal\", \"http://10.0.0.1\", \"http://*.internal\", \
         \"http://[::1]:{port}\", \"http://[::ffff:127.0.0.1]:{port}\", \"http://0.0.0.0:{port}\", \
         \"127.0.0.1:{port}\"]\n"
    );
    server.deploy_with("acme/fetch", "fetch", &manifest).await;
    for url in [
        format!("http://127.0.0.1:{port}/"),
        // A name that resolves to loopback: refused by the address it resolves to.
        format!("http://localhost:{port}/"),
        // The control plane, over loopback.
        format!("http://127.0.0.1:{api_port}/v1/health"),
        "http://169.254.169.254/latest/meta-data/".to_string(),
        "http://metadata.google.internal/computeMetadata/v1/".to_string(),
        "http://10.0.0.1/".to_string(),
        format!("http://[::1]:{port}/"),
        format!("http://[::ffff:127.0.0.1]:{port}/"),
        format!("http://0.0.0.0:{port}/"),
    ] {
        let got = fetch(&server, "acme/fetch", &url).await;
        let error = got["error"].as_str().unwrap_or_default();
        assert!(error.contains("DestinationIpProhibited"), "{url}: {got}");
    }
    // A bare pattern means https: plain http to it is not allowed at all.
    let got = fetch(&server, "acme/fetch", &format!("http://127.0.0.1:{port}/x")).await;
    assert!(got["error"].is_string(), "{got}");
    assert_eq!(
        upstream.hits.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "nothing reached the loopback service"
    );

    // Positive control: the operator allows private destinations, and the same guest reaches it.
    let open = Server::start_with(Options {
        extra_args: vec!["--outbound-allow-private".into()],
        ..Options::default()
    })
    .await;
    open.deploy_with("acme/fetch", "fetch", &manifest).await;
    let got = fetch(&open, "acme/fetch", &format!("http://localhost:{port}/p")).await;
    assert_eq!(got["body"], "upstream says hi", "{got}");
    assert_eq!(upstream.hits.load(std::sync::atomic::Ordering::SeqCst), 1);
}

/// Reads `stream` until the server closes it; how long that took from `since`, or `None` if
/// it was still open after `limit`.
fn closed_within(
    mut stream: std::net::TcpStream,
    since: std::time::Instant,
    limit: std::time::Duration,
) -> Option<std::time::Duration> {
    use std::io::Read;
    stream
        .set_read_timeout(Some(std::time::Duration::from_millis(200)))
        .unwrap();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return Some(since.elapsed()),
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return Some(since.elapsed()),
        }
        if since.elapsed() > limit {
            return None;
        }
    }
}

#[tokio::test]
async fn silent_slow_and_idle_connections_are_closed_on_both_listeners() {
    use std::io::Write;
    use std::net::TcpStream;
    use std::time::{Duration, Instant};
    let server = Server::start_with(Options {
        extra_args: [
            "--header-timeout-ms",
            "1000",
            "--idle-timeout-ms",
            "2000",
            "--body-idle-timeout-ms",
            "1000",
        ]
        .map(String::from)
        .to_vec(),
        ..Options::default()
    })
    .await;
    server.deploy("acme/hello", "hello").await;
    let data = server.listen.trim_start_matches("http://").to_string();
    let api = server.api.trim_start_matches("http://").to_string();
    let started = Instant::now();
    let mut cases: Vec<(String, TcpStream)> = Vec::new();
    for (name, addr) in [("data plane", &data), ("API", &api)] {
        for i in 0..10 {
            cases.push((
                format!("{name}: silent #{i}"),
                TcpStream::connect(addr).unwrap(),
            ));
        }
        let mut s = TcpStream::connect(addr).unwrap();
        s.write_all(b"PRI * HTTP/2.0\r\n").unwrap();
        cases.push((format!("{name}: partial HTTP/2 preface"), s));
        // A whole preface and an empty SETTINGS frame, then nothing (and no PING answers).
        let mut s = TcpStream::connect(addr).unwrap();
        s.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
            .unwrap();
        cases.push((format!("{name}: idle HTTP/2"), s));
        let mut s = TcpStream::connect(addr).unwrap();
        s.write_all(b"GET /v1/h").unwrap();
        cases.push((format!("{name}: half a request line"), s));
    }
    // A slow body on the unauthenticated unwrap route.
    let mut s = TcpStream::connect(&api).unwrap();
    s.write_all(
        b"POST /v1/unwrap HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{\"token\":",
    )
    .unwrap();
    cases.push(("API: slow body on /v1/unwrap".into(), s));
    // A keep-alive connection left idle after a request.
    let mut s = TcpStream::connect(&data).unwrap();
    s.write_all(b"GET /acme/hello/ HTTP/1.1\r\nhost: x\r\n\r\n")
        .unwrap();
    cases.push(("data plane: idle keep-alive".into(), s));

    let results: Vec<(String, Option<Duration>)> = cases
        .into_iter()
        .map(|(name, s)| {
            std::thread::spawn(move || {
                let took = closed_within(s, started, Duration::from_secs(15));
                (name, took)
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|h| h.join().unwrap())
        .collect();
    for (name, took) in &results {
        let took = took.unwrap_or_else(|| panic!("{name}: still open after 15 s"));
        // Deadlines of 1 s (first request, body idle) and 2 s (idle): generous slack.
        assert!(
            took < Duration::from_secs(8),
            "{name}: closed after {took:?}"
        );
    }

    // Positive control: a connection that keeps asking is not cut, across several idle
    // deadlines' worth of time.
    let mut s = TcpStream::connect(&data).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let begun = Instant::now();
    let mut answered = 0;
    while begun.elapsed() < Duration::from_secs(5) {
        s.write_all(b"GET /acme/hello/ HTTP/1.1\r\nhost: x\r\n\r\n")
            .unwrap();
        let mut buf = [0u8; 4096];
        let n = std::io::Read::read(&mut s, &mut buf).unwrap();
        assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
        answered += 1;
        std::thread::sleep(Duration::from_millis(700));
    }
    assert!(answered >= 5, "{answered}");
}

#[tokio::test]
async fn a_flood_of_silent_connections_on_one_listener_leaves_the_other_serving() {
    let server = Server::start_with(Options {
        extra_args: ["--max-connections-per-ip", "40"]
            .map(String::from)
            .to_vec(),
        fd_limit: Some(200),
        ..Options::default()
    })
    .await;
    server.deploy("acme/hello", "hello").await;
    let api = server.api.trim_start_matches("http://").to_string();
    // 230 silent API connections from one address: more than the process has descriptors.
    let mut held = Vec::new();
    for _ in 0..230 {
        if let Ok(s) = std::net::TcpStream::connect(&api) {
            held.push(s);
        }
    }
    // The data plane answers, promptly, every time.
    for _ in 0..20 {
        let started = std::time::Instant::now();
        let (status, body) = server.get("/acme/hello/").await;
        assert_eq!(status, 200, "{body}");
        assert!(started.elapsed() < std::time::Duration::from_secs(2));
    }
    // So does the API, for another client address.
    let other = crate::harness::http_builder()
        .local_address(Some("127.0.0.2".parse().unwrap()))
        .build()
        .unwrap();
    let r = other
        .get(format!("{}/v1/health", server.api))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    drop(held);
}

#[tokio::test]
async fn a_tenant_at_its_share_of_instances_leaves_other_projects_served() {
    use std::io::{Read, Write};
    use std::time::{Duration, Instant};
    let server = Server::start_with(Options {
        extra_args: ["--max-instances", "40", "--project-max-instances", "4"]
            .map(String::from)
            .to_vec(),
        ..Options::default()
    })
    .await;
    // The tenant: four packages at a high max-concurrency, as in the attack.
    for i in 0..4 {
        server
            .deploy_with(
                &format!("greedy/p{i}"),
                "echo",
                "[limits]\nmax-concurrency = 256\n",
            )
            .await;
    }
    server.deploy("other/hello", "hello").await;
    let hello = format!("{}/other/hello/", server.listen);
    let client = crate::harness::http();
    let mut unloaded = Vec::new();
    for _ in 0..30 {
        let t = Instant::now();
        assert_eq!(client.get(&hello).send().await.unwrap().status(), 200);
        unloaded.push(t.elapsed());
    }
    // Forty requests whose bodies never finish: each holds an instance while it waits.
    let data = server.listen.trim_start_matches("http://").to_string();
    let mut held = Vec::new();
    for i in 0..40 {
        let mut s = std::net::TcpStream::connect(&data).unwrap();
        s.write_all(
            format!(
                "POST /greedy/p{}/ HTTP/1.1\r\nhost: x\r\ncontent-length: 1000\r\n\r\nstart",
                i % 4
            )
            .as_bytes(),
        )
        .unwrap();
        held.push(s);
    }
    let mut loaded = Vec::new();
    for _ in 0..30 {
        let t = Instant::now();
        let r = client.get(&hello).send().await.unwrap();
        assert_eq!(r.status(), 200, "another project is served");
        loaded.push(t.elapsed());
    }
    // The tenant got its share and no more: the rest were told so.
    let mut capacity = 0;
    for mut s in held {
        // Refusals come after the one-second queue wait; the admitted four never answer.
        s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let mut buf = [0u8; 2048];
        if let Ok(n) = s.read(&mut buf) {
            let text = String::from_utf8_lossy(&buf[..n]);
            if text.starts_with("HTTP/1.1 503") && text.contains("project greedy") {
                capacity += 1;
            }
        }
    }
    assert!(
        capacity >= 30,
        "{capacity} of 40 refused at the project's share of 4"
    );
    unloaded.sort();
    loaded.sort();
    let p99 = |v: &[Duration]| v[v.len() * 99 / 100];
    assert!(
        p99(&loaded) < (p99(&unloaded) * 2).max(Duration::from_millis(50)),
        "p99 {:?} with the tenant at its share, {:?} without",
        p99(&loaded),
        p99(&unloaded)
    );
}

/// Light requests of one project, one after another: their latencies, sorted.
async fn latencies(client: &reqwest::Client, url: &str, n: usize) -> Vec<std::time::Duration> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let t = std::time::Instant::now();
        let r = client.get(url).send().await.unwrap();
        assert_eq!(r.status(), 200, "another project is served");
        r.bytes().await.unwrap();
        out.push(t.elapsed());
    }
    out.sort();
    out
}

#[tokio::test]
async fn a_tenant_spinning_on_the_cpu_leaves_other_projects_answered_promptly() {
    use std::io::{Read, Write};
    use std::time::{Duration, Instant};
    const SPINNERS: usize = 64;
    let mut args: Vec<String> = ["--project-max-instances", "64"].map(String::from).to_vec();
    if let Some(slots) = std::env::var("EDGEWARD_TEST_CPU_SLOTS")
        .ok()
        .filter(|s| !s.is_empty())
    {
        // For measuring the scheduler against no scheduler (0) by hand.
        args.extend(["--cpu-slots".to_string(), slots]);
    }
    let server = Server::start_with(Options {
        extra_args: args,
        ..Options::default()
    })
    .await;
    server
        .deploy_with(
            "spin/loop",
            "hostile-loop",
            "[limits]\ntimeout-ms = 8000\nmax-concurrency = 128\nmemory-mb = 16\n",
        )
        .await;
    server.deploy("other/hello", "hello").await;
    let hello = format!("{}/other/hello/", server.listen);
    let client = crate::harness::http();
    // Two clients: one keep-alive connection, and a new connection per request (what a
    // client without a warm connection to the right worker sees: the accept waits too).
    let fresh = crate::harness::http_builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    latencies(&client, &hello, 10).await;
    let unloaded = latencies(&client, &hello, 200).await;
    let unloaded_fresh = latencies(&fresh, &hello, 200).await;

    // Sixty-four guests that never stop computing, each until its time limit of 8 s.
    let data = server.listen.trim_start_matches("http://").to_string();
    let started = Instant::now();
    let spinners: Vec<std::net::TcpStream> = (0..SPINNERS)
        .map(|_| {
            let mut s = std::net::TcpStream::connect(&data).unwrap();
            s.write_all(b"GET /spin/loop/ HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
                .unwrap();
            s
        })
        .collect();
    // The tenant is at its share once one more of its requests is refused for capacity: all
    // sixty-four are then computing. (A probe let in before that computes too, and is
    // dropped by the client.)
    let probe = crate::harness::http_builder()
        .timeout(Duration::from_secs(3))
        .build()
        .unwrap();
    loop {
        assert!(
            started.elapsed() < Duration::from_secs(4),
            "the spinners never filled the project's share"
        );
        let Ok(r) = probe
            .get(format!("{}/spin/loop/", server.listen))
            .send()
            .await
        else {
            continue;
        };
        let status = r.status().as_u16();
        let body: serde_json::Value = r.json().await.unwrap();
        if status == 503 && body["error"]["code"] == "capacity" {
            break;
        }
    }
    let loaded = latencies(&client, &hello, 200).await;
    let loaded_fresh = latencies(&fresh, &hello, 200).await;
    let window = started.elapsed();

    // The positive control: every spinner computed until its time limit, which had not come
    // when the measurement ended.
    assert!(window < Duration::from_secs(8), "measured for {window:?}");
    // (A probe let in before them all takes the place of one, refused for capacity.)
    let mut timed_out = 0;
    for mut s in spinners {
        let mut text = String::new();
        s.read_to_string(&mut text).unwrap();
        if text.starts_with("HTTP/1.1 504") && text.contains("timed_out") {
            timed_out += 1;
        } else {
            assert!(
                text.starts_with("HTTP/1.1 503") && text.contains("capacity"),
                "{text}"
            );
        }
    }
    assert!(
        timed_out >= SPINNERS - 4,
        "{timed_out} spinners computed to their limit"
    );
    let p99 = |v: &[Duration]| v[v.len() * 99 / 100];
    for (what, unloaded, loaded) in [
        ("keep-alive", &unloaded, &loaded),
        ("new connection each", &unloaded_fresh, &loaded_fresh),
    ] {
        eprintln!(
            "hello ({what}) p50/p99 unloaded {:?}/{:?}, beside {SPINNERS} spinners {:?}/{:?}",
            unloaded[100],
            p99(unloaded),
            loaded[100],
            p99(loaded)
        );
        // Measured on two cores shared with other tests (December 2026): keep-alive p99
        // 2.0-5.5 ms against 0.5-1.14 ms unloaded; a new connection each 6.9-9.9 ms against
        // 0.8-4.0 ms (2 to about 11 times); the issue's own pass 15-23 ms against 2-5 ms.
        // Without turns (`--cpu-slots 0`), seconds. So the bound is eight times the unloaded
        // p99, with a floor of 250 ms for a machine this suite shares with its other tests
        // (25 ms was crossed once, at 25.3 ms, in a full run): a guard against losing the
        // turns, not a latency promise (bench/ measures latency).
        assert!(
            p99(loaded) < (p99(unloaded) * 8).max(Duration::from_millis(250)),
            "{what}: p99 {:?} beside the spinners, {:?} without",
            p99(loaded),
            p99(unloaded)
        );
    }
}

#[tokio::test]
async fn execution_output_is_held_to_a_quota_per_project_across_its_packages() {
    let server = Server::start_with(Options {
        extra_args: ["--executions-max-mb-per-project", "1"]
            .map(String::from)
            .to_vec(),
        ..Options::default()
    })
    .await;
    // Many packages, each well under the per-package count limit.
    for i in 0..4 {
        server.deploy(&format!("big/p{i}"), "secrets").await;
    }
    let admin = server.token.clone();
    let r = server
        .api(Method::PUT, "/v1/secrets/platform/S")
        .bearer_auth(&admin)
        .json(&serde_json::json!({ "value": "some-value" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // Forty executions printing 60 KB each: about 2.4 MB of output for a 1 MiB quota.
    let body = vec![b'x'; 60_000];
    let client = crate::harness::http();
    let mut last = String::new();
    for i in 0..40 {
        let r = client
            .post(format!(
                "{}/big/p{}/?name=S&log_body=1",
                server.listen,
                i % 4
            ))
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        last = r.headers()["x-edgeward-execution-id"]
            .to_str()
            .unwrap()
            .to_string();
    }
    server.execution("big", &last).await;
    // Retention runs once a second: wait (bounded) until the project is within its quota.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        let (_, list) = server
            .json(Method::GET, "/v1/projects/big/executions?limit=1000")
            .await;
        let rows = list["executions"].as_array().unwrap();
        let bytes: u64 = rows
            .iter()
            .map(|e| e["stdout_bytes"].as_u64().unwrap() + e["stderr_bytes"].as_u64().unwrap())
            .sum();
        if bytes <= 1 << 20 {
            assert!(
                rows.len() >= 10,
                "the newest records are kept: {}",
                rows.len()
            );
            assert!(
                rows.iter().any(|e| e["id"] == last.as_str()),
                "the newest is kept"
            );
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{bytes} bytes kept for a 1 MiB quota"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// The value of the sample `name` (with its labels, as Prometheus prints them) in `text`.
fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

#[tokio::test]
async fn a_project_flooding_the_record_writer_loses_its_own_records_never_anothers() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::{Duration, Instant};
    let server = Server::start_with(Options {
        extra_args: [
            "--record-queue-per-project",
            "4",
            "--metrics-listen",
            "127.0.0.1:0",
        ]
        .map(String::from)
        .to_vec(),
        ..Options::default()
    })
    .await;
    let metrics = server
        .stdout_lines()
        .iter()
        .find_map(|l| l.strip_prefix("listening: metrics ").map(str::to_string))
        .unwrap();
    server.deploy("flood/big", "secrets").await;
    server.deploy("quiet/hello", "hello").await;
    // Large secrets, every one revealed and printed (64 KiB of output) by each flooding
    // request: the most expensive records to mask (a scaled-down form of the 33).
    let mut seed = 0x2700_u64;
    for i in 0..3 {
        let value: String = (0..20_000)
            .map(|_| {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                char::from(b"abcdefghijklmnopqrstuvwxyz0123456789"[(seed >> 33) as usize % 36])
            })
            .collect();
        server.plant_value(&value);
        server
            .put_secret(
                &format!("/v1/projects/flood/secrets/S{i}"),
                serde_json::json!(value),
            )
            .await;
    }
    // Eight flooding clients, at most 800 requests in all (under the 1000 records a package
    // keeps), for at most four seconds; beside them, one quiet client of another project.
    let sent = Arc::new(AtomicUsize::new(0));
    let until = Instant::now() + Duration::from_secs(4);
    let flood: Vec<_> = (0..8)
        .map(|_| {
            let (sent, url) = (
                sent.clone(),
                format!("{}/flood/big/?names=S0,S1,S2&print=1", server.listen),
            );
            tokio::spawn(async move {
                let client = crate::harness::http();
                while Instant::now() < until && sent.fetch_add(1, Ordering::SeqCst) < 800 {
                    let r = client.get(&url).send().await.unwrap();
                    assert_eq!(r.status(), 200);
                    r.bytes().await.unwrap();
                }
                sent.fetch_sub(1, Ordering::SeqCst);
            })
        })
        .collect();
    let client = crate::harness::http();
    let mut quiet = Vec::new();
    while Instant::now() < until {
        let r = client
            .get(format!("{}/quiet/hello/", server.listen))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let id = r.headers()["x-edgeward-execution-id"]
            .to_str()
            .unwrap()
            .to_string();
        r.bytes().await.unwrap();
        // Each quiet record is written during the flood (bounded wait); how long it took is
        // reported, not asserted.
        let answered = Instant::now();
        server.execution("quiet", &id).await;
        quiet.push(answered.elapsed());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for f in flood {
        f.await.unwrap();
    }
    let sent = sent.load(Ordering::SeqCst);
    // Every flooding execution is either written or counted as dropped, once the writer is
    // done (waited for, bounded).
    let deadline = Instant::now() + Duration::from_secs(30);
    let (written, dropped, text) = loop {
        let text = crate::harness::http_get(format!("{metrics}/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let (_, list) = server
            .json(Method::GET, "/v1/projects/flood/executions?limit=1000")
            .await;
        let written = list["executions"].as_array().unwrap().len();
        let dropped = metric(&text, "edgeward_records_dropped_total{project=\"flood\"}")
            .unwrap_or(0.0) as usize;
        if written + dropped >= sent || Instant::now() > deadline {
            break (written, dropped, text);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    quiet.sort();
    eprintln!(
        "flood: {sent} sent, {written} written, {dropped} dropped; quiet: {} records, \
         written within {:?} (median) and {:?} (worst) of their answer",
        quiet.len(),
        quiet[quiet.len() / 2],
        quiet[quiet.len() - 1]
    );
    assert_eq!(written + dropped, sent, "{text}");
    assert!(!quiet.is_empty());
    assert_eq!(
        metric(&text, "edgeward_records_dropped_total{project=\"quiet\"}"),
        None,
        "a quiet record was dropped: {text}"
    );
    assert!(
        metric(&text, "edgeward_record_queue").is_some(),
        "the queue gauge: {text}"
    );
}
