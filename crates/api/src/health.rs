//! Health checks for orchestrators (`/health/live`, `/health/ready`); no key needed.

use actix_web::{HttpResponse, web};

use crate::AppState;
use crate::error::{ApiError, ErrorBody};
use crate::openapi_parts::Status;

/// The process is up.
#[utoipa::path(
    get,
    path = "/health/live",
    tag = "health",
    responses((status = 200, description = "up", body = Status))
)]
pub async fn live() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"status": "ok"}))
}

/// The database answers.
#[utoipa::path(
    get,
    path = "/health/ready",
    tag = "health",
    responses(
        (status = 200, description = "ready", body = Status),
        (status = 503, description = "the database does not answer (`unavailable`)", body = ErrorBody)
    )
)]
pub async fn ready(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    use diesel_async::RunQueryDsl as _;
    let mut conn = state.connection().await?;
    diesel::sql_query("SELECT 1")
        .execute(&mut conn)
        .await
        .map_err(invitrack_storage::StorageError::from)?;
    Ok(HttpResponse::Ok().json(serde_json::json!({"status": "ready"})))
}
