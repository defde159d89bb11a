//! Hostile: recurses until the stack overflows. The host must turn that into a trap.

use edgeward_sdk::{Request, Response};

#[allow(unconditional_recursion)] // the point: recursion without end
fn deeper(n: u64) -> u64 {
    let frame = std::hint::black_box([n; 16]);
    deeper(n + 1).wrapping_add(frame[n as usize % 16])
}

fn handle(_req: Request) -> Response {
    let depth = deeper(0);
    Response::text(200, format!("{depth}"))
}

edgeward_sdk::handler!(handle);
