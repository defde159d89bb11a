//! Looks for what an earlier request left behind, to hold the promise that every request runs
//! in a fresh instance: the security tests deploy it (tests/e2e/sandbox.rs).
//!
//! - `?plant=MARKER` copies MARKER into a heap allocation that is never freed and into a
//!   static, then answers.
//! - `?scan=REKRAM` takes the marker **reversed**, so the marker itself never enters this
//!   instance's memory through the request, and compares every byte of linear memory (from
//!   address 1 to `memory.size`) against it read backwards. It answers
//!   `{"found": [addresses], "memory_bytes": N}`.
//! - Both at once (`?plant=M&scan=reverse(M)`) is the positive control: the scan must find
//!   the copies this same instance just planted.

use edgeward_sdk::{Request, Response};
use std::sync::Mutex;

/// A static the marker is planted in: it lives in linear memory's data area.
static PLANTED: Mutex<[u8; 64]> = Mutex::new([0; 64]);

fn handle(req: Request) -> Response {
    if let Some(marker) = req.query_param("plant") {
        let bytes = marker.as_bytes();
        let mut held = PLANTED.lock().unwrap_or_else(|e| e.into_inner());
        let n = bytes.len().min(held.len());
        held[..n].copy_from_slice(&bytes[..n]);
        // A heap copy nobody frees.
        std::mem::forget(bytes.to_vec().into_boxed_slice());
    }
    let Some(reversed) = req.query_param("scan") else {
        return Response::text(200, "planted\n");
    };
    let found = scan(reversed.as_bytes());
    let memory_bytes = core::arch::wasm32::memory_size(0) * 65536;
    Response::json(
        200,
        format!("{{\"found\":{found:?},\"memory_bytes\":{memory_bytes}}}"),
    )
}

/// Every address at which linear memory holds the reverse of `reversed`.
fn scan(reversed: &[u8]) -> Vec<usize> {
    let n = reversed.len();
    let size = core::arch::wasm32::memory_size(0) * 65536;
    let mut found = Vec::new();
    if n == 0 || size <= n {
        return found;
    }
    let Some(&first) = reversed.last() else {
        return found;
    };
    for at in 1..size - n {
        if byte(at) != first {
            continue;
        }
        if (1..n).all(|j| byte(at + j) == reversed[n - 1 - j]) {
            found.push(at);
        }
    }
    found
}

/// The byte at `address` of this instance's linear memory.
#[allow(unsafe_code)]
fn byte(address: usize) -> u8 {
    // SAFETY: on wasm32 every address from 1 below `memory.size` pages is in bounds of the
    // instance's one linear memory and readable; address 0 is never read. The read is
    // volatile so it is not optimised away or assumed about.
    unsafe { core::ptr::read_volatile(address as *const u8) }
}

edgeward_sdk::handler!(handle);
