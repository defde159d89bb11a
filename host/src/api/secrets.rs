//! Secrets over the API, for every scope. The route says the scope and owner; the policy
//! table says who may call it; the backend holds the values. Reading a value, wrapping and
//! unwrapping are audited like writes. Listings carry names and metadata, never values.

use super::extract::{Body, MaybeBody};
use super::model;
use super::policy::{AuditDetail, AuditScope, Caller, ValueRead};
use super::{ApiError, rfc3339};
use crate::app::App;
use crate::code::ErrorCode;
use crate::names::{Name, SecretName};
use crate::secrets::userkey::UserKey;
use crate::secrets::{
    AnnotationUpdate, BackendError, MAX_VALUE_BYTES, Owner, SecretValue, ValueError, WriteMode,
    value_from_json, value_to_json,
};
use axum::Extension;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// The default and largest lifetimes of a wrapping token.
const DEFAULT_WRAP_TTL: u64 = 300;
const MAX_WRAP_TTL: u64 = 24 * 3600;

type Params = Path<HashMap<String, String>>;

/// What an API caller is told when the backend fails: no more. The cause names Vault's
/// address, mount and policies, which are the operator's business; it goes to the log.
pub const API_UNAVAILABLE: &str =
    "the secret backend could not answer; try again later (the cause is in the server's log)";

impl From<BackendError> for ApiError {
    fn from(e: BackendError) -> Self {
        match e {
            BackendError::NotFound(m) => ApiError::not_found(m),
            BackendError::AlreadyExists(m) => {
                ApiError::new(StatusCode::CONFLICT, ErrorCode::AlreadyExists, m)
            }
            BackendError::Refused(m) => ApiError::bad_entry(m),
            BackendError::Denied(m) => {
                tracing::warn!(error = %m, "the secret backend's policy refused an API call");
                ApiError::new(
                    StatusCode::FORBIDDEN,
                    ErrorCode::Denied,
                    "the secret backend's own policy does not allow Edgeward this operation; \
                     the server's log names the path (see the README for the policy it needs)",
                )
            }
            BackendError::Unavailable(m) | BackendError::Corrupt(m) => {
                crate::secrets::warn_backend_failure(
                    &m,
                    "an API call failed in the secret backend",
                );
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    ErrorCode::Unavailable,
                    API_UNAVAILABLE,
                )
            }
        }
    }
}

/// The caller's data key when `owner` is a user scope (the policy lets only that user in);
/// `None` for other scopes. A token without a key slot is refused: it was issued by someone
/// else, and may not open or replace what the user keeps.
fn user_key<'a>(caller: &'a Caller, owner: &Owner) -> Result<Option<&'a UserKey>, ApiError> {
    if !matches!(owner, Owner::User(_)) {
        return Ok(None);
    }
    caller.user_key.as_deref().map(Some).ok_or_else(|| {
        ApiError::new(
            StatusCode::FORBIDDEN,
            ErrorCode::Denied,
            format!(
                "token {} holds no key to your user secrets (it was issued by {}, or minted \
                 from such a token, or it is the bootstrap admin.token); use a token you minted \
                 with a keyed token, or redeem an enrollment code (`edgeward users enroll` for \
                 the code, `edgeward enroll` to redeem it)",
                caller.principal.token_id, caller.principal.issued_by
            ),
        )
    })
}

/// Seals `value` for a user scope; other scopes' values pass as they are.
fn sealed(
    key: Option<&UserKey>,
    owner: &Owner,
    name: &SecretName,
    value: SecretValue,
) -> SecretValue {
    match (key, owner) {
        (Some(key), Owner::User(user)) => key.seal(user, name.as_str(), &value),
        _ => value,
    }
}

/// Opens a user-scope value with the caller's key; other scopes' values pass as they are.
fn opened(
    key: Option<&UserKey>,
    owner: &Owner,
    name: &SecretName,
    value: SecretValue,
) -> Result<SecretValue, ApiError> {
    match (key, owner) {
        (Some(key), Owner::User(user)) => key
            .open(user, name.as_str(), &value)
            .map_err(|e| ApiError::new(StatusCode::FORBIDDEN, ErrorCode::Denied, e.to_string())),
        _ => Ok(value),
    }
}

