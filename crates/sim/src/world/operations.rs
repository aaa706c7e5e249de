//! The world's operations: everything that changes it (guilds, invites, joins, leaves,
//! permissions, the clock) and the dispatches each change sends, as Discord would; also the
//! deferred `uses` counters of a negative event delay.

use super::{
    model::{Deferred, Guild, Invite, Member, State, TextChannel, Vanity},
    specs::{
        ChannelSpec, CreatedGuild, DID_REJOIN, GuildSpec, InviteInfo, InviteSpec, JoinPath,
        JoinSpec, JoinTruth, JoinVia,
    },
};
use crate::{error::WorldError, sessions::EventKind, snowflake, wire};
use std::{
    cmp::Reverse,
    collections::{HashMap, HashSet},
    time::{Duration, Instant},
};
use twilight_model::id::{
    Id,
    marker::{ChannelMarker, GuildMarker, UserMarker},
};

/// Codes: 2..=32 characters of `[A-Za-z0-9-]` (Discord's own are 7-10 alphanumerics).
fn valid_code(code: &str) -> bool {
    (2..=32).contains(&code.len()) && code.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

impl State {
    /// Runs what is due at `now` (deferred counters, delayed dispatches); when the next
    /// thing is due.
    pub fn run_due(&mut self, now: Instant) -> Option<Instant> {
        while let Some(Reverse(next)) = self.deferred.peek() {
            if next.due > now {
                break;
            }
            let Some(Reverse(item)) = self.deferred.pop() else {
                break;
            };
            self.move_counter(item.guild_id, item.code.as_deref());
        }
        let next_dispatch = self.sessions.flush_due(now);
        let next_counter = self.deferred.peek().map(|Reverse(d)| d.due);
        match (next_dispatch, next_counter) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// A deferred `uses` counter moves now (INVITE_DELETE if that uses the invite up).
    fn move_counter(&mut self, guild_id: Id<GuildMarker>, code: Option<&str>) {
        match code {
            None => {
                if let Some(v) = self
                    .guilds
                    .get_mut(&guild_id)
                    .and_then(|g| g.vanity.as_mut())
                {
                    v.pending = v.pending.saturating_sub(1);
                    v.uses += 1;
                }
            }
            Some(code) => {
                let Some(invite) = self.invites.get_mut(code) else {
                    // Deleted by a moderator meanwhile: the use is lost with it.
                    return;
                };
                invite.pending = invite.pending.saturating_sub(1);
                invite.uses += 1;
                if invite.max_uses > 0 && invite.uses >= u64::from(invite.max_uses) {
                    let channel_id = invite.channel_id;
                    self.exhaust(guild_id, channel_id, code);
                }
            }
        }
    }

    /// Removes an invite that reached `max_uses` and tells the gateway (INVITE_DELETE).
    fn exhaust(&mut self, guild_id: Id<GuildMarker>, channel_id: Id<ChannelMarker>, code: &str) {
        self.remove_invite(code);
        let event = wire::InviteDelete {
            channel_id,
            guild_id,
            code,
        };
        if self.sees_invite_events(guild_id) {
            self.sessions
                .broadcast(guild_id, EventKind::INVITE_DELETE, &event);
        }
        tracing::debug!(guild_id = %guild_id, code, "invite reached max_uses");
    }

    /// Makes a guild with one text channel; the bot is in it (GUILD_CREATE to its shard).
    pub fn create_guild(&mut self, spec: GuildSpec) -> Result<CreatedGuild, WorldError> {
        if spec.name.is_empty() || spec.name.len() > 100 {
            return Err(WorldError::Invalid(
                "guild name must have 1 to 100 characters".into(),
            ));
        }
        if let Some(code) = &spec.vanity_code {
            if !valid_code(code) {
                return Err(WorldError::Invalid(format!("invalid vanity code {code:?}")));
            }
            if self.code_taken(code) {
                return Err(WorldError::CodeTaken(code.clone()));
            }
        }
        let now = self.now_ms();
        let guild_id = Id::new(self.ids.at(now));
        let channel_id = Id::new(self.ids.at(now));
        let bot_role_id = Id::new(self.ids.at(now));
        let owner_id = Id::new(self.ids.at(now - 3 * 365 * 86_400_000));
        self.ensure_user(owner_id, true);
        let mut members = HashMap::new();
        members.insert(
            owner_id,
            Member {
                joined_at_ms: now,
                flags: 0,
                temporary: false,
                truth: None,
            },
        );
        if let Some(code) = &spec.vanity_code {
            self.vanity_codes.insert(code.clone(), guild_id);
        }
        let guild = Guild {
            id: guild_id,
            name: spec.name,
            owner_id,
            channel_id,
            channel_ids: vec![channel_id],
            bot_role_id,
            bot_joined_at_ms: now,
            manage_guild: spec.manage_guild,
            vanity: spec.vanity_code.map(|code| Vanity {
                code,
                uses: 0,
                pending: 0,
            }),
            members,
            ever_joined: HashSet::from([owner_id]),
            invite_codes: Vec::new(),
            search_index_started_ms: None,
        };
        tracing::info!(guild_id = %guild_id, name = %guild.name, "guild created");
        self.channels.insert(
            channel_id,
            TextChannel {
                id: channel_id,
                guild_id,
                name: "general".to_owned(),
                position: 0,
                bot_deny: 0,
            },
        );
        self.guilds.insert(guild_id, guild);
        self.with_sessions(|state, sessions| {
            if let Some(guild) = state.guilds.get(&guild_id) {
                let payload = state.guild_create_payload(guild);
                sessions.broadcast(guild_id, EventKind::GUILD_CREATE, &payload);
            }
        });
        Ok(CreatedGuild {
            guild_id,
            channel_id,
        })
    }

    /// Creates an invite to the guild's channel (INVITE_CREATE with `uses` 0).
    pub fn create_invite(
        &mut self,
        guild_id: Id<GuildMarker>,
        spec: InviteSpec,
    ) -> Result<InviteInfo, WorldError> {
        let channel_id = self.guild(guild_id)?.channel_id;
        self.create_invite_in(channel_id, spec)
    }

    /// Creates an invite to a channel (INVITE_CREATE with `uses` 0).
    pub fn create_invite_in(
        &mut self,
        channel_id: Id<ChannelMarker>,
        spec: InviteSpec,
    ) -> Result<InviteInfo, WorldError> {
        let guild_id = self.channel(channel_id)?.guild_id;
        if spec.max_age_secs > 604_800 {
            return Err(WorldError::Invalid(
                "max_age must be between 0 and 604800".into(),
            ));
        }
        if spec.max_uses > 100 {
            return Err(WorldError::Invalid(
                "max_uses must be between 0 and 100".into(),
            ));
        }
        let now = self.now_ms();
        let code = match spec.code {
            Some(code) => {
                self.purge_if_expired(&code, now);
                if !valid_code(&code) {
                    return Err(WorldError::Invalid(format!("invalid invite code {code:?}")));
                }
                if self.code_taken(&code) {
                    return Err(WorldError::CodeTaken(code));
                }
                code
            }
            None => self.random_code(),
        };
        self.ensure_user(spec.inviter_id, true);
        let invite = Invite {
            code: code.clone(),
            guild_id,
            channel_id,
            inviter_id: Some(spec.inviter_id),
            uses: 0,
            pending: 0,
            max_uses: spec.max_uses,
            max_age_secs: spec.max_age_secs,
            temporary: spec.temporary,
            created_at_ms: now,
        };
        let info = invite.info();
        self.with_sessions(|state, sessions| {
            let event = wire::InviteCreate {
                channel_id,
                code: &invite.code,
                created_at: snowflake::format_ts(now),
                guild_id,
                inviter: Some(state.user(spec.inviter_id)),
                max_age: invite.max_age_secs,
                max_uses: invite.max_uses,
                temporary: invite.temporary,
                uses: 0,
                kind: 0,
                expires_at: invite.expires_at_ms().map(snowflake::format_ts),
            };
            if state.sees_invite_events(guild_id) {
                sessions.broadcast(guild_id, EventKind::INVITE_CREATE, &event);
            }
        });
        tracing::debug!(guild_id = %guild_id, code, "invite created");
        if let Some(guild) = self.guilds.get_mut(&guild_id) {
            guild.invite_codes.push(code.clone());
        }
        self.invites.insert(code, invite);
        Ok(info)
    }

    /// A member joins: counters move as on Discord, GUILD_MEMBER_ADD goes out (then
    /// INVITE_DELETE if the invite just reached `max_uses`), and the truth is recorded.
    pub fn join(
        &mut self,
        guild_id: Id<GuildMarker>,
        via: JoinVia,
        spec: JoinSpec,
    ) -> Result<JoinTruth, WorldError> {
        let now = self.now_ms();
        self.guild(guild_id)?;
        let user_id = match spec.user_id {
            Some(id) => id,
            None => {
                let age_ms = i64::try_from(spec.account_age.as_millis()).unwrap_or(i64::MAX);
                Id::new(self.ids.at(now.saturating_sub(age_ms)))
            }
        };
        if user_id == self.bot.user_id {
            return Err(WorldError::Invalid(
                "the bot cannot join as a member".into(),
            ));
        }
        if self.guild(guild_id)?.members.contains_key(&user_id) {
            return Err(WorldError::AlreadyMember { guild_id, user_id });
        }

        // Resolve and validate the path before changing anything.
        let (path, code, inviter_id, temporary) = match &via {
            JoinVia::Invite(code) => {
                self.purge_if_expired(code, now);
                let invite = self
                    .invites
                    .get(code)
                    .filter(|i| i.guild_id == guild_id && !i.used_up())
                    .ok_or_else(|| WorldError::UnknownInvite(code.clone()))?;
                (
                    JoinPath::Invite,
                    Some(code.clone()),
                    invite.inviter_id,
                    invite.temporary,
                )
            }
            JoinVia::Vanity => {
                let vanity = self.guild(guild_id)?.vanity.as_ref();
                let code = vanity.ok_or(WorldError::NoVanity(guild_id))?.code.clone();
                (JoinPath::Vanity, Some(code), None, false)
            }
            JoinVia::Untracked => (JoinPath::Untracked, None, None, false),
            JoinVia::OAuth2 => (JoinPath::OAuth2, None, None, false),
        };

        // Positive: the dispatch lags the counter; negative: the counter lags the dispatch.
        let delay_ms = self.sessions.delay().sample();
        let defer_counter = delay_ms < 0 && matches!(via, JoinVia::Invite(_) | JoinVia::Vanity);
        let mut exhausted = None;
        match &via {
            JoinVia::Invite(code) => {
                if let Some(invite) = self.invites.get_mut(code) {
                    if defer_counter {
                        invite.pending += 1;
                    } else {
                        invite.uses += 1;
                        if invite.max_uses > 0 && invite.uses >= u64::from(invite.max_uses) {
                            exhausted = Some((invite.channel_id, code.clone()));
                        }
                    }
                }
            }
            JoinVia::Vanity => {
                if let Some(vanity) = self
                    .guilds
                    .get_mut(&guild_id)
                    .and_then(|g| g.vanity.as_mut())
                {
                    if defer_counter {
                        vanity.pending += 1;
                    } else {
                        vanity.uses += 1;
                    }
                }
            }
            JoinVia::Untracked | JoinVia::OAuth2 => {}
        }
        if defer_counter {
            self.deferred_seq += 1;
            let was_first = self.deferred.is_empty();
            self.deferred.push(Reverse(Deferred {
                due: Instant::now() + Duration::from_millis(delay_ms.unsigned_abs()),
                seq: self.deferred_seq,
                guild_id,
                code: match &via {
                    JoinVia::Invite(code) => Some(code.clone()),
                    _ => None,
                },
            }));
            if was_first {
                self.wake.notify_all();
            }
        }

        self.ensure_user(user_id, spec.avatar);
        let truth_index = self.truth.len();
        let Some(guild) = self.guilds.get_mut(&guild_id) else {
            return Err(WorldError::UnknownGuild(guild_id));
        };
        let flags = if guild.ever_joined.insert(user_id) {
            0
        } else {
            DID_REJOIN
        };
        guild.members.insert(
            user_id,
            Member {
                joined_at_ms: now,
                flags,
                temporary,
                truth: Some(truth_index),
            },
        );

        let dispatch_delay = u64::try_from(delay_ms).unwrap_or(0);
        self.with_sessions(|state, sessions| {
            let member = state
                .guilds
                .get(&guild_id)
                .and_then(|guild| state.guild_member(guild, user_id));
            if let Some(member) = member {
                let event = wire::GuildMember {
                    guild_id: Some(guild_id),
                    ..member
                };
                sessions.broadcast_after(
                    guild_id,
                    EventKind::GUILD_MEMBER_ADD,
                    &event,
                    dispatch_delay,
                );
            }
        });

        if let Some((channel_id, code)) = exhausted {
            self.exhaust(guild_id, channel_id, &code);
        }

        let truth = JoinTruth {
            guild_id,
            user_id,
            path,
            code,
            inviter_id,
            joined_at: snowflake::to_datetime(now),
            left_at: None,
            temporary,
        };
        tracing::debug!(guild_id = %guild_id, user_id = %user_id, path = ?truth.path, "member joined");
        self.truth.push(truth.clone());
        Ok(truth)
    }

    /// Every temporary member of the guild goes offline: Discord removes them
    /// (GUILD_MEMBER_REMOVE), as it does for temporary memberships without a role. Returns
    /// the users removed.
    pub fn end_temporary_memberships(
        &mut self,
        guild_id: Id<GuildMarker>,
    ) -> Result<Vec<Id<UserMarker>>, WorldError> {
        let mut temporary: Vec<(i64, Id<UserMarker>)> = self
            .guild(guild_id)?
            .members
            .iter()
            .filter(|(_, m)| m.temporary)
            .map(|(id, m)| (m.joined_at_ms, *id))
            .collect();
        temporary.sort();
        for (_, user_id) in &temporary {
            self.leave(guild_id, *user_id)?;
        }
        Ok(temporary.into_iter().map(|(_, id)| id).collect())
    }

    /// A member leaves (GUILD_MEMBER_REMOVE).
    pub fn leave(
        &mut self,
        guild_id: Id<GuildMarker>,
        user_id: Id<UserMarker>,
    ) -> Result<(), WorldError> {
        let now = self.now_ms();
        let guild = self
            .guilds
            .get_mut(&guild_id)
            .ok_or(WorldError::UnknownGuild(guild_id))?;
        let member = guild
            .members
            .remove(&user_id)
            .ok_or(WorldError::NotMember { guild_id, user_id })?;
        if let Some(truth) = member.truth.and_then(|i| self.truth.get_mut(i)) {
            truth.left_at = Some(snowflake::to_datetime(now));
        }
        self.with_sessions(|state, sessions| {
            let event = wire::MemberRemove {
                guild_id,
                user: state.user(user_id),
            };
            sessions.broadcast(guild_id, EventKind::GUILD_MEMBER_REMOVE, &event);
        });
        tracing::debug!(guild_id = %guild_id, user_id = %user_id, "member left");
        Ok(())
    }

    /// Deletes an invite as a moderator would (INVITE_DELETE).
    pub fn delete_invite(&mut self, code: &str) -> Result<InviteInfo, WorldError> {
        let now = self.now_ms();
        if self.purge_if_expired(code, now) {
            return Err(WorldError::UnknownInvite(code.to_owned()));
        }
        let invite = self
            .remove_invite(code)
            .ok_or_else(|| WorldError::UnknownInvite(code.to_owned()))?;
        let event = wire::InviteDelete {
            channel_id: invite.channel_id,
            guild_id: invite.guild_id,
            code: &invite.code,
        };
        if self.sees_invite_events(invite.guild_id) {
            self.sessions
                .broadcast(invite.guild_id, EventKind::INVITE_DELETE, &event);
        }
        tracing::debug!(guild_id = %invite.guild_id, code, "invite deleted");
        Ok(invite.info())
    }

    /// Grants or revokes the bot's MANAGE_GUILD (GUILD_ROLE_UPDATE of the bot's role).
    pub fn set_manage_guild(
        &mut self,
        guild_id: Id<GuildMarker>,
        manage_guild: bool,
    ) -> Result<(), WorldError> {
        let guild = self
            .guilds
            .get_mut(&guild_id)
            .ok_or(WorldError::UnknownGuild(guild_id))?;
        if guild.manage_guild == manage_guild {
            return Ok(());
        }
        guild.manage_guild = manage_guild;
        tracing::info!(guild_id = %guild_id, manage_guild, "bot permissions changed");
        if let Some(guild) = self.guilds.get(&guild_id) {
            let event = wire::RoleUpdate {
                guild_id,
                role: guild.bot_role(),
            };
            self.sessions
                .broadcast(guild_id, EventKind::GUILD_ROLE_UPDATE, &event);
        }
        Ok(())
    }

    /// Makes another text channel in a guild, below the others (CHANNEL_CREATE).
    pub fn create_channel(
        &mut self,
        guild_id: Id<GuildMarker>,
        spec: ChannelSpec,
    ) -> Result<Id<ChannelMarker>, WorldError> {
        if spec.name.is_empty() || spec.name.chars().count() > 100 {
            return Err(WorldError::Invalid(
                "channel name must have 1 to 100 characters".into(),
            ));
        }
        let position = i32::try_from(self.guild(guild_id)?.channel_ids.len()).unwrap_or(i32::MAX);
        let channel_id = Id::new(self.ids.at(self.now_ms()));
        let channel = TextChannel {
            id: channel_id,
            guild_id,
            name: spec.name,
            position,
            bot_deny: spec.bot_deny,
        };
        tracing::info!(guild_id = %guild_id, channel_id = %channel_id, bot_deny = channel.bot_deny, "channel created");
        self.channels.insert(channel_id, channel);
        if let Some(guild) = self.guilds.get_mut(&guild_id) {
            guild.channel_ids.push(channel_id);
        }
        self.dispatch_channel(channel_id, EventKind::CHANNEL_CREATE);
        Ok(channel_id)
    }

    /// Replaces what the overwrite of the bot's role denies in a channel (0 removes it;
    /// CHANNEL_UPDATE).
    pub fn set_bot_channel_deny(
        &mut self,
        channel_id: Id<ChannelMarker>,
        deny: u64,
    ) -> Result<(), WorldError> {
        let channel = self
            .channels
            .get_mut(&channel_id)
            .ok_or(WorldError::UnknownChannel(channel_id))?;
        if channel.bot_deny == deny {
            return Ok(());
        }
        channel.bot_deny = deny;
        tracing::info!(channel_id = %channel_id, bot_deny = deny, "bot channel permissions changed");
        self.dispatch_channel(channel_id, EventKind::CHANNEL_UPDATE);
        Ok(())
    }

    fn dispatch_channel(&mut self, channel_id: Id<ChannelMarker>, kind: EventKind) {
        self.with_sessions(|state, sessions| {
            let Some(channel) = state.channels.get(&channel_id) else {
                return;
            };
            let Some(guild) = state.guilds.get(&channel.guild_id) else {
                return;
            };
            sessions.broadcast(guild.id, kind, &channel.wire(guild.bot_role_id));
        });
    }

    /// Moves the simulated clock forward (invites expire by it).
    pub fn advance_clock(&mut self, by: Duration) {
        self.clock_offset_ms += i64::try_from(by.as_millis()).unwrap_or(i64::MAX / 2);
    }
}
