//! Where recall is lost: replays a run's recorded bus trace offline through the engine, scored
//! against the ground truth, and measures the timing of the evidence (`--diagnose`).
//!
//! The replay feeds each guild's events to the engine as the worker does (`observed_at` as the
//! time, a tick every 100 ms), so its recall should match the pipeline's; then the same trace is
//! replayed with changed timing claims to see what each part of the timing costs, and the windows
//! of evidence are measured against the model's (`docs/attribution.md#the-model`: a fetch sent as soon as
//! the join settled and the previous answer arrived, answered 100–300 ms later).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;

use invitrack_attribution::{DeliveryClock, EngineConfig, GuildAttribution, Observation, Verdict};
use invitrack_bus::proto::{self, guild_event::Kind};
use serde::{Deserialize, Serialize};

/// What really happened to one join.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Truth {
    pub guild_id: u64,
    pub user_id: u64,
    pub joined_at_ms: i64,
    /// The code used, when a counter moved for it (invite or vanity URL).
    pub code: Option<String>,
    pub inviter_id: Option<u64>,
}

#[derive(Debug, Default, Clone, Copy)]
struct Score {
    joins: usize,
    code_right: usize,
    code_wrong: usize,
    inviter_right: usize,
    inviter_wrong: usize,
    unknown: usize,
    no_snapshot: usize,
}

fn pct(part: usize, whole: usize) -> f64 {
    100.0 * part as f64 / whole.max(1) as f64
}

/// Summary of a list of durations, ms: mean, p50, p90.
fn stats(values: &mut [i64]) -> String {
    if values.is_empty() {
        return "–".into();
    }
    values.sort_unstable();
    let mean = values.iter().sum::<i64>() as f64 / values.len() as f64;
    let at = |p: f64| values[((values.len() - 1) as f64 * p).round() as usize];
    format!(
        "mean {mean:.0} p50 {} p90 {} (n {})",
        at(0.5),
        at(0.9),
        values.len()
    )
}

/// Replays every guild's events through the engine, with `edit` applied to each observation.
fn replay(
    trace: &[proto::GuildEvent],
    truth: &HashMap<(u64, u64), &Truth>,
    config: &EngineConfig,
    edit: &dyn Fn(&mut Observation),
) -> (Score, HashSet<(u64, u64)>) {
    let mut right = HashSet::new();
    let mut by_guild: BTreeMap<u64, Vec<(i64, Observation)>> = BTreeMap::new();
    for event in trace {
        if let Some(mut o) = event
            .kind
            .as_ref()
            .and_then(|kind| invitrack_worker::observation(kind).ok().flatten())
        {
            edit(&mut o);
            by_guild
                .entry(event.guild_id)
                .or_default()
                .push((event.observed_at_ms, o));
        }
    }
    let mut score = Score {
        joins: truth.len(),
        ..Score::default()
    };
    for (guild, observations) in by_guild {
        let mut engine = GuildAttribution::new();
        let mut decisions = Vec::new();
        let mut now = i64::MIN;
        // Offline, with the whole trace: the events' own times serve as the clock, with the
        // fixed allowance (the allowance decides when, not what, once every join is there).
        let clock = |now| DeliveryClock {
            now,
            delivery_lag: None,
        };
        for (at, o) in observations {
            if now != i64::MIN {
                let mut tick = now + 100;
                while tick < at {
                    decisions.extend(engine.tick(config, clock(tick)));
                    tick += 100;
                }
            }
            now = now.max(at);
            decisions.extend(engine.observe(config, o, now));
            decisions.extend(engine.tick(config, clock(now)));
        }
        decisions.extend(engine.tick(config, clock(now + config.max_pending_ms + 10_000)));
        for d in decisions {
            let Some(t) = truth.get(&(guild, d.user_id.get())) else {
                continue;
            };
            match (d.code(), &d.verdict) {
                (Some(code), _) if t.code.as_deref() == Some(code) => {
                    score.code_right += 1;
                    right.insert((guild, d.user_id.get()));
                }
                (Some(_), _) => score.code_wrong += 1,
                (None, Verdict::Unknown { reason }) => {
                    score.unknown += 1;
                    if reason.as_str() == "no_snapshot" {
                        score.no_snapshot += 1;
                    }
                }
                (None, _) => {}
            }
            if let Some(inviter) = d.inviter_id() {
                if t.inviter_id == Some(inviter.get()) {
                    score.inviter_right += 1;
                } else {
                    score.inviter_wrong += 1;
                }
            }
        }
    }
    (score, right)
}

