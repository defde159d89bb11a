//! Micro-benchmarks: `cargo bench -p edgeward-bench` (or `./bench/run.sh`, which runs them too).
//!
//! - `instantiate/*`: one instance from the version's cached `ProxyPre`, the per-request step
//!   (`hello`, `secrets`: the instantiation of each guest; `cycle`: hello's store,
//!   instantiation and dropping the store, which returns the slot to the pool).
//! - `request/*`: a whole execution in-process (no sockets): hello, and the secrets example
//!   with 0 and 3 cached gets.
//! - `guest_get/cached`: one cached `secrets::get` plus `reveal` from inside a guest, measured as
//!   (a request doing 64 gets − a request doing none) / 64.
//! - `resolve/*`: the host's resolution through the cache: a name in package scope (one
//!   lookup) and one only in platform scope (three lookups); and the same uncached against
//!   the embedded store (SQLite read and decryption).
//! - `vault/*`: a `get` against a real OpenBao dev server, cold (every call goes to OpenBao)
//!   and through the cache.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use criterion::{Criterion, criterion_group, criterion_main};
use edgeward_bench::*;
use edgeward_host::runtime::{CapturedOutput, Deployed, Runtime};
use edgeward_host::secrets::cache::CachedBackend;
use edgeward_host::secrets::guest::SecretsCtx;
use edgeward_host::secrets::vault::{VaultAuth, VaultBackend, VaultConfig};
use edgeward_host::secrets::{Owner, Resolver, SecretBackend, SecretValue, put};
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

struct Fixture {
    rt: tokio::runtime::Runtime,
    runtime: Runtime,
    backend: Arc<dyn SecretBackend>,
    embedded: Arc<dyn SecretBackend>,
    _dir: tempfile::TempDir,
}

fn fixture() -> Fixture {
    let SecretsFixture {
        rt,
        backend,
        embedded,
        dir,
    } = SecretsFixture::new();
    Fixture {
        rt,
        runtime: runtime(),
        backend,
        embedded,
        _dir: dir,
    }
}

