#![doc = include_str!("../README.md")]

pub mod admin;
pub mod counts;
pub mod dashboard;
mod db;
pub mod decisions;
pub mod export;
pub mod import;
pub mod invites;
pub mod join_reports;
pub mod joins;
mod keyed;
pub mod keys;
pub mod member_invites;
pub mod members;
pub mod posts;
mod prepared;
pub mod progress;
pub mod schema;
pub mod sessions;
pub mod webhooks;

pub use db::{
    Pool, PooledConnection, connect, ensure_database, ping, pool, prepare_database, run_migrations,
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
    #[error("a stored JSON value is not readable")]
    State(#[from] serde_json::Error),
    #[error(transparent)]
    Time(#[from] invitrack_model::time::TimeOutOfRange),
}

/// Rows or keys per `unnest($1::int8[], ..)` statement: arrays are one parameter each, so this
/// only bounds the size of one message.
pub(crate) const ARRAY_CHUNK: usize = 10_000;

/// A `text[]` literal (`{"a","b"}`): ragged arrays cannot be one array parameter, so each
/// row's list travels as text and is cast back.
pub(crate) fn text_array_literal<'a>(items: impl IntoIterator<Item = &'a str>) -> String {
    let mut literal = String::from("{");
    for (index, item) in items.into_iter().enumerate() {
        if index > 0 {
            literal.push(',');
        }
        literal.push('"');
        for c in item.chars() {
            if c == '"' || c == '\\' {
                literal.push('\\');
            }
            literal.push(c);
        }
        literal.push('"');
    }
    literal.push('}');
    literal
}

#[cfg(test)]
mod tests {
    use super::text_array_literal;

    #[test]
    fn text_array_literal_quotes_every_element() {
        assert_eq!(text_array_literal([]), "{}");
        assert_eq!(
            text_array_literal(["ab", "a\"b", "c\\d", "x,y", "{z}"]),
            r#"{"ab","a\"b","c\\d","x,y","{z}"}"#
        );
    }
}
