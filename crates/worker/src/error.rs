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