/// The owner named by the route's parameters, checked to exist (a package need not exist
/// yet: its secrets may be set before its first deploy).
async fn owner(app: &App, params: &HashMap<String, String>) -> Result<Owner, ApiError> {
    let owner = match (
        params.get("project"),
        params.get("package"),
        params.get("user"),
    ) {
        (Some(project), Some(package), _) => Owner::Package(
            Name::parse("project", project)?,
            Name::parse("package", package)?,
        ),
        (Some(project), None, _) => Owner::Project(Name::parse("project", project)?),
        (None, None, Some(user)) => Owner::User(Name::parse("user", user)?.to_string()),
        _ => Owner::Platform,
    };
    match &owner {
        Owner::Package(p, _) | Owner::Project(p) => {
            if !app.store.project_exists(p.to_string()).await? {
                return Err(ApiError::not_found(format!("no project {p:?}")));
            }
        }
        Owner::User(u) => {
            if !app.store.user_exists(u.clone()).await? {
                return Err(ApiError::not_found(format!("no user {u:?}")));
            }
        }
        Owner::Platform => {}
    }
    Ok(owner)
}

fn secret_name(params: &HashMap<String, String>) -> Result<SecretName, ApiError> {
    let name = params.get("name").map(String::as_str).unwrap_or_default();
    Ok(SecretName::parse(name)?)
}

/// Checks a name about to be written against the server's rule (`--secret-names`).
fn new_name(app: &App, name: &SecretName) -> Result<(), ApiError> {
    app.secret_names.parse_new(name.as_str())?;
    Ok(())
}

/// The description and labels a write carries, checked.
fn annotation_update(
    description: Option<String>,
    labels: Option<std::collections::BTreeMap<String, String>>,
) -> Result<AnnotationUpdate, ApiError> {
    let update = AnnotationUpdate {
        description,
        labels,
    };
    update.check().map_err(ApiError::bad_entry)?;
    Ok(update)
}

/// A query string's fields, or a clear 400.
fn query<T>(q: Result<Query<T>, QueryRejection>) -> Result<T, ApiError> {
    q.map(|Query(q)| q)
        .map_err(|e| ApiError::bad_entry(e.to_string()))
}

/// Writes `value` as `mode` says; the answer names where it went and its new version.
async fn put_value(
    app: &App,
    caller: &Caller,
    owner: &Owner,
    name: &SecretName,
    value: &SecretValue,
    mode: WriteMode,
    annotations: &AnnotationUpdate,
) -> Result<axum::Json<model::SecretWritten>, ApiError> {
    let key = user_key(caller, owner)?;
    let value = sealed(key, owner, name, value.clone());
    let version = app
        .backend
        .write(owner, name, &value, &caller.principal.user, mode)
        .await?;
    if !annotations.is_empty() {
        app.backend.annotate(owner, name, annotations).await?;
    }
    Ok(axum::Json(model::SecretWritten {
        name: name.to_string(),
        scope: owner.scope(),
        version,
    }))
}

fn value_of(v: &Value) -> Result<SecretValue, ApiError> {
    value_from_json(v).map_err(|e| match e {
        ValueError::TooLarge(_) => ApiError::too_large(e.to_string()),
        ValueError::NotStringOrObject | ValueError::Exponent => ApiError::bad_entry(e.to_string()),
    })
}

/// What a secret route's answer tells the audit log.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Audited {
    /// A call about the scope (a change is audited as every change is; a listing is not).
    Scope,
    /// A call that returned a secret's value: audited like a change, whatever its method.
    ValueRead,
}

/// `response`, marked with the scope it concerned and, for a value read, as one.
fn tagged(owner: &Owner, response: impl IntoResponse, audited: Audited) -> Response {
    let mut response = response.into_response();
    response.extensions_mut().insert(AuditScope(owner.scope()));
    if audited == Audited::ValueRead {
        response.extensions_mut().insert(ValueRead);
    }
    response
}

