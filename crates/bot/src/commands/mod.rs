//! Slash commands and their buttons (`docs/commands.md`): interactions arrive from ingest on
//! core NATS, shared by the bot's replicas in a queue group; each is answered with
//! twilight-http within Discord's 3 seconds, deferred first when the data is slow to read.

pub mod answers;
pub mod definitions;

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt as _;
use invitrack_bus::{Bus, InteractionReceived};
use invitrack_model::{BotId, GuildId, GuildKey, UserId};
use invitrack_storage::Pool;
use invitrack_storage::dashboard::{self, LeaderboardOrder};
use prost::Message as _;
use tokio_util::sync::CancellationToken;
use twilight_http::Client;
use twilight_model::application::interaction::application_command::{
    CommandData, CommandOptionValue,
};
use twilight_model::application::interaction::{Interaction, InteractionData};
use twilight_model::channel::message::component::{ActionRow, Button, ButtonStyle, Component};
use twilight_model::channel::message::{AllowedMentions, MessageFlags};
use twilight_model::http::interaction::{
    InteractionResponse, InteractionResponseData, InteractionResponseType,
};
use twilight_model::id::Id;
use twilight_model::id::marker::ApplicationMarker;

use crate::BotError;
use answers::Range;

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
}

/// An answer: its text, whether only the caller sees it, its buttons.
struct Answer {
    content: String,
    ephemeral: bool,
    components: Vec<Component>,
}

impl Answer {
    fn public(content: String) -> Self {
        Self {
            content,
            ephemeral: false,
            components: Vec::new(),
        }
    }

    fn private(content: impl Into<String>) -> Self {
        Self {
            content: content.into(),
            ephemeral: true,
            components: Vec::new(),
        }
    }

