//! One test per attribution rule of `docs/attribution.md#rules`, driven through the public API with explicit times.

use invitrack_attribution::{
    Decision, DeliveryClock, DiscordJoinSource, EngineConfig, GuildAttribution, InviteCode,
    InviteInfo, Judgement, MissedJoins, Observation, ReportedSource, SnapshotFailure,
    UnknownReason, UserId, VanityInfo, Verdict,
};

const T0: i64 = 1_800_000_000_000;
const ALICE: UserId = UserId::new(1);
const BOB: UserId = UserId::new(2);
const UNTRACKED: Verdict = Verdict::Unknown {
    reason: UnknownReason::Untracked,
};

fn invite(code: &str, inviter: UserId, uses: u64, max_uses: u64) -> InviteInfo {
    InviteInfo {
        code: c(code),
        inviter_id: Some(inviter),
        uses,
        max_uses,
        created_at: T0 - 100_000,
        expires_at: None,
    }
}

/// Drives one guild: observations at explicit times, then time passes.
struct Guild {
    engine: GuildAttribution,
    config: EngineConfig,
    decisions: Vec<Decision>,
}

impl Guild {
    fn new(invites: Vec<InviteInfo>, vanity_uses: Option<u64>) -> Self {
        let mut guild = Self {
            engine: GuildAttribution::new(),
            config: EngineConfig::default(),
            decisions: Vec::new(),
        };
        guild.snapshot(T0 - 1_000, invites, vanity_uses);
        guild
    }

    fn at(&mut self, now: i64, observation: Observation) {
        let new = self.engine.observe(&self.config, observation, now);
        self.decisions.extend(new);
    }

    fn join(&mut self, user: u64, joined_at: i64) {
        self.at(
            joined_at + 80,
            Observation::MemberJoined {
                user_id: UserId::new(user),
                joined_at,
            },
        );
    }

    /// A snapshot requested at `requested_at` and answered 150 ms later.
    fn snapshot(&mut self, requested_at: i64, invites: Vec<InviteInfo>, vanity_uses: Option<u64>) {
        self.at(
            requested_at + 150,
            Observation::Snapshot {
                requested_at,
                received_at: requested_at + 150,
                invites,
                vanity: vanity_uses.map(|uses| VanityInfo {
                    code: Some(c("vanity")),
                    uses,
                }),
            },
        );
    }

    /// Time passes up to `now`, with no measured delivery lag (the fixed allowance).
    fn settle(&mut self, now: i64) -> &[Decision] {
        self.settle_measured(now, None)
    }

    /// Time passes up to `now` by a clock that measured `delivery_lag`.
    fn settle_measured(&mut self, now: i64, delivery_lag: Option<i64>) -> &[Decision] {
        let clock = DeliveryClock { now, delivery_lag };
        let new = self.engine.tick(&self.config, clock);
        self.decisions.extend(new);
        &self.decisions
    }

    fn verdict(&self, user: u64) -> &Verdict {
        &self
            .decisions
            .iter()
            .find(|d| d.user_id == UserId::new(user))
            .unwrap_or_else(|| panic!("user {user} undecided; decisions: {:?}", self.decisions))
            .verdict
    }
}

fn code(code: &str, inviter: UserId) -> Verdict {
    Verdict::Invite {
        code: c(code),
        inviter_id: Some(inviter),
    }
}

#[test]
fn a_lone_join_gets_the_code_whose_uses_went_up() {
    let mut g = Guild::new(vec![invite("a", ALICE, 3, 0), invite("b", BOB, 5, 0)], None);
    g.join(10, T0);
    g.snapshot(
        T0 + 200,
        vec![invite("a", ALICE, 3, 0), invite("b", BOB, 6, 0)],
        None,
    );
    g.settle(T0 + 5_000);
    assert_eq!(g.verdict(10), &code("b", BOB));
}

