//! API errors as `{"error": {"code", "message"}}`, and a JSON extractor that reports what was
//! wrong with a body.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, FromRequestParts, Query, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use ordonis_core::{Error, InvalidInput, StoreError};
use serde::de::DeserializeOwned;

/// An error answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable machine code (`bad_request`, `not_found`, …).
    pub code: &'static str,
    /// What was wrong.
    pub message: String,
}

impl ApiError {
    /// An error with a status, code and message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    /// 400.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    /// 404.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// 409.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", message)
    }

    /// 401.
    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "missing or wrong bearer token",
        )
    }

    /// 500 (the detail is logged, not returned).
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        tracing::error!(error = %detail, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({"error": {"code": self.code, "message": self.message}});
        (self.status, Json(body)).into_response()
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(m) => Self::not_found(m),
            StoreError::Invalid(i) => Self::bad_request(i.to_string()),
            StoreError::Conflict(m) => Self::conflict(m),
            StoreError::Unavailable { message: m, .. } => {
                tracing::warn!(error = %m, "store unavailable");
                Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "the database is unavailable; try again",
                )
            }
            other => Self::internal(other),
        }
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        match e {
            Error::Invalid(i) => Self::bad_request(i.to_string()),
            Error::NotFound(m) => Self::not_found(m),
            Error::Conflict(m) => Self::conflict(m),
            Error::Store(s) => s.into(),
            Error::UnknownProvider(p) => Self::bad_request(format!("unknown provider {p:?}")),
            Error::Provider(p) => Self::new(StatusCode::BAD_GATEWAY, "provider", p.to_string()),
            other => Self::internal(other),
        }
    }
}

impl From<ordonis_core::InvalidInput> for ApiError {
    fn from(e: ordonis_core::InvalidInput) -> Self {
        Self::bad_request(e.to_string())
    }
}

/// `Json<T>` whose rejections are [`ApiError`]s: 400 with what was wrong for malformed or
/// mistyped JSON, 415 without a JSON content type, 413 over the body limit.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(Self(v)),
            Err(rej) => Err(json_rejection(&rej)),
        }
    }
}

fn json_rejection(rej: &JsonRejection) -> ApiError {
    match rej {
        JsonRejection::MissingJsonContentType(_) => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "expected Content-Type: application/json",
        ),
        JsonRejection::JsonDataError(e) => ApiError::bad_request(e.body_text()),
        JsonRejection::JsonSyntaxError(e) => ApiError::bad_request(e.body_text()),
        other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            "request body too large",
        ),
        other => ApiError::bad_request(other.body_text()),
    }
}

/// `Query<T>` whose rejection is an [`ApiError`]: 400 saying which parameter was wrong.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiQuery<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Query::<T>::from_request_parts(parts, state).await {
            Ok(Query(v)) => Ok(Self(v)),
            Err(rej) => Err(ApiError::bad_request(rej.body_text())),
        }
    }
}

/// Why the server or a worker could not start: each names what to fix.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// A setting is missing or invalid (it names the flag or environment variable).
    #[error(transparent)]
    Setting(#[from] InvalidInput),
    /// The store could not be opened, migrated or read.
    #[error("{what}: {source}")]
    Store {
        /// What was being done.
        what: &'static str,
        /// The store's error.
        source: StoreError,
    },
    /// A file or socket could not be used.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The system's error.
        source: std::io::Error,
    },
    /// The secret key does not open this database's secrets.
    #[error(
        "the secret key (ORDONIS_SECRET_KEY / --secret-key) is not the one this database was \
         created with; refusing to start. Use the original key (on SQLite it is kept in \
         <database>.secret-key)"
    )]
    WrongSecretKey,
    /// An adapter could not be built.
    #[error("the {provider} adapter: {source}")]
    Adapter {
        /// Which adapter.
        provider: &'static str,
        /// Its error.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}
