//! Bus messages to what the engine and storage take: codes parsed, times checked.

use chrono::{DateTime, Utc};
use invitrack_attribution::{
    DiscordJoinSource, InviteInfo, Observation, ReportedSource, SnapshotFailure, VanityInfo,
};
use invitrack_bus::EventKind;
use invitrack_bus::proto::{self, snapshot_failed::Reason};
use invitrack_model::membership::DID_REJOIN;
use invitrack_model::time::discord_time;
use invitrack_model::{ChannelId, InviteCode, Millis, UserId};
use invitrack_storage::invites::SeenInvite;

use crate::decode::DecodeError;
use crate::reports::ReportedJoin;

fn code(raw: &str) -> Result<InviteCode, DecodeError> {
    Ok(InviteCode::parse(raw)?)
}

/// A time the bus marks absent with 0.
fn optional_time(ms: Millis) -> Result<Option<DateTime<Utc>>, DecodeError> {
    (ms != 0)
        .then(|| discord_time(ms))
        .transpose()
        .map_err(Into::into)
}

pub(crate) fn invite_info(invite: &proto::Invite) -> Result<InviteInfo, DecodeError> {
    Ok(InviteInfo {
        code: code(&invite.code)?,
        inviter_id: UserId::new_checked(invite.inviter_id),
        uses: invite.uses,
        max_uses: invite.max_uses,
        created_at: invite.created_at_ms,
        expires_at: (invite.expires_at_ms != 0).then_some(invite.expires_at_ms),
    })
}

pub(crate) fn seen_invite(invite: &proto::Invite) -> Result<SeenInvite, DecodeError> {
    Ok(SeenInvite {
        code: code(&invite.code)?,
        channel_id: ChannelId::new_checked(invite.channel_id),
        inviter_id: UserId::new_checked(invite.inviter_id),
        uses: invite.uses,
        max_uses: invite.max_uses,
        max_age_secs: invite.max_age_secs,
        temporary: invite.temporary,
        created_at: optional_time(invite.created_at_ms)?,
        expires_at: optional_time(invite.expires_at_ms)?,
    })
}

/// The observation an event carries for the engine; `None` for events the engine does not see
/// (leaves are membership, ingest's clock is time).
///
/// # Errors
/// When the event holds a value no Discord event can (an invite code outside the alphabet, an
/// INVITE_CREATE without its invite).
pub fn observation(kind: &EventKind) -> Result<Option<Observation>, DecodeError> {
    Ok(Some(match kind {
        EventKind::MemberAdd(add) => Observation::MemberJoined {
            user_id: UserId::new(add.user_id),
            joined_at: add.joined_at_ms,
        },
        EventKind::MemberRemove(_)
        | EventKind::ShardClock(_)
        | EventKind::JoinSourceReport(_)
        | EventKind::MembersFound(_)
        | EventKind::GuildAvailable(_) => {
            return Ok(None);
        }
        EventKind::InviteCreate(create) => Observation::InviteCreated {
            invite: invite_info(create.invite.as_ref().ok_or(DecodeError::NoInvite)?)?,
        },
        EventKind::InviteDelete(delete) => Observation::InviteDeleted {
            code: code(&delete.code)?,
        },
        EventKind::InviteSnapshot(snapshot) => Observation::Snapshot {
            requested_at: snapshot.requested_at_ms,
            received_at: snapshot.received_at_ms,
            invites: snapshot
                .invites
                .iter()
                .map(invite_info)
                .collect::<Result<_, _>>()?,
            vanity: snapshot
                .vanity
                .as_ref()
                .map(|v| {
                    Ok::<_, DecodeError>(VanityInfo {
                        code: (!v.code.is_empty()).then(|| code(&v.code)).transpose()?,
                        uses: v.uses,
                    })
                })
                .transpose()?,
        },
        EventKind::SnapshotFailed(failed) => Observation::SnapshotFailed {
            requested_at: failed.requested_at_ms,
            failure: if failed.reason() == Reason::MissingPermissions {
                SnapshotFailure::MissingPermissions
            } else {
                SnapshotFailure::Unavailable
            },
        },
    }))
}

/// The members of a member search answer (`docs/attribution.md#discords-reported-source`).
///
/// # Errors
/// When a member's code is not an invite code or its join time is out of range.
pub(crate) fn reported_joins(
    report: &proto::JoinSourceReport,
) -> Result<Vec<ReportedJoin>, DecodeError> {
    report
        .members
        .iter()
        .map(|member| {
            Ok(ReportedJoin {
                user_id: UserId::new_checked(member.user_id).ok_or(DecodeError::NoMember)?,
                joined_at: discord_time(member.joined_at_ms)?,
                report: ReportedSource {
                    source: DiscordJoinSource::from_type(member.join_source_type),
                    code: (!member.source_invite_code.is_empty())
                        .then(|| code(&member.source_invite_code))
                        .transpose()?,
                    inviter_id: UserId::new_checked(member.inviter_id),
                },
            })
        })
        .collect()
}

/// A member the member list showed after ingest was away
/// (`docs/attribution.md#joins-made-while-away`).
pub(crate) struct FoundMember {
    pub(crate) user_id: UserId,
    pub(crate) joined_at_ms: Millis,
    pub(crate) joined_at: DateTime<Utc>,
    pub(crate) has_avatar: bool,
    pub(crate) flagged_rejoin: bool,
}

/// The members of a [`proto::MembersFound`].
///
/// # Errors
/// When a member has no id or its join time is out of range.
pub(crate) fn found_members(found: &proto::MembersFound) -> Result<Vec<FoundMember>, DecodeError> {
    found
        .members
        .iter()
        .map(|member| {
            Ok(FoundMember {
                user_id: UserId::new_checked(member.user_id).ok_or(DecodeError::NoMember)?,
                joined_at_ms: member.joined_at_ms,
                joined_at: discord_time(member.joined_at_ms)?,
                has_avatar: member.has_avatar,
                flagged_rejoin: member.flags & DID_REJOIN != 0,
            })
        })
        .collect()
}
