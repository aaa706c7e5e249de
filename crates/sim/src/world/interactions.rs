//! Application commands and interactions: the global commands (`PUT` / `GET
//! /applications/{id}/commands`), users' interactions (INTERACTION_CREATE), the bot's
//! responses (`POST /interactions/{id}/{token}/callback`) and their edits (`PATCH
//! /webhooks/{application_id}/{token}/messages/@original`), with Discord's deadlines (3 s to
//! respond, 15 min for the token) by the simulated clock, and the bounded store of
//! interactions tests read back.

use super::{
    model::State,
    specs::{
        FollowUp, InteractionInfo, InteractionKind, InteractionReply, InteractionSpec,
        RegisteredCommand,
    },
};
use crate::{
    command_form::NewCommand,
    error::WorldError,
    interaction_form::{CallbackForm, EditForm, FollowUpForm},
    sessions::EventKind,
    snowflake,
    wire::permissions,
};
use rand::Rng;
use serde_json::{Map, Value, json};
use std::collections::{HashMap, VecDeque};
use twilight_model::id::{
    Id,
    marker::{
        ApplicationMarker, ChannelMarker, GuildMarker, InteractionMarker, MessageMarker, UserMarker,
    },
};

/// Time a bot has to send the initial response (Discord: "within 3 seconds").
pub const INTERACTION_RESPONSE_WINDOW_MS: i64 = 3_000;
/// Lifetime of an interaction token (Discord: "valid for 15 minutes").
pub const INTERACTION_TOKEN_LIFETIME_MS: i64 = 15 * 60 * 1000;
/// `attachment_size_limit` of the interactions (10 MiB, a server without boosts).
const ATTACHMENT_SIZE_LIMIT: u64 = 10 * 1024 * 1024;
/// Message flags.
const EPHEMERAL: u64 = 1 << 6;
const LOADING: u64 = 1 << 7;

/// Where an interaction came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Origin {
    Command,
    Component {
        message_id: Id<MessageMarker>,
    },
    /// A modal submitted; `message_id` when the modal answered a component.
    ModalSubmit {
        message_id: Option<Id<MessageMarker>>,
    },
}

impl Origin {
    /// The message of the component the interaction started from, if any.
    fn component_message(self) -> Option<Id<MessageMarker>> {
        match self {
            Self::Component { message_id } => Some(message_id),
            Self::ModalSubmit { message_id } => message_id,
            Self::Command => None,
        }
    }
}

#[derive(Debug)]
struct Interaction {
    id: Id<InteractionMarker>,
    token: String,
    guild_id: Id<GuildMarker>,
    channel_id: Id<ChannelMarker>,
    user_id: Id<UserMarker>,
    origin: Origin,
    created_ms: i64,
    over_http: bool,
    response: Option<Response>,
}

/// The initial response and what it became.
#[derive(Debug)]
struct Response {
    callback_type: u8,
    at_ms: i64,
    /// The original response message (none for a modal).
    message_id: Option<Id<MessageMarker>>,
    /// A modal's `custom_id`.
    modal_custom_id: Option<String>,
    content: Option<String>,
    embeds: Vec<Value>,
    components: Value,
    flags: u64,
    edits: u32,
    edited_ms: Option<i64>,
    /// A deferred response not edited yet ("the bot is thinking").
    loading: bool,
    followups: Vec<FollowUp>,
}

/// The newest `capacity` interactions, by id and by token.
#[derive(Debug)]
pub(super) struct InteractionStore {
    capacity: usize,
    order: VecDeque<Id<InteractionMarker>>,
    by_id: HashMap<Id<InteractionMarker>, Interaction>,
    by_token: HashMap<String, Id<InteractionMarker>>,
}

