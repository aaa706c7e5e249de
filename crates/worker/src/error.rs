//! The worker's errors: kinds callers match on, with their sources.

use invitrack_bus::BusError;
use invitrack_model::GuildKey;
use invitrack_storage::StorageError;

pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Why the worker (or one step of it) failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WorkerError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Bus(#[from] BusError),
    /// A JetStream request failed.
    #[error("JetStream: {operation} failed")]
    JetStream {
        operation: &'static str,
        #[source]
        source: BoxError,
    },
    /// The partition's consumer may have missed messages: the partition resumes from its last
    /// commit.
    #[error("partition consumer interrupted: {0}")]
    Interrupted(Interruption),
    #[error("partition {partition} was claimed by another worker")]
    Fenced { partition: u32 },
    /// The metrics and health endpoint could not be set up.
    #[error("could not serve metrics and health on {addr}")]
    MetricsBind {
        addr: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
    /// A broken assumption inside the worker: a bug, reported rather than panicking.
    #[error("guild {guild:?} of the batch was not loaded")]
    GuildNotLoaded { guild: GuildKey },
}

/// Why a partition's consumer can no longer be trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Interruption {
    #[error("reconnected to NATS; the consumer may be gone")]
    Reconnected,
    #[error("consumer stream ended")]
    Ended,
    #[error("delivery {delivered} after {previous}: messages lost in transit")]
    Gap { previous: u64, delivered: u64 },
}

impl WorkerError {
    /// Whether PostgreSQL refused what a batch asked of it (a value out of range, a constraint,
    /// a text it cannot store), rather than failing to answer: applying the batch's messages
    /// apart can then find the one it refuses. A refusal that was transient after all only
    /// costs those separate applications.
    #[must_use]
    pub fn refused_by_database(&self) -> bool {
        use diesel::result::{DatabaseErrorKind as Kind, Error as Diesel};
        match self {
            Self::Storage(StorageError::Query(error)) => match error {
                Diesel::DatabaseError(kind, _) => !matches!(
                    kind,
                    Kind::ClosedConnection | Kind::SerializationFailure | Kind::ReadOnlyTransaction
                ),
                Diesel::SerializationError(_)
                | Diesel::DeserializationError(_)
                | Diesel::InvalidCString(_) => true,
                _ => false,
            },
            Self::Storage(StorageError::Time(_) | StorageError::State(_)) => true,
            _ => false,
        }
    }

    pub(crate) fn jetstream(operation: &'static str, source: impl Into<BoxError>) -> Self {
        Self::JetStream {
            operation,
            source: source.into(),
        }
    }
}

impl From<diesel::result::Error> for WorkerError {
    fn from(e: diesel::result::Error) -> Self {
        Self::Storage(StorageError::Query(e))
    }
}
