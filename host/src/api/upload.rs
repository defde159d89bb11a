//! Uploading a package version: a raw component body, or `multipart/form-data` with a
//! `component` part and an optional `manifest` part.

use super::ApiError;
use super::policy::Caller;
use crate::app::App;
use crate::code::ErrorCode;
use crate::manifest::{MAX_MANIFEST_BYTES, Manifest};
use crate::names::Name;
use axum::extract::{Path, Request, State};
use axum::http::{StatusCode, header};
use axum::{Extension, Json};
use bytes::Bytes;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use serde_json::Value;
use std::sync::Arc;

pub(super) async fn upload_version(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    Path((project, package)): Path<(String, String)>,
    request: Request,
) -> Result<(StatusCode, Json<super::model::Deployed>), ApiError> {
    let project = Name::parse("project", &project)?;
    let package = Name::parse("package", &package)?;
    let limit = app.max_upload_bytes;
    let too_large = || {
        ApiError::too_large(format!(
            "the upload is larger than the limit of {limit} bytes (set --max-upload-bytes on \
             the server to change it)"
        ))
    };
    let multipart_boundary = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|ct| multer::parse_boundary(ct).ok());
    // Room for the manifest and multipart framing on top of the component itself.
    let body_limit = limit + MAX_MANIFEST_BYTES + 16 * 1024;
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > body_limit) {
        return Err(too_large());
    }
    let body = Limited::new(request.into_body(), body_limit)
        .collect()
        .await
        .map_err(|e| {
            if e.downcast_ref::<LengthLimitError>().is_some() {
                too_large()
            } else {
                ApiError::bad_entry(format!("could not read the upload: {e}"))
            }
        })?
        .to_bytes();

    let parts = match multipart_boundary {
        Some(boundary) => read_multipart(body, boundary).await?,
        None => Parts {
            component: body.to_vec(),
            manifest: None,
            secrets: None,
            bindings: None,
            env: None,
        },
    };
    let (component, manifest, secrets_json) = (parts.component, parts.manifest, parts.secrets);
    if component.len() > limit {
        return Err(too_large());
    }
    let manifest = match manifest {
        Some(text) => Manifest::parse(&text).map_err(|e| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                ErrorCode::BadManifest,
                e.0,
            )
        })?,
        None => Manifest::default(),
    };
    // Deploy-time bindings and literals (`deploy --secret ENV=NAME --env K=V`), merged over
    // the manifest's [env] and checked with it.
    let mut bound = Vec::new();
    let manifest = if parts.bindings.is_some() || parts.env.is_some() {
        let mut merged = manifest;
        for (k, v) in string_map("env", parts.env.as_deref().unwrap_or(b"{}"))? {
            // Literals only: a reference here would bind a secret past the check below.
            if v.starts_with("secret:") || v.starts_with("credential:") {
                return Err(ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    ErrorCode::BadManifest,
                    format!(
                        "`env`: {k} is a reference ({}…); `env` takes literals, bind secrets \
                         with `bindings` (deploy --secret {k}=NAME)",
                        v.split(':').next().unwrap_or_default()
                    ),
                ));
            }
            merged.env.vars.insert(k, v);
        }
        for (k, v) in string_map("bindings", parts.bindings.as_deref().unwrap_or(b"{}"))? {
            let v = v.strip_prefix("secret:").unwrap_or(&v).to_string();
            merged.env.vars.insert(k.clone(), format!("secret:{v}"));
            bound.push((k, v));
        }
        Manifest::parse(merged.to_json().as_bytes()).map_err(|e| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                ErrorCode::BadManifest,
                e.0,
            )
        })?
    } else {
        manifest
    };
    // A secrets.json beside the component seeds package-scope secrets: checked whole before
    // anything is written, imported all or nothing, and only then is the version recorded.
    let seeds = match secrets_json {
        Some(text) => {
            let json: Value = serde_json::from_slice(&text)
                .map_err(|e| ApiError::bad_entry(format!("secrets.json is not valid JSON: {e}")))?;
            let seeds = super::secrets::parse_secrets_json(&json)?;
            for (name, _) in &seeds {
                app.secret_names.parse_new(name.as_str())?;
            }
            Some(seeds)
        }
        None => None,
    };
    // A deploy-time binding must resolve now: a name no scope holds (nor the secrets.json
    // beside it), or a field its secret lacks, is refused here rather than failing every
    // request.
    if !bound.is_empty() {
        let resolver = crate::secrets::Resolver::with_owners(
            app.backend.clone(),
            crate::secrets::owner_chain(project.clone(), package.clone()),
            manifest.secrets.clone().map(Arc::from),
            None,
        );
        let mut missing = Vec::new();
        for (var, reference) in &bound {
            let (name, field) = match reference.split_once('#') {
                Some((n, f)) => (n, Some(f)),
                None => (reference.as_str(), None),
            };
            let seeded = seeds.iter().flatten().find(|(n, _)| n.as_str() == name);
            let value = match seeded {
                Some((_, value)) => Some(value.clone()),
                None => match resolver.get(name).await {
                    Ok(found) => found.map(|(_, s)| s.value),
                    Err(crate::secrets::ResolveError::Unavailable(m)) => {
                        return Err(ApiError::new(
                            StatusCode::SERVICE_UNAVAILABLE,
                            ErrorCode::Unavailable,
                            format!("checking the binding {var}: {m}"),
                        ));
                    }
                    Err(e) => return Err(ApiError::bad_entry(format!("{var}: {e}"))),
                },
            };
            match (value, field) {
                (None, _) => missing.push(format!("{var} ({name}: no scope holds it)")),
                (Some(v), Some(f)) if v.field(f).is_none() => {
                    missing.push(format!("{var} ({name} has no field {f})"));
                }
                _ => {}
            }
        }
        if !missing.is_empty() {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                ErrorCode::UnresolvedBinding,
                format!(
                    "deploy-time bindings that cannot resolve: {}; set the secrets first, or \
                     send them beside the component (--secrets)",
                    missing.join(", ")
                ),
            ));
        }
    }
    let prepared = app.packages.prepare(component).await?;
    let owner = crate::secrets::Owner::Package(project.clone(), package.clone());
    // What the previous secrets.json set and nobody changed since: the secrets it carries
    // the marker label of, at the version the marker names.
    let mut previously_seeded = Vec::new();
    if let Some(seeds) = &seeds {
        // Only a platform admin may create the project here; for anyone else it must exist.
        let exists = app.store.project_exists(project.to_string()).await?;
        if !exists && !caller.principal.platform_admin {
            return Err(ApiError::not_found(format!("no project {project:?}")));
        }
        // A project made by this deploy has no secrets from an earlier one.
        if exists {
            previously_seeded = app
                .backend
                .list(&owner)
                .await?
                .into_iter()
                .filter(|m| m.annotations.labels.get(SEEDED_LABEL) == Some(&m.version.to_string()))
                .map(|m| m.name)
                .collect();
        }
        app.backend
            .import(&owner, seeds, &caller.principal.user)
            .await?;
    }
    let uploaded = app
        .packages
        .commit(
            project,
            package,
            prepared,
            manifest,
            &caller.principal.user,
            // Only platform admins create projects, here as on POST /v1/projects.
            caller.principal.platform_admin,
        )
        .await?;
    tracing::info!(
        project = %uploaded.project, package = %uploaded.package, version = uploaded.version,
        sha256 = %uploaded.sha256, by = %caller.principal.user, "package version deployed"
    );
    // The new version serves: mark what this secrets.json set, and drop what the previous one
    // set that this one leaves out (a file that drops a name drops the secret).
    let (mut secrets_set, mut secrets_removed, mut notices) =
        (Vec::new(), Vec::new(), uploaded.notices);
    if let Some(seeds) = &seeds {
        let listed = app.backend.list(&owner).await?;
        for (name, _) in seeds {
            let Some(meta) = listed.iter().find(|m| &m.name == name) else {
                continue;
            };
            let mut labels = meta.annotations.labels.clone();
            labels.insert(SEEDED_LABEL.to_string(), meta.version.to_string());
            let update = crate::secrets::AnnotationUpdate {
                description: None,
                labels: Some(labels),
            };
            if let Err(e) = app.backend.annotate(&owner, name, &update).await {
                tracing::warn!(secret = %name, error = %e, "could not mark a secret set by secrets.json");
            }
            secrets_set.push(name.to_string());
        }
        secrets_set.sort();
        for name in previously_seeded {
            if seeds.iter().any(|(n, _)| *n == name) {
                continue;
            }
            match app.backend.delete(&owner, &name).await {
                Ok(_) => secrets_removed.push(name.to_string()),
                Err(e) => {
                    tracing::warn!(secret = %name, error = %e, "could not delete a secret the new secrets.json drops");
                    notices.push(format!(
                        "the package secret {name} was set by the previous secrets.json and \
                         this one drops it, but deleting it failed; delete it with `edgeward \
                         secrets rm {name}`"
                    ));
                }
            }
        }
    }
    Ok((
        StatusCode::CREATED,
        Json(super::model::Deployed {
            project: uploaded.project,
            package: uploaded.package,
            version: uploaded.version,
            sha256: uploaded.sha256,
            size: uploaded.size as u64,
            limits: uploaded.limits,
            notices,
            secrets_set,
            secrets_removed,
        }),
    ))
}

