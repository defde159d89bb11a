//! Hostile: allocates without end. The host must stop it at its memory limit.

use edgeward_sdk::{Request, Response};

fn handle(_req: Request) -> Response {
    let mut hoard: Vec<Vec<u8>> = Vec::new();
    loop {
        hoard.push(std::hint::black_box(vec![7u8; 1 << 20]));
    }
}

edgeward_sdk::handler!(handle);
