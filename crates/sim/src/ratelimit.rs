//! REST rate limits: one bucket per route and major parameter (guild or channel), like
//! Discord's. Every answer carries `X-RateLimit-*` headers; an exhausted bucket answers 429
//! with `retry_after`. Limits are per route and can be changed at run time
//! ([`crate::World::set_rate_limit`], `PUT /control/ratelimits/{route}`).

use serde::{Deserialize, Serialize};
use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

/// A REST route, for rate limiting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Route {
    /// `GET /gateway/bot`.
    GatewayBot,
    /// `GET /users/@me`.
    CurrentUser,
    /// `GET /applications/@me`.
    CurrentApplication,
    /// `GET /guilds/{id}/invites` (major: guild).
    GuildInvites,
    /// `GET /guilds/{id}/vanity-url` (major: guild).
    GuildVanityUrl,
    /// `GET` / `DELETE /invites/{code}`.
    Invite,
    /// `GET /channels/{id}/invites` (major: channel).
    ChannelInvites,
    /// `POST /channels/{id}/invites` (major: channel).
    CreateChannelInvite,
    /// `POST /channels/{id}/messages` (major: channel).
    CreateMessage,
}

impl Route {
    /// Every route.
    pub const ALL: [Route; 9] = [
        Route::GatewayBot,
        Route::CurrentUser,
        Route::CurrentApplication,
        Route::GuildInvites,
        Route::GuildVanityUrl,
        Route::Invite,
        Route::ChannelInvites,
        Route::CreateChannelInvite,
        Route::CreateMessage,
    ];

    /// The opaque `X-RateLimit-Bucket` value (same for every major parameter, as on Discord).
    pub fn bucket_hash(self) -> &'static str {
        match self {
            Route::GatewayBot => "41f9cd5d28af77da04563bcb1d67fdfd",
            Route::CurrentUser => "b1e2c8a0f1d3e4b5a6c7d8e9f0a1b2c3",
            Route::CurrentApplication => "c2f3d9b1a2e4f5c6b7d8e9f0a1b2c3d4",
            Route::GuildInvites => "d3a4e0c2b3f5a6d7c8e9f0a1b2c3d4e5",
            Route::GuildVanityUrl => "e4b5f1d3c4a6b7e8d9f0a1b2c3d4e5f6",
            Route::Invite => "f5c6a2e4d5b7c8f9e0a1b2c3d4e5f6a7",
            Route::ChannelInvites => "a6d7b3f5e6c8d9a0f1b2c3d4e5f6a7b8",
            Route::CreateChannelInvite => "b7e8c4a6f7d9e0b1a2c3d4e5f6a7b8c9",
            Route::CreateMessage => "80c17d2f203122d936070c88c8d10f33",
        }
    }
}

/// `limit` requests per `window` for each major parameter of a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteLimit {
    /// Requests per window.
    pub limit: u16,
    /// Window length in milliseconds.
    pub window_ms: u64,
}

impl Default for RouteLimit {
    /// Generous: 50 per second.
    fn default() -> Self {
        Self {
            limit: 50,
            window_ms: 1000,
        }
    }
}

/// Values of the `X-RateLimit-*` headers of one answer.
#[derive(Debug, Clone, PartialEq)]
pub struct RateHeaders {
    /// `x-ratelimit-limit`.
    pub limit: u16,
    /// `x-ratelimit-remaining`.
    pub remaining: u16,
    /// `X-RateLimit-Reset-After`, seconds.
    pub reset_after: f64,
    /// `X-RateLimit-Bucket`.
    pub bucket: &'static str,
}

impl RateHeaders {
    /// Lowercase `(name, value)` pairs; `X-RateLimit-Reset` is computed from the wall clock.
    pub fn pairs(&self) -> [(&'static str, String); 6] {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        [
            ("x-ratelimit-limit", self.limit.to_string()),
            ("x-ratelimit-remaining", self.remaining.to_string()),
            (
                "x-ratelimit-reset",
                format!("{:.3}", now + self.reset_after),
            ),
            (
                "x-ratelimit-reset-after",
                format!("{:.3}", self.reset_after),
            ),
            ("x-ratelimit-bucket", self.bucket.to_owned()),
            // Discord documents it for 429s; twilight-http 0.18 only reads the other
            // headers when it is present, so it is sent on every answer.
            ("x-ratelimit-scope", "user".to_owned()),
        ]
    }
}

/// Verdict on one request.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Go ahead.
    Allowed(RateHeaders),
    /// 429: wait `retry_after` seconds.
    Limited {
        /// Headers to send.
        headers: RateHeaders,
        /// Seconds to wait.
        retry_after: f64,
    },
}

#[derive(Debug, Clone, Copy)]
struct Window {
    started: Instant,
    used: u16,
}

/// Fixed-window counters per (route, major parameter).
#[derive(Debug, Default)]
pub struct RateLimiter {
    limits: HashMap<Route, RouteLimit>,
    windows: HashMap<(Route, u64), Window>,
}

impl RateLimiter {
    /// The limit of a route.
    pub fn limit(&self, route: Route) -> RouteLimit {
        self.limits.get(&route).copied().unwrap_or_default()
    }

    /// Changes the limit of a route (counters restart).
    pub fn set_limit(&mut self, route: Route, limit: RouteLimit) {
        self.limits.insert(route, limit);
        self.windows.retain(|(r, _), _| *r != route);
    }

    /// Counts one request to `route` for `major` (guild or channel id, 0 for none).
    pub fn check(&mut self, route: Route, major: u64, now: Instant) -> Verdict {
        let RouteLimit { limit, window_ms } = self.limit(route);
        let window_len = Duration::from_millis(window_ms.max(1));
        if self.windows.len() > 100_000 {
            self.windows.retain(|(r, _), w| {
                let len = Duration::from_millis(
                    self.limits.get(r).copied().unwrap_or_default().window_ms,
                );
                now.duration_since(w.started) < len
            });
        }
        let window = self.windows.entry((route, major)).or_insert(Window {
            started: now,
            used: 0,
        });
        if now.duration_since(window.started) >= window_len {
            *window = Window {
                started: now,
                used: 0,
            };
        }
        let reset_after = window_len
            .saturating_sub(now.duration_since(window.started))
            .as_secs_f64();
        let bucket = route.bucket_hash();
        if window.used >= limit {
            return Verdict::Limited {
                headers: RateHeaders {
                    limit,
                    remaining: 0,
                    reset_after,
                    bucket,
                },
                retry_after: reset_after,
            };
        }
        window.used += 1;
        Verdict::Allowed(RateHeaders {
            limit,
            remaining: limit - window.used,
            reset_after,
            bucket,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_major_windows() {
        let mut rl = RateLimiter::default();
        rl.set_limit(
            Route::GuildInvites,
            RouteLimit {
                limit: 2,
                window_ms: 1000,
            },
        );
        let t = Instant::now();
        assert!(
            matches!(rl.check(Route::GuildInvites, 1, t), Verdict::Allowed(h) if h.remaining == 1)
        );
        assert!(
            matches!(rl.check(Route::GuildInvites, 1, t), Verdict::Allowed(h) if h.remaining == 0)
        );
        assert!(matches!(
            rl.check(Route::GuildInvites, 1, t),
            Verdict::Limited { .. }
        ));
        assert!(matches!(
            rl.check(Route::GuildInvites, 2, t),
            Verdict::Allowed(_)
        ));
        let later = t + Duration::from_millis(1001);
        assert!(matches!(
            rl.check(Route::GuildInvites, 1, later),
            Verdict::Allowed(_)
        ));
    }
}