    fn data(self) -> InteractionResponseData {
        InteractionResponseData {
            content: Some(self.content),
            // Mentions name people; they never ping.
            allowed_mentions: Some(AllowedMentions::default()),
            flags: self.ephemeral.then_some(MessageFlags::EPHEMERAL),
            components: Some(self.components),
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
        let client = self.http.interaction(self.application_id);
        let (id, token) = (interaction.id, interaction.token.clone());
        // Interaction callbacks are not counted in the bot's global rate limit (Discord's
        // documentation), so they do not go through the gate's budget.
        self.respond(&interaction, waited, async |response| {
            client
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
    pub(crate) async fn respond(
        &self,
        interaction: &Interaction,
        waited: Duration,
        send_first: impl AsyncFnOnce(InteractionResponse) -> Result<(), FirstResponseError>,
    ) {
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
        let (Some(guild_id), Some(caller)) = (interaction.guild_id, interaction.author_id()) else {
            return Answer::private(answers::GUILD_ONLY);
        };
        let guild = GuildKey::new(self.bot_id, GuildId::new(guild_id.get()));
        let caller = UserId::new(caller.get());
        let answered = match &interaction.data {
            Some(InteractionData::ApplicationCommand(command)) => {
                self.command(guild, caller, command).await
            }
            Some(InteractionData::MessageComponent(component)) => {
                match parse_leaderboard_button(&component.custom_id) {
                    Some((range, page)) => self.leaderboard(guild, range, page).await,
                    None => Ok(Answer::private(answers::UNKNOWN_COMMAND)),
                }
            }
            _ => Ok(Answer::private(answers::UNKNOWN_COMMAND)),
        };
        answered.unwrap_or_else(|error| {
            tracing::warn!(guild_id = %guild.guild_id, error = &error as &dyn std::error::Error, "command data not read");
            Answer::private(answers::UNAVAILABLE)
        })
    }

    async fn command(
        &self,
        guild: GuildKey,
        caller: UserId,
        command: &CommandData,
    ) -> Result<Answer, BotError> {
        let user_option = |name: &str| {
            command
                .options
                .iter()
                .find_map(|o| match (&o.value, o.name == name) {
                    (CommandOptionValue::User(id), true) => Some(UserId::new(id.get())),
                    _ => None,
                })
        };
        match command.name.as_str() {
            "invites" => {
                let user = user_option("user").unwrap_or(caller);
                let mut conn = self.pool.get().await.map_err(BotError::pool)?;
                let counts =
                    invitrack_storage::counts::inviter_counts(&mut conn, guild, user).await?;
                Ok(Answer::public(answers::invites(user, &counts)))
            }
            "leaderboard" => {
                let range = command
                    .options
                    .iter()
                    .find_map(|o| match (&o.value, o.name.as_str()) {
                        (CommandOptionValue::String(v), "range") => Range::from_name(v),
                        _ => None,
                    })
                    .unwrap_or(Range::All);
                let page = command
                    .options
                    .iter()
                    .find_map(|o| match (&o.value, o.name.as_str()) {
                        (CommandOptionValue::Integer(v), "page") => Some(*v),
                        _ => None,
                    })
                    .unwrap_or(1)
                    .clamp(1, 10_000);
                self.leaderboard(guild, range, page).await
            }
            "inviter" => {
                let Some(member) = user_option("member") else {
                    return Ok(Answer::private(answers::UNKNOWN_COMMAND));
                };
                let mut conn = self.pool.get().await.map_err(BotError::pool)?;
                let history = dashboard::member_history(&mut conn, guild, member).await?;
                Ok(Answer::public(answers::inviter(
                    member,
                    history.joins.first(),
                )))
            }
            _ => Ok(Answer::private(answers::UNKNOWN_COMMAND)),
        }
    }

    async fn leaderboard(
        &self,
        guild: GuildKey,
        range: Range,
        page: i64,
    ) -> Result<Answer, BotError> {
        let since = range
            .days()
            .map(|d| chrono::Utc::now() - chrono::Duration::days(d));
        let mut conn = self.pool.get().await.map_err(BotError::pool)?;
        let result = dashboard::leaderboard(
            &mut conn,
            guild,
            LeaderboardOrder::Real,
            since,
            answers::LEADERBOARD_PAGE_SIZE,
            (page - 1) * answers::LEADERBOARD_PAGE_SIZE,
        )
        .await?;
        let pages = answers::pages(result.total_inviters);
        let button = |label: &str, to: i64, disabled: bool| {
            Component::Button(Button {
                custom_id: Some(leaderboard_button(range, to)),
                disabled,
                emoji: None,
                id: None,
                label: Some(label.to_owned()),
                sku_id: None,
                style: ButtonStyle::Secondary,
                url: None,
            })
        };
        let mut answer = Answer::public(answers::leaderboard(range, page, &result));
        if pages > 1 || page > 1 {
            answer.components = vec![Component::ActionRow(ActionRow {
                id: None,
                components: vec![
                    button(answers::PREVIOUS, page - 1, page <= 1),
                    button(answers::NEXT, page + 1, page >= pages),
                ],
            })];
        }
        Ok(answer)
    }
}

/// A leaderboard button's `custom_id`: `leaderboard:{range}:{page}` (at most 100 characters).
fn leaderboard_button(range: Range, page: i64) -> String {
    format!("leaderboard:{}:{}", range.as_str(), page.max(1))
}

fn parse_leaderboard_button(custom_id: &str) -> Option<(Range, i64)> {
    let mut parts = custom_id.split(':');
    if parts.next()? != "leaderboard" {
        return None;
    }
    let range = Range::from_name(parts.next()?)?;
    let page = parts.next()?.parse::<i64>().ok()?.clamp(1, 10_000);
    parts.next().is_none().then_some((range, page))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leaderboard_buttons_round_trip_and_refuse_anything_else() {
        for range in Range::ALL {
            for page in [1, 2, 9_999] {
                assert_eq!(
                    parse_leaderboard_button(&leaderboard_button(range, page)),
                    Some((range, page))
                );
            }
        }
        for bad in [
            "",
            "leaderboard",
            "leaderboard:all",
            "leaderboard:1y:2",
            "leaderboard:all:x",
            "leaderboard:all:2:3",
            "other:all:2",
        ] {
            assert_eq!(parse_leaderboard_button(bad), None, "{bad}");
        }
    }
}
