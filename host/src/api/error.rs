//! The API's one error type: it renders itself as a JSON body with a stable code.

use crate::code::ErrorCode;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// An API error: HTTP status, stable code, and a message a person can act on. Messages never
/// contain a secret value or a token.
#[derive(Debug)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// The stable code.
    pub code: ErrorCode,
    /// What went wrong and what to do.
    pub message: String,
}

impl ApiError {
    /// A new error.
    pub fn new(status: StatusCode, code: ErrorCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    /// `400 bad_entry`.
    pub fn bad_entry(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, ErrorCode::BadEntry, message)
    }

    /// `404 not_found`.
    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, ErrorCode::NotFound, message)
    }

    /// `413 too_large`.
    pub fn too_large(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, ErrorCode::TooLarge, message)
    }

    /// `500 internal`, logged in full, answered in general terms.
    pub fn internal(error: impl std::fmt::Display) -> ApiError {
        let id = uuid::Uuid::now_v7().simple().to_string();
        tracing::error!(error_id = %id, %error, "internal error");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::Internal,
            format!("internal error {id}; the server log has the details"),
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = super::model::ErrorBody {
            error: super::model::ErrorDetail {
                code: self.code,
                message: self.message,
            },
        };
        let mut response = (self.status, axum::Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> Self {
        use crate::store::StoreError;
        match e {
            StoreError::NotFound(m) => ApiError::not_found(m),
            StoreError::AlreadyExists(m) => {
                ApiError::new(StatusCode::CONFLICT, ErrorCode::AlreadyExists, m)
            }
            StoreError::Reserved(m) => ApiError::bad_entry(m),
            StoreError::Conflict(m) => ApiError::new(StatusCode::CONFLICT, ErrorCode::Conflict, m),
            StoreError::Unavailable(m) => {
                tracing::warn!(error = %m, "metadata store unavailable");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    ErrorCode::Unavailable,
                    "the metadata store cannot be reached; try again",
                )
            }
            other => ApiError::internal(other),
        }
    }
}

impl From<crate::packages::PackageError> for ApiError {
    fn from(e: crate::packages::PackageError) -> Self {
        use crate::packages::PackageError;
        match e {
            PackageError::Rejected(r) => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, r.code, r.message)
            }
            PackageError::Store(s) => s.into(),
            PackageError::Internal(e) => ApiError::internal(format!("{e:#}")),
        }
    }
}

impl From<crate::names::BadName> for ApiError {
    fn from(e: crate::names::BadName) -> Self {
        ApiError::bad_entry(e.0)
    }
}

impl From<crate::auth::AuthError> for ApiError {
    fn from(e: crate::auth::AuthError) -> Self {
        match e {
            crate::auth::AuthError::Unauthenticated(m) => {
                ApiError::new(StatusCode::UNAUTHORIZED, ErrorCode::Unauthenticated, m)
            }
            crate::auth::AuthError::Store(s) => s.into(),
        }
    }
}
