//! Bus messages to engine observations.

use invitrack_attribution::{InviteInfo, Observation, SnapshotFailure, UserId, VanityInfo};
use invitrack_bus::EventKind;
use invitrack_bus::proto::{self, snapshot_failed::Reason};

pub(crate) fn invite_info(invite: &proto::Invite) -> InviteInfo {
    InviteInfo {
        code: invite.code.clone(),
        inviter_id: (invite.inviter_id != 0).then_some(UserId(invite.inviter_id)),
        uses: invite.uses,
        max_uses: invite.max_uses,
        created_at: invite.created_at_ms,
        expires_at: (invite.expires_at_ms != 0).then_some(invite.expires_at_ms),
    }
}

/// The observation an event carries for the engine; `None` for events the engine does not see
/// (leaves are handled by storage, ingest's clock by the partition).
pub fn observation(kind: &EventKind) -> Option<Observation> {
    Some(match kind {
        EventKind::MemberAdd(add) => Observation::MemberJoined {
            user_id: UserId(add.user_id),
            joined_at: add.joined_at_ms,
        },
        EventKind::MemberRemove(_) | EventKind::ShardClock(_) => return None,
        EventKind::InviteCreate(create) => Observation::InviteCreated {
            invite: invite_info(create.invite.as_ref()?),
        },
        EventKind::InviteDelete(delete) => Observation::InviteDeleted {
            code: delete.code.clone(),
        },
        EventKind::InviteSnapshot(snapshot) => Observation::Snapshot {
            requested_at: snapshot.requested_at_ms,
            received_at: snapshot.received_at_ms,
            invites: snapshot.invites.iter().map(invite_info).collect(),
            vanity: snapshot.vanity.as_ref().map(|v| VanityInfo {
                code: (!v.code.is_empty()).then(|| v.code.clone()),
                uses: v.uses,
            }),
        },
        EventKind::SnapshotFailed(failed) => Observation::SnapshotFailed {
            requested_at: failed.requested_at_ms,
            failure: if failed.reason() == Reason::MissingPermissions {
                SnapshotFailure::MissingPermissions
            } else {
                SnapshotFailure::Unavailable
            },
        },
    })
}