impl InteractionStore {
    pub(super) fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            order: VecDeque::new(),
            by_id: HashMap::new(),
            by_token: HashMap::new(),
        }
    }

    fn push(&mut self, interaction: Interaction) {
        if self.order.len() == self.capacity
            && let Some(oldest) = self.order.pop_front()
            && let Some(old) = self.by_id.remove(&oldest)
        {
            self.by_token.remove(&old.token);
        }
        self.order.push_back(interaction.id);
        self.by_token
            .insert(interaction.token.clone(), interaction.id);
        self.by_id.insert(interaction.id, interaction);
    }

    fn by_token_mut(&mut self, token: &str) -> Option<&mut Interaction> {
        let id = self.by_token.get(token)?;
        self.by_id.get_mut(id)
    }

    /// The original response of the interaction whose response is message `id`, if kept.
    fn with_message(&self, id: Id<MessageMarker>) -> Option<(&Interaction, &Response)> {
        self.by_id.values().find_map(|i| {
            i.response
                .as_ref()
                .filter(|r| r.message_id == Some(id))
                .map(|r| (i, r))
        })
    }
}

/// An unguessable interaction token (Discord's start with `aW50ZXJhY3Rpb246`, base64 of
/// `interaction:`).
fn new_token() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    let tail: String = (0..160)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect();
    format!("aW50ZXJhY3Rpb246{tail}")
}

/// A message with no content, embed or component, which Discord refuses (50006).
fn says_nothing(content: Option<&str>, embeds: &[Value], components: &Value) -> bool {
    content.is_none_or(|c| c.trim().is_empty())
        && embeds.is_empty()
        && components.as_array().is_none_or(Vec::is_empty)
}

/// What a message sent through an interaction's webhook holds.
struct WebhookMessage<'a> {
    id: Option<String>,
    kind: u8,
    created_ms: i64,
    edited_ms: Option<i64>,
    content: Option<&'a str>,
    embeds: &'a [Value],
    components: &'a Value,
    flags: u64,
}

fn elapsed_ms(from: i64, to: i64) -> u64 {
    u64::try_from(to.saturating_sub(from)).unwrap_or(0)
}

/// Collects the user ids of USER (6) and MENTIONABLE (9) options, subcommands included.
fn user_option_ids(options: &Value, out: &mut Vec<u64>) {
    let Value::Array(options) = options else {
        return;
    };
    for option in options {
        match option.get("type").and_then(Value::as_u64) {
            Some(6 | 9) => {
                let id = match option.get("value") {
                    Some(Value::String(s)) => s.parse().ok(),
                    Some(Value::Number(n)) => n.as_u64(),
                    _ => None,
                };
                if let Some(id) = id.filter(|id| *id != 0) {
                    out.push(id);
                }
            }
            _ => {
                if let Some(nested) = option.get("options") {
                    user_option_ids(nested, out);
                }
            }
        }
    }
}

impl State {
    // ---- commands --------------------------------------------------------------------------

    /// The registered global commands, in the order of the last overwrite.
    pub fn commands(&self) -> Vec<RegisteredCommand> {
        self.commands.clone()
    }

    fn check_application(&self, application_id: Id<ApplicationMarker>) -> Result<(), WorldError> {
        if application_id == self.bot.application_id() {
            Ok(())
        } else {
            Err(WorldError::UnknownApplication(application_id))
        }
    }

    /// `GET /applications/{id}/commands` body.
    pub(crate) fn rest_commands(
        &self,
        application_id: Id<ApplicationMarker>,
    ) -> Result<String, WorldError> {
        self.check_application(application_id)?;
        let list: Vec<&Value> = self.commands.iter().map(|c| &c.object).collect();
        serde_json::to_string(&list).map_err(|e| WorldError::Invalid(e.to_string()))
    }

