//! A seeded workload generator: many guilds, Poisson joins, Zipf popularity of invites,
//! vanity and untracked joins, limited invites re-created after they are used up, leaves and
//! rejoins, raids. It produces a [`Scenario`] (so a run can be saved, inspected and replayed)
//! and [`run`] plays it.
//!
//! The defaults are the attribution model (`docs/attribution.md#the-model`): 20 invites owned by 8
//! inviters (one owns 7), Zipf popularity, 2 invites with `max_uses` 1–5 re-created ~30 s
//! after they are used up, 5% of joins by vanity URL, 2% by no trackable path.
//!
//! The same spec (seed included) always gives the same scenario: guild labels, codes,
//! inviter ids, user labels, paths and times. Only ids the world makes (guilds, new users)
//! differ between runs.

use crate::{
    scenario::{Action, RunOptions, RunReport, Scenario, Step, Via},
    world::World,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::{
    cmp::Reverse,
    collections::{BinaryHeap, HashSet},
    time::Duration,
};

/// A raid: many joins in a short time through a few fresh codes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RaidSpec {
    /// Index of the guild raided (0-based).
    pub guild: u32,
    /// Start, ms after the beginning.
    pub at_ms: u64,
    /// Number of joins.
    pub joins: u32,
    /// Spread of the joins, ms.
    pub over_ms: u64,
    /// Codes created for the raid (1 s before it).
    pub codes: u32,
    /// Whether one inviter owns every raid code.
    pub same_inviter: bool,
}

impl Default for RaidSpec {
    /// The model's raid: 200 joins in 10 s through 3 codes of one owner.
    fn default() -> Self {
        Self {
            guild: 0,
            at_ms: 10_000,
            joins: 200,
            over_ms: 10_000,
            codes: 3,
            same_inviter: true,
        }
    }
}

/// What to generate. Every field has a default (`{}` is a valid spec).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WorkloadSpec {
    /// Seed of every random choice.
    pub seed: u64,
    /// Number of guilds.
    pub guilds: u32,
    /// Length of the workload, ms.
    pub duration_ms: u64,
    /// Poisson join rate per guild, joins per second.
    pub joins_per_sec: f64,
    /// Joins (not raids) begin this long after the guilds are created, ms: time for a bot to
    /// read every guild's invites first, as the attribution model's guilds are already
    /// tracked when joins begin. Joins before a guild's first read cannot be attributed.
    pub joins_from_ms: u64,
    /// Invites per guild (K).
    pub invites_per_guild: u32,
    /// Inviters per guild (M).
    pub inviters_per_guild: u32,
    /// Invites owned by the first inviter (the rest go round the others).
    pub top_inviter_invites: u32,
    /// Zipf exponent of invite popularity (weight of rank k is 1/k^s).
    pub zipf_s: f64,
    /// Share of joins through the vanity URL.
    pub vanity_share: f64,
    /// Share of joins by no trackable path (discovery...).
    pub untracked_share: f64,
    /// Share of joins through OAuth2 `guilds.join`.
    pub oauth2_share: f64,
    /// How many of the K invites are limited.
    pub limited_invites: u32,
    /// `[min, max]` of a limited invite's `max_uses`.
    pub limited_max_uses: [u32; 2],
    /// `[min, max]` ms before a used-up invite is re-created (new code, same inviter).
    pub recreate_after_ms: [u64; 2],
    /// Share of joined members who leave later.
    pub leave_share: f64,
    /// `[min, max]` ms between a join and its leave.
    pub leave_after_ms: [u64; 2],
    /// Share of leavers who come back.
    pub rejoin_share: f64,
    /// `[min, max]` ms between a leave and the rejoin.
    pub rejoin_after_ms: [u64; 2],
    /// Share of new accounts younger than 7 days.
    pub young_share: f64,
    /// Share of new accounts without an avatar.
    pub no_avatar_share: f64,
    /// Whether the bot has MANAGE_GUILD in the guilds.
    pub manage_guild: bool,
    /// Raids.
    pub raids: Vec<RaidSpec>,
}

