//! Slash commands and their buttons (`docs/commands.md`): interactions arrive from ingest on
//! core NATS, shared by the bot's replicas in a queue group; each is answered with
//! twilight-http within Discord's 3 seconds, deferred first when the data is slow to read.

mod admin;
pub mod answers;
pub mod buttons;
pub mod catalogue;
pub mod definitions;
pub mod endpoint;
mod invite_link;
mod lookups;
pub mod options;
mod templates;

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt as _;
use invitrack_bus::{Bus, InteractionReceived};
use invitrack_discord::DiscordGate;
use invitrack_model::{BotId, GuildId, GuildKey, UserId};
use invitrack_storage::Pool;
use prost::Message as _;
use tokio_util::sync::CancellationToken;
use twilight_http::Client;
use twilight_model::application::interaction::application_command::CommandData;
use twilight_model::application::interaction::{Interaction, InteractionData};
use twilight_model::channel::message::component::{ActionRow, ButtonStyle, Component};
use twilight_model::channel::message::{AllowedMentions, Embed, MessageFlags};
use twilight_model::guild::Permissions;
use twilight_model::http::interaction::{
    InteractionResponse, InteractionResponseData, InteractionResponseType,
};
use twilight_model::id::Id;
use twilight_model::id::marker::ApplicationMarker;

use crate::BotError;
use buttons::Button;
use catalogue::Speaker;
use options::Options;

/// After this long since ingest received an interaction, the bot acknowledges it (deferred)
/// and edits the answer in later: Discord forgets an interaction not answered within 3 s.
const DEFER_AFTER: Duration = Duration::from_millis(1_500);

/// Why a response could not be sent, whichever way it went.
pub(crate) type FirstResponseError = Box<dyn std::error::Error + Send + Sync>;

/// What answering needs.
pub(crate) struct Commands {
    pub(crate) http: Arc<Client>,
    pub(crate) application_id: Id<ApplicationMarker>,
    pub(crate) pool: Pool,
    pub(crate) bot_id: BotId,
    /// The bot's request budget, for what commands ask of Discord (`/invite link`).
    pub(crate) gate: Arc<DiscordGate>,
}

/// An answer: its text, whether only the caller sees it, its buttons and embeds; or a form
/// (a modal), with the text to say instead when the form came too late to be shown.
struct Answer {
    content: String,
    ephemeral: bool,
    components: Vec<Component>,
    embeds: Vec<Embed>,
    form: Option<InteractionResponseData>,
}

impl Answer {
    fn public(content: String) -> Self {
        Self {
            content,
            ephemeral: false,
            components: Vec::new(),
            embeds: Vec::new(),
            form: None,
        }
    }

    fn private(content: impl Into<String>) -> Self {
        Self {
            ephemeral: true,
            ..Self::public(content.into())
        }
    }

    /// A modal; a deferred answer cannot be one, so it says `too_late` instead.
    fn form(form: InteractionResponseData, too_late: String) -> Self {
        Self {
            form: Some(form),
            ..Self::private(too_late)
        }
    }

    /// One row of buttons: label, action, style, disabled.
    fn with_buttons(mut self, buttons: Vec<(String, Button, ButtonStyle, bool)>) -> Self {
        self.components = vec![Component::ActionRow(ActionRow {
            id: None,
            components: buttons
                .into_iter()
                .map(|(label, button, style, disabled)| {
                    Component::Button(twilight_model::channel::message::component::Button {
                        custom_id: Some(button.custom_id()),
                        disabled,
                        emoji: None,
                        id: None,
                        label: Some(label),
                        sku_id: None,
                        style,
                        url: None,
                    })
                })
                .collect(),
        })];
        self
    }

    fn data(self) -> InteractionResponseData {
        InteractionResponseData {
            content: Some(self.content),
            // Mentions name people; they never ping.
            allowed_mentions: Some(AllowedMentions::default()),
            flags: self.ephemeral.then_some(MessageFlags::EPHEMERAL),
            components: Some(self.components),
            embeds: Some(self.embeds),
            ..InteractionResponseData::default()
        }
    }
}

impl Commands {
    /// Takes this bot's interactions until `stop`.
    pub(crate) async fn serve(
        self: Arc<Self>,
        bus: Bus,
        stop: CancellationToken,
    ) -> Result<(), BotError> {
        let mut subscription = bus
            .client
            .queue_subscribe(
                bus.layout.interaction_subject(self.bot_id),
                bus.layout.interaction_group(self.bot_id),
            )
            .await
            .map_err(|e| BotError::jetstream("subscribe to interactions", e))?;
        loop {
            let message = tokio::select! {
                message = subscription.next() => message,
                () = stop.cancelled() => return Ok(()),
            };
            let Some(message) = message else {
                return Err(BotError::jetstream(
                    "receive interactions",
                    "the subscription ended",
                ));
            };
            let this = Arc::clone(&self);
            tokio::spawn(async move { this.handle(&message.payload).await });
        }
    }