#[test]
fn nothing_is_decided_before_late_joins_could_have_arrived() {
    let mut g = Guild::new(vec![invite("a", ALICE, 0, 0)], None);
    g.join(10, T0);
    g.snapshot(T0 + 200, vec![invite("a", ALICE, 1, 0)], None);
    assert!(
        g.settle(T0 + 500).is_empty(),
        "a second join at T0 may still be on its way"
    );
    g.settle(T0 + 5_000);
    assert_eq!(g.verdict(10), &code("a", ALICE));
}

#[test]
fn the_allowance_follows_the_measured_lag_with_headroom_and_a_floor() {
    let config = EngineConfig::default();
    assert_eq!(config.gateway_lag_allowance(None), config.gateway_lag_ms);
    assert_eq!(
        config.gateway_lag_allowance(Some(100)),
        config.min_gateway_lag_ms
    );
    assert_eq!(config.gateway_lag_allowance(Some(400)), 600);
    // A forged or absurd measurement waits no longer than a join may stay undecided.
    assert_eq!(
        config.gateway_lag_allowance(Some(i64::MAX)),
        config.max_pending_ms
    );

    // A use read at T0 + 350 is decided once the floor (250 ms) and the skew (50 ms) passed.
    let mut g = Guild::new(vec![invite("a", ALICE, 0, 0)], None);
    g.join(10, T0);
    g.snapshot(T0 + 200, vec![invite("a", ALICE, 1, 0)], None);
    assert!(g.settle_measured(T0 + 650, Some(120)).is_empty());
    g.settle_measured(T0 + 651, Some(120));
    assert_eq!(g.verdict(10), &code("a", ALICE));

    // A measured lag of 1 s waits 1.5 s.
    let mut g = Guild::new(vec![invite("a", ALICE, 0, 0)], None);
    g.join(10, T0);
    g.snapshot(T0 + 200, vec![invite("a", ALICE, 1, 0)], None);
    assert!(g.settle_measured(T0 + 1_900, Some(1_000)).is_empty());
    g.settle_measured(T0 + 1_901, Some(1_000));
    assert_eq!(g.verdict(10), &code("a", ALICE));
}

#[test]
fn observations_do_not_let_time_pass() {
    // A snapshot answered while the guild's shard reconnects (its clock stopped) proves nothing
    // about joins the shard has yet to replay: only the shard's clock lets time pass.
    let mut g = Guild::new(vec![invite("a", ALICE, 0, 0)], None);
    g.settle_measured(T0 + 100, Some(100));
    g.join(10, T0);
    g.snapshot(T0 + 200, vec![invite("a", ALICE, 1, 0)], None);
    g.snapshot(T0 + 9_000, vec![invite("a", ALICE, 2, 0)], None);
    assert!(g.decisions.is_empty());
    // The replayed join of the second use arrives, then the shard's clock moves again.
    g.join(11, T0 + 8_000);
    g.settle_measured(T0 + 10_000, Some(100));
    assert_eq!(g.verdict(10), &code("a", ALICE));
    assert_eq!(g.verdict(11), &code("a", ALICE));
}

#[test]
fn two_joins_and_one_use_credit_nobody_with_the_code() {
    let mut g = Guild::new(vec![invite("a", ALICE, 0, 0)], None);
    g.join(10, T0);
    g.join(11, T0 + 50);
    g.snapshot(T0 + 300, vec![invite("a", ALICE, 1, 0)], None);
    g.settle(T0 + 5_000);
    for user in [10, 11] {
        assert!(
            matches!(g.verdict(user), Verdict::Ambiguous { inviter_id: None, candidates } if candidates == &["a"]),
            "{:?}",
            g.verdict(user)
        );
    }
}

#[test]
fn two_joins_through_two_codes_of_one_inviter_credit_the_inviter() {
    let mut g = Guild::new(
        vec![invite("a", ALICE, 0, 0), invite("b", ALICE, 0, 0)],
        None,
    );
    g.join(10, T0);
    g.join(11, T0 + 50);
    g.snapshot(
        T0 + 300,
        vec![invite("a", ALICE, 1, 0), invite("b", ALICE, 1, 0)],
        None,
    );
    g.settle(T0 + 5_000);
    for user in [10, 11] {
        assert_eq!(
            g.verdict(user),
            &Verdict::Ambiguous {
                candidates: vec![c("a"), c("b")],
                inviter_id: Some(ALICE)
            }
        );
    }
}

