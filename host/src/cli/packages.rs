//! `deploy`, `packages …`, `rollback` and `invoke`: a package's versions and a request to it.

use super::client::{
    Client, ClientError, confirm, emit, err, http_builder, json_mode, server_file, table,
};
use super::{ConnArgs, split_target};
use crate::api::model::{Package, PackageList};
use crate::code::ErrorCode;
use futures::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::Value;
use std::io::Read;
use std::path::Path;

/// `packages list`.
pub(super) async fn list(project: Option<String>, conn: ConnArgs) -> Result<(), ClientError> {
    let client = Client::from_args(&conn)?;
    let projects = match project {
        Some(p) => vec![p],
        None => {
            let body = client
                .send(client.request(reqwest::Method::GET, "/v1/projects"))
                .await?;
            body["projects"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|p| p["name"].as_str().map(str::to_string))
                .collect()
        }
    };
    // Everything is fetched before the header is printed: an error (a project that
    // does not exist) comes alone, not under a table's header.
    let mut lists = Vec::new();
    for project in projects {
        let list: PackageList = client
            .send_as(client.request(
                reqwest::Method::GET,
                &format!("/v1/projects/{project}/packages"),
            ))
            .await?;
        lists.push(list);
    }
    if json_mode() {
        emit(&serde_json::json!({ "projects": lists }));
        return Ok(());
    }
    let rows = lists
        .into_iter()
        .flat_map(|l| {
            let project = l.project;
            l.packages.into_iter().map(move |p| {
                vec![
                    format!("{project}/{}", p.name),
                    p.current_version.map_or("-".into(), |v| v.to_string()),
                    p.versions.to_string(),
                    p.created_at,
                ]
            })
        })
        .collect();
    println!(
        "{}",
        table(&["PACKAGE", "CURRENT", "VERSIONS", "CREATED"], rows)
    );
    Ok(())
}

/// `packages show`.
pub(super) async fn show(target: String, conn: ConnArgs) -> Result<(), ClientError> {
    let (project, package) = split_target(&target)?;
    let client = Client::from_args(&conn)?;
    let body: Package = client
        .send_as(client.request(
            reqwest::Method::GET,
            &format!("/v1/projects/{project}/packages/{package}"),
        ))
        .await?;
    if json_mode() {
        emit(&body);
        return Ok(());
    }
    let rows = body
        .versions
        .into_iter()
        .map(|v| {
            vec![
                format!("{}{}", v.version, if v.current { "*" } else { "" }),
                v.sha256,
                v.size.to_string(),
                v.created_at,
                v.created_by,
            ]
        })
        .collect();
    println!(
        "{}",
        table(&["VERSION", "SHA256", "SIZE", "CREATED", "BY"], rows)
    );
    println!("(* serving)");
    Ok(())
}

/// `packages delete`.
pub(super) async fn delete(target: String, yes: bool, conn: ConnArgs) -> Result<(), ClientError> {
    let (project, package) = split_target(&target)?;
    confirm(
        yes,
        &format!("delete {project}/{package} and all its versions?"),
    )?;
    let client = Client::from_args(&conn)?;
    client
        .send(client.request(
            reqwest::Method::DELETE,
            &format!("/v1/projects/{project}/packages/{package}"),
        ))
        .await?;
    if json_mode() {
        emit(&serde_json::json!({ "deleted": format!("{project}/{package}") }));
    } else {
        println!("deleted {project}/{package}");
    }
    Ok(())
}

/// `rollback`.
pub(super) async fn rollback(
    target: String,
    to: Option<i64>,
    conn: ConnArgs,
) -> Result<(), ClientError> {
    let (project, package) = split_target(&target)?;
    let client = Client::from_args(&conn)?;
    let body = client
        .send(
            client
                .request(
                    reqwest::Method::POST,
                    &format!("/v1/projects/{project}/packages/{package}/rollback"),
                )
                .json(&crate::api::model::Rollback { version: to }),
        )
        .await?;
    if json_mode() {
        emit(&body);
    } else {
        println!(
            "{project}/{package} now serves version {}",
            body["version"].as_i64().unwrap_or(0)
        );
    }
    Ok(())
}

/// `--secret ENV=NAME` and `--env KEY=VALUE`, as a JSON object the server merges over the
/// manifest.
fn pairs(flag: &str, list: &[String]) -> Result<serde_json::Map<String, Value>, ClientError> {
    let mut map = serde_json::Map::new();
    for item in list {
        let (k, v) = item
            .split_once('=')
            .filter(|(k, _)| !k.is_empty())
            .ok_or_else(|| {
                err(
                    ErrorCode::BadEntry,
                    format!("{flag} {item:?}: write KEY=VALUE"),
                )
            })?;
        map.insert(k.to_string(), Value::String(v.to_string()));
    }
    Ok(map)
}

