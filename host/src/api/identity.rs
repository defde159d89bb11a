//! Users, tokens, project members and the audit log.

use super::extract::{Body, MaybeBody};
use super::model;
use super::policy::{AuditDetail, Caller};
use super::{ApiError, rfc3339};
use crate::app::App;
use crate::auth;
use crate::names::Name;
use crate::store::{AuditFilter, Role};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use std::sync::Arc;

/// A token's name as given (or `default`), checked: at most 100 printable characters.
fn token_label(name: Option<String>, default: &str) -> Result<String, ApiError> {
    let label = name.unwrap_or_else(|| default.into());
    if label.len() > 100 || label.chars().any(char::is_control) {
        return Err(ApiError::bad_entry(
            "token names are at most 100 printable characters",
        ));
    }
    Ok(label)
}

/// Unix milliseconds `secs` seconds from now.
fn in_seconds(secs: u64) -> i64 {
    crate::store::now_ms()
        .saturating_add(i64::try_from(secs.saturating_mul(1000)).unwrap_or(i64::MAX))
}

fn user_name(s: &str) -> Result<Name, ApiError> {
    Ok(Name::parse("user", s)?)
}

fn token_json(t: &crate::store::TokenRow) -> model::Token {
    model::Token {
        id: t.id.clone(),
        name: t.label.clone(),
        created_at: rfc3339(t.created_at),
        expires_at: t.expires_at.map(rfc3339),
        revoked_at: t.revoked_at.map(rfc3339),
        issued_by: t.issued_by.clone(),
        user_key: t.key_id.clone(),
        parent: t.parent_id.clone(),
    }
}

pub(super) async fn whoami(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
) -> Result<Json<model::Whoami>, ApiError> {
    let p = &caller.principal;
    let projects = app
        .store
        .memberships(p.user.clone())
        .await?
        .into_iter()
        .map(|m| model::Membership {
            project: m.project,
            role: m.role,
        })
        .collect();
    // Every credential that is not of this token's own key: a token someone else issued, and
    // any token on another data key (an enrollment someone redeemed, and what was minted from
    // it), so neither can go unnoticed by the user. And codes waiting to be redeemed.
    let key_id = p.slot.as_ref().map(|s| s.key_id.clone());
    let by_others = app
        .store
        .list_tokens(p.user.clone())
        .await?
        .iter()
        .filter(|t| match &t.key_id {
            Some(k) => Some(k) != key_id.as_ref(),
            None => t.issued_by != p.user,
        })
        .map(token_json)
        .collect();
    let pending = app
        .store
        .pending_enrollments(p.user.clone())
        .await?
        .into_iter()
        .map(|e| model::PendingEnrollment {
            id: e.id,
            created_by: e.created_by,
            created_at: rfc3339(e.created_at),
            expires_at: rfc3339(e.expires_at),
        })
        .collect();
    let descendants = app
        .store
        .descendants(p.token_id.clone())
        .await?
        .iter()
        .map(token_json)
        .collect();
    let key_origin = match &key_id {
        Some(k) => app
            .store
            .key_origin(p.user.clone(), k.clone())
            .await?
            .map(|o| model::KeyOrigin {
                enrollment: o.enrollment,
                code_hint: o.code_hint,
                created_by: o.created_by,
                redeemed_at: rfc3339(o.redeemed_at),
                redeemed_from: o.from,
                redeemed_client: o.client,
            }),
        None => None,
    };
    Ok(Json(model::Whoami {
        user: p.user.clone(),
        token_id: p.token_id.clone(),
        platform_admin: p.platform_admin,
        issued_by: p.issued_by.clone(),
        user_key: key_id,
        projects,
        tokens_issued_by_others: by_others,
        pending_enrollments: pending,
        descendants,
        key_origin,
    }))
}

pub(super) async fn create_user(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    Body(body): Body<model::CreateUser>,
) -> Result<(StatusCode, Json<model::UserCreated>), ApiError> {
    let name = user_name(&body.name)?;
    app.store
        .create_user(
            name.to_string(),
            body.platform_admin,
            caller.principal.user.clone(),
            false,
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(model::UserCreated {
            name: name.to_string(),
            platform_admin: body.platform_admin,
        }),
    ))
}