    /// `PUT /applications/{id}/commands`: replaces every global command. A command with the
    /// name and type of a registered one keeps its id (and its version if nothing changed).
    pub(crate) fn rest_set_commands(
        &mut self,
        application_id: Id<ApplicationMarker>,
        commands: Vec<NewCommand>,
    ) -> Result<String, WorldError> {
        self.check_application(application_id)?;
        let now = self.now_ms();
        let mut registered = Vec::with_capacity(commands.len());
        for command in commands {
            let before = self
                .commands
                .iter()
                .find(|c| c.kind == command.kind && c.name == command.name);
            let mut object = command.object;
            for (field, default) in [
                ("name_localizations", Value::Null),
                ("description_localizations", Value::Null),
                ("contexts", Value::Null),
                ("integration_types", json!([0])),
                ("nsfw", Value::Bool(false)),
                ("dm_permission", Value::Bool(true)),
            ] {
                object.entry(field).or_insert(default);
            }
            let unchanged = before.is_some_and(|b| {
                let mut old: Map<String, Value> = b.object.as_object().cloned().unwrap_or_default();
                for field in ["id", "application_id", "version"] {
                    old.remove(field);
                }
                old == object
            });
            let id = before.map_or_else(|| Id::new(self.ids.at(now)), |b| b.id);
            let version = match before {
                Some(b) if unchanged => b.version,
                _ => Id::new(self.ids.at(now)),
            };
            object.insert("id".to_owned(), Value::String(id.to_string()));
            object.insert(
                "application_id".to_owned(),
                Value::String(application_id.to_string()),
            );
            object.insert("version".to_owned(), Value::String(version.to_string()));
            registered.push(RegisteredCommand {
                id,
                name: command.name,
                kind: command.kind,
                description: command.description,
                version,
                object: Value::Object(object),
            });
        }
        tracing::info!(commands = registered.len(), "global commands overwritten");
        self.commands = registered;
        self.rest_commands(application_id)
    }

    // ---- interactions ----------------------------------------------------------------------

    /// A user uses a command or presses a button: INTERACTION_CREATE to the guild's shard.
    pub fn interact(&mut self, spec: InteractionSpec) -> Result<InteractionInfo, WorldError> {
        let now = self.now_ms();
        let guild = self.guild(spec.guild_id)?;
        let (guild_id, channel_id) = (guild.id, guild.channel_id);
        if spec.user_id == self.bot.user_id {
            return Err(WorldError::Invalid(
                "the bot cannot interact with itself".into(),
            ));
        }
        if spec.locale.is_empty() {
            return Err(WorldError::Invalid("locale must not be empty".into()));
        }
        match &spec.kind {
            InteractionKind::Command { name, options } => {
                if !crate::command_form::valid_name(name) {
                    return Err(WorldError::Invalid(format!(
                        "invalid command name {name:?}"
                    )));
                }
                if !options.is_array() && !options.is_null() {
                    return Err(WorldError::Invalid(
                        "options must be an array of option objects".into(),
                    ));
                }
            }
            InteractionKind::Component { custom_id, .. } => {
                if custom_id.is_empty() || custom_id.chars().count() > 100 {
                    return Err(WorldError::Invalid(
                        "custom_id must have 1 to 100 characters".into(),
                    ));
                }
            }
            InteractionKind::ModalSubmit { .. } => {}
        }
        self.ensure_user(spec.user_id, true);
        let id: Id<InteractionMarker> = Id::new(self.ids.at(now));
        let token = new_token();
        let origin = match &spec.kind {
            InteractionKind::Command { .. } => Origin::Command,
            InteractionKind::Component { message_id, .. } => Origin::Component {
                message_id: message_id.unwrap_or_else(|| Id::new(self.ids.at(now))),
            },
            InteractionKind::ModalSubmit { of, .. } => Origin::ModalSubmit {
                message_id: self.modal_of(*of, &spec)?.0.component_message(),
            },
        };
        let fresh_command_id = self.ids.at(now);
        let payload =
            self.interaction_payload(&spec, id, &token, channel_id, origin, fresh_command_id)?;
        let over_http = self.interactions_url.is_some() && self.deliveries.is_some();
        match (&self.interactions_url, &self.deliveries) {
            (Some(url), Some(deliveries)) => {
                let delivery = crate::delivery::Delivery {
                    url: url.clone(),
                    interaction_id: id,
                    token: token.clone(),
                    body: serde_json::to_vec(&payload).unwrap_or_default(),
                };
                if deliveries.send(delivery).is_err() {
                    tracing::warn!(interaction_id = %id, "the delivery task has stopped");
                }
            }
            _ => self
                .sessions
                .broadcast(guild_id, EventKind::INTERACTION_CREATE, &payload),
        }
        tracing::debug!(guild_id = %guild_id, interaction_id = %id, "interaction created");
        self.interactions.push(Interaction {
            id,
            token: token.clone(),
            guild_id,
            channel_id,
            user_id: spec.user_id,
            origin,
            created_ms: now,
            over_http,
            response: None,
        });
        Ok(InteractionInfo { id, token })
    }

