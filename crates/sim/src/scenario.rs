//! Scenario files: timed steps that drive a world (create guilds and invites, joins, leaves,
//! permission changes, gateway trouble, limit and latency changes), and the runner that
//! plays them in real time. The workload generator (`workload.rs`) produces scenarios too;
//! the control API plays them in the background (`runs.rs`).
//!
//! A scenario is JSON:
//!
//! ```json
//! {"steps": [
//!   {"at_ms": 0,   "op": "create_guild", "guild": "g1", "vanity_code": "cool"},
//!   {"at_ms": 0,   "op": "create_invite", "guild": "g1", "inviter": "alice", "code": "abc"},
//!   {"at_ms": 100, "op": "join", "guild": "g1", "via": "invite", "code": "abc", "user": "bob"},
//!   {"at_ms": 900, "op": "leave", "guild": "g1", "user": "bob"}
//! ]}
//! ```
//!
//! Guilds are named by labels (`"g1"`); users and inviters by labels too, or by numeric ids
//! (`"859000000000000001"`). A user label joins first as a new account and is the same user
//! afterwards (a rejoin carries `DID_REJOIN`). Every operation is in the crate README.

use crate::{
    error::WorldError,
    faults::RouteFaults,
    ratelimit::{GlobalLimit, Route, RouteLimit, route_names},
    sessions::EventDelay,
    world::{GuildSpec, InviteSpec, JoinSpec, JoinVia, World},
};
use serde::{Deserialize, Serialize};
use std::{collections::HashMap, time::Duration};
use twilight_model::id::{
    Id,
    marker::{GuildMarker, UserMarker},
};

/// A list of timed steps.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Steps, run in order; each waits until `at_ms` after the start.
    pub steps: Vec<Step>,
}

/// One step: an action at a time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    /// Milliseconds after the start of the run.
    #[serde(default)]
    pub at_ms: u64,
    /// What happens.
    #[serde(flatten)]
    pub action: Action,
}

/// How a scenario join gets in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Via {
    /// Through `code` (an invite).
    Invite,
    /// Through the guild's vanity URL.
    Vanity,
    /// Without any counter moving (discovery, ...).
    #[default]
    Untracked,
    /// OAuth2 `guilds.join`.
    #[serde(rename = "oauth2")]
    OAuth2,
}

fn yes() -> bool {
    true
}

fn half() -> f64 {
    0.5
}

/// What a step does (`"op"` in JSON).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Action {
    /// A guild with one channel; the bot is in it.
    CreateGuild {
        /// Label later steps use.
        guild: String,
        /// Guild name (default: the label).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        /// Vanity URL code.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        vanity_code: Option<String>,
        /// Whether the bot has MANAGE_GUILD.
        #[serde(default = "yes")]
        manage_guild: bool,
    },
    /// An invite (INVITE_CREATE).
    CreateInvite {
        /// Guild label.
        guild: String,
        /// Inviter label or id.
        inviter: String,
        /// Code (default: random; later steps cannot name it then).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        code: Option<String>,
        /// 0 = unlimited.
        #[serde(default)]
        max_uses: u32,
        /// Seconds, 0 = never expires.
        #[serde(default)]
        max_age: u32,
        /// Temporary membership.
        #[serde(default)]
        temporary: bool,
    },
    /// A moderator deletes an invite (INVITE_DELETE).
    DeleteInvite {
        /// Code.
        code: String,
    },
    /// A member joins (GUILD_MEMBER_ADD).
    Join {
        /// Guild label.
        guild: String,
        /// Path.
        #[serde(default)]
        via: Via,
        /// Invite code when `via` is `invite`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        code: Option<String>,
        /// User label or id (default: a new anonymous account).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        user: Option<String>,
        /// Age of a new account, days (default 365).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        account_age_days: Option<f64>,
        /// Whether a new account has an avatar.
        #[serde(default = "yes")]
        avatar: bool,
    },
    /// A member leaves (GUILD_MEMBER_REMOVE).
    Leave {
        /// Guild label.
        guild: String,
        /// User label or id.
        user: String,
    },
    /// Temporary members of the guild go offline and are removed.
    TemporaryOffline {
        /// Guild label.
        guild: String,
    },
    /// Grants or revokes the bot's MANAGE_GUILD.
    SetManageGuild {
        /// Guild label.
        guild: String,
        /// New value.
        manage_guild: bool,
    },
    /// op 7 RECONNECT to every shard.
    Reconnect,
    /// op 9 INVALID_SESSION to every shard.
    InvalidateSessions {
        /// Whether the sessions may resume.
        #[serde(default)]
        resumable: bool,
    },
    /// Cuts a shard's connection (all shards without `shard`).
    DropShard {
        /// Shard id.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        shard: Option<u32>,
    },
    /// Changes a REST limit (`route` = a route name or `global`).
    SetRateLimit {
        /// Route name or `global`.
        route: String,
        /// Requests per window (0 turns the global limit off).
        limit: u32,
        /// Window, ms.
        window_ms: u64,
    },
    /// Changes REST latency and errors (`route` = a route name or `default`).
    SetFaults {
        /// Route name or `default`.
        route: String,
        /// `[min, max]` ms.
        #[serde(default)]
        latency_ms: [u64; 2],
        /// Read point as a fraction of the latency.
        #[serde(default = "half")]
        read_at: f64,
        /// Probability of a 5xx.
        #[serde(default)]
        error_rate: f64,
    },
    /// Changes the gateway dispatch delay.
    SetEventDelay {
        /// Smallest delay, ms (negative: the counter lags).
        min_ms: i64,
        /// Largest delay, ms.
        max_ms: i64,
    },
    /// Moves the simulated clock (invite expiry).
    AdvanceClock {
        /// Seconds.
        secs: f64,
    },
}

