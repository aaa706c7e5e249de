//! A guild's settings: its fake rules, where the bot posts join and leave messages, and the
//! templates of those messages (`invitrack-messages`), with a preview that renders a template
//! on sample data.

use std::collections::BTreeMap;

use actix_web::{HttpRequest, HttpResponse, web};
use invitrack_messages::{MessageKind, Template, TemplateSource, render, sample_context};
use invitrack_model::{ChannelId, FakeReasons, FakeSettings};
use invitrack_storage::admin::{self as queries, GuildSettings, SettingsChange};
use serde::Serialize;
use utoipa::ToSchema;

use crate::AppState;
use crate::admin::{AUTHOR_MAX, actor};
use crate::auth::{Caller, GuildPath};
use crate::dashboard::fake_reason_names;
use crate::error::ApiError;
use crate::openapi_parts::{CommonErrors, GuildParams};
use crate::params::{Body, BodyBytes};

/// A guild's settings. Fake rules apply to joins decided from then on; channels and templates
/// to messages posted from then on.
#[derive(Debug, Serialize, ToSchema)]
pub struct Settings {
    /// Account younger than `young_account_days` days.
    pub young_account: bool,
    /// The member is the inviter.
    pub self_invite: bool,
    /// The member has no avatar.
    pub no_avatar: bool,
    /// The member joined this guild before.
    pub already_joined: bool,
    pub young_account_days: u32,
    /// The same as a bitfield: YOUNG = 1, SELF = 2, NO_AVATAR = 4, ALREADY_JOINED = 8.
    pub fake_reasons: u32,
    /// Names of the enabled reasons.
    pub enabled: Vec<String>,
    /// Where the bot posts join messages; `null` = nowhere.
    pub join_log_channel_id: Option<String>,
    /// Where the bot posts leave messages; `null` = nowhere.
    pub leave_log_channel_id: Option<String>,
    /// Where `/invite link` creates members' invites; `null` = the command is off.
    pub invite_channel_id: Option<String>,
    /// The template of each message kind (`invite`, `vanity`, `ambiguous_inviter`,
    /// `ambiguous`, `unknown`, `fake`, `leave`): `{"text": ...}` or `{"embed": {...}}`.
    #[schema(value_type = Object)]
    pub templates: BTreeMap<MessageKind, TemplateSource>,
    /// The kinds whose template is the guild's own (the others are the defaults).
    #[schema(value_type = Vec<String>)]
    pub custom_templates: Vec<MessageKind>,
}

impl From<GuildSettings> for Settings {
    fn from(s: GuildSettings) -> Self {
        let fake: FakeSettings = s.fake;
        let channel = |c: Option<ChannelId>| c.map(|c| c.get().to_string());
        Self {
            young_account: fake.enabled.contains(FakeReasons::YOUNG),
            self_invite: fake.enabled.contains(FakeReasons::SELF),
            no_avatar: fake.enabled.contains(FakeReasons::NO_AVATAR),
            already_joined: fake.enabled.contains(FakeReasons::ALREADY_JOINED),
            young_account_days: fake.young_account_days,
            fake_reasons: fake.enabled.bits(),
            enabled: fake_reason_names(fake.enabled),
            join_log_channel_id: channel(s.join_log_channel_id),
            leave_log_channel_id: channel(s.leave_log_channel_id),
            invite_channel_id: channel(s.invite_channel_id),
            templates: MessageKind::ALL
                .iter()
                .map(|&kind| (kind, s.templates.get(kind).source().clone()))
                .collect(),
            custom_templates: MessageKind::ALL
                .iter()
                .copied()
                .filter(|&kind| s.templates.custom(kind).is_some())
                .collect(),
        }
    }
}

/// Body of `PUT .../settings`: every field but `author` optional, absent ones unchanged.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct SettingsUpdate {
    young_account: Option<bool>,
    self_invite: Option<bool>,
    no_avatar: Option<bool>,
    already_joined: Option<bool>,
    /// 1 to 3650.
    #[schema(minimum = 1, maximum = 3650)]
    young_account_days: Option<i32>,
    /// A channel id as a string; `null` turns join messages off.
    join_log_channel_id: Option<String>,
    /// A channel id as a string; `null` turns leave messages off.
    leave_log_channel_id: Option<String>,
    /// A channel id as a string; `null` turns `/invite link` off.
    invite_channel_id: Option<String>,
    /// Templates by message kind; `null` for a kind goes back to its default.
    #[schema(value_type = Option<Object>)]
    templates: Option<serde_json::Value>,
    /// 1 to 100 characters.
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*[^\\s\\u0000-\\u001f\\u007f-\\u009f][^\\u0000-\\u001f\\u007f-\\u009f]*$"
    )]
    author: String,
}

/// A guild's settings (defaults: young account (7 days), self invite and already joined
/// fake; no log channels; the default templates).
#[utoipa::path(
    get,
    path = "/v1/bots/{bot_id}/guilds/{guild_id}/settings",
    tag = "admin",
    params(
        GuildParams,
    ),
    responses((status = 200, description = "the settings", body = Settings), CommonErrors),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all, fields(guild_id = %guild.guild_id))]
pub async fn settings(
    caller: Caller,
    guild: GuildPath,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    caller.read(&guild)?;
    let mut conn = state.connection().await?;
    let s = queries::guild_settings(&mut conn, guild.key()).await?;
    Ok(HttpResponse::Ok().json(Settings::from(s)))
}

