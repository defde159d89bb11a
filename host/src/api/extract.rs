//! The one JSON body extractor: every way a body can be refused (unreadable, over the limit,
//! not the expected shape) becomes the API's error body with a stable code.

use super::ApiError;
use super::model;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use serde::de::DeserializeOwned;

/// A request body type: what a caller is told it should have sent.
pub trait Shape: DeserializeOwned {
    /// The expected shape, for error messages.
    const EXPECTED: &'static str;
}

macro_rules! shapes {
    ($($t:ty => $expected:expr),* $(,)?) => {
        $(impl Shape for $t { const EXPECTED: &'static str = $expected; })*
    };
}

shapes! {
    model::CreateProject => r#"{"name": "..."}"#,
    model::CreateUser => r#"{"name": "...", "platform_admin"?: bool}"#,
    model::CreateToken => r#"{"name"?: "...", "expires_in"?: seconds}"#,
    model::CreateEnrollment => r#"{"expires_in"?: seconds}"#,
    model::Enroll => r#"{"code": "...", "name"?: "..."}"#,
    model::SetMember => r#"{"role": "viewer" | "developer" | "admin"}"#,
    model::Rollback => r#"{"version": N} or no body"#,
    model::NewManifest => r#"{"manifest": {...} or "TOML text", "base_version"?: N}"#,
    model::CreateSecret => r#"{"name": "...", "value": "..." or {...}, "description"?: "...", "labels"?: {...}}"#,
    model::SetSecret => r#"{"value": "..." or {...}, "description"?: "...", "labels"?: {...}}"#,
    model::UpdateSecret => r#"{"value"?: "..." or {...}, "description"?: "...", "labels"?: {...}} (at least one)"#,
    model::SecretRollback => r#"{"version": N}"#,
    model::ProjectSettings => r#"{"members_read_secrets"?: bool}"#,
    model::CreateSession => r#"{"token": "ew_..."}"#,
    model::CreateGrant => r#"{"project": "...", "package": "...", "version"?: N, "preview"?: bool}"#,
    model::ImportSecrets => r#"a secrets.json object {"NAME": value, ...}"#,
    model::Wrap => r#"{"ttl": seconds} or no body"#,
    model::Unwrap => r#"{"token": "..."}"#,
    // Vault's own CLI sends `null` when the token is in X-Vault-Token.
    Option<model::VaultUnwrap> => r#"{"token": "..."} or an X-Vault-Token header"#,
}

/// A JSON body of type `T`.
#[derive(Debug)]
pub struct Body<T>(pub T);

/// A JSON body of type `T` that may be left out (empty or blank: `T::default()`).
#[derive(Debug)]
pub struct MaybeBody<T>(pub T);

async fn bytes<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, ApiError> {
    Bytes::from_request(req, state).await.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::too_large("the request body is too large")
        } else {
            ApiError::bad_entry(format!("could not read the body: {e}"))
        }
    })
}

fn parse<T: Shape>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| {
        let mut text = e.to_string();
        // Where a value is wrong (an unknown role, a string for a number) its position in a
        // one-line body says nothing the message does not; where the JSON itself is broken,
        // the position is the message, and stays.
        if e.classify() == serde_json::error::Category::Data {
            let position = format!(" at line {} column {}", e.line(), e.column());
            if let Some(bare) = text.strip_suffix(&position) {
                text = bare.to_string();
            }
        }
        ApiError::bad_entry(format!("expected {}: {text}", T::EXPECTED))
    })
}

impl<S: Send + Sync, T: Shape> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let body = bytes(req, state).await?;
        parse(&body).map(Body)
    }
}

impl<S: Send + Sync, T: Shape + Default> FromRequest<S> for MaybeBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let body = bytes(req, state).await?;
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(MaybeBody(T::default()));
        }
        parse(&body).map(MaybeBody)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::code::ErrorCode;

    #[test]
    fn a_wrong_value_is_named_without_a_position_and_broken_json_with_one() {
        let e = parse::<model::SetMember>(br#"{"role": "owner"}"#).unwrap_err();
        assert_eq!(e.code, ErrorCode::BadEntry);
        assert_eq!(
            e.message,
            r#"expected {"role": "viewer" | "developer" | "admin"}: unknown variant `owner`, expected one of `viewer`, `developer`, `admin`"#
        );
        let e = parse::<model::SetMember>(br#"{"role": "admin""#).unwrap_err();
        assert_eq!(e.code, ErrorCode::BadEntry);
        assert!(e.message.ends_with("at line 1 column 16"), "{}", e.message);
    }
}
