//! How the world looks from outside: the in-process queries (invites, members, vanity,
//! ground truth) and the bodies of the simulated REST answers, in Discord's JSON (messages
//! have their own file, `messages.rs`). Reads drop expired invites first, as Discord does
//! lazily; the REST writes (create or delete an invite) make their change and answer what
//! Discord would.

use super::{
    model::{Invite, State},
    specs::{InviteInfo, InviteSpec, JoinTruth, MemberInfo},
    to_json,
};
use crate::{error::WorldError, snowflake, wire, wire::permissions};
use twilight_model::id::{
    Id,
    marker::{ChannelMarker, GuildMarker},
};

impl State {
    /// Live invites of a guild (expired ones are dropped first), oldest first.
    pub fn invites(&mut self, guild_id: Id<GuildMarker>) -> Result<Vec<InviteInfo>, WorldError> {
        let now = self.now_ms();
        self.purge_expired_in_guild(guild_id, now);
        let guild = self.guild(guild_id)?;
        Ok(guild
            .invite_codes
            .iter()
            .filter_map(|c| self.invites.get(c))
            .map(Invite::info)
            .collect())
    }

    /// The guild's vanity code and uses.
    pub fn vanity(&self, guild_id: Id<GuildMarker>) -> Result<Option<(String, u64)>, WorldError> {
        Ok(self
            .guild(guild_id)?
            .vanity
            .as_ref()
            .map(|v| (v.code.clone(), v.uses)))
    }

    /// Current members (without the bot), in join order.
    pub fn members(&self, guild_id: Id<GuildMarker>) -> Result<Vec<MemberInfo>, WorldError> {
        let mut list: Vec<MemberInfo> = self
            .guild(guild_id)?
            .members
            .iter()
            .map(|(id, m)| MemberInfo {
                user_id: *id,
                joined_at: snowflake::to_datetime(m.joined_at_ms),
                flags: m.flags,
            })
            .collect();
        list.sort_by_key(|m| (m.joined_at, m.user_id));
        Ok(list)
    }

    /// Every join so far, in order.
    pub fn ground_truth(&self) -> Vec<JoinTruth> {
        self.truth.clone()
    }

    /// Number of joins so far.
    pub fn truth_len(&self) -> usize {
        self.truth.len()
    }

    /// Joins `from..` (for writing the truth in chunks).
    pub fn truth_slice(&self, from: usize, max: usize) -> Vec<JoinTruth> {
        self.truth.iter().skip(from).take(max).cloned().collect()
    }

    // ---- REST views ---------------------------------------------------------------------

    /// `GET /guilds/{id}/invites` body.
    pub fn rest_guild_invites(&mut self, guild_id: Id<GuildMarker>) -> Result<String, WorldError> {
        self.rest_invites(guild_id, None)
    }

    /// `GET /channels/{id}/invites` body.
    pub fn rest_channel_invites(
        &mut self,
        channel_id: Id<ChannelMarker>,
    ) -> Result<String, WorldError> {
        let guild_id = self.channel(channel_id)?.guild_id;
        self.rest_invites(guild_id, Some(channel_id))
    }

    /// A guild's invites (one channel's when given), with their metadata; neither route lists an
    /// invite that has expired. The simulator gates both on its one permission flag, Manage
    /// Server; Discord gates the channel route on Manage Channels, which is not simulated.
    fn rest_invites(
        &mut self,
        guild_id: Id<GuildMarker>,
        channel_id: Option<Id<ChannelMarker>>,
    ) -> Result<String, WorldError> {
        if !self.guild(guild_id)?.manage_guild {
            return Err(WorldError::MissingPermissions);
        }
        let now = self.now_ms();
        self.purge_expired_in_guild(guild_id, now);
        let guild = self.guild(guild_id)?;
        let list: Vec<wire::Invite<'_>> = guild
            .invite_codes
            .iter()
            .filter_map(|c| self.invites.get(c))
            .filter(|i| channel_id.is_none_or(|c| i.channel_id == c))
            .filter_map(|i| self.invite_wire(i, true))
            .collect();
        to_json(&list)
    }

    /// `GET /guilds/{id}/vanity-url` body.
    pub fn rest_vanity(&self, guild_id: Id<GuildMarker>) -> Result<String, WorldError> {
        let guild = self.guild(guild_id)?;
        if !guild.manage_guild {
            return Err(WorldError::MissingPermissions);
        }
        let body = match &guild.vanity {
            Some(v) => wire::VanityUrl {
                code: Some(&v.code),
                uses: v.uses,
            },
            None => wire::VanityUrl {
                code: None,
                uses: 0,
            },
        };
        to_json(&body)
    }