#[test]
fn the_vanity_counter_is_evidence_and_silence_is_not() {
    let mut g = Guild::new(vec![invite("a", ALICE, 0, 0)], Some(7));
    g.join(10, T0);
    g.snapshot(T0 + 200, vec![invite("a", ALICE, 0, 0)], Some(8));
    g.join(11, T0 + 2_000);
    g.snapshot(T0 + 2_200, vec![invite("a", ALICE, 0, 0)], Some(8));
    g.settle(T0 + 8_000);
    assert_eq!(g.verdict(10), &Verdict::Vanity { code: c("vanity") });
    // Nothing moved: not "the vanity URL", but untracked.
    assert_eq!(g.verdict(11), &UNTRACKED);
}

#[test]
fn an_invite_deleted_at_its_last_use_was_used() {
    let mut g = Guild::new(
        vec![invite("one", BOB, 0, 1), invite("a", ALICE, 0, 0)],
        None,
    );
    g.join(10, T0);
    g.at(T0 + 90, Observation::InviteDeleted { code: c("one") });
    g.snapshot(T0 + 200, vec![invite("a", ALICE, 0, 0)], None);
    g.settle(T0 + 5_000);
    assert_eq!(g.verdict(10), &code("one", BOB));
}

#[test]
fn an_invite_missing_from_a_snapshot_at_its_last_use_was_used() {
    let mut g = Guild::new(vec![invite("five", BOB, 4, 5)], None);
    g.join(10, T0);
    g.snapshot(T0 + 200, vec![], None);
    g.settle(T0 + 5_000);
    assert_eq!(g.verdict(10), &code("five", BOB));
}

#[test]
fn expired_and_moderator_deleted_invites_are_not_uses() {
    let mut expiring = invite("exp", BOB, 0, 1);
    expiring.expires_at = Some(T0 + 100);
    let mut g = Guild::new(vec![expiring, invite("mod", ALICE, 1, 5)], None);
    g.join(10, T0 + 150);
    // "mod" deleted by a moderator with uses left; "exp" expired.
    g.at(T0 + 160, Observation::InviteDeleted { code: c("mod") });
    g.snapshot(T0 + 400, vec![], None);
    g.settle(T0 + 5_000);
    assert_eq!(g.verdict(10), &UNTRACKED);
}

#[test]
fn an_invite_created_after_the_last_snapshot_counts_from_zero() {
    let mut g = Guild::new(vec![], None);
    let mut fresh = invite("new", ALICE, 0, 0);
    fresh.created_at = T0 - 500;
    g.at(
        T0 - 400,
        Observation::InviteCreated {
            invite: fresh.clone(),
        },
    );
    g.join(10, T0);
    g.snapshot(T0 + 200, vec![InviteInfo { uses: 1, ..fresh }], None);
    g.settle(T0 + 5_000);
    assert_eq!(g.verdict(10), &code("new", ALICE));
}

#[test]
fn an_invite_never_seen_but_created_since_the_last_snapshot_counts_too() {
    let mut g = Guild::new(vec![], None);
    let mut unseen = invite("new", ALICE, 1, 0);
    unseen.created_at = T0 - 500;
    g.join(10, T0);
    g.snapshot(T0 + 200, vec![unseen], None);
    g.settle(T0 + 5_000);
    assert_eq!(g.verdict(10), &code("new", ALICE));
}

#[test]
fn a_late_invite_create_does_not_reset_what_a_snapshot_showed() {
    let mut g = Guild::new(vec![], None);
    let mut fresh = invite("new", ALICE, 2, 0);
    fresh.created_at = T0 - 500;
    g.snapshot(T0 - 300, vec![fresh.clone()], None);
    g.at(
        T0 - 100,
        Observation::InviteCreated {
            invite: InviteInfo {
                uses: 0,
                ..fresh.clone()
            },
        },
    );
    g.join(10, T0);
    // uses 2 → 2: the join did not come through "new".
    g.snapshot(T0 + 200, vec![fresh], None);
    g.settle(T0 + 5_000);
    assert_eq!(g.verdict(10), &UNTRACKED);
}

