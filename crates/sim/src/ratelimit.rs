//! REST rate limits, as Discord applies them:
//!
//! - one bucket per route and major parameter (guild or channel), fixed windows
//!   ([`RouteLimit`]); `GET /guilds/{id}/invites` defaults to **5 requests per 5 s per guild**,
//!   `POST /channels/{id}/messages` to **5 per 5 s per channel**, every other route to 50 per
//!   second;
//! - a **global** limit per bot ([`GlobalLimit`], default 50 requests per second) across
//!   every route; exceeding it answers 429 with `"global": true`, `X-RateLimit-Global: true`
//!   and `X-RateLimit-Scope: global`.
//!
//! Every answer carries `X-RateLimit-*` headers computed when the answer leaves (so an
//! injected latency does not make `Reset-After` stale). Limits can be changed at run time
//! ([`crate::World::set_rate_limit`], [`crate::World::set_global_limit`], the control API),
//! and every 429 is counted ([`RestStats`], `GET /control/stats`).

use serde::{Deserialize, Serialize};
use std::{
    collections::{BTreeMap, HashMap, VecDeque},
    time::{Duration, Instant},
};

/// A REST route, for rate limiting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
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
    /// `POST /guilds/{id}/members-search` (major: guild; undocumented by Discord).
    GuildMembersSearch,
    /// `GET` / `DELETE /invites/{code}`.
    Invite,
    /// `GET /channels/{id}/invites` (major: channel).
    ChannelInvites,
    /// `POST /channels/{id}/invites` (major: channel).
    CreateChannelInvite,
    /// `POST /channels/{id}/messages` (major: channel).
    CreateMessage,
    /// `GET` / `PUT /applications/{id}/commands` (major: application).
    Commands,
    /// `POST /interactions/{id}/{token}/callback` (major: interaction; not bound to the
    /// global limit, as Discord documents).
    InteractionCallback,
    /// `PATCH /webhooks/{application_id}/{token}/messages/@original` and the follow-ups
    /// (major: the interaction token; not bound to the global limit).
    InteractionWebhook,
    /// `GET /users/@me/guilds` with the bot token.
    CurrentUserGuilds,
    /// `POST /oauth2/token` and `POST /oauth2/token/revoke` (an application's client, not
    /// the bot: not bound to the bot's global limit).
    OAuth2Token,
    /// Every request with a Bearer token: `GET /users/@me`, `/users/@me/guilds`,
    /// `/oauth2/@me` (major: the token; a user's requests, not bound to the bot's global
    /// limit).
    OAuth2Bearer,
}

impl Route {
    /// Every route.
    pub const ALL: [Route; 16] = [
        Route::GatewayBot,
        Route::CurrentUser,
        Route::CurrentApplication,
        Route::GuildInvites,
        Route::GuildVanityUrl,
        Route::GuildMembersSearch,
        Route::Invite,
        Route::ChannelInvites,
        Route::CreateChannelInvite,
        Route::CreateMessage,
        Route::Commands,
        Route::InteractionCallback,
        Route::InteractionWebhook,
        Route::CurrentUserGuilds,
        Route::OAuth2Token,
        Route::OAuth2Bearer,
    ];