fn score_line(name: &str, s: &Score) -> String {
    format!(
        "{name}: code {:.1}% (wrong {}), inviter {:.1}% (wrong {}), unknown {:.1}% (no_snapshot {:.1}%)",
        pct(s.code_right, s.joins),
        s.code_wrong,
        pct(s.inviter_right, s.joins),
        s.inviter_wrong,
        pct(s.unknown, s.joins),
        pct(s.no_snapshot, s.joins),
    )
}

/// Joins through a counter (invite or vanity URL) with a join through another counter of their
/// guild less than `within_ms` away: the pairs a single read may count together, which no
/// method can tell apart.
fn close_pairs(truth: &[Truth], within_ms: i64) -> usize {
    let mut by_guild: HashMap<u64, Vec<(i64, &str)>> = HashMap::new();
    for t in truth {
        if let Some(code) = &t.code {
            by_guild
                .entry(t.guild_id)
                .or_default()
                .push((t.joined_at_ms, code));
        }
    }
    by_guild
        .values_mut()
        .map(|joins| {
            joins.sort_unstable();
            (0..joins.len())
                .filter(|&i| {
                    let (at, code) = joins[i];
                    [i.wrapping_sub(1), i + 1].into_iter().any(|j| {
                        joins
                            .get(j)
                            .is_some_and(|&(other, c)| c != code && (other - at).abs() < within_ms)
                    })
                })
                .count()
        })
        .sum()
}

