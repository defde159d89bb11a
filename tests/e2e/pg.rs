//! A real PostgreSQL server for the tests of the Postgres backend: a fresh cluster made by
//! `initdb` in a temporary directory, run by `pg_ctl` on a free loopback port, with trust
//! authentication for the superuser `edgeward`.
//!
//! PostgreSQL refuses to run as root; when the tests do (as in CI), the server programs run
//! as the `postgres` system user of Debian's `postgresql` package, through `runuser`. Clients
//! (`psql`, `pg_isready`) always run as the test's own user.
//!
//! Most tests share one server ([`Postgres::shared`]), each in a database of its own
//! ([`Postgres::create_database`]); outage tests start a server of their own, which they may
//! stop and restart.

use crate::harness::{cleared, unique};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The superuser `initdb` creates; loopback connections as it need no password.
pub const USER: &str = "edgeward";

/// The system user the server runs as when the tests run as root.
const SYSTEM_USER: &str = "postgres";

/// How long a server may take to start, accept connections, or stop.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// Room for many Edgeward servers at once, each with a pool and a listener of its own.
const MAX_CONNECTIONS: u32 = 500;

/// A PostgreSQL server on `127.0.0.1:port`, its cluster in a temporary directory; stopped
/// (immediately) and deleted on drop.
pub struct Postgres {
    port: u16,
    /// Whether the server may be running (started, and not stopped since).
    running: bool,
    /// Holds `data/` (the cluster), `sock/` (the unix socket) and `server.log`.
    dir: tempfile::TempDir,
}

impl Postgres {
    /// Starts a fresh cluster: `initdb` into a temporary directory, then the server on a free
    /// loopback port; returns once it accepts connections.
    pub fn start() -> Postgres {
        Postgres::start_configured(None)
    }

    /// Starts a fresh cluster with `ssl = on`, serving `cert_pem` (signed by a CA of the
    /// test's) with `key_pem`, that accepts TCP connections over TLS only (`hostssl` alone in
    /// `pg_hba.conf`, as managed services do).
    pub fn start_tls(cert_pem: &str, key_pem: &str) -> Postgres {
        Postgres::start_configured(Some((cert_pem, key_pem)))
    }

    fn start_configured(tls: Option<(&str, &str)>) -> Postgres {
        let dir = tempfile::Builder::new()
            .prefix("edgeward-pg-")
            .tempdir_in(std::env::temp_dir())
            .expect("create a temporary directory for PostgreSQL");
        std::fs::create_dir(dir.path().join("sock")).expect("create the socket directory");
        if running_as_root() {
            // The server runs as `postgres`, and writes its cluster, socket and log here.
            let status = Command::new("chown")
                .arg("-R")
                .arg(format!("{SYSTEM_USER}:"))
                .arg(dir.path())
                .status()
                .expect("run chown");
            assert!(
                status.success(),
                "could not give {} to the {SYSTEM_USER} user (is Debian's postgresql package \
                 installed? run ./scripts/test)",
                dir.path().display()
            );
        }
        let mut pg = Postgres {
            port: 0,
            running: false,
            dir,
        };
        pg.initdb();
        if let Some((cert, key)) = tls {
            pg.configure_tls(cert, key);
        }
        // A port found free may be taken before the server binds it: then try another.
        let mut attempt = 0;
        loop {
            attempt += 1;
            pg.port = free_port();
            let log_before = pg.log().len();
            match pg.launch() {
                Ok(()) => return pg,
                Err(_) if attempt < 5 && pg.port_was_taken_since(log_before) => {
                    pg.stop_immediately();
                }
                Err(e) => panic!(
                    "could not start PostgreSQL on 127.0.0.1:{}: {e}\nserver log:\n{}",
                    pg.port,
                    pg.log_tail()
                ),
            }
        }
    }

    /// The server all tests of this process share, started on first use and stopped when
    /// the process exits. Give each test a database of its own with [`create_database`].
    ///
    /// [`create_database`]: Postgres::create_database
    pub fn shared() -> &'static Postgres {
        static SHARED: OnceLock<Postgres> = OnceLock::new();

