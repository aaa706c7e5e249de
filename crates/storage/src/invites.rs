//! The `invites` table: every invite the worker has seen of a guild, as the latest snapshot or
//! invite event showed it, and when and why it vanished.
//!
//! A batch's invite events are folded in memory ([`InviteChanges`]) so each code is written
//! once, then written with a few multi-row statements in the batch's transaction.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Bool, Integer, Nullable, Text, Timestamptz};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use invitrack_model::{ChannelId, GuildKey, InviteCode, UserId, VanishedReason};

use crate::StorageError;
use crate::schema::invites;

/// An invite as a snapshot or INVITE_CREATE showed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeenInvite {
    pub code: InviteCode,
    pub channel_id: Option<ChannelId>,
    pub inviter_id: Option<UserId>,
    pub uses: u64,
    /// 0 = unlimited.
    pub max_uses: u64,
    /// 0 = never expires.
    pub max_age_secs: u32,
    pub temporary: bool,
    pub created_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
}

/// A stored invite.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = invites)]
pub struct StoredInvite {
    pub code: InviteCode,
    pub channel_id: Option<ChannelId>,
    pub inviter_id: Option<UserId>,
    pub uses: i64,
    pub max_uses: i64,
    pub max_age_secs: i32,
    pub temporary: bool,
    pub created_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
    pub vanished_at: Option<DateTime<Utc>>,
    pub vanished_reason: Option<VanishedReason>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Change {
    /// A snapshot showed it: its row becomes this (unless it was deleted).
    Seen(SeenInvite, DateTime<Utc>),
    /// INVITE_CREATE: a row with `uses` 0, unless one exists (a snapshot may have shown it
    /// already, with more uses).
    Created(SeenInvite, DateTime<Utc>),
    Vanished(VanishedReason, DateTime<Utc>),
}

/// A snapshot's verdict on the guild's stored invites: those it does not show have vanished,
/// unless they may be newer than the request.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Sweep {
    requested_at: DateTime<Utc>,
    received_at: DateTime<Utc>,
    shown: BTreeSet<InviteCode>,
}

#[derive(Debug, Default)]
struct GuildChanges {
    /// The batch's last snapshot of the guild.
    sweep: Option<Sweep>,
    codes: BTreeMap<InviteCode, Change>,
}

/// What a batch does to invites, folded in stream order.
#[derive(Debug, Default)]
pub struct InviteChanges {
    guilds: HashMap<GuildKey, GuildChanges>,
}

fn vanished_reason(invite: &SeenInvite, at: DateTime<Utc>) -> VanishedReason {
    if invite.expires_at.is_some_and(|e| e <= at) {
        VanishedReason::Expired
    } else {
        VanishedReason::Missing
    }
}

impl InviteChanges {
    /// A complete invite list, read between `requested_at` and `received_at`.
    pub fn snapshot(
        &mut self,
        guild: GuildKey,
        requested_at: DateTime<Utc>,
        received_at: DateTime<Utc>,
        invites: Vec<SeenInvite>,
    ) {
        let changes = self.guilds.entry(guild).or_default();
        let shown: BTreeSet<InviteCode> = invites.iter().map(|i| i.code.clone()).collect();
        for (code, change) in &mut changes.codes {
            if let Change::Seen(invite, _) | Change::Created(invite, _) = change
                && !shown.contains(code)
                // An invite created after the request may be missing from a correct answer.
                && invite.created_at.is_none_or(|c| c <= requested_at)
            {
                *change = Change::Vanished(vanished_reason(invite, received_at), received_at);
            }
        }
        for invite in invites {
            let code = invite.code.clone();
            // A deleted code never comes back: an answer showing it was read before the delete.
            if !matches!(
                changes.codes.get(&code),
                Some(Change::Vanished(VanishedReason::Deleted, _))
            ) {
                changes
                    .codes
                    .insert(code, Change::Seen(invite, received_at));
            }
        }
        changes.sweep = Some(Sweep {
            requested_at,
            received_at,
            shown,
        });
    }

    /// INVITE_CREATE.
    pub fn created(&mut self, guild: GuildKey, invite: SeenInvite, observed_at: DateTime<Utc>) {
        let changes = self.guilds.entry(guild).or_default();
        changes
            .codes
            .entry(invite.code.clone())
            .or_insert(Change::Created(invite, observed_at));
    }

    /// INVITE_DELETE.
    pub fn deleted(&mut self, guild: GuildKey, code: InviteCode, observed_at: DateTime<Utc>) {
        let changes = self.guilds.entry(guild).or_default();
        changes
            .codes
            .insert(code, Change::Vanished(VanishedReason::Deleted, observed_at));
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.guilds.is_empty()
    }