/// The label that marks a package secret set by a deploy's secrets.json, with the version
/// that deploy wrote: a later secrets.json that leaves the name out deletes it, unless it was
/// written since (through the API, say), which moves its version past the label.
pub const SEEDED_LABEL: &str = "edgeward.secrets-json";

/// The parts of a multipart upload: the component, and the optional manifest, secrets.json,
/// deploy-time bindings and literals.
struct Parts {
    component: Vec<u8>,
    manifest: Option<Vec<u8>>,
    secrets: Option<Vec<u8>>,
    bindings: Option<Vec<u8>>,
    env: Option<Vec<u8>>,
}

async fn read_multipart(body: Bytes, boundary: String) -> Result<Parts, ApiError> {
    let stream = futures::stream::once(async move { Ok::<_, std::io::Error>(body) });
    let mut multipart = multer::Multipart::new(stream, boundary);
    let mut component = None;
    let mut manifest = None;
    let mut secrets = None;
    let (mut bindings, mut env) = (None, None);
    let bad = |e: multer::Error| ApiError::bad_entry(format!("malformed multipart body: {e}"));
    while let Some(field) = multipart.next_field().await.map_err(bad)? {
        let name = field.name().unwrap_or_default().to_string();
        let bytes = field.bytes().await.map_err(bad)?;
        match name.as_str() {
            "component" => component = Some(bytes.to_vec()),
            "manifest" => manifest = Some(bytes.to_vec()),
            "secrets" => secrets = Some(bytes.to_vec()),
            "bindings" => bindings = Some(bytes.to_vec()),
            "env" => env = Some(bytes.to_vec()),
            other => {
                return Err(ApiError::bad_entry(format!(
                    "unexpected multipart part {other:?}: send `component` and optionally \
                     `manifest`, `secrets` (secrets.json), `bindings` ({{\"ENV\": \"NAME\"}}) \
                     and `env` ({{\"KEY\": \"VALUE\"}})"
                )));
            }
        }
    }
    let component = component.ok_or_else(|| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::EmptyBody,
            "the multipart upload has no `component` part",
        )
    })?;
    Ok(Parts {
        component,
        manifest,
        secrets,
        bindings,
        env,
    })
}

/// A JSON object of strings (a deploy-time `bindings` or `env` part).
fn string_map(part: &str, bytes: &[u8]) -> Result<Vec<(String, String)>, ApiError> {
    let unprocessable =
        |m: String| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, ErrorCode::BadManifest, m);
    let map: serde_json::Map<String, Value> = serde_json::from_slice(bytes)
        .map_err(|e| unprocessable(format!("`{part}` is not a JSON object: {e}")))?;
    map.into_iter()
        .map(|(k, v)| match v {
            Value::String(s) => Ok((k, s)),
            _ => Err(unprocessable(format!("`{part}`: {k} must be a string"))),
        })
        .collect()
}