    /// The INTERACTION_CREATE payload, as Discord sends it for a guild.
    fn interaction_payload(
        &self,
        spec: &InteractionSpec,
        id: Id<InteractionMarker>,
        token: &str,
        channel_id: Id<ChannelMarker>,
        origin: Origin,
        fresh_command_id: u64,
    ) -> Result<Value, WorldError> {
        let guild = self.guild(spec.guild_id)?;
        let channel = self.channel(channel_id)?;
        let app_permissions = self.bot_channel_permissions(channel)?;
        let member = guild.members.get(&spec.user_id);
        // Users the world does not hold as members (inviters) are members since the start.
        let joined_at = member.map_or(guild.bot_joined_at_ms, |m| m.joined_at_ms);
        let flags = member.map_or(0, |m| m.flags);
        let member_json = json!({
            "user": serde_json::to_value(self.user(spec.user_id)).unwrap_or(Value::Null),
            "nick": null,
            "avatar": null,
            "banner": null,
            "roles": [],
            "joined_at": snowflake::format_ts(joined_at),
            "premium_since": null,
            "deaf": false,
            "mute": false,
            "pending": false,
            "flags": flags,
            "permissions": spec.member_permissions.to_string(),
            "communication_disabled_until": null,
            "avatar_decoration_data": null,
        });
        let (kind, data, message) = match &spec.kind {
            InteractionKind::Command { name, options } => {
                let command_id = self
                    .commands
                    .iter()
                    .find(|c| c.kind == 1 && c.name == *name)
                    .map_or(fresh_command_id, |c| c.id.get());
                let mut data = json!({
                    "id": command_id.to_string(),
                    "name": name,
                    "type": 1,
                });
                if options.as_array().is_some_and(|o| !o.is_empty()) {
                    data["options"] = options.clone();
                }
                let resolved = self.resolve_users(spec.guild_id, options);
                if !resolved.is_empty() {
                    data["resolved"] = Value::Object(resolved);
                }
                (2, data, None)
            }
            InteractionKind::Component { custom_id, .. } => {
                let Origin::Component { message_id } = origin else {
                    return Err(WorldError::Invalid("component without a message".into()));
                };
                let data = json!({
                    "custom_id": custom_id,
                    "component_type": 2,
                    "values": [],
                });
                let message = self.component_message(message_id, channel_id, guild.id, custom_id);
                (3, data, Some(message))
            }
            InteractionKind::ModalSubmit { of, values } => {
                let (_, custom_id, modal) = self.modal_of(*of, spec)?;
                let components =
                    super::modals::submitted(modal, values).map_err(WorldError::Invalid)?;
                let data = json!({"custom_id": custom_id, "components": components});
                let message = origin
                    .component_message()
                    .map(|m| self.component_message(m, channel_id, guild.id, custom_id));
                (5, data, message)
            }
        };
        let mut payload = json!({
            "id": id.to_string(),
            "application_id": self.bot.application_id().to_string(),
            "type": kind,
            "data": data,
            "guild": {"id": guild.id.to_string(), "locale": "en-US", "features": guild.features()},
            "guild_id": guild.id.to_string(),
            "channel": {
                "id": channel.id.to_string(),
                "type": 0,
                "guild_id": guild.id.to_string(),
                "name": channel.name,
                "position": channel.position,
                "permissions": spec.member_permissions.to_string(),
                "last_message_id": null,
                "last_pin_timestamp": null,
                "nsfw": false,
                "parent_id": null,
                "flags": 0,
                "rate_limit_per_user": 0,
                "topic": null,
            },
            "channel_id": channel.id.to_string(),
            "member": member_json,
            "token": token,
            "version": 1,
            "app_permissions": app_permissions.to_string(),
            "locale": spec.locale,
            "guild_locale": "en-US",
            "entitlements": [],
            "authorizing_integration_owners": {"0": guild.id.to_string()},
            "context": 0,
            "attachment_size_limit": ATTACHMENT_SIZE_LIMIT,
        });
        if let Some(message) = message {
            payload["message"] = message;
        }
        Ok(payload)
    }

