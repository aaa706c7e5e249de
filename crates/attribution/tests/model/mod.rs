//! A discrete-event model of one Discord guild and of what a bot running invitrack observes of
//! it (`docs/attribution.md#the-model`): joins through invites, the vanity URL or no trackable path;
//! limited invites that vanish at their last use and come back later with a new code; gateway
//! events that arrive late; invite fetches that read the counters somewhere inside their
//! request window, coalesced and spaced as ingest does; ingest's clock, which stops while the
//! shard reconnects and carries the delivery lag ingest measured. Adversarial delivery on
//! demand: lag spikes beyond the measured quantile, reconnects whose resume replays the joins
//! missed meanwhile, a shard dropped right after a join. It yields the observations and clocks
//! in the order the bot sees them, and the truth to score decisions against.

#![allow(dead_code)]

use std::collections::BTreeMap;

use invitrack_attribution::{
    Decision, DeliveryClock, EngineConfig, GuildAttribution, InviteCode, InviteInfo, MissedJoins,
    Observation, UserId, VanityInfo, Verdict,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

#[derive(Debug, Clone)]
pub struct ModelSpec {
    pub seed: u64,
    pub joins: usize,
    pub joins_per_second: f64,
    pub invites: usize,
    pub inviters: usize,
    pub limited_invites: usize,
    pub vanity_share: f64,
    pub untracked_share: f64,
    /// Gateway delivery delay range, ms.
    pub gateway_delay: (i64, i64),
    /// Invite fetch duration range, ms.
    pub fetch_duration: (i64, i64),
    /// The counter moves up to this long after `joined_at`, ms.
    pub counter_delay_max: i64,
    /// Ingest waits this long after `joined_at` before fetching.
    pub settle_ms: i64,
    /// The invite route's limit per guild: this many requests per window.
    pub route_limit: (usize, i64),
    /// A raid: (index of its first join, joins, codes used, duration ms).
    pub raid: Option<(usize, usize, usize, i64)>,
    /// The vanity URL is a request of its own, as on Discord, read and answered after its own
    /// latency; the snapshot is received when both answers are. Off: one read of both, as in
    /// the model of `docs/attribution.md#the-model`.
    pub separate_vanity_read: bool,
    /// Adversarial delivery; `None`: every event arrives after `gateway_delay` alone.
    pub adversity: Option<Adversity>,
    /// The bot goes away (its session lost, not resumed) when join `.0` is made, for `.1` ms:
    /// gateway events due meanwhile are never delivered; on its return ingest reads the
    /// invites at once and, `FOUND_AFTER_MS` later, the member list gives the joins it missed.
    pub away: Option<(usize, i64)>,
}

/// How long after the bot's return the joins it missed are found in the member list.
pub const FOUND_AFTER_MS: i64 = 3_000;

/// What can go wrong between Discord and ingest.
#[derive(Debug, Clone)]
pub struct Adversity {
    /// This share of gateway events is delayed by up to `spike_ms` more.
    pub spike_share: f64,
    pub spike_ms: i64,
    /// The shard's connection drops this many times, each for up to `outage_ms`: gateway events
    /// due meanwhile are replayed when the session resumes, and the clock stops until then.
    pub reconnects: usize,
    pub outage_ms: i64,
    /// Each drop comes right after a join, before its GUILD_MEMBER_ADD was delivered.
    pub drop_mid_join: bool,
}

/// Ingest's clock: how often it is sent, and how it measures the delivery lag (the last
/// `LAG_WINDOW` joins received while connected; nothing before `LAG_MIN_SAMPLES` of them).
pub const CLOCK_INTERVAL_MS: i64 = 100;
pub const LAG_WINDOW: usize = 512;
pub const LAG_MIN_SAMPLES: usize = 20;
pub const LAG_QUANTILE: f64 = 0.99;

impl Default for ModelSpec {
    fn default() -> Self {
        Self {
            seed: 1,
            joins: 300,
            joins_per_second: 0.5,
            invites: 20,
            inviters: 8,
            limited_invites: 2,
            vanity_share: 0.05,
            untracked_share: 0.02,
            gateway_delay: (50, 150),
            fetch_duration: (100, 300),
            counter_delay_max: 0,
            settle_ms: 60,
            route_limit: (5, 5_000),
            raid: None,
            separate_vanity_read: false,
            adversity: None,
            away: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TruthPath {
    Invite { code: InviteCode, inviter: UserId },
    Vanity,
    Untracked,
}

#[derive(Debug, Clone)]
pub struct TruthJoin {
    pub user_id: UserId,
    pub joined_at: i64,
    pub path: TruthPath,
}

#[derive(Debug, Clone)]
struct ModelInvite {
    code: InviteCode,
    inviter: UserId,
    uses: u64,
    max_uses: u64,
    created_at: i64,
}

#[derive(Debug, Clone)]
enum CounterChange {
    Use(InviteCode),
    Vanity,
    Deleted(InviteCode),
    Created(ModelInvite),
}

/// What the bot sees, in order, with the time it sees it.
pub struct History {
    pub observations: Vec<(i64, Observation)>,
    /// Ingest's clocks of the guild's shard, in order.
    pub clocks: Vec<DeliveryClock>,
    pub truth: Vec<TruthJoin>,
    pub fetches: usize,
}

const START: i64 = 1_800_000_000_000;
pub const VANITY: &str = "vanity";

/// Runs the model.
pub fn simulate(spec: &ModelSpec) -> History {
    let mut rng = StdRng::seed_from_u64(spec.seed);
    let gateway = |rng: &mut StdRng| rng.random_range(spec.gateway_delay.0..=spec.gateway_delay.1);
    let mut observations: Vec<(i64, Observation)> = Vec::new();
    let mut changes: Vec<(i64, CounterChange)> = Vec::new();
    let mut next_code = 0;
    let mut code = || {
        next_code += 1;
        InviteCode::parse(format!("c{next_code}")).expect("a valid code")
    };

    let mut invites: Vec<ModelInvite> = (0..spec.invites)
        .map(|i| {
            // One inviter owns a third of the invites, as in the model.
            let inviter = if i < spec.invites / 3 {
                UserId::new(9_000)
            } else {
                UserId::new(9_000 + rng.random_range(0..spec.inviters.max(1)) as u64)
            };
            let max_uses = if i < spec.limited_invites {
                rng.random_range(1..=5)
            } else {
                0
            };
            ModelInvite {
                code: code(),
                inviter,
                uses: 0,
                max_uses,
                created_at: START - 60_000,
            }
        })
        .collect();
    for invite in &invites {
        changes.push((START - 60_000, CounterChange::Created(invite.clone())));
    }
    // The baseline snapshot ingest takes on GUILD_CREATE.
    observations.push((
        START,
        Observation::Snapshot {
            requested_at: START - 200,
            received_at: START,
            invites: invites.iter().map(info).collect(),
            vanity: Some(VanityInfo {
                code: Some(InviteCode::parse(VANITY).expect("a valid code")),
                uses: 0,
            }),
        },
    ));

    let weights: Vec<f64> = (1..=spec.invites.max(1)).map(|r| 1.0 / r as f64).collect();
    let mut alive = vec![true; invites.len()];
    let mut recreate_at: Vec<Option<i64>> = vec![None; invites.len()];
    let mut truth = Vec::new();
    let mut t = START + 1_000;
    for n in 0..spec.joins {
        let raid = spec
            .raid
            .filter(|(start, count, _, _)| n >= *start && n < start + count);
        t += match raid {
            Some((_, count, _, duration)) => (duration / count.max(1) as i64).max(1),
            None => {
                let u: f64 = rng.random_range(f64::EPSILON..1.0);
                (-u.ln() / spec.joins_per_second * 1000.0) as i64 + 1
            }
        };
        // Used-up limited invites come back ~30 s later with a new code.
        for i in 0..invites.len() {
            if let Some(at) = recreate_at[i].filter(|at| *at <= t) {
                invites[i] = ModelInvite {
                    code: code(),
                    inviter: invites[i].inviter,
                    uses: 0,
                    max_uses: rng.random_range(1..=5),
                    created_at: at,
                };
                alive[i] = true;
                recreate_at[i] = None;
                changes.push((at, CounterChange::Created(invites[i].clone())));
                observations.push((
                    at + gateway(&mut rng),
                    Observation::InviteCreated {
                        invite: info(&invites[i]),
                    },
                ));
            }
        }
        let user_id = UserId::new(100_000 + n as u64);
        let roll: f64 = rng.random();
        let chosen = if let Some((_, _, codes, _)) = raid {
            let live: Vec<usize> = (0..invites.len())
                .filter(|i| alive[*i])
                .take(codes.max(1))
                .collect();
            if live.is_empty() {
                None
            } else {
                Some(live[rng.random_range(0..live.len())])
            }
        } else if roll < spec.untracked_share {
            None
        } else if roll < spec.untracked_share + spec.vanity_share {
            Some(usize::MAX)
        } else {
            let total: f64 = weights
                .iter()
                .zip(&alive)
                .filter(|(_, a)| **a)
                .map(|(w, _)| w)
                .sum();
            let mut pick = rng.random::<f64>() * total;
            let mut found = None;
            for (i, w) in weights.iter().enumerate() {
                if alive[i] {
                    if pick < *w {
                        found = Some(i);
                        break;
                    }
                    pick -= w;
                }
            }
            Some(found.unwrap_or(usize::MAX))
        };
        let counter_at = t + rng.random_range(0..=spec.counter_delay_max);
        let path = match chosen {
            None => TruthPath::Untracked,
            Some(usize::MAX) => {
                changes.push((counter_at, CounterChange::Vanity));
                TruthPath::Vanity
            }
            Some(i) => {
                let invite = &mut invites[i];
                invite.uses += 1;
                changes.push((counter_at, CounterChange::Use(invite.code.clone())));
                if invite.max_uses > 0 && invite.uses >= invite.max_uses {
                    alive[i] = false;
                    recreate_at[i] = Some(t + 30_000);
                    changes.push((counter_at, CounterChange::Deleted(invite.code.clone())));
                    observations.push((
                        counter_at + gateway(&mut rng),
                        Observation::InviteDeleted {
                            code: invite.code.clone(),
                        },
                    ));
                }
                TruthPath::Invite {
                    code: invite.code.clone(),
                    inviter: invite.inviter,
                }
            }
        };
        observations.push((
            t + gateway(&mut rng),
            Observation::MemberJoined {
                user_id,
                joined_at: t,
            },
        ));
        truth.push(TruthJoin {
            user_id,
            joined_at: t,
            path,
        });
    }
    changes.sort_by_key(|(at, _)| *at);
    let mut outages = spec
        .adversity
        .as_ref()
        .map(|a| adversity(spec.seed, a, &mut observations))
        .unwrap_or_default();
    let back = spec
        .away
        .and_then(|(join, duration)| {
            truth
                .get(join)
                .map(|t| (t.joined_at, t.joined_at + duration))
        })
        .map(|(left, back)| {
            go_away(&mut observations, left, back);
            outages.push((left, back));
            back
        });

    // Ingest's fetches: one in flight, the next covering every join seen meanwhile, spaced by
    // the route limit, and not before the joins it covers have settled.
    let mut seen_joins: Vec<(i64, i64)> = observations
        .iter()
        .filter_map(|(seen, o)| match o {
            Observation::MemberJoined { joined_at, .. } => Some((*seen, *joined_at)),
            _ => None,
        })
        .collect();
    if let Some(back) = back {
        // The read of every guild when ingest starts again.
        seen_joins.push((back, back - spec.settle_ms));
    }
    seen_joins.sort_unstable();
    let mut fetches = 0;
    let mut free_at = START;
    // The route's bucket, as Discord (and the simulator) keep it: `limit` requests in a window
    // of `window` ms that starts with the first request after the previous window ended.
    let (limit, window) = spec.route_limit;
    let (mut window_start, mut used) = (START - 200, 1);
    let mut next = 0;
    while next < seen_joins.len() {
        let route_free = if used >= limit {
            window_start + window
        } else {
            0
        };
        let mut request = seen_joins[next].0.max(free_at).max(route_free);
        while next < seen_joins.len() && seen_joins[next].0 <= request {
            request = request.max(seen_joins[next].1 + spec.settle_ms);
            next += 1;
        }
        let mut answer = request + rng.random_range(spec.fetch_duration.0..=spec.fetch_duration.1);
        let read_at = rng.random_range(request..=answer);
        let (list, mut vanity_uses) = state_at(&changes, read_at);
        if spec.separate_vanity_read {
            let vanity_answer =
                request + rng.random_range(spec.fetch_duration.0..=spec.fetch_duration.1);
            vanity_uses = state_at(&changes, rng.random_range(request..=vanity_answer)).1;
            answer = answer.max(vanity_answer);
        }
        observations.push((
            answer,
            Observation::Snapshot {
                requested_at: request,
                received_at: answer,
                invites: list,
                vanity: Some(VanityInfo {
                    code: Some(InviteCode::parse(VANITY).expect("a valid code")),
                    uses: vanity_uses,
                }),
            },
        ));
        fetches += 1;
        free_at = answer;
        if request - window_start >= window {
            (window_start, used) = (request, 0);
        }
        used += 1;
    }
    observations.sort_by_key(|(at, _)| *at);
    let clocks = clocks(&observations, &outages);
    History {
        observations,
        clocks,
        truth,
        fetches,
    }
}

/// Whether the bot learns `observation` from the gateway (everything but the invite reads).
fn from_gateway(observation: &Observation) -> bool {
    !matches!(observation, Observation::Snapshot { .. })
}

/// Drops the gateway events due while the bot was away, `left..back`, and gives the joins among
/// them back as found in the member list `FOUND_AFTER_MS` after its return.
fn go_away(observations: &mut Vec<(i64, Observation)>, left: i64, back: i64) {
    let mut found = Vec::new();
    observations.retain(|(at, o)| {
        let lost = from_gateway(o) && (left..back).contains(at);
        if let (true, Observation::MemberJoined { user_id, joined_at }) = (lost, o) {
            found.push((*user_id, *joined_at));
        }
        !lost
    });
    observations.push((back, Observation::GuildAvailable { at: back }));
    observations.push((
        back + FOUND_AFTER_MS,
        Observation::JoinsFoundLate {
            window: MissedJoins {
                from: START,
                to: back,
            },
            joins: found,
        },
    ));
}

/// Applies `adversity` to the gateway events' delivery times; returns the outages, each from
/// the drop to the moment the resumed session has replayed what it missed.
fn adversity(
    seed: u64,
    adversity: &Adversity,
    observations: &mut [(i64, Observation)],
) -> Vec<(i64, i64)> {
    // A stream of its own, so the model's other draws stay those of the plain model.
    let mut rng = StdRng::seed_from_u64(seed ^ 0x0005_eed0_f1a6);
    for (at, observation) in observations.iter_mut() {
        if from_gateway(observation) && rng.random_bool(adversity.spike_share) {
            *at += rng.random_range(0..=adversity.spike_ms);
        }
    }
    let joins: Vec<(i64, i64)> = observations
        .iter()
        .filter_map(|(at, o)| match o {
            Observation::MemberJoined { joined_at, .. } => Some((*joined_at, *at)),
            _ => None,
        })
        .collect();
    let (Some(first), Some(last)) = (
        joins.iter().map(|j| j.0).min(),
        joins.iter().map(|j| j.1).max(),
    ) else {
        return Vec::new();
    };
    let mut outages = Vec::new();
    for _ in 0..adversity.reconnects {
        let start = if adversity.drop_mid_join {
            // Between a join and the delivery of its GUILD_MEMBER_ADD.
            let (joined_at, delivered) = joins[rng.random_range(0..joins.len())];
            rng.random_range(joined_at..=delivered)
        } else {
            rng.random_range(first..=last)
        };
        let resumed = start + rng.random_range(1..=adversity.outage_ms.max(1));
        // The resumed session replays what it missed, in order, one event a millisecond.
        let mut missed: Vec<&mut (i64, Observation)> = observations
            .iter_mut()
            .filter(|(at, o)| from_gateway(o) && (start..resumed).contains(at))
            .collect();
        missed.sort_by_key(|(at, _)| *at);
        let replayed = missed.len() as i64;
        for (n, (at, _)) in missed.into_iter().enumerate() {
            *at = resumed + n as i64;
        }
        outages.push((start, resumed + replayed));
    }
    outages
}

/// Ingest's clock: every `CLOCK_INTERVAL_MS` while the shard is connected, with the quantile of
/// the delivery lags of the joins received while connected.
fn clocks(observations: &[(i64, Observation)], outages: &[(i64, i64)]) -> Vec<DeliveryClock> {
    let disconnected = |at: i64| outages.iter().any(|(from, to)| (*from..=*to).contains(&at));
    let lags: Vec<(i64, i64)> = observations
        .iter()
        .filter(|(at, _)| !disconnected(*at))
        .filter_map(|(at, o)| match o {
            Observation::MemberJoined { joined_at, .. } => Some((*at, at - joined_at)),
            _ => None,
        })
        .collect();
    let Some(end) = observations.last().map(|(at, _)| *at) else {
        return Vec::new();
    };
    let mut clocks = Vec::new();
    let mut now = START;
    while now <= end + CLOCK_INTERVAL_MS {
        if !disconnected(now) {
            let received = lags.partition_point(|(at, _)| *at < now);
            let window = &lags[received.saturating_sub(LAG_WINDOW)..received];
            clocks.push(DeliveryClock {
                now,
                delivery_lag: lag_quantile(window.iter().map(|(_, lag)| *lag).collect()),
            });
        }
        now += CLOCK_INTERVAL_MS;
    }
    clocks
}

fn lag_quantile(mut lags: Vec<i64>) -> Option<i64> {
    if lags.len() < LAG_MIN_SAMPLES {
        return None;
    }
    lags.sort_unstable();
    let rank = (lags.len() as f64 * LAG_QUANTILE).ceil() as usize;
    Some(lags[rank.clamp(1, lags.len()) - 1])
}

/// The invite list and the vanity uses as a fetch reading at `at` sees them.
fn state_at(changes: &[(i64, CounterChange)], at: i64) -> (Vec<InviteInfo>, u64) {
    let mut list: BTreeMap<InviteCode, InviteInfo> = BTreeMap::new();
    let mut vanity = 0;
    for (when, change) in changes {
        if *when > at {
            break;
        }
        match change {
            CounterChange::Use(code) => {
                if let Some(invite) = list.get_mut(code) {
                    invite.uses += 1;
                }
            }
            CounterChange::Vanity => vanity += 1,
            CounterChange::Deleted(code) => {
                list.remove(code);
            }
            CounterChange::Created(invite) => {
                list.insert(invite.code.clone(), info(invite));
            }
        }
    }
    (list.into_values().collect(), vanity)
}

fn info(invite: &ModelInvite) -> InviteInfo {
    InviteInfo {
        code: invite.code.clone(),
        inviter_id: Some(invite.inviter),
        uses: invite.uses,
        max_uses: invite.max_uses,
        created_at: invite.created_at,
        expires_at: None,
    }
}

/// Scores of one run.
#[derive(Debug, Default, Clone, Copy)]
pub struct Score {
    pub joins: usize,
    pub decided: usize,
    pub code_right: usize,
    pub code_wrong: usize,
    pub inviter_right: usize,
    pub inviter_wrong: usize,
    pub unknown: usize,
    pub fetches: usize,
}

/// Feeds the history to the engine, each clock as soon as it comes (before the events observed
/// at the same instant: the clock vouches only for those before it), and scores every decision.
pub fn run_engine(history: &History, config: &EngineConfig) -> (Vec<Decision>, Score) {
    let (_, decisions) = run_engine_to_end(history, config);
    let score = score(history, &decisions);
    (decisions, score)
}

/// [`run_engine`], returning the guild's state at the end instead of a score.
pub fn run_engine_to_end(
    history: &History,
    config: &EngineConfig,
) -> (GuildAttribution, Vec<Decision>) {
    let mut engine = GuildAttribution::new();
    let mut decisions = Vec::new();
    let mut clocks = history.clocks.iter().peekable();
    for (at, observation) in &history.observations {
        while let Some(clock) = clocks.next_if(|c| c.now <= *at) {
            decisions.extend(engine.tick(config, *clock));
        }
        decisions.extend(engine.observe(config, observation.clone(), *at));
    }
    for clock in clocks {
        decisions.extend(engine.tick(config, *clock));
    }
    let last = history.observations.last().map_or(START, |(at, _)| *at);
    let end = DeliveryClock {
        now: last + config.max_pending_ms + 10_000,
        delivery_lag: None,
    };
    decisions.extend(engine.tick(config, end));
    (engine, decisions)
}

pub fn score(history: &History, decisions: &[Decision]) -> Score {
    let truth: BTreeMap<UserId, &TruthJoin> =
        history.truth.iter().map(|t| (t.user_id, t)).collect();
    let mut s = Score {
        joins: history.truth.len(),
        fetches: history.fetches,
        ..Score::default()
    };
    for d in decisions {
        s.decided += 1;
        let Some(t) = truth.get(&d.user_id) else {
            continue;
        };
        match (&d.verdict, &t.path) {
            (Verdict::Invite { code, .. }, TruthPath::Invite { code: real, .. })
                if code == real =>
            {
                s.code_right += 1;
            }
            (Verdict::Vanity { .. }, TruthPath::Vanity) => s.code_right += 1,
            (Verdict::Invite { .. } | Verdict::Vanity { .. }, _) => s.code_wrong += 1,
            (Verdict::Unknown { .. }, _) => s.unknown += 1,
            (Verdict::Ambiguous { .. }, _) => {}
        }
        if let Some(inviter) = d.inviter_id() {
            match &t.path {
                TruthPath::Invite { inviter: real, .. } if *real == inviter => s.inviter_right += 1,
                _ => s.inviter_wrong += 1,
            }
        }
    }
    s
}
