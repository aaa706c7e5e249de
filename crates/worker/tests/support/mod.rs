//! Events as ingest publishes them, for one bot and guild: shared by the worker's tests that
//! write their own streams.
#![allow(dead_code)] // each test file uses its part

use invitrack_bus::GuildEvent;
use invitrack_bus::proto::{self, guild_event::Kind};

pub const BOT: u64 = 7;
pub const GUILD: u64 = 81_384_788_765_712_384;
pub const INVITER: u64 = 42;
pub const ALICE: u64 = 5_000_000_001;
pub const BOB: u64 = 5_000_000_002;

pub fn event(observed_at_ms: i64, kind: Kind) -> GuildEvent {
    GuildEvent {
        bot_id: BOT,
        guild_id: GUILD,
        observed_at_ms,
        shard_id: 0,
        kind: Some(kind),
    }
}

pub fn snapshot(requested_at_ms: i64, uses: u64) -> Kind {
    Kind::InviteSnapshot(proto::InviteSnapshot {
        requested_at_ms,
        received_at_ms: requested_at_ms + 100,
        invites: vec![proto::Invite {
            code: "code".into(),
            inviter_id: INVITER,
            uses,
            channel_id: 1,
            created_at_ms: requested_at_ms - 3_600_000,
            ..proto::Invite::default()
        }],
        vanity: None,
    })
}

pub fn join(user_id: u64, joined_at_ms: i64) -> Kind {
    Kind::MemberAdd(proto::MemberAdd {
        user_id,
        joined_at_ms,
        has_avatar: true,
        bot: false,
        flags: 0,
    })
}
