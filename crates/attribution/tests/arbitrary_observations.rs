//! Robustness: observations no model of Discord would produce (time going backwards, counters
//! going down, deletes of unknown codes, snapshots that overlap, repeated joins, enormous uses)
//! must never make the engine panic, invent joins, decide a join twice or keep one forever,
//! and its state must survive the JSON round trip the worker stores it with.

use std::collections::BTreeSet;

use invitrack_attribution::{
    DeliveryClock, EngineConfig, GuildAttribution, InviteCode, InviteInfo, Observation,
    SnapshotFailure, UserId, VanityInfo,
};
use proptest::prelude::*;

const T0: i64 = 1_800_000_000_000;

fn code() -> impl Strategy<Value = InviteCode> {
    prop::sample::select(vec!["a", "b", "c", "d", "e"])
        .prop_map(|c| InviteCode::parse(c).expect("a valid code"))
}

fn invite() -> impl Strategy<Value = InviteInfo> {
    (
        code(),
        prop::option::of(1_u64..4),
        prop_oneof![0_u64..6, Just(u64::MAX)],
        0_u64..4,
        -5_000_i64..60_000,
        prop::option::of(-5_000_i64..60_000),
    )
        .prop_map(
            |(code, inviter, uses, max_uses, created, expires)| InviteInfo {
                code,
                inviter_id: inviter.map(UserId::new),
                uses,
                max_uses,
                created_at: T0 + created,
                expires_at: expires.map(|e| T0 + e),
            },
        )
}

fn observation() -> impl Strategy<Value = Observation> {
    prop_oneof![
        4 => (1_u64..40, -5_000_i64..60_000).prop_map(|(user, at)| Observation::MemberJoined {
            user_id: UserId::new(user),
            joined_at: T0 + at,
        }),
        1 => invite().prop_map(|invite| Observation::InviteCreated { invite }),
        1 => code().prop_map(|code| Observation::InviteDeleted { code }),
        3 => (
            -5_000_i64..60_000,
            0_i64..2_000,
            prop::collection::vec(invite(), 0..6),
            prop::option::of((prop::option::of(Just(InviteCode::parse("v").expect("a valid code"))), 0_u64..20)),
        )
            .prop_map(|(requested, took, invites, vanity)| Observation::Snapshot {
                requested_at: T0 + requested,
                received_at: T0 + requested + took,
                invites,
                vanity: vanity.map(|(code, uses)| VanityInfo { code, uses }),
            }),
        1 => (
            -5_000_i64..60_000,
            prop::sample::select(vec![
                SnapshotFailure::MissingPermissions,
                SnapshotFailure::Unavailable
            ]),
        )
            .prop_map(|(requested, failure)| Observation::SnapshotFailed {
                requested_at: T0 + requested,
                failure,
            }),
    ]
}

/// After an observation, perhaps a clock, with any measured lag: none, plausible, absurd.
fn clock_lag() -> impl Strategy<Value = Option<Option<i64>>> {
    prop::option::of(prop_oneof![
        Just(None),
        (0_i64..5_000).prop_map(Some),
        Just(Some(i64::MAX)),
        Just(Some(i64::MIN)),
    ])
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn any_observations_are_survived(
        steps in prop::collection::vec((observation(), -2_000_i64..70_000, clock_lag()), 0..60),
        skew in prop::sample::select(vec![0_i64, 100, 1_000]),
    ) {
        let config = EngineConfig { clock_skew_ms: skew, ..EngineConfig::default() };
        let mut engine = GuildAttribution::new();
        let mut pending: BTreeSet<UserId> = BTreeSet::new();
        let mut decided: BTreeSet<UserId> = BTreeSet::new();
        let mut check = |decisions: Vec<invitrack_attribution::Decision>,
                         pending: &mut BTreeSet<UserId>| -> Result<(), TestCaseError> {
            for d in decisions {
                // Only joins that were observed and not yet decided can be decided.
                prop_assert!(pending.remove(&d.user_id), "decided twice or never seen: {d:?}");
                decided.insert(d.user_id);
            }
            Ok(())
        };
        for (observation, at, clock_lag) in steps {
            if let Observation::MemberJoined { user_id, .. } = &observation {
                pending.insert(*user_id);
            }
            let decisions = engine.observe(&config, observation, T0 + at);
            check(decisions, &mut pending)?;
            if let Some(delivery_lag) = clock_lag {
                let clock = DeliveryClock { now: T0 + at, delivery_lag };
                check(engine.tick(&config, clock), &mut pending)?;
            }
            let stored = serde_json::to_string(&engine).expect("state serializes");
            let restored: GuildAttribution = serde_json::from_str(&stored).expect("and back");
            prop_assert_eq!(&restored, &engine);
        }
        // However strange the history, every join is decided once nothing can change anymore.
        let end = T0 + 70_000 + config.max_pending_ms + config.gateway_lag_ms + 10_000;
        let clock = DeliveryClock { now: end, delivery_lag: None };
        check(engine.tick(&config, clock), &mut pending)?;
        prop_assert!(pending.is_empty(), "never decided: {pending:?}");
        prop_assert_eq!(engine.pending_joins(), 0);
    }
}