/// How to play a scenario.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RunOptions {
    /// Time scale: 2.0 plays twice as fast; `f64::INFINITY` plays without waiting.
    pub speed: f64,
    /// Stop at this time (scenario time) even if steps remain.
    pub until: Option<Duration>,
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            speed: 1.0,
            until: None,
        }
    }
}

/// What a run did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RunReport {
    /// Steps played.
    pub steps: usize,
    /// Steps that failed (the world refused them).
    pub failed: usize,
    /// The first failures, `"step N (op): why"`.
    pub errors: Vec<String>,
    /// Joins made.
    pub joins: usize,
    /// Wall-clock length of the run, ms.
    pub elapsed_ms: u64,
    /// Largest delay of a step behind its time, ms (the runner could not keep up beyond it).
    pub max_lag_ms: u64,
    /// Whether every step was played (false when `until` stopped it).
    pub complete: bool,
}

/// Plays steps against a world, resolving labels.
#[derive(Debug)]
pub struct Runner {
    world: World,
    guilds: HashMap<String, Id<GuildMarker>>,
    users: HashMap<String, Id<UserMarker>>,
    next_inviter: u64,
}

/// Inviter labels get ids from here up (a 2022 snowflake), in order of first use.
const INVITER_BASE: u64 = 1_000_000_000_000_000_000;

impl Runner {
    /// A runner with no labels known.
    pub fn new(world: World) -> Self {
        Self {
            world,
            guilds: HashMap::new(),
            users: HashMap::new(),
            next_inviter: INVITER_BASE,
        }
    }

    /// The guild a label names.
    pub fn guild(&self, label: &str) -> Option<Id<GuildMarker>> {
        self.guilds.get(label).copied()
    }

    /// The user a label names (after its first join), or a numeric id.
    pub fn user(&self, label: &str) -> Option<Id<UserMarker>> {
        numeric(label).or_else(|| self.users.get(label).copied())
    }

    fn guild_or_err(&self, label: &str) -> Result<Id<GuildMarker>, String> {
        self.guild(label)
            .ok_or_else(|| format!("no guild labelled {label:?}"))
    }

    fn inviter(&mut self, label: &str) -> Id<UserMarker> {
        if let Some(id) = self.user(label) {
            return id;
        }
        self.next_inviter += 1;
        let id = Id::new(self.next_inviter);
        self.users.insert(label.to_owned(), id);
        id
    }