    /// The snake_case name used by the control API and the environment variables.
    pub fn name(self) -> &'static str {
        match self {
            Route::GatewayBot => "gateway_bot",
            Route::CurrentUser => "current_user",
            Route::CurrentApplication => "current_application",
            Route::GuildInvites => "guild_invites",
            Route::GuildVanityUrl => "guild_vanity_url",
            Route::GuildMembersSearch => "guild_members_search",
            Route::Invite => "invite",
            Route::ChannelInvites => "channel_invites",
            Route::CreateChannelInvite => "create_channel_invite",
            Route::CreateMessage => "create_message",
            Route::Commands => "commands",
            Route::InteractionCallback => "interaction_callback",
            Route::InteractionWebhook => "interaction_webhook",
            Route::CurrentUserGuilds => "current_user_guilds",
            Route::OAuth2Token => "oauth2_token",
            Route::OAuth2Bearer => "oauth2_bearer",
        }
    }

    /// The route named `name` (see [`Route::name`]).
    pub fn from_name(name: &str) -> Option<Route> {
        Route::ALL.into_iter().find(|r| r.name() == name)
    }

    /// Discord's default limit for this route in the simulator.
    pub fn default_limit(self) -> RouteLimit {
        match self {
            // The figure of the attribution model (`docs/attribution.md#the-model`).
            Route::GuildInvites => RouteLimit {
                limit: 5,
                window_ms: 5000,
            },
            // Discord documents no figure (clients must read the headers); 5 per 5 s per
            // channel is what bots are seen to get.
            Route::CreateMessage => RouteLimit {
                limit: 5,
                window_ms: 5000,
            },
            _ => RouteLimit::default(),
        }
    }

    /// The opaque `X-RateLimit-Bucket` value (same for every major parameter, as on Discord).
    pub fn bucket_hash(self) -> &'static str {
        match self {
            Route::GatewayBot => "41f9cd5d28af77da04563bcb1d67fdfd",
            Route::CurrentUser => "b1e2c8a0f1d3e4b5a6c7d8e9f0a1b2c3",
            Route::CurrentApplication => "c2f3d9b1a2e4f5c6b7d8e9f0a1b2c3d4",
            Route::GuildInvites => "d3a4e0c2b3f5a6d7c8e9f0a1b2c3d4e5",
            Route::GuildVanityUrl => "e4b5f1d3c4a6b7e8d9f0a1b2c3d4e5f6",
            Route::GuildMembersSearch => "c4d5e1a3b4f6a7c8d9e0f1a2b3c4d5e6",
            Route::Invite => "f5c6a2e4d5b7c8f9e0a1b2c3d4e5f6a7",
            Route::ChannelInvites => "a6d7b3f5e6c8d9a0f1b2c3d4e5f6a7b8",
            Route::CreateChannelInvite => "b7e8c4a6f7d9e0b1a2c3d4e5f6a7b8c9",
            Route::CreateMessage => "80c17d2f203122d936070c88c8d10f33",
            Route::Commands => "c8f9d5b7a8e0f1c2b3d4e5f6a7b8c9d0",
            Route::InteractionCallback => "d9a0e6c8b9f1a2d3c4e5f6a7b8c9d0e1",
            Route::InteractionWebhook => "e0b1f7d9c0a2b3e4d5f6a7b8c9d0e1f2",
            Route::CurrentUserGuilds => "f1c2a8e0d1b3c4f5e6a7b8c9d0e1f2a3",
            Route::OAuth2Token => "a2d3b9f1e2c4d5a6f7b8c9d0e1f2a3b4",
            Route::OAuth2Bearer => "b3e4c0a2f3d5e6b7a8c9d0e1f2a3b4c5",
        }
    }

    /// Whether requests to this route count against the bot-wide limit. Discord documents
    /// that the interaction endpoints (callback, original response, follow-ups) are not
    /// bound to it; the OAuth2 routes are not the bot's requests.
    pub fn counts_globally(self) -> bool {
        !matches!(
            self,
            Route::InteractionCallback
                | Route::InteractionWebhook
                | Route::OAuth2Token
                | Route::OAuth2Bearer
        )
    }
}

impl std::fmt::Display for Route {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// `limit` requests per `window` for each major parameter of a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
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

/// The bot-wide limit across every route: `limit` requests per `window_ms` (`limit` 0 turns
/// it off).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GlobalLimit {
    /// Requests per window; 0 = no global limit.
    pub limit: u32,
    /// Window length in milliseconds.
    pub window_ms: u64,
}

impl Default for GlobalLimit {
    /// Discord's: 50 requests per second per bot.
    fn default() -> Self {
        Self {
            limit: 50,
            window_ms: 1000,
        }
    }
}

/// Rate limits to start with: the global limit and per-route overrides of
/// [`Route::default_limit`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RateLimitConfig {
    /// Bot-wide limit.
    pub global: GlobalLimit,
    /// Routes whose limit differs from [`Route::default_limit`].
    pub routes: HashMap<Route, RouteLimit>,
}

/// Values of the `X-RateLimit-*` headers of one answer.
#[derive(Debug, Clone, PartialEq)]
pub struct RateHeaders {
    /// `x-ratelimit-limit`.
    pub limit: u16,
    /// `x-ratelimit-remaining`.
    pub remaining: u16,
    /// When the bucket resets.
    pub reset_at: Instant,
    /// `X-RateLimit-Bucket`.
    pub bucket: &'static str,
}

