//! The world's side of gateway sessions: IDENTIFY (READY, then a GUILD_CREATE per guild of
//! the shard), RESUME, detaching and forgetting sessions, and the session-wide controls
//! (event delay, reconnects, dropped shards). The session registry itself (routing,
//! sequence numbers, replay) is `crate::sessions`; the websocket protocol is
//! `crate::gateway`.

use super::model::{Guild, State};
use crate::{
    sessions::{EventDelay, EventKind, Link, Outbound, ResumeRefused},
    snowflake, wire,
};
use rand::Rng;

/// What a gateway IDENTIFY asks for.
#[derive(Debug, Clone, Copy)]
pub(crate) struct IdentifyRequest {
    /// `[shard_id, shard_count]`.
    pub shard: [u32; 2],
    /// Intent bits.
    pub intents: u64,
    /// `large_threshold` (50..=250).
    pub large_threshold: u64,
}

impl State {
    /// The gateway dispatch delay.
    pub fn event_delay(&self) -> EventDelay {
        self.sessions.delay()
    }

    /// Changes the gateway dispatch delay.
    pub fn set_event_delay(&mut self, delay: EventDelay) {
        self.sessions.set_delay(delay);
    }

    /// Guild dispatches produced so far (each counted once, whatever the session count).
    pub fn dispatched(&self) -> u64 {
        self.sessions.dispatched()
    }

    /// The GUILD_CREATE of a guild (also sent after READY, one per guild of the shard).
    pub(super) fn guild_create_payload<'a>(&'a self, guild: &'a Guild) -> wire::GuildCreate<'a> {
        let member_count = guild.member_count();
        wire::GuildCreate {
            id: guild.id,
            name: &guild.name,
            icon: None,
            icon_hash: None,
            splash: None,
            discovery_splash: None,
            owner_id: guild.owner_id,
            afk_channel_id: None,
            afk_timeout: 300,
            widget_enabled: false,
            widget_channel_id: None,
            verification_level: 0,
            default_message_notifications: 0,
            explicit_content_filter: 0,
            roles: vec![guild.everyone_role(), guild.bot_role()],
            emojis: [],
            features: guild.features(),
            mfa_level: 0,
            application_id: None,
            system_channel_id: guild.channel_id,
            system_channel_flags: 0,
            rules_channel_id: None,
            max_presences: None,
            max_members: 500_000,
            vanity_url_code: guild.vanity.as_ref().map(|v| v.code.as_str()),
            description: None,
            banner: None,
            premium_tier: if guild.vanity.is_some() { 3 } else { 0 },
            premium_subscription_count: 0,
            preferred_locale: "en-US",
            public_updates_channel_id: None,
            max_video_channel_users: 25,
            max_stage_video_channel_users: 50,
            nsfw_level: 0,
            stickers: [],
            premium_progress_bar_enabled: false,
            safety_alerts_channel_id: None,
            joined_at: snowflake::format_ts(guild.bot_joined_at_ms),
            large: member_count > 50,
            unavailable: false,
            member_count,
            voice_states: [],
            members: self
                .guild_member(guild, self.bot.user_id)
                .into_iter()
                .collect(),
            channels: guild
                .channel_ids
                .iter()
                .filter_map(|id| self.channels.get(id))
                .map(|channel| channel.wire(guild.bot_role_id))
                .collect(),
            threads: [],
            presences: [],
            stage_instances: [],
            guild_scheduled_events: [],
            soundboard_sounds: [],
        }
    }

    /// A fresh id for a websocket connection.
    pub fn next_conn_id(&mut self) -> u64 {
        self.sessions.next_conn_id()
    }

    /// Opens a session: READY, then one GUILD_CREATE per guild of the shard, all queued on
    /// `tx` before any later dispatch. Returns the session id.
    pub fn identify(
        &mut self,
        request: IdentifyRequest,
        resume_url: &str,
        conn_id: u64,
        link: Link,
    ) -> String {
        let session_id = format!("{:032x}", rand::rng().random::<u128>());
        self.sessions.create(
            session_id.clone(),
            request.shard,
            request.intents,
            conn_id,
            link,
        );
        let [shard_id, shard_count] = request.shard;
        self.with_sessions(|state, sessions| {
            let mut mine: Vec<&Guild> = state
                .guilds
                .values()
                .filter(|g| crate::sessions::shard_of(g.id, shard_count) == shard_id)
                .collect();
            mine.sort_by_key(|g| g.id);
            let ready = wire::Ready {
                v: 10,
                user_settings: wire::Empty {},
                user: state.bot.current_user(),
                guilds: mine
                    .iter()
                    .map(|g| wire::UnavailableGuild {
                        id: g.id,
                        unavailable: true,
                    })
                    .collect(),
                guild_join_requests: [],
                relationships: [],
                private_channels: [],
                presences: [],
                session_id: &session_id,
                session_type: "normal",
                resume_gateway_url: resume_url,
                shard: request.shard,
                application: wire::PartialApplication {
                    id: state.bot.application_id(),
                    flags: 0,
                },
            };
            sessions.send_to(&session_id, EventKind::READY, &ready);
            for guild in mine {
                let mut payload = state.guild_create_payload(guild);
                payload.large = payload.member_count > request.large_threshold;
                sessions.send_to(&session_id, EventKind::GUILD_CREATE, &payload);
            }
        });
        tracing::info!(session_id, shard = ?request.shard, intents = request.intents, "session identified");
        session_id
    }

    /// Resumes a session: replays what it missed, then RESUMED.
    pub fn resume(
        &mut self,
        session_id: &str,
        seq: u64,
        conn_id: u64,
        link: Link,
    ) -> Result<(), ResumeRefused> {
        self.sessions.resume(session_id, seq, conn_id, link)?;
        self.sessions
            .send_to(session_id, EventKind::RESUMED, &wire::Empty {});
        tracing::info!(session_id, seq, "session resumed");
        Ok(())
    }

    /// The connection went away.
    pub fn detach(&mut self, session_id: &str, conn_id: u64) {
        self.sessions.detach(session_id, conn_id);
    }

    /// Forgets a session.
    pub fn forget_session(&mut self, session_id: &str) {
        self.sessions.remove(session_id);
    }

    /// Tells every connected shard something (op 7 to test RESUME, ...).
    pub fn tell_all_sessions(&mut self, msg: &Outbound) {
        self.sessions.tell_all(msg);
    }

    /// Ends every gateway session (on shutdown).
    pub fn disconnect_all(&mut self) {
        self.sessions.disconnect_all();
    }

    /// Number of connected sessions.
    pub fn connected_sessions(&self) -> usize {
        self.sessions.connected()
    }

    /// Cuts the connections of a shard (or all), close code 4000; they can RESUME.
    pub fn drop_shard(&mut self, shard: Option<u32>) -> usize {
        self.sessions.drop_shard(shard)
    }
}
