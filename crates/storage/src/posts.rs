//! What the bot did with each decision it had a channel for (`docs/bot.md`): the marker that
//! keeps a decision from being posted twice, and a guild's message health.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use invitrack_model::{ChannelId, GuildKey};

use crate::StorageError;
use crate::schema::bot_posts;

/// How a decision's message ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PostOutcome {
    Posted {
        message_id: u64,
    },
    /// 403: the bot may not post in the channel.
    MissingPermissions,
    /// 404: the channel is gone.
    UnknownChannel,
    /// Another 4xx: Discord will not take this message.
    Refused,
}

impl PostOutcome {
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Posted { .. } => "posted",
            Self::MissingPermissions => "missing_permissions",
            Self::UnknownChannel => "unknown_channel",
            Self::Refused => "refused",
        }
    }
}

/// Whether the bot already handled this decision (posted it, or Discord refused it).
///
/// # Errors
/// On database errors.
pub async fn handled(conn: &mut AsyncPgConnection, decision_id: i64) -> Result<bool, StorageError> {
    Ok(bot_posts::table
        .find(decision_id)
        .select(bot_posts::decision_id)
        .first::<i64>(conn)
        .await
        .optional()?
        .is_some())
}

/// Records what became of a decision's message; a decision recorded already keeps its first
/// record (a replay racing the first handling).
///
/// # Errors
/// On database errors.
pub async fn record(
    conn: &mut AsyncPgConnection,
    decision_id: i64,
    guild: GuildKey,
    channel: ChannelId,
    outcome: PostOutcome,
    detail: Option<&str>,
) -> Result<(), StorageError> {
    let message_id = match outcome {
        PostOutcome::Posted { message_id } => Some(message_id.cast_signed()),
        _ => None,
    };
    diesel::insert_into(bot_posts::table)
        .values((
            bot_posts::decision_id.eq(decision_id),
            bot_posts::bot_id.eq(guild.bot_id),
            bot_posts::guild_id.eq(guild.guild_id),
            bot_posts::channel_id.eq(channel),
            bot_posts::message_id.eq(message_id),
            bot_posts::outcome.eq(outcome.as_str()),
            bot_posts::detail.eq(detail),
        ))
        .on_conflict_do_nothing()
        .execute(conn)
        .await?;
    Ok(())
}

/// A refusal of a guild's messages.
#[derive(Debug, Clone, PartialEq, Eq, Queryable)]
pub struct Refusal {
    pub channel_id: ChannelId,
    pub outcome: String,
    pub detail: Option<String>,
    pub at: DateTime<Utc>,
}

/// The latest refusal of a guild's messages since `since`, if any: its message health.
///
/// # Errors
/// On database errors.
pub async fn latest_refusal(
    conn: &mut AsyncPgConnection,
    guild: GuildKey,
    since: DateTime<Utc>,
) -> Result<Option<Refusal>, StorageError> {
    Ok(bot_posts::table
        .filter(bot_posts::bot_id.eq(guild.bot_id))
        .filter(bot_posts::guild_id.eq(guild.guild_id))
        .filter(bot_posts::outcome.ne("posted"))
        .filter(bot_posts::at.ge(since))
        .order(bot_posts::at.desc())
        .select((
            bot_posts::channel_id,
            bot_posts::outcome,
            bot_posts::detail,
            bot_posts::at,
        ))
        .first(conn)
        .await
        .optional()?)
}
