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

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use edgeward_bench::*;
use edgeward_host::runtime::{Deployed, Runtime};
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