    /// Plays one action now; `Ok(true)` when it was a join.
    ///
    /// # Errors
    ///
    /// Why the world refused it.
    pub fn apply(&mut self, action: &Action) -> Result<bool, String> {
        let world = self.world.clone();
        let e = |e: WorldError| e.to_string();
        match action {
            Action::CreateGuild {
                guild,
                name,
                vanity_code,
                manage_guild,
            } => {
                if self.guilds.contains_key(guild) {
                    return Err(format!("guild label {guild:?} is taken"));
                }
                let created = world
                    .create_guild(GuildSpec {
                        name: name.clone().unwrap_or_else(|| guild.clone()),
                        vanity_code: vanity_code.clone(),
                        manage_guild: *manage_guild,
                    })
                    .map_err(e)?;
                self.guilds.insert(guild.clone(), created.guild_id);
            }
            Action::CreateInvite {
                guild,
                inviter,
                code,
                max_uses,
                max_age,
                temporary,
            } => {
                let guild_id = self.guild_or_err(guild)?;
                let inviter_id = self.inviter(inviter);
                world
                    .create_invite(
                        guild_id,
                        InviteSpec {
                            inviter_id,
                            max_uses: *max_uses,
                            max_age_secs: *max_age,
                            temporary: *temporary,
                            code: code.clone(),
                        },
                    )
                    .map_err(e)?;
            }
            Action::DeleteInvite { code } => {
                world.delete_invite(code).map_err(e)?;
            }
            Action::Join {
                guild,
                via,
                code,
                user,
                account_age_days,
                avatar,
            } => {
                let guild_id = self.guild_or_err(guild)?;
                let via = match (via, code) {
                    (Via::Invite, Some(code)) => JoinVia::Invite(code.clone()),
                    (Via::Invite, None) => return Err("via invite needs a code".into()),
                    (_, Some(_)) => return Err("a code needs \"via\": \"invite\"".into()),
                    (Via::Vanity, None) => JoinVia::Vanity,
                    (Via::Untracked, None) => JoinVia::Untracked,
                    (Via::OAuth2, None) => JoinVia::OAuth2,
                };
                let days = account_age_days.unwrap_or(365.0);
                if !days.is_finite() || !(0.0..=3650.0).contains(&days) {
                    return Err("account_age_days must be between 0 and 3650".into());
                }
                let spec = JoinSpec {
                    user_id: user.as_deref().and_then(|u| self.user(u)),
                    avatar: *avatar,
                    account_age: Duration::from_secs_f64(days * 86_400.0),
                };
                let truth = world.join(guild_id, via, spec).map_err(e)?;
                if let Some(label) = user
                    && numeric(label).is_none()
                {
                    self.users.insert(label.clone(), truth.user_id);
                }
                return Ok(true);
            }
            Action::Leave { guild, user } => {
                let guild_id = self.guild_or_err(guild)?;
                let user_id = self
                    .user(user)
                    .ok_or_else(|| format!("no user labelled {user:?}"))?;
                world.leave(guild_id, user_id).map_err(e)?;
            }
            Action::TemporaryOffline { guild } => {
                let guild_id = self.guild_or_err(guild)?;
                world.end_temporary_memberships(guild_id).map_err(e)?;
            }
            Action::SetManageGuild {
                guild,
                manage_guild,
            } => {
                let guild_id = self.guild_or_err(guild)?;
                world.set_manage_guild(guild_id, *manage_guild).map_err(e)?;
            }
            Action::Reconnect => world.request_reconnect(),
            Action::InvalidateSessions { resumable } => world.invalidate_sessions(*resumable),
            Action::DropShard { shard } => {
                world.drop_shard(*shard);
            }
            Action::SetRateLimit {
                route,
                limit,
                window_ms,
            } => {
                if *window_ms == 0 {
                    return Err("window_ms must be positive".into());
                }
                if route == "global" {
                    world.set_global_limit(GlobalLimit {
                        limit: *limit,
                        window_ms: *window_ms,
                    });
                } else {
                    let route = parse_route(route)?;
                    let limit = u16::try_from(*limit)
                        .ok()
                        .filter(|l| *l > 0)
                        .ok_or("a route limit must be 1 to 65535")?;
                    world.set_rate_limit(
                        route,
                        RouteLimit {
                            limit,
                            window_ms: *window_ms,
                        },
                    );
                }
            }
            Action::SetFaults {
                route,
                latency_ms,
                read_at,
                error_rate,
            } => {
                let route = match route.as_str() {
                    "default" => None,
                    name => Some(parse_route(name)?),
                };
                world
                    .set_faults(
                        route,
                        RouteFaults {
                            latency_ms: *latency_ms,
                            read_at: *read_at,
                            error_rate: *error_rate,
                        },
                    )
                    .map_err(e)?;
            }
            Action::SetEventDelay { min_ms, max_ms } => {
                world
                    .set_event_delay(EventDelay {
                        min_ms: *min_ms,
                        max_ms: *max_ms,
                    })
                    .map_err(e)?;
            }
            Action::AdvanceClock { secs } => {
                if !secs.is_finite() || *secs < 0.0 {
                    return Err("secs must be a non-negative number".into());
                }
                world.advance_clock(Duration::from_secs_f64(*secs));
            }
        }
        Ok(false)
    }