    async fn handle(&self, payload: &[u8]) {
        let received = match InteractionReceived::decode(payload) {
            Ok(received) => received,
            Err(error) => {
                tracing::warn!(%error, "not an interaction message: skipped");
                return;
            }
        };
        let interaction: Interaction = match serde_json::from_slice(&received.interaction_json) {
            Ok(interaction) => interaction,
            Err(error) => {
                tracing::warn!(%error, "interaction not understood: skipped");
                return;
            }
        };
        let waited = invitrack_model::time::now_millis() - received.received_at_ms;
        let waited = Duration::from_millis(u64::try_from(waited).unwrap_or(0));
        let (http, application_id) = (Arc::clone(&self.http), self.application_id);
        let (id, token) = (interaction.id, interaction.token.clone());
        // Interaction callbacks are not counted in the bot's global rate limit (Discord's
        // documentation), so they do not go through the gate's budget.
        self.respond(&interaction, waited, move |response| async move {
            http.interaction(application_id)
                .create_response(id, &token, &response)
                .await
                .map(drop)
                .map_err(|e| Box::new(e) as FirstResponseError)
        })
        .await;
    }

    /// Answers `interaction`, received `waited` ago: `send_first` sends the first response (the
    /// answer, or a deferral when the answer is not ready [`DEFER_AFTER`] after receipt), by
    /// whichever way the interaction came (the callback endpoint for the gateway, the HTTP
    /// response for the interactions endpoint); a deferred answer then edits `@original`.
    pub(crate) async fn respond<Sent>(
        &self,
        interaction: &Interaction,
        waited: Duration,
        send_first: impl FnOnce(InteractionResponse) -> Sent,
    ) where
        Sent: Future<Output = Result<(), FirstResponseError>>,
    {
        let defer_in = DEFER_AFTER.saturating_sub(waited);
        let answering = self.answer(interaction);
        tokio::pin!(answering);
        let (kind, deferred_kind) = match interaction.data {
            Some(InteractionData::MessageComponent(_)) => (
                InteractionResponseType::UpdateMessage,
                InteractionResponseType::DeferredUpdateMessage,
            ),
            _ => (
                InteractionResponseType::ChannelMessageWithSource,
                InteractionResponseType::DeferredChannelMessageWithSource,
            ),
        };
        let answer = tokio::select! {
            answer = &mut answering => Some(answer),
            () = tokio::time::sleep(defer_in) => None,
        };
        let sent = match answer {
            Some(Answer {
                form: Some(form), ..
            }) => {
                send_first(InteractionResponse {
                    kind: InteractionResponseType::Modal,
                    data: Some(form),
                })
                .await
            }
            Some(answer) => {
                send_first(InteractionResponse {
                    kind,
                    data: Some(answer.data()),
                })
                .await
            }
            None => {
                tracing::info!(interaction_id = %interaction.id, waited_ms = waited.as_millis(), "answer deferred");
                let deferred = send_first(InteractionResponse {
                    kind: deferred_kind,
                    data: None,
                })
                .await;
                match deferred {
                    Ok(()) => {
                        let answer = answering.await;
                        self.http
                            .interaction(self.application_id)
                            .update_response(&interaction.token)
                            .content(Some(&answer.content))
                            .allowed_mentions(Some(&AllowedMentions::default()))
                            .components(Some(&answer.components))
                            .embeds(Some(&answer.embeds))
                            .await
                            .map(drop)
                            .map_err(|e| Box::new(e) as FirstResponseError)
                    }
                    Err(error) => Err(error),
                }
            }
        };
        if let Err(error) = sent {
            tracing::warn!(interaction_id = %interaction.id, %error, "interaction not answered");
        }
    }