pub(super) async fn list(
    State(app): State<Arc<App>>,
    Path(p): Params,
    q: Result<Query<model::SecretsQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let owner = owner(&app, &p).await?;
    let prefix = query(q)?.prefix.unwrap_or_default();
    if prefix.len() > crate::names::SECRET_NAME_MAX {
        return Err(ApiError::bad_entry(format!(
            "a prefix is at most {} bytes, as a name",
            crate::names::SECRET_NAME_MAX
        )));
    }
    let mut folders = std::collections::BTreeSet::new();
    let secrets = app
        .backend
        .list_prefixed(&owner, &prefix)
        .await?
        .into_iter()
        .map(|m| {
            let rest = &m.name.as_str()[prefix.len()..];
            if let Some(slash) = rest.find('/') {
                folders.insert(m.name.as_str()[..prefix.len() + slash + 1].to_string());
            }
            model::SecretMeta {
                name: m.name.to_string(),
                scope: m.scope,
                version: m.version,
                updated_at: rfc3339(m.updated_at),
                updated_by: m.updated_by,
                description: m.annotations.description,
                labels: m.annotations.labels,
            }
        })
        .collect();
    Ok(tagged(
        &owner,
        axum::Json(model::SecretList {
            scope: owner.scope(),
            prefix,
            secrets,
            folders: folders.into_iter().collect(),
        }),
        Audited::Scope,
    ))
}

pub(super) async fn create(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    Path(p): Params,
    body: Result<Body<model::CreateSecret>, ApiError>,
) -> Result<Response, ApiError> {
    let owner = owner(&app, &p).await?;
    user_key(&caller, &owner)?;
    let Body(body) = body?;
    let name = SecretName::parse(&body.name)?;
    new_name(&app, &name)?;
    let value = value_of(&body.value)?;
    let annotations = annotation_update(body.description, body.labels)?;
    let answer = put_value(
        &app,
        &caller,
        &owner,
        &name,
        &value,
        WriteMode::Create,
        &annotations,
    )
    .await?;
    Ok(tagged(
        &owner,
        (StatusCode::CREATED, answer),
        Audited::Scope,
    ))
}

async fn write(
    app: &App,
    caller: &Caller,
    p: &HashMap<String, String>,
    body: Result<Body<model::SetSecret>, ApiError>,
    mode: WriteMode,
) -> Result<Response, ApiError> {
    let owner = owner(app, p).await?;
    let name = secret_name(p)?;
    user_key(caller, &owner)?;
    let Body(body) = body?;
    new_name(app, &name)?;
    let value = value_of(&body.value)?;
    let annotations = annotation_update(body.description, body.labels)?;
    let answer = put_value(app, caller, &owner, &name, &value, mode, &annotations).await?;
    Ok(tagged(&owner, answer, Audited::Scope))
}

pub(super) async fn set(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    Path(p): Params,
    body: Result<Body<model::SetSecret>, ApiError>,
) -> Result<Response, ApiError> {
    write(&app, &caller, &p, body, WriteMode::Upsert).await
}

pub(super) async fn update(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    Path(p): Params,
    body: Result<Body<model::UpdateSecret>, ApiError>,
) -> Result<Response, ApiError> {
    let Body(body) = body?;
    if let Some(value) = body.value {
        let body = model::SetSecret {
            value,
            description: body.description,
            labels: body.labels,
        };
        return write(&app, &caller, &p, Ok(Body(body)), WriteMode::Update).await;
    }
    let owner = owner(&app, &p).await?;
    let name = secret_name(&p)?;
    user_key(&caller, &owner)?;
    let annotations = annotation_update(body.description, body.labels)?;
    if annotations.is_empty() {
        return Err(ApiError::bad_entry(
            "give a value, a description or labels to change",
        ));
    }
    app.backend.annotate(&owner, &name, &annotations).await?;
    // The value is untouched, so the version stays the one that is current.
    let version = app
        .backend
        .versions(&owner, &name)
        .await?
        .and_then(|v| v.iter().filter(|v| !v.deleted).map(|v| v.version).max())
        .ok_or_else(|| not_kept(&owner, &name, None))?;
    let answer = axum::Json(model::SecretWritten {
        name: name.to_string(),
        scope: owner.scope(),
        version,
    });
    Ok(tagged(&owner, answer, Audited::Scope))
}

