//! Server addresses from the environment, and names no other test run uses.

use rand::Rng as _;

const DEFAULT_DATABASE_SERVER: &str = "postgres://postgres@127.0.0.1:5432";
const DEFAULT_NATS_URL: &str = "nats://127.0.0.1:4222";

/// The PostgreSQL server of `DATABASE_URL` without its database name (and query), or this
/// machine's default. Tests add a database name of their own.
#[must_use]
pub fn database_server_url() -> String {
    std::env::var("DATABASE_URL")
        .ok()
        .and_then(|url| server_part(&url))
        .unwrap_or_else(|| DEFAULT_DATABASE_SERVER.to_owned())
}

fn server_part(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let authority = rest.split(['/', '?']).next()?;
    (!authority.is_empty()).then(|| format!("{scheme}://{authority}"))
}

/// The shared NATS server (`NATS_URL`, or this machine's default).
#[must_use]
pub fn nats_url() -> String {
    std::env::var("NATS_URL").unwrap_or_else(|_| DEFAULT_NATS_URL.to_owned())
}

/// `prefix` followed by the process id and a random part: a database name, a bus prefix or a
/// directory no parallel test (or running demo) uses. Only `[a-z0-9_]` when `prefix` is.
#[must_use]
pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}_{}_{:012x}",
        std::process::id(),
        rand::rng().random::<u64>() & 0xffff_ffff_ffff
    )
}

#[cfg(test)]
mod tests {
    use super::server_part;

    #[test]
    fn the_database_name_and_query_are_dropped() {
        for (url, server) in [
            (
                "postgres://postgres@127.0.0.1:5432/invitrack",
                "postgres://postgres@127.0.0.1:5432",
            ),
            (
                "postgres://u:p@db:5433/x?sslmode=disable",
                "postgres://u:p@db:5433",
            ),
            ("postgres://localhost", "postgres://localhost"),
        ] {
            assert_eq!(server_part(url).as_deref(), Some(server), "{url}");
        }
        assert_eq!(server_part("not a url"), None);
    }
}
