//! End-to-end tests: the real `edgeward` binary, real guests built for wasm32-wasip2, real
//! sockets on loopback.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod harness;
pub mod pg;
mod pg_tls;

mod abuse;
mod api;
mod cli;
mod cluster;
mod confidentiality;
mod conformance;
mod consent;
mod console;
mod credentials;
mod identity;
mod image;
mod kubernetes;
mod limits;
mod load;
mod ops;
mod outages;
mod packages;
mod polyglot;
mod promises;
mod sandbox;
mod secrets;
mod seeds;
mod settings;
mod store;