/// Changes a guild's settings. Fake rules apply to joins decided from now on (counted joins are
/// not re-judged); channels and templates to messages posted from now on. A template that does
/// not parse (an unknown placeholder, an unclosed brace, over Discord's limits) is a 400 naming
/// the kind and the problem, and nothing changes.
#[utoipa::path(
    put,
    path = "/v1/bots/{bot_id}/guilds/{guild_id}/settings",
    tag = "admin",
    params(
        GuildParams,
    ),
    request_body = SettingsUpdate,
    responses((status = 200, description = "the new settings", body = Settings), CommonErrors),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all, fields(guild_id = %guild.guild_id))]
pub async fn update_settings(
    caller: Caller,
    guild: GuildPath,
    req: HttpRequest,
    BodyBytes(body): BodyBytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    caller.admin(&guild)?;
    let body = Body::parse(&req, &body)?;
    let flags = [
        ("young_account", FakeReasons::YOUNG),
        ("self_invite", FakeReasons::SELF),
        ("no_avatar", FakeReasons::NO_AVATAR),
        ("already_joined", FakeReasons::ALREADY_JOINED),
    ];
    let mut change = SettingsChange::default();
    for (name, bit) in flags {
        match body.boolean(name)? {
            Some(true) => change.enable = change.enable.union(bit),
            Some(false) => change.disable = change.disable.union(bit),
            None => {}
        }
    }
    change.young_account_days = body
        .integer(
            "young_account_days",
            1,
            i64::from(FakeSettings::MAX_YOUNG_ACCOUNT_DAYS),
        )?
        .map(|days| u32::try_from(days).unwrap_or(FakeSettings::MAX_YOUNG_ACCOUNT_DAYS));
    change.join_log_channel_id = body.nullable_snowflake("join_log_channel_id")?;
    change.leave_log_channel_id = body.nullable_snowflake("leave_log_channel_id")?;
    change.invite_channel_id = body.nullable_snowflake("invite_channel_id")?;
    if let Some(templates) = body.object("templates")? {
        for (name, value) in templates {
            let kind = message_kind("templates", name)?;
            let template = match value {
                serde_json::Value::Null => None,
                value => Some(template("templates", kind, value)?),
            };
            change.templates.push((kind, template));
        }
    }
    let author = body.required_text("author", AUTHOR_MAX)?;
    let mut conn = state.connection().await?;
    let s =
        queries::update_settings(&mut conn, guild.key(), change, &actor(&caller, &author)).await?;
    Ok(HttpResponse::Ok().json(Settings::from(s)))
}

/// Body of `POST .../templates/preview`.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct PreviewRequest {
    /// `invite`, `vanity`, `ambiguous_inviter`, `ambiguous`, `unknown`, `fake` or `leave`.
    kind: String,
    /// `{"text": ...}` or `{"embed": {"title", "description", "color", "footer"}}`; the
    /// guild's template of that kind (or its default) when absent.
    #[schema(value_type = Option<Object>)]
    template: Option<serde_json::Value>,
}

/// A message as the bot would post it.
#[derive(Debug, Serialize, ToSchema)]
pub struct Preview {
    #[schema(value_type = String)]
    pub kind: MessageKind,
    /// The message's text, when the template is text.
    pub content: Option<String>,
    /// The message's embed, when the template is an embed.
    #[schema(value_type = Option<Object>)]
    pub embed: Option<invitrack_messages::RenderedEmbed>,
}

/// Renders a template on sample data, as the bot would post it: to try a template before
/// saving it, or to see the guild's current one.
#[utoipa::path(
    post,
    path = "/v1/bots/{bot_id}/guilds/{guild_id}/templates/preview",
    tag = "admin",
    params(
        GuildParams,
    ),
    request_body = PreviewRequest,
    responses((status = 200, description = "the rendered message", body = Preview), CommonErrors),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all, fields(guild_id = %guild.guild_id))]
pub async fn preview(
    caller: Caller,
    guild: GuildPath,
    req: HttpRequest,
    BodyBytes(body): BodyBytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    caller.read(&guild)?;
    let body = Body::parse(&req, &body)?;
    let kind = message_kind("kind", &body.required_text("kind", 40)?)?;
    let template = match body.value("template") {
        Some(value) => template("template", kind, value)?,
        None => {
            let mut conn = state.connection().await?;
            queries::guild_settings(&mut conn, guild.key())
                .await?
                .templates
                .get(kind)
                .clone()
        }
    };
    let rendered = render(&template, &sample_context(kind));
    Ok(HttpResponse::Ok().json(Preview {
        kind,
        content: rendered.content,
        embed: rendered.embed,
    }))
}

fn message_kind(name: &'static str, raw: &str) -> Result<MessageKind, ApiError> {
    MessageKind::ALL
        .iter()
        .copied()
        .find(|kind| kind.as_str() == raw)
        .ok_or_else(|| ApiError::InvalidParameter {
            name,
            problem: format!(
                "{raw:?} is not a message kind ({})",
                MessageKind::ALL.map(MessageKind::as_str).join(", ")
            ),
        })
}

fn template(
    name: &'static str,
    kind: MessageKind,
    value: &serde_json::Value,
) -> Result<Template, ApiError> {
    let problem = |text: String| ApiError::InvalidParameter {
        name,
        problem: format!("{}: {text}", kind.as_str()),
    };
    let source: TemplateSource = serde_json::from_value(value.clone()).map_err(|e| {
        problem(format!(
            "expected {{\"text\": ...}} or {{\"embed\": {{\"title\", \"description\", \"color\", \"footer\"}}}} ({e})"
        ))
    })?;
    Template::parse(source).map_err(|e| problem(e.to_string()))
}