fn benches(c: &mut Criterion) {
    edgeward_host::init_logging();
    let (hello_wasm, secrets_wasm) = guests();
    let f = fixture();
    let hello = deploy(&f.runtime, "hello", &hello_wasm);
    let secrets = deploy(&f.runtime, "secrets", &secrets_wasm);
    let resolver = |backend: &Arc<dyn SecretBackend>, package: &str| {
        Resolver::new(backend.clone(), name("bench"), name(package), None, None)
    };
    let store_for = |deployed: &Deployed| {
        f.runtime.new_store(
            deployed,
            SecretsCtx::new(resolver(&f.backend, "hello")),
            &[],
            (CapturedOutput::new(1024), CapturedOutput::new(1024)),
            Instant::now() + Duration::from_secs(60),
        )
    };

    let mut g = c.benchmark_group("instantiate");
    for (label, deployed) in [("hello", &hello), ("secrets", &secrets)] {
        g.bench_function(label, |b| {
            b.iter_custom(|iters| {
                f.rt.block_on(async {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        let (mut store, _, _) = store_for(deployed);
                        let t = Instant::now();
                        let proxy = deployed.pre.instantiate_async(&mut store).await.unwrap();
                        total += t.elapsed();
                        let _ = black_box(proxy);
                    }
                    total
                })
            })
        });
    }
    g.bench_function("cycle", |b| {
        b.iter_custom(|iters| {
            f.rt.block_on(async {
                let t = Instant::now();
                for _ in 0..iters {
                    let (mut store, _, _) = store_for(&hello);
                    let proxy = hello.pre.instantiate_async(&mut store).await.unwrap();
                    let _ = black_box(proxy);
                    drop(store);
                }
                t.elapsed()
            })
        })
    });
    g.finish();

    let mut g = c.benchmark_group("request");
    let run = |deployed: &Arc<Deployed>, path: &str, iters: u64| {
        f.rt.block_on(async {
            let t = Instant::now();
            for _ in 0..iters {
                let (status, body) = request(&f.runtime, deployed, &f.backend, path).await;
                assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
                black_box(body);
            }
            t.elapsed()
        })
    };
    g.bench_function("hello", |b| b.iter_custom(|n| run(&hello, "/", n)));
    g.bench_function("secrets_0_gets", |b| {
        b.iter_custom(|n| run(&secrets, "/?names=", n))
    });
    g.bench_function("secrets_3_gets", |b| {
        b.iter_custom(|n| run(&secrets, "/?names=S_A,S_B,S_C", n))
    });
    g.finish();

    let many = format!("/?names={}", vec!["S_A"; 64].join(","));
    let (_, body) =
        f.rt.block_on(request(&f.runtime, &secrets, &f.backend, &many));
    assert_eq!(
        &body[..],
        br#"{"found":64}"#,
        "the 64-get request must find them all"
    );
    let mut g = c.benchmark_group("guest_get");
    g.bench_function("cached", |b| {
        b.iter_custom(|n| {
            let with = run(&secrets, &many, n);
            let without = run(&secrets, "/?names=", n);
            with.saturating_sub(without) / 64
        })
    });
    g.finish();

    let mut g = c.benchmark_group("resolve");
    let resolve = |r: &Resolver, secret: &str, iters: u64| {
        f.rt.block_on(async {
            let t = Instant::now();
            for _ in 0..iters {
                black_box(r.get(secret).await.unwrap().unwrap());
            }
            t.elapsed()
        })
    };
    let cached = resolver(&f.backend, "secrets");
    let uncached = resolver(&f.embedded, "secrets");
    g.bench_function("cached_package_scope", |b| {
        b.iter_custom(|n| resolve(&cached, "S_A", n))
    });
    g.bench_function("cached_platform_scope", |b| {
        b.iter_custom(|n| resolve(&cached, "P_ONLY", n))
    });
    g.bench_function("embedded_package_scope", |b| {
        b.iter_custom(|n| resolve(&uncached, "S_A", n))
    });
    g.bench_function("embedded_platform_scope", |b| {
        b.iter_custom(|n| resolve(&uncached, "P_ONLY", n))
    });
    g.finish();

    let bao = OpenBao::start();
    let vault: Arc<dyn SecretBackend> = Arc::new(
        VaultBackend::new(VaultConfig {
            addr: bao.addr.clone(),
            auth: VaultAuth::Token(zeroize::Zeroizing::new(bao.token.clone())),
            mount: "secret".into(),
            prefix: "edgeward".into(),
            timeout: Duration::from_secs(5),
        })
        .unwrap(),
    );
    let vault_cached: Arc<dyn SecretBackend> = Arc::new(CachedBackend::new(
        vault.clone(),
        Duration::from_secs(3600),
        Duration::from_secs(5),
    ));
    let owner = Owner::Package(name("bench"), name("secrets"));
    f.rt.block_on(async {
        let value = SecretValue::text("vault-value".into());
        put(&*vault, &owner, &secret_name("S_A"), &value, "bench")
            .await
            .unwrap();
    });
    let mut g = c.benchmark_group("vault");
    let get = |backend: &Arc<dyn SecretBackend>, iters: u64| {
        f.rt.block_on(async {
            let t = Instant::now();
            for _ in 0..iters {
                black_box(
                    backend
                        .get(&owner, &secret_name("S_A"))
                        .await
                        .unwrap()
                        .unwrap(),
                );
            }
            t.elapsed()
        })
    };
    g.bench_function("cold_get", |b| b.iter_custom(|n| get(&vault, n)));
    g.bench_function("cached_get", |b| b.iter_custom(|n| get(&vault_cached, n)));
    g.finish();
}

criterion_group! {
    name = micro;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = benches
}
criterion_main!(micro);
