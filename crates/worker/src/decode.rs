//! Checking a stream message and turning it into what applying it takes. A message that fails
//! here can never be applied: it becomes a dead letter with the [`DecodeError`] as its reason.

use bytes::Bytes;
use chrono::{DateTime, Utc};
use invitrack_attribution::{MissedJoins, Observation};
use invitrack_bus::{BusError, BusLayout, EventKind, GuildEvent, decode_event};
use invitrack_model::membership::DID_REJOIN;
use invitrack_model::time::{TimeOutOfRange, discord_time};
use invitrack_model::{GuildKey, InviteCode, InviteCodeError, Millis, UserId};
use invitrack_storage::invites::SeenInvite;

use crate::clock::ClockReading;
use crate::convert::{self, FoundMember};
use crate::reports::ReportedJoin;

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
    pub reason: DeadLetterReason,
    pub payload: Bytes,
}

/// Why a message became a dead letter.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DeadLetterReason {
    /// The message breaks the bus's rules (`DecodeError`).
    #[error(transparent)]
    Invalid(#[from] DecodeError),
    /// PostgreSQL refused the message's effects, applied alone, twice: the error chain as
    /// the database gave it.
    #[error("refused by the database: {0}")]
    Refused(String),
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
    #[error("a reported join source or a found member without its member id")]
    NoMember,
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

/// A checked message and whether any of its times had to be clamped.
pub(crate) struct Checked {
    pub(crate) decoded: Decoded,
    pub(crate) times_clamped: bool,
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
    /// The member list's answer for a window after ingest was away: the members not already
    /// present are joins the gateway never delivered.
    MembersFound {
        window: MissedJoins,
        members: Vec<FoundMember>,
    },
    /// Discord's member search answered about members of the guild, or refused.
    JoinSources {
        reports: Vec<ReportedJoin>,
        refused: Option<(u16, String)>,
    },
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
    /// The members this step reads or changes.
    pub(crate) fn members(&self) -> impl Iterator<Item = UserId> + '_ {
        let (one, found): (Option<UserId>, &[FoundMember]) = match &self.action {
            Action::MemberAdd { user_id, .. } | Action::MemberRemove { user_id, .. } => {
                (Some(*user_id), &[])
            }
            Action::MembersFound { members, .. } => (None, members),
            Action::Invites { .. } | Action::Observe(_) | Action::JoinSources { .. } => (None, &[]),
        };
        one.into_iter().chain(found.iter().map(|m| m.user_id))
    }
}

/// Checks a message of partition `partition` and decodes it. Its times past `latest` (this
/// worker's clock plus [`crate::clock::MAX_CLOCK_AHEAD_MS`]) are pulled back to `latest`
/// (`docs/architecture.md#ingests-clock`): no time ahead of the truth may enter a guild's
/// state, where it would make every later join look overdue.
pub(crate) fn decode(
    layout: &BusLayout,
    partition: u32,
    message: &StreamMessage,
    latest: Millis,
) -> Result<Checked, DecodeError> {
    let (subject_partition, subject_guild) = layout
        .parse_guild_subject(&message.subject)
        .map_err(DecodeError::Subject)?;
    let mut event = decode_event(&message.payload).map_err(DecodeError::Payload)?;
    let times_clamped = clamp_times(&mut event, latest);
    let decoded = check(layout, partition, subject_partition, subject_guild, &event)?;
    Ok(Checked {
        decoded,
        times_clamped,
    })
}

/// Pulls every time of `event` that says when something happened back to `latest`; whether
/// any was later. (An invite's expiry is meant to be in the future and is left alone.)
fn clamp_times(event: &mut GuildEvent, latest: Millis) -> bool {
    let mut clamped = false;
    let mut clamp = |at: &mut Millis| {
        if *at > latest {
            *at = latest;
            clamped = true;
        }
    };
    clamp(&mut event.observed_at_ms);
    match &mut event.kind {
        Some(EventKind::MemberAdd(add)) => clamp(&mut add.joined_at_ms),
        Some(EventKind::MembersFound(found)) => {
            for member in &mut found.members {
                clamp(&mut member.joined_at_ms);
            }
        }
        Some(EventKind::InviteCreate(create)) => {
            if let Some(invite) = &mut create.invite {
                clamp(&mut invite.created_at_ms);
            }
        }
        Some(EventKind::InviteSnapshot(snapshot)) => {
            clamp(&mut snapshot.requested_at_ms);
            clamp(&mut snapshot.received_at_ms);
            for invite in &mut snapshot.invites {
                clamp(&mut invite.created_at_ms);
            }
        }
        Some(EventKind::SnapshotFailed(failed)) => {
            clamp(&mut failed.requested_at_ms);
            clamp(&mut failed.failed_at_ms);
        }
        _ => {}
    }
    clamped
}

