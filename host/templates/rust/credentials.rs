//! __NAME__: an Edgeward function that calls an API with a credential the host attaches.

use edgeward_sdk::{Outgoing, Request, Response};

/// Allowed in edgeward.toml (`[outbound] hosts`), with the credential `API_KEY` declared for it.
const API: &str = "https://api.example.com/v1/me";

fn handle(_req: Request) -> Response {
    // The host puts `authorization: Bearer <API_KEY>` on the request as it leaves; the value
    // never enters this function.
    match Outgoing::get(API).with_credential("API_KEY").send() {
        Ok(answer) => Response::text(answer.status, answer.body),
        Err(e) => Response::text(502, format!("upstream: {e}\n")),
    }
}

edgeward_sdk::handler!(handle);