pub(super) async fn read(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    Path(p): Params,
    q: Result<Query<model::SecretQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let owner = owner(&app, &p).await?;
    let name = secret_name(&p)?;
    let key = user_key(&caller, &owner)?;
    let version = query(q)?.version;
    let secret = match version {
        None => app.backend.get_fresh(&owner, &name).await?,
        Some(v) => app.backend.get_version(&owner, &name, v).await?,
    }
    .ok_or_else(|| not_kept(&owner, &name, version))?;
    let mut response = tagged(
        &owner,
        axum::Json(model::SecretRead {
            name: name.to_string(),
            scope: owner.scope(),
            version: secret.version,
            value: value_to_json(&opened(key, &owner, &name, secret.value)?),
        }),
        Audited::ValueRead,
    );
    if let Some(v) = version {
        response
            .extensions_mut()
            .insert(AuditDetail(format!("version {v}")));
    }
    Ok(response)
}

/// The 404 for a secret, or for one of its versions that is not kept.
fn not_kept(owner: &Owner, name: &SecretName, version: Option<u64>) -> ApiError {
    match version {
        None => ApiError::not_found(format!("no {} secret {name}", owner.scope())),
        Some(v) => ApiError::not_found(format!(
            "no version {v} of {} secret {name} is kept (`edgeward secrets versions {name}` \
             lists those that are)",
            owner.scope()
        )),
    }
}

pub(super) async fn versions(
    State(app): State<Arc<App>>,
    Path(p): Params,
) -> Result<Response, ApiError> {
    let owner = owner(&app, &p).await?;
    let name = secret_name(&p)?;
    let versions = app
        .backend
        .versions(&owner, &name)
        .await?
        .ok_or_else(|| not_kept(&owner, &name, None))?
        .into_iter()
        .map(|v| model::SecretVersion {
            version: v.version,
            created_at: rfc3339(v.created_at),
            created_by: v.created_by,
            current: v.current,
            deleted: v.deleted,
        })
        .collect();
    Ok(tagged(
        &owner,
        axum::Json(model::SecretVersions {
            name: name.to_string(),
            scope: owner.scope(),
            versions,
        }),
        Audited::Scope,
    ))
}

/// Makes a kept version's value current again, as a new version (Vault's `kv rollback`):
/// nothing is rewritten in the past, and the rollback is itself a version to roll back from.
pub(super) async fn rollback(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    Path(p): Params,
    body: Result<Body<model::SecretRollback>, ApiError>,
) -> Result<Response, ApiError> {
    let owner = owner(&app, &p).await?;
    let name = secret_name(&p)?;
    let key = user_key(&caller, &owner)?;
    let Body(body) = body?;
    let old = app
        .backend
        .get_version(&owner, &name, body.version)
        .await?
        .ok_or_else(|| not_kept(&owner, &name, Some(body.version)))?;
    // A user secret's versions are sealed for the user: opened here, sealed again on write.
    let value = opened(key, &owner, &name, old.value)?;
    let answer = put_value(
        &app,
        &caller,
        &owner,
        &name,
        &value,
        WriteMode::Update,
        &AnnotationUpdate::default(),
    )
    .await?;
    let mut response = tagged(&owner, answer, Audited::Scope);
    response.extensions_mut().insert(AuditDetail(format!(
        "rolled back to version {}'s value",
        body.version
    )));
    Ok(response)
}

pub(super) async fn remove(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    Path(p): Params,
    q: Result<Query<model::DeleteSecret>, QueryRejection>,
) -> Result<Response, ApiError> {
    let owner = owner(&app, &p).await?;
    let name = secret_name(&p)?;
    user_key(&caller, &owner)?;
    let force = query(q)?.force;
    let bound = app.packages.bound_by(&owner, &name);
    if !bound.is_empty() && !force {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            ErrorCode::InUse,
            format!(
                "{} secret {name} is bound by serving versions: {}; their requests fail \
                 `unbound` without it (delete with force=true, `--force`, to do it anyway)",
                owner.scope(),
                bound.join(", ")
            ),
        ));
    }
    if !app.backend.delete(&owner, &name).await? {
        return Err(ApiError::not_found(format!(
            "no {} secret {name}",
            owner.scope()
        )));
    }
    let mut response = tagged(&owner, StatusCode::NO_CONTENT, Audited::Scope);
    if !bound.is_empty() {
        response.extensions_mut().insert(AuditDetail(format!(
            "forced; bound by {}",
            bound.join(", ")
        )));
    }
    Ok(response)
}