#[test]
fn an_invite_known_only_from_invite_create_is_not_vanished_by_an_older_answer() {
    let mut g = Guild::new(vec![], None);
    let mut fresh = invite("new", ALICE, 0, 1);
    fresh.created_at = T0 + 100;
    g.at(
        T0 + 120,
        Observation::InviteCreated {
            invite: fresh.clone(),
        },
    );
    // This answer was produced before the invite existed.
    g.snapshot(T0 + 50, vec![], None);
    g.join(10, T0 + 1_000);
    g.snapshot(T0 + 1_200, vec![InviteInfo { uses: 1, ..fresh }], None);
    g.settle(T0 + 6_000);
    assert_eq!(g.verdict(10), &code("new", ALICE));
}

#[test]
fn a_repeated_member_add_is_a_no_op() {
    let mut g = Guild::new(vec![invite("a", ALICE, 0, 0)], None);
    g.join(10, T0);
    g.join(10, T0);
    g.snapshot(T0 + 200, vec![invite("a", ALICE, 1, 0)], None);
    g.settle(T0 + 5_000);
    assert_eq!(g.decisions.len(), 1);
    assert_eq!(g.verdict(10), &code("a", ALICE));
}

#[test]
fn joins_before_the_first_snapshot_are_unknown_and_cannot_steal_later_evidence() {
    let mut g = Guild {
        engine: GuildAttribution::new(),
        config: EngineConfig::default(),
        decisions: Vec::new(),
    };
    g.join(10, T0);
    // The baseline is read while the first join's use may or may not be counted.
    g.snapshot(T0 - 50, vec![invite("a", ALICE, 0, 0)], None);
    g.join(11, T0 + 2_000);
    // Not counted in the baseline: "a" moves now, but it could be 10's use, not 11's.
    g.snapshot(T0 + 2_200, vec![invite("a", ALICE, 1, 0)], None);
    g.settle(T0 + 8_000);
    assert_eq!(
        g.verdict(10),
        &Verdict::Unknown {
            reason: UnknownReason::NoSnapshot
        }
    );
    assert!(
        !matches!(g.verdict(11), Verdict::Invite { .. }),
        "{:?}",
        g.verdict(11)
    );
}

#[test]
fn without_manage_guild_joins_are_unknown_for_that_reason() {
    let mut g = Guild::new(vec![invite("a", ALICE, 0, 0)], None);
    g.join(10, T0);
    g.at(
        T0 + 400,
        Observation::SnapshotFailed {
            requested_at: T0 + 200,
            failure: SnapshotFailure::MissingPermissions,
        },
    );
    g.join(11, T0 + 1_000);
    assert_eq!(
        g.verdict(10),
        &Verdict::Unknown {
            reason: UnknownReason::MissingPermissions
        }
    );
    assert_eq!(
        g.verdict(11),
        &Verdict::Unknown {
            reason: UnknownReason::MissingPermissions
        }
    );
    assert!(g.engine.missing_permissions());
}

#[test]
fn a_join_whose_evidence_never_comes_is_given_up() {
    let mut g = Guild::new(vec![invite("a", ALICE, 0, 0)], None);
    g.join(10, T0);
    g.settle(T0 + EngineConfig::default().max_pending_ms + 1);
    assert_eq!(
        g.verdict(10),
        &Verdict::Unknown {
            reason: UnknownReason::NoSnapshot
        }
    );
}

#[test]
fn state_survives_serialization() {
    let mut g = Guild::new(vec![invite("a", ALICE, 0, 0)], None);
    g.join(10, T0);
    g.snapshot(T0 + 200, vec![invite("a", ALICE, 1, 0)], None);
    let json = serde_json::to_string(&g.engine).expect("serializes");
    g.engine = serde_json::from_str(&json).expect("deserializes");
    g.settle(T0 + 5_000);
    assert_eq!(g.verdict(10), &code("a", ALICE));
}

