//! Discord REST v10 under `/api/v10`: the routes an invite tracker uses.
//!
//! Every request needs `Authorization: Bot <token>` (401 otherwise; the OAuth2 routes of
//! `crate::oauth2` and the Bearer variants of `/users/@me` are its exceptions); every answer carries
//! `X-RateLimit-*` headers from [`crate::ratelimit`]. Errors are Discord's JSON
//! (`{"message":"Unknown Guild","code":10004}`).

use crate::{
    command_form,
    error::WorldError,
    interaction_form,
    message_form::{self, FormError},
    ratelimit::{RateHeaders, Route, Verdict},
    wire,
    world::{State, World},
};
use actix_web::{
    HttpRequest, HttpResponse,
    http::{StatusCode, header},
    web,
};
use serde::Deserialize;
use std::time::{Duration, Instant};
use twilight_model::id::Id;

/// Mounts the REST routes on a `/api/v10` scope.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/gateway", web::get().to(get_gateway))
        .route("/gateway/bot", web::get().to(get_gateway_bot))
        .route("/users/@me", web::get().to(get_current_user))
        .route(
            "/users/@me/guilds",
            web::get().to(crate::oauth2::current_user_guilds),
        )
        .route("/applications/@me", web::get().to(get_current_application))
        .route(
            "/guilds/{guild_id}/invites",
            web::get().to(get_guild_invites),
        )
        .route(
            "/guilds/{guild_id}/vanity-url",
            web::get().to(get_vanity_url),
        )
        .route(
            "/guilds/{guild_id}/members-search",
            web::post().to(search_members),
        )
        .route("/invites/{code}", web::get().to(get_invite))
        .route("/invites/{code}", web::delete().to(delete_invite))
        .route(
            "/channels/{channel_id}/invites",
            web::get().to(get_channel_invites),
        )
        .route(
            "/channels/{channel_id}/invites",
            web::post().to(create_channel_invite),
        )
        .route(
            "/channels/{channel_id}/messages",
            web::post().to(create_message),
        )
        .route(
            "/applications/{application_id}/commands",
            web::get().to(get_commands),
        )
        .route(
            "/applications/{application_id}/commands",
            web::put().to(set_commands),
        )
        .route(
            "/interactions/{interaction_id}/{token}/callback",
            web::post().to(interaction_callback),
        )
        .route(
            "/webhooks/{application_id}/{token}/messages/@original",
            web::patch().to(edit_original),
        )
        .route(
            "/webhooks/{application_id}/{token}",
            web::post().to(create_followup),
        )
        .configure(crate::oauth2::configure)
        .default_service(web::to(not_found));
}

/// A Discord error answer.
#[derive(Debug)]
pub(crate) struct ApiError {
    status: StatusCode,
    message: String,
    pub(crate) code: u32,
    /// What is wrong with which field, for an invalid form body.
    pub(crate) errors: Option<serde_json::Value>,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, message: impl Into<String>, code: u32) -> Self {
        Self {
            status,
            message: message.into(),
            code,
            errors: None,
        }
    }

    /// 400 `Invalid Form Body` (50035) with one field's error, e.g. `("limit",
    /// "NUMBER_TYPE_MAX", "int value should be less than or equal to 200.")`.
    pub(crate) fn form(field: &str, code: &str, message: &str) -> Self {
        Self {
            errors: Some(serde_json::json!({
                field: {"_errors": [{"code": code, "message": message}]}
            })),
            ..Self::new(StatusCode::BAD_REQUEST, "Invalid Form Body", 50035)
        }
    }

    pub(crate) fn response(&self) -> HttpResponse {
        HttpResponse::build(self.status).json(wire::ApiError {
            message: &self.message,
            code: self.code,
            errors: self.errors.as_ref(),
        })
    }
}

impl From<FormError> for ApiError {
    fn from(e: FormError) -> Self {
        match &e {
            FormError::InvalidJson => Self::new(StatusCode::BAD_REQUEST, e.to_string(), 50109),
            FormError::InvalidForm(errors) => Self {
                errors: Some(errors.to_json()),
                ..Self::new(StatusCode::BAD_REQUEST, e.to_string(), 50035)
            },
        }
    }
}

