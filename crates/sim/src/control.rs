//! The control API under `/control`: how tests and the demo drive the world.
//!
//! Ids are strings (numbers are accepted too). Bodies are JSON; unknown fields and malformed
//! input answer 400 `{"error": "..."}` saying what is wrong; unknown guilds, codes and members
//! 404; conflicts (code taken, already a member) 409. The contract is in the crate README.

use crate::{
    error::WorldError,
    faults::RouteFaults,
    ratelimit::{GlobalLimit, Route, RouteLimit, route_names},
    sessions::EventDelay,
    wire::permissions,
    world::{
        ChannelSpec, Consent, GuildSpec, InteractionKind, InteractionSpec, InviteSpec, JoinSpec,
        JoinVia, PostedMessage, UserGuildSpec, World,
    },
};
use actix_web::{HttpRequest, HttpResponse, ResponseError, http::StatusCode, web};
use serde::{Deserialize, Deserializer, de::DeserializeOwned};
use std::time::Duration;
use twilight_model::id::{
    Id,
    marker::{GuildMarker, InteractionMarker, MessageMarker, UserMarker},
};

/// Mounts the control routes on a `/control` scope.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/guilds", web::post().to(create_guild))
        .route("/guilds/{guild_id}/invites", web::post().to(create_invite))
        .route("/guilds/{guild_id}/invites", web::get().to(list_invites))
        .route("/guilds/{guild_id}/joins", web::post().to(join))
        .route("/guilds/{guild_id}/joins/bulk", web::post().to(join_bulk))
        .route("/guilds/{guild_id}/leaves", web::post().to(leave))
        .route("/guilds/{guild_id}/members", web::get().to(members))
        .route("/guilds/{guild_id}/vanity", web::get().to(vanity))
        .route(
            "/guilds/{guild_id}/channels",
            web::post().to(create_channel),
        )
        .route(
            "/channels/{channel_id}/permissions",
            web::put().to(set_channel_permissions),
        )
        .route(
            "/channels/{channel_id}/messages",
            web::get().to(channel_messages),
        )
        .route(
            "/guilds/{guild_id}/permissions",
            web::put().to(set_permissions),
        )
        .route("/invites/{code}", web::delete().to(delete_invite))
        .route("/truth", web::get().to(truth))
        .route("/messages", web::get().to(messages))
        .route("/clock", web::post().to(advance_clock))
        .route("/gateway", web::get().to(gateway_status))
        .route("/gateway/reconnect", web::post().to(gateway_reconnect))
        .route("/gateway/invalidate", web::post().to(gateway_invalidate))
        .route("/gateway/drop", web::post().to(gateway_drop))
        .route("/ratelimits", web::get().to(get_rate_limits))
        .route("/ratelimits/{route}", web::put().to(set_rate_limit))
        .route("/faults", web::get().to(get_faults))
        .route("/faults/{route}", web::put().to(set_faults))
        .route("/event-delay", web::get().to(get_event_delay))
        .route("/event-delay", web::put().to(set_event_delay))
        .route("/stats", web::get().to(stats))
        .route("/stats/reset", web::post().to(reset_stats))
        .route("/truth/file", web::post().to(write_truth))
        .route(
            "/guilds/{guild_id}/temporary-members/offline",
            web::post().to(temporary_offline),
        )
        .route("/interactions", web::post().to(interact))
        .route("/interactions/{id}", web::get().to(interaction_reply))
        .route(
            "/interactions-endpoint",
            web::put().to(set_interactions_endpoint),
        )
        .route("/commands", web::get().to(commands))
        .route("/oauth2", web::get().to(oauth2_status))
        .route("/oauth2/redirects", web::put().to(set_oauth2_redirects))
        .route("/oauth2/login", web::post().to(oauth2_login))
        .route("/oauth2/logout", web::post().to(oauth2_logout))
        .route("/users/{user_id}/guilds", web::put().to(set_user_guilds))
        .route("/users/{user_id}/guilds", web::get().to(user_guilds))
        .configure(crate::runs::configure)
        .default_service(web::to(not_found));
}

