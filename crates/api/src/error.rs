//! One JSON error shape for every failure:
//! `{"error": {"code": "...", "message": "..."}, "message": "..."}`. `code` is stable and
//! machine-readable; `message` is for people, and is repeated at the top level because
//! InviteLogger answers errors with a top-level `message`, which its clients read.
//!
//! Handlers fail with [`ApiError`]. Errors actix produces itself (unknown routes, wrong methods,
//! extractor and payload errors) go through [`normalize`], which rewrites any error response
//! that is not already JSON into the same shape.

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{CONTENT_TYPE, RETRY_AFTER};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::{ErrorHandlerResponse, Next};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    #[error("missing or invalid API key")]
    Unauthorized,
    #[error("this API key is not allowed to read {0}")]
    Forbidden(&'static str),
    #[error("this API key has the read scope; this endpoint needs an admin key")]
    InsufficientScope,
    #[error("invalid parameter {name}: {problem}")]
    InvalidParameter { name: &'static str, problem: String },
    #[error("missing parameter {0}")]
    MissingParameter(&'static str),
    #[error("query string is malformed: {0}")]
    InvalidQuery(String),
    #[error("request body is not valid JSON: {0}")]
    InvalidBody(String),
    #[error("a JSON body needs the header Content-Type: application/json")]
    UnsupportedMediaType,
    #[error("the request body did not arrive within {secs} s")]
    BodyTimeout { secs: u64 },
    #[error("{what} not found")]
    NotFound {
        code: &'static str,
        what: &'static str,
    },
    #[error("{message}")]
    Conflict {
        code: &'static str,
        message: &'static str,
    },
    #[error("rate limit exceeded: retry in {retry_after_secs} s")]
    RateLimited { retry_after_secs: u64 },
    #[error("database unavailable")]
    Storage(#[from] invitrack_storage::StorageError),
    #[error("database unavailable")]
    Pool(String),
    #[error("internal error")]
    Internal(&'static str),
}

/// The body of every error response.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
    /// `error.message` again, where InviteLogger's clients look for it.
    #[schema(example = "invalid parameter guild_id: \"abc\" is not a Discord id")]
    pub message: String,
}

impl ErrorBody {
    #[must_use]
    pub fn new(code: &str, message: String) -> Self {
        Self {
            error: ErrorDetail {
                code: code.to_owned(),
                message: message.clone(),
            },
            message,
        }
    }
}

/// What went wrong.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable, machine-readable: `unauthorized`, `forbidden`, `insufficient_scope`,
    /// `invalid_parameter`, `missing_parameter`, `invalid_query`, `invalid_body`, `not_found`,
    /// `member_not_found`, `reset_not_found`, `method_not_allowed`, `request_timeout`,
    /// `already_restored`, `payload_too_large`, `unsupported_media_type`, `rate_limited`,
    /// `unavailable`, `internal`.
    #[schema(example = "invalid_parameter")]
    pub code: String,
    /// For people; may change.
    #[schema(example = "invalid parameter guild_id: \"abc\" is not a Discord id")]
    pub message: String,
}

impl ApiError {
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Self::Unauthorized => "unauthorized",
            Self::Forbidden(_) => "forbidden",
            Self::InsufficientScope => "insufficient_scope",
            Self::InvalidParameter { .. } => "invalid_parameter",
            Self::MissingParameter(_) => "missing_parameter",
            Self::InvalidQuery(_) => "invalid_query",
            Self::InvalidBody(_) => "invalid_body",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::BodyTimeout { .. } => "request_timeout",
            Self::NotFound { code, .. } | Self::Conflict { code, .. } => code,
            Self::RateLimited { .. } => "rate_limited",
            Self::Storage(_) | Self::Pool(_) => "unavailable",
            Self::Internal(_) => "internal",
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) | Self::InsufficientScope => StatusCode::FORBIDDEN,
            Self::InvalidParameter { .. }
            | Self::MissingParameter(_)
            | Self::InvalidQuery(_)
            | Self::InvalidBody(_) => StatusCode::BAD_REQUEST,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::BodyTimeout { .. } => StatusCode::REQUEST_TIMEOUT,
            Self::NotFound { .. } => StatusCode::NOT_FOUND,
            Self::Conflict { .. } => StatusCode::CONFLICT,
            Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Storage(_) | Self::Pool(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
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
            if let Self::Internal(what) = self {
                chain.push_str(": ");
                chain.push_str(what);
            }
            tracing::error!(error = %self, cause = %chain, "request failed");
        }
        let mut response = HttpResponse::build(self.status_code());
        match self {
            Self::Unauthorized => {
                response.insert_header(("WWW-Authenticate", "Bearer"));
            }
            Self::RateLimited { retry_after_secs } => {
                response.insert_header((RETRY_AFTER, retry_after_secs.to_string()));
            }
            _ => {}
        }
        response.json(ErrorBody::new(self.code(), self.to_string()))
    }
}