impl From<WorldError> for ApiError {
    fn from(e: WorldError) -> Self {
        match e {
            WorldError::UnknownGuild(_) => Self::new(StatusCode::NOT_FOUND, "Unknown Guild", 10004),
            WorldError::UnknownChannel(_) => {
                Self::new(StatusCode::NOT_FOUND, "Unknown Channel", 10003)
            }
            WorldError::UnknownInvite(_) | WorldError::NoVanity(_) => {
                Self::new(StatusCode::NOT_FOUND, "Unknown Invite", 10006)
            }
            WorldError::NotMember { .. } => {
                Self::new(StatusCode::NOT_FOUND, "Unknown Member", 10007)
            }
            WorldError::MissingPermissions => {
                Self::new(StatusCode::FORBIDDEN, "Missing Permissions", 50013)
            }
            WorldError::MissingAccess => Self::new(StatusCode::FORBIDDEN, "Missing Access", 50001),
            WorldError::EmptyMessage => Self::new(
                StatusCode::BAD_REQUEST,
                "Cannot send an empty message",
                50006,
            ),
            WorldError::InvalidForm(errors) => Self {
                errors: Some(errors),
                ..Self::new(StatusCode::BAD_REQUEST, "Invalid Form Body", 50035)
            },
            WorldError::UnknownApplication(_) => {
                Self::new(StatusCode::NOT_FOUND, "Unknown Application", 10002)
            }
            WorldError::UnknownInteraction => {
                Self::new(StatusCode::NOT_FOUND, "Unknown interaction", 10062)
            }
            WorldError::InteractionAcknowledged => Self::new(
                StatusCode::BAD_REQUEST,
                "Interaction has already been acknowledged.",
                40060,
            ),
            WorldError::UnknownWebhook => {
                Self::new(StatusCode::NOT_FOUND, "Unknown Webhook", 10015)
            }
            WorldError::InvalidWebhookToken => {
                Self::new(StatusCode::UNAUTHORIZED, "Invalid Webhook Token", 50027)
            }
            WorldError::UnknownMessage => {
                Self::new(StatusCode::NOT_FOUND, "Unknown Message", 10008)
            }
            WorldError::Unauthorized => Self::new(StatusCode::UNAUTHORIZED, "401: Unauthorized", 0),
            WorldError::AlreadyMember { .. }
            | WorldError::CodeTaken(_)
            | WorldError::Invalid(_) => Self::new(
                StatusCode::BAD_REQUEST,
                format!("Invalid Form Body: {e}"),
                50035,
            ),
        }
    }
}

fn not_snowflake(raw: &str) -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        format!("Invalid Form Body: value {raw:?} is not snowflake"),
        50035,
    )
}

fn snowflake<T>(raw: &str) -> Result<Id<T>, ApiError> {
    raw.parse::<u64>()
        .ok()
        .and_then(Id::new_checked)
        .ok_or_else(|| not_snowflake(raw))
}

pub(crate) fn authorized(req: &HttpRequest, world: &World) -> Result<(), ApiError> {
    let token = &world.bot().token;
    let ok = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bot "))
        .is_some_and(|t| t == token.as_str());
    if ok {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "401: Unauthorized",
            0,
        ))
    }
}

fn with_headers(mut res: HttpResponse, headers: &RateHeaders) -> HttpResponse {
    for (name, value) in headers.pairs(Instant::now()) {
        if let Ok(value) = header::HeaderValue::from_str(&value) {
            res.headers_mut()
                .insert(header::HeaderName::from_static(name), value);
        }
    }
    res
}

fn insert_header(res: &mut HttpResponse, name: &'static str, value: &str) {
    if let Ok(value) = header::HeaderValue::from_str(value) {
        res.headers_mut()
            .insert(header::HeaderName::from_static(name), value);
    }
}

