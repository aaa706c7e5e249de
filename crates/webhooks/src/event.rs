//! The events a webhook receives and their JSON bodies (`docs/webhooks.md#events`), made from
//! the decision stream's messages.

use chrono::{DateTime, Utc};
use invitrack_bus::{Decision, DecisionKind, proto};
use serde::Serialize;

/// What a webhook can subscribe to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventType {
    /// A join decided: its source, code, inviter, fake reasons.
    MemberJoin,
    /// A member whose join is known left.
    MemberLeave,
}

impl EventType {
    pub const ALL: [Self; 2] = [Self::MemberJoin, Self::MemberLeave];

    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::MemberJoin => "member.join",
            Self::MemberLeave => "member.leave",
        }
    }

    /// The event named `name`, if any.
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|event| event.as_str() == name)
    }
}

impl Serialize for EventType {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// One event as POSTed. Snowflakes are strings (JavaScript's numbers cannot hold them), times
/// RFC 3339 in UTC.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WebhookEvent {
    /// The decision's id: the same in every retry and in `Invitrack-Delivery`.
    pub id: String,
    #[serde(rename = "type")]
    pub event_type: EventType,
    /// When the worker decided it.
    pub created_at: Option<DateTime<Utc>>,
    pub bot_id: String,
    pub guild_id: String,
    pub member: Member,
    /// `invite`, `vanity`, `ambiguous` or `unknown`; joins only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// The code credited; `null` when none. Joins only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<Option<String>>,
    /// Who is credited; `null` when nobody.
    pub inviter_id: Option<String>,
    /// An ambiguous join's candidate codes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub candidates: Option<Vec<String>>,
    /// Why an unknown join is unknown.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unknown_reason: Option<String>,
    /// Why the join counts as fake; empty for a real one. Joins only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fake_reasons: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rejoin: Option<bool>,
    /// The inviter's counts right after this event; `null` without an inviter.
    pub inviter_counts: Option<Counts>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Member {
    pub id: String,
    pub joined_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub left_at: Option<DateTime<Utc>>,
}

/// As `GET /v1/invites/user` answers them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub total: i64,
    pub real: i64,
    pub fake: i64,
    pub leaves: i64,
    pub bonus: i64,
}

impl From<&proto::InviterCounts> for Counts {
    fn from(c: &proto::InviterCounts) -> Self {
        Self {
            total: c.total,
            real: c.real,
            fake: c.fake,
            leaves: c.leaves,
            bonus: c.bonus,
        }
    }
}

fn time(ms: i64) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp_millis(ms)
}

fn snowflake(id: u64) -> Option<String> {
    (id != 0).then(|| id.to_string())
}

impl WebhookEvent {
    /// The event of `decision`; `None` for a message with neither a join nor a leave.
    #[must_use]
    pub fn from_decision(decision: &Decision) -> Option<Self> {
        let base = |event_type: EventType, member: Member| Self {
            id: decision.id.to_string(),
            event_type,
            created_at: time(decision.decided_at_ms),
            bot_id: decision.bot_id.to_string(),
            guild_id: decision.guild_id.to_string(),
            member,
            source: None,
            code: None,
            inviter_id: None,
            candidates: None,
            unknown_reason: None,
            fake_reasons: None,
            rejoin: None,
            inviter_counts: None,
        };
        let member_id = decision.member_id.to_string();
        Some(match decision.kind.as_ref()? {
            DecisionKind::Join(join) => Self {
                source: Some(join.source.clone()),
                code: Some((!join.code.is_empty()).then(|| join.code.clone())),
                inviter_id: snowflake(join.inviter_id),
                candidates: (join.source == "ambiguous").then(|| join.candidates.clone()),
                unknown_reason: (!join.unknown_reason.is_empty())
                    .then(|| join.unknown_reason.clone()),
                fake_reasons: Some(join.fake_reasons.clone()),
                rejoin: Some(join.rejoin),
                inviter_counts: join.inviter_counts.as_ref().map(Counts::from),
                ..base(
                    EventType::MemberJoin,
                    Member {
                        id: member_id,
                        joined_at: time(join.joined_at_ms),
                        left_at: None,
                    },
                )
            },
            DecisionKind::Leave(leave) => Self {
                inviter_id: snowflake(leave.inviter_id),
                inviter_counts: leave.inviter_counts.as_ref().map(Counts::from),
                ..base(
                    EventType::MemberLeave,
                    Member {
                        id: member_id,
                        joined_at: time(leave.joined_at_ms),
                        left_at: time(leave.left_at_ms),
                    },
                )
            },
        })
    }

    /// The body as sent.
    #[must_use]
    pub fn to_body(&self) -> String {
        serde_json::to_string(self).expect("an event always serializes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn join() -> Decision {
        Decision {
            id: 42,
            bot_id: 1,
            guild_id: 2,
            member_id: 3,
            decided_at_ms: 1_700_000_002_000,
            kind: Some(DecisionKind::Join(proto::JoinDecided {
                joined_at_ms: 1_700_000_000_000,
                source: "invite".into(),
                code: "abc".into(),
                inviter_id: 9,
                fake_reasons: vec!["young".into()],
                inviter_counts: Some(proto::InviterCounts {
                    total: 5,
                    fake: 1,
                    leaves: 1,
                    bonus: 0,
                    real: 3,
                }),
                ..Default::default()
            })),
        }
    }

    #[test]
    fn a_join_reads_as_documented() {
        let event = WebhookEvent::from_decision(&join()).expect("an event");
        assert_eq!(event.event_type, EventType::MemberJoin);
        let body: serde_json::Value = serde_json::from_str(&event.to_body()).expect("JSON");
        assert_eq!(
            body,
            serde_json::json!({
                "id": "42", "type": "member.join", "created_at": "2023-11-14T22:13:22Z",
                "bot_id": "1", "guild_id": "2",
                "member": {"id": "3", "joined_at": "2023-11-14T22:13:20Z"},
                "source": "invite", "code": "abc", "inviter_id": "9",
                "fake_reasons": ["young"], "rejoin": false,
                "inviter_counts": {"total": 5, "real": 3, "fake": 1, "leaves": 1, "bonus": 0},
            })
        );
    }

    #[test]
    fn a_leave_without_inviter_says_null() {
        let decision = Decision {
            kind: Some(DecisionKind::Leave(proto::MemberLeft {
                left_at_ms: 1_700_000_010_000,
                joined_at_ms: 1_700_000_000_000,
                inviter_id: 0,
                inviter_counts: None,
            })),
            ..join()
        };
        let event = WebhookEvent::from_decision(&decision).expect("an event");
        assert_eq!(event.event_type, EventType::MemberLeave);
        let body: serde_json::Value = serde_json::from_str(&event.to_body()).expect("JSON");
        assert_eq!(
            body,
            serde_json::json!({
                "id": "42", "type": "member.leave", "created_at": "2023-11-14T22:13:22Z",
                "bot_id": "1", "guild_id": "2",
                "member": {"id": "3", "joined_at": "2023-11-14T22:13:20Z",
                           "left_at": "2023-11-14T22:13:30Z"},
                "inviter_id": null, "inviter_counts": null,
            })
        );
        assert!(
            WebhookEvent::from_decision(&Decision {
                kind: None,
                ..join()
            })
            .is_none()
        );
    }
}