impl Default for WorkloadSpec {
    fn default() -> Self {
        Self {
            seed: 1,
            guilds: 10,
            duration_ms: 60_000,
            joins_per_sec: 0.5,
            joins_from_ms: 0,
            invites_per_guild: 20,
            inviters_per_guild: 8,
            top_inviter_invites: 7,
            zipf_s: 1.0,
            vanity_share: 0.05,
            untracked_share: 0.02,
            oauth2_share: 0.0,
            limited_invites: 2,
            limited_max_uses: [1, 5],
            recreate_after_ms: [25_000, 35_000],
            leave_share: 0.0,
            leave_after_ms: [10_000, 120_000],
            rejoin_share: 0.0,
            rejoin_after_ms: [5_000, 60_000],
            young_share: 0.05,
            no_avatar_share: 0.1,
            manage_guild: true,
            raids: Vec::new(),
        }
    }
}

impl WorkloadSpec {
    /// Checks the spec.
    ///
    /// # Errors
    ///
    /// A message saying which field is wrong.
    pub fn validate(&self) -> Result<(), String> {
        let share = |name: &str, v: f64| {
            if (0.0..=1.0).contains(&v) {
                Ok(())
            } else {
                Err(format!("{name} must be between 0 and 1"))
            }
        };
        share("vanity_share", self.vanity_share)?;
        share("untracked_share", self.untracked_share)?;
        share("oauth2_share", self.oauth2_share)?;
        share("leave_share", self.leave_share)?;
        share("rejoin_share", self.rejoin_share)?;
        share("young_share", self.young_share)?;
        share("no_avatar_share", self.no_avatar_share)?;
        if self.vanity_share + self.untracked_share + self.oauth2_share > 1.0 {
            return Err("vanity_share + untracked_share + oauth2_share must be at most 1".into());
        }
        if !(self.joins_per_sec.is_finite() && self.joins_per_sec >= 0.0) {
            return Err("joins_per_sec must be a non-negative number".into());
        }
        if !(self.zipf_s.is_finite() && self.zipf_s >= 0.0) {
            return Err("zipf_s must be a non-negative number".into());
        }
        if self.guilds == 0 || self.guilds > 1_000_000 {
            return Err("guilds must be 1 to 1000000".into());
        }
        if self.invites_per_guild > 1000 || self.inviters_per_guild == 0 {
            return Err(
                "invites_per_guild must be at most 1000, inviters_per_guild positive".into(),
            );
        }
        if self.limited_invites > self.invites_per_guild {
            return Err("limited_invites must be at most invites_per_guild".into());
        }
        let [lo, hi] = self.limited_max_uses;
        if lo == 0 || lo > hi || hi > 100 {
            return Err("limited_max_uses must be [min, max] within 1..=100".into());
        }
        for (name, [lo, hi]) in [
            ("recreate_after_ms", self.recreate_after_ms),
            ("leave_after_ms", self.leave_after_ms),
            ("rejoin_after_ms", self.rejoin_after_ms),
        ] {
            if lo > hi {
                return Err(format!("{name} must be [min, max]"));
            }
        }
        let expected =
            f64::from(self.guilds) * self.joins_per_sec * self.duration_ms as f64 / 1000.0;
        if expected > 50_000_000.0 {
            return Err(format!(
                "about {expected:.0} joins: more than 50 million, lower the rate or the length"
            ));
        }
        for raid in &self.raids {
            if raid.guild >= self.guilds {
                return Err(format!("raid on guild {} of {}", raid.guild, self.guilds));
            }
            if raid.codes == 0 || raid.codes > 100 {
                return Err("a raid needs 1 to 100 codes".into());
            }
        }
        Ok(())
    }
}

/// Inviter ids are fixed by the spec: guild g, inviter i → this base + g·1000 + i.
pub const INVITER_ID_BASE: u64 = 900_000_000_000_000_000;

#[derive(Debug)]
struct Slot {
    code: String,
    inviter: u64,
    max_uses: u32,
    uses: u32,
    live: bool,
}

