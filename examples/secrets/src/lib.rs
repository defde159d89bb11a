//! Reads the secret named by `?name=` and answers which scope it came from (for tests).
//! `?set=NAME&scope=S&value=V` and `?delete=NAME&scope=S` write (with `write-secrets` granted).
//!
//! `?scope=package|project|platform|user` reads one scope with `get_from`; `?reveal=1` also
//! returns the value (a test fixture: real functions should not echo secrets); `?list=1` lists
//! the names this package may read; `?names=A,B,C` resolves several and counts them (for
//! benchmarks); `?print=1` writes the value to stdout in two pieces and
//! to stderr whole (for the masking tests); `?split=1` writes its first half to stdout and the
//! rest to stderr; `?forms=1` prints every leaf of the value raw, JSON-escaped and with
//! `{:?}`; `?field=F` returns field `F` of a multi-field value; `?log_body=1` only *uses* the secret and logs the request body to stdout (what an
//! attacker who can send requests controls); `?names=` with `&print=1` prints every value;
//! `?values=A,B,C` the same through `secrets::value` (one host call per lookup).

use edgeward_sdk::secrets::{self, Scope};
use edgeward_sdk::{Request, Response};
use serde_json::json;

fn handle(req: Request) -> Response {
    if let Some(cookie) = req.query_param("set_cookie") {
        return Response::text(200, "cookie\n").with_header("set-cookie", cookie);
    }
    // Writes: `?set=NAME&scope=S&value=V` (`&fields=1`: V is a JSON object; `&value_len=N`:
    // N bytes of 'x'; `&repeat=N`: N times), `?delete=NAME&scope=S`.
    if let Some(name) = req.query_param("set").or_else(|| req.query_param("delete")) {
        let scope = req.query_param("scope").unwrap_or_default();
        let Some(scope) = parse_scope(&scope) else {
            return Response::text(400, format!("unknown scope {scope:?}\n"));
        };
        let result = if req.query_param("set").is_some() {
            let value = match req.query_param("value_len") {
                Some(n) => "x".repeat(n.parse().unwrap_or(0)),
                None => req.query_param("value").unwrap_or_default(),
            };
            // `&repeat=N`: the same write N times (a guest looping on a refused write).
            let repeat: usize = req
                .query_param("repeat")
                .and_then(|n| n.parse().ok())
                .unwrap_or(1);
            let mut last = Ok(json!({}));
            for _ in 0..repeat.max(1) {
                last = if req.query_param("fields").is_some() {
                    secrets::set_fields(scope, &name, &value).map(|v| json!({ "version": v }))
                } else {
                    secrets::set(scope, &name, &value).map(|v| json!({ "version": v }))
                };
            }
            last
        } else {
            secrets::delete(scope, &name).map(|existed| json!({ "deleted": existed }))
        };
        return match result {
            Ok(body) => Response::json(200, body.to_string()),
            Err(e) => Response::json(
                200,
                json!({ "error": e.code(), "message": e.to_string() }).to_string(),
            ),
        };
    }
    if req.query_param("list").is_some() {
        return match secrets::list() {
            Ok(names) => {
                let names: Vec<_> = names
                    .iter()
                    .map(|(scope, name)| json!({"scope": scope.as_str(), "name": name}))
                    .collect();
                Response::json(200, json!({ "secrets": names }).to_string())
            }
            Err(e) => error_response(&e),
        };
    }
    // Several lookups in one request (benchmarks): how many resolved. `?names=A,B,C` with
    // `get` + `reveal`, `?values=A,B,C` with `secrets::value` (one host call per lookup);
    // `&print=1` prints each value.
    let many = (req.query_param("values").map(|n| (n, true)))
        .or_else(|| req.query_param("names").map(|n| (n, false)));
    if let Some((names, one_call)) = many {
        let mut found = 0;
        let print = req.query_param("print").is_some();
        for name in names.split(',').filter(|n| !n.is_empty()) {
            let looked_up = if one_call {
                secrets::value(name)
            } else {
                secrets::get(name).map(|found| found.map(|secret| secret.reveal()))
            };
            match looked_up {
                Ok(Some(value)) => {
                    if print {
                        println!("{name}={}", value.expose());
                    }
                    found += usize::from(!value.expose().is_empty());
                }
                Ok(None) => {}
                Err(e) => return error_response(&e),
            }
        }
        return Response::json(200, format!("{{\"found\":{found}}}"));
    }
    let name = req.query_param("name").unwrap_or_default();
    let result = match req.query_param("scope").as_deref() {
        None => secrets::get(&name),
        Some(scope) => match parse_scope(scope) {
            Some(scope) => secrets::get_from(scope, &name),
            None => return Response::text(400, format!("unknown scope {scope:?}\n")),
        },
    };
    match result {
        Ok(Some(secret)) => {
            let mut body = json!({
                "found": true,
                "name": secret.name(),
                "scope": secret.scope().as_str(),
                "version": secret.version(),
            });
            if req.query_param("log_body").is_some() {
                // Uses the secret (as an API client would) without printing it, then logs
                // the caller's request body.
                let _used = secret.reveal().expose().len();
                print!("{}", String::from_utf8_lossy(req.body()));
                let _ = std::io::Write::flush(&mut std::io::stdout());
            }
            if req.query_param("split").is_some() {
                let value = secret.reveal();
                let text = value.expose();
                let (a, b) = text.split_at(text.len() / 2);
                print!("{a}");
                let _ = std::io::Write::flush(&mut std::io::stdout());
                eprint!("{b}");
            }
            if req.query_param("forms").is_some() {
                let value = secret.reveal();
                let text = value.expose().to_string();
                println!("whole-json={}", json!(text));
                println!("whole-debug={text:?}");
                if let Ok(doc) = serde_json::from_str::<serde_json::Value>(&text) {
                    let mut leaves = Vec::new();
                    collect_leaves(&doc, &mut leaves);
                    for leaf in leaves {
                        println!("leaf-raw={leaf}");
                        println!("leaf-json={}", json!(leaf));
                        println!("leaf-debug={leaf:?}");
                    }
                }
            }
            if req.query_param("hex").is_some() {
                let value = secret.reveal();
                let hex: String = value.expose().bytes().map(|b| format!("{b:02x}")).collect();
                println!("{hex}");
            }
            if req.query_param("reverse").is_some() {
                let value = secret.reveal();
                let reversed: String = value.expose().chars().rev().collect();
                println!("{reversed}");
            }
            if let Some(copy) = req.query_param("copy") {
                let value = secret.reveal();
                let reversed: String = value.expose().chars().rev().collect();
                body["copy"] = match secrets::set(Scope::Package, &copy, &reversed) {
                    Ok(v) => json!({ "version": v }),
                    Err(e) => json!({ "error": e.code(), "message": e.to_string() }),
                };
            }
            if req.query_param("print").is_some() {
                let value = secret.reveal();
                let text = value.expose();
                let (a, b) = text.split_at(text.len() / 2);
                print!("value: {a}");
                println!("{b} (end)");
                eprintln!("stderr sees {text}");
            }
            if let Some(field) = req.query_param("field") {
                // One field, without parsing the JSON (null: none).
                body["field"] = json!(secret.field(&field).map(|v| v.expose().to_string()));
            }
            if req.query_param("reveal").is_some() {
                let value = secret.reveal();
                body["value"] = json!(value.expose());
                body["object"] = json!(value.is_object());
            }
            Response::json(200, body.to_string())
        }
        Ok(None) => Response::json(200, json!({ "found": false, "name": name }).to_string()),
        Err(e) => error_response(&e),
    }
}

/// Every string (and number) leaf of a JSON value, through nested objects and arrays.
fn collect_leaves(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::String(s) => out.push(s.clone()),
        serde_json::Value::Number(n) => out.push(n.to_string()),
        serde_json::Value::Array(items) => items.iter().for_each(|i| collect_leaves(i, out)),
        serde_json::Value::Object(map) => map.values().for_each(|i| collect_leaves(i, out)),
        _ => {}
    }
}

fn parse_scope(s: &str) -> Option<Scope> {
    Some(match s {
        "package" => Scope::Package,
        "project" => Scope::Project,
        "platform" => Scope::Platform,
        "user" => Scope::User,
        _ => return None,
    })
}

fn error_response(e: &secrets::Error) -> Response {
    let status = if e.code() == "unavailable" { 503 } else { 200 };
    Response::json(
        status,
        json!({ "found": false, "error": e.code(), "message": e.to_string() }).to_string(),
    )
}

edgeward_sdk::handler!(handle);
