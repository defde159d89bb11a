//! __NAME__: an Edgeward function.

use edgeward_sdk::{Request, Response};

fn handle(req: Request) -> Response {
    Response::text(200, format!("Hello from __NAME__! You asked for {}\n", req.path()))
}

edgeward_sdk::handler!(handle);