#[test]
fn a_state_whose_time_ran_ahead_heals_when_clamped() {
    let mut g = Guild::new(vec![invite("a", ALICE, 0, 0)], None);
    // A clock an hour ahead reached the guild: its time is now in the future.
    g.settle(T0 + 3_600_000);
    g.join(10, T0 + 1_000);
    g.snapshot(T0 + 1_200, vec![invite("a", ALICE, 1, 0)], None);
    g.settle(T0 + 6_000);
    assert!(
        matches!(g.verdict(10), Verdict::Unknown { .. }),
        "a poisoned guild gives every join up: {:?}",
        g.verdict(10)
    );

    assert!(g.engine.clamp_times(T0 + 10_000));
    assert!(!g.engine.clamp_times(T0 + 10_000), "nothing left ahead");
    g.join(11, T0 + 10_000);
    g.snapshot(T0 + 10_200, vec![invite("a", ALICE, 2, 0)], None);
    g.settle(T0 + 15_000);
    assert_eq!(g.verdict(11), &code("a", ALICE));
}

fn c(code: &str) -> InviteCode {
    InviteCode::parse(code).expect("a valid code")
}

// Discord's reported source (docs/attribution.md#discords-reported-source).

fn reported(source: DiscordJoinSource, code: Option<&str>) -> ReportedSource {
    ReportedSource {
        source,
        code: code.map(c),
        inviter_id: None,
    }
}

impl Guild {
    fn judge(&self, user: u64, joined_at: i64, report: &ReportedSource) -> Judgement {
        self.engine
            .judge_report(&self.config, joined_at, self.verdict(user), report)
    }
}

/// Two joins at once, each through another invite: one read counts both. A third invite
/// stays unused.
fn two_joins_in_one_read() -> Guild {
    let unused = invite("c", UserId::new(3), 7, 0);
    let mut g = Guild::new(
        vec![
            invite("a", ALICE, 0, 0),
            invite("b", BOB, 0, 0),
            unused.clone(),
        ],
        None,
    );
    g.join(10, T0);
    g.join(11, T0 + 20);
    g.snapshot(
        T0 + 200,
        vec![invite("a", ALICE, 1, 0), invite("b", BOB, 1, 0), unused],
        None,
    );
    g.settle(T0 + 5_000);
    g
}

#[test]
fn a_reported_code_among_the_candidates_decides_an_ambiguous_join() {
    let g = two_joins_in_one_read();
    assert!(matches!(g.verdict(10), Verdict::Ambiguous { .. }));
    // Discord's inviter is not taken over the guild's own record of the invite.
    let report = ReportedSource {
        inviter_id: Some(UserId::new(99)),
        ..reported(DiscordJoinSource::Invite, Some("b"))
    };
    assert_eq!(g.judge(10, T0, &report), Judgement::Credits(code("b", BOB)));
}

#[test]
fn a_reported_code_the_counters_exclude_is_a_disagreement() {
    let g = two_joins_in_one_read();
    // "c" was read before and after the join and did not move.
    let watched = reported(DiscordJoinSource::Invite, Some("c"));
    assert_eq!(g.judge(10, T0, &watched), Judgement::Contradicts);
    // A code the counters never saw cannot be checked: neither taken nor held against them.
    let unseen = reported(DiscordJoinSource::Invite, Some("zzz"));
    assert_eq!(g.judge(10, T0, &unseen), Judgement::Uninformative);
}

#[test]
fn a_forced_code_is_confirmed_or_contradicted_never_replaced() {
    let mut g = Guild::new(vec![invite("a", ALICE, 3, 0), invite("b", BOB, 5, 0)], None);
    g.join(10, T0);
    g.snapshot(
        T0 + 200,
        vec![invite("a", ALICE, 3, 0), invite("b", BOB, 6, 0)],
        None,
    );
    g.settle(T0 + 5_000);
    let b = reported(DiscordJoinSource::Invite, Some("b"));
    assert_eq!(g.judge(10, T0, &b), Judgement::Confirms);
    let a = reported(DiscordJoinSource::Invite, Some("a"));
    assert_eq!(g.judge(10, T0, &a), Judgement::Contradicts);
    let discovery = reported(DiscordJoinSource::Discovery, None);
    assert_eq!(g.judge(10, T0, &discovery), Judgement::Contradicts);
    let unsaid = reported(DiscordJoinSource::Unknown, None);
    assert_eq!(g.judge(10, T0, &unsaid), Judgement::Uninformative);
}