impl RateHeaders {
    /// Seconds until the reset, seen from `now`.
    pub fn reset_after(&self, now: Instant) -> f64 {
        self.reset_at.saturating_duration_since(now).as_secs_f64()
    }

    /// Lowercase `(name, value)` pairs as of `now`; `X-RateLimit-Reset` is computed from the
    /// wall clock.
    pub fn pairs(&self, now: Instant) -> [(&'static str, String); 6] {
        let reset_after = self.reset_after(now);
        let unix = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        [
            ("x-ratelimit-limit", self.limit.to_string()),
            ("x-ratelimit-remaining", self.remaining.to_string()),
            ("x-ratelimit-reset", format!("{:.3}", unix + reset_after)),
            ("x-ratelimit-reset-after", format!("{reset_after:.3}")),
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
    /// 429 of the route's bucket: wait `retry_after` seconds.
    Limited {
        /// Headers to send.
        headers: RateHeaders,
        /// Seconds to wait.
        retry_after: f64,
    },
    /// 429 of the global limit: wait `retry_after` seconds.
    GlobalLimited {
        /// Seconds to wait.
        retry_after: f64,
    },
}

/// A fixed window of uses: it starts at its first use and lasts `len`; the next use after it
/// starts a new one. Shared by the REST buckets and the gateway's Request Guild Members limit
/// (`world/member_requests.rs`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Window {
    started: Instant,
    used: u32,
}

impl Window {
    /// A window starting at `now`, unused.
    pub(crate) fn starting(now: Instant) -> Self {
        Self {
            started: now,
            used: 0,
        }
    }

    /// Restarts the window if it is over; the time it resets.
    fn roll(&mut self, now: Instant, len: Duration) -> Instant {
        if now.duration_since(self.started) >= len {
            *self = Window::starting(now);
        }
        self.started + len
    }

    /// Takes one of `limit` uses per `len` (restarting the window first if it is over):
    /// `Ok((uses left, reset time))`, or `Err(reset time)` when none is left.
    pub(crate) fn take(
        &mut self,
        now: Instant,
        len: Duration,
        limit: u32,
    ) -> Result<(u32, Instant), Instant> {
        let reset_at = self.roll(now, len);
        if self.used >= limit {
            return Err(reset_at);
        }
        self.used += 1;
        Ok((limit - self.used, reset_at))
    }
}

/// Counters of one route, in [`RestStats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RouteStats {
    /// Requests received (every answer, 429s and injected errors included).
    pub requests: u64,
    /// 429s of the route's own bucket.
    pub rate_limited: u64,
    /// 429s of the global limit.
    pub global_rate_limited: u64,
    /// Injected 5xx answers.
    pub server_errors: u64,
}

/// What the REST API has answered so far (`GET /control/stats`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RestStats {
    /// Requests received.
    pub requests: u64,
    /// Every 429 (route and global).
    pub rate_limited: u64,
    /// 429s of the global limit.
    pub global_rate_limited: u64,
    /// Injected 5xx answers.
    pub server_errors: u64,
    /// Most requests received in any one second (a sliding window), every answer included:
    /// what a client's request budget must keep under Discord's global limit.
    pub most_in_one_second: u64,
    /// Per route (routes never requested are left out).
    pub routes: BTreeMap<Route, RouteStats>,
}

/// Fixed-window counters per (route, major parameter), the global window, and the stats.
#[derive(Debug, Default)]
pub struct RateLimiter {
    global: GlobalLimit,
    global_window: Option<Window>,
    limits: HashMap<Route, RouteLimit>,
    windows: HashMap<(Route, u64), Window>,
    stats: RestStats,
    /// Arrival times of the requests of the last second, for `most_in_one_second`.
    last_second: VecDeque<Instant>,
}

impl RateLimiter {
    /// A limiter with these limits.
    pub fn new(config: &RateLimitConfig) -> Self {
        Self {
            global: config.global,
            limits: config.routes.clone(),
            ..Self::default()
        }
    }