#[derive(Debug)]
struct GuildPlan {
    label: String,
    has_vanity: bool,
    /// Invite slots by popularity rank.
    slots: Vec<Slot>,
    /// Cumulative Zipf weights over the slots.
    cumulative: Vec<f64>,
    next_user: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Event {
    Arrival {
        guild: u32,
    },
    Leave {
        guild: u32,
        user: String,
    },
    Rejoin {
        guild: u32,
        user: String,
    },
    Recreate {
        guild: u32,
        slot: usize,
    },
    RaidCreate {
        guild: u32,
        codes: Vec<(String, u64)>,
    },
    RaidJoin {
        guild: u32,
        codes: Vec<String>,
    },
}

struct Planner {
    spec: WorkloadSpec,
    rng: ChaCha8Rng,
    guilds: Vec<GuildPlan>,
    codes: HashSet<String>,
    queue: BinaryHeap<Reverse<(u64, u64, Event)>>,
    seq: u64,
    steps: Vec<Step>,
}

const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

impl Planner {
    fn code(&mut self) -> String {
        loop {
            let code: String = (0..8)
                .map(|_| char::from(ALPHABET[self.rng.random_range(0..ALPHABET.len())]))
                .collect();
            if self.codes.insert(code.clone()) {
                return code;
            }
        }
    }

    fn between(&mut self, [lo, hi]: [u64; 2]) -> u64 {
        if hi > lo {
            self.rng.random_range(lo..=hi)
        } else {
            lo
        }
    }

    fn push(&mut self, at: u64, event: Event) {
        self.seq += 1;
        self.queue.push(Reverse((at, self.seq, event)));
    }

    fn step(&mut self, at_ms: u64, action: Action) {
        self.steps.push(Step { at_ms, action });
    }

    fn next_arrival(&mut self, now: u64) -> Option<u64> {
        if self.spec.joins_per_sec <= 0.0 {
            return None;
        }
        let u: f64 = self.rng.random_range(f64::EPSILON..1.0);
        let gap = -u.ln() / self.spec.joins_per_sec * 1000.0;
        Some(now + gap.round() as u64)
    }

    fn setup(&mut self) {
        let k = self.spec.invites_per_guild as usize;
        let weights: Vec<f64> = (1..=k)
            .map(|rank| 1.0 / (rank as f64).powf(self.spec.zipf_s))
            .collect();
        let mut cumulative = Vec::with_capacity(k);
        let mut sum = 0.0;
        for w in &weights {
            sum += w;
            cumulative.push(sum);
        }
        for g in 0..self.spec.guilds {
            let label = format!("g{g}");
            let vanity = (self.spec.vanity_share > 0.0).then(|| format!("v-{}", self.code()));
            self.step(
                0,
                Action::CreateGuild {
                    guild: label.clone(),
                    name: None,
                    vanity_code: vanity.clone(),
                    manage_guild: self.spec.manage_guild,
                },
            );
            // Which ranks are limited: drawn once per guild.
            let mut limited = HashSet::new();
            while limited.len() < self.spec.limited_invites as usize {
                limited.insert(self.rng.random_range(0..k));
            }
            let mut slots = Vec::with_capacity(k);
            let others = self.spec.inviters_per_guild.saturating_sub(1).max(1);
            for rank in 0..k {
                let owner = if (rank as u32) < self.spec.top_inviter_invites
                    || self.spec.inviters_per_guild == 1
                {
                    0
                } else {
                    1 + (rank as u32 - self.spec.top_inviter_invites) % others
                };
                let inviter = INVITER_ID_BASE + u64::from(g) * 1000 + u64::from(owner);
                let max_uses = if limited.contains(&rank) {
                    let [lo, hi] = self.spec.limited_max_uses;
                    self.rng.random_range(lo..=hi)
                } else {
                    0
                };
                let code = self.code();
                self.step(0, create_invite(&label, inviter, &code, max_uses));
                slots.push(Slot {
                    code,
                    inviter,
                    max_uses,
                    uses: 0,
                    live: true,
                });
            }
            self.guilds.push(GuildPlan {
                label,
                has_vanity: vanity.is_some(),
                slots,
                cumulative: cumulative.clone(),
                next_user: 0,
            });
            if let Some(at) = self.next_arrival(self.spec.joins_from_ms) {
                self.push(at, Event::Arrival { guild: g });
            }
        }
        for raid in self.spec.raids.clone() {
            let mut codes = Vec::new();
            for c in 0..raid.codes {
                let owner = if raid.same_inviter { 900 } else { 900 + c };
                let inviter = INVITER_ID_BASE + u64::from(raid.guild) * 1000 + u64::from(owner);
                codes.push((self.code(), inviter));
            }
            let names: Vec<String> = codes.iter().map(|(c, _)| c.clone()).collect();
            self.push(
                raid.at_ms.saturating_sub(1000),
                Event::RaidCreate {
                    guild: raid.guild,
                    codes,
                },
            );
            for n in 0..raid.joins {
                let at = raid.at_ms + u64::from(n) * raid.over_ms / u64::from(raid.joins.max(1));
                self.push(
                    at,
                    Event::RaidJoin {
                        guild: raid.guild,
                        codes: names.clone(),
                    },
                );
            }
        }
    }

