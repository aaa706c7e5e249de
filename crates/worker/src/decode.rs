//! Checking a stream message and turning it into what applying it takes. A message that fails
//! here can never be applied: it becomes a dead letter with the [`DecodeError`] as its reason.

use bytes::Bytes;
use chrono::{DateTime, Utc};
use invitrack_attribution::Observation;
use invitrack_bus::{BusError, BusLayout, EventKind, decode_event};
use invitrack_model::membership::DID_REJOIN;
use invitrack_model::time::{TimeOutOfRange, millis_to_time};
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
    let observation = convert::observation(kind)?;
    let action = match (kind, observation) {
        (EventKind::MemberAdd(add), Some(observation)) => Action::MemberAdd {
            user_id: UserId::new(add.user_id),
            joined_at: millis_to_time(add.joined_at_ms)?,
            has_avatar: add.has_avatar,
            flagged_rejoin: add.flags & DID_REJOIN != 0,
            observation,
        },
        (EventKind::MemberRemove(remove), _) => Action::MemberRemove {
            user_id: UserId::new(remove.user_id),
            left_at: millis_to_time(event.observed_at_ms)?,
        },
        (EventKind::InviteCreate(create), Some(observation)) => Action::Invites {
            change: InviteEvent::Created(convert::seen_invite(
                create.invite.as_ref().ok_or(DecodeError::NoInvite)?,
            )?),
            at: millis_to_time(event.observed_at_ms)?,
            observation,
        },
        (EventKind::InviteDelete(delete), Some(observation)) => Action::Invites {
            change: InviteEvent::Deleted(InviteCode::parse(delete.code.as_str())?),
            at: millis_to_time(event.observed_at_ms)?,
            observation,
        },
        (EventKind::InviteSnapshot(snapshot), Some(observation)) => Action::Invites {
            change: InviteEvent::Snapshot {
                requested_at: millis_to_time(snapshot.requested_at_ms)?,
                received_at: millis_to_time(snapshot.received_at_ms)?,
                invites: snapshot
                    .invites
                    .iter()
                    .map(convert::seen_invite)
                    .collect::<Result<_, _>>()?,
            },
            at: millis_to_time(event.observed_at_ms)?,
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