pub(super) async fn list_users(
    State(app): State<Arc<App>>,
) -> Result<Json<model::UserList>, ApiError> {
    let users = app
        .store
        .list_users()
        .await?
        .into_iter()
        .map(|u| model::User {
            name: u.name,
            platform_admin: u.platform_admin,
            created_at: rfc3339(u.created_at),
            created_by: u.created_by,
        })
        .collect();
    Ok(Json(model::UserList { users }))
}

pub(super) async fn create_token(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    Path(user): Path<String>,
    MaybeBody(body): MaybeBody<model::CreateToken>,
) -> Result<Response, ApiError> {
    let user = user_name(&user)?;
    if !app.store.user_exists(user.to_string()).await? {
        return Err(ApiError::not_found(format!("no user {user:?}")));
    }
    let label = token_label(body.name, "api")?;
    let requested = match body.expires_in {
        Some(0) => return Err(ApiError::bad_entry("expires_in must be above 0 seconds")),
        Some(secs) => Some(in_seconds(secs)),
        None => None,
    };
    // A token made with a token is its child: it never outlives it, and revoking the parent
    // revokes it too.
    let expires_at = caller.principal.child_expiry(requested);
    // A token the user mints with a token of theirs that opens their data key gets a slot for
    // that key; a token anyone else issues for them gets none, so it opens no user secret.
    let own = caller.principal.user == user.as_str();
    let key = if own {
        caller.user_key.as_deref()
    } else {
        None
    };
    // Who issued a token is who made the call that created it. A user's call is the user's
    // own when made with a token that opens their data key (theirs since they enrolled); a
    // token without one was issued by someone else, who may hold it: what is minted from it
    // keeps that issuer, so it stays visible on every token descended from it.
    let issued_by = if own && key.is_none() {
        caller.principal.issued_by.clone()
    } else {
        caller.principal.user.clone()
    };
    let (id, token) = auth::issue_token(
        &app.store,
        user.as_str(),
        &label,
        expires_at,
        &issued_by,
        key,
        Some(&caller.principal.token_id),
    )
    .await?;
    let detail = format!(
        "token {id} for {user} issued by {issued_by} (through {}){}",
        caller.principal.token_id,
        match key {
            Some(k) => format!(", with a slot for {}", k.id()),
            None => ", no key slot".to_string(),
        }
    );
    let mut response = (
        StatusCode::CREATED,
        Json(model::IssuedToken {
            id,
            user: user.to_string(),
            name: label,
            token: token.as_str().to_string(),
            expires_at: expires_at.map(rfc3339),
            issued_by,
            user_key: key.map(|k| k.id().to_string()),
            note: if key.is_some() || own {
                "the token is shown once; store it now"
            } else {
                "the token is shown once; it opens none of the user's secrets (an admin issued \
                 it), and the user sees it in `edgeward whoami`"
            }
            .to_string(),
        }),
    )
        .into_response();
    response.extensions_mut().insert(AuditDetail(detail));
    Ok(response)
}

/// The longest an enrollment code may live, and its default.
const MAX_ENROLLMENT_TTL: u64 = 7 * 24 * 3600;
const DEFAULT_ENROLLMENT_TTL: u64 = 24 * 3600;

