//! The servers invitrack's tests run against, each test with its own: a nats-server on a free
//! port or three clustered on loopback, a PostgreSQL database (or a whole cluster for crash tests), free ports, temporary
//! directories, an HTTP receiver (webhooks) and waiting helpers. Dev-only: no service depends on it.
//!
//! Where the servers are comes from the environment, with this machine's defaults (see
//! `docs/operations.md#test-servers`):
//! - `DATABASE_URL`: the PostgreSQL server tests create their databases on (its database name
//!   is ignored), default `postgres://postgres@127.0.0.1:5432`;
//! - `NATS_URL`: the shared NATS with JetStream, default `nats://127.0.0.1:4222`;
//! - `NATS_SERVER_BIN` or `PATH`: the nats-server binary for tests that run their own;
//! - `PG_BIN_DIR` or `pg_config --bindir`: PostgreSQL's binaries for tests that run a cluster.

mod cluster;
mod dir;
mod env;
mod nats;
mod net;
mod postgres;
mod receiver;

pub use cluster::{CLUSTER_SIZE, NatsCluster};
pub use dir::TempDir;
pub use env::{database_server_url, nats_url, unique};
pub use nats::{NatsServer, tail};
pub use net::{free_port, wait_for_port};
pub use postgres::{PostgresCluster, TestDatabase};
pub use receiver::{Answer, ReceivedRequest, Receiver};

/// Waits until `check` returns `Some` (polling every 50 ms), at most `within`.
///
/// # Panics
/// When `within` passes first, naming `what` was awaited.
pub async fn eventually<T, F, Fut>(within: std::time::Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "gave up after {within:?} waiting for {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