    fn run(&mut self) {
        while let Some(Reverse((at, _, event))) = self.queue.pop() {
            if at >= self.spec.duration_ms {
                break;
            }
            match event {
                Event::Arrival { guild } => {
                    let plan = &mut self.guilds[guild as usize];
                    let user = format!("{}u{}", plan.label, plan.next_user);
                    plan.next_user += 1;
                    self.join(at, guild, user, true);
                    if let Some(next) = self.next_arrival(at) {
                        self.push(next, Event::Arrival { guild });
                    }
                }
                Event::Leave { guild, user } => {
                    let label = self.guilds[guild as usize].label.clone();
                    self.step(
                        at,
                        Action::Leave {
                            guild: label,
                            user: user.clone(),
                        },
                    );
                    if self.rng.random_bool(self.spec.rejoin_share) {
                        let later = at + self.between(self.spec.rejoin_after_ms);
                        self.push(later, Event::Rejoin { guild, user });
                    }
                }
                Event::Rejoin { guild, user } => self.join(at, guild, user, false),
                Event::Recreate { guild, slot } => {
                    let code = self.code();
                    let [lo, hi] = self.spec.limited_max_uses;
                    let max_uses = self.rng.random_range(lo..=hi);
                    let plan = &mut self.guilds[guild as usize];
                    let label = plan.label.clone();
                    let Some(s) = plan.slots.get_mut(slot) else {
                        continue;
                    };
                    s.code = code.clone();
                    s.uses = 0;
                    s.max_uses = max_uses;
                    s.live = true;
                    let inviter = s.inviter;
                    self.step(at, create_invite(&label, inviter, &code, max_uses));
                }
                Event::RaidCreate { guild, codes } => {
                    let label = self.guilds[guild as usize].label.clone();
                    for (code, inviter) in codes {
                        self.step(at, create_invite(&label, inviter, &code, 0));
                    }
                }
                Event::RaidJoin { guild, codes } => {
                    let code = codes[self.rng.random_range(0..codes.len())].clone();
                    let plan = &mut self.guilds[guild as usize];
                    let user = format!("{}r{}", plan.label, plan.next_user);
                    plan.next_user += 1;
                    let label = plan.label.clone();
                    let account_age_days = Some(self.rng.random_range(0.0..30.0_f64).round());
                    let avatar = self.rng.random_bool(0.5);
                    self.step(
                        at,
                        Action::Join {
                            guild: label,
                            via: Via::Invite,
                            code: Some(code),
                            user: Some(user),
                            account_age_days,
                            avatar,
                        },
                    );
                }
            }
        }
    }

