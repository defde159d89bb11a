//! Hostile: spins forever. The host must stop it at its time limit.

use edgeward_sdk::{Request, Response};

fn handle(_req: Request) -> Response {
    let mut n: u64 = 0;
    loop {
        n = std::hint::black_box(n.wrapping_add(1));
    }
}

edgeward_sdk::handler!(handle);
