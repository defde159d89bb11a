//! Deleting a project (its packages, versions and secrets) or a user (their tokens, memberships,
//! grants and own secrets): platform admins only, refused `409 in_use` where something would
//! be lost unless `force=true`, audited with what went.

use super::ApiError;
use super::model;
use super::policy::{AuditDetail, Caller};
use crate::app::App;
use crate::code::ErrorCode;
use crate::names::Name;
use crate::secrets::Owner;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use std::sync::Arc;

fn force(q: Result<Query<model::ForceDelete>, QueryRejection>) -> Result<bool, ApiError> {
    q.map(|Query(q)| q.force)
        .map_err(|e| ApiError::bad_entry(e.to_string()))
}

fn in_use(message: String) -> ApiError {
    ApiError::new(StatusCode::CONFLICT, ErrorCode::InUse, message)
}

/// Deletes every secret of `owner`; how many.
async fn delete_all(app: &App, owner: &Owner) -> Result<usize, ApiError> {
    let mut n = 0;
    for meta in app.backend.list(owner).await? {
        if app.backend.delete(owner, &meta.name).await? {
            n += 1;
        }
    }
    Ok(n)
}

/// `DELETE /v1/projects/{project}`.
pub(super) async fn delete_project(
    State(app): State<Arc<App>>,
    Path(project): Path<String>,
    q: Result<Query<model::ForceDelete>, QueryRejection>,
) -> Result<Response, ApiError> {
    let force = force(q)?;
    let project = super::project_name(&app, &project).await?;
    let packages: Vec<String> = app
        .store
        .list_packages(project.to_string())
        .await?
        .into_iter()
        .map(|p| p.name)
        .collect();
    if !packages.is_empty() && !force {
        return Err(in_use(format!(
            "project {project} has packages: {}; deleting it deletes them, every version and \
             every secret of the project (delete with force=true, `--force`, to do it anyway)",
            packages.join(", ")
        )));
    }
    let mut secrets = 0;
    for package in &packages {
        let package = Name::parse("package", package)?;
        app.packages.delete(&project, &package).await?;
        secrets += delete_all(&app, &Owner::Package(project.clone(), package)).await?;
    }
    secrets += delete_all(&app, &Owner::Project(project.clone())).await?;
    // Refused `conflict` if a package was deployed into it meanwhile: nothing more went.
    app.store.delete_project(project.to_string()).await?;
    let mut response = Json(model::ProjectDeleted {
        project: project.to_string(),
        packages: packages.clone(),
        secrets,
    })
    .into_response();
    response.extensions_mut().insert(AuditDetail(format!(
        "project {project} deleted{}: packages [{}], {secrets} secret(s)",
        if force { " (forced)" } else { "" },
        packages.join(", ")
    )));
    Ok(response)
}

/// `DELETE /v1/users/{user}`.
pub(super) async fn delete_user(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    Path(user): Path<String>,
    q: Result<Query<model::ForceDelete>, QueryRejection>,
) -> Result<Response, ApiError> {
    let force = force(q)?;
    let user = Name::parse("user", &user)?;
    if user.as_str() == crate::auth::ADMIN_USER || user.as_str() == caller.principal.user {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            ErrorCode::Conflict,
            format!(
                "user {user} cannot be deleted{}",
                if user.as_str() == crate::auth::ADMIN_USER {
                    ": it is the installation's first admin"
                } else {
                    " with their own token"
                }
            ),
        ));
    }
    if !app.store.user_exists(user.to_string()).await? {
        return Err(ApiError::not_found(format!("no user {user:?}")));
    }
    let owner = Owner::User(user.to_string());
    let own = app.backend.list(&owner).await?;
    if !own.is_empty() && !force {
        return Err(in_use(format!(
            "user {user} keeps {} user secret(s), sealed under their keys: no one else can read \
             them and deleting the user destroys them (delete with force=true, `--force`, to do \
             it anyway)",
            own.len()
        )));
    }
    let projects: Vec<String> = app
        .store
        .memberships(user.to_string())
        .await?
        .into_iter()
        .map(|m| m.project)
        .collect();
    // Their tokens die first, so nothing they hold can write a secret back meanwhile.
    let revoked = app.store.delete_user(user.to_string()).await?;
    app.tokens.forget(&revoked);
    let secrets = delete_all(&app, &owner).await?;
    let mut response = Json(model::UserDeleted {
        user: user.to_string(),
        tokens_revoked: revoked.tokens,
        secrets,
        projects: projects.clone(),
    })
    .into_response();
    response.extensions_mut().insert(AuditDetail(format!(
        "user {user} deleted{}: {} token(s) revoked, {secrets} user secret(s), member of [{}]",
        if force { " (forced)" } else { "" },
        revoked.tokens,
        projects.join(", ")
    )));
    Ok(response)
}