/// A control API error: `{"error": "..."}` with a status.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
struct ControlError {
    status: StatusCode,
    message: String,
}

impl ResponseError for ControlError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        HttpResponse::build(self.status).json(serde_json::json!({ "error": self.message }))
    }
}

type Answer = Result<HttpResponse, ControlError>;

fn error(status: StatusCode, message: impl std::fmt::Display) -> ControlError {
    ControlError {
        status,
        message: message.to_string(),
    }
}

impl From<WorldError> for ControlError {
    fn from(e: WorldError) -> Self {
        let status = match e {
            WorldError::UnknownGuild(_)
            | WorldError::UnknownChannel(_)
            | WorldError::UnknownInvite(_)
            | WorldError::NoVanity(_)
            | WorldError::NotMember { .. }
            | WorldError::UnknownApplication(_)
            | WorldError::UnknownInteraction
            | WorldError::UnknownWebhook
            | WorldError::UnknownMessage => StatusCode::NOT_FOUND,
            WorldError::AlreadyMember { .. }
            | WorldError::CodeTaken(_)
            | WorldError::InteractionAcknowledged => StatusCode::CONFLICT,
            WorldError::MissingPermissions | WorldError::MissingAccess => StatusCode::FORBIDDEN,
            WorldError::InvalidWebhookToken | WorldError::Unauthorized => StatusCode::UNAUTHORIZED,
            WorldError::Invalid(_) | WorldError::InvalidForm(_) | WorldError::EmptyMessage => {
                StatusCode::BAD_REQUEST
            }
        };
        error(status, e)
    }
}

fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, ControlError> {
    let body: &[u8] = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        body
    };
    serde_json::from_slice(body)
        .map_err(|e| error(StatusCode::BAD_REQUEST, format!("malformed body: {e}")))
}

fn snowflake<T>(raw: &str) -> Result<Id<T>, ControlError> {
    raw.parse::<u64>()
        .ok()
        .and_then(Id::new_checked)
        .ok_or_else(|| {
            error(
                StatusCode::BAD_REQUEST,
                format!("{raw:?} is not a snowflake id"),
            )
        })
}

/// An id given as a string (or a number).
fn de_id<'de, D: Deserializer<'de>, T>(d: D) -> Result<Id<T>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        S(String),
        N(u64),
    }
    let n = match Raw::deserialize(d)? {
        Raw::S(s) => s.parse::<u64>().map_err(serde::de::Error::custom)?,
        Raw::N(n) => n,
    };
    Id::new_checked(n).ok_or_else(|| serde::de::Error::custom("id must not be 0"))
}

