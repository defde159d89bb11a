//! TLS to PostgreSQL: a server with `ssl = on` that accepts TCP clients over TLS only, its
//! certificate (for `db.edgeward.test`) signed by a throw-away CA made here. Every `sslmode`
//! a managed service's URL may carry, with the CA from the URL (`sslrootcert`) or from
//! `--store-ca`; the refusals name their cause and the fix, never the URL's password.

use crate::harness::{Options, Server, TEST_MASTER_KEY, admin_init, cleared};
use crate::pg::Postgres;
use edgeward_host::store::{PgOptions, Store};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The name in the server's certificate; the tests reach it through `hostaddr=127.0.0.1`.
const HOST: &str = "db.edgeward.test";
/// A password in every URL (trust authentication ignores it): it must appear in no error.
const PASSWORD: &str = "pw-marker-pgtls-5521";

/// A CA and a server certificate it signed, as PEM files; and a second CA that signed nothing.
struct Pki {
    dir: tempfile::TempDir,
    cert: String,
    key: String,
}

impl Pki {
    fn new() -> Pki {
        use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
        let ca = |name: &str| {
            let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            params
                .distinguished_name
                .push(rcgen::DnType::CommonName, name);
            CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap()
        };
        let (right, wrong) = (ca("edgeward test store CA"), ca("another CA"));
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(vec![HOST.to_string()])
            .unwrap()
            .signed_by(&key, &right)
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ca.pem"), right.pem()).unwrap();
        std::fs::write(dir.path().join("wrong-ca.pem"), wrong.pem()).unwrap();
        Pki {
            dir,
            cert: cert.pem(),
            key: key.serialize_pem(),
        }
    }