    /// The modal interaction `of` was answered with, for a submit by `spec`'s user: where
    /// `of` came from, the modal's `custom_id` and components.
    fn modal_of(
        &self,
        of: Id<InteractionMarker>,
        spec: &InteractionSpec,
    ) -> Result<(Origin, &str, &Value), WorldError> {
        let shown = self
            .interactions
            .by_id
            .get(&of)
            .ok_or_else(|| WorldError::Invalid(format!("no interaction {of} is kept")))?;
        let modal = shown
            .response
            .as_ref()
            .filter(|r| r.callback_type == 9)
            .ok_or_else(|| {
                WorldError::Invalid(format!("interaction {of} was not answered with a modal"))
            })?;
        if shown.user_id != spec.user_id || shown.guild_id != spec.guild_id {
            return Err(WorldError::Invalid(
                "only the user the modal was shown to can submit it, in its guild".into(),
            ));
        }
        Ok((
            shown.origin,
            modal.modal_custom_id.as_deref().unwrap_or(""),
            &modal.components,
        ))
    }

    /// `resolved` of a command: the users (and members) named by its user options.
    fn resolve_users(&self, guild_id: Id<GuildMarker>, options: &Value) -> Map<String, Value> {
        let mut ids = Vec::new();
        user_option_ids(options, &mut ids);
        let mut users = Map::new();
        let mut members = Map::new();
        let guild = self.guilds.get(&guild_id);
        for raw in ids {
            let user_id = Id::new(raw);
            if !self.knows_user(user_id) {
                continue;
            }
            users.insert(
                raw.to_string(),
                serde_json::to_value(self.user(user_id)).unwrap_or(Value::Null),
            );
            if let Some(member) = guild.and_then(|g| g.members.get(&user_id)) {
                members.insert(
                    raw.to_string(),
                    json!({
                        "avatar": null,
                        "banner": null,
                        "communication_disabled_until": null,
                        "flags": member.flags,
                        "joined_at": snowflake::format_ts(member.joined_at_ms),
                        "nick": null,
                        "pending": false,
                        "permissions": permissions::EVERYONE.to_string(),
                        "premium_since": null,
                        "roles": [],
                    }),
                );
            }
        }
        let mut resolved = Map::new();
        if !users.is_empty() {
            resolved.insert("users".to_owned(), Value::Object(users));
        }
        if !members.is_empty() {
            resolved.insert("members".to_owned(), Value::Object(members));
        }
        resolved
    }