/// An error answer that still carries (and counts against) the route's rate limit headers.
pub(crate) fn reject(world: &World, route: Route, major: u64, e: ApiError) -> HttpResponse {
    match world.limiter().check(route, major, Instant::now()) {
        Verdict::Allowed(headers) | Verdict::Limited { headers, .. } => {
            with_headers(e.response(), &headers)
        }
        Verdict::GlobalLimited { retry_after } => global_limited(retry_after),
    }
}

/// 429 of the bot-wide limit, as Discord sends it.
fn global_limited(retry_after: f64) -> HttpResponse {
    let mut res = HttpResponse::TooManyRequests().json(wire::RateLimited {
        message: "You are being rate limited.",
        retry_after,
        global: true,
    });
    insert_header(
        &mut res,
        "retry-after",
        &retry_after.ceil().max(1.0).to_string(),
    );
    insert_header(&mut res, "x-ratelimit-global", "true");
    insert_header(&mut res, "x-ratelimit-scope", "global");
    res
}

/// An injected 5xx, shaped like what Discord's edge sends.
fn server_error(status: u16) -> HttpResponse {
    match status {
        502 => HttpResponse::BadGateway()
            .content_type("text/plain; charset=utf-8")
            .body("error code: 502"),
        503 => HttpResponse::ServiceUnavailable()
            .content_type("text/plain; charset=utf-8")
            .body(
                "upstream connect error or disconnect/reset before headers. reset reason: overflow",
            ),
        _ => HttpResponse::InternalServerError().json(wire::ApiError {
            message: "500: Internal Server Error",
            code: 0,
            errors: None,
        }),
    }
}

async fn pause(d: Duration) {
    if !d.is_zero() {
        tokio::time::sleep(d).await;
    }
}

/// Runs one REST request: auth, injected faults (latency, 5xx), global and route rate
/// limits, then `f` under the state lock at the read point of the latency. `f` answers a
/// JSON body (or nothing for 204).
pub(crate) async fn answer(
    req: &HttpRequest,
    world: &World,
    route: Route,
    major: u64,
    f: impl FnOnce(&mut State) -> Result<(StatusCode, Option<String>), WorldError>,
) -> HttpResponse {
    if let Err(e) = authorized(req, world) {
        return reject(world, route, major, e);
    }
    answer_unauthenticated(world, route, major, f).await
}

/// [`answer`] without the `Authorization` check: the interaction routes, which Discord
/// authenticates by the interaction token in the path.
pub(crate) async fn answer_unauthenticated(
    world: &World,
    route: Route,
    major: u64,
    f: impl FnOnce(&mut State) -> Result<(StatusCode, Option<String>), WorldError>,
) -> HttpResponse {
    let plan = world.sample_faults(route);
    if let Some(status) = plan.error {
        pause(plan.before_read + plan.after_read).await;
        world.limiter().count_server_error(route);
        tracing::info!(?route, major, status, "injected server error");
        return server_error(status);
    }
    let verdict = world.limiter().check(route, major, Instant::now());
    let headers = match verdict {
        Verdict::Allowed(headers) => headers,
        Verdict::Limited {
            headers,
            retry_after,
        } => {
            tracing::info!(?route, major, retry_after, "rate limited");
            pause(plan.before_read + plan.after_read).await;
            let retry_after = headers.reset_after(Instant::now());
            let mut res = HttpResponse::TooManyRequests().json(wire::RateLimited {
                message: "You are being rate limited.",
                retry_after,
                global: false,
            });
            insert_header(
                &mut res,
                "retry-after",
                &retry_after.ceil().max(1.0).to_string(),
            );
            return with_headers(res, &headers);
        }
        Verdict::GlobalLimited { retry_after } => {
            tracing::info!(?route, major, retry_after, "globally rate limited");
            pause(plan.before_read + plan.after_read).await;
            return global_limited(retry_after);
        }
    };
    pause(plan.before_read).await;
    let result = f(&mut world.lock());
    pause(plan.after_read).await;
    let res = match result {
        Ok((status, Some(body))) => HttpResponse::build(status)
            .content_type("application/json")
            .body(body),
        Ok((status, None)) => HttpResponse::build(status).finish(),
        Err(e) => ApiError::from(e).response(),
    };
    with_headers(res, &headers)
}