#[test]
fn an_untracked_join_is_credited_only_with_a_code_the_counters_did_not_watch() {
    let mut g = Guild::new(vec![invite("a", ALICE, 3, 0)], None);
    g.join(10, T0);
    g.snapshot(T0 + 200, vec![invite("a", ALICE, 3, 0)], None);
    g.settle(T0 + 5_000);
    assert_eq!(g.verdict(10), &UNTRACKED);
    // "a" was read before and after the join without moving.
    let watched = reported(DiscordJoinSource::Invite, Some("a"));
    assert_eq!(g.judge(10, T0, &watched), Judgement::Contradicts);
    // A one-use invite created and used up between the two reads was never seen.
    let unseen = ReportedSource {
        inviter_id: Some(BOB),
        ..reported(DiscordJoinSource::Invite, Some("once"))
    };
    assert_eq!(
        g.judge(10, T0, &unseen),
        Judgement::Credits(code("once", BOB))
    );
    let discovery = reported(DiscordJoinSource::Discovery, None);
    assert_eq!(g.judge(10, T0, &discovery), Judgement::Confirms);
}

#[test]
fn a_join_before_the_first_read_takes_the_reported_code() {
    let mut g = Guild {
        engine: GuildAttribution::new(),
        config: EngineConfig::default(),
        decisions: Vec::new(),
    };
    g.join(10, T0);
    g.snapshot(T0 + 200, vec![invite("a", ALICE, 4, 0)], None);
    g.settle(T0 + 5_000);
    assert_eq!(
        g.verdict(10),
        &Verdict::Unknown {
            reason: UnknownReason::NoSnapshot
        }
    );
    let a = reported(DiscordJoinSource::Invite, Some("a"));
    assert_eq!(g.judge(10, T0, &a), Judgement::Credits(code("a", ALICE)));
}

#[test]
fn an_ambiguous_join_of_one_inviter_cannot_be_a_discovery_join() {
    let mut g = Guild::new(
        vec![invite("a", ALICE, 0, 0), invite("b", ALICE, 0, 0)],
        None,
    );
    g.join(10, T0);
    g.join(11, T0 + 20);
    g.snapshot(
        T0 + 200,
        vec![invite("a", ALICE, 1, 0), invite("b", ALICE, 1, 0)],
        None,
    );
    g.settle(T0 + 5_000);
    assert!(matches!(
        g.verdict(10),
        Verdict::Ambiguous {
            inviter_id: Some(_),
            ..
        }
    ));
    let discovery = reported(DiscordJoinSource::Discovery, None);
    assert_eq!(g.judge(10, T0, &discovery), Judgement::Contradicts);
    let b = reported(DiscordJoinSource::Invite, Some("b"));
    assert_eq!(g.judge(10, T0, &b), Judgement::Credits(code("b", ALICE)));
}

impl Guild {
    /// The member list's answer at `now`, for the whole of the test's time: `(member,
    /// joined_at)` of the members found.
    fn found_late(&mut self, now: i64, joins: &[(u64, i64)]) {
        self.at(
            now,
            Observation::JoinsFoundLate {
                window: MissedJoins {
                    from: T0 - 100_000,
                    to: now,
                },
                joins: joins
                    .iter()
                    .map(|(user, joined_at)| (UserId::new(*user), *joined_at))
                    .collect(),
            },
        );
    }
}

/// The bot was away from `T0` to `T0 + 60 s`: its first read after the gap, requested at
/// `T0 + 61 s`, shows `a` used twice and `b` once more; nobody's join was delivered.
fn away_for_a_minute() -> Guild {
    let mut g = Guild::new(vec![invite("a", ALICE, 3, 0), invite("b", BOB, 5, 0)], None);
    g.snapshot(
        T0 + 61_000,
        vec![invite("a", ALICE, 5, 0), invite("b", BOB, 6, 0)],
        None,
    );
    g
}