/// A single-use enrollment code for `user`: redeemed (`POST /v1/enroll`), it gives the user a
/// token with a fresh data key. Admins hand out codes, never a credential that opens what a
/// user already stored.
pub(super) async fn create_enrollment(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    Path(user): Path<String>,
    MaybeBody(body): MaybeBody<model::CreateEnrollment>,
) -> Result<Response, ApiError> {
    let user = user_name(&user)?;
    let ttl = body.expires_in.unwrap_or(DEFAULT_ENROLLMENT_TTL);
    if !(1..=MAX_ENROLLMENT_TTL).contains(&ttl) {
        return Err(ApiError::bad_entry(format!(
            "expires_in is whole seconds from 1 to {MAX_ENROLLMENT_TTL}"
        )));
    }
    if !app.store.user_exists(user.to_string()).await? {
        return Err(ApiError::not_found(format!("no user {user}")));
    }
    let (id, hash, code) = auth::generate_enrollment_code();
    let expires_at = in_seconds(ttl);
    let hint = code.chars().rev().take(4).collect::<Vec<_>>();
    app.store
        .create_enrollment(
            id.clone(),
            hash,
            hint.into_iter().rev().collect(),
            user.to_string(),
            caller.principal.user.clone(),
            expires_at,
        )
        .await?;
    let mut response = (
        StatusCode::CREATED,
        Json(model::Enrollment {
            id: id.clone(),
            user: user.to_string(),
            code: code.as_str().to_string(),
            expires_at: rfc3339(expires_at),
            note: "single use; the user redeems it with `edgeward enroll CODE`".into(),
        }),
    )
        .into_response();
    response.extensions_mut().insert(AuditDetail(format!(
        "enrollment {id} for {user} by {}",
        caller.principal.user
    )));
    Ok(response)
}

/// Redeems an enrollment code once: a token for its user with a fresh data key. If the user
/// already had a data key, the new one is another key: secrets sealed under the old one stay
/// readable only with the tokens that open it.
pub(super) async fn enroll(
    State(app): State<Arc<App>>,
    remote: Option<Extension<super::RemoteAddr>>,
    headers: axum::http::HeaderMap,
    Body(body): Body<model::Enroll>,
) -> Result<Response, ApiError> {
    let gone = || ApiError::not_found("the enrollment code is unknown, used or expired");
    if !body.code.starts_with(auth::ENROLLMENT_PREFIX) || body.code.len() > 128 {
        return Err(gone());
    }
    let label = token_label(body.name, "enrolled")?;
    let hash = crate::credential::hash_token(&body.code);
    let enrollment = app.store.enrollment(hash.clone()).await?.ok_or_else(gone)?;
    let had_key = app.store.has_user_key(enrollment.user.clone()).await?;
    let key = crate::secrets::userkey::UserKey::generate();
    let (record, token) = auth::new_token(
        &enrollment.user,
        &label,
        None,
        &enrollment.created_by,
        Some(&key),
        None,
    );
    let id = record.id.clone();
    // Where and how it was redeemed, for the user's `whoami`: a key someone else redeemed
    // shows their time, address and client.
    let how = crate::store::Redemption {
        from: remote.map(|Extension(r)| r.0.ip().to_string()),
        client: headers
            .get(axum::http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.chars().filter(|c| !c.is_control()).take(200).collect()),
    };
    app.store
        .redeem_enrollment(hash, record, how)
        .await
        .map_err(|e| match e {
            crate::store::StoreError::NotFound(_) => gone(),
            other => other.into(),
        })?;
    let mut response = (
        StatusCode::CREATED,
        Json(model::Enrolled {
            id: id.clone(),
            user: enrollment.user.clone(),
            token: token.as_str().to_string(),
            user_key: key.id().to_string(),
            note: if had_key {
                "the token is shown once. It holds a NEW data key: user secrets sealed under \
                 your other key stay readable only with the tokens that open that key"
            } else {
                "the token is shown once; store it now"
            }
            .to_string(),
        }),
    )
        .into_response();
    response.extensions_mut().insert(AuditDetail(format!(
        "enrollment {} redeemed: token {id} for {} with new key {}",
        enrollment.id,
        enrollment.user,
        key.id()
    )));
    Ok(response)
}

pub(super) async fn list_tokens(
    State(app): State<Arc<App>>,
    Path(user): Path<String>,
) -> Result<Json<model::TokenList>, ApiError> {
    let user = user_name(&user)?;
    let tokens = app
        .store
        .list_tokens(user.to_string())
        .await?
        .iter()
        .map(token_json)
        .collect();
    Ok(Json(model::TokenList {
        user: user.to_string(),
        tokens,
    }))
}