    /// The message a button is on: a message the bot posted or an interaction response if
    /// the world still keeps it, else a minimal message of the bot with that button.
    fn component_message(
        &self,
        message_id: Id<MessageMarker>,
        channel_id: Id<ChannelMarker>,
        guild_id: Id<GuildMarker>,
        custom_id: &str,
    ) -> Value {
        if let Some((interaction, response)) = self.interactions.with_message(message_id) {
            return self.response_message(interaction, response);
        }
        let (channel_id, content, embeds) = match self.messages.find(message_id) {
            Some(posted) => (
                posted.channel_id,
                posted.content.clone(),
                posted.embeds.clone(),
            ),
            None => (channel_id, String::new(), Vec::new()),
        };
        json!({
            "id": message_id.to_string(),
            "type": 0,
            "channel_id": channel_id.to_string(),
            "guild_id": guild_id.to_string(),
            "author": serde_json::to_value(self.bot.user()).unwrap_or(Value::Null),
            "content": content,
            "timestamp": snowflake::format_ts(snowflake::created_at_ms(message_id.get())),
            "edited_timestamp": null,
            "tts": false,
            "mention_everyone": false,
            "mentions": [],
            "mention_roles": [],
            "attachments": [],
            "embeds": embeds,
            "pinned": false,
            "flags": 0,
            "components": [{
                "type": 1,
                "components": [{"type": 2, "style": 1, "label": custom_id, "custom_id": custom_id}],
            }],
        })
    }

    /// The original response as a message object (what the webhook routes answer).
    fn response_message(&self, interaction: &Interaction, response: &Response) -> Value {
        let message_id = response.message_id.map(|id| id.to_string());
        let (kind, created_ms) = match (interaction.origin, response.callback_type) {
            (Origin::Command, _) => (20, response.at_ms),
            (origin, 6 | 7) => (
                0,
                origin
                    .component_message()
                    .map_or(response.at_ms, |m| snowflake::created_at_ms(m.get())),
            ),
            _ => (0, response.at_ms),
        };
        self.webhook_message(
            interaction,
            &WebhookMessage {
                id: message_id,
                kind,
                created_ms,
                edited_ms: response.edited_ms,
                content: response.content.as_deref(),
                embeds: &response.embeds,
                components: &response.components,
                flags: response.flags | if response.loading { LOADING } else { 0 },
            },
        )
    }

    /// A message of `interaction`'s webhook as Discord's JSON.
    fn webhook_message(&self, interaction: &Interaction, message: &WebhookMessage<'_>) -> Value {
        let app_id = self.bot.application_id().to_string();
        json!({
            "id": message.id,
            "type": message.kind,
            "channel_id": interaction.channel_id.to_string(),
            "guild_id": interaction.guild_id.to_string(),
            "author": serde_json::to_value(self.bot.user()).unwrap_or(Value::Null),
            "content": message.content.unwrap_or(""),
            "timestamp": snowflake::format_ts(message.created_ms),
            "edited_timestamp": message.edited_ms.map(snowflake::format_ts),
            "tts": false,
            "mention_everyone": false,
            "mentions": [],
            "mention_roles": [],
            "attachments": [],
            "embeds": message.embeds,
            "pinned": false,
            "flags": message.flags,
            "components": message.components,
            "webhook_id": app_id,
            "application_id": app_id,
        })
    }

    /// How the bot answered an interaction, if it did and the world still keeps it.
    pub fn interaction_reply(&self, id: Id<InteractionMarker>) -> Option<InteractionReply> {
        let interaction = self.interactions.by_id.get(&id)?;
        let response = interaction.response.as_ref()?;
        Some(InteractionReply {
            callback_type: response.callback_type,
            content: response.content.clone(),
            embeds: response.embeds.clone(),
            components: response.components.clone(),
            flags: response.flags,
            edits: response.edits,
            acknowledged_after_ms: elapsed_ms(interaction.created_ms, response.at_ms),
            followups: response.followups.clone(),
            over_http: interaction.over_http,
        })
    }