    /// Writes the changes: the snapshots' sweeps first, then each changed code once.
    ///
    /// # Errors
    /// On database errors.
    pub async fn write(&self, conn: &mut AsyncPgConnection) -> Result<(), StorageError> {
        let mut guilds: Vec<(&GuildKey, &GuildChanges)> = self.guilds.iter().collect();
        // One lock order for concurrent batches (partitions own disjoint guilds, but a
        // rebalanced partition's old owner may still be finishing).
        guilds.sort_by_key(|(k, _)| **k);
        let sweeps: Vec<(GuildKey, &Sweep)> = guilds
            .iter()
            .filter_map(|(k, c)| c.sweep.as_ref().map(|s| (**k, s)))
            .collect();
        sweep(conn, &sweeps).await?;
        let (mut seen, mut created, mut vanished) = (Vec::new(), Vec::new(), Vec::new());
        for (guild, changes) in guilds {
            for (code, change) in &changes.codes {
                match change {
                    Change::Seen(invite, at) => seen.push((*guild, invite, *at)),
                    Change::Created(invite, at) => created.push((*guild, invite, *at)),
                    Change::Vanished(reason, at) => vanished.push((*guild, code, *reason, *at)),
                }
            }
        }
        upsert(conn, &seen, true).await?;
        upsert(conn, &created, false).await?;
        vanish(conn, &vanished).await
    }
}

/// Marks the invites each snapshot did not show as vanished.
async fn sweep(
    conn: &mut AsyncPgConnection,
    sweeps: &[(GuildKey, &Sweep)],
) -> Result<(), StorageError> {
    for chunk in sweeps.chunks(crate::ARRAY_CHUNK) {
        let shown: Vec<String> = chunk
            .iter()
            .map(|(_, s)| crate::text_array_literal(s.shown.iter().map(InviteCode::as_str)))
            .collect();
        crate::prepared::prepared(
            "UPDATE invites AS i SET vanished_at = s.received_at, updated_at = s.received_at, \
               vanished_reason = CASE WHEN i.expires_at <= s.received_at THEN 'expired' \
                 ELSE 'missing' END \
             FROM unnest($1::int8[], $2::int8[], $3::timestamptz[], $4::timestamptz[], $5::text[]) \
               AS s(bot_id, guild_id, requested_at, received_at, shown) \
             WHERE i.bot_id = s.bot_id AND i.guild_id = s.guild_id AND i.vanished_at IS NULL \
               AND NOT (i.code = ANY (s.shown::text[])) \
               AND (i.created_at IS NULL OR i.created_at <= s.requested_at)",
        )
        .bind::<Array<BigInt>, _>(chunk.iter().map(|(k, _)| k.bot_id).collect::<Vec<_>>())
        .bind::<Array<BigInt>, _>(chunk.iter().map(|(k, _)| k.guild_id).collect::<Vec<_>>())
        .bind::<Array<Timestamptz>, _>(
            chunk
                .iter()
                .map(|(_, s)| s.requested_at)
                .collect::<Vec<_>>(),
        )
        .bind::<Array<Timestamptz>, _>(chunk.iter().map(|(_, s)| s.received_at).collect::<Vec<_>>())
        .bind::<Array<Text>, _>(shown)
        .execute(conn)
        .await?;
    }
    Ok(())
}

