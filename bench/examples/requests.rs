//! Runs N in-process requests through one guest, for profilers: instruction counts per request
//! under `valgrind --tool=callgrind`, where only [`run_requests`] is measured.
//!
//! ```sh
//! cargo build --release -p edgeward-bench --example requests
//! EDGEWARD_BENCH_MAX_INSTANCES=8 valgrind --tool=callgrind --toggle-collect='*run_requests*' \
//!     target/release/examples/requests secrets '/?names=S_A,S_B,S_C' 2000
//! ```
//!
//! The guest is `hello`, `secrets` or `lookups` (hello plus `secrets::value` lookups); the
//! package `secrets` (which `lookups` is deployed as too) has S_A, S_B and S_C in package
//! scope and P_ONLY in platform scope, in an embedded store behind the cache (as `edgeward
//! serve` has).
//!
//! `plain` and `cred` are `bench/credentials.sh`'s cases in-process: the `plain-credential`
//! guest, deployed with `API_KEY`'s value in its environment (`plain`: `put=bearer` sends it
//! itself) or declaring `API_KEY` as its credential for the upstream (`cred`: `put=bearer`
//! sends the placeholder and the host attaches the value), calling the upstream its path
//! names (`?url=https://localhost:PORT/…&put=…`);
//! run `examples/tls_upstream DIR` first and set `EDGEWARD_BENCH_OUTBOUND_CA=DIR/ca.pem`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use edgeward_bench::*;
use edgeward_host::manifest::Manifest;
use edgeward_host::runtime::{Deployed, Runtime};
use edgeward_host::secrets::{Owner, SecretValue, put};
use std::sync::Arc;
use std::time::Instant;

struct Target<'a> {
    fixture: &'a SecretsFixture,
    runtime: &'a Runtime,
    deployed: &'a Arc<Deployed>,
    path: &'a str,
}

async fn one(t: &Target<'_>) {
    let (status, body) = request(t.runtime, t.deployed, &t.fixture.backend, t.path).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
}

/// What callgrind measures (`--toggle-collect='*run_requests*'`). The warm-up in `main` does
/// not go through here, so the compiler cannot fold the two together.
#[inline(never)]
fn run_requests(t: &Target<'_>, n: u32) {
    t.fixture.rt.block_on(async {
        for _ in 0..n {
            one(t).await;
        }
    });
}

/// The credential's value (`bench/credentials.sh`'s).
const VALUE: &str = "sk_live_51PqX1bLkdIwHu7ixBenchmarkValue0123456789";

/// The `plain-credential` guest deployed as `bench/plain` (may call the upstream of `path`)
/// or `bench/cred` (declares `API_KEY`, in project scope, as its credential for it).
fn outbound(
    runtime: &Runtime,
    fixture: &SecretsFixture,
    package: &str,
    path: &str,
) -> Arc<Deployed> {
    let host = path
        .split("url=https://")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .expect("the path names an upstream: ?url=https://localhost:PORT/...");
    // Without a credential the guest sends the same header itself: KEY holds the value (the
    // secret bound into its environment, as a function without credentials would do).
    let mut manifest =
        format!("[env]\nKEY = \"secret:API_KEY\"\n[outbound]\nhosts = [\"{host}\"]\n");
    let value = SecretValue::text(VALUE.into());
    fixture
        .rt
        .block_on(put(
            &*fixture.backend,
            &Owner::Project(name("bench")),
            &secret_name("API_KEY"),
            &value,
            "bench",
        ))
        .unwrap();
    if package == "cred" {
        manifest = format!(
            "[env]\nKEY = \"credential:API_KEY\"\n[outbound]\nhosts = [\"{host}\"]\n\
             [[outbound.credentials]]\nsecret = \"API_KEY\"\nhosts = [\"{host}\"]\n"
        );
    }
    let manifest = Manifest::parse(manifest.as_bytes()).unwrap();
    deploy_with(
        runtime,
        package,
        &edgeward_bench::guest("plain-credential"),
        manifest,
    )
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, guest, path, n] = &args[..] else {
        panic!("usage: requests hello|secrets|lookups PATH N");
    };
    let n: u32 = n.parse().expect("N is a number");
    edgeward_host::init_logging();
    // What `serve --metrics-listen` adds: a recorder, before any handle is made.
    if std::env::var_os("EDGEWARD_BENCH_METRICS").is_some() {
        edgeward_host::metrics::install().expect("metrics recorder");
    }
    let (hello_wasm, secrets_wasm) = guests();
    let fixture = SecretsFixture::new();
    let runtime = runtime();
    let deployed = match guest.as_str() {
        "hello" => deploy(&runtime, "hello", &hello_wasm),
        "secrets" => deploy(&runtime, "secrets", &secrets_wasm),
        // hello plus `secrets::value` lookups, under the package that holds S_A, S_B and S_C.
        "lookups" => deploy(&runtime, "secrets", &edgeward_bench::guest("lookups")),
        "plain" | "cred" => outbound(&runtime, &fixture, guest, path),
        other => panic!("unknown guest {other}"),
    };
    let target = Target {
        fixture: &fixture,
        runtime: &runtime,
        deployed: &deployed,
        path,
    };
    // Fill the cache and the pool, outside what is measured.
    fixture.rt.block_on(async {
        for _ in 0..10 {
            one(&target).await;
        }
    });
    let t = Instant::now();
    run_requests(&target, n);
    let per = t.elapsed() / n;
    println!("{guest} {path}: {n} requests, {per:?} each");
}
