//! Invites the bot made for members with `/invite link` belong to those members: Discord names
//! the bot as their inviter, so before the engine and the `invites` table see such an invite,
//! its inviter becomes the member it was made for (`docs/commands.md#invite-link`). Every
//! explanation the engine gives, ambiguous ones included, then names the member.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use invitrack_attribution::{InviteInfo, Observation};
use invitrack_model::{GuildKey, InviteCode, UserId};
use invitrack_storage::invites::SeenInvite;

use crate::decode::{Action, InviteEvent, Step};

/// The member each bot-made code of a guild was made for.
pub(crate) type Owners = HashMap<GuildKey, HashMap<InviteCode, UserId>>;

/// The codes in `steps` whose inviter is the bot itself, by guild: the only ones that can
/// belong to a member.
pub(crate) fn bot_made(steps: &[Step]) -> BTreeMap<GuildKey, Vec<InviteCode>> {
    let mut made: BTreeMap<GuildKey, BTreeSet<InviteCode>> = BTreeMap::new();
    for step in steps {
        let bot = Some(step.guild.bot_user());
        if let Action::Invites { observation, .. } = &step.action {
            for invite in observed(observation).filter(|i| i.inviter_id == bot) {
                made.entry(step.guild)
                    .or_default()
                    .insert(invite.code.clone());
            }
        }
    }
    made.into_iter()
        .map(|(guild, codes)| (guild, codes.into_iter().collect()))
        .collect()
}

/// Names each code's member (from `owners`) as its inviter, in the engine's evidence and in
/// the `invites` table's change.
pub(crate) fn credit(steps: &mut [Step], owners: &Owners) {
    for step in steps {
        let Some(owners) = owners.get(&step.guild) else {
            continue;
        };
        if let Action::Invites {
            change,
            observation,
            ..
        } = &mut step.action
        {
            for invite in observed_mut(observation) {
                if let Some(member) = owners.get(&invite.code) {
                    invite.inviter_id = Some(*member);
                }
            }
            for invite in seen_mut(change) {
                if let Some(member) = owners.get(&invite.code) {
                    invite.inviter_id = Some(*member);
                }
            }
        }
    }
}

fn observed(observation: &Observation) -> Box<dyn Iterator<Item = &InviteInfo> + '_> {
    match observation {
        Observation::InviteCreated { invite } => Box::new(std::iter::once(invite)),
        Observation::Snapshot { invites, .. } => Box::new(invites.iter()),
        _ => Box::new(std::iter::empty()),
    }
}

fn observed_mut(observation: &mut Observation) -> Box<dyn Iterator<Item = &mut InviteInfo> + '_> {
    match observation {
        Observation::InviteCreated { invite } => Box::new(std::iter::once(invite)),
        Observation::Snapshot { invites, .. } => Box::new(invites.iter_mut()),
        _ => Box::new(std::iter::empty()),
    }
}

fn seen_mut(change: &mut InviteEvent) -> Box<dyn Iterator<Item = &mut SeenInvite> + '_> {
    match change {
        InviteEvent::Created(invite) => Box::new(std::iter::once(invite)),
        InviteEvent::Snapshot { invites, .. } => Box::new(invites.iter_mut()),
        InviteEvent::Deleted(_) => Box::new(std::iter::empty()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;
    use invitrack_model::{BotId, GuildId};

    fn info(code: &str, inviter: u64) -> InviteInfo {
        InviteInfo {
            code: InviteCode::parse(code).expect("code"),
            inviter_id: UserId::new_checked(inviter),
            uses: 0,
            max_uses: 0,
            created_at: 0,
            expires_at: None,
        }
    }

    fn seen(code: &str, inviter: u64) -> SeenInvite {
        SeenInvite {
            code: InviteCode::parse(code).expect("code"),
            channel_id: None,
            inviter_id: UserId::new_checked(inviter),
            uses: 0,
            max_uses: 0,
            max_age_secs: 0,
            temporary: false,
            created_at: None,
            expires_at: None,
        }
    }

    #[test]
    fn only_the_bots_codes_are_looked_up_and_only_known_ones_change_hands() {
        const BOT: u64 = 7;
        let guild = GuildKey::new(BotId::new(BOT), GuildId::new(1));
        let snapshot = |pairs: &[(&str, u64)]| Step {
            guild,
            observed_at: 0,
            action: Action::Invites {
                change: InviteEvent::Snapshot {
                    requested_at: Utc::now(),
                    received_at: Utc::now(),
                    invites: pairs.iter().map(|(c, i)| seen(c, *i)).collect(),
                },
                at: Utc::now(),
                observation: Observation::Snapshot {
                    requested_at: 0,
                    received_at: 0,
                    invites: pairs.iter().map(|(c, i)| info(c, *i)).collect(),
                    vanity: None,
                },
            },
        };
        let mut steps = vec![snapshot(&[("mine", BOT), ("theirs", 42), ("stray", BOT)])];
        let made = bot_made(&steps);
        let codes: Vec<&str> = made[&guild].iter().map(InviteCode::as_str).collect();
        assert_eq!(codes, ["mine", "stray"]);

        let owners: Owners = HashMap::from([(
            guild,
            HashMap::from([(InviteCode::parse("mine").expect("code"), UserId::new(99))]),
        )]);
        credit(&mut steps, &owners);
        let Action::Invites {
            change: InviteEvent::Snapshot { invites: seen, .. },
            observation: Observation::Snapshot { invites, .. },
            ..
        } = &steps[0].action
        else {
            panic!("a snapshot")
        };
        let inviters: Vec<Option<u64>> = invites
            .iter()
            .map(|i| i.inviter_id.map(UserId::get))
            .collect();
        assert_eq!(inviters, [Some(99), Some(42), Some(BOT)]);
        let seen: Vec<Option<u64>> = seen.iter().map(|i| i.inviter_id.map(UserId::get)).collect();
        assert_eq!(seen, inviters);
    }
}