pub(crate) fn ok(body: String) -> Result<(StatusCode, Option<String>), WorldError> {
    Ok((StatusCode::OK, Some(body)))
}

fn json<T: serde::Serialize>(v: &T) -> Result<(StatusCode, Option<String>), WorldError> {
    serde_json::to_string(v)
        .map(|b| (StatusCode::OK, Some(b)))
        .map_err(|e| WorldError::Invalid(e.to_string()))
}

async fn get_gateway(req: HttpRequest, world: web::Data<World>) -> HttpResponse {
    let url = gateway_url(&req, &world);
    HttpResponse::Ok().json(wire::Gateway { url: &url })
}

fn gateway_url(req: &HttpRequest, world: &World) -> String {
    req.headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map_or_else(
            || world.bot().gateway_url.clone(),
            |host| format!("ws://{host}"),
        )
}

async fn get_gateway_bot(req: HttpRequest, world: web::Data<World>) -> HttpResponse {
    let url = gateway_url(&req, &world);
    answer(&req, &world, Route::GatewayBot, 0, |s| {
        json(&wire::GatewayBot {
            url: &url,
            shards: s.bot().shards,
            session_start_limit: wire::SessionStartLimit {
                total: 1000,
                remaining: 1000,
                reset_after: 86_400_000,
                max_concurrency: 1,
            },
        })
    })
    .await
}

async fn get_current_user(req: HttpRequest, world: web::Data<World>) -> HttpResponse {
    if let Some(token) = crate::oauth2::bearer_token(&req) {
        return crate::oauth2::bearer_answer(&world, &token, |s, token| {
            s.rest_oauth2_current_user(token)
        })
        .await;
    }
    answer(&req, &world, Route::CurrentUser, 0, |s| {
        json(&s.bot().current_user())
    })
    .await
}

async fn get_current_application(req: HttpRequest, world: web::Data<World>) -> HttpResponse {
    answer(&req, &world, Route::CurrentApplication, 0, |s| {
        let bot = s.bot();
        let mut application = wire::Application::of_bot(
            bot.application_id(),
            &bot.username,
            &bot.verify_key,
            bot.user(),
            bot.user(),
            s.guild_count() as u64,
        );
        application.redirect_uris = s.oauth2_redirect_uris();
        json(&application)
    })
    .await
}

async fn get_guild_invites(
    req: HttpRequest,
    path: web::Path<String>,
    world: web::Data<World>,
) -> HttpResponse {
    let guild_id = match snowflake(&path) {
        Ok(id) => id,
        Err(e) => return reject(&world, Route::GuildInvites, 0, e),
    };
    answer(&req, &world, Route::GuildInvites, guild_id.get(), |s| {
        ok(s.rest_guild_invites(guild_id)?)
    })
    .await
}

async fn get_vanity_url(
    req: HttpRequest,
    path: web::Path<String>,
    world: web::Data<World>,
) -> HttpResponse {
    let guild_id = match snowflake(&path) {
        Ok(id) => id,
        Err(e) => return reject(&world, Route::GuildVanityUrl, 0, e),
    };
    answer(&req, &world, Route::GuildVanityUrl, guild_id.get(), |s| {
        ok(s.rest_vanity(guild_id)?)
    })
    .await
}

/// `POST /guilds/{id}/members-search` (`docs/discord-members-search.md`): the form is checked
/// before the guild, as for other bodies.
async fn search_members(
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
    world: web::Data<World>,
) -> HttpResponse {
    let guild_id = match snowflake(&path) {
        Ok(id) => id,
        Err(e) => return reject(&world, Route::GuildMembersSearch, 0, e),
    };
    let search = match crate::search_form::parse(&body) {
        Ok(search) => search,
        Err(e) => return reject(&world, Route::GuildMembersSearch, guild_id.get(), e),
    };
    answer(
        &req,
        &world,
        Route::GuildMembersSearch,
        guild_id.get(),
        |s| s.rest_members_search(guild_id, &search),
    )
    .await
}