    /// A join at `at`: picks the path, moves the planned counters, maybe plans a leave.
    fn join(&mut self, at: u64, guild: u32, user: String, fresh: bool) {
        let spec = &self.spec;
        let (vanity, untracked, oauth2) =
            (spec.vanity_share, spec.untracked_share, spec.oauth2_share);
        let r: f64 = self.rng.random();
        let plan = &self.guilds[guild as usize];
        let mut via = if r < vanity && plan.has_vanity {
            Via::Vanity
        } else if r >= vanity && r < vanity + untracked {
            Via::Untracked
        } else if r >= vanity + untracked && r < vanity + untracked + oauth2 {
            Via::OAuth2
        } else {
            Via::Invite
        };
        let mut code = None;
        if via == Via::Invite {
            // Zipf over the live invites.
            let weight = |rank: usize| {
                plan.cumulative[rank]
                    - if rank == 0 {
                        0.0
                    } else {
                        plan.cumulative[rank - 1]
                    }
            };
            let total: f64 = (0..plan.slots.len())
                .filter(|&k| plan.slots[k].live)
                .map(weight)
                .sum();
            if total > 0.0 {
                let mut x = self.rng.random_range(0.0..total);
                let mut chosen = None;
                for k in (0..plan.slots.len()).filter(|&k| plan.slots[k].live) {
                    chosen = Some(k);
                    x -= weight(k);
                    if x < 0.0 {
                        break;
                    }
                }
                if let Some(k) = chosen {
                    let recreate_at = at + self.between(self.spec.recreate_after_ms);
                    let slot = &mut self.guilds[guild as usize].slots[k];
                    slot.uses += 1;
                    code = Some(slot.code.clone());
                    if slot.max_uses > 0 && slot.uses >= slot.max_uses {
                        slot.live = false;
                        self.push(recreate_at, Event::Recreate { guild, slot: k });
                    }
                }
            } else {
                via = Via::Untracked;
            }
        }
        let (account_age_days, avatar) = if fresh {
            let young = self.rng.random_bool(self.spec.young_share);
            let days: f64 = if young {
                self.rng.random_range(0.0..7.0)
            } else {
                self.rng.random_range(30.0..3000.0)
            };
            (
                Some((days * 100.0).round() / 100.0),
                !self.rng.random_bool(self.spec.no_avatar_share),
            )
        } else {
            (None, true)
        };
        let label = self.guilds[guild as usize].label.clone();
        self.step(
            at,
            Action::Join {
                guild: label,
                via,
                code,
                user: Some(user.clone()),
                account_age_days,
                avatar,
            },
        );
        if self.spec.leave_share > 0.0 && self.rng.random_bool(self.spec.leave_share) {
            let later = at + self.between(self.spec.leave_after_ms);
            self.push(later, Event::Leave { guild, user });
        }
    }
}

fn create_invite(guild: &str, inviter: u64, code: &str, max_uses: u32) -> Action {
    Action::CreateInvite {
        guild: guild.to_owned(),
        inviter: inviter.to_string(),
        code: Some(code.to_owned()),
        max_uses,
        max_age: 0,
        temporary: false,
    }
}

/// Generates the scenario of a spec (deterministic for a seed).
///
/// # Errors
///
/// When the spec is invalid.
pub fn generate(spec: &WorkloadSpec) -> Result<Scenario, String> {
    spec.validate()?;
    let mut planner = Planner {
        spec: spec.clone(),
        rng: ChaCha8Rng::seed_from_u64(spec.seed),
        guilds: Vec::with_capacity(spec.guilds as usize),
        codes: HashSet::new(),
        queue: BinaryHeap::new(),
        seq: 0,
        steps: Vec::new(),
    };
    planner.setup();
    planner.run();
    Ok(Scenario {
        name: Some(format!("workload seed {}", spec.seed)),
        steps: planner.steps,
    })
}

/// Generates the scenario of `spec` and plays it against `world` in real time, stopping at
/// `until` (scenario time) if given.
///
/// # Errors
///
/// When the spec is invalid.
pub async fn run(
    world: &World,
    spec: &WorkloadSpec,
    until: Option<Duration>,
) -> Result<RunReport, String> {
    let scenario = generate(spec)?;
    Ok(crate::scenario::run(world, &scenario, RunOptions { speed: 1.0, until }).await)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> WorkloadSpec {
        WorkloadSpec {
            seed: 42,
            guilds: 3,
            duration_ms: 120_000,
            joins_per_sec: 1.0,
            leave_share: 0.2,
            rejoin_share: 0.5,
            oauth2_share: 0.01,
            raids: vec![RaidSpec {
                guild: 1,
                at_ms: 30_000,
                joins: 100,
                over_ms: 5_000,
                codes: 3,
                same_inviter: true,
            }],
            ..WorkloadSpec::default()
        }
    }

    #[test]
    fn joins_begin_after_the_warm_up() {
        let s = generate(&WorkloadSpec {
            joins_from_ms: 20_000,
            raids: Vec::new(),
            ..spec()
        })
        .expect("valid");
        let joins: Vec<u64> = s
            .steps
            .iter()
            .filter(|s| matches!(s.action, Action::Join { .. }))
            .map(|s| s.at_ms)
            .collect();
        assert!(!joins.is_empty());
        assert!(joins.iter().all(|at| *at >= 20_000), "{joins:?}");
    }

    #[test]
    fn same_seed_same_scenario() {
        let a = generate(&spec()).expect("valid");
        let b = generate(&spec()).expect("valid");
        assert_eq!(a, b);
        let c = generate(&WorkloadSpec { seed: 43, ..spec() }).expect("valid");
        assert_ne!(a, c);
    }

    #[test]
    fn shape_follows_the_spec() {
        let s = generate(&spec()).expect("valid");
        let joins: Vec<&Action> = s
            .steps
            .iter()
            .map(|s| &s.action)
            .filter(|a| matches!(a, Action::Join { .. }))
            .collect();
        // ~3 guilds × 1/s × 120 s + rejoins + 100 raid joins.
        assert!((380..=560).contains(&joins.len()), "{}", joins.len());
        let count = |via: Via| {
            joins
                .iter()
                .filter(|a| matches!(a, Action::Join { via: v, .. } if *v == via))
                .count()
        };
        assert!(count(Via::Vanity) > 5 && count(Via::Vanity) < 50);
        assert!(count(Via::Invite) > 300);
        assert!(s.steps.windows(2).all(|w| w[0].at_ms <= w[1].at_ms));
        // Limited invites were used up and re-created: more invites than 3 × 20 + 3.
        let invites = s
            .steps
            .iter()
            .filter(|s| matches!(s.action, Action::CreateInvite { .. }))
            .count();
        assert!(invites > 63, "{invites}");
        assert!(
            s.steps
                .iter()
                .any(|s| matches!(s.action, Action::Leave { .. }))
        );
    }

    #[test]
    fn plays_against_a_world_without_failures() {
        let world = World::new(crate::world::BotInfo {
            token: "t".into(),
            user_id: twilight_model::id::Id::new(42),
            username: "bot".into(),
            shards: 1,
            gateway_url: "ws://127.0.0.1:1".into(),
            verify_key: "00".into(),
        });
        let scenario = generate(&spec()).expect("valid");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("runtime");
        let report = rt.block_on(crate::scenario::run(
            &world,
            &scenario,
            RunOptions {
                speed: f64::INFINITY,
                until: None,
            },
        ));
        assert_eq!(report.failed, 0, "{:?}", report.errors);
        assert!(report.complete);
        let truth = world.ground_truth();
        assert_eq!(truth.len(), report.joins);
        // The raid: 100 joins through 3 codes of one inviter.
        let raid_inviter = INVITER_ID_BASE + 1000 + 900;
        assert_eq!(
            truth
                .iter()
                .filter(|t| t.inviter_id.map(|i| i.get()) == Some(raid_inviter))
                .count(),
            100
        );
        assert!(
            truth
                .iter()
                .any(|t| t.path == crate::world::JoinPath::Vanity)
        );
    }
}
