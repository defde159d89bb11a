//! Outages and crashes: a secret backend that goes away and comes back, and a host that dies
//! at a named fault point (host/src/faults.rs) in an upload or a secret import.

use crate::harness::{OpenBao, Options, Server};
use reqwest::Method;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

#[tokio::test]
async fn openbao_killed_and_restarted_under_a_running_host() {
    let mut bao = OpenBao::start();
    let options = Options {
        extra_args: vec![
            "--secrets-cache-ttl-ms".into(),
            "1000".into(),
            "--secrets-timeout-ms".into(),
            "500".into(),
        ],
        ..Options::backend(Some(&bao))
    };
    let server = Server::start_with(options).await;
    server.deploy("acme/api", "secrets").await;
    let put = |value: &'static str| {
        server
            .api(Method::PUT, "/v1/projects/acme/secrets/DB_PASS")
            .json(&json!({ "value": value }))
            .send()
    };
    assert_eq!(put("before-outage").await.unwrap().status(), 200);
    let read = || async {
        let r = server
            .call(Method::GET, "/acme/api/?name=DB_PASS&reveal=1")
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json::<Value>().await.unwrap())
    };
    assert_eq!(read().await.1["value"], "before-outage");

    bao.stop();
    // Within the TTL a guest may get the cached value; after it, `unavailable`; never a wrong
    // value, never a crash.
    let stopped = Instant::now();
    let mut saw_unavailable = false;
    while stopped.elapsed() < Duration::from_secs(4) {
        let (status, v) = read().await;
        match (status, v["value"].as_str(), v["error"].as_str()) {
            (200, Some("before-outage"), _) => assert!(
                stopped.elapsed() < Duration::from_millis(1000 + 500),
                "a cached value served past its TTL"
            ),
            (503, None, Some("unavailable")) => saw_unavailable = true,
            other => panic!("unexpected answer during the outage: {other:?}"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(saw_unavailable);
    let r = put("during-outage").await.unwrap();
    assert_eq!(r.status(), 503);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["code"],
        "unavailable"
    );
    let (status, _) = server.json(Method::GET, "/v1/projects").await;
    assert_eq!(
        status, 200,
        "the API answers what does not need the backend"
    );

    // Back (a dev server comes back empty): writes work again and guests see them, with no
    // restart of the host.
    assert!(bao.restart(), "OpenBao restarts");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let status = put("after-outage").await.unwrap().status();
        if status == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "writes never recovered: {status}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(read().await.1["value"], "after-outage");
}

/// Crashes at named fault points (host/src/faults.rs). Each test arms one point through
/// `EDGEWARD_FAULT`, checks that the server died of its own SIGKILL right after logging that
/// point, starts it again unarmed on the same data directory (and Vault prefix) and asserts the
/// one state that crash leaves. Only with the host's `fault-injection` feature, which
/// `scripts/test` turns on: without it the points are no-ops and nothing would crash.
#[cfg(feature = "fault-injection")]
mod fault_points {
    use crate::harness::{OpenBao, Options, Server, guest};
    use reqwest::Method;
    use serde_json::{Value, json};
    use sha2::Digest;
    use std::ops::Range;
    use std::path::{Path, PathBuf};

    /// A data directory (and, on Vault, a prefix) that outlives the servers started on it.
    struct Site {
        data: PathBuf,
        log: PathBuf,
        vault: Option<(String, String)>,
        _tmp: tempfile::TempDir,
    }

    impl Site {
        fn new(bao: Option<&OpenBao>) -> Site {
            let tmp = tempfile::tempdir().unwrap();
            Site {
                data: tmp.path().join("data"),
                log: tmp.path().join("server.log"),
                vault: Options::backend(bao).vault,
                _tmp: tmp,
            }
        }

        /// A server on this site; `fault` goes into its `EDGEWARD_FAULT`.
        fn start(&self, fault: Option<&str>) -> Server {
            let options = Options {
                vault: self.vault.clone(),
                env: fault
                    .map(|f| vec![("EDGEWARD_FAULT".to_string(), f.to_string())])
                    .unwrap_or_default(),
                ..Options::default()
            };
            Server::spawn(&self.data, &options, self.log.clone())
        }
    }

    fn stop(mut server: Server) {
        assert!(server.stop(), "SIGTERM exits 0");
    }

    /// Sends `request`, during which the armed server is to die: no answer may come back.
    async fn dies_during(request: crate::harness::Req) {
        if let Ok(r) = request.send().await {
            panic!("the server answered {} instead of dying", r.status());
        }
    }

    /// Waits for `server` to die of its own SIGKILL, and checks that it reached `point` (once)
    /// just before.
    fn assert_crashed_at(mut server: Server, point: &str) {
        use std::os::unix::process::ExitStatusExt;
        let status = server.wait_exit(std::time::Duration::from_secs(30));
        let log = server.log();
        let status = status.unwrap_or_else(|| panic!("the server did not die; log:\n{log}"));
        assert_eq!(
            status.signal(),
            Some(9),
            "the server ended with {status}, not with its own SIGKILL; log:\n{log}"
        );
        let line = format!("fault point {point} reached");
        assert_eq!(
            log.matches(&line).count(),
            1,
            "{line:?} once in the log:\n{log}"
        );
    }

    /// How many versions acme/app has, and which is current.
    async fn versions(server: &Server) -> (usize, i64) {
        let (status, pkg) = server
            .json(Method::GET, "/v1/projects/acme/packages/app")
            .await;
        assert_eq!(status, 200, "{pkg}");
        (
            pkg["versions"].as_array().unwrap().len(),
            pkg["current_version"].as_i64().unwrap(),
        )
    }

    /// Which guest acme/app runs: `hello` or `echo`.
    async fn serves(server: &Server) -> &'static str {
        let (status, text) = server.get("/acme/app/").await;
        assert_eq!(status, 200, "{text}");
        if text.starts_with("Hello") {
            return "hello";
        }
        let echoed: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        assert_eq!(
            echoed["method"], "GET",
            "acme/app runs neither hello nor echo: {text}"
        );
        "echo"
    }

    /// The file names under `artifacts/`.
    fn artifacts(data: &Path) -> Vec<String> {
        std::fs::read_dir(data.join("artifacts"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect()
    }

    /// How many times the site's servers compiled an upload of `sha256`.
    fn compilations(server: &Server, sha256: &str) -> usize {
        server
            .log()
            .lines()
            .filter(|l| l.contains("compiling an upload") && l.contains(sha256))
            .count()
    }

    fn echo() -> (Vec<u8>, String) {
        let bytes = std::fs::read(guest("echo")).unwrap();
        let sha256 = hex::encode(sha2::Sha256::digest(&bytes));
        (bytes, sha256)
    }

    /// Deploys hello as version 1 of acme/app, then uploads echo to a server armed at `point`,
    /// which must die there; returns a server started again, unarmed, on what it left.
    async fn crash_an_upload(site: &Site, point: &str) -> Server {
        let server = site.start(None);
        server.deploy("acme/app", "hello").await;
        stop(server);
        let server = site.start(Some(point));
        dies_during(
            server
                .api(Method::POST, "/v1/projects/acme/packages/app/versions")
                .header("content-type", "application/wasm")
                .body(echo().0),
        )
        .await;
        assert_crashed_at(server, point);
        site.start(None)
    }

    /// Uploads echo again after the crash: version 2, from the artifact the crashed server
    /// wrote (compiled once in all, before the crash).
    async fn retry_the_upload(server: &Server) {
        let (bytes, sha256) = echo();
        let (status, body) = server.upload("acme/app", bytes).await;
        assert_eq!(status, 201, "{body}");
        assert_eq!(
            body["version"], 2,
            "the retry takes the number the crash never used"
        );
        assert_eq!(
            compilations(server, &sha256),
            1,
            "the retry loads the artifact"
        );
        assert_eq!(versions(server).await, (2, 2));
        assert_eq!(serves(server).await, "echo");
    }

    #[tokio::test]
    async fn crash_after_the_artifact_is_written_records_no_version() {
        let site = Site::new(None);
        let server = crash_an_upload(&site, "upload.after_artifact").await;
        assert_eq!(
            versions(&server).await,
            (1, 1),
            "nothing of the crashed upload"
        );
        assert_eq!(serves(&server).await, "hello");
        // Its artifact stays, whole (renamed into place before the crash), referenced by no
        // version: harmless, and reused by the retry.
        let (_, sha256) = echo();
        let files = artifacts(&site.data);
        assert_eq!(
            files.iter().filter(|n| n.starts_with(&sha256)).count(),
            1,
            "{files:?}"
        );
        assert!(!files.iter().any(|n| n.contains(".tmp-")), "{files:?}");
        retry_the_upload(&server).await;
    }

    #[tokio::test]
    async fn crash_before_the_version_commits_records_no_version() {
        let site = Site::new(None);
        let server = crash_an_upload(&site, "upload.before_commit").await;
        assert_eq!(
            versions(&server).await,
            (1, 1),
            "the transaction rolled back whole"
        );
        assert_eq!(serves(&server).await, "hello");
        retry_the_upload(&server).await;
    }

    #[tokio::test]
    async fn crash_after_the_version_commits_serves_it_after_restart() {
        let site = Site::new(None);
        // The client got no answer, yet the version is recorded and current: it serves once the
        // server is back.
        let server = crash_an_upload(&site, "upload.after_commit").await;
        assert_eq!(versions(&server).await, (2, 2));
        assert_eq!(serves(&server).await, "echo");
    }

    fn name(i: usize) -> String {
        format!("IMP_{i:03}")
    }

    fn names(range: Range<usize>) -> Vec<String> {
        range.map(name).collect()
    }

    fn old_value(i: usize) -> String {
        format!("old-{i}")
    }

    fn new_value(i: usize) -> String {
        format!("new-{i}")
    }

    /// Creates project acme with `IMP_000`…`IMP_009` set to their old values, and `KEEP`.
    async fn seed(server: &Server) {
        let r = server
            .api(Method::POST, "/v1/projects")
            .json(&json!({ "name": "acme" }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        let mut seeds: Vec<(String, String)> = (0..10).map(|i| (name(i), old_value(i))).collect();
        seeds.push(("KEEP".into(), "kept".into()));
        for (name, value) in seeds {
            let r = server
                .api(Method::PUT, &format!("/v1/projects/acme/secrets/{name}"))
                .json(&json!({ "value": value }))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200, "seeding {name}");
        }
    }

    /// An import of `IMP_000`…`IMP_{n-1}` with their new values, in that order, into acme.
    fn import(server: &Server, n: usize) -> crate::harness::Req {
        let entries: serde_json::Map<String, Value> =
            (0..n).map(|i| (name(i), json!(new_value(i)))).collect();
        server
            .api(Method::PUT, "/v1/projects/acme/secrets")
            .json(&Value::Object(entries))
    }

    /// acme's `IMP_` names, sorted.
    async fn imported(server: &Server) -> Vec<String> {
        let (status, list) = server.json(Method::GET, "/v1/projects/acme/secrets").await;
        assert_eq!(status, 200, "{list}");
        let mut names: Vec<String> = list["secrets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["name"].as_str().unwrap().to_string())
            .filter(|n| n.starts_with("IMP_"))
            .collect();
        names.sort();
        names
    }

    /// The value of acme's secret `name`, if there is one.
    async fn value(server: &Server, name: &str) -> Option<String> {
        let (status, body) = server
            .json(Method::GET, &format!("/v1/projects/acme/secrets/{name}"))
            .await;
        match status {
            200 => Some(body["value"].as_str().unwrap().to_string()),
            404 => None,
            _ => panic!("reading {name}: {status} {body}"),
        }
    }

    /// Asserts acme's `IMP_` secrets are exactly `expected` (name index, value).
    async fn assert_imp_secrets(server: &Server, expected: &[(usize, String)]) {
        let want: Vec<String> = expected.iter().map(|(i, _)| name(*i)).collect();
        assert_eq!(imported(server).await, want);
        for (i, v) in expected {
            assert_eq!(
                value(server, &name(*i)).await.as_deref(),
                Some(v.as_str()),
                "{}",
                name(*i)
            );
        }
        assert_eq!(value(server, "KEEP").await.as_deref(), Some("kept"));
    }

    /// The seeds as they were: `IMP_000`…`IMP_009` with their old values.
    fn the_seeds() -> Vec<(usize, String)> {
        (0..10).map(|i| (i, old_value(i))).collect()
    }

    #[tokio::test]
    async fn crash_inside_an_embedded_import_imports_nothing() {
        let site = Site::new(None);
        // Seeding writes one secret at a time, not through the import: the point is not hit.
        let server = site.start(Some("import.write@100"));
        seed(&server).await;
        dies_during(import(&server, 200)).await;
        assert_crashed_at(server, "import.write");
        let server = site.start(None);
        // One transaction: none of the 100 rows written before the crash survived it.
        assert_imp_secrets(&server, &the_seeds()).await;
        let r = import(&server, 200).send().await.unwrap();
        assert_eq!(r.status(), 200, "the retry imports");
        assert_eq!(imported(&server).await, names(0..200));
    }

    #[tokio::test]
    async fn a_vault_import_failing_part_way_is_undone() {
        let bao = OpenBao::start();
        let site = Site::new(Some(&bao));
        // Fails after the 50th write, as if the 51st had failed.
        let server = site.start(Some("vault_import.write@50:fail"));
        seed(&server).await;
        let r = import(&server, 100).send().await.unwrap();
        assert_eq!(r.status(), 503);
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"]["code"], "unavailable", "{body}");
        let log = server.log();
        assert_eq!(
            log.matches("fault point vault_import.write reached")
                .count(),
            1
        );
        // The 50 written are put back: the ten that existed hold their old values again, the
        // forty new names are deleted; the fifty after them were never written.
        assert!(!log.contains("could not undo a partial import"), "{log}");
        assert_imp_secrets(&server, &the_seeds()).await;
    }

    #[tokio::test]
    async fn a_vault_import_whose_undo_fails_keeps_that_entry_and_logs_it() {
        let bao = OpenBao::start();
        let site = Site::new(Some(&bao));
        // The import fails after 50 writes; the third step of its undo (IMP_002, which existed
        // before) fails too.
        let server = site.start(Some("vault_import.write@50:fail,vault_import.undo@3:fail"));
        seed(&server).await;
        let r = import(&server, 100).send().await.unwrap();
        // The caller hears only `unavailable`, as for a clean undo.
        assert_eq!(r.status(), 503);
        let log = server.log();
        let undo_failures: Vec<&str> = log
            .lines()
            .filter(|l| l.contains("could not undo a partial import"))
            .collect();
        assert_eq!(undo_failures.len(), 1, "{undo_failures:?}");
        assert!(undo_failures[0].contains("IMP_002"), "{undo_failures:?}");
        // IMP_002 keeps the imported value, its old one lost; everything else is put back.
        let mut expected = the_seeds();
        expected[2].1 = new_value(2);
        assert_imp_secrets(&server, &expected).await;
    }

    /// The import journals left in Vault under the site's prefix.
    fn journals(bao: &OpenBao, site: &Site) -> String {
        let prefix = &site.vault.as_ref().unwrap().1;
        let (_, out, _) =
            bao.try_cli(&["kv", "list", "-mount=secret", &format!("{prefix}/_imports")]);
        out
    }

    #[tokio::test]
    async fn a_crash_part_way_through_a_vault_import_is_undone_at_the_next_start() {
        let bao = OpenBao::start();
        let site = Site::new(Some(&bao));
        let server = site.start(Some("vault_import.write@50"));
        seed(&server).await;
        dies_during(import(&server, 100)).await;
        assert_crashed_at(server, "vault_import.write");
        // The positive control: the crash left half an import, and its journal, in Vault.
        let (_, partial, _) = bao.try_cli(&[
            "kv",
            "get",
            "-mount=secret",
            "-field=value",
            &format!(
                "{}/projects/acme/shared/{}",
                site.vault.as_ref().unwrap().1,
                name(0)
            ),
        ]);
        assert_eq!(partial.trim(), new_value(0));
        assert!(!journals(&bao, &site).trim().is_empty());
        // All or nothing across the crash: the next start puts back what the import wrote.
        let server = site.start(None);
        assert_imp_secrets(&server, &the_seeds()).await;
        assert!(
            server
                .log()
                .contains("an import interrupted by a crash was undone"),
            "{}",
            server.log()
        );
        assert!(
            journals(&bao, &site).trim().is_empty(),
            "the journal is gone"
        );
        let r = import(&server, 100).send().await.unwrap();
        assert_eq!(r.status(), 200, "the retry imports");
        assert_eq!(imported(&server).await, names(0..100));
        assert!(journals(&bao, &site).trim().is_empty());
    }

    #[tokio::test]
    async fn a_crash_after_every_vault_import_write_keeps_the_import() {
        let bao = OpenBao::start();
        let site = Site::new(Some(&bao));
        let server = site.start(Some("vault_import.done"));
        seed(&server).await;
        dies_during(import(&server, 100)).await;
        assert_crashed_at(server, "vault_import.done");
        // Every entry was written before the crash: the import is complete, and kept.
        let server = site.start(None);
        let expected: Vec<(usize, String)> = (0..100).map(|i| (i, new_value(i))).collect();
        assert_imp_secrets(&server, &expected).await;
        assert!(
            journals(&bao, &site).trim().is_empty(),
            "the journal is gone"
        );
    }
}