    /// `POST /interactions/{id}/{token}/callback`: the initial response, once, within 3 s.
    /// Answers the interaction callback response with `with_response`, else nothing (204).
    pub(crate) fn rest_interaction_callback(
        &mut self,
        id: Id<InteractionMarker>,
        token: &str,
        form: CallbackForm,
        with_response: bool,
    ) -> Result<Option<String>, WorldError> {
        let now = self.now_ms();
        let message_id = Id::new(self.ids.at(now));
        let interaction = self
            .interactions
            .by_id
            .get_mut(&id)
            .filter(|i| i.token == token)
            .ok_or(WorldError::UnknownInteraction)?;
        if interaction.response.is_some() {
            return Err(WorldError::InteractionAcknowledged);
        }
        if now - interaction.created_ms > INTERACTION_RESPONSE_WINDOW_MS {
            return Err(WorldError::UnknownInteraction);
        }
        // A modal answers commands and components, not a modal; updating a message needs
        // the message of a component.
        let allowed: &[u8] = match interaction.origin {
            Origin::Command => &[4, 5, 9],
            Origin::Component { .. } => &[4, 5, 6, 7, 9],
            Origin::ModalSubmit {
                message_id: Some(_),
            } => &[4, 5, 6, 7],
            Origin::ModalSubmit { message_id: None } => &[4, 5],
        };
        if !allowed.contains(&form.kind) {
            return Err(WorldError::InvalidForm(json!({"type": {"_errors": [{
                "code": "INTERACTION_RESPONSE_TYPE_INVALID",
                "message": format!("Interaction response type {} is not valid for this interaction", form.kind),
            }]}})));
        }
        if form.kind == 4 && says_nothing(form.content.as_deref(), &form.embeds, &form.components) {
            return Err(WorldError::EmptyMessage);
        }
        let message_id = match form.kind {
            6 | 7 => interaction.origin.component_message(),
            9 => None,
            _ => Some(message_id),
        };
        let deferred = matches!(form.kind, 5 | 6);
        interaction.response = Some(Response {
            callback_type: form.kind,
            at_ms: now,
            message_id,
            content: if deferred { None } else { form.content },
            embeds: if deferred { Vec::new() } else { form.embeds },
            components: if deferred {
                Value::Array(Vec::new())
            } else {
                form.components
            },
            flags: form.flags,
            edits: 0,
            edited_ms: None,
            loading: form.kind == 5,
            modal_custom_id: form.custom_id,
            followups: Vec::new(),
        });
        tracing::debug!(interaction_id = %id, callback_type = form.kind, "interaction acknowledged");
        if !with_response {
            return Ok(None);
        }
        let interaction = &self.interactions.by_id[&id];
        let Some(response) = interaction.response.as_ref() else {
            return Ok(None);
        };
        let mut callback = json!({
            "id": id.to_string(),
            "type": match interaction.origin {
                Origin::Command => 2,
                Origin::Component { .. } => 3,
                Origin::ModalSubmit { .. } => 5,
            },
        });
        if let Some(message_id) = response.message_id {
            callback["response_message_id"] = Value::String(message_id.to_string());
            callback["response_message_loading"] = Value::Bool(response.loading);
            callback["response_message_ephemeral"] = Value::Bool(response.flags & EPHEMERAL != 0);
        }
        let mut resource = json!({ "type": response.callback_type });
        if matches!(response.callback_type, 4 | 7) {
            resource["message"] = self.response_message(interaction, response);
        }
        let body = json!({ "interaction": callback, "resource": resource });
        serde_json::to_string(&body)
            .map(Some)
            .map_err(|e| WorldError::Invalid(e.to_string()))
    }