    /// The limit of a route.
    pub fn limit(&self, route: Route) -> RouteLimit {
        self.limits
            .get(&route)
            .copied()
            .unwrap_or_else(|| route.default_limit())
    }

    /// Changes the limit of a route (counters restart).
    pub fn set_limit(&mut self, route: Route, limit: RouteLimit) {
        self.limits.insert(route, limit);
        self.windows.retain(|(r, _), _| *r != route);
    }

    /// The global limit.
    pub fn global(&self) -> GlobalLimit {
        self.global
    }

    /// Changes the global limit (its counter restarts).
    pub fn set_global(&mut self, limit: GlobalLimit) {
        self.global = limit;
        self.global_window = None;
    }

    /// Counters so far.
    pub fn stats(&self) -> RestStats {
        self.stats.clone()
    }

    /// Zeroes the counters.
    pub fn reset_stats(&mut self) {
        self.stats = RestStats::default();
        self.last_second.clear();
    }

    /// Counts a request's arrival.
    fn arrived(&mut self, now: Instant) {
        self.stats.requests += 1;
        while self
            .last_second
            .front()
            .is_some_and(|&at| now.duration_since(at) >= Duration::from_secs(1))
        {
            self.last_second.pop_front();
        }
        self.last_second.push_back(now);
        self.stats.most_in_one_second = self
            .stats
            .most_in_one_second
            .max(self.last_second.len() as u64);
    }

    /// Counts an injected 5xx answer (it does not count against any limit).
    pub fn count_server_error(&mut self, route: Route) {
        self.arrived(Instant::now());
        self.stats.server_errors += 1;
        let r = self.stats.routes.entry(route).or_default();
        r.requests += 1;
        r.server_errors += 1;
    }

    /// Counts one request to `route` for `major` (guild or channel id, 0 for none): the
    /// global limit first, then the route's bucket.
    pub fn check(&mut self, route: Route, major: u64, now: Instant) -> Verdict {
        self.arrived(now);
        self.stats.routes.entry(route).or_default().requests += 1;
        if self.global.limit > 0 && route.counts_globally() {
            let len = Duration::from_millis(self.global.window_ms.max(1));
            let window = self.global_window.get_or_insert(Window::starting(now));
            if let Err(reset_at) = window.take(now, len, self.global.limit) {
                self.stats.rate_limited += 1;
                self.stats.global_rate_limited += 1;
                self.stats
                    .routes
                    .entry(route)
                    .or_default()
                    .global_rate_limited += 1;
                return Verdict::GlobalLimited {
                    retry_after: reset_at.saturating_duration_since(now).as_secs_f64(),
                };
            }
        }
        let RouteLimit { limit, window_ms } = self.limit(route);
        let window_len = Duration::from_millis(window_ms.max(1));
        if self.windows.len() > 100_000 {
            let limits = &self.limits;
            self.windows.retain(|(r, _), w| {
                let len = limits
                    .get(r)
                    .copied()
                    .unwrap_or_else(|| r.default_limit())
                    .window_ms;
                now.duration_since(w.started) < Duration::from_millis(len)
            });
        }
        let window = self
            .windows
            .entry((route, major))
            .or_insert(Window::starting(now));
        let bucket = route.bucket_hash();
        match window.take(now, window_len, u32::from(limit)) {
            Ok((remaining, reset_at)) => Verdict::Allowed(RateHeaders {
                limit,
                remaining: u16::try_from(remaining).unwrap_or(0),
                reset_at,
                bucket,
            }),
            Err(reset_at) => {
                self.stats.rate_limited += 1;
                self.stats.routes.entry(route).or_default().rate_limited += 1;
                Verdict::Limited {
                    headers: RateHeaders {
                        limit,
                        remaining: 0,
                        reset_at,
                        bucket,
                    },
                    retry_after: reset_at.saturating_duration_since(now).as_secs_f64(),
                }
            }
        }
    }
}

