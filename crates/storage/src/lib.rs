#![doc = include_str!("../README.md")]

pub mod admin;
pub mod counts;
pub mod dashboard;
mod db;
pub mod joins;
pub mod keys;
pub mod members;
mod prepared;
pub mod progress;
pub mod schema;

pub use db::{
    Pool, PooledConnection, connect, ensure_database, millis_to_time, pool, prepare_database,
    run_migrations, time_to_millis,
};
pub use diesel_async::{AsyncConnection, AsyncPgConnection};

/// Errors of the storage layer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    #[error("could not connect to PostgreSQL")]
    Connect(#[from] diesel::ConnectionError),
    #[error("database query failed")]
    Query(#[from] diesel::result::Error),
    #[error("connection pool: {0}")]
    Pool(String),
    #[error("migrations failed: {0}")]
    Migration(String),
    #[error("invalid database URL {0:?}: expected postgres://user@host:port/database")]
    InvalidUrl(String),
    #[error("stored engine state is not readable")]
    State(#[from] serde_json::Error),
    #[error("timestamp out of range: {0} ms")]
    Time(i64),
}

/// Rows or keys per `unnest($1::int8[], ..)` statement: arrays are one parameter each, so this
/// only bounds the size of one message.
pub(crate) const ARRAY_CHUNK: usize = 10_000;

/// Snowflakes are u64; PostgreSQL has BIGINT. The cast keeps every bit, so it round-trips.
#[must_use]
pub fn db_id(id: u64) -> i64 {
    id.cast_signed()
}

/// The inverse of [`db_id`].
#[must_use]
pub fn from_db_id(id: i64) -> u64 {
    id.cast_unsigned()
}