    /// `GET /invites/{code}` body (no metadata; counts on request).
    pub fn rest_invite(&mut self, code: &str, with_counts: bool) -> Result<String, WorldError> {
        let now = self.now_ms();
        self.purge_if_expired(code, now);
        if let Some(invite) = self.invites.get(code) {
            let mut body = self
                .invite_wire(invite, false)
                .ok_or_else(|| WorldError::UnknownInvite(code.to_owned()))?;
            if with_counts {
                let count = self.guild(invite.guild_id)?.member_count();
                body.approximate_member_count = Some(count);
                body.approximate_presence_count = Some(0);
            }
            return to_json(&body);
        }
        let guild_id = *self
            .vanity_codes
            .get(code)
            .ok_or_else(|| WorldError::UnknownInvite(code.to_owned()))?;
        let guild = self.guild(guild_id)?;
        let body = wire::Invite {
            kind: 0,
            code,
            guild_id,
            guild: guild.invite_guild(),
            channel: self.channel(guild.channel_id)?.invite_channel(),
            inviter: None,
            approximate_member_count: with_counts.then(|| guild.member_count()),
            approximate_presence_count: with_counts.then_some(0),
            expires_at: None,
            uses: None,
            max_uses: None,
            max_age: None,
            temporary: None,
            created_at: None,
        };
        to_json(&body)
    }

    /// `DELETE /invites/{code}` body (the deleted invite).
    pub fn rest_delete_invite(&mut self, code: &str) -> Result<String, WorldError> {
        let now = self.now_ms();
        self.purge_if_expired(code, now);
        let invite = self
            .invites
            .get(code)
            .ok_or_else(|| WorldError::UnknownInvite(code.to_owned()))?;
        let body = to_json(&self.invite_wire(invite, false))?;
        self.delete_invite(code)?;
        Ok(body)
    }

    /// `POST /channels/{id}/invites` (the bot creates an invite) body.
    pub fn rest_create_invite(
        &mut self,
        channel_id: Id<ChannelMarker>,
        max_age_secs: u32,
        max_uses: u32,
        temporary: bool,
    ) -> Result<String, WorldError> {
        // Create Channel Invite needs CREATE_INSTANT_INVITE in the channel.
        let channel = self.channel(channel_id)?;
        if self.bot_channel_permissions(channel)? & permissions::CREATE_INSTANT_INVITE == 0 {
            return Err(WorldError::MissingPermissions);
        }
        let spec = InviteSpec {
            inviter_id: self.bot.user_id,
            max_uses,
            max_age_secs,
            temporary,
            code: None,
        };
        let info = self.create_invite_in(channel_id, spec)?;
        let invite = self
            .invites
            .get(&info.code)
            .ok_or_else(|| WorldError::UnknownInvite(info.code.clone()))?;
        to_json(&self.invite_wire(invite, true))
    }

    /// Control API view of an invite (invite with metadata).
    pub fn invite_json(&self, code: &str) -> Result<serde_json::Value, WorldError> {
        let invite = self
            .invites
            .get(code)
            .ok_or_else(|| WorldError::UnknownInvite(code.to_owned()))?;
        serde_json::to_value(self.invite_wire(invite, true))
            .map_err(|e| WorldError::Invalid(e.to_string()))
    }

    /// Number of guilds (for `GET /applications/@me`).
    pub fn guild_count(&self) -> usize {
        self.guilds.len()
    }

    /// An invite in Discord's JSON, with its metadata (uses, limits, creation) or without.
    fn invite_wire<'a>(&'a self, invite: &'a Invite, metadata: bool) -> Option<wire::Invite<'a>> {
        let guild = self.guilds.get(&invite.guild_id)?;
        let expires_at = invite.expires_at_ms().map(snowflake::format_ts);
        Some(wire::Invite {
            kind: 0,
            code: &invite.code,
            guild_id: guild.id,
            guild: guild.invite_guild(),
            channel: self.channels.get(&invite.channel_id)?.invite_channel(),
            inviter: invite.inviter_id.map(|id| self.user(id)),
            approximate_member_count: None,
            approximate_presence_count: None,
            expires_at,
            uses: metadata.then_some(invite.uses),
            max_uses: metadata.then_some(invite.max_uses),
            max_age: metadata.then_some(invite.max_age_secs),
            temporary: metadata.then_some(invite.temporary),
            created_at: metadata.then(|| snowflake::format_ts(invite.created_at_ms)),
        })
    }
}