        /// Statics are never dropped: stop the shared server and delete its cluster as the
        /// process exits (whether every test passed or not).
        extern "C" fn stop_shared() {
            // Nothing may unwind out of an `extern "C"` function.
            let _ = std::panic::catch_unwind(|| {
                if let Some(pg) = SHARED.get() {
                    pg.stop_immediately();
                    let _ = std::fs::remove_dir_all(pg.dir.path());
                }
            });
        }

        SHARED.get_or_init(|| {
            let pg = Postgres::start();
            // SAFETY: `stop_shared` is a plain function that lives as long as the process;
            // it runs once, at exit, after the tests, and only spawns `pg_ctl` and deletes
            // files.
            #[allow(unsafe_code)]
            let registered = unsafe { libc::atexit(stop_shared) };
            assert_eq!(registered, 0, "could not register the PostgreSQL cleanup");
            pg
        })
    }

    /// Creates a new empty database with a name no other test uses, and returns its URL:
    /// `postgres://edgeward@127.0.0.1:PORT/NAME`.
    pub fn create_database(&self) -> String {
        // `unique` gives lowercase letters, digits and dashes; PostgreSQL names want `_`.
        let name = unique("edgeward").replace('-', "_");
        self.psql(&self.url(), &format!("CREATE DATABASE \"{name}\""));
        format!("postgres://{USER}@127.0.0.1:{}/{name}", self.port)
    }

    /// The server's base URL: the `postgres` database, as `edgeward`.
    pub fn url(&self) -> String {
        format!("postgres://{USER}@127.0.0.1:{}/postgres", self.port)
    }

    /// The loopback port the server listens on (the same after a restart).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Runs `sql` with `psql` against `url` (one of this server's URLs); returns what it
    /// printed (unaligned, without headers, trimmed), panicking on failure.
    pub fn psql(&self, url: &str, sql: &str) -> String {
        self.try_psql(url, sql).unwrap_or_else(|e| {
            panic!(
                "psql {sql:?} on {url} failed: {e}\nserver log:\n{}",
                self.log_tail()
            )
        })
    }

    /// Runs `sql` with `psql` against `url`: what it printed, or its error.
    pub fn try_psql(&self, url: &str, sql: &str) -> Result<String, String> {
        let out = client("psql")
            .args([
                "-X",
                "-q",
                "-A",
                "-t",
                "-v",
                "ON_ERROR_STOP=1",
                "-d",
                url,
                "-c",
                sql,
            ])
            .env("PGCONNECT_TIMEOUT", "10")
            .output()
            .map_err(|e| format!("could not run psql: {e}"))?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
        }
    }

    /// Stops the server (fast shutdown: clients are disconnected), keeping its cluster; for
    /// outage tests. Connections to its port are refused until [`restart`].
    ///
    /// [`restart`]: Postgres::restart
    pub fn stop(&mut self) {
        if !self.running {
            return;
        }
        let out = self
            .pg_ctl()
            .args(["stop", "-w", "-m", "fast"])
            .output()
            .expect("run pg_ctl stop");
        assert!(
            out.status.success(),
            "pg_ctl stop failed: {}\nserver log:\n{}",
            output_text(&out),
            self.log_tail()
        );
        self.running = false;
    }

    /// Starts the server again (stopping it first if it runs) on the same port and cluster;
    /// returns once it accepts connections.
    pub fn restart(&mut self) {
        self.stop();
        if let Err(e) = self.launch() {
            panic!(
                "could not restart PostgreSQL on 127.0.0.1:{} (another process may have taken \
                 the port): {e}\nserver log:\n{}",
                self.port,
                self.log_tail()
            );
        }
    }

    /// Everything the server has logged, across restarts.
    pub fn log(&self) -> String {
        std::fs::read(self.log_path())
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
            .unwrap_or_default()
    }

    /// The end of the log, for panic messages.
    fn log_tail(&self) -> String {
        let log = self.log();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(100)..].join("\n")
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("server.log")
    }

    /// Makes the cluster: superuser `edgeward`, trust authentication, UTF-8, C locale.
    fn initdb(&self) {
        let out = server_tool(self.dir.path(), "initdb")
            .arg("-D")
            .arg(self.data_dir())
            .args([
                "-U",
                USER,
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ])
            .output()
            .expect("run initdb");
        assert!(
            out.status.success(),
            "initdb failed{}: {}",
            if running_as_root() {
                format!(
                    " (as root, it runs as {SYSTEM_USER}: every parent of {} must be \
                     traversable by that user; set TMPDIR to e.g. /tmp)",
                    self.dir.path().display()
                )
            } else {
                String::new()
            },
            output_text(&out)
        );
    }

    /// Puts the certificate and key in the cluster, turns `ssl` on, and lets TCP clients in
    /// over TLS only.
    fn configure_tls(&self, cert: &str, key: &str) {
        use std::io::Write as _;
        use std::os::unix::fs::OpenOptionsExt as _;
        let data = self.data_dir();
        let write = |name: &str, text: &str, append: bool| {
            let path = data.join(name);
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .append(append)
                .truncate(!append)
                .mode(0o600)
                .open(&path)
                .unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
            file.write_all(text.as_bytes()).unwrap();
            path
        };
        let files = [
            write("server.crt", cert, false),
            // PostgreSQL refuses a key that others may read.
            write("server.key", key, false),
            write("postgresql.conf", "\nssl = on\n", true),
            write(
                "pg_hba.conf",
                "local all all trust\nhostssl all all 127.0.0.1/32 trust\n\
                 hostssl all all ::1/128 trust\n",
                false,
            ),
        ];
        if running_as_root() {
            let status = Command::new("chown")
                .arg(format!("{SYSTEM_USER}:"))
                .args(&files)
                .status()
                .expect("run chown");
            assert!(
                status.success(),
                "could not give the TLS files to {SYSTEM_USER}"
            );
        }
    }

    /// `pg_ctl` for this cluster, waiting at most [`READY_TIMEOUT`].
    fn pg_ctl(&self) -> Command {
        let mut cmd = server_tool(self.dir.path(), "pg_ctl");
        cmd.arg("-D")
            .arg(self.data_dir())
            .arg("-t")
            .arg(READY_TIMEOUT.as_secs().to_string());
        cmd
    }

    /// Starts the server on `self.port` and waits until it accepts connections.
    fn launch(&mut self) -> Result<(), String> {
        let sock = self.dir.path().join("sock");
        let sock = sock.to_str().expect("a UTF-8 temporary directory");
        // `pg_ctl` hands these options to a shell.
        assert!(!sock.contains('\''), "a quote in the socket path {sock}");
        let options = format!(
            "-p {} -k '{sock}' -c listen_addresses=127.0.0.1 -c fsync=off \
             -c max_connections={MAX_CONNECTIONS} -c shared_buffers=32MB",
            self.port
        );
        // Even if `pg_ctl` gives up, the server may have started: let drop stop it.
        self.running = true;
        let out = self
            .pg_ctl()
            .args(["start", "-w", "-l"])
            .arg(self.log_path())
            .arg("-o")
            .arg(options)
            .output()
            .map_err(|e| format!("could not run pg_ctl: {e}"))?;
        if !out.status.success() {
            return Err(format!("pg_ctl start failed: {}", output_text(&out)));
        }
        self.wait_ready()
    }

    /// Polls `pg_isready` over TCP until the server accepts connections, or the deadline.
    fn wait_ready(&self) -> Result<(), String> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let ready = client("pg_isready")
                .args([
                    "-q",
                    "-h",
                    "127.0.0.1",
                    "-U",
                    USER,
                    "-d",
                    "postgres",
                    "-t",
                    "5",
                ])
                .arg("-p")
                .arg(self.port.to_string())
                .status()
                .is_ok_and(|s| s.success());
            if ready {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "not accepting connections on 127.0.0.1:{} after {READY_TIMEOUT:?}",
                    self.port
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Whether the server logged, after byte `from` of its log, that its port was in use.
    fn port_was_taken_since(&self, from: usize) -> bool {
        self.log()
            .get(from..)
            .is_some_and(|new| new.contains("could not bind IPv4 address"))
    }

    /// Stops the server at once (no checkpoint), ignoring every error.
    fn stop_immediately(&self) {
        let _ = self
            .pg_ctl()
            .args(["stop", "-w", "-m", "immediate"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        if self.running {
            self.stop_immediately();
        }
    }
}

/// The directory of PostgreSQL's programs: the newest of Debian's
/// `/usr/lib/postgresql/<major>/bin`, else what `pg_config --bindir` says.
pub fn bin_dir() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let debian = std::fs::read_dir("/usr/lib/postgresql")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|entry| {
                let major: u32 = entry.file_name().to_str()?.parse().ok()?;
                let bin = entry.path().join("bin");
                bin.join("initdb").is_file().then_some((major, bin))
            })
            .max_by_key(|(major, _)| *major)
            .map(|(_, bin)| bin);
        debian
            .or_else(|| {
                let out = Command::new("pg_config").arg("--bindir").output().ok()?;
                let bin = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
                (out.status.success() && bin.join("initdb").is_file()).then_some(bin)
            })
            .unwrap_or_else(|| {
                panic!(
                    "PostgreSQL's server programs (initdb, pg_ctl) are missing: run \
                     ./scripts/test, which installs Debian's postgresql package"
                )
            })
    })
}