    /// Finds the interaction of a webhook route, with Discord's answers for a wrong
    /// application, an unknown or expired token and a response that does not exist yet.
    fn webhook_interaction(
        &mut self,
        application_id: Id<ApplicationMarker>,
        token: &str,
        now: i64,
    ) -> Result<&mut Interaction, WorldError> {
        if application_id != self.bot.application_id() {
            return Err(WorldError::UnknownWebhook);
        }
        let interaction = self
            .interactions
            .by_token_mut(token)
            .ok_or(WorldError::UnknownWebhook)?;
        let age = now - interaction.created_ms;
        match &interaction.response {
            None if age > INTERACTION_RESPONSE_WINDOW_MS => Err(WorldError::UnknownWebhook),
            None => Err(WorldError::UnknownMessage),
            Some(_) if age > INTERACTION_TOKEN_LIFETIME_MS => Err(WorldError::InvalidWebhookToken),
            Some(_) => Ok(interaction),
        }
    }

    /// `PATCH /webhooks/{application_id}/{token}/messages/@original`: edits the original
    /// response; answers the message.
    pub(crate) fn rest_edit_original(
        &mut self,
        application_id: Id<ApplicationMarker>,
        token: &str,
        form: EditForm,
    ) -> Result<String, WorldError> {
        let now = self.now_ms();
        let interaction = self.webhook_interaction(application_id, token, now)?;
        let Some(response) = interaction.response.as_mut() else {
            return Err(WorldError::UnknownMessage);
        };
        if response.message_id.is_none() {
            // A modal has no message.
            return Err(WorldError::UnknownMessage);
        }
        let content = form.content.unwrap_or_else(|| response.content.clone());
        let embeds = form.embeds.unwrap_or_else(|| response.embeds.clone());
        let components = form
            .components
            .unwrap_or_else(|| response.components.clone());
        if says_nothing(content.as_deref(), &embeds, &components) {
            return Err(WorldError::EmptyMessage);
        }
        response.content = content;
        response.embeds = embeds;
        response.components = components;
        response.edits += 1;
        response.edited_ms = Some(now);
        response.loading = false;
        let id = interaction.id;
        tracing::debug!(interaction_id = %id, "original response edited");
        let interaction = &self.interactions.by_id[&id];
        let Some(response) = interaction.response.as_ref() else {
            return Err(WorldError::UnknownMessage);
        };
        serde_json::to_string(&self.response_message(interaction, response))
            .map_err(|e| WorldError::Invalid(e.to_string()))
    }

    /// `POST /webhooks/{application_id}/{token}`: a follow-up message, after the initial
    /// response and while the token lives; answers the message (`wait` is always true for
    /// interactions).
    pub(crate) fn rest_create_followup(
        &mut self,
        application_id: Id<ApplicationMarker>,
        token: &str,
        form: FollowUpForm,
    ) -> Result<String, WorldError> {
        let now = self.now_ms();
        let message_id = Id::new(self.ids.at(now));
        // Before the initial response the token is not a webhook yet.
        let interaction = self
            .webhook_interaction(application_id, token, now)
            .map_err(|e| match e {
                WorldError::UnknownMessage => WorldError::UnknownWebhook,
                e => e,
            })?;
        let Some(response) = interaction.response.as_mut() else {
            return Err(WorldError::UnknownWebhook);
        };
        let followup = FollowUp {
            id: message_id,
            content: form.content,
            embeds: form.embeds,
            components: form.components,
            flags: form.flags,
        };
        if says_nothing(
            followup.content.as_deref(),
            &followup.embeds,
            &followup.components,
        ) {
            return Err(WorldError::EmptyMessage);
        }
        response.followups.push(followup.clone());
        let id = interaction.id;
        tracing::debug!(interaction_id = %id, message_id = %message_id, "follow-up message created");
        let message = self.webhook_message(
            &self.interactions.by_id[&id],
            &WebhookMessage {
                id: Some(message_id.to_string()),
                kind: 0,
                created_ms: now,
                edited_ms: None,
                content: followup.content.as_deref(),
                embeds: &followup.embeds,
                components: &followup.components,
                flags: followup.flags,
            },
        );
        serde_json::to_string(&message).map_err(|e| WorldError::Invalid(e.to_string()))
    }
}