fn de_opt_id<'de, D: Deserializer<'de>, T>(d: D) -> Result<Option<Id<T>>, D::Error> {
    #[derive(Deserialize)]
    struct Wrap<T>(#[serde(deserialize_with = "de_id")] Id<T>);
    Ok(Option::<Wrap<T>>::deserialize(d)?.map(|w| w.0))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateGuildBody {
    #[serde(default = "default_guild_name")]
    name: String,
    #[serde(default)]
    vanity_code: Option<String>,
    #[serde(default = "yes")]
    manage_guild: bool,
}

fn default_guild_name() -> String {
    "guild".to_owned()
}

fn yes() -> bool {
    true
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateInviteBody {
    #[serde(deserialize_with = "de_id")]
    inviter_id: Id<UserMarker>,
    #[serde(default)]
    max_uses: u32,
    #[serde(default)]
    max_age: u32,
    #[serde(default)]
    temporary: bool,
    #[serde(default)]
    code: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct JoinBody {
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    vanity: bool,
    #[serde(default)]
    oauth2: bool,
    #[serde(default, deserialize_with = "de_opt_id")]
    user_id: Option<Id<UserMarker>>,
    #[serde(default = "yes")]
    avatar: bool,
    #[serde(default)]
    account_age_days: Option<f64>,
    /// Only for `/joins/bulk`.
    #[serde(default)]
    count: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LeaveBody {
    #[serde(deserialize_with = "de_id")]
    user_id: Id<UserMarker>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PermissionsBody {
    manage_guild: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateChannelBody {
    name: String,
    #[serde(default)]
    deny: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ChannelPermissionsBody {
    deny: Vec<String>,
}

/// `?nonce=` of the message listings.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MessagesQuery {
    nonce: Option<String>,
}

/// Channel permissions named as Discord names them, as bits.
fn permission_bits(names: &[String]) -> Result<u64, ControlError> {
    names.iter().try_fold(0, |bits, name| {
        permissions::channel_permission(name)
            .map(|bit| bits | bit)
            .ok_or_else(|| {
                let known: Vec<&str> = permissions::CHANNEL_NAMED.iter().map(|(n, _)| *n).collect();
                error(
                    StatusCode::BAD_REQUEST,
                    format!("unknown permission {name:?}; known: {}", known.join(", ")),
                )
            })
    })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ClockBody {
    advance_secs: f64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct InvalidateBody {
    #[serde(default)]
    resumable: bool,
}

impl JoinBody {
    fn via(&self) -> Result<JoinVia, ControlError> {
        match (&self.code, self.vanity, self.oauth2) {
            (Some(code), false, false) => Ok(JoinVia::Invite(code.clone())),
            (None, true, false) => Ok(JoinVia::Vanity),
            (None, false, true) => Ok(JoinVia::OAuth2),
            (None, false, false) => Ok(JoinVia::Untracked),
            _ => Err(error(
                StatusCode::BAD_REQUEST,
                "give at most one of \"code\", \"vanity\": true, \"oauth2\": true",
            )),
        }
    }

    fn spec(&self) -> Result<JoinSpec, ControlError> {
        let days = self.account_age_days.unwrap_or(365.0);
        if !days.is_finite() || !(0.0..=3650.0).contains(&days) {
            return Err(error(
                StatusCode::BAD_REQUEST,
                "account_age_days must be between 0 and 3650",
            ));
        }
        Ok(JoinSpec {
            user_id: self.user_id,
            avatar: self.avatar,
            account_age: Duration::from_secs_f64(days * 86_400.0),
        })
    }
}

async fn create_guild(body: web::Bytes, world: web::Data<World>) -> Answer {
    let body: CreateGuildBody = parse(&body)?;
    let spec = GuildSpec {
        name: body.name,
        vanity_code: body.vanity_code,
        manage_guild: body.manage_guild,
    };
    let created = world.create_guild(spec)?;
    let owner_id = world.guild_owner(created.guild_id)?;
    Ok(HttpResponse::Created().json(serde_json::json!({
        "guild_id": created.guild_id,
        "channel_id": created.channel_id,
        "owner_id": owner_id,
    })))
}

async fn create_invite(
    path: web::Path<String>,
    body: web::Bytes,
    world: web::Data<World>,
) -> Answer {
    let guild_id = snowflake(&path)?;
    let body: CreateInviteBody = parse(&body)?;
    let spec = InviteSpec {
        inviter_id: body.inviter_id,
        max_uses: body.max_uses,
        max_age_secs: body.max_age,
        temporary: body.temporary,
        code: body.code,
    };
    let mut state = world.lock();
    let info = state.create_invite(guild_id, spec)?;
    let json = state.invite_json(&info.code)?;
    drop(state);
    Ok(HttpResponse::Created().json(json))
}

async fn list_invites(path: web::Path<String>, world: web::Data<World>) -> Answer {
    let guild_id = snowflake(&path)?;
    Ok(HttpResponse::Ok().json(world.invites(guild_id)?))
}

async fn join(path: web::Path<String>, body: web::Bytes, world: web::Data<World>) -> Answer {
    let guild_id = snowflake(&path)?;
    let body: JoinBody = parse(&body)?;
    if body.count.is_some() {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "\"count\" is only for /joins/bulk",
        ));
    }
    let truth = world.join(guild_id, body.via()?, body.spec()?)?;
    Ok(HttpResponse::Created().json(truth))
}

/// `count` new accounts join the same way, under one lock (for load tests).
async fn join_bulk(path: web::Path<String>, body: web::Bytes, world: web::Data<World>) -> Answer {
    let guild_id = snowflake(&path)?;
    let body: JoinBody = parse(&body)?;
    if body.user_id.is_some() {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "\"user_id\" cannot be used with /joins/bulk",
        ));
    }
    let count = body.count.unwrap_or(1).min(100_000);
    let (via, spec) = (body.via()?, body.spec()?);
    let mut joins = Vec::with_capacity(count as usize);
    // In chunks, so other requests and the gateway get the lock in between.
    'chunks: while joins.len() < count as usize {
        let mut state = world.lock();
        for _ in 0..(count as usize - joins.len()).min(500) {
            match state.join(guild_id, via.clone(), spec.clone()) {
                Ok(truth) => joins.push(truth),
                Err(e) if joins.is_empty() => return Err(e.into()),
                // e.g. the invite reached max_uses: report the joins that happened.
                Err(_) => break 'chunks,
            }
        }
    }
    Ok(HttpResponse::Created().json(joins))
}

async fn leave(path: web::Path<String>, body: web::Bytes, world: web::Data<World>) -> Answer {
    let guild_id = snowflake(&path)?;
    let body: LeaveBody = parse(&body)?;
    world.leave(guild_id, body.user_id)?;
    Ok(HttpResponse::NoContent().finish())
}

async fn members(path: web::Path<String>, world: web::Data<World>) -> Answer {
    let guild_id = snowflake(&path)?;
    Ok(HttpResponse::Ok().json(world.members(guild_id)?))
}

async fn vanity(path: web::Path<String>, world: web::Data<World>) -> Answer {
    let guild_id = snowflake(&path)?;
    let (code, uses) = match world.vanity(guild_id)? {
        Some((code, uses)) => (Some(code), uses),
        None => (None, 0),
    };
    Ok(HttpResponse::Ok().json(serde_json::json!({ "code": code, "uses": uses })))
}

async fn set_permissions(
    path: web::Path<String>,
    body: web::Bytes,
    world: web::Data<World>,
) -> Answer {
    let guild_id = snowflake(&path)?;
    let body: PermissionsBody = parse(&body)?;
    world.set_manage_guild(guild_id, body.manage_guild)?;
    Ok(HttpResponse::NoContent().finish())
}

async fn create_channel(
    path: web::Path<String>,
    body: web::Bytes,
    world: web::Data<World>,
) -> Answer {
    let guild_id = snowflake(&path)?;
    let body: CreateChannelBody = parse(&body)?;
    let spec = ChannelSpec {
        name: body.name,
        bot_deny: permission_bits(&body.deny)?,
    };
    let channel_id = world.create_channel(guild_id, spec)?;
    Ok(HttpResponse::Created().json(serde_json::json!({
        "guild_id": guild_id,
        "channel_id": channel_id,
    })))
}

async fn set_channel_permissions(
    path: web::Path<String>,
    body: web::Bytes,
    world: web::Data<World>,
) -> Answer {
    let channel_id = snowflake(&path)?;
    let body: ChannelPermissionsBody = parse(&body)?;
    world.set_bot_channel_deny(channel_id, permission_bits(&body.deny)?)?;
    Ok(HttpResponse::NoContent().finish())
}

/// The messages whose nonce is the `?nonce=` of the request (every one without it).
fn with_nonce(
    messages: Vec<PostedMessage>,
    req: &HttpRequest,
) -> Result<Vec<PostedMessage>, ControlError> {
    let query = web::Query::<MessagesQuery>::from_query(req.query_string())
        .map_err(|e| error(StatusCode::BAD_REQUEST, e))?;
    Ok(match &query.nonce {
        Some(nonce) => messages
            .into_iter()
            .filter(|m| m.nonce.as_ref().is_some_and(|n| n.text() == *nonce))
            .collect(),
        None => messages,
    })
}

async fn channel_messages(
    req: HttpRequest,
    path: web::Path<String>,
    world: web::Data<World>,
) -> Answer {
    let channel_id = snowflake(&path)?;
    let messages = world.channel_messages(channel_id)?;
    Ok(HttpResponse::Ok().json(with_nonce(messages, &req)?))
}

async fn delete_invite(path: web::Path<String>, world: web::Data<World>) -> Answer {
    world.delete_invite(&path)?;
    Ok(HttpResponse::NoContent().finish())
}

async fn not_found() -> HttpResponse {
    error(
        StatusCode::NOT_FOUND,
        "no such control endpoint (see the sim README)",
    )
    .error_response()
}

async fn truth(world: web::Data<World>) -> HttpResponse {
    HttpResponse::Ok().json(world.ground_truth())
}

async fn messages(req: HttpRequest, world: web::Data<World>) -> Answer {
    Ok(HttpResponse::Ok().json(with_nonce(world.messages(), &req)?))
}

async fn advance_clock(body: web::Bytes, world: web::Data<World>) -> Answer {
    let body: ClockBody = parse(&body)?;
    if !body.advance_secs.is_finite() || body.advance_secs < 0.0 {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "advance_secs must be a non-negative number",
        ));
    }
    world.advance_clock(Duration::from_secs_f64(body.advance_secs));
    Ok(HttpResponse::NoContent().finish())
}

async fn gateway_status(world: web::Data<World>) -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "connected_sessions": world.connected_sessions() }))
}

