//! A user's grants (`/v1/users/{user}/grants`): which package versions may use the names they
//! declare in the user's scope, on that user's requests (`secrets::consent`). The user alone
//! makes, lists and removes them, with a token that opens their data key: the grant is
//! authenticated under it.

use super::extract::Body;
use super::model;
use super::policy::{AuditDetail, Caller};
use super::{ApiError, rfc3339};
use crate::app::App;
use crate::code::ErrorCode;
use crate::manifest::Manifest;
use crate::names::Name;
use crate::secrets::consent::{self, Subject};
use crate::store::{GrantRow, VersionRow};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use std::sync::Arc;

/// The caller's data key, which grants are made and checked with.
fn key(caller: &Caller) -> Result<&crate::secrets::userkey::UserKey, ApiError> {
    caller.user_key.as_deref().ok_or_else(|| {
        ApiError::new(
            StatusCode::FORBIDDEN,
            ErrorCode::Denied,
            "grants are made and read with a token that opens your data key (one you minted, \
             or redeemed from an enrollment code); this one holds none",
        )
    })
}

/// What a version asks of its callers' user scope, as a grant (without id and time).
fn asked(project: &str, package: &str, v: &VersionRow, m: &Manifest) -> model::Grant {
    model::Grant {
        id: None,
        project: project.to_string(),
        package: package.to_string(),
        version: v.version,
        sha256: v.sha256.clone(),
        manifest_sha256: m.digest(),
        user_secrets: m.user_secrets.entries().to_vec(),
        writes_user_secrets: m.write_secrets.contains(&crate::secrets::Scope::User),
        outbound_hosts: m.outbound.hosts.clone(),
        granted_at: None,
        valid: None,
        serving: None,
    }
}

/// `POST /v1/users/{user}/grants`: grants one version of a package (the serving one unless
/// named), or with `preview` shows what it asks for.
pub(super) async fn create(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    Body(body): Body<model::CreateGrant>,
) -> Result<Response, ApiError> {
    let key = key(&caller)?;
    let project = Name::parse("project", &body.project)?;
    let package = Name::parse("package", &body.package)?;
    // One answer for a package that does not exist, a version that does not, and one that
    // asks for no user secrets: anyone may grant, so no one learns more of a project's
    // packages here than a call to them tells.
    let missing = || {
        ApiError::not_found(format!(
            "no version of {project}/{package} that asks for user secrets{}",
            body.version
                .map(|v| format!(" as version {v}"))
                .unwrap_or_default()
        ))
    };
    let (row, versions) = app
        .store
        .list_versions(project.to_string(), package.to_string())
        .await
        .map_err(|e| match e {
            crate::store::StoreError::NotFound(_) => missing(),
            other => other.into(),
        })?;
    let wanted = body.version.or(row.current_version).ok_or_else(missing)?;
    let version = versions
        .into_iter()
        .find(|v| v.version == wanted)
        .ok_or_else(missing)?;
    let manifest = Manifest::parse(version.manifest.as_bytes())
        .ok()
        .filter(|m| !m.user_secrets.is_empty())
        .ok_or_else(missing)?;
    let mut grant = asked(project.as_str(), package.as_str(), &version, &manifest);
    grant.serving = Some(row.current_version == Some(wanted));
    if body.preview {
        return Ok((StatusCode::OK, Json(grant)).into_response());
    }
    let user = caller.principal.user.clone();
    let subject = Subject {
        user: &user,
        project: project.as_str(),
        package: package.as_str(),
        sha256: &version.sha256,
        manifest_sha256: &grant.manifest_sha256,
    };
    let stored = app
        .store
        .put_grant(GrantRow {
            id: consent::grant_id(),
            user: user.clone(),
            project: project.to_string(),
            package: package.to_string(),
            version: wanted,
            sha256: version.sha256.clone(),
            manifest_sha256: grant.manifest_sha256.clone(),
            names: grant.user_secrets.clone(),
            key_id: key.id().to_string(),
            mac: subject.sign(key),
            created_at: crate::store::now_ms(),
        })
        .await?;
    grant.id = Some(stored.id.clone());
    grant.granted_at = Some(rfc3339(stored.created_at));
    grant.valid = Some(true);
    let detail = format!(
        "grant {} of {project}/{package} version {wanted} (sha256 {}, manifest {}): {}",
        stored.id,
        version.sha256,
        grant.manifest_sha256,
        grant.user_secrets.join(", ")
    );
    let mut response = (StatusCode::CREATED, Json(grant)).into_response();
    response.extensions_mut().insert(AuditDetail(detail));
    Ok(response)
}

/// `GET /v1/users/{user}/grants`: the user's grants, each checked under the asking token's key.
pub(super) async fn list(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
) -> Result<Json<model::GrantList>, ApiError> {
    let key = key(&caller)?;
    let user = caller.principal.user.clone();
    let grants = app.store.list_grants(user.clone()).await?;
    let mut out = Vec::with_capacity(grants.len());
    for g in grants {
        let subject = Subject {
            user: &user,
            project: &g.project,
            package: &g.package,
            sha256: &g.sha256,
            manifest_sha256: &g.manifest_sha256,
        };
        let serving = app
            .packages
            .serving(&g.project, &g.package)
            .map(|d| d.sha256 == g.sha256 && d.manifest_sha256 == g.manifest_sha256);
        // The write and host details of the version granted, where it is still kept.
        let (writes, hosts) = app
            .store
            .list_versions(g.project.clone(), g.package.clone())
            .await
            .ok()
            .and_then(|(_, versions)| versions.into_iter().find(|v| v.version == g.version))
            .and_then(|v| Manifest::parse(v.manifest.as_bytes()).ok())
            .filter(|m| m.digest() == g.manifest_sha256)
            .map(|m| {
                (
                    m.write_secrets.contains(&crate::secrets::Scope::User),
                    m.outbound.hosts,
                )
            })
            .unwrap_or_default();
        out.push(model::Grant {
            valid: Some(subject.verify(key, &g)),
            id: Some(g.id),
            project: g.project,
            package: g.package,
            version: g.version,
            sha256: g.sha256,
            manifest_sha256: g.manifest_sha256,
            user_secrets: g.names,
            writes_user_secrets: writes,
            outbound_hosts: hosts,
            granted_at: Some(rfc3339(g.created_at)),
            serving,
        });
    }
    Ok(Json(model::GrantList { user, grants: out }))
}

/// `DELETE /v1/users/{user}/grants/{grant}`: revokes a grant; the version's next request with
/// the user's token is refused (`consent_required`).
pub(super) async fn remove(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    Path((_, id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    app.store
        .delete_grant(caller.principal.user.clone(), id)
        .await?;
    // This host forgets at once; the others when the change feed tells them.
    app.grants.forget_user(&caller.principal.user);
    Ok(StatusCode::NO_CONTENT)
}