    /// The answer to `interaction`, whatever happens: a failure to read is an answer too.
    async fn answer(&self, interaction: &Interaction) -> Answer {
        let speaker = Speaker::for_locale(interaction.locale.as_deref());
        let (Some(guild_id), Some(caller)) = (interaction.guild_id, interaction.author_id()) else {
            return Answer::private(speaker.say("guild-only"));
        };
        let request = Request {
            guild: GuildKey::new(self.bot_id, GuildId::new(guild_id.get())),
            caller: UserId::new(caller.get()),
            // Discord sends the member's permissions in the channel with every interaction in a
            // guild; absent means none.
            permissions: interaction
                .member
                .as_ref()
                .and_then(|m| m.permissions)
                .unwrap_or_else(Permissions::empty),
            speaker,
        };
        let answered = match &interaction.data {
            Some(InteractionData::ApplicationCommand(command)) => {
                self.command(&request, command).await
            }
            Some(InteractionData::MessageComponent(component)) => {
                match Button::parse(&component.custom_id) {
                    Some(button) => self.button(&request, button).await,
                    None => Ok(Answer::private(request.speaker.say("unknown-command"))),
                }
            }
            Some(InteractionData::ModalSubmit(form)) => {
                match templates::form_kind(&form.custom_id) {
                    // The form is an admin's: the submit is checked as the command was.
                    Some(_) if !request.may_manage() => {
                        Ok(Answer::private(request.speaker.say("need-manage-server")))
                    }
                    Some(kind) => {
                        self.save_template(&request, kind, &templates::submitted_values(form))
                            .await
                    }
                    None => Ok(Answer::private(request.speaker.say("unknown-command"))),
                }
            }
            _ => Ok(Answer::private(request.speaker.say("unknown-command"))),
        };
        answered.unwrap_or_else(|error| {
            tracing::warn!(guild_id = %request.guild.guild_id, user_id = %request.caller, error = &error as &dyn std::error::Error, "command data not read");
            Answer::private(request.speaker.say("unavailable"))
        })
    }

    async fn command(&self, request: &Request, command: &CommandData) -> Result<Answer, BotError> {
        let options = Options(&command.options);
        let name = command.name.as_str();
        if definitions::needs_manage_server(name) && !request.may_manage() {
            tracing::info!(guild_id = %request.guild.guild_id, user_id = %request.caller, command = name, "refused: no Manage Server");
            return Ok(Answer::private(request.speaker.say("need-manage-server")));
        }
        match name {
            "invites" => {
                self.invites(request, options.user("user").unwrap_or(request.caller))
                    .await
            }
            "leaderboard" => {
                let range = options
                    .string("range")
                    .and_then(answers::Range::from_name)
                    .unwrap_or(answers::Range::All);
                let page = options.integer("page").unwrap_or(1).clamp(1, 10_000);
                self.leaderboard(request, range, page).await
            }
            "inviter" => match options.user("member") {
                Some(member) => self.inviter(request, member).await,
                None => Ok(Answer::private(request.speaker.say("unknown-command"))),
            },
            "invitecodes" => {
                self.invite_codes(request, options.user("user").unwrap_or(request.caller))
                    .await
            }
            "tracking" => self.tracking(request).await,
            "bonus" => self.bonus(request, options).await,
            "resetinvites" => Ok(admin::ask_reset(request, options.user("user"))),
            "restoreinvites" => self.restore(request).await,
            "config" => self.config(request, options).await,
            "invite" => match options.subcommand() {
                Some(("link", _)) => self.invite_link(request).await,
                _ => Ok(Answer::private(request.speaker.say("unknown-command"))),
            },
            _ => Ok(Answer::private(request.speaker.say("unknown-command"))),
        }
    }

    async fn button(&self, request: &Request, button: Button) -> Result<Answer, BotError> {
        match button {
            Button::Leaderboard { range, page } => self.leaderboard(request, range, page).await,
            Button::ConfirmReset { caller, .. } | Button::CancelReset { caller }
                if caller != request.caller =>
            {
                Ok(Answer::private(request.speaker.say("not-your-button")))
            }
            Button::ConfirmReset { inviter, .. } => {
                if !request.may_manage() {
                    return Ok(Answer::private(request.speaker.say("need-manage-server")));
                }
                self.reset(request, inviter).await
            }
            Button::CancelReset { .. } => {
                Ok(Answer::private(request.speaker.say("reset-cancelled")))
            }
        }
    }
}

/// Who asks, where, with which rights, in which language.
struct Request {
    guild: GuildKey,
    caller: UserId,
    permissions: Permissions,
    speaker: Speaker,
}

impl Request {
    /// Manage Server (or Administrator, which implies every permission): what admin commands
    /// need, checked here whatever `default_member_permissions` lets Discord show.
    fn may_manage(&self) -> bool {
        self.permissions
            .intersects(Permissions::MANAGE_GUILD | Permissions::ADMINISTRATOR)
    }
}