    /// Plays `scenario` in real time (scaled by `options.speed`).
    pub async fn run(&mut self, scenario: &Scenario, options: RunOptions) -> RunReport {
        let started = tokio::time::Instant::now();
        let mut report = RunReport {
            complete: true,
            ..RunReport::default()
        };
        let speed = if options.speed > 0.0 {
            options.speed
        } else {
            1.0
        };
        for (index, step) in scenario.steps.iter().enumerate() {
            let at = Duration::from_millis(step.at_ms);
            if options.until.is_some_and(|until| at >= until) {
                report.complete = false;
                break;
            }
            if speed.is_finite() {
                let due = started + at.div_f64(speed);
                let now = tokio::time::Instant::now();
                if due > now {
                    tokio::time::sleep_until(due).await;
                } else {
                    let lag = u64::try_from(now.duration_since(due).as_millis()).unwrap_or(0);
                    report.max_lag_ms = report.max_lag_ms.max(lag);
                }
            } else if index % 256 == 255 {
                // Without waiting: still let the server and the gateway run.
                tokio::task::yield_now().await;
            }
            report.steps += 1;
            match self.apply(&step.action) {
                Ok(joined) => report.joins += usize::from(joined),
                Err(why) => {
                    report.failed += 1;
                    if report.errors.len() < 100 {
                        report
                            .errors
                            .push(format!("step {index} ({}): {why}", op_name(&step.action)));
                    }
                }
            }
        }
        report.elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        report
    }
}

/// Plays a scenario against a world (labels start empty).
pub async fn run(world: &World, scenario: &Scenario, options: RunOptions) -> RunReport {
    Runner::new(world.clone()).run(scenario, options).await
}

fn numeric(label: &str) -> Option<Id<UserMarker>> {
    label.parse::<u64>().ok().and_then(Id::new_checked)
}

fn parse_route(name: &str) -> Result<Route, String> {
    Route::from_name(name).ok_or_else(|| format!("{name:?} is not a route ({})", route_names()))
}

fn op_name(action: &Action) -> String {
    serde_json::to_value(action)
        .ok()
        .and_then(|v| v.get("op").and_then(|o| o.as_str()).map(str::to_owned))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_shape() {
        let text = r#"{"steps": [
            {"at_ms": 0, "op": "create_guild", "guild": "g1", "vanity_code": "cool"},
            {"at_ms": 0, "op": "create_invite", "guild": "g1", "inviter": "alice", "code": "abc"},
            {"at_ms": 100, "op": "join", "guild": "g1", "via": "invite", "code": "abc", "user": "bob"},
            {"at_ms": 150, "op": "join", "guild": "g1", "via": "oauth2"},
            {"at_ms": 200, "op": "set_rate_limit", "route": "guild_invites", "limit": 5, "window_ms": 5000},
            {"at_ms": 200, "op": "set_faults", "route": "default", "latency_ms": [100, 300]},
            {"at_ms": 300, "op": "set_event_delay", "min_ms": 50, "max_ms": 150},
            {"at_ms": 400, "op": "drop_shard", "shard": 0},
            {"at_ms": 900, "op": "leave", "guild": "g1", "user": "bob"}
        ]}"#;
        let scenario: Scenario = serde_json::from_str(text).expect("parses");
        assert_eq!(scenario.steps.len(), 9);
        assert!(matches!(
            &scenario.steps[2].action,
            Action::Join { via: Via::Invite, code: Some(c), .. } if c == "abc"
        ));
        let back: Scenario =
            serde_json::from_str(&serde_json::to_string(&scenario).expect("ser")).expect("de");
        assert_eq!(back, scenario);
        assert!(serde_json::from_str::<Scenario>(r#"{"steps":[{"op":"explode"}]}"#).is_err());
    }
}