/// The files and flags a deploy sends beside the component.
pub(super) struct DeployFiles<'a> {
    /// The manifest's text (`--manifest`, the project file's, or empty for `--no-manifest`);
    /// none keeps the current version's.
    pub manifest: Option<Vec<u8>>,
    /// `--secrets`: a `secrets.json` of package secrets to set with this version.
    pub secrets: Option<&'a Path>,
    /// `--secret ENV=NAME`.
    pub bind: &'a [String],
    /// `--env KEY=VALUE`.
    pub env: &'a [String],
}

/// `deploy`: uploads a component (with a progress bar) as the package's next version.
pub(super) async fn deploy(
    client: &Client,
    target: &str,
    file: &Path,
    files: DeployFiles<'_>,
) -> Result<(), ClientError> {
    let DeployFiles {
        manifest,
        secrets,
        bind,
        env,
    } = files;
    let (project, package) = split_target(target)?;
    let bindings = pairs("--secret", bind)?;
    let literals = pairs("--env", env)?;
    let io =
        |path: &Path, e: std::io::Error| err(ErrorCode::Io, format!("{}: {e}", path.display()));
    let size = tokio::fs::metadata(file)
        .await
        .map_err(|e| io(file, e))?
        .len();
    let component = tokio::fs::File::open(file).await.map_err(|e| io(file, e))?;
    let manifest_text = manifest;
    let secrets_text = match secrets {
        Some(path) => Some(tokio::fs::read(path).await.map_err(|e| io(path, e))?),
        None => None,
    };

    let bar = upload_bar(size, file);
    let progress = bar.clone();
    let stream = tokio_util::io::ReaderStream::new(component).map(move |chunk| {
        if let Ok(bytes) = &chunk {
            progress.inc(bytes.len() as u64);
            if progress.position() >= size {
                progress.set_message("validating and compiling");
            }
        }
        chunk
    });
    let part =
        reqwest::multipart::Part::stream_with_length(reqwest::Body::wrap_stream(stream), size)
            .file_name("component.wasm")
            .mime_str("application/wasm")
            .map_err(|e| err(ErrorCode::Internal, e.to_string()))?;
    let mut form = reqwest::multipart::Form::new().part("component", part);
    if let Some(text) = manifest_text {
        form = form.part("manifest", reqwest::multipart::Part::bytes(text));
    }
    if let Some(text) = secrets_text {
        form = form.part("secrets", reqwest::multipart::Part::bytes(text));
    }
    if !bindings.is_empty() {
        form = form.part(
            "bindings",
            reqwest::multipart::Part::text(Value::Object(bindings).to_string()),
        );
    }
    if !literals.is_empty() {
        form = form.part(
            "env",
            reqwest::multipart::Part::text(Value::Object(literals).to_string()),
        );
    }
    let result = client
        .send(
            client
                .request(
                    reqwest::Method::POST,
                    &format!("/v1/projects/{project}/packages/{package}/versions"),
                )
                .multipart(form),
        )
        .await;
    bar.finish_and_clear();
    let body = result?;
    if json_mode() {
        emit(&body);
        return Ok(());
    }
    print_deployed(project, package, &body);
    Ok(())
}

/// The upload's progress bar; a script asking for JSON gets none.
fn upload_bar(size: u64, file: &Path) -> ProgressBar {
    let bar = if json_mode() {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(size)
    };
    bar.set_style(
        ProgressStyle::with_template("{msg} [{bar:30}] {bytes}/{total_bytes} ({bytes_per_sec})")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_message(format!("uploading {}", file.display()));
    bar
}

/// What a deploy did, for people: the version, what `secrets.json` set and removed, the notes.
fn print_deployed(project: &str, package: &str, body: &Value) {
    println!(
        "deployed {project}/{package} version {} (sha256 {}, {} bytes)",
        body["version"].as_i64().unwrap_or(0),
        body["sha256"].as_str().unwrap_or_default(),
        body["size"].as_u64().unwrap_or(0)
    );
    let names = |key: &str| -> Vec<String> {
        body[key]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|n| n.as_str().map(str::to_string))
            .collect()
    };
    let (set, removed) = (names("secrets_set"), names("secrets_removed"));
    if !set.is_empty() {
        println!("secrets.json set package secrets: {}", set.join(", "));
    }
    if !removed.is_empty() {
        println!(
            "removed package secrets the previous --secrets set and this one leaves out: {}",
            removed.join(", ")
        );
    }
    if let Some(version) = body["manifest_kept_from"].as_i64() {
        println!("manifest: kept from version {version} (--no-manifest for the defaults)");
    }
    for notice in body["notices"].as_array().into_iter().flatten() {
        eprintln!("note: {}", notice.as_str().unwrap_or_default());
    }
}