/// Validates a `secrets.json` object: every name and value, all before anything is written.
pub fn parse_secrets_json(body: &Value) -> Result<Vec<(SecretName, SecretValue)>, ApiError> {
    crate::secrets::parse_import(body).map_err(|e| match e {
        crate::secrets::ImportError::BadEntry(m) => ApiError::bad_entry(m),
        crate::secrets::ImportError::TooLarge(m) => ApiError::too_large(m),
    })
}

pub(super) async fn import(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    Path(p): Params,
    body: Result<Body<model::ImportSecrets>, ApiError>,
) -> Result<Response, ApiError> {
    let owner = owner(&app, &p).await?;
    let key = user_key(&caller, &owner)?;
    let Body(body) = body?;
    let entries = parse_secrets_json(&Value::Object(body.0))?;
    for (name, _) in &entries {
        new_name(&app, name)?;
    }
    let stored: Vec<(SecretName, SecretValue)> = entries
        .iter()
        .map(|(n, v)| (n.clone(), sealed(key, &owner, n, v.clone())))
        .collect();
    app.backend
        .import(&owner, &stored, &caller.principal.user)
        .await?;
    let imported = entries.iter().map(|(n, _)| n.to_string()).collect();
    Ok(tagged(
        &owner,
        axum::Json(model::Imported {
            scope: owner.scope(),
            imported,
        }),
        Audited::Scope,
    ))
}

pub(super) async fn wrap(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    Path(p): Params,
    body: Result<MaybeBody<model::Wrap>, ApiError>,
) -> Result<Response, ApiError> {
    let owner = owner(&app, &p).await?;
    let name = secret_name(&p)?;
    let key = user_key(&caller, &owner)?;
    // The body is judged after the caller: one without the right learns nothing of it.
    let MaybeBody(body) = body?;
    let ttl = match body.ttl {
        None => DEFAULT_WRAP_TTL,
        Some(t) if (1..=MAX_WRAP_TTL).contains(&t) => t,
        Some(_) => {
            return Err(ApiError::bad_entry(format!(
                "ttl is whole seconds from 1 to {MAX_WRAP_TTL}"
            )));
        }
    };
    let missing = || ApiError::not_found(format!("no {} secret {name}", owner.scope()));
    let wrapped = match key {
        // A user secret is opened here and sealed again under a one-off key that travels only
        // in the token handed out (`ewu_<backend token>~<name>~<key>`): the backend keeps
        // ciphertext, so neither the database with the master key nor Vault's operators can
        // read a wrapped user secret before it is redeemed.
        Some(_) => {
            let secret = app.backend.get(&owner, &name).await?.ok_or_else(missing)?;
            let value = opened(key, &owner, &name, secret.value)?;
            let one_off = UserKey::for_wrap();
            let sealed = one_off.seal(USER_WRAP_AAD, name.as_str(), &value);
            let inner = app
                .backend
                .wrap_value(&sealed, Duration::from_secs(ttl))
                .await?;
            crate::secrets::Wrapped {
                token: zeroize::Zeroizing::new(format!(
                    "{USER_WRAP_PREFIX}{}~{name}~{}",
                    inner.token.as_str(),
                    one_off.wrap_key_hex().as_str()
                )),
                expires_at: inner.expires_at,
                // Only Edgeward can open it: the backend's own unwrap gives ciphertext.
                unwrap_url: None,
            }
        }
        None => app
            .backend
            .wrap(&owner, &name, Duration::from_secs(ttl))
            .await?
            .ok_or_else(missing)?,
    };
    // Unwrap redeems only tokens Edgeward handed out.
    app.store
        .issued_wrap_insert(
            crate::credential::hash_token(&wrapped.token),
            wrapped.expires_at,
        )
        .await?;
    // One redeem URL and one answer shape whichever backend holds the value; Vault's own
    // endpoint, which answers a wrapped KV read in its shape, is named beside it.
    let unwrap_url = format!("{}/v1/unwrap", app.api_url);
    let vault_unwrap_url = wrapped.unwrap_url.clone();
    Ok(tagged(
        &owner,
        (
            StatusCode::CREATED,
            axum::Json(model::Wrapped {
                token: wrapped.token.as_str().to_string(),
                ttl,
                expires_at: rfc3339(wrapped.expires_at),
                unwrap_url,
                vault_unwrap_url,
            }),
        ),
        Audited::ValueRead,
    ))
}