#[derive(Debug, Deserialize)]
struct InviteQuery {
    with_counts: Option<bool>,
}

async fn get_invite(
    req: HttpRequest,
    path: web::Path<String>,
    query: web::Query<InviteQuery>,
    world: web::Data<World>,
) -> HttpResponse {
    let with_counts = query.with_counts.unwrap_or(false);
    answer(&req, &world, Route::Invite, 0, |s| {
        ok(s.rest_invite(&path, with_counts)?)
    })
    .await
}

async fn delete_invite(
    req: HttpRequest,
    path: web::Path<String>,
    world: web::Data<World>,
) -> HttpResponse {
    answer(&req, &world, Route::Invite, 0, |s| {
        ok(s.rest_delete_invite(&path)?)
    })
    .await
}

async fn get_channel_invites(
    req: HttpRequest,
    path: web::Path<String>,
    world: web::Data<World>,
) -> HttpResponse {
    let channel_id = match snowflake(&path) {
        Ok(id) => id,
        Err(e) => return reject(&world, Route::ChannelInvites, 0, e),
    };
    answer(&req, &world, Route::ChannelInvites, channel_id.get(), |s| {
        ok(s.rest_channel_invites(channel_id)?)
    })
    .await
}

#[derive(Debug, Default, Deserialize)]
struct CreateInviteBody {
    max_age: Option<u32>,
    max_uses: Option<u32>,
    temporary: Option<bool>,
}

fn parse_body<T: for<'de> Deserialize<'de> + Default>(body: &[u8]) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("Invalid Form Body: {e}"),
            50035,
        )
    })
}

async fn create_channel_invite(
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
    world: web::Data<World>,
) -> HttpResponse {
    let channel_id = match snowflake(&path) {
        Ok(id) => id,
        Err(e) => return reject(&world, Route::CreateChannelInvite, 0, e),
    };
    let body: CreateInviteBody = match parse_body(&body) {
        Ok(b) => b,
        Err(e) => return reject(&world, Route::CreateChannelInvite, 0, e),
    };
    // Discord's bounds: max_age up to 7 days, max_uses up to 100.
    if body.max_age.is_some_and(|age| age > 604_800) || body.max_uses.is_some_and(|uses| uses > 100)
    {
        let e = ApiError::new(
            StatusCode::BAD_REQUEST,
            "Invalid Form Body: max_age is at most 604800, max_uses at most 100",
            50035,
        );
        return reject(&world, Route::CreateChannelInvite, 0, e);
    }
    answer(
        &req,
        &world,
        Route::CreateChannelInvite,
        channel_id.get(),
        |s| {
            // Discord's defaults: 24 hours, unlimited uses.
            let body = s.rest_create_invite(
                channel_id,
                body.max_age.unwrap_or(86_400),
                body.max_uses.unwrap_or(0),
                body.temporary.unwrap_or(false),
            )?;
            ok(body)
        },
    )
    .await
}

async fn create_message(
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
    world: web::Data<World>,
) -> HttpResponse {
    let channel_id = match snowflake(&path) {
        Ok(id) => id,
        Err(e) => return reject(&world, Route::CreateMessage, 0, e),
    };
    // Discord checks the form before the channel: a bad body is a 400 wherever it goes.
    let message = match message_form::parse(&body) {
        Ok(message) => message,
        Err(e) => return reject(&world, Route::CreateMessage, channel_id.get(), e.into()),
    };
    answer(&req, &world, Route::CreateMessage, channel_id.get(), |s| {
        ok(s.rest_post_message(channel_id, message)?)
    })
    .await
}

async fn get_commands(
    req: HttpRequest,
    path: web::Path<String>,
    world: web::Data<World>,
) -> HttpResponse {
    let application_id = match snowflake(&path) {
        Ok(id) => id,
        Err(e) => return reject(&world, Route::Commands, 0, e),
    };
    answer(&req, &world, Route::Commands, application_id.get(), |s| {
        ok(s.rest_commands(application_id)?)
    })
    .await
}

