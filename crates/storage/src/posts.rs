//! What the bot did with each decision it had a channel for (`docs/bot.md`): the markers that
//! keep a decision from being posted twice, the batches several decisions of a raid go out in,
//! and a guild's message health.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use invitrack_model::{ChannelId, GuildKey};

use crate::StorageError;
use crate::schema::{bot_posts, decisions};

/// How a message ended.
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

/// Where a decision stands with the bot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PostState {
    /// Never seen.
    New,
    /// Part of a batch that was about to be sent (`batch_id`): send that batch again.
    Pending { batch_id: i64 },
    /// Posted or refused: nothing more to do.
    Done,
}

/// Where decision `decision_id` stands.
///
/// # Errors
/// On database errors.
pub async fn state(
    conn: &mut AsyncPgConnection,
    decision_id: i64,
) -> Result<PostState, StorageError> {
    let row: Option<(i64, String)> = bot_posts::table
        .find(decision_id)
        .select((bot_posts::batch_id, bot_posts::outcome))
        .first(conn)
        .await
        .optional()?;
    Ok(match row {
        None => PostState::New,
        Some((batch_id, outcome)) if outcome == "pending" => PostState::Pending { batch_id },
        Some(_) => PostState::Done,
    })
}

/// A recorded decision's id and bus message.
pub type RecordedDecision = (i64, Vec<u8>);

/// The decisions of `guild` after `after_id` that the bot has not handled yet, oldest first, at
/// most `limit`: what a message may carry along with `after_id`'s.
///
/// # Errors
/// On database errors.
pub async fn waiting_after(
    conn: &mut AsyncPgConnection,
    guild: GuildKey,
    after_id: i64,
    limit: i64,
) -> Result<Vec<RecordedDecision>, StorageError> {
    Ok(decisions::table
        .filter(decisions::bot_id.eq(guild.bot_id))
        .filter(decisions::guild_id.eq(guild.guild_id))
        .filter(decisions::id.gt(after_id))
        .filter(diesel::dsl::not(diesel::dsl::exists(
            bot_posts::table.filter(bot_posts::decision_id.eq(decisions::id)),
        )))
        .order(decisions::id)
        .limit(limit)
        .select((decisions::id, decisions::payload))
        .load(conn)
        .await?)
}

/// The decisions of batch `batch_id`, oldest first, with their bus messages.
///
/// # Errors
/// On database errors.
pub async fn batch(
    conn: &mut AsyncPgConnection,
    batch_id: i64,
) -> Result<Vec<RecordedDecision>, StorageError> {
    Ok(bot_posts::table
        .inner_join(decisions::table.on(decisions::id.eq(bot_posts::decision_id)))
        .filter(bot_posts::batch_id.eq(batch_id))
        .order(decisions::id)
        .select((decisions::id, decisions::payload))
        .load(conn)
        .await?)
}

/// Records that decisions `ids` (the first is the batch's id) are about to go out together to
/// `channel`, before the message is sent.
///
/// # Errors
/// On database errors.
pub async fn begin_batch(
    conn: &mut AsyncPgConnection,
    guild: GuildKey,
    channel: ChannelId,
    ids: &[i64],
) -> Result<(), StorageError> {
    let Some(&batch_id) = ids.first() else {
        return Ok(());
    };
    crate::prepared::prepared(
        "INSERT INTO bot_posts (decision_id, batch_id, bot_id, guild_id, channel_id, outcome) \
         SELECT d, $1, $2, $3, $4, 'pending' FROM unnest($5::int8[]) AS d \
         ON CONFLICT (decision_id) DO NOTHING",
    )
    .bind::<BigInt, _>(batch_id)
    .bind::<BigInt, _>(guild.bot_id)
    .bind::<BigInt, _>(guild.guild_id)
    .bind::<BigInt, _>(channel)
    .bind::<Array<BigInt>, _>(ids)
    .execute(conn)
    .await?;
    Ok(())
}

/// Records how batch `batch_id` ended.
///
/// # Errors
/// On database errors.
pub async fn finish_batch(
    conn: &mut AsyncPgConnection,
    batch_id: i64,
    outcome: PostOutcome,
    detail: Option<&str>,
) -> Result<(), StorageError> {
    let message_id = match outcome {
        PostOutcome::Posted { message_id } => Some(message_id.cast_signed()),
        _ => None,
    };
    diesel::update(bot_posts::table.filter(bot_posts::batch_id.eq(batch_id)))
        .set((
            bot_posts::message_id.eq(message_id),
            bot_posts::outcome.eq(outcome.as_str()),
            bot_posts::detail.eq(detail),
            bot_posts::at.eq(diesel::dsl::now),
        ))
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
        .filter(bot_posts::outcome.ne_all(["posted", "pending"]))
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
