//! twilight models to bus messages and our ids: the only place twilight's types are turned
//! into invitrack's.

use invitrack_bus::proto;
use twilight_model::gateway::payload::incoming::{
    InviteCreate, InviteDelete, MemberAdd, MemberRemove,
};
use twilight_model::guild::Member;
use twilight_model::guild::invite::Invite;
use twilight_model::util::Timestamp;

/// A twilight id as ours, of the same kind (`Id<twilight GuildMarker>` → [`GuildId`], ...).
pub(crate) trait ToModel {
    type Model;
    fn to_model(self) -> Self::Model;
}

macro_rules! to_model {
    ($twilight:ty => $ours:ty) => {
        impl ToModel for twilight_model::id::Id<$twilight> {
            type Model = $ours;
            fn to_model(self) -> $ours {
                <$ours>::new(self.get())
            }
        }
    };
}
to_model!(twilight_model::id::marker::GuildMarker => invitrack_model::GuildId);
to_model!(twilight_model::id::marker::UserMarker => invitrack_model::UserId);

pub(crate) fn millis(ts: Timestamp) -> i64 {
    ts.as_micros() / 1000
}

pub(crate) fn member_add(add: &MemberAdd, observed_at: i64) -> proto::MemberAdd {
    // Discord always sends joined_at on GUILD_MEMBER_ADD; fall back to when we saw it.
    member(&add.member, observed_at)
}

/// A member as its join: from GUILD_MEMBER_ADD, or from the member list
/// (GUILD_MEMBERS_CHUNK), where a member without `joined_at` gets `default_joined_at`.
pub(crate) fn member(member: &Member, default_joined_at: i64) -> proto::MemberAdd {
    let user = &member.user;
    proto::MemberAdd {
        user_id: user.id.get(),
        joined_at_ms: member.joined_at.map_or(default_joined_at, millis),
        has_avatar: user.avatar.is_some() || member.avatar.is_some(),
        bot: user.bot,
        flags: u32::try_from(member.flags.bits()).unwrap_or(u32::MAX),
    }
}

pub(crate) fn member_remove(remove: &MemberRemove) -> proto::MemberRemove {
    proto::MemberRemove {
        user_id: remove.user.id.get(),
    }
}

pub(crate) fn invite_create(create: &InviteCreate) -> proto::InviteCreate {
    let created_at_ms = millis(create.created_at);
    let max_age_secs = u32::try_from(create.max_age).unwrap_or(u32::MAX);
    let expires_at_ms = if max_age_secs == 0 {
        0
    } else {
        created_at_ms + i64::from(max_age_secs) * 1000
    };
    proto::InviteCreate {
        invite: Some(proto::Invite {
            code: create.code.clone(),
            inviter_id: create.inviter.as_ref().map_or(0, |u| u.id.get()),
            uses: u64::from(create.uses),
            max_uses: create.max_uses,
            max_age_secs,
            temporary: create.temporary,
            created_at_ms,
            expires_at_ms,
            channel_id: create.channel_id.get(),
        }),
    }
}

pub(crate) fn invite_delete(delete: &InviteDelete) -> proto::InviteDelete {
    proto::InviteDelete {
        code: delete.code.clone(),
        channel_id: delete.channel_id.get(),
    }
}

pub(crate) fn invite(invite: &Invite) -> proto::Invite {
    proto::Invite {
        code: invite.code.clone(),
        inviter_id: invite.inviter.as_ref().map_or(0, |u| u.id.get()),
        uses: invite.uses.unwrap_or(0),
        max_uses: invite.max_uses.unwrap_or(0),
        max_age_secs: invite
            .max_age
            .map_or(0, |a| u32::try_from(a).unwrap_or(u32::MAX)),
        temporary: invite.temporary.unwrap_or(false),
        created_at_ms: invite.created_at.map_or(0, millis),
        expires_at_ms: invite.expires_at.map_or(0, millis),
        channel_id: invite.channel.as_ref().map_or(0, |c| c.id.get()),
    }
}