async fn set_commands(
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
    world: web::Data<World>,
) -> HttpResponse {
    let application_id = match snowflake(&path) {
        Ok(id) => id,
        Err(e) => return reject(&world, Route::Commands, 0, e),
    };
    if let Err(e) = authorized(&req, &world) {
        return reject(&world, Route::Commands, application_id.get(), e);
    }
    let commands = match command_form::parse(&body) {
        Ok(commands) => commands,
        Err(e) => return reject(&world, Route::Commands, application_id.get(), e.into()),
    };
    answer(&req, &world, Route::Commands, application_id.get(), |s| {
        ok(s.rest_set_commands(application_id, commands)?)
    })
    .await
}

#[derive(Debug, Deserialize)]
struct CallbackQuery {
    with_response: Option<bool>,
}

/// `POST /interactions/{id}/{token}/callback`: no `Authorization` needed (twilight sends
/// none); the token in the path is the credential.
async fn interaction_callback(
    path: web::Path<(String, String)>,
    query: web::Query<CallbackQuery>,
    body: web::Bytes,
    world: web::Data<World>,
) -> HttpResponse {
    let (raw_id, token) = path.into_inner();
    let interaction_id = match snowflake(&raw_id) {
        Ok(id) => id,
        Err(e) => return reject(&world, Route::InteractionCallback, 0, e),
    };
    let major = interaction_id.get();
    let form = match interaction_form::parse_callback(&body) {
        Ok(form) => form,
        Err(e) => return reject(&world, Route::InteractionCallback, major, e.into()),
    };
    let with_response = query.with_response.unwrap_or(false);
    answer_unauthenticated(&world, Route::InteractionCallback, major, |s| {
        match s.rest_interaction_callback(interaction_id, &token, form, with_response)? {
            Some(body) => ok(body),
            None => Ok((StatusCode::NO_CONTENT, None)),
        }
    })
    .await
}

/// The bucket of a webhook route: its token (as Discord keys webhook buckets).
pub(crate) fn token_major(token: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    token.hash(&mut hasher);
    hasher.finish()
}

/// A route of an interaction's webhook (`/webhooks/{application_id}/{token}...`): the body
/// checked by `parse`, then `apply`d to the world, bucketed by token, no `Authorization`.
async fn interaction_webhook<Form>(
    path: web::Path<(String, String)>,
    body: &[u8],
    world: &World,
    parse: fn(&[u8]) -> Result<Form, FormError>,
    apply: impl FnOnce(
        &mut State,
        Id<twilight_model::id::marker::ApplicationMarker>,
        &str,
        Form,
    ) -> Result<String, WorldError>,
) -> HttpResponse {
    let (raw_id, token) = path.into_inner();
    let major = token_major(&token);
    let application_id = match snowflake(&raw_id) {
        Ok(id) => id,
        Err(e) => return reject(world, Route::InteractionWebhook, major, e),
    };
    let form = match parse(body) {
        Ok(form) => form,
        Err(e) => return reject(world, Route::InteractionWebhook, major, e.into()),
    };
    answer_unauthenticated(world, Route::InteractionWebhook, major, |s| {
        ok(apply(s, application_id, &token, form)?)
    })
    .await
}

/// `PATCH /webhooks/{application_id}/{token}/messages/@original`.
async fn edit_original(
    path: web::Path<(String, String)>,
    body: web::Bytes,
    world: web::Data<World>,
) -> HttpResponse {
    interaction_webhook(
        path,
        &body,
        &world,
        interaction_form::parse_edit,
        State::rest_edit_original,
    )
    .await
}

/// `POST /webhooks/{application_id}/{token}`: a follow-up message of an interaction.
async fn create_followup(
    path: web::Path<(String, String)>,
    body: web::Bytes,
    world: web::Data<World>,
) -> HttpResponse {
    interaction_webhook(
        path,
        &body,
        &world,
        interaction_form::parse_followup,
        State::rest_create_followup,
    )
    .await
}

pub(crate) async fn not_found() -> HttpResponse {
    ApiError::new(StatusCode::NOT_FOUND, "404: Not Found", 0).response()
}
