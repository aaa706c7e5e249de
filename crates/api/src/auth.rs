//! Bearer API keys. A key belongs to one bot and optionally one guild (as InviteLogger binds its
//! tokens) and has the `read` or `admin` scope; requests outside that answer 401 and 403.
//!
//! Keys are looked up by the SHA-256 of the token and kept in memory for a few seconds
//! (`API_KEY_CACHE_SECS`), so a busy dashboard costs no database round-trip per request; a
//! revoked key stops working within that time. Tokens found unknown are remembered as long, so
//! a client repeating a wrong or revoked token costs no round-trip either. Each key has a token
//! bucket (`API_RATE_LIMIT_PER_SECOND`, `API_RATE_LIMIT_BURST`): past it, 429 with `Retry-After`.

use invitrack_model::{BotId, GuildId, GuildKey};
use std::future::Future;
use std::num::NonZeroU32;
use std::pin::Pin;
use std::time::Duration;

use actix_web::dev::Payload;
use actix_web::http::header::AUTHORIZATION;
use actix_web::{FromRequest, HttpRequest, web};
use governor::clock::{Clock as _, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use invitrack_storage::keys::{self, ApiKey, KeyScope};
use invitrack_storage::sessions::Session;
use moka::sync::Cache;
use prometheus::IntCounterVec;
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;

use crate::AppState;
use crate::error::ApiError;
use crate::params::path_snowflake;

/// Most live keys kept in memory.
const KNOWN_CAPACITY: u64 = 10_000;
/// Most unknown tokens remembered: each costs its 32-byte hash and the cache's bookkeeping
/// (about 100 bytes in all), so a few megabytes at most however many tokens are tried.
const UNKNOWN_CAPACITY: u64 = 50_000;

/// What is known about tokens, by token hash, for `API_KEY_CACHE_SECS`; and the bound on
/// concurrent lookups of the others.
pub struct KeyCache {
    /// `None` when `API_KEY_CACHE_SECS` is 0: every request asks the database.
    memory: Option<Memory>,
    /// Permits for lookups in the database. Distinct unknown tokens each still need one; this
    /// bounds how many of the pool's connections they can hold at once, so requests with
    /// cached keys keep getting connections during a flood of random tokens. Misses wait for
    /// a permit rather than being refused: a rate limit answering 401 without a lookup would
    /// lock out, for as long as a flood lasts, every real key not in the cache (one just
    /// created, or any whose entry expired after `API_KEY_CACHE_SECS`), since they cannot be
    /// told apart from random tokens before the lookup.
    lookups: Semaphore,
    /// `invitrack_api_key_checks_total{outcome}`.
    checks: IntCounterVec,
}

struct Memory {
    /// Live keys. Unknown tokens never enter it, so trying many cannot evict real keys.
    known: Cache<[u8; 32], ApiKey>,
    /// Tokens the database did not know (or knew revoked). A token is only ever presented
    /// after its key was created (it is 256 random bits, shown once by `keys create`), so a
    /// new key's hash cannot already be here and a new key works at once.
    unknown: Cache<[u8; 32], ()>,
}

impl KeyCache {
    /// Remembers for `ttl` (zero: nothing), with at most `lookups` database lookups at once.
    #[must_use]
    pub fn new(ttl: Duration, lookups: usize, checks: IntCounterVec) -> Self {
        let memory = (!ttl.is_zero()).then(|| Memory {
            known: Cache::builder()
                .max_capacity(KNOWN_CAPACITY)
                .time_to_live(ttl)
                .build(),
            unknown: Cache::builder()
                .max_capacity(UNKNOWN_CAPACITY)
                .time_to_live(ttl)
                .build(),
        });
        Self {
            memory,
            lookups: Semaphore::new(lookups.max(1)),
            checks,
        }
    }

    fn count(&self, outcome: &str) {
        self.checks.with_label_values(&[outcome]).inc();
    }

    /// The key of a well-formed `token`, from memory or else from the database.
    async fn find(&self, token: &str, state: &AppState) -> Result<ApiKey, ApiError> {
        let hash: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        if let Some(memory) = &self.memory {
            if let Some(key) = memory.known.get(&hash) {
                self.count("cached");
                return Ok(key);
            }
            if memory.unknown.get(&hash).is_some() {
                self.count("cached_unknown");
                return Err(ApiError::Unauthorized);
            }
        }
        let _permit = self
            .lookups
            .acquire()
            .await
            .map_err(|_| ApiError::Internal("key lookups closed"))?;
        let mut conn = state.connection().await?;
        let found = keys::find_key(&mut conn, token).await?;
        self.count(if found.is_some() { "found" } else { "unknown" });
        if let Some(memory) = &self.memory {
            match &found {
                Some(key) => memory.known.insert(hash, key.clone()),
                None => memory.unknown.insert(hash, ()),
            }
        }
        found.ok_or(ApiError::Unauthorized)
    }
}

/// A token bucket per key id (governor's GCRA, which is a token bucket without a timer).
pub struct RateLimiter {
    /// `None` when the rate is 0: no limit.
    limiter: Option<DefaultKeyedRateLimiter<i64>>,
}

impl RateLimiter {
    #[must_use]
    pub fn new(per_second: u32, burst: u32) -> Self {
        let limiter = NonZeroU32::new(per_second).map(|rate| {
            let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
            governor::RateLimiter::keyed(Quota::per_second(rate).allow_burst(burst))
        });
        Self { limiter }
    }

    /// Takes one token for `key_id`, or says how many whole seconds until one is available.
    ///
    /// # Errors
    /// The seconds to wait when the bucket is empty.
    pub fn take(&self, key_id: i64) -> Result<(), u64> {
        let Some(limiter) = &self.limiter else {
            return Ok(());
        };
        limiter.check_key(&key_id).map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            // Whole seconds, rounded up, at least 1: Retry-After has whole seconds.
            (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)
        })
    }
}