async fn gateway_reconnect(world: web::Data<World>) -> HttpResponse {
    world.request_reconnect();
    HttpResponse::NoContent().finish()
}

async fn gateway_invalidate(body: web::Bytes, world: web::Data<World>) -> Answer {
    let body: InvalidateBody = parse(&body)?;
    world.invalidate_sessions(body.resumable);
    Ok(HttpResponse::NoContent().finish())
}

async fn get_rate_limits(world: web::Data<World>) -> HttpResponse {
    let mut map: serde_json::Map<String, serde_json::Value> = Route::ALL
        .iter()
        .filter_map(|r| {
            Some((
                r.name().to_owned(),
                serde_json::to_value(world.rate_limit(*r)).ok()?,
            ))
        })
        .collect();
    if let Ok(global) = serde_json::to_value(world.global_limit()) {
        map.insert("global".to_owned(), global);
    }
    HttpResponse::Ok().json(map)
}

fn route_param(name: &str) -> Result<Route, ControlError> {
    Route::from_name(name).ok_or_else(|| {
        error(
            StatusCode::NOT_FOUND,
            format!("unknown route {name:?}; routes: {}", route_names()),
        )
    })
}

async fn set_rate_limit(
    path: web::Path<String>,
    body: web::Bytes,
    world: web::Data<World>,
) -> Answer {
    if path.as_str() == "global" {
        let limit: GlobalLimit = parse(&body)?;
        if limit.window_ms == 0 {
            return Err(error(StatusCode::BAD_REQUEST, "window_ms must be positive"));
        }
        world.set_global_limit(limit);
        return Ok(HttpResponse::NoContent().finish());
    }
    let route = route_param(&path)?;
    let limit: RouteLimit = parse(&body)?;
    if limit.limit == 0 || limit.window_ms == 0 {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "limit and window_ms must be positive",
        ));
    }
    world.set_rate_limit(route, limit);
    Ok(HttpResponse::NoContent().finish())
}