/// Redeems a wrapping token once: only one Edgeward handed out (anything else, such as
/// someone else's Vault wrapping token or a guess, is refused without reaching the backend,
/// and never destroyed).
async fn redeem(app: &App, token: &str) -> Result<SecretValue, ApiError> {
    let gone = || ApiError::not_found("the wrapping token is unknown, used or expired");
    if token.is_empty()
        || token.len() > 512
        || !app
            .store
            .issued_wrap_take(crate::credential::hash_token(token))
            .await?
    {
        return Err(gone());
    }
    match token.strip_prefix(USER_WRAP_PREFIX) {
        Some(composite) => {
            let mut parts = composite.rsplitn(3, '~');
            let (Some(key), Some(name), Some(inner)) = (parts.next(), parts.next(), parts.next())
            else {
                return Err(gone());
            };
            let key = UserKey::from_wrap_key_hex(key).ok_or_else(gone)?;
            let sealed = app.backend.unwrap(inner).await?;
            key.open(USER_WRAP_AAD, name, &sealed).map_err(|_| gone())
        }
        None => Ok(app.backend.unwrap(token).await?),
    }
}

/// The wrapping token of an unwrap call: `{"token"}` in the body or, as Vault's clients and
/// the seeds' scripts send it, the `X-Vault-Token` header.
fn wrapping_token(
    headers: &axum::http::HeaderMap,
    body: Option<model::VaultUnwrap>,
) -> Result<zeroize::Zeroizing<String>, ApiError> {
    body.and_then(|b| b.token)
        .or_else(|| {
            headers
                .get("x-vault-token")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        })
        .map(zeroize::Zeroizing::new)
        .ok_or_else(|| {
            ApiError::bad_entry(r#"send the wrapping token as {"token": "..."} or X-Vault-Token"#)
        })
}

/// A value's fields as Vault shows them: an object's own, a plain value as the field `value`.
fn fields_of(value: &SecretValue) -> Value {
    if value.is_object() {
        value_to_json(value)
    } else {
        json!({ "value": value.expose() })
    }
}

/// `POST /v1/unwrap`, the `unwrap_url` every wrap answer names whichever backend holds the
/// value: the token in the body or as `X-Vault-Token`; the answer `{"value", "data"}`, the
/// value as stored and its fields in Vault's shape.
pub(super) async fn unwrap(
    State(app): State<Arc<App>>,
    headers: axum::http::HeaderMap,
    MaybeBody(body): MaybeBody<Option<model::VaultUnwrap>>,
) -> Result<Response, ApiError> {
    let token = wrapping_token(&headers, body)?;
    let value = redeem(&app, &token).await?;
    let mut response = axum::Json(model::Unwrapped {
        data: fields_of(&value),
        value: value_to_json(&value),
    })
    .into_response();
    response.extensions_mut().insert(ValueRead);
    Ok(response)
}

/// `POST /v1/sys/wrapping/unwrap`, as Vault's clients call it: the wrapping token in the body
/// (`{"token"}`, `bao unwrap TOKEN`, hvac) or as `X-Vault-Token` (`VAULT_TOKEN=… bao unwrap`);
/// the answer in Vault's shape, `{"data": {fields}}` (a plain value as the field `value`).
pub(super) async fn unwrap_vault_style(
    State(app): State<Arc<App>>,
    headers: axum::http::HeaderMap,
    MaybeBody(body): MaybeBody<Option<model::VaultUnwrap>>,
) -> Result<Response, ApiError> {
    let token = wrapping_token(&headers, body)?;
    let value = redeem(&app, &token).await?;
    let mut response = axum::Json(model::VaultUnwrapped {
        data: fields_of(&value),
    })
    .into_response();
    response.extensions_mut().insert(ValueRead);
    Ok(response)
}

/// Wrapping tokens of user secrets start with this; the rest is the backend's token, the
/// secret's name and the one-off key, `~`-separated.
const USER_WRAP_PREFIX: &str = "ewu_";
/// What a wrapped user secret is sealed for (in place of a user name).
const USER_WRAP_AAD: &str = "edgeward-user-wrap";

/// The body limit of secret routes: an import of many values, with room for JSON framing.
pub const BODY_LIMIT: usize = 16 * MAX_VALUE_BYTES * 8;
