//! Hostile: panics mid-request, after printing a line.

use edgeward_sdk::{Request, Response};

fn handle(req: Request) -> Response {
    println!("about to panic for {}", req.path());
    panic!("this function always panics");
}

edgeward_sdk::handler!(handle);