async fn get_faults(world: web::Data<World>) -> HttpResponse {
    let config = world.fault_config();
    let routes: serde_json::Map<String, serde_json::Value> = Route::ALL
        .iter()
        .filter_map(|r| {
            Some((
                r.name().to_owned(),
                serde_json::to_value(config.get(*r)).ok()?,
            ))
        })
        .collect();
    HttpResponse::Ok().json(serde_json::json!({ "default": config.default, "routes": routes }))
}

async fn set_faults(path: web::Path<String>, body: web::Bytes, world: web::Data<World>) -> Answer {
    let route = match path.as_str() {
        "default" => None,
        name => Some(route_param(name)?),
    };
    let faults: RouteFaults = parse(&body)?;
    world
        .set_faults(route, faults)
        .map_err(|e| error(StatusCode::BAD_REQUEST, e))?;
    Ok(HttpResponse::NoContent().finish())
}

async fn get_event_delay(world: web::Data<World>) -> HttpResponse {
    HttpResponse::Ok().json(world.event_delay())
}

async fn set_event_delay(body: web::Bytes, world: web::Data<World>) -> Answer {
    let delay: EventDelay = parse(&body)?;
    world
        .set_event_delay(delay)
        .map_err(|e| error(StatusCode::BAD_REQUEST, e))?;
    Ok(HttpResponse::NoContent().finish())
}

