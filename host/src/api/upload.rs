//! Uploading a package version: a raw component body, or `multipart/form-data` with a
//! `component` part and an optional `manifest` part. Without a `manifest` part the new version
//! keeps the current one's manifest and bindings; an empty one is the defaults.

use super::ApiError;
use super::extract::Body;
use super::policy::Caller;
use crate::app::App;
use crate::code::ErrorCode;
use crate::manifest::MAX_MANIFEST_BYTES;
use crate::names::Name;
use crate::packages::deploy::{DeployError, DeployRequest, Deployer};
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
    if parts.component.len() > limit {
        return Err(too_large());
    }
    // A secrets.json beside the component seeds package-scope secrets: checked whole before
    // anything is written, imported all or nothing, and only then is the version recorded.
    let secrets = match parts.secrets {
        Some(text) => {
            let json: Value = serde_json::from_slice(&text)
                .map_err(|e| ApiError::bad_entry(format!("secrets.json is not valid JSON: {e}")))?;
            Some(super::secrets::parse_secrets_json(&json)?)
        }
        None => None,
    };
    let request = DeployRequest {
        project,
        package,
        component: parts.component,
        manifest: parts.manifest,
        secrets,
        bindings: string_map("bindings", parts.bindings.as_deref())?,
        env: string_map("env", parts.env.as_deref())?,
        by: Deployer {
            user: caller.principal.user.clone(),
            platform_admin: caller.principal.platform_admin,
        },
    };
    deploy(&app, request).await
}

/// `PUT …/packages/{package}/manifest`: a new version made of the serving version's component
/// and this manifest, through the same deploy as an upload (so the same checks, and a user's
/// grant, which binds the manifest's digest, does not carry over to a changed one).
pub(super) async fn replace_manifest(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    Path((project, package)): Path<(String, String)>,
    Body(body): Body<super::model::NewManifest>,
) -> Result<(StatusCode, Json<super::model::Deployed>), ApiError> {
    let project = Name::parse("project", &project)?;
    let package = Name::parse("package", &package)?;
    let manifest = match body.manifest {
        // TOML as the CLI's edgeward.toml, or the JSON form as an object.
        Value::String(text) => text.into_bytes(),
        Value::Object(_) => serde_json::to_vec(&body.manifest)
            .map_err(|e| ApiError::bad_entry(format!("`manifest`: {e}")))?,
        _ => {
            return Err(ApiError::bad_entry(
                "`manifest` is the manifest as a JSON object, or its TOML text as a string",
            ));
        }
    };
    let (_, component) = app
        .packages
        .serving_component(&project, &package, body.base_version)
        .await?;
    let request = DeployRequest {
        project,
        package,
        component,
        manifest: Some(manifest),
        secrets: None,
        bindings: Vec::new(),
        env: Vec::new(),
        by: Deployer {
            user: caller.principal.user.clone(),
            platform_admin: caller.principal.platform_admin,
        },
    };
    deploy(&app, request).await
}

async fn deploy(
    app: &App,
    request: DeployRequest,
) -> Result<(StatusCode, Json<super::model::Deployed>), ApiError> {
    let deployment = app
        .packages
        .deploy(&app.backend, &app.secret_names, request)
        .await?;
    let uploaded = deployment.uploaded;
    Ok((
        StatusCode::CREATED,
        Json(super::model::Deployed {
            project: uploaded.project,
            package: uploaded.package,
            version: uploaded.version,
            sha256: uploaded.sha256,
            size: uploaded.size as u64,
            limits: uploaded.limits,
            notices: uploaded.notices,
            secrets_set: deployment.secrets_set,
            secrets_removed: deployment.secrets_removed,
            manifest_kept_from: deployment.manifest_kept_from,
        }),
    ))
}

impl From<DeployError> for ApiError {
    fn from(e: DeployError) -> Self {
        let code = e.code();
        match e {
            DeployError::Package(e) => e.into(),
            DeployError::Backend(e) => e.into(),
            DeployError::BadManifest(m) | DeployError::UnresolvedBinding(m) => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, m)
            }
            DeployError::BadEntry(m) => ApiError::bad_entry(m),
            DeployError::NoProject(m) | DeployError::NoVersion(m) => ApiError::not_found(m),
            DeployError::Conflict(m) => ApiError::new(StatusCode::CONFLICT, code, m),
            DeployError::Unavailable(m) => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, code, m),
        }
    }
}

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

/// A JSON object of strings (a deploy-time `bindings` or `env` part); none when the part is
/// absent.
fn string_map(part: &str, bytes: Option<&[u8]>) -> Result<Vec<(String, String)>, ApiError> {
    let Some(bytes) = bytes else {
        return Ok(Vec::new());
    };
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
