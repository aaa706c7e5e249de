//! What a message is about: plain data the bot (or the API, for a preview) gathers.

use invitrack_model::time::{DAY_MS, DISCORD_EPOCH_MS, Millis};
use invitrack_model::{FakeReasons, InviteCode, JoinSource, UnknownReason, UserId};
use serde::{Deserialize, Serialize};

use crate::kind::MessageKind;

/// Everything a template can show about one join or leave. Any field may be missing (an
/// inviter who left has no name, a leave may end a join the bot never saw): placeholders
/// without a value show "unknown".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RenderContext {
    /// Also gives the account's creation time (`UserId::created_at`), hence `{member.age}`.
    pub member_id: UserId,
    /// As the guild shows it: nickname, else global name, else username.
    pub member_name: Option<String>,
    /// When the member joined: the join announced, or the one a leave ends.
    pub joined_at: Option<Millis>,
    /// When the member left (leave messages).
    pub left_at: Option<Millis>,
    /// How the join was explained (`None`: no decided join is known).
    pub source: Option<JoinSource>,
    /// The invite (or vanity) code credited.
    pub code: Option<InviteCode>,
    /// The code's uses after this join.
    pub code_uses: Option<u64>,
    pub inviter_id: Option<UserId>,
    pub inviter_name: Option<String>,
    /// The codes that could explain an ambiguous join.
    pub candidates: Vec<InviteCode>,
    pub unknown_reason: Option<UnknownReason>,
    pub fake: FakeReasons,
    /// The inviter's counts after this join or leave (`docs/counting.md#inviter-counts`).
    pub inviter_counts: Option<InviterCounts>,
    /// The member count, or the nth join, as the caller numbers it.
    pub join_position: Option<u64>,
}

impl RenderContext {
    /// A context that knows only the member: every other placeholder shows "unknown".
    #[must_use]
    pub fn empty(member_id: UserId) -> Self {
        Self {
            member_id,
            member_name: None,
            joined_at: None,
            left_at: None,
            source: None,
            code: None,
            code_uses: None,
            inviter_id: None,
            inviter_name: None,
            candidates: Vec::new(),
            unknown_reason: None,
            fake: FakeReasons::default(),
            inviter_counts: None,
            join_position: None,
        }
    }
}

/// One inviter's counts, as `GET /v1/invites/user` answers them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct InviterCounts {
    pub total: i64,
    pub real: i64,
    pub fake: i64,
    pub leaves: i64,
    pub bonus: i64,
}

/// A context that gives `kind`'s placeholders believable values, for previews: the fields a
/// real message of that kind would have, and no others (so a preview also shows what a
/// placeholder says when its value is missing).
#[must_use]
pub fn sample_context(kind: MessageKind) -> RenderContext {
    // 2026-01-01T00:00:00Z; the member's account is 3 days older.
    const JOINED_AT: Millis = 1_767_225_600_000;
    const MEMBER_ID: UserId =
        UserId::new(((JOINED_AT - 3 * DAY_MS - DISCORD_EPOCH_MS).cast_unsigned() << 22) | 1);
    const INVITER_ID: UserId = UserId::new(859_000_000_000_000_042);
    let code = |code: &str| InviteCode::parse(code).ok();
    let joined = RenderContext {
        member_id: MEMBER_ID,
        member_name: Some("Nova".to_owned()),
        joined_at: Some(JOINED_AT),
        left_at: None,
        source: None,
        code: None,
        code_uses: None,
        inviter_id: None,
        inviter_name: None,
        candidates: Vec::new(),
        unknown_reason: None,
        fake: FakeReasons::NONE,
        inviter_counts: None,
        join_position: Some(1234),
    };
    let through_invite = RenderContext {
        source: Some(JoinSource::Invite),
        code: code("h7Kq2mZ"),
        code_uses: Some(5),
        inviter_id: Some(INVITER_ID),
        inviter_name: Some("Rowan".to_owned()),
        inviter_counts: Some(InviterCounts {
            total: 12,
            real: 9,
            fake: 2,
            leaves: 1,
            bonus: 0,
        }),
        ..joined.clone()
    };
    let candidates = ["h7Kq2mZ", "Wp3xR9a"]
        .into_iter()
        .filter_map(code)
        .collect();
    match kind {
        MessageKind::Invite => through_invite,
        MessageKind::Vanity => RenderContext {
            source: Some(JoinSource::Vanity),
            code: code("invitrack"),
            code_uses: Some(88),
            ..joined
        },
        MessageKind::AmbiguousInviter => RenderContext {
            source: Some(JoinSource::Ambiguous),
            code: None,
            code_uses: None,
            candidates,
            ..through_invite
        },
        MessageKind::Ambiguous => RenderContext {
            source: Some(JoinSource::Ambiguous),
            candidates,
            ..joined
        },
        MessageKind::Unknown => RenderContext {
            source: Some(JoinSource::Unknown),
            unknown_reason: Some(UnknownReason::Untracked),
            ..joined
        },
        MessageKind::Fake => RenderContext {
            fake: FakeReasons::YOUNG,
            inviter_counts: through_invite.inviter_counts.map(|counts| InviterCounts {
                total: counts.total + 1,
                fake: counts.fake + 1,
                ..counts
            }),
            ..through_invite
        },
        MessageKind::Leave => RenderContext {
            left_at: Some(JOINED_AT + 2 * 3_600_000),
            join_position: None,
            inviter_counts: through_invite.inviter_counts.map(|counts| InviterCounts {
                real: counts.real - 1,
                leaves: counts.leaves + 1,
                ..counts
            }),
            ..through_invite
        },
    }
}