pub(super) async fn revoke_token(
    State(app): State<Arc<App>>,
    Path((user, token)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let user = user_name(&user)?;
    // The token itself works as well as its id, and is never echoed or stored.
    let id = if token.starts_with(crate::auth::TOKEN_PREFIX) {
        crate::credential::token_id(&token)
    } else {
        token
    };
    let revoked = app.store.revoke_token(user.to_string(), id.clone()).await?;
    // This host forgets at once; the others when the change feed tells them.
    app.tokens.forget(&revoked);
    let mut response = StatusCode::NO_CONTENT.into_response();
    response.extensions_mut().insert(AuditDetail(format!(
        "token {id} revoked, with {} token(s) made from it",
        revoked.tokens.saturating_sub(1)
    )));
    Ok(response)
}

pub(super) async fn list_members(
    State(app): State<Arc<App>>,
    Path(project): Path<String>,
) -> Result<Json<model::MemberList>, ApiError> {
    let project = super::project_name(&app, &project).await?;
    let members = app
        .store
        .list_members(project.to_string())
        .await?
        .into_iter()
        .map(|m| model::Member {
            user: m.user,
            role: m.role,
            granted_at: rfc3339(m.granted_at),
            granted_by: m.granted_by,
        })
        .collect();
    Ok(Json(model::MemberList {
        project: project.to_string(),
        members,
    }))
}

pub(super) async fn set_member(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    Path((project, user)): Path<(String, String)>,
    Body(body): Body<model::SetMember>,
) -> Result<Json<model::MemberSet>, ApiError> {
    let role: Role = body.role;
    let project = Name::parse("project", &project)?;
    let user = user_name(&user)?;
    app.store
        .set_member(
            project.to_string(),
            user.to_string(),
            role,
            caller.principal.user.clone(),
        )
        .await?;
    Ok(Json(model::MemberSet {
        project: project.to_string(),
        user: user.to_string(),
        role,
    }))
}

pub(super) async fn remove_member(
    State(app): State<Arc<App>>,
    Path((project, user)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let project = Name::parse("project", &project)?;
    let user = user_name(&user)?;
    app.store
        .remove_member(project.to_string(), user.to_string())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

fn parse_time(what: &str, s: &str) -> Result<i64, ApiError> {
    if let Ok(ms) = s.parse::<i64>() {
        return Ok(ms);
    }
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .map(|t| i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX))
        .map_err(|_| {
            ApiError::bad_entry(format!(
                "{what} must be RFC 3339 (2026-01-31T12:00:00Z) or Unix milliseconds"
            ))
        })
}

pub(super) async fn audit(
    State(app): State<Arc<App>>,
    query: Result<Query<model::AuditQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<model::AuditList>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::bad_entry(e.to_string()))?;
    let filter = AuditFilter {
        since: q
            .since
            .as_deref()
            .map(|s| parse_time("since", s))
            .transpose()?,
        until: q
            .until
            .as_deref()
            .map(|s| parse_time("until", s))
            .transpose()?,
        actor: q.actor,
        project: q.project,
        action: q.action,
        outcome: q
            .outcome
            .map(|o| {
                o.parse::<crate::audit::Outcome>().map(|_| o).map_err(|_| {
                    ApiError::bad_entry(
                        "`outcome` is one of ok, denied, unauthenticated, rejected, error",
                    )
                })
            })
            .transpose()?,
        before: q.before,
        limit: q.limit.unwrap_or(100).clamp(1, 1000),
    };
    let limit = filter.limit as usize;
    let entries: Vec<model::AuditEntry> = app
        .store
        .query_audit(filter)
        .await?
        .into_iter()
        .map(|a| model::AuditEntry {
            id: a.id,
            at: rfc3339(a.at),
            actor: a.actor,
            token_id: a.token_id,
            action: a.action,
            target: a.target,
            project: a.project,
            scope: a.scope,
            remote: a.remote,
            status: a.status,
            outcome: a.outcome,
            detail: a.detail,
        })
        .collect();
    // A full page may have more behind it: the last record's id is where the next one starts.
    let next_before = (entries.len() >= limit)
        .then(|| entries.last().map(|e| e.id))
        .flatten();
    Ok(Json(model::AuditList {
        entries,
        next_before,
    }))
}