/// `invoke`'s request: what to send to the function.
pub(super) struct Invocation<'a> {
    /// The path under the package (default `/`).
    pub path: Option<String>,
    /// The HTTP method.
    pub method: &'a str,
    /// `-d`: the body, `@FILE` or `@-` for stdin.
    pub data: Option<String>,
    /// `-H 'Name: value'`.
    pub headers: &'a [String],
    /// `-i`: print the status and headers too.
    pub include: bool,
    /// `--url`: the data plane's address.
    pub url: Option<String>,
}

/// The data plane's address: `--url`, else the local server's, else the default.
fn data_plane_url(url: Option<String>, conn: &ConnArgs) -> String {
    url.or_else(|| {
        server_file(&conn.data_dir)?
            .get("listen")?
            .as_str()
            .map(str::to_string)
    })
    .unwrap_or_else(|| "http://127.0.0.1:8080".into())
}

/// `-d`'s body: the text itself, `@FILE`, or `@-` for stdin.
fn read_data(data: String) -> Result<Vec<u8>, ClientError> {
    Ok(match data.strip_prefix('@') {
        Some("-") => {
            let mut buf = Vec::new();
            std::io::stdin()
                .read_to_end(&mut buf)
                .map_err(|e| err(ErrorCode::Io, format!("stdin: {e}")))?;
            buf
        }
        Some(file) => {
            std::fs::read(file).map_err(|e| err(ErrorCode::Io, format!("{file}: {e}")))?
        }
        None => data.into_bytes(),
    })
}

/// `invoke`: sends one request to a package through the data plane and prints the answer.
pub(super) async fn invoke(
    target: &str,
    request: Invocation<'_>,
    conn: &ConnArgs,
) -> Result<(), ClientError> {
    let Invocation {
        path,
        method,
        data,
        headers,
        include,
        url,
    } = request;
    let (project, package) = split_target(target)?;
    let base = data_plane_url(url, conn);
    let path = path.unwrap_or_else(|| "/".into());
    let path = if path.starts_with('/') {
        path
    } else {
        format!("/{path}")
    };
    let url = format!("{}/{project}/{package}{path}", base.trim_end_matches('/'));
    let method = reqwest::Method::from_bytes(method.to_ascii_uppercase().as_bytes())
        .map_err(|_| err(ErrorCode::BadEntry, format!("invalid method {method:?}")))?;
    let mut request = http_builder()
        .build()
        .map_err(|e| err(ErrorCode::Internal, e.to_string()))?
        .request(method, &url);
    // A token given for this call (`--token` or EDGEWARD_TOKEN) triggers the execution as its
    // user (their user-scope secrets); the admin token file is never sent to a function.
    if let Some(token) = &conn.token {
        request = request.bearer_auth(token);
    }
    for header in headers {
        let (name, value) = header.split_once(':').ok_or_else(|| {
            err(
                ErrorCode::BadEntry,
                format!("expected `Name: value`, got {header:?}"),
            )
        })?;
        request = request.header(name.trim(), value.trim());
    }
    if let Some(data) = data {
        request = request.body(read_data(data)?);
    }
    let response = request.send().await.map_err(|e| {
        err(
            ErrorCode::Unavailable,
            format!("cannot reach {url}: {e} (is `edgeward serve` running? set --url)"),
        )
    })?;
    let status = response.status();
    let head: Vec<(String, String)> = response
        .headers()
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("<binary>").to_string()))
        .collect();
    let body = response
        .bytes()
        .await
        .map_err(|e| err(ErrorCode::Unavailable, e.to_string()))?;
    if json_mode() {
        let headers: serde_json::Map<String, Value> = head
            .into_iter()
            .map(|(k, v)| (k, Value::String(v)))
            .collect();
        emit(&serde_json::json!({
            "status": status.as_u16(),
            "headers": headers,
            "body": String::from_utf8_lossy(&body),
        }));
    } else {
        if include {
            println!("{status}");
            for (name, value) in &head {
                println!("{name}: {value}");
            }
            println!();
        }
        use std::io::Write;
        let _ = std::io::stdout().write_all(&body);
    }
    if !status.is_success() {
        let parsed: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let code = parsed["error"]["code"].as_str().unwrap_or("http_error");
        return Err(ClientError::remote(
            code,
            format!("{url} answered {status}"),
        ));
    }
    Ok(())
}