/// The key presented with the request: `Authorization: Bearer <token>` (a bare token is
/// accepted too, as InviteLogger clients send it).
///
/// # Errors
/// 401 when there is no key or it is unknown or revoked.
pub async fn authenticate(req: &HttpRequest, state: &AppState) -> Result<ApiKey, ApiError> {
    let header = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .ok_or(ApiError::Unauthorized)?
        .trim();
    let token = header
        .strip_prefix("Bearer ")
        .or_else(|| header.strip_prefix("bearer "))
        .unwrap_or(header)
        .trim();
    // Not shaped like a key: unknown without taking a connection or querying.
    if !keys::is_well_formed(token) {
        return Err(ApiError::Unauthorized);
    }
    state.keys.find(token, state).await
}

/// 403 unless the key may read this bot's and guild's data.
///
/// # Errors
/// When the key belongs to another bot or guild.
pub fn authorize(key: &ApiKey, guild: GuildKey) -> Result<(), ApiError> {
    if key.bot_id != guild.bot_id {
        return Err(ApiError::Forbidden("another bot's data"));
    }
    if !key.allows(guild.bot_id, guild.guild_id) {
        return Err(ApiError::Forbidden("another guild's data"));
    }
    Ok(())
}

/// An authenticated, rate-limited caller. As the first argument of a handler it answers 401
/// and 429 before anything else about the request is looked at.
///
/// A browser signed in with Discord has no key: its session stands for one of the bot, with
/// the admin scope, limited to the session's guilds (`docs/dashboard.md#login`).
pub struct Caller(pub ApiKey, pub Option<Session>);

impl Caller {
    /// 403 unless the key may read this guild.
    ///
    /// # Errors
    /// When the key belongs to another bot or guild.
    pub fn read(&self, guild: &GuildPath) -> Result<(), ApiError> {
        self.may_read(guild.key())
    }

    /// 403 unless the key (or the session) may read this guild.
    ///
    /// # Errors
    /// When it belongs to another bot or guild.
    pub fn may_read(&self, guild: GuildKey) -> Result<(), ApiError> {
        authorize(&self.0, guild)?;
        match &self.1 {
            Some(session) if !session.guild_ids.contains(&guild.guild_id) => Err(
                ApiError::Forbidden("a guild where you do not have Manage Server"),
            ),
            _ => Ok(()),
        }
    }

    /// 403 unless the key may write to this guild (its bot and guild, and the admin scope).
    ///
    /// # Errors
    /// When it may not.
    pub fn admin(&self, guild: &GuildPath) -> Result<(), ApiError> {
        self.read(guild)?;
        if self.0.scope == KeyScope::Admin {
            Ok(())
        } else {
            Err(ApiError::InsufficientScope)
        }
    }
}

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let state = req
                .app_data::<web::Data<AppState>>()
                .ok_or(ApiError::Internal("application state missing"))?;
            if req.headers().get(AUTHORIZATION).is_none()
                && let Some(session) = crate::login::session_of(&req, state).await?
            {
                if !matches!(req.method().as_str(), "GET" | "HEAD") {
                    crate::login::check_csrf(&req, &session)?;
                }
                let key = ApiKey {
                    // Negative: never a key's id, one rate-limit bucket per user.
                    id: -session.user_id.to_db(),
                    bot_id: session.bot_id,
                    guild_id: None,
                    scope: KeyScope::Admin,
                    label: format!("discord:{}", session.user_id),
                    created_at: session.expires_at,
                };
                state
                    .limiter
                    .take(key.id)
                    .map_err(|retry_after_secs| ApiError::RateLimited { retry_after_secs })?;
                return Ok(Caller(key, Some(session)));
            }
            let key = authenticate(&req, state).await?;
            state
                .limiter
                .take(key.id)
                .map_err(|retry_after_secs| ApiError::RateLimited { retry_after_secs })?;
            Ok(Caller(key, None))
        })
    }
}

/// `{bot_id}` and `{guild_id}` of the URL path, parsed: 400 naming the parameter when malformed.
#[derive(Debug, Clone, Copy)]
pub struct GuildPath {
    pub bot_id: BotId,
    pub guild_id: GuildId,
}

impl GuildPath {
    #[must_use]
    pub fn key(&self) -> GuildKey {
        GuildKey::new(self.bot_id, self.guild_id)
    }
}

impl FromRequest for GuildPath {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready((|| {
            Ok(Self {
                bot_id: path_snowflake(req, "bot_id")?,
                guild_id: path_snowflake(req, "guild_id")?,
            })
        })())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_refill_and_refuse() {
        let limiter = RateLimiter::new(1, 2);
        assert_eq!(limiter.take(1), Ok(()));
        assert_eq!(limiter.take(1), Ok(()));
        assert_eq!(limiter.take(1), Err(1));
        // Another key has its own bucket.
        assert_eq!(limiter.take(2), Ok(()));
        let unlimited = RateLimiter::new(0, 0);
        for _ in 0..1000 {
            assert_eq!(unlimited.take(1), Ok(()));
        }
    }
}