    fn ca(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    fn wrong_ca(&self) -> PathBuf {
        self.dir.path().join("wrong-ca.pem")
    }
}

/// A URL of `database` on `pg`: by the certificate's name (reached at 127.0.0.1) or by address.
fn url(pg: &Postgres, database: &str, by_name: bool, query: &str) -> String {
    let host = if by_name { HOST } else { "127.0.0.1" };
    let addr = if by_name { "hostaddr=127.0.0.1&" } else { "" };
    format!(
        "postgres://edgeward:{PASSWORD}@{host}:{}/{database}?{addr}{query}",
        pg.port()
    )
}

/// The name of the database a `create_database` URL points at.
fn database_of(url: &str) -> String {
    url.rsplit('/').next().unwrap().to_string()
}

/// Runs `edgeward serve` on `store`, which must fail; returns what it printed on stderr.
fn serve_fails(store: &str, extra: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let mut child = cleared(Command::new(env!("CARGO_BIN_EXE_edgeward")))
        .arg("serve")
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .args(["--listen", "127.0.0.1:0", "--api-listen", "127.0.0.1:0"])
        .args(extra)
        .env("EDGEWARD_STORE", store)
        .env("EDGEWARD_MASTER_KEY", TEST_MASTER_KEY)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("edgeward serve started on {extra:?}, which it should refuse");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(!status.success(), "{stderr}");
    assert!(!stderr.contains(PASSWORD), "the password leaked: {stderr}");
    stderr
}

/// Connects through the library as a host does; the error text on failure.
async fn connect(store: &str, ca: Option<&Path>) -> Result<Store, String> {
    let options = PgOptions {
        ca: ca.map(Path::to_path_buf),
        ..PgOptions::default()
    };
    Store::connect_with(store, &options)
        .await
        .map_err(|e| e.to_string())
}

/// How many of the database's client connections use TLS, and how many do not.
fn connections_by_tls(pg: &Postgres, database: &str) -> (u64, u64) {
    let count = |ssl: bool| {
        pg.psql(
            &pg.url(),
            &format!(
                "SELECT count(*) FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid) \
                 WHERE a.datname = '{database}' AND a.application_name = 'edgeward' \
                 AND s.ssl = {ssl}"
            ),
        )
        .parse::<u64>()
        .unwrap()
    };
    (count(true), count(false))
}

#[tokio::test]
async fn verify_full_serves_over_tls_and_a_wrong_ca_host_or_mode_is_refused_clearly() {
    let pki = Pki::new();
    let pg = Postgres::start_tls(&pki.cert, &pki.key);
    let db = pg.create_database();
    let database = database_of(&db);
    let ca = pki.ca().display().to_string();

    // verify-full with the CA in the URL: the first admin; then a host with the CA from
    // --store-ca serves a function, every connection of it encrypted.
    let token_dir = tempfile::tempdir().unwrap();
    let token_file = token_dir.path().join("admin.token");
    admin_init(
        &url(
            &pg,
            &database,
            true,
            &format!("sslmode=verify-full&sslrootcert={ca}"),
        ),
        &token_file,
    );
    let server = Server::start_with(Options {
        store: Some(url(&pg, &database, true, "sslmode=verify-full")),
        admin_token: Some(std::fs::read_to_string(&token_file).unwrap()),
        extra_args: vec![
            "--store-ca".into(),
            ca.clone(),
            "--store-pool".into(),
            "3".into(),
            "--store-connect-timeout".into(),
            "2s".into(),
        ],
        ..Options::default()
    })
    .await;
    // The leak search at drop reads the database with pg_dump (libpq), given the CA too.
    let mut server = server;
    server.store = Some(url(
        &pg,
        &database,
        true,
        &format!("sslmode=verify-full&sslrootcert={ca}"),
    ));
    server.deploy("acme/hello", "hello").await;
    assert_eq!(server.get("/acme/hello").await.0, 200);
    let (tls, plain) = connections_by_tls(&pg, &database);
    assert!(tls >= 2, "the pool and the listener: {tls} over TLS");
    assert_eq!(plain, 0, "a connection without TLS");
    assert!(
        tls <= 4,
        "--store-pool 3 (and one listener) opened {tls} connections"
    );
    assert!(!server.log().contains(PASSWORD));

    // A CA that did not sign the server's certificate.
    let err = serve_fails(
        &url(&pg, &database, true, "sslmode=verify-full"),
        &["--store-ca", &pki.wrong_ca().display().to_string()],
    );
    assert!(
        err.contains("UnknownIssuer") && err.contains("not signed by the store's CA"),
        "{err}"
    );
    // The right CA, the wrong host name (the certificate names db.edgeward.test only).
    let err = serve_fails(
        &url(&pg, &database, false, &format!("sslrootcert={ca}")),
        &[],
    );
    assert!(
        err.contains("not valid for name") && err.contains("does not name the URL's host"),
        "{err}"
    );
    // ... which verify-ca, checking the CA only, accepts; and a wrong CA it still refuses.
    let store = connect(
        &url(&pg, &database, false, "sslmode=verify-ca"),
        Some(&pki.ca()),
    )
    .await;
    assert!(store.is_ok(), "{:?}", store.err());
    let err = match connect(
        &url(&pg, &database, false, "sslmode=verify-ca"),
        Some(&pki.wrong_ca()),
    )
    .await
    {
        Ok(_) => panic!("verify-ca accepted a certificate of another CA"),
        Err(e) => e,
    };
    assert!(err.contains("UnknownIssuer"), "{err}");
    // TLS off against a server that accepts TLS only.
    let err = serve_fails(&url(&pg, &database, false, "sslmode=disable"), &[]);
    assert!(
        err.contains("no encryption") && err.contains("accepts only TLS"),
        "{err}"
    );
    // require encrypts without a CA (no check: what the mode means), as does prefer, the
    // default without a CA.
    for query in ["sslmode=require", ""] {
        let store = connect(&url(&pg, &database, false, query), None).await;
        assert!(store.is_ok(), "{query}: {:?}", store.err());
    }
    // Settings that cannot work are refused at start, before any connection.
    for (query, extra, reason) in [
        (
            "sslmode=allow",
            &[][..],
            "sslmode=\"allow\" is not supported",
        ),
        (
            "sslmode=verify-full",
            &["--store-ca", "/nowhere/ca.pem"][..],
            "/nowhere/ca.pem",
        ),
        ("", &["--store-pool", "0"][..], "--store-pool"),
        (
            "",
            &["--store-connect-timeout", "0"][..],
            "at most 10 minutes",
        ),
    ] {
        let err = serve_fails(&url(&pg, &database, true, query), extra);
        assert!(err.contains(reason), "{query} {extra:?}: {err}");
    }
}

/// Without TLS on the server, `require` and `verify-full` refuse to go on in the clear;
/// `prefer` (the default) does.
#[tokio::test]
async fn a_server_without_tls_is_refused_when_the_url_requires_it() {
    let pg = Postgres::shared();
    let db = pg.create_database();
    let database = database_of(&db);
    for mode in ["require", "verify-full"] {
        let err = serve_fails(&url(pg, &database, false, &format!("sslmode={mode}")), &[]);
        assert!(err.contains("does not offer TLS"), "{mode}: {err}");
    }
    let store = connect(&url(pg, &database, false, ""), None).await;
    assert!(store.is_ok(), "{:?}", store.err());
}
