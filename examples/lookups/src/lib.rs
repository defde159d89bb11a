//! hello, plus the secret lookups a request names: `?names=A,B,C` reads each value with
//! `secrets::value` (one host call each) and answers how many were found. The benchmarks'
//! measure of what lookups cost over hello, with no other guest code in the way.

use edgeward_sdk::secrets;
use edgeward_sdk::{Request, Response};

fn handle(req: Request) -> Response {
    let mut found = 0;
    for name in req.query_param("names").unwrap_or_default().split(',') {
        match secrets::value(name) {
            Ok(Some(value)) => found += usize::from(!value.expose().is_empty()),
            Ok(None) => {}
            Err(e) => return Response::text(500, format!("{}\n", e.code())),
        }
    }
    Response::json(200, format!("{{\"found\":{found}}}"))
}

edgeward_sdk::handler!(handle);