fn check(
    layout: &BusLayout,
    partition: u32,
    subject_partition: u32,
    subject_guild: GuildKey,
    event: &GuildEvent,
) -> Result<Decoded, DecodeError> {
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
        (EventKind::MembersFound(found), _) => Action::MembersFound {
            window: MissedJoins {
                from: found.joined_from_ms,
                to: found.joined_to_ms,
            },
            members: convert::found_members(found)?,
        },
        (EventKind::GuildAvailable(_), _) => Action::Observe(Observation::GuildAvailable {
            at: event.observed_at_ms,
        }),
        (EventKind::JoinSourceReport(report), _) => Action::JoinSources {
            reports: convert::reported_joins(report)?,
            refused: (report.refused_status != 0).then(|| {
                (
                    u16::try_from(report.refused_status).unwrap_or(u16::MAX),
                    report.refused_detail.chars().take(200).collect(),
                )
            }),
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
    use invitrack_bus::proto::{
        GuildAvailable, InviteSnapshot, JoinSourceReport, MemberAdd, MemberRemove, MembersFound,
        ReportedJoin as ReportedJoinProto, ShardClock, guild_event::Kind,
    };
    use prost::Message as _;

    use super::*;

    /// The worker's clock plus the allowance, in these tests.
    const LATEST: Millis = 1_800_000_010_000;

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
            decode(
                &layout,
                0,
                &message(&layout, 0, &join(1_799_999_999_000)),
                LATEST
            )
            .map(|c| c.decoded),
            Ok(Decoded::Step(_))
        ));
        // PostgreSQL refuses -10^15 ms although chrono takes it: it once failed whole batches.
        for poison in [-1_000_000_000_000_000, 0] {
            assert!(matches!(
                decode(&layout, 0, &message(&layout, 0, &join(poison)), LATEST).map(|c| c.decoded),
                Err(DecodeError::Time(_))
            ));
        }
        // A time beyond the worker's clock is pulled back, not refused.
        let far = decode(&layout, 0, &message(&layout, 0, &join(i64::MAX)), LATEST).expect("valid");
        assert!(far.times_clamped);
    }

    #[test]
    fn reported_join_sources_are_checked_member_by_member() {
        let layout = BusLayout::new("decode-test", 1).expect("layout");
        let report = |code: &str, user_id: u64| GuildEvent {
            bot_id: 7,
            guild_id: 81_384_788_765_712_384,
            observed_at_ms: 1_800_000_000_000,
            shard_id: 0,
            kind: Some(Kind::JoinSourceReport(JoinSourceReport {
                requested_at_ms: 1_800_000_000_000,
                members: vec![ReportedJoinProto {
                    user_id,
                    joined_at_ms: 1_799_999_990_000,
                    join_source_type: 5,
                    source_invite_code: code.into(),
                    inviter_id: 9,
                }],
                refused_status: 0,
                refused_detail: String::new(),
            })),
        };
        let decoded =
            decode(&layout, 0, &message(&layout, 0, &report("abc", 42)), LATEST).map(|c| c.decoded);
        let Ok(Decoded::Step(Step {
            action: Action::JoinSources { reports, refused },
            ..
        })) = decoded
        else {
            panic!("a report step");
        };
        assert_eq!(refused, None);
        assert_eq!(reports.len(), 1);
        assert_eq!(
            reports[0].report.code.as_ref().map(InviteCode::as_str),
            Some("abc")
        );
        assert_eq!(
            reports[0].report.source,
            invitrack_model::DiscordJoinSource::Invite
        );
        // A code outside Discord's alphabet, or a member id of 0, is a dead letter.
        assert!(matches!(
            decode(&layout, 0, &message(&layout, 0, &report("a b", 42)), LATEST),
            Err(DecodeError::InviteCode(_))
        ));
        assert!(matches!(
            decode(&layout, 0, &message(&layout, 0, &report("abc", 0)), LATEST),
            Err(DecodeError::NoMember)
        ));
    }

    #[test]
    fn members_found_are_checked_member_by_member_and_keep_their_window() {
        let layout = BusLayout::new("decode-test", 1).expect("layout");
        let found = |user_id: u64, joined_at_ms: i64| GuildEvent {
            bot_id: 7,
            guild_id: 81_384_788_765_712_384,
            observed_at_ms: 1_800_000_000_000,
            shard_id: 0,
            kind: Some(Kind::MembersFound(MembersFound {
                joined_from_ms: 1_799_999_000_000,
                joined_to_ms: 1_799_999_990_000,
                members: vec![MemberAdd {
                    user_id,
                    joined_at_ms,
                    has_avatar: false,
                    bot: false,
                    flags: DID_REJOIN,
                }],
            })),
        };
        let decoded = decode(
            &layout,
            0,
            &message(&layout, 0, &found(42, 1_799_999_500_000)),
            LATEST,
        )
        .map(|c| c.decoded);
        let Ok(Decoded::Step(step)) = decoded else {
            panic!("a step");
        };
        assert_eq!(step.members().collect::<Vec<_>>(), vec![UserId::new(42)]);
        let Action::MembersFound { window, members } = step.action else {
            panic!("members found");
        };
        assert_eq!(
            (window.from, window.to),
            (1_799_999_000_000, 1_799_999_990_000)
        );
        assert!(members[0].flagged_rejoin);
        assert_eq!(members[0].joined_at_ms, 1_799_999_500_000);
        // A member id of 0, or a join time PostgreSQL refuses, is a dead letter.
        assert!(matches!(
            decode(
                &layout,
                0,
                &message(&layout, 0, &found(0, 1_799_999_500_000)),
                LATEST
            ),
            Err(DecodeError::NoMember)
        ));
        assert!(matches!(
            decode(&layout, 0, &message(&layout, 0, &found(42, 0)), LATEST),
            Err(DecodeError::Time(_))
        ));
        // GUILD_CREATE is an observation dated when ingest saw it.
        let available = GuildEvent {
            kind: Some(Kind::GuildAvailable(GuildAvailable {})),
            ..found(42, 1)
        };
        let decoded =
            decode(&layout, 0, &message(&layout, 0, &available), LATEST).map(|c| c.decoded);
        assert!(matches!(
            decoded,
            Ok(Decoded::Step(Step {
                action: Action::Observe(Observation::GuildAvailable {
                    at: 1_800_000_000_000
                }),
                ..
            }))
        ));
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
            decode(&layout, home, &message(&layout, home, &event), LATEST).map(|c| c.decoded),
            Ok(Decoded::Step(_))
        ));
        // On the other partition's subject, read by the other partition.
        assert!(matches!(
            decode(&layout, elsewhere, &message(&layout, elsewhere, &event), LATEST).map(|c| c.decoded),
            Err(DecodeError::WrongPartition { expected, partition, .. })
                if expected == home && partition == elsewhere
        ));
        // A subject that does not match the partition that reads it.
        assert!(matches!(
            decode(&layout, elsewhere, &message(&layout, home, &event), LATEST).map(|c| c.decoded),
            Err(DecodeError::WrongSubject { .. })
        ));
    }

    #[test]
    fn times_ahead_of_the_workers_clock_are_clamped() {
        let layout = BusLayout::new("decode-test", 1).expect("layout");
        let hour = 3_600_000;
        // A clock an hour ahead (forged, or an ingest host whose clock stepped forward).
        let clock = GuildEvent {
            bot_id: 7,
            guild_id: 0,
            observed_at_ms: LATEST + hour,
            shard_id: 0,
            kind: Some(Kind::ShardClock(ShardClock {
                partition: 0,
                shard_total: 2,
                first_shard: 0,
                last_shard: 1,
                delivery_lag_ms: None,
            })),
        };
        let checked = decode(&layout, 0, &message(&layout, 0, &clock), LATEST).expect("valid");
        assert!(checked.times_clamped);
        let Decoded::Clock(reading) = checked.decoded else {
            panic!("a clock")
        };
        let mut clocks = crate::clock::ShardClocks::default();
        clocks.advance(&reading);
        let guild = GuildKey::new(
            invitrack_model::BotId::new(7),
            invitrack_model::GuildId::new(1 << 22),
        );
        assert_eq!(clocks.clock_of(guild).map(|c| c.now), Some(LATEST));

        // A snapshot and a join from the future: every time is pulled back.
        let snapshot = GuildEvent {
            bot_id: 7,
            guild_id: 81_384_788_765_712_384,
            observed_at_ms: LATEST + hour,
            shard_id: 0,
            kind: Some(Kind::InviteSnapshot(InviteSnapshot {
                requested_at_ms: LATEST + hour - 200,
                received_at_ms: LATEST + hour - 50,
                invites: vec![],
                vanity: None,
            })),
        };
        let checked = decode(&layout, 0, &message(&layout, 0, &snapshot), LATEST).expect("valid");
        assert!(checked.times_clamped);
        let Decoded::Step(step) = checked.decoded else {
            panic!("a step")
        };
        assert_eq!(step.observed_at, LATEST);
        let Action::Invites {
            change:
                InviteEvent::Snapshot {
                    requested_at,
                    received_at,
                    ..
                },
            ..
        } = step.action
        else {
            panic!("a snapshot")
        };
        assert_eq!(requested_at.timestamp_millis(), LATEST);
        assert_eq!(received_at.timestamp_millis(), LATEST);

        // On time: untouched.
        let on_time = GuildEvent {
            observed_at_ms: LATEST - 20_000,
            kind: Some(Kind::MemberRemove(MemberRemove { user_id: 42 })),
            ..snapshot
        };
        let checked = decode(&layout, 0, &message(&layout, 0, &on_time), LATEST).expect("valid");
        assert!(!checked.times_clamped);
    }
}
