//! Injected REST latency and 5xx answers, per route.
//!
//! A request to a route with latency `L` (uniform in `latency_ms`) is answered `L` after it
//! arrives, and the state is read `read_at × L` after arrival (0.5 = at the midpoint, as the
//! attribution model assumes): a join that happens while the request is in flight shows in
//! the answer if and only if it happened before that moment. With probability `error_rate`
//! the answer is a 500, 502 or 503 instead (after the same latency, without touching the
//! state and without counting against the rate limits).

use crate::ratelimit::{Route, route_names};
use rand::Rng;
use serde::{Deserialize, Serialize};
use std::{collections::HashMap, time::Duration};

/// Latency and errors of one route.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RouteFaults {
    /// `[min, max]` milliseconds, uniform.
    pub latency_ms: [u64; 2],
    /// When the state is read, as a fraction of the latency (0 = on arrival, 1 = just
    /// before answering).
    pub read_at: f64,
    /// Probability of a 5xx answer (500, 502, 503 equally likely).
    pub error_rate: f64,
}

impl Default for RouteFaults {
    /// No latency, no errors, read at the midpoint.
    fn default() -> Self {
        Self {
            latency_ms: [0, 0],
            read_at: 0.5,
            error_rate: 0.0,
        }
    }
}

impl RouteFaults {
    /// Checks the values.
    ///
    /// # Errors
    ///
    /// A message saying what is out of range.
    pub fn validate(&self) -> Result<(), String> {
        let [min, max] = self.latency_ms;
        if min > max || max > 600_000 {
            return Err("latency_ms must be [min, max] with min <= max <= 600000".into());
        }
        if !(0.0..=1.0).contains(&self.read_at) {
            return Err("read_at must be between 0 and 1".into());
        }
        if !(0.0..=1.0).contains(&self.error_rate) {
            return Err("error_rate must be between 0 and 1".into());
        }
        Ok(())
    }

    /// Draws the fate of one request.
    pub fn sample(&self, rng: &mut impl Rng) -> FaultPlan {
        let [min, max] = self.latency_ms;
        let latency = if max > min {
            rng.random_range(min..=max)
        } else {
            min
        };
        let latency = Duration::from_millis(latency);
        let before = latency.mul_f64(self.read_at.clamp(0.0, 1.0));
        let error = (self.error_rate > 0.0 && rng.random_bool(self.error_rate.clamp(0.0, 1.0)))
            .then(|| [500, 502, 503][rng.random_range(0..3)]);
        FaultPlan {
            before_read: before,
            after_read: latency.saturating_sub(before),
            error,
        }
    }
}

/// What happens to one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FaultPlan {
    /// Wait before reading the state.
    pub before_read: Duration,
    /// Wait after reading it, before answering.
    pub after_read: Duration,
    /// A 5xx status to answer instead, if any.
    pub error: Option<u16>,
}

/// Faults for every route: a default and per-route overrides.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FaultConfig {
    /// Routes without an override.
    pub default: RouteFaults,
    /// Per-route overrides.
    pub routes: HashMap<Route, RouteFaults>,
}

impl FaultConfig {
    /// The faults of `route`.
    pub fn get(&self, route: Route) -> RouteFaults {
        self.routes.get(&route).copied().unwrap_or(self.default)
    }

    /// Applies `SIM_LATENCY_MS` (`route=MIN-MAX,...`, `default=MIN-MAX`), `SIM_ERROR_RATE`
    /// (`route=P,...`, `default=P`) and `SIM_READ_AT` (a fraction for every route).
    ///
    /// # Errors
    ///
    /// A message saying which part is wrong.
    pub fn from_env_strings(
        latency: Option<&str>,
        errors: Option<&str>,
        read_at: Option<f64>,
    ) -> Result<Self, String> {
        let mut config = FaultConfig::default();
        let mut edit = |target: &str, f: &mut dyn FnMut(&mut RouteFaults)| -> Result<(), String> {
            if target == "default" {
                f(&mut config.default);
                for v in config.routes.values_mut() {
                    f(v);
                }
            } else {
                let route = Route::from_name(target).ok_or_else(|| {
                    format!("{target:?} is not a route (default, {})", route_names())
                })?;
                let base = config.get(route);
                f(config.routes.entry(route).or_insert(base));
            }
            Ok(())
        };
        for part in pairs(latency) {
            let (target, value) = part?;
            let (min, max) = value.split_once('-').unwrap_or((value, value));
            let min: u64 = min
                .trim()
                .parse()
                .map_err(|e| format!("latency {value:?}: {e}"))?;
            let max: u64 = max
                .trim()
                .parse()
                .map_err(|e| format!("latency {value:?}: {e}"))?;
            edit(target, &mut |f| f.latency_ms = [min, max])?;
        }
        for part in pairs(errors) {
            let (target, value) = part?;
            let p: f64 = value
                .trim()
                .parse()
                .map_err(|e| format!("error rate {value:?}: {e}"))?;
            edit(target, &mut |f| f.error_rate = p)?;
        }
        if let Some(read_at) = read_at {
            edit("default", &mut |f| f.read_at = read_at)?;
        }
        config.default.validate()?;
        for (route, faults) in &config.routes {
            faults.validate().map_err(|e| format!("{route}: {e}"))?;
        }
        Ok(config)
    }
}

/// `target=value` pairs, `default=` first (so it never overrides a route's own value).
fn pairs(text: Option<&str>) -> Vec<Result<(&str, &str), String>> {
    let mut out: Vec<_> = text
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| {
            p.split_once('=')
                .map(|(a, b)| (a.trim(), b.trim()))
                .ok_or_else(|| format!("{p:?}: expected route=VALUE"))
        })
        .collect();
    out.sort_by_key(|p| !matches!(p, Ok(("default", _))));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn env_strings() {
        let c = FaultConfig::from_env_strings(
            Some("guild_invites=100-300,default=5"),
            Some("guild_invites=0.1"),
            Some(0.25),
        )
        .expect("valid");
        assert_eq!(c.get(Route::GuildInvites).latency_ms, [100, 300]);
        assert_eq!(c.get(Route::GuildInvites).error_rate, 0.1);
        assert_eq!(c.get(Route::GuildInvites).read_at, 0.25);
        assert_eq!(c.get(Route::Invite).latency_ms, [5, 5]);
        assert!(FaultConfig::from_env_strings(Some("x=1"), None, None).is_err());
        assert!(FaultConfig::from_env_strings(None, Some("default=2"), None).is_err());
    }

    #[test]
    fn sample_splits_at_read_at() {
        let f = RouteFaults {
            latency_ms: [100, 300],
            read_at: 0.5,
            error_rate: 1.0,
        };
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        for _ in 0..100 {
            let p = f.sample(&mut rng);
            let total = p.before_read + p.after_read;
            assert!((100..=300).contains(&total.as_millis()));
            assert!(p.before_read.abs_diff(p.after_read) <= Duration::from_millis(1));
            assert!(matches!(p.error, Some(500 | 502 | 503)));
        }
    }
}