async fn stats(world: web::Data<World>) -> HttpResponse {
    let (joins, dispatched, connected) = {
        let state = world.lock();
        (
            state.truth_len(),
            state.dispatched(),
            state.connected_sessions(),
        )
    };
    HttpResponse::Ok().json(serde_json::json!({
        "rest": world.rest_stats(),
        "gateway": { "dispatched": dispatched, "connected_sessions": connected },
        "joins": joins,
    }))
}

async fn reset_stats(world: web::Data<World>) -> HttpResponse {
    world.reset_rest_stats();
    HttpResponse::NoContent().finish()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DropBody {
    #[serde(default)]
    shard: Option<u32>,
}

async fn gateway_drop(body: web::Bytes, world: web::Data<World>) -> Answer {
    let body: DropBody = parse(&body)?;
    let dropped = world.drop_shard(body.shard);
    Ok(HttpResponse::Ok().json(serde_json::json!({ "dropped": dropped })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TruthFileBody {
    path: std::path::PathBuf,
}

async fn write_truth(body: web::Bytes, world: web::Data<World>) -> Answer {
    let body: TruthFileBody = parse(&body)?;
    let world = world.get_ref().clone();
    let path = body.path.clone();
    let lines = web::block(move || world.write_truth(&path))
        .await
        .map_err(|e| error(StatusCode::INTERNAL_SERVER_ERROR, e))?
        .map_err(|e| {
            error(
                StatusCode::BAD_REQUEST,
                format!("cannot write {}: {e}", body.path.display()),
            )
        })?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "lines": lines })))
}

async fn temporary_offline(path: web::Path<String>, world: web::Data<World>) -> Answer {
    let guild_id = snowflake(&path)?;
    let removed = world.end_temporary_memberships(guild_id)?;
    Ok(HttpResponse::Ok().json(removed))
}

/// Permissions as a decimal string (as Discord sends them) or a number.
fn de_permissions<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        S(String),
        N(u64),
    }
    match Raw::deserialize(d)? {
        Raw::S(s) => s.parse::<u64>().map_err(serde::de::Error::custom),
        Raw::N(n) => Ok(n),
    }
}

fn default_permissions() -> u64 {
    permissions::EVERYONE
}