/// Parses `SIM_RATE_LIMITS`: `route=LIMIT/WINDOW_MS` pairs separated by commas, e.g.
/// `guild_invites=5/5000,create_message=5/5000`.
///
/// # Errors
///
/// A message saying which part is wrong.
pub fn parse_route_limits(text: &str) -> Result<HashMap<Route, RouteLimit>, String> {
    let mut out = HashMap::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (name, value) = part
            .split_once('=')
            .ok_or_else(|| format!("{part:?}: expected route=LIMIT/WINDOW_MS"))?;
        let route = Route::from_name(name.trim())
            .ok_or_else(|| format!("{name:?} is not a route ({})", route_names()))?;
        let (limit, window) = value
            .split_once('/')
            .ok_or_else(|| format!("{part:?}: expected route=LIMIT/WINDOW_MS"))?;
        let limit: u16 = limit
            .trim()
            .parse()
            .map_err(|e| format!("{part:?}: limit: {e}"))?;
        let window_ms: u64 = window
            .trim()
            .parse()
            .map_err(|e| format!("{part:?}: window: {e}"))?;
        if limit == 0 || window_ms == 0 {
            return Err(format!("{part:?}: limit and window must be positive"));
        }
        out.insert(route, RouteLimit { limit, window_ms });
    }
    Ok(out)
}

/// Every route name, comma separated (for error messages).
pub fn route_names() -> String {
    Route::ALL
        .iter()
        .map(|r| r.name())
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_global() -> RateLimiter {
        RateLimiter::new(&RateLimitConfig {
            global: GlobalLimit {
                limit: 0,
                window_ms: 1000,
            },
            routes: HashMap::new(),
        })
    }

    #[test]
    fn per_major_windows() {
        let mut rl = no_global();
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
        assert_eq!(rl.stats().rate_limited, 1);
        assert_eq!(rl.stats().requests, 5);
    }

    #[test]
    fn invites_and_messages_default_to_five_per_five_seconds() {
        let rl = RateLimiter::default();
        for route in [Route::GuildInvites, Route::CreateMessage] {
            assert_eq!(
                rl.limit(route),
                RouteLimit {
                    limit: 5,
                    window_ms: 5000
                }
            );
        }
    }

    #[test]
    fn global_limit_spans_routes() {
        let mut rl = RateLimiter::new(&RateLimitConfig {
            global: GlobalLimit {
                limit: 3,
                window_ms: 1000,
            },
            routes: HashMap::new(),
        });
        let t = Instant::now();
        for major in 0..3 {
            assert!(matches!(
                rl.check(Route::GuildVanityUrl, major, t),
                Verdict::Allowed(_)
            ));
        }
        assert!(matches!(
            rl.check(Route::CurrentUser, 0, t),
            Verdict::GlobalLimited { retry_after } if retry_after > 0.9
        ));
        assert!(matches!(
            rl.check(Route::CurrentUser, 0, t + Duration::from_millis(1000)),
            Verdict::Allowed(_)
        ));
        let stats = rl.stats();
        assert_eq!((stats.rate_limited, stats.global_rate_limited), (1, 1));
        assert_eq!(stats.routes[&Route::CurrentUser].global_rate_limited, 1);
    }

    #[test]
    fn interaction_routes_skip_the_global_limit() {
        let mut rl = RateLimiter::new(&RateLimitConfig {
            global: GlobalLimit {
                limit: 1,
                window_ms: 1000,
            },
            routes: HashMap::new(),
        });
        let t = Instant::now();
        assert!(matches!(
            rl.check(Route::Commands, 0, t),
            Verdict::Allowed(_)
        ));
        for route in [
            Route::InteractionCallback,
            Route::InteractionWebhook,
            Route::OAuth2Token,
            Route::OAuth2Bearer,
        ] {
            assert!(matches!(rl.check(route, 1, t), Verdict::Allowed(_)));
        }
        assert!(matches!(
            rl.check(Route::Commands, 0, t),
            Verdict::GlobalLimited { .. }
        ));
        assert_eq!(Route::ALL.len(), 16);
        for route in Route::ALL {
            assert_eq!(Route::from_name(route.name()), Some(route));
        }
    }

    #[test]
    fn parses_env_limits() {
        let map = parse_route_limits("guild_invites=5/5000, create_message=1/200").expect("ok");
        assert_eq!(map[&Route::GuildInvites].window_ms, 5000);
        assert_eq!(map[&Route::CreateMessage].limit, 1);
        assert!(parse_route_limits("nope=1/1").is_err());
        assert!(parse_route_limits("invite=0/1").is_err());
    }
}
