//! The Rust guest SDK for Edgeward functions.
//!
//! A function is a `wasm32-wasip2` component that handles one HTTP request per instance and may
//! read secrets the host resolves for it. About ten lines:
//!
//! ```no_run
//! use edgeward_sdk::{Request, Response};
//!
//! fn handle(req: Request) -> Response {
//!     match edgeward_sdk::secrets::get("GREETING") {
//!         Ok(Some(secret)) => Response::text(200, format!("found in {} scope", secret.scope())),
//!         Ok(None) => Response::text(200, format!("hello from {}", req.path())),
//!         Err(e) => Response::text(503, format!("secrets: {e}")),
//!     }
//! }
//!
//! edgeward_sdk::handler!(handle);
//! ```
//!
//! Build it with `cargo build --target wasm32-wasip2 --release` (crate type `cdylib`) and deploy
//! the `.wasm` with `edgeward deploy project/package file.wasm`.

mod http;
pub mod secrets;

pub use http::{Fetched, Outgoing, Request, Response, fetch, send};

/// Raw bindings to the `edgeward:platform/function` world (wasi:http plus secrets). The stable
/// API is the rest of this crate; this module is for what it does not cover yet.
#[allow(missing_docs, clippy::all, unsafe_code)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "wit",
        world: "edgeward:platform/function",
        generate_all,
        pub_export_macro: true,
        export_macro_name: "__export_function_world",
        default_bindings_module: "edgeward_sdk::bindings",
    });
}

#[doc(hidden)]
pub use http::run as __run;

/// Exports `handler` (a `fn(Request) -> Response`) as the component's
/// `wasi:http/incoming-handler`.
#[macro_export]
macro_rules! handler {
    ($handler:path) => {
        struct __EdgewardHandler;

        impl $crate::bindings::exports::wasi::http::incoming_handler::Guest for __EdgewardHandler {
            fn handle(
                request: $crate::bindings::wasi::http::types::IncomingRequest,
                response_out: $crate::bindings::wasi::http::types::ResponseOutparam,
            ) {
                $crate::__run(request, response_out, $handler)
            }
        }

        $crate::bindings::__export_function_world!(__EdgewardHandler with_types_in $crate::bindings);
    };
}

/// Exports `handler` (a `fn(IncomingRequest, ResponseOutparam)` over the raw `wasi:http`
/// resources) as the component's `wasi:http/incoming-handler`, for functions that stream.
#[macro_export]
macro_rules! raw_handler {
    ($handler:path) => {
        struct __EdgewardRawHandler;

        impl $crate::bindings::exports::wasi::http::incoming_handler::Guest for __EdgewardRawHandler {
            fn handle(
                request: $crate::bindings::wasi::http::types::IncomingRequest,
                response_out: $crate::bindings::wasi::http::types::ResponseOutparam,
            ) {
                $handler(request, response_out)
            }
        }

        $crate::bindings::__export_function_world!(__EdgewardRawHandler with_types_in $crate::bindings);
    };
}
