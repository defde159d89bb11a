//! Fixtures for Edgeward's micro-benchmarks (`cargo bench -p edgeward-bench`): the guest
//! examples built for `wasm32-wasip2`, an engine with them deployed in-process, an embedded
//! secret store in a temporary directory, and a real OpenBao dev server.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use bytes::Bytes;
use edgeward_host::manifest::Manifest;
use edgeward_host::names::{Name, SecretName};
use edgeward_host::runtime::{Deployed, Runtime, RuntimeConfig, Trigger, execute};
use edgeward_host::secrets::cache::CachedBackend;
use edgeward_host::secrets::embedded::EmbeddedBackend;
use edgeward_host::secrets::{Owner, SecretBackend, SecretValue, put};
use edgeward_host::store::Store;
use http_body_util::{BodyExt, Empty};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Builds the `hello` and `secrets` examples (release, wasm32-wasip2) and returns their files.
pub fn guests() -> (Vec<u8>, Vec<u8>) {
    let root = repo_root();
    let target = root.join("target").join("guests");
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .current_dir(&root)
        .args(["build", "--quiet", "--release", "--target", "wasm32-wasip2"])
        .args(["-p", "hello", "-p", "secrets", "--target-dir"])
        .arg(&target)
        .status()
        .expect("run cargo to build the guests");
    assert!(status.success(), "building the guests failed");
    let dir = target.join("wasm32-wasip2").join("release");
    (
        std::fs::read(dir.join("hello.wasm")).unwrap(),
        std::fs::read(dir.join("secrets.wasm")).unwrap(),
    )
}

/// Builds one guest example (release, wasm32-wasip2) and returns its file.
pub fn guest(example: &str) -> Vec<u8> {
    let root = repo_root();
    let target = root.join("target").join("guests");
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .current_dir(&root)
        .args(["build", "--quiet", "--release", "--target", "wasm32-wasip2"])
        .args(["-p", example, "--target-dir"])
        .arg(&target)
        .status()
        .expect("run cargo to build the guest");
    assert!(status.success(), "building the guest {example} failed");
    std::fs::read(
        target
            .join("wasm32-wasip2")
            .join("release")
            .join(format!("{}.wasm", example.replace('-', "_"))),
    )
    .unwrap()
}

/// A name.
pub fn name(s: &str) -> Name {
    Name::parse("name", s).unwrap()
}

/// A secret name.
pub fn secret_name(s: &str) -> SecretName {
    SecretName::parse(s).unwrap()
}

/// Compiles `wasm` and deploys it as `bench/<package>` with a default manifest.
pub fn deploy(runtime: &Runtime, package: &str, wasm: &[u8]) -> Arc<Deployed> {
    deploy_with(runtime, package, wasm, Manifest::default())
}

/// Compiles `wasm` and deploys it as `bench/<package>` with `manifest`.
pub fn deploy_with(
    runtime: &Runtime,
    package: &str,
    wasm: &[u8],
    manifest: Manifest,
) -> Arc<Deployed> {
    let (_, pre) = runtime.compile(wasm).unwrap();
    Arc::new(runtime.deployed(
        name("bench"),
        name(package),
        1,
        package.into(),
        pre,
        manifest,
    ))
}

/// An embedded secret store in a temporary directory behind the cache (as `edgeward serve`
/// runs it), holding S_A, S_B and S_C in `bench/secrets`'s package scope and P_ONLY in platform
/// scope, and the runtime that filled it.
pub struct SecretsFixture {
    /// A current-thread runtime.
    pub rt: tokio::runtime::Runtime,
    /// The cache over the embedded store.
    pub backend: Arc<dyn SecretBackend>,
    /// The embedded store itself.
    pub embedded: Arc<dyn SecretBackend>,
    /// Where the store lives; removed on drop.
    pub dir: tempfile::TempDir,
}