#[test]
fn uses_no_join_explains_are_kept_and_their_joins_asked_for() {
    let mut g = away_for_a_minute();
    g.settle(T0 + 70_000);
    let wanted = g
        .engine
        .missed_joins_wanted()
        .expect("the missed joins are asked for");
    assert!(
        wanted.from <= T0 - 1_000 && wanted.to >= T0 + 61_150,
        "{wanted:?}"
    );
    assert!(g.engine.has_pending(), "the uses are kept");
    // Asked once per retry interval, not at every tick.
    g.settle(T0 + 80_000);
    assert_eq!(g.engine.missed_joins_wanted(), None);
    g.settle(T0 + 70_000 + invitrack_attribution::MISSED_JOINS_RETRY_MS);
    assert_eq!(g.engine.missed_joins_wanted(), Some(wanted));
    // After `max_pending_ms` they are dropped and nothing is asked for any more.
    g.settle(T0 + 61_150 + g.config.max_pending_ms + 10_000);
    assert!(!g.engine.has_pending());
    assert_eq!(g.engine.missed_joins_wanted(), None);
}

#[test]
fn joins_found_late_are_credited_only_where_the_counters_force_it() {
    let mut g = away_for_a_minute();
    g.settle(T0 + 70_000);
    // Three members joined while away: two through `a` and one through `b`, but only the
    // counters say which; with `a` moved twice and `b` once, nobody is forced...
    g.found_late(
        T0 + 71_000,
        &[(10, T0 + 10_000), (11, T0 + 20_000), (12, T0 + 30_000)],
    );
    g.settle(T0 + 75_000);
    for user in [10, 11, 12] {
        assert_eq!(
            g.verdict(user),
            &Verdict::Ambiguous {
                candidates: vec![c("a"), c("b")],
                inviter_id: None,
            }
        );
    }
    assert!(!g.engine.has_pending(), "the uses were spent on them");
}

#[test]
fn one_code_moved_by_exactly_the_joins_found_credits_it() {
    let mut g = Guild::new(vec![invite("a", ALICE, 3, 0), invite("b", BOB, 5, 0)], None);
    g.snapshot(
        T0 + 61_000,
        vec![invite("a", ALICE, 5, 0), invite("b", BOB, 5, 0)],
        None,
    );
    g.settle(T0 + 70_000);
    g.found_late(T0 + 71_000, &[(10, T0 + 10_000)]);
    assert!(
        g.decisions.is_empty(),
        "one join found for two uses: the other may still be found"
    );
    g.found_late(T0 + 72_000, &[(10, T0 + 10_000), (11, T0 + 20_000)]);
    g.settle(T0 + 72_000);
    assert_eq!(g.verdict(10), &code("a", ALICE));
    assert_eq!(g.verdict(11), &code("a", ALICE));
}

#[test]
fn a_join_found_late_that_no_counter_explains_joined_while_offline() {
    let mut g = away_for_a_minute();
    g.settle(T0 + 70_000);
    // Joined before the gap's read window: no use can be theirs.
    g.found_late(T0 + 71_000, &[(10, T0 - 50_000)]);
    g.settle(T0 + 72_000);
    assert_eq!(
        g.verdict(10),
        &Verdict::Unknown {
            reason: UnknownReason::JoinedWhileOffline,
        }
    );
}

#[test]
fn a_join_found_late_that_was_delivered_is_not_counted_twice() {
    let mut g = Guild::new(vec![invite("a", ALICE, 3, 0)], None);
    g.join(10, T0);
    g.found_late(T0 + 100, &[(10, T0)]);
    g.snapshot(T0 + 200, vec![invite("a", ALICE, 4, 0)], None);
    g.settle(T0 + 5_000);
    assert_eq!(g.decisions.len(), 1, "{:?}", g.decisions);
    assert_eq!(g.verdict(10), &code("a", ALICE));
}

