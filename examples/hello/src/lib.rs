//! The smallest Edgeward function: answers every request with a greeting.

use edgeward_sdk::{Request, Response};

fn handle(req: Request) -> Response {
    Response::text(
        200,
        format!("Hello from Edgeward! You asked for {}\n", req.path()),
    )
}

edgeward_sdk::handler!(handle);