/// Writes invites as seen (`replace`: a snapshot's values win, unless the invite was deleted)
/// or as created (kept when a row exists). Unchanged rows are not rewritten.
async fn upsert(
    conn: &mut AsyncPgConnection,
    rows: &[(GuildKey, &SeenInvite, DateTime<Utc>)],
    replace: bool,
) -> Result<(), StorageError> {
    // The same head for both: `concat!` keeps each statement one constant text.
    macro_rules! insert_then {
        ($conflict:literal) => {
            concat!(
                "INSERT INTO invites (bot_id, guild_id, code, channel_id, inviter_id, uses, \
                   max_uses, max_age_secs, temporary, created_at, expires_at, updated_at) \
                 SELECT * FROM unnest($1::int8[], $2::int8[], $3::text[], $4::int8[], \
                   $5::int8[], $6::int8[], $7::int8[], $8::int4[], $9::bool[], \
                   $10::timestamptz[], $11::timestamptz[], $12::timestamptz[]) ",
                $conflict
            )
        };
    }
    let statement = if replace {
        insert_then!(
            "ON CONFLICT (bot_id, guild_id, code) DO UPDATE SET \
               channel_id = coalesce(excluded.channel_id, invites.channel_id), \
               inviter_id = coalesce(excluded.inviter_id, invites.inviter_id), \
               uses = excluded.uses, max_uses = excluded.max_uses, \
               max_age_secs = excluded.max_age_secs, temporary = excluded.temporary, \
               created_at = coalesce(excluded.created_at, invites.created_at), \
               expires_at = excluded.expires_at, updated_at = excluded.updated_at, \
               vanished_at = NULL, vanished_reason = NULL \
             WHERE invites.vanished_reason IS DISTINCT FROM 'deleted' \
               AND (invites.uses, invites.max_uses, invites.expires_at, invites.vanished_at) \
                 IS DISTINCT FROM (excluded.uses, excluded.max_uses, excluded.expires_at, NULL)"
        )
    } else {
        insert_then!("ON CONFLICT (bot_id, guild_id, code) DO NOTHING")
    };
    for chunk in rows.chunks(crate::ARRAY_CHUNK) {
        let column =
            |f: fn(&SeenInvite) -> i64| chunk.iter().map(|(_, i, _)| f(i)).collect::<Vec<_>>();
        crate::prepared::prepared(statement)
            .bind::<Array<BigInt>, _>(chunk.iter().map(|(k, _, _)| k.bot_id).collect::<Vec<_>>())
            .bind::<Array<BigInt>, _>(chunk.iter().map(|(k, _, _)| k.guild_id).collect::<Vec<_>>())
            .bind::<Array<Text>, _>(
                chunk
                    .iter()
                    .map(|(_, i, _)| i.code.clone())
                    .collect::<Vec<_>>(),
            )
            .bind::<Array<Nullable<BigInt>>, _>(
                chunk
                    .iter()
                    .map(|(_, i, _)| i.channel_id)
                    .collect::<Vec<_>>(),
            )
            .bind::<Array<Nullable<BigInt>>, _>(
                chunk
                    .iter()
                    .map(|(_, i, _)| i.inviter_id)
                    .collect::<Vec<_>>(),
            )
            .bind::<Array<BigInt>, _>(column(|i| i64::try_from(i.uses).unwrap_or(i64::MAX)))
            .bind::<Array<BigInt>, _>(column(|i| i64::try_from(i.max_uses).unwrap_or(i64::MAX)))
            .bind::<Array<Integer>, _>(
                chunk
                    .iter()
                    .map(|(_, i, _)| i32::try_from(i.max_age_secs).unwrap_or(i32::MAX))
                    .collect::<Vec<_>>(),
            )
            .bind::<Array<Bool>, _>(
                chunk
                    .iter()
                    .map(|(_, i, _)| i.temporary)
                    .collect::<Vec<_>>(),
            )
            .bind::<Array<Nullable<Timestamptz>>, _>(
                chunk
                    .iter()
                    .map(|(_, i, _)| i.created_at)
                    .collect::<Vec<_>>(),
            )
            .bind::<Array<Nullable<Timestamptz>>, _>(
                chunk
                    .iter()
                    .map(|(_, i, _)| i.expires_at)
                    .collect::<Vec<_>>(),
            )
            .bind::<Array<Timestamptz>, _>(chunk.iter().map(|(_, _, at)| *at).collect::<Vec<_>>())
            .execute(conn)
            .await?;
    }
    Ok(())
}

/// Marks invites vanished. A deletion overrides an earlier "missing"; nothing overrides a
/// deletion.
async fn vanish(
    conn: &mut AsyncPgConnection,
    rows: &[(GuildKey, &InviteCode, VanishedReason, DateTime<Utc>)],
) -> Result<(), StorageError> {
    for chunk in rows.chunks(crate::ARRAY_CHUNK) {
        crate::prepared::prepared(
            "UPDATE invites AS i SET vanished_at = v.at, vanished_reason = v.reason, \
               updated_at = v.at \
             FROM unnest($1::int8[], $2::int8[], $3::text[], $4::text[], $5::timestamptz[]) \
               AS v(bot_id, guild_id, code, reason, at) \
             WHERE i.bot_id = v.bot_id AND i.guild_id = v.guild_id AND i.code = v.code \
               AND (i.vanished_at IS NULL \
                 OR (v.reason = 'deleted' AND i.vanished_reason <> 'deleted'))",
        )
        .bind::<Array<BigInt>, _>(chunk.iter().map(|(k, ..)| k.bot_id).collect::<Vec<_>>())
        .bind::<Array<BigInt>, _>(chunk.iter().map(|(k, ..)| k.guild_id).collect::<Vec<_>>())
        .bind::<Array<Text>, _>(
            chunk
                .iter()
                .map(|(_, c, ..)| (*c).clone())
                .collect::<Vec<_>>(),
        )
        .bind::<Array<Text>, _>(chunk.iter().map(|(_, _, r, _)| *r).collect::<Vec<_>>())
        .bind::<Array<Timestamptz>, _>(chunk.iter().map(|(.., at)| *at).collect::<Vec<_>>())
        .execute(conn)
        .await?;
    }
    Ok(())
}

/// A guild's invites, current ones first (by code), then vanished ones (latest first);
/// `inviter_id` narrows it to one inviter's.
///
/// # Errors
/// On database errors.
pub async fn guild_invites(
    conn: &mut AsyncPgConnection,
    guild: GuildKey,
    inviter_id: Option<UserId>,
    include_vanished: bool,
) -> Result<Vec<StoredInvite>, StorageError> {
    let mut query = invites::table
        .filter(invites::bot_id.eq(guild.bot_id))
        .filter(invites::guild_id.eq(guild.guild_id))
        .select(StoredInvite::as_select())
        .order((
            invites::vanished_at.is_not_null(),
            invites::vanished_at.desc(),
            invites::code.asc(),
        ))
        .into_boxed();
    if let Some(inviter_id) = inviter_id {
        query = query.filter(invites::inviter_id.eq(inviter_id));
    }
    if !include_vanished {
        query = query.filter(invites::vanished_at.is_null());
    }
    Ok(query.load(conn).await?)
}
