//! The WebAssembly floor: the least a server can do to run a wasi-http component per request,
//! with the engine set up as Edgeward's (the same pooling allocator sizes, keep-resident and
//! pagemap settings, epoch interruption ticking every millisecond) and the same threading
//! (one single-threaded runtime per CPU, each accepting and answering its own connections).
//! Per request: a fresh store and instance, the guest's handler called on a task of its own,
//! the response streamed back. No routing, no limits, no records, no secrets, no metrics.
//! `bench/run.sh` measures it beside Edgeward: what Edgeward spends over it is Edgeward's own,
//! what it spends over the hyper floor (`floor.rs`) is wasmtime's.
//!
//! ```sh
//! cargo run --release -p edgeward-bench --example wasm_floor -- 127.0.0.1:8099 hello.wasm
//! ```

#![allow(clippy::unwrap_used, clippy::expect_used)]

use hyper_util::rt::TokioIo;
use std::time::Duration;
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

struct State {
    table: ResourceTable,
    wasi: WasiCtx,
    http: WasiHttpCtx,
}

impl WasiView for State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for State {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: wasmtime_wasi_http::default_hooks(),
        }
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:0".into());
    let wasm = args.next().expect("usage: wasm_floor ADDR COMPONENT.wasm");

    // Edgeward's engine (host/src/runtime/mod.rs, the defaults of `edgeward serve`).
    let instances = 1000;
    let mut pool = PoolingAllocationConfig::default();
    pool.total_component_instances(instances)
        .total_core_instances(instances * 4)
        .total_memories(instances)
        .total_tables(instances * 2)
        .max_memory_size(1 << 30)
        .linear_memory_keep_resident(2 << 20)
        .table_keep_resident(512 << 10)
        .pagemap_scan(wasmtime::Enabled::Auto);
    let mut config = Config::new();
    config
        .epoch_interruption(true)
        .wasm_component_model(true)
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    let engine = Engine::new(&config).expect("engine");
    let mut linker = Linker::<State>::new(&engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker).expect("wasi");
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker).expect("wasi-http");
    let component = Component::from_file(&engine, &wasm).expect("component");
    let pre = ProxyPre::new(linker.instantiate_pre(&component).expect("link")).expect("proxy");

    let ticker = engine.clone();
    std::thread::spawn(move || {
        loop {
            ticker.increment_epoch();
            std::thread::sleep(Duration::from_millis(1));
        }
    });

    let listener = std::net::TcpListener::bind(&addr).expect("bind");
    listener.set_nonblocking(true).expect("nonblocking");
    println!("listening: {}", listener.local_addr().expect("address"));
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads: Vec<_> = (0..workers)
        .map(|_| {
            let listener = listener.try_clone().expect("listener");
            let (engine, pre) = (engine.clone(), pre.clone());
            std::thread::spawn(move || worker(listener, engine, pre))
        })
        .collect();
    for t in threads {
        t.join().expect("worker");
    }
}

fn worker(listener: std::net::TcpListener, engine: Engine, pre: ProxyPre<State>) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            let (engine, pre) = (engine.clone(), pre.clone());
            tokio::spawn(async move {
                let service =
                    hyper::service::service_fn(move |req| handle(engine.clone(), pre.clone(), req));
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
}

async fn handle(
    engine: Engine,
    pre: ProxyPre<State>,
    req: hyper::Request<hyper::body::Incoming>,
) -> anyhow::Result<hyper::Response<wasmtime_wasi_http::p2::body::HyperOutgoingBody>> {
    let mut store = Store::new(
        &engine,
        State {
            table: ResourceTable::new(),
            wasi: WasiCtx::builder().build(),
            http: WasiHttpCtx::new(),
        },
    );
    store.set_epoch_deadline(1);
    store.epoch_deadline_async_yield_and_update(1);
    let (sender, receiver) = tokio::sync::oneshot::channel();
    let req = req.map(|body| {
        http_body_util::BodyExt::map_err(body, wasmtime_wasi_http::p2::hyper_request_error)
    });
    let req = store
        .data_mut()
        .http()
        .new_incoming_request(Scheme::Http, req)?;
    let out = store.data_mut().http().new_response_outparam(sender)?;
    tokio::spawn(async move {
        let proxy = pre.instantiate_async(&mut store).await?;
        proxy
            .wasi_http_incoming_handler()
            .call_handle(&mut store, req, out)
            .await
    });
    match receiver.await {
        Ok(Ok(response)) => Ok(response),
        Ok(Err(e)) => Err(anyhow::anyhow!("the guest answered an error: {e:?}")),
        Err(_) => Err(anyhow::anyhow!("the guest did not answer")),
    }
}