/// The diagnosis of one run, as text.
pub fn diagnose(trace: &[proto::GuildEvent], truth: &[Truth], settle_ms: i64) -> String {
    let by_member: HashMap<(u64, u64), &Truth> =
        truth.iter().map(|t| ((t.guild_id, t.user_id), t)).collect();
    let mut out = String::new();
    let config = EngineConfig {
        max_pending_ms: 60_000,
        ..EngineConfig::default()
    };
    let untracked = truth.iter().filter(|t| t.code.is_none()).count();
    let _ = writeln!(
        out,
        "  untracked (no counter moved): {:.1}%",
        pct(untracked, truth.len())
    );
    let _ = writeln!(
        out,
        "  joins with a join of another code within 200 ms (one read may count both; the \
         model's long run: 3.4% at 0.1 join/s): {:.1}%",
        pct(close_pairs(truth, 200), truth.len())
    );
    let _ = writeln!(
        out,
        "  {}",
        score_line(
            "replay, default allowances",
            &replay(trace, &by_member, &config, &|_| {}).0
        )
    );
    let no_skew = EngineConfig {
        clock_skew_ms: 0,
        ..config
    };
    let _ = writeln!(
        out,
        "  {}",
        score_line(
            "replay, no clock allowance",
            &replay(trace, &by_member, &no_skew, &|_| {}).0
        )
    );

    // What narrower windows would be worth (the claims are then no longer guaranteed, so wrong
    // credit may appear): the answer `ms` sooner, or the request `ms` later.
    for ms in [25, 50, 100] {
        let sooner = move |o: &mut Observation| {
            if let Observation::Snapshot { received_at, .. } = o {
                *received_at -= ms;
            }
        };
        let later = move |o: &mut Observation| {
            if let Observation::Snapshot { requested_at, .. } = o {
                *requested_at += ms;
            }
        };
        let _ = writeln!(
            out,
            "  {}",
            score_line(
                &format!("replay, answers {ms} ms sooner"),
                &replay(trace, &by_member, &config, &sooner).0
            )
        );
        let _ = writeln!(
            out,
            "  {}",
            score_line(
                &format!("replay, requests {ms} ms later"),
                &replay(trace, &by_member, &config, &later).0
            )
        );
    }

    // Timing, per guild in trace order.
    let mut by_guild: BTreeMap<u64, Vec<&proto::GuildEvent>> = BTreeMap::new();
    for e in trace {
        by_guild.entry(e.guild_id).or_default().push(e);
    }
    let (mut gateway_lag, mut latency, mut since_previous_answer, mut dispatch_gap) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut window, mut wait_for_settling, mut route_limited, mut snapshots) =
        (Vec::new(), Vec::new(), 0, 0);
    let mut before_baseline = 0;
    let right = replay(trace, &by_member, &config, &|_| {}).1;
    // Joins settled by the same snapshot, and how many of them got their code: by crowd size.
    let mut crowds: BTreeMap<usize, (usize, usize)> = BTreeMap::new();
    let mut settling_nothing = 0;
    for (guild, events) in &by_guild {
        // (requested_at, received_at)
        let snaps: Vec<(i64, i64)> = events
            .iter()
            .filter_map(|e| match &e.kind {
                Some(Kind::InviteSnapshot(s)) => Some((s.requested_at_ms, s.received_at_ms)),
                _ => None,
            })
            .collect();
        // (joined_at, observed_at)
        let joins: Vec<(i64, i64)> = events
            .iter()
            .filter_map(|e| match &e.kind {
                Some(Kind::MemberAdd(a)) => Some((a.joined_at_ms, e.observed_at_ms)),
                _ => None,
            })
            .collect();
        let mut settled_by: BTreeMap<usize, Vec<u64>> = BTreeMap::new();
        for e in events.iter() {
            if let Some(Kind::MemberAdd(a)) = &e.kind
                && let Some(i) = snaps.iter().position(|s| s.0 > a.joined_at_ms + 50)
            {
                settled_by.entry(i).or_default().push(a.user_id);
            }
        }
        settling_nothing += snaps.len().saturating_sub(1 + settled_by.len());
        for users in settled_by.values() {
            let entry = crowds.entry(users.len().min(6)).or_default();
            entry.0 += users.len();
            entry.1 += users
                .iter()
                .filter(|u| right.contains(&(*guild, **u)))
                .count();
        }
        for &(joined, seen) in &joins {
            gateway_lag.push(seen - joined);
            if snaps.first().is_none_or(|s| joined <= s.1) {
                before_baseline += 1;
                continue;
            }
            // The snapshot that settles the join: the first requested after it.
            if let Some(i) = snaps
                .iter()
                .position(|s| s.0 > joined + EngineConfig::default().clock_skew_ms)
                && i > 0
            {
                window.push(snaps[i].1 - snaps[i - 1].0);
                wait_for_settling.push(snaps[i].0 - joined);
            }
        }
        for i in 1..snaps.len() {
            snapshots += 1;
            let (requested, received) = snaps[i];
            let previous = snaps[i - 1];
            latency.push(received - requested);
            since_previous_answer.push(requested - previous.1);
            // When the model would have sent this fetch: once the previous answer is in and
            // the joins seen meanwhile have settled. Fetches near the route's limit are left
            // out: when its window started is not in the trace.
            let due_joins = joins
                .iter()
                .filter(|(_, seen)| *seen > previous.0 && *seen <= requested)
                .map(|(joined, seen)| (joined + settle_ms).max(*seen))
                .max();
            let route_free = (i >= 5)
                .then(|| snaps[i - 5].0 + 5_000)
                .filter(|free| *free > requested - 200);
            if route_free.is_some() {
                route_limited += 1;
            } else if let Some(due) = due_joins {
                dispatch_gap.push(requested - due.max(previous.1));
            }
        }
    }
    let _ = write!(out, "  joins by crowd (joins settled by one snapshot):");
    for (size, (joins, right)) in &crowds {
        let _ = write!(
            out,
            " {size}: {:.1}% of joins, {:.1}% right;",
            pct(*joins, truth.len()),
            pct(*right, *joins)
        );
    }
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "  joins before their guild's baseline snapshot: {:.1}%",
        pct(before_baseline, truth.len())
    );
    let _ = writeln!(
        out,
        "  gateway lag (observed - joined_at, model 50–150): {}",
        stats(&mut gateway_lag)
    );
    let _ = writeln!(
        out,
        "  fetch latency (received - requested, model 100–300): {}",
        stats(&mut latency)
    );
    let _ = writeln!(
        out,
        "  fetch sent after the previous answer: {}",
        stats(&mut since_previous_answer)
    );
    let _ = writeln!(
        out,
        "  fetch sent after the model would (settled joins, previous answer; away from the route's limit): {}",
        stats(&mut dispatch_gap)
    );
    let _ = writeln!(
        out,
        "  snapshots {snapshots}, of which near the route limit (5 per 5 s): {route_limited}; settling no join: {settling_nothing}"
    );
    let _ = writeln!(
        out,
        "  settling fetch requested after joined_at: {}",
        stats(&mut wait_for_settling)
    );
    let _ = writeln!(
        out,
        "  window of the settling fetch (received - previous requested): {}",
        stats(&mut window)
    );
    out
}
