//! Typed snowflakes: a guild id can never be passed where a user id is expected.
//!
//! Modelled on twilight-model's `Id<Marker>`. Only ingest sees twilight's ids; it converts them
//! here, and every crate inward uses these.

use std::{
    cmp::Ordering,
    fmt,
    hash::{Hash, Hasher},
    marker::PhantomData,
    str::FromStr,
};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::time::{DISCORD_EPOCH_MS, Millis};

/// The bot whose view of Discord a row belongs to (one deployment may track several bots).
#[derive(Debug)]
pub enum BotMarker {}
/// A Discord guild (server).
#[derive(Debug)]
pub enum GuildMarker {}
/// A Discord user: members and inviters.
#[derive(Debug)]
pub enum UserMarker {}
/// A Discord channel.
#[derive(Debug)]
pub enum ChannelMarker {}

pub type BotId = Id<BotMarker>;
pub type GuildId = Id<GuildMarker>;
pub type UserId = Id<UserMarker>;
pub type ChannelId = Id<ChannelMarker>;

/// A snowflake of the kind `M`.
///
/// Serialized as a JSON number (as the engine's saved state always stored user ids); the HTTP
/// API writes ids as strings itself, as Discord does.
#[cfg_attr(
    feature = "diesel",
    derive(diesel::expression::AsExpression, diesel::deserialize::FromSqlRow),
    diesel(sql_type = diesel::sql_types::BigInt)
)]
pub struct Id<M> {
    value: u64,
    kind: PhantomData<fn(M) -> M>,
}

impl<M> Id<M> {
    /// An id from its number. Zero is not a valid snowflake; use [`Id::new_checked`] where it
    /// may appear (the bus writes 0 for "absent").
    #[must_use]
    pub const fn new(value: u64) -> Self {
        Self {
            value,
            kind: PhantomData,
        }
    }

    /// `None` for 0, the bus's "absent".
    #[must_use]
    pub const fn new_checked(value: u64) -> Option<Self> {
        if value == 0 {
            None
        } else {
            Some(Self::new(value))
        }
    }

    #[must_use]
    pub const fn get(self) -> u64 {
        self.value
    }

    /// The same bits as PostgreSQL's BIGINT: the cast round-trips every snowflake.
    #[must_use]
    pub const fn to_db(self) -> i64 {
        self.value.cast_signed()
    }

    /// The inverse of [`Id::to_db`].
    #[must_use]
    pub const fn from_db(value: i64) -> Self {
        Self::new(value.cast_unsigned())
    }

    /// When the snowflake was made: for a user, when the account was created
    /// (`(id >> 22) + Discord's epoch`), so no API call is needed to know an account's age.
    #[must_use]
    pub fn created_at(self) -> Millis {
        i64::try_from(self.value >> 22).unwrap_or(i64::MAX) + DISCORD_EPOCH_MS
    }

    /// Parses a snowflake as it appears in URLs and JSON strings: a non-zero decimal u64.
    ///
    /// # Errors
    /// When the text is not such a number.
    pub fn parse(raw: &str) -> Result<Self, IdError> {
        // `u64::from_str` also takes a leading `+`; a snowflake is digits only.
        match raw.parse::<u64>() {
            Ok(value) if value != 0 && raw.bytes().all(|b| b.is_ascii_digit()) => {
                Ok(Self::new(value))
            }
            _ => Err(IdError {
                raw: raw.chars().take(40).collect(),
            }),
        }
    }
}

impl GuildId {
    /// The gateway shard that carries the guild's events: Discord's
    /// `(guild_id >> 22) % shard_total` (a total of 0 is taken as 1).
    #[must_use]
    pub fn shard(self, shard_total: u32) -> u32 {
        u32::try_from((self.value >> 22) % u64::from(shard_total.max(1))).unwrap_or(u32::MAX)
    }
}

/// A text that is not a snowflake.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{raw:?} is not a snowflake (a non-zero decimal number below 2^64)")]
pub struct IdError {
    raw: String,
}

impl<M> FromStr for Id<M> {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

// Manual impls: derives would require `M` itself to be Clone, Eq, ...
impl<M> Clone for Id<M> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<M> Copy for Id<M> {}
impl<M> PartialEq for Id<M> {
    fn eq(&self, other: &Self) -> bool {
        self.value == other.value
    }
}
impl<M> Eq for Id<M> {}
impl<M> PartialOrd for Id<M> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl<M> Ord for Id<M> {
    fn cmp(&self, other: &Self) -> Ordering {
        self.value.cmp(&other.value)
    }
}
impl<M> Hash for Id<M> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.value.hash(state);
    }
}
impl<M> fmt::Display for Id<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.value, f)
    }
}
impl<M> fmt::Debug for Id<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = std::any::type_name::<M>();
        let kind = kind.rsplit("::").next().unwrap_or(kind);
        write!(f, "{}({})", kind.trim_end_matches("Marker"), self.value)
    }
}
impl<M> Serialize for Id<M> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u64(self.value)
    }
}
impl<'de, M> Deserialize<'de> for Id<M> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        u64::deserialize(deserializer).map(Self::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_guilds_shard_is_discords_rule() {
        let guild = GuildId::new(197_038_439_483_310_086);
        assert_eq!(guild.shard(1), 0);
        assert_eq!(guild.shard(0), 0, "no shard total counts as one");
        assert_eq!(
            guild.shard(16),
            u32::try_from((197_038_439_483_310_086_u64 >> 22) % 16).expect("small")
        );
        assert_eq!(GuildId::new(5 << 22).shard(4), 1);
    }

    #[test]
    fn parse_accepts_snowflakes_only() {
        assert_eq!(GuildId::parse("123").map(Id::get), Ok(123));
        assert_eq!(
            UserId::parse("18446744073709551615").map(Id::get),
            Ok(u64::MAX)
        );
        for bad in [
            "",
            "0",
            "-1",
            "+1",
            "1.5",
            " 1",
            "18446744073709551616",
            "abc",
        ] {
            assert!(UserId::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn db_cast_round_trips() {
        for v in [1, 42, i64::MAX.cast_unsigned(), u64::MAX] {
            assert_eq!(UserId::from_db(UserId::new(v).to_db()).get(), v);
        }
    }

    #[test]
    fn account_creation_time_from_snowflake() {
        // Discord's documented example: 175928847299117063 was made at 1462015105796.
        assert_eq!(
            UserId::new(175_928_847_299_117_063).created_at(),
            1_462_015_105_796
        );
    }

    #[test]
    fn serializes_as_a_number() {
        let id = UserId::new(859);
        assert_eq!(serde_json::to_string(&id).ok().as_deref(), Some("859"));
        assert_eq!(serde_json::from_str::<UserId>("859").ok(), Some(id));
        assert_eq!(format!("{id:?}"), "User(859)");
    }
}
