//! __NAME__: an Edgeward function that reads a secret.

use edgeward_sdk::{Request, Response, secrets};

fn handle(req: Request) -> Response {
    // Package, then project, then platform scope; only names edgeward.toml allows.
    match secrets::get("GREETING") {
        Ok(Some(greeting)) => Response::text(
            200,
            format!(
                "{} (GREETING from {} scope; you asked for {})\n",
                greeting.reveal().expose(),
                greeting.scope(),
                req.path()
            ),
        ),
        Ok(None) => Response::text(200, "no secret GREETING yet\n"),
        Err(e) => Response::text(503, format!("secrets: {e}\n")),
    }
}

edgeward_sdk::handler!(handle);
