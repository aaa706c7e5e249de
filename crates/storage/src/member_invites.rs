//! The `member_invites` table: invites the bot created with `/invite link`, each for one member.
//! Discord names the bot as their inviter; the worker credits the member instead
//! (`docs/commands.md#invite-link`).

use std::collections::HashMap;

use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use invitrack_model::{ChannelId, GuildKey, InviteCode, UserId};

use crate::StorageError;
use crate::schema::{invites, member_invites};

/// Records that the bot created `code` for `member`.
///
/// # Errors
/// On database errors.
pub async fn record(
    conn: &mut AsyncPgConnection,
    guild: GuildKey,
    code: &InviteCode,
    member: UserId,
    channel: ChannelId,
) -> Result<(), StorageError> {
    use member_invites::dsl as m;
    diesel::insert_into(m::member_invites)
        .values((
            m::bot_id.eq(guild.bot_id),
            m::guild_id.eq(guild.guild_id),
            m::code.eq(code),
            m::member_id.eq(member),
            m::channel_id.eq(channel),
        ))
        .on_conflict_do_nothing()
        .execute(conn)
        .await?;
    Ok(())
}

/// The newest invite made for `member` that has not vanished (one the worker has not seen yet
/// counts as live: it was made moments ago).
///
/// # Errors
/// On database errors.
pub async fn live_code_of(
    conn: &mut AsyncPgConnection,
    guild: GuildKey,
    member: UserId,
) -> Result<Option<(InviteCode, ChannelId)>, StorageError> {
    use member_invites::dsl as m;
    Ok(m::member_invites
        .left_join(
            invites::table.on(invites::bot_id
                .eq(m::bot_id)
                .and(invites::guild_id.eq(m::guild_id))
                .and(invites::code.eq(m::code))),
        )
        .filter(m::bot_id.eq(guild.bot_id))
        .filter(m::guild_id.eq(guild.guild_id))
        .filter(m::member_id.eq(member))
        .filter(invites::vanished_at.is_null())
        .order(m::created_at.desc())
        .select((m::code, m::channel_id))
        .first(conn)
        .await
        .optional()?)
}

/// Who each of `codes` was made for, among those the bot made for members.
///
/// # Errors
/// On database errors.
pub async fn owners(
    conn: &mut AsyncPgConnection,
    guild: GuildKey,
    codes: &[InviteCode],
) -> Result<HashMap<InviteCode, UserId>, StorageError> {
    use member_invites::dsl as m;
    if codes.is_empty() {
        return Ok(HashMap::new());
    }
    let rows: Vec<(InviteCode, UserId)> = m::member_invites
        .filter(m::bot_id.eq(guild.bot_id))
        .filter(m::guild_id.eq(guild.guild_id))
        .filter(m::code.eq_any(codes))
        .select((m::code, m::member_id))
        .load(conn)
        .await?;
    Ok(rows.into_iter().collect())
}