#[test]
fn a_live_join_beside_unexplained_uses_waits_for_the_missed_ones_then_is_not_guessed() {
    let mut g = Guild::new(vec![invite("a", ALICE, 3, 0), invite("b", BOB, 5, 0)], None);
    // One member joined while away through `a`, one just after the bot came back through `b`:
    // the first read after the gap counts both.
    g.join(10, T0 + 60_500);
    g.snapshot(
        T0 + 61_000,
        vec![invite("a", ALICE, 4, 0), invite("b", BOB, 6, 0)],
        None,
    );
    g.settle(T0 + 70_000);
    assert!(g.decisions.is_empty(), "two uses, one join: held");
    assert!(g.engine.missed_joins_wanted().is_some());
    // Never found (they left, or the member list could not be read): decided without a guess.
    g.settle(T0 + 61_150 + g.config.max_pending_ms + 1);
    assert_eq!(
        g.verdict(10),
        &Verdict::Ambiguous {
            candidates: vec![c("a"), c("b")],
            inviter_id: None,
        }
    );
}

#[test]
fn after_a_gap_no_use_is_spent_before_the_member_list_is_read() {
    // Alice's join is delivered after the bot is back; Bob's, made while it was away through
    // `b`, never is. The first read counts both: one use each, so the counts balance, yet
    // Alice could be given `b` if Bob were not looked for.
    let mut g = Guild::new(vec![invite("a", ALICE, 3, 0), invite("b", BOB, 5, 0)], None);
    g.at(T0 + 60_000, Observation::GuildAvailable { at: T0 + 60_000 });
    g.join(10, T0 + 60_500);
    g.snapshot(
        T0 + 61_000,
        vec![invite("a", ALICE, 4, 0), invite("b", BOB, 6, 0)],
        None,
    );
    g.join(11, T0 + 60_700);
    g.settle(T0 + 70_000);
    assert!(g.decisions.is_empty(), "held until the member list is read");
    let wanted = g.engine.missed_joins_wanted().expect("asked for");
    assert!(
        wanted.from <= T0 + 30_000 && wanted.to >= T0 + 61_000,
        "{wanted:?}"
    );
    // The answer: Bob (who joined while away); Alice and 11 were delivered.
    g.found_late(T0 + 71_000, &[(12, T0 + 30_000)]);
    g.settle(T0 + 72_000);
    assert_eq!(g.decisions.len(), 3, "{:?}", g.decisions);
    for user in [10, 11, 12] {
        assert!(
            matches!(g.verdict(user), Verdict::Ambiguous { .. }),
            "{user}: {:?}",
            g.verdict(user)
        );
    }
}

#[test]
fn after_a_gap_a_read_without_uses_lets_decisions_go_on() {
    let mut g = Guild::new(vec![invite("a", ALICE, 3, 0)], None);
    g.at(T0 + 60_000, Observation::GuildAvailable { at: T0 + 60_000 });
    g.snapshot(T0 + 60_100, vec![invite("a", ALICE, 3, 0)], None);
    g.join(10, T0 + 61_000);
    g.snapshot(T0 + 61_200, vec![invite("a", ALICE, 4, 0)], None);
    g.settle(T0 + 66_000);
    assert_eq!(g.engine.missed_joins_wanted(), None);
    assert_eq!(g.verdict(10), &code("a", ALICE));
}

#[test]
fn after_a_gap_nobody_is_credited_when_the_member_list_never_answers() {
    let mut g = Guild::new(vec![invite("a", ALICE, 3, 0)], None);
    g.at(T0 + 60_000, Observation::GuildAvailable { at: T0 + 60_000 });
    g.join(10, T0 + 60_500);
    g.snapshot(T0 + 61_000, vec![invite("a", ALICE, 4, 0)], None);
    g.settle(T0 + 70_000);
    assert!(g.decisions.is_empty());
    g.settle(T0 + 61_150 + g.config.max_pending_ms + 1);
    assert_eq!(
        g.verdict(10),
        &Verdict::Ambiguous {
            candidates: vec![c("a")],
            inviter_id: None,
        }
    );
}
