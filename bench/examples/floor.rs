//! The floor under every server in `bench/run.sh`: plain hyper on tokio's runtime answering
//! hello's bytes with no WebAssembly, no routing, no record. What it spends per request is
//! the kernel's TCP on loopback and HTTP/1.1 parsing and writing, which Edgeward and
//! `wasmtime serve` pay as well; the benchmark reports each server's CPU against it.
//!
//! ```sh
//! cargo run --release -p edgeward-bench --example floor -- 127.0.0.1:8099
//! ```

#![allow(clippy::unwrap_used, clippy::expect_used)]

use bytes::Bytes;
use http_body_util::Full;
use hyper_util::rt::TokioIo;
use std::convert::Infallible;

fn main() {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:0".into());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&addr).await.expect("bind");
        println!("listening: {}", listener.local_addr().expect("address"));
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                let service = hyper::service::service_fn(|req: hyper::Request<_>| async move {
                    let body = format!("Hello from Edgeward! You asked for {}\n", req.uri().path());
                    Ok::<_, Infallible>(
                        hyper::Response::builder()
                            .header("content-type", "text/plain; charset=utf-8")
                            .body(Full::new(Bytes::from(body)))
                            .expect("response"),
                    )
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
}
