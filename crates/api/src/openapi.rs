//! The OpenAPI document, generated from the handlers' annotations (`/openapi.json`, Swagger UI
//! at `/docs/`). It lists the handlers; the pieces their annotations share (error responses,
//! parameter descriptions) are in `openapi_parts.rs`, so the handlers never import this file.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::error::ErrorBody;
use crate::{admin, dashboard, export, guilds, health, import, invites, keys, settings, webhooks};

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
        guilds::me,
        guilds::guilds,
        guilds::joins,
        export::joins,
        export::inviters,
        import::bonus,
        import::joins,
        keys::list,
        keys::create,
        keys::revoke,
        admin::add_bonus,
        admin::list_bonus,
        admin::reset,
        admin::list_resets,
        admin::restore,
        settings::settings,
        settings::update_settings,
        settings::preview,
        webhooks::create,
        webhooks::list,
        webhooks::delete,
        webhooks::deliveries,
        admin::audit,
        health::live,
        health::ready,
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