/// The same shape for errors actix produces itself (unknown routes, wrong methods).
#[must_use]
pub fn plain(status: StatusCode, code: &str, message: &str) -> HttpResponse {
    HttpResponse::build(status).json(ErrorBody::new(code, message.to_owned()))
}

/// The code for an error response actix made itself, from its status.
fn code_for(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "bad_request",
        401 => "unauthorized",
        403 => "forbidden",
        404 => "not_found",
        405 => "method_not_allowed",
        408 => "request_timeout",
        411 => "length_required",
        413 => "payload_too_large",
        414 => "uri_too_long",
        415 => "unsupported_media_type",
        429 => "rate_limited",
        431 => "headers_too_large",
        503 => "unavailable",
        s if s >= 500 => "internal",
        _ => "bad_request",
    }
}

/// Middleware handler (`ErrorHandlers::default_handler`): every 4xx/5xx response whose body
/// is not JSON already becomes `{"error": {...}}`.
///
/// # Errors
/// Never; the signature is actix's.
pub fn normalize<B>(res: ServiceResponse<B>) -> actix_web::Result<ErrorHandlerResponse<B>> {
    let is_json = res
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if is_json {
        return Ok(ErrorHandlerResponse::Response(res.map_into_left_body()));
    }
    let status = res.status();
    let message = res.response().error().map_or_else(
        || status.canonical_reason().unwrap_or("error").to_owned(),
        ToString::to_string,
    );
    let allow = res.headers().get("allow").cloned();
    let (req, _) = res.into_parts();
    let mut response = plain(status, code_for(status), &message);
    if let Some(allow) = allow {
        response
            .headers_mut()
            .insert(actix_web::http::header::ALLOW, allow);
    }
    Ok(ErrorHandlerResponse::Response(
        ServiceResponse::new(req, response).map_into_right_body(),
    ))
}

/// 405 for a known path with a method it does not serve; `allow` lists the ones it does.
#[must_use]
pub fn method_not_allowed(allow: &str) -> HttpResponse {
    let mut response = plain(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        &format!("this endpoint serves {allow} only"),
    );
    if let Ok(value) = actix_web::http::header::HeaderValue::from_str(allow) {
        response
            .headers_mut()
            .insert(actix_web::http::header::ALLOW, value);
    }
    response
}

/// Methods the API serves somewhere (`OPTIONS` for CORS preflights).
const STANDARD_METHODS: [Method; 7] = [
    Method::GET,
    Method::HEAD,
    Method::POST,
    Method::PUT,
    Method::PATCH,
    Method::DELETE,
    Method::OPTIONS,
];

/// Middleware (outermost): a method outside [`STANDARD_METHODS`] is answered 405 here, before
/// the metrics middleware sees it, since each method name would otherwise become a label of
/// the request histogram that anyone could grow without a key.
///
/// # Errors
/// Those of the wrapped service.
pub async fn standard_methods_only(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> actix_web::Result<ServiceResponse<EitherBody<impl MessageBody>>> {
    if STANDARD_METHODS.contains(req.method()) {
        return Ok(next.call(req).await?.map_into_left_body());
    }
    let response = method_not_allowed("GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS");
    Ok(req.into_response(response).map_into_right_body())
}

/// 404 for a path no endpoint serves.
pub async fn not_found() -> HttpResponse {
    plain(StatusCode::NOT_FOUND, "not_found", "no such endpoint")
}