impl SecretsFixture {
    /// Creates and fills the store.
    pub fn new() -> SecretsFixture {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("bench.db")).unwrap();
        let embedded: Arc<dyn SecretBackend> = Arc::new(EmbeddedBackend::new(store, &[7; 32]));
        let backend: Arc<dyn SecretBackend> = Arc::new(CachedBackend::new(
            embedded.clone(),
            Duration::from_secs(3600),
            Duration::from_secs(2),
        ));
        rt.block_on(async {
            let package = Owner::Package(name("bench"), name("secrets"));
            for n in ["S_A", "S_B", "S_C"] {
                let value = SecretValue::text(format!("value-of-{n}"));
                put(&*backend, &package, &secret_name(n), &value, "bench")
                    .await
                    .unwrap();
            }
            let value = SecretValue::text("platform-value".into());
            put(
                &*backend,
                &Owner::Platform,
                &secret_name("P_ONLY"),
                &value,
                "bench",
            )
            .await
            .unwrap();
        });
        SecretsFixture {
            rt,
            backend,
            embedded,
            dir,
        }
    }
}

impl Default for SecretsFixture {
    fn default() -> Self {
        SecretsFixture::new()
    }
}

/// The default engine. `EDGEWARD_BENCH_MAX_INSTANCES` shrinks its pool, which reserves about
/// 4 GiB of address space per slot: under `valgrind --tool=callgrind` (128 GiB of address space)
/// use 8. `EDGEWARD_BENCH_OUTBOUND_CA` (a PEM file) lets guests reach loopback upstreams
/// whose certificates that CA signed, as `serve --outbound-allow-private --outbound-ca` does.
pub fn runtime() -> Runtime {
    let mut config = RuntimeConfig::default();
    if let Some(n) = std::env::var("EDGEWARD_BENCH_MAX_INSTANCES")
        .ok()
        .and_then(|n| n.parse().ok())
    {
        config.max_instances = n;
    }
    if let Some(ca) = std::env::var_os("EDGEWARD_BENCH_OUTBOUND_CA") {
        config.outbound_allow_private = true;
        config.outbound_ca = edgeward_host::runtime::outbound::read_ca_bundle(ca.as_ref())
            .unwrap()
            .into();
    }
    Runtime::new(config).unwrap()
}

/// Runs one GET of `path_and_query` through `deployed`, in-process (no sockets), and returns
/// the status and body.
pub async fn request(
    runtime: &Runtime,
    deployed: &Arc<Deployed>,
    backend: &Arc<dyn SecretBackend>,
    path_and_query: &str,
) -> (u16, Bytes) {
    let req = hyper::Request::builder()
        .uri(format!("http://bench{path_and_query}"))
        .body(Empty::<Bytes>::new())
        .unwrap();
    let trigger = Trigger {
        id: "bench".into(),
        user: None,
        writer: None,
    };
    let resp = execute(
        runtime,
        deployed.clone(),
        backend.clone(),
        trigger,
        req,
        |_, _| {},
    )
    .await;
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, body)
}

/// An OpenBao dev server on a free loopback port, stopped on drop.
pub struct OpenBao {
    child: Child,
    /// Its address.
    pub addr: String,
    /// Its root token.
    pub token: String,
}

impl OpenBao {
    /// Starts `.venv/bin/bao server -dev` (installed by `./scripts/test` and `bench/run.sh`).
    pub fn start() -> OpenBao {
        let bao = repo_root().join(".venv").join("bin").join("bao");
        assert!(
            bao.exists(),
            "{} is missing: run ./scripts/test or ./bench/run.sh, which install OpenBao",
            bao.display()
        );
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let token = "edgeward-bench-root".to_string();
        let child = Command::new(&bao)
            .args(["server", "-dev", "-dev-no-store-token"])
            .arg(format!("-dev-root-token-id={token}"))
            .arg(format!("-dev-listen-address=127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start bao server -dev");
        let addr = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ok = Command::new(&bao)
                .arg("status")
                .env("VAULT_ADDR", &addr)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if ok {
                break;
            }
            assert!(Instant::now() < deadline, "OpenBao did not come up");
            std::thread::sleep(Duration::from_millis(100));
        }
        OpenBao { child, addr, token }
    }
}

impl Drop for OpenBao {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