fn running_as_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// A server program (`initdb`, `pg_ctl`) run in `cwd` with a cleared environment: as the
/// `postgres` user when the tests run as root, since PostgreSQL refuses to run as root.
fn server_tool(cwd: &Path, name: &str) -> Command {
    let program = bin_dir().join(name);
    let cmd = if running_as_root() {
        let runuser = ["/usr/sbin/runuser", "/sbin/runuser"]
            .into_iter()
            .find(|p| Path::new(p).is_file())
            .unwrap_or("runuser");
        let mut cmd = Command::new(runuser);
        cmd.args(["-u", SYSTEM_USER, "--"]).arg(program);
        cmd
    } else {
        Command::new(program)
    };
    let mut cmd = cleared(cmd);
    cmd.current_dir(cwd).stdin(Stdio::null());
    cmd
}

/// A client program (`psql`, `pg_isready`), run as ourselves with a cleared environment (no
/// `PGHOST`, `PGPASSWORD` or `~/.pgpass` of the developer's shell applies).
fn client(name: &str) -> Command {
    let mut cmd = cleared(Command::new(bin_dir().join(name)));
    cmd.stdin(Stdio::null());
    cmd
}

/// A loopback port nobody listened on a moment ago.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind a loopback port")
        .port()
}

fn output_text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The fixture itself: a cluster starts and makes databases; stopped, it refuses
/// connections; restarted, it is back on the same port with its data; the shared server is
/// one server.
#[test]
fn postgres_starts_stops_and_restarts_with_its_data() {
    let mut pg = Postgres::start();
    let url = pg.create_database();
    assert_ne!(url, pg.create_database(), "two databases with one name");
    pg.psql(
        &url,
        "CREATE TABLE t (v text); INSERT INTO t VALUES ('kept')",
    );

    pg.stop();
    assert!(
        pg.try_psql(&url, "SELECT 1").is_err(),
        "a stopped server answered"
    );
    pg.restart();
    assert_eq!(pg.psql(&url, "SELECT v FROM t"), "kept");
    assert!(
        pg.log().contains("received fast shutdown request"),
        "{}",
        pg.log()
    );

    let shared = Postgres::shared();
    assert!(std::ptr::eq(shared, Postgres::shared()));
    let url = shared.create_database();
    assert_eq!(shared.psql(&url, "SELECT current_user"), USER);
    assert_eq!(
        shared.psql(&shared.url(), "SHOW max_connections"),
        MAX_CONNECTIONS.to_string()
    );
}

/// Everything in the database at `url`, as `pg_dump --data-only` prints it (text, `bytea` in
/// hex), for the leak search.
pub fn dump(url: &str) -> String {
    let out = client("pg_dump")
        .args(["--data-only", "--no-owner", "-d", url])
        .env("PGCONNECT_TIMEOUT", "10")
        .output()
        .expect("run pg_dump");
    assert!(
        out.status.success(),
        "pg_dump {url} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
