//! The OpenAPI document, generated from the handlers' annotations (`/openapi.json`, Swagger UI
//! at `/docs/`).

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{IntoResponses, Modify, OpenApi, ToSchema};

use crate::error::ErrorBody;
use crate::{admin, dashboard, invites};

/// The errors every authenticated endpoint may answer.
#[derive(IntoResponses)]
#[allow(dead_code)]
pub enum CommonErrors {
    /// A malformed or missing parameter or body field (`invalid_parameter`, `missing_parameter`,
    /// `invalid_query`, `invalid_body`); the message names it.
    #[response(status = 400)]
    BadRequest(ErrorBody),
    /// No key, or an unknown or revoked one (`unauthorized`).
    #[response(status = 401)]
    Unauthorized(ErrorBody),
    /// The key belongs to another bot or guild (`forbidden`), or has the read scope on a write
    /// (`insufficient_scope`).
    #[response(status = 403)]
    Forbidden(ErrorBody),
    /// The key's rate limit is exhausted (`rate_limited`); see `Retry-After`.
    #[response(status = 429, headers(("Retry-After" = u64, description = "seconds to wait")))]
    RateLimited(ErrorBody),
    /// The database is unreachable (`unavailable`).
    #[response(status = 503)]
    Unavailable(ErrorBody),
}

/// 404 for an id that names nothing.
#[derive(IntoResponses)]
#[allow(dead_code)]
pub enum NotFoundError {
    /// Nothing with this id (`member_not_found`, `reset_not_found`).
    #[response(status = 404)]
    NotFound(ErrorBody),
}

/// 409 for a write that conflicts with the current state.
#[derive(IntoResponses)]
#[allow(dead_code)]
pub enum ConflictError {
    /// Already done (`already_restored`).
    #[response(status = 409)]
    Conflict(ErrorBody),
}

/// `{"status": "ok"}`.
#[derive(ToSchema, serde::Serialize)]
pub struct Status {
    #[schema(example = "ok")]
    pub status: String,
}

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("a key from `invitrack keys create`"))
                    .build(),
            ),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "invitrack API",
        description = "InviteLogger-compatible invite counts, dashboards and admin writes. \
                       Every error is `{\"error\": {\"code\", \"message\"}}`."
    ),
    paths(
        invites::user,
        invites::code,
        dashboard::leaderboard,
        dashboard::member,
        dashboard::inviter_codes,
        dashboard::summary,
        admin::add_bonus,
        admin::list_bonus,
        admin::reset,
        admin::list_resets,
        admin::restore,
        admin::settings,
        admin::update_settings,
        admin::audit,
        crate::live,
        crate::ready,
    ),
    components(schemas(ErrorBody)),
    modifiers(&BearerAuth),
    tags(
        (name = "invitelogger", description = "InviteLogger's public endpoints, same shapes"),
        (name = "dashboard", description = "reads for dashboards"),
        (name = "admin", description = "writes need a key with the admin scope; every write is audited"),
        (name = "health", description = "for orchestrators; no key needed"),
    )
)]
pub struct ApiDoc;
