//! Cluster mode: three `edgeward serve` hosts on one PostgreSQL and one OpenBao, as behind a
//! load balancer. A change made through any host is in effect on every host within a second
//! (the secret cache TTL is 30 s, so only the change feed can do it); deploys from two hosts at
//! once all get versions; a host killed under load leaves the others answering; a PostgreSQL
//! restart leaves the hosts serving, then following changes again.

use crate::harness::{OpenBao, Options, Server, admin_init, unique};
use crate::pg::Postgres;
use futures::FutureExt;
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

/// Within this, a change made on one host is in effect on the others.
const PROPAGATION: Duration = Duration::from_secs(1);

fn host(url: &str, token: &str, bao: &OpenBao, prefix: &str) -> Options {
    Options {
        store: Some(url.to_string()),
        admin_token: Some(token.to_string()),
        vault: Some((bao.addr.clone(), prefix.to_string())),
        extra_args: vec!["--secrets-cache-ttl-ms".into(), "30000".into()],
        ..Options::default()
    }
}

/// Polls `check` until it holds; how long that took, or `None` past `within`.
async fn until<F, Fut>(within: Duration, mut check: F) -> Option<Duration>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let started = Instant::now();
    loop {
        if check().await {
            return Some(started.elapsed());
        }
        if started.elapsed() > within {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A database of its own on `pg`, with the cluster's first admin made (`admin init`): its URL
/// and the admin's token.
fn database_with_admin(pg: &Postgres) -> (String, String) {
    let url = pg.create_database();
    let tmp = tempfile::tempdir().unwrap();
    let token_file = tmp.path().join("admin.token");
    admin_init(&url, &token_file);
    let admin = std::fs::read_to_string(&token_file).unwrap();
    (url, admin.trim().to_string())
}

async fn status(server: &Server, path: &str) -> u16 {
    match server.call(Method::GET, path).send().await {
        Ok(r) => r.status().as_u16(),
        Err(_) => 0,
    }
}

async fn secret_seen(server: &Server, name: &str) -> Value {
    let r = server
        .call(Method::GET, &format!("/acme/api/?name={name}&reveal=1"))
        .send()
        .await
        .unwrap();
    r.json().await.unwrap_or(Value::Null)
}

async fn set_secret(server: &Server, name: &str, value: &str) {
    let r = server
        .api(Method::PUT, &format!("/v1/projects/acme/secrets/{name}"))
        .json(&json!({ "value": value }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

async fn ready(server: &Server) -> (u16, Value) {
    let r = crate::harness::http_get(format!("{}/v1/ready", server.api))
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_hosts_on_one_database_follow_every_change_within_a_second() {
    let mut pg = Postgres::start();
    let (url, admin) = database_with_admin(&pg);
    let admin = admin.as_str();
    let bao = OpenBao::start();
    let prefix = unique("cluster");

    // The first admin is made once per cluster.
    let again = crate::harness::cleared(std::process::Command::new(env!("CARGO_BIN_EXE_edgeward")))
        .args(["admin", "init"])
        .env("EDGEWARD_STORE", &url)
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("already_exists"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    assert!(again.stdout.is_empty(), "no second token is printed");

    let a = Server::start_with(host(&url, admin, &bao, &prefix)).await;
    let mut b = Server::start_with(host(&url, admin, &bao, &prefix)).await;
    let c = Server::start_with(host(&url, admin, &bao, &prefix)).await;
    for s in [&a, &b, &c] {
        let (code, body) = ready(s).await;
        assert_eq!(code, 200, "{body}");
        assert_eq!(
            (body["engine"].as_str(), body["feed"].as_str()),
            (Some("postgres"), Some("ok"))
        );
        assert!(
            s.stdout_lines()
                .iter()
                .any(|l| l.contains("admin token: none on this host")),
            "hosts do not make admins"
        );
    }

    // Token lineage across hosts: a token minted through A from one minted through B dies,
    // on C, within a second of its ancestor's revocation through A.
    let mint = |server: &Server, parent: String| {
        let req = server
            .api_as(Method::POST, "/v1/users/admin/tokens")
            .bearer_auth(parent)
            .json(&json!({ "name": "lineage" }));
        async move {
            let body: Value = req.send().await.unwrap().json().await.unwrap();
            (
                body["id"].as_str().unwrap().to_string(),
                body["token"].as_str().unwrap().to_string(),
            )
        }
    };
    let (child_id, child) = mint(&b, admin.to_string()).await;
    let (_, grandchild) = mint(&a, child.clone()).await;
    let whoami = |server: &Server, token: String| {
        let req = server.api_as(Method::GET, "/v1/whoami").bearer_auth(token);
        async move { req.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(whoami(&c, grandchild.clone()).await, 200);
    let r = a
        .api(
            Method::DELETE,
            &format!("/v1/users/admin/tokens/{child_id}"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let took = until(PROPAGATION, || {
        whoami(&c, grandchild.clone()).map(|s| s == 401)
    })
    .await;
    println!("revocation seen in {took:?}");
    assert!(
        took.is_some(),
        "a descendant outlived its revoked parent on another host"
    );

    // A deploy through A serves on B and C within a second.
    a.deploy("acme/hello", "hello").await;
    for s in [&b, &c] {
        let took = until(PROPAGATION, || async {
            status(s, "/acme/hello/").await == 200
        })
        .await;
        println!("deploy seen in {took:?}");
        assert!(took.is_some(), "not served within {PROPAGATION:?}");
    }

    // A secret set through B is what a guest on C reads within a second, though C had the old
    // value cached for 30 s.
    a.deploy("acme/api", "secrets").await;
    set_secret(&b, "DB", "cluster-value-one-1234").await;
    for s in [&a, &b, &c] {
        let took = until(PROPAGATION, || async {
            secret_seen(s, "DB").await["value"] == "cluster-value-one-1234"
        })
        .await;
        assert!(
            took.is_some(),
            "deploy of acme/api or the first value not seen"
        );
    }
    set_secret(&b, "DB", "cluster-value-two-5678").await;
    let took = until(PROPAGATION, || async {
        secret_seen(&c, "DB").await["value"] == "cluster-value-two-5678"
    })
    .await;
    println!("secret write seen in {took:?}");
    assert!(took.is_some(), "C still answers the cached value");

    // A token revoked on A is refused on C within a second.
    let r = a
        .api(Method::POST, "/v1/users")
        .json(&json!({ "name": "carol" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{:?}", r.text().await);
    let r = a
        .api(Method::POST, "/v1/users/carol/tokens")
        .json(&json!({ "name": "ci" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let minted: Value = r.json().await.unwrap();
    let carol = minted["token"].as_str().unwrap().to_string();
    let whoami = |s: &Server| {
        let req = s.api_as(Method::GET, "/v1/whoami").bearer_auth(&carol);
        async move { req.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(whoami(&c).await, 200);
    let r = a
        .api(
            Method::DELETE,
            &format!("/v1/users/carol/tokens/{}", minted["id"].as_str().unwrap()),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let took = until(PROPAGATION, || async { whoami(&c).await == 401 }).await;
    assert!(took.is_some(), "a revoked token still works on C");

    // Deploys of one package from two hosts at once: every one gets its own version.
    let mut deploys = Vec::new();
    for i in 0..6 {
        let s = if i % 2 == 0 { &a } else { &b };
        deploys.push(async move {
            let bytes = std::fs::read(crate::harness::guest("hello")).unwrap();
            s.upload("acme/race", bytes).await
        });
    }
    let mut versions = BTreeSet::new();
    for (code, body) in futures::future::join_all(deploys).await {
        assert_eq!(code, 201, "{body}");
        versions.insert(body["version"].as_i64().unwrap());
    }
    assert_eq!(
        versions,
        (1..=6).collect(),
        "no duplicate and no lost version"
    );
    let r = c
        .api(Method::GET, "/v1/projects/acme/packages/race")
        .send()
        .await
        .unwrap();
    let listed: Value = r.json().await.unwrap();
    assert_eq!(
        listed["versions"].as_array().map(Vec::len),
        Some(6),
        "{listed}"
    );

    // B is killed under load; A and C answer every request meanwhile.
    let load = |s: &Server| {
        let (http, url) = (crate::harness::http(), format!("{}/acme/hello/", s.listen));
        async move {
            let mut codes = Vec::new();
            let end = Instant::now() + Duration::from_secs(2);
            while Instant::now() < end {
                codes.push(match http.get(&url).send().await {
                    Ok(r) => r.status().as_u16(),
                    Err(_) => 0,
                });
            }
            codes
        }
    };
    let kill = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        b.signal("-KILL");
    };
    let (on_a, on_c, ()) = tokio::join!(load(&a), load(&c), kill);
    assert!(b.wait_exit(Duration::from_secs(5)).is_some(), "B is gone");
    for (name, codes) in [("A", on_a), ("C", on_c)] {
        assert!(codes.len() > 20, "{name} answered only {}", codes.len());
        assert!(codes.iter().all(|c| *c == 200), "{name}: {codes:?}");
    }

    // PostgreSQL restarts mid-run: the hosts keep serving what they have and say they are
    // not ready; then they follow changes again.
    pg.stop();
    assert_eq!(status(&a, "/acme/hello/").await, 200);
    assert_eq!(
        secret_seen(&c, "DB").await["value"],
        "cluster-value-two-5678",
        "cached values still serve"
    );
    let (code, body) = ready(&a).await;
    assert_eq!(
        (code, body["store"].as_str()),
        (503, Some("unavailable")),
        "{body}"
    );
    let r = a.api(Method::GET, "/v1/projects").send().await.unwrap();
    assert_eq!(r.status(), 503);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unavailable", "{body}");
    pg.restart();
    for s in [&a, &c] {
        let back = until(Duration::from_secs(20), || async {
            ready(s).await.0 == 200
        })
        .await;
        assert!(back.is_some(), "not ready again: {}", s.log());
    }
    c.deploy("acme/late", "hello").await;
    let took = until(PROPAGATION, || async {
        status(&a, "/acme/late/").await == 200
    })
    .await;
    assert!(
        took.is_some(),
        "A does not follow changes after the restart"
    );
}

/// The PostgreSQL client logs each statement's parameters at debug: token hashes, ciphertexts,
/// execution output. Whatever `EDGEWARD_LOG` says, none of it reaches the log.
#[tokio::test]
async fn statement_parameters_never_reach_the_log() {
    let (url, admin) = database_with_admin(Postgres::shared());
    let server = Server::start_with(Options {
        store: Some(url.clone()),
        admin_token: Some(admin.clone()),
        env: vec![
            (
                "EDGEWARD_MASTER_KEY".into(),
                crate::harness::TEST_MASTER_KEY.into(),
            ),
            ("EDGEWARD_LOG".into(), "debug,tokio_postgres=trace".into()),
        ],
        ..Options::default()
    })
    .await;
    server.deploy("acme/api", "secrets").await;
    set_secret(&server, "DB", "logged-nowhere-value-0042").await;
    assert_eq!(
        secret_seen(&server, "DB").await["value"],
        "logged-nowhere-value-0042"
    );
    let log = server.log();
    assert!(log.contains("DEBUG"), "the server logs at debug");
    let hash = edgeward_host::credential::hash_token(&admin);
    assert!(!log.contains(&hash), "the admin token's hash is in the log");
    assert!(
        !log.contains("with parameters"),
        "statement parameters are logged"
    );
}

/// `/v1/ready` on one host: ready on its default store (no token needed), and 503 naming the
/// secret backend when Vault cannot be reached, while `/v1/health` stays a liveness check.
#[tokio::test]
async fn ready_says_which_part_is_missing() {
    let server = Server::start().await;
    let (code, body) = ready(&server).await;
    assert_eq!(code, 200, "{body}");
    let engine = if crate::harness::on_postgres() {
        "postgres"
    } else {
        "sqlite"
    };
    assert_eq!(
        (
            body["ready"].as_bool(),
            body["store"].as_str(),
            body["feed"].as_str(),
            body["secrets"].as_str(),
            body["engine"].as_str()
        ),
        (Some(true), Some("ok"), Some("ok"), Some("ok"), Some(engine))
    );

    let (_refusing, nowhere) = crate::harness::refusing_address();
    let options = Options {
        vault: Some((nowhere, unique("ready"))),
        extra_args: vec!["--secrets-timeout-ms".into(), "500".into()],
        ..Options::default()
    };
    let cut_off = Server::start_with(options).await;
    let (code, body) = ready(&cut_off).await;
    assert_eq!(code, 503, "{body}");
    assert_eq!(
        (
            body["ready"].as_bool(),
            body["store"].as_str(),
            body["secrets"].as_str()
        ),
        (Some(false), Some("ok"), Some("unavailable"))
    );
    assert!(
        !body.to_string().contains("127.0.0.1"),
        "causes stay in the log: {body}"
    );
    let r = crate::harness::http_get(format!("{}/v1/health", cut_off.api))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

/// `admin init --token-file` never writes through an existing file or a planted symlink, and
/// a refused init makes no admin: the next init, to a fresh file, still works.
#[tokio::test]
async fn admin_init_never_writes_through_an_existing_file() {
    let url = Postgres::shared().create_database();
    let tmp = tempfile::tempdir().unwrap();
    let existing = tmp.path().join("existing");
    std::fs::write(&existing, "keep me").unwrap();
    let target = tmp.path().join("elsewhere");
    let link = tmp.path().join("link");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    for path in [&existing, &link] {
        let out =
            crate::harness::cleared(std::process::Command::new(env!("CARGO_BIN_EXE_edgeward")))
                .args(["admin", "init", "--token-file"])
                .arg(path)
                .env("EDGEWARD_STORE", &url)
                .output()
                .unwrap();
        assert!(!out.status.success(), "{}", path.display());
        assert!(out.stdout.is_empty(), "no token printed");
    }
    assert_eq!(std::fs::read_to_string(&existing).unwrap(), "keep me");
    assert!(!target.exists(), "nothing written through the symlink");
    let fresh = tmp.path().join("admin.token");
    admin_init(&url, &fresh);
    let token = std::fs::read_to_string(&fresh).unwrap();
    assert!(token.starts_with("ew_"), "the refused runs made no admin");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&fresh).unwrap().permissions().mode() & 0o777,
        0o600
    );
}

/// A package deleted through one host leaves no artifact on another: the deletion reaches it
/// through the change feed, and with it the removal of the artifacts of the components no
/// version uses any more (before, they stayed until that host's next start).
#[tokio::test]
async fn a_package_deleted_through_one_host_leaves_no_artifact_on_another() {
    let (url, admin) = database_with_admin(Postgres::shared());
    let on_store = || Options {
        store: Some(url.clone()),
        admin_token: Some(admin.clone()),
        ..Options::default()
    };
    let a = Server::start_with(on_store()).await;
    let b = Server::start_with(on_store()).await;
    a.deploy("acme/hello", "hello").await;
    let serving = until(Duration::from_secs(10), || async {
        status(&b, "/acme/hello/").await == 200
    })
    .await;
    assert!(serving.is_some(), "B never served the package");
    let artifacts = || crate::harness::artifact_names(&b.data_dir);
    let before = artifacts();
    assert_eq!(before.len(), 1, "{before:?}");
    // Older than the guard that keeps an upload's artifact written before its version commits.
    std::fs::File::options()
        .write(true)
        .open(b.data_dir.join("artifacts").join(&before[0]))
        .unwrap()
        .set_modified(std::time::SystemTime::now() - Duration::from_secs(3600))
        .unwrap();

    let (code, body) = a
        .json(Method::DELETE, "/v1/projects/acme/packages/hello")
        .await;
    assert!((200..300).contains(&code), "{code} {body}");
    let gone = until(Duration::from_secs(10), || async { artifacts().is_empty() }).await;
    assert!(gone.is_some(), "B kept {:?}", artifacts());
    assert_eq!(status(&b, "/acme/hello/").await, 404);
}