fn default_locale() -> String {
    "en-US".to_owned()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct InteractBody {
    #[serde(deserialize_with = "de_id")]
    guild_id: Id<GuildMarker>,
    #[serde(deserialize_with = "de_id")]
    user_id: Id<UserMarker>,
    #[serde(default = "default_permissions", deserialize_with = "de_permissions")]
    permissions: u64,
    #[serde(default)]
    command: Option<String>,
    #[serde(default)]
    options: Option<serde_json::Value>,
    #[serde(default)]
    custom_id: Option<String>,
    #[serde(default, deserialize_with = "de_opt_id")]
    message_id: Option<Id<MessageMarker>>,
    /// The interaction answered with the modal being submitted.
    #[serde(default, deserialize_with = "de_opt_id")]
    modal_of: Option<Id<InteractionMarker>>,
    /// A modal submit's values, by text input `custom_id`.
    #[serde(default)]
    values: Option<std::collections::BTreeMap<String, String>>,
    #[serde(default = "default_locale")]
    locale: String,
}

async fn interact(body: web::Bytes, world: web::Data<World>) -> Answer {
    let body: InteractBody = parse(&body)?;
    if body.values.is_some() && body.modal_of.is_none() {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "\"values\" are only for modal submits (\"modal_of\")",
        ));
    }
    let kind = match (body.command, body.custom_id, body.modal_of) {
        (None, None, Some(of)) => {
            if body.options.is_some() || body.message_id.is_some() {
                return Err(error(
                    StatusCode::BAD_REQUEST,
                    "a modal submit takes \"values\" only",
                ));
            }
            InteractionKind::ModalSubmit {
                of,
                values: body.values.unwrap_or_default(),
            }
        }
        (Some(name), None, None) => {
            if body.message_id.is_some() {
                return Err(error(
                    StatusCode::BAD_REQUEST,
                    "\"message_id\" is only for components (\"custom_id\")",
                ));
            }
            InteractionKind::Command {
                name,
                options: body.options.unwrap_or_else(|| serde_json::json!([])),
            }
        }
        (None, Some(custom_id), None) => {
            if body.options.is_some() {
                return Err(error(
                    StatusCode::BAD_REQUEST,
                    "\"options\" are only for commands (\"command\")",
                ));
            }
            InteractionKind::Component {
                custom_id,
                message_id: body.message_id,
            }
        }
        _ => {
            return Err(error(
                StatusCode::BAD_REQUEST,
                "give exactly one of \"command\", \"custom_id\" and \"modal_of\"",
            ));
        }
    };
    let info = world.interact(InteractionSpec {
        guild_id: body.guild_id,
        user_id: body.user_id,
        member_permissions: body.permissions,
        kind,
        locale: body.locale,
    })?;
    Ok(HttpResponse::Created().json(info))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EndpointBody {
    /// `null` removes the URL: interactions go out on the gateway again.
    url: Option<String>,
}

/// Sets the interactions endpoint URL after checking it as Discord does (a signed PING
/// answered with a PONG, a wrongly signed one refused with 401).
async fn set_interactions_endpoint(
    body: web::Bytes,
    world: web::Data<World>,
    deliverer: web::Data<crate::delivery::Deliverer>,
) -> Answer {
    let body: EndpointBody = parse(&body)?;
    if let Some(url) = &body.url {
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(error(
                StatusCode::BAD_REQUEST,
                "url must be http:// or https://",
            ));
        }
        deliverer.check_url(url).await.map_err(|reason| {
            error(
                StatusCode::BAD_REQUEST,
                format!("interactions_endpoint_url could not be verified: {reason}"),
            )
        })?;
    }
    tracing::info!(url = ?body.url, "interactions endpoint set");
    world.set_interactions_url(body.url.clone());
    Ok(HttpResponse::Ok().json(serde_json::json!({ "url": body.url })))
}

