//! Checking a stream message and turning it into what applying it takes. A message that fails
//! here can never be applied: it becomes a dead letter with the [`DecodeError`] as its reason.

use bytes::Bytes;
use chrono::{DateTime, Utc};
use invitrack_attribution::Observation;
use invitrack_bus::{BusError, BusLayout, EventKind, decode_event};
use invitrack_model::membership::DID_REJOIN;
use invitrack_model::time::{TimeOutOfRange, discord_time};
use invitrack_model::{GuildKey, InviteCode, InviteCodeError, Millis, UserId};
use invitrack_storage::invites::SeenInvite;

use crate::clock::ClockReading;
use crate::convert;

/// One message of the partition as the stream delivered it.
#[derive(Debug, Clone)]
pub struct StreamMessage {
    pub sequence: u64,
    pub subject: String,
    pub payload: Bytes,
}

/// A message that could not be applied, with why.
#[derive(Debug)]
pub struct DeadLetter {
    pub sequence: u64,
    pub subject: String,
    pub reason: DecodeError,
    pub payload: Bytes,
}

/// Why a message can never be applied.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    #[error("subject: {0}")]
    Subject(#[source] BusError),
    #[error("payload: {0}")]
    Payload(#[source] BusError),
    #[error("event for {event:?} on subject of {subject:?} in partition {partition}")]
    WrongSubject {
        event: GuildKey,
        subject: GuildKey,
        partition: u32,
    },
    #[error("event for {guild:?}, whose partition is {expected}, in partition {partition}")]
    WrongPartition {
        guild: GuildKey,
        expected: u32,
        partition: u32,
    },
    #[error("no event kind")]
    NoKind,
    #[error("INVITE_CREATE without its invite")]
    NoInvite,
    #[error("clock for partition {named} in partition {partition}")]
    ClockPartition { named: u32, partition: u32 },
    #[error("clock for shards {first}..={last} of {total}")]
    ClockShards { first: u32, last: u32, total: u32 },
    #[error(transparent)]
    Time(#[from] TimeOutOfRange),
    #[error(transparent)]
    InviteCode(#[from] InviteCodeError),
}

/// A checked message: an event of a guild, or ingest's clock.
pub(crate) enum Decoded {
    Step(Step),
    Clock(ClockReading),
}

/// One checked event of a batch.
pub(crate) struct Step {
    pub(crate) guild: GuildKey,
    pub(crate) observed_at: Millis,
    pub(crate) action: Action,
}

pub(crate) enum Action {
    MemberAdd {
        user_id: UserId,
        joined_at: DateTime<Utc>,
        has_avatar: bool,
        flagged_rejoin: bool,
        observation: Observation,
    },
    MemberRemove {
        user_id: UserId,
        left_at: DateTime<Utc>,
    },
    /// An invite event or snapshot: the engine's evidence and the `invites` table's change.
    Invites {
        change: InviteEvent,
        at: DateTime<Utc>,
        observation: Observation,
    },
    Observe(Observation),
}

pub(crate) enum InviteEvent {
    Created(SeenInvite),
    Deleted(InviteCode),
    Snapshot {
        requested_at: DateTime<Utc>,
        received_at: DateTime<Utc>,
        invites: Vec<SeenInvite>,
    },
}

impl Step {
    /// The member this step reads or changes, if any.
    pub(crate) fn member(&self) -> Option<UserId> {
        match &self.action {
            Action::MemberAdd { user_id, .. } | Action::MemberRemove { user_id, .. } => {
                Some(*user_id)
            }
            Action::Invites { .. } | Action::Observe(_) => None,
        }
    }
}

/// Checks a message of partition `partition` and decodes it.
pub(crate) fn decode(
    layout: &BusLayout,
    partition: u32,
    message: &StreamMessage,
) -> Result<Decoded, DecodeError> {
    let (subject_partition, subject_guild) = layout
        .parse_guild_subject(&message.subject)
        .map_err(DecodeError::Subject)?;
    let event = decode_event(&message.payload).map_err(DecodeError::Payload)?;
    let guild = event.guild();
    if guild != subject_guild || subject_partition != partition {
        return Err(DecodeError::WrongSubject {
            event: guild,
            subject: subject_guild,
            partition,
        });
    }
    let kind = event.kind.as_ref().ok_or(DecodeError::NoKind)?;
    if let EventKind::ShardClock(clock) = kind {
        return ClockReading::check(guild.bot_id, clock, event.observed_at_ms, partition)
            .map(Decoded::Clock);
    }
    // A guild's events must all be applied by the one partition its key hashes to; an event
    // published elsewhere (by hand, or by a publisher with another partition count) would
    // give the guild a second, diverging state.
    let expected = layout.partition_of(guild);
    if expected != partition {
        return Err(DecodeError::WrongPartition {
            guild,
            expected,
            partition,
        });
    }
    let observation = convert::observation(kind)?;
    let action = match (kind, observation) {
        (EventKind::MemberAdd(add), Some(observation)) => Action::MemberAdd {
            user_id: UserId::new(add.user_id),
            joined_at: discord_time(add.joined_at_ms)?,
            has_avatar: add.has_avatar,
            flagged_rejoin: add.flags & DID_REJOIN != 0,
            observation,
        },
        (EventKind::MemberRemove(remove), _) => Action::MemberRemove {
            user_id: UserId::new(remove.user_id),
            left_at: discord_time(event.observed_at_ms)?,
        },
        (EventKind::InviteCreate(create), Some(observation)) => Action::Invites {
            change: InviteEvent::Created(convert::seen_invite(
                create.invite.as_ref().ok_or(DecodeError::NoInvite)?,
            )?),
            at: discord_time(event.observed_at_ms)?,
            observation,
        },
        (EventKind::InviteDelete(delete), Some(observation)) => Action::Invites {
            change: InviteEvent::Deleted(InviteCode::parse(delete.code.as_str())?),
            at: discord_time(event.observed_at_ms)?,
            observation,
        },
        (EventKind::InviteSnapshot(snapshot), Some(observation)) => Action::Invites {
            change: InviteEvent::Snapshot {
                requested_at: discord_time(snapshot.requested_at_ms)?,
                received_at: discord_time(snapshot.received_at_ms)?,
                invites: snapshot
                    .invites
                    .iter()
                    .map(convert::seen_invite)
                    .collect::<Result<_, _>>()?,
            },
            at: discord_time(event.observed_at_ms)?,
            observation,
        },
        (_, Some(observation)) => Action::Observe(observation),
        // Every other kind carries an observation (convert::observation).
        (_, None) => return Err(DecodeError::NoKind),
    };
    Ok(Decoded::Step(Step {
        guild,
        observed_at: event.observed_at_ms,
        action,
    }))
}

#[cfg(test)]
mod tests {
    use invitrack_bus::proto::{GuildEvent, MemberAdd, MemberRemove, guild_event::Kind};
    use prost::Message as _;

    use super::*;

    fn message(layout: &BusLayout, subject_partition: u32, event: &GuildEvent) -> StreamMessage {
        StreamMessage {
            sequence: 1,
            subject: format!(
                "{}.guild.{subject_partition}.{}.{}",
                layout.prefix(),
                event.bot_id,
                event.guild_id
            ),
            payload: Bytes::from(event.encode_to_vec()),
        }
    }

    #[test]
    fn times_outside_discords_window_are_refused() {
        let layout = BusLayout::new("decode-test", 1).expect("layout");
        let join = |joined_at_ms: i64| GuildEvent {
            bot_id: 7,
            guild_id: 81_384_788_765_712_384,
            observed_at_ms: 1_800_000_000_000,
            shard_id: 0,
            kind: Some(Kind::MemberAdd(MemberAdd {
                user_id: 42,
                joined_at_ms,
                has_avatar: true,
                bot: false,
                flags: 0,
            })),
        };
        assert!(matches!(
            decode(&layout, 0, &message(&layout, 0, &join(1_799_999_999_000))),
            Ok(Decoded::Step(_))
        ));
        // PostgreSQL refuses -10^15 ms although chrono takes it: it once failed whole batches.
        for poison in [-1_000_000_000_000_000, 0, i64::MAX] {
            assert!(matches!(
                decode(&layout, 0, &message(&layout, 0, &join(poison))),
                Err(DecodeError::Time(_))
            ));
        }
    }

    #[test]
    fn an_event_is_applied_only_by_its_guilds_partition() {
        let layout = BusLayout::new("decode-test", 8).expect("layout");
        let event = GuildEvent {
            bot_id: 7,
            guild_id: 81_384_788_765_712_384,
            observed_at_ms: 1_800_000_000_000,
            shard_id: 0,
            kind: Some(Kind::MemberRemove(MemberRemove { user_id: 42 })),
        };
        let home = layout.partition_of(event.guild());
        let elsewhere = (home + 1) % layout.partitions();
        assert!(matches!(
            decode(&layout, home, &message(&layout, home, &event)),
            Ok(Decoded::Step(_))
        ));
        // On the other partition's subject, read by the other partition.
        assert!(matches!(
            decode(&layout, elsewhere, &message(&layout, elsewhere, &event)),
            Err(DecodeError::WrongPartition { expected, partition, .. })
                if expected == home && partition == elsewhere
        ));
        // A subject that does not match the partition that reads it.
        assert!(matches!(
            decode(&layout, elsewhere, &message(&layout, home, &event)),
            Err(DecodeError::WrongSubject { .. })
        ));
    }
}
