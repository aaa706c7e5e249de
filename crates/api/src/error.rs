//! One JSON error shape for every failure: `{"error": {"code": "...", "message": "..."}}`.
//! `code` is stable and machine-readable; `message` is for people.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("missing or invalid API key")]
    Unauthorized,
    #[error("this API key is not allowed to read {0}")]
    Forbidden(&'static str),
    #[error("invalid parameter {name}: {problem}")]
    InvalidParameter { name: &'static str, problem: String },
    #[error("missing parameter {0}")]
    MissingParameter(&'static str),
    #[error("query string is malformed: {0}")]
    InvalidQuery(String),
    #[error("request body is not valid JSON: {0}")]
    InvalidBody(String),
    #[error("database unavailable")]
    Storage(#[from] invitrack_storage::StorageError),
    #[error("database unavailable")]
    Pool(String),
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: ErrorDetail<'a>,
}

#[derive(Serialize)]
struct ErrorDetail<'a> {
    code: &'a str,
    message: String,
}

impl ApiError {
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Self::Unauthorized => "unauthorized",
            Self::Forbidden(_) => "forbidden",
            Self::InvalidParameter { .. } => "invalid_parameter",
            Self::MissingParameter(_) => "missing_parameter",
            Self::InvalidQuery(_) => "invalid_query",
            Self::InvalidBody(_) => "invalid_body",
            Self::Storage(_) | Self::Pool(_) => "unavailable",
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::InvalidParameter { .. }
            | Self::MissingParameter(_)
            | Self::InvalidQuery(_)
            | Self::InvalidBody(_) => StatusCode::BAD_REQUEST,
            Self::Storage(_) | Self::Pool(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if self.status_code().is_server_error() {
            let mut chain = String::new();
            let mut source = std::error::Error::source(self);
            while let Some(cause) = source {
                chain.push_str(": ");
                chain.push_str(&cause.to_string());
                source = cause.source();
            }
            tracing::error!(error = %self, cause = %chain, "request failed");
        }
        let mut response = HttpResponse::build(self.status_code());
        if matches!(self, Self::Unauthorized) {
            response.insert_header(("WWW-Authenticate", "Bearer"));
        }
        response.json(ErrorBody {
            error: ErrorDetail {
                code: self.code(),
                message: self.to_string(),
            },
        })
    }
}

/// The same shape for errors actix produces itself (unknown routes, wrong methods).
#[must_use]
pub fn plain(status: StatusCode, code: &str, message: &str) -> HttpResponse {
    HttpResponse::build(status).json(ErrorBody {
        error: ErrorDetail {
            code,
            message: message.to_owned(),
        },
    })
}