async fn interaction_reply(path: web::Path<String>, world: web::Data<World>) -> Answer {
    let id = snowflake(&path)?;
    match world.interaction_reply(id) {
        Some(reply) => Ok(HttpResponse::Ok().json(reply)),
        None => Err(error(
            StatusCode::NOT_FOUND,
            format!("interaction {id} has no response (not yet, or no longer kept)"),
        )),
    }
}

async fn commands(world: web::Data<World>) -> HttpResponse {
    let list: Vec<serde_json::Value> = world.commands().into_iter().map(|c| c.object).collect();
    HttpResponse::Ok().json(list)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RedirectsBody {
    redirect_uris: Vec<String>,
}

/// One guild of a user, as the control API takes it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UserGuildBody {
    #[serde(default, deserialize_with = "de_opt_id")]
    guild_id: Option<Id<GuildMarker>>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default = "default_permissions", deserialize_with = "de_permissions")]
    permissions: u64,
    #[serde(default)]
    owner: bool,
}

impl From<UserGuildBody> for UserGuildSpec {
    fn from(b: UserGuildBody) -> Self {
        Self {
            guild_id: b.guild_id,
            name: b.name,
            permissions: b.permissions,
            owner: b.owner,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginBody {
    #[serde(deserialize_with = "de_id")]
    user_id: Id<UserMarker>,
    /// Replaces the user's guilds when given.
    #[serde(default)]
    guilds: Option<Vec<UserGuildBody>>,
    /// The user cancels on the authorization screen.
    #[serde(default)]
    deny: bool,
}

async fn oauth2_status(world: web::Data<World>) -> HttpResponse {
    let client = world.oauth2_client();
    let signed_in = world
        .signed_in()
        .map(|(user_id, consent)| serde_json::json!({ "user_id": user_id, "consent": consent }));
    HttpResponse::Ok().json(serde_json::json!({
        "client_id": client.client_id,
        "client_secret": client.client_secret,
        "redirect_uris": client.redirect_uris,
        "signed_in": signed_in,
        "authorizations": world.oauth2_authorizations(),
    }))
}

async fn set_oauth2_redirects(body: web::Bytes, world: web::Data<World>) -> Answer {
    let body: RedirectsBody = parse(&body)?;
    world.set_oauth2_redirect_uris(body.redirect_uris)?;
    Ok(HttpResponse::NoContent().finish())
}

/// Signs a user in to the simulated Discord (and sets their guilds): the next
/// `GET /oauth2/authorize` is theirs.
async fn oauth2_login(body: web::Bytes, world: web::Data<World>) -> Answer {
    let body: LoginBody = parse(&body)?;
    let guilds = match body.guilds {
        Some(guilds) => world.set_user_guilds(
            body.user_id,
            guilds.into_iter().map(UserGuildSpec::from).collect(),
        )?,
        None => world.user_guilds(body.user_id),
    };
    let consent = if body.deny {
        Consent::Deny
    } else {
        Consent::Approve
    };
    world.sign_in(body.user_id, consent);
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "user_id": body.user_id,
        "consent": consent,
        "guilds": guilds,
    })))
}

async fn oauth2_logout(world: web::Data<World>) -> HttpResponse {
    world.sign_out();
    HttpResponse::NoContent().finish()
}

async fn set_user_guilds(
    path: web::Path<String>,
    body: web::Bytes,
    world: web::Data<World>,
) -> Answer {
    let user_id = snowflake(&path)?;
    let guilds: Vec<UserGuildBody> = serde_json::from_slice(&body)
        .map_err(|e| error(StatusCode::BAD_REQUEST, format!("malformed body: {e}")))?;
    let list = world.set_user_guilds(
        user_id,
        guilds.into_iter().map(UserGuildSpec::from).collect(),
    )?;
    Ok(HttpResponse::Ok().json(list))
}

async fn user_guilds(path: web::Path<String>, world: web::Data<World>) -> Answer {
    let user_id = snowflake(&path)?;
    Ok(HttpResponse::Ok().json(world.user_guilds(user_id)))
}
