//! The end of a step: the touched guilds' engine states and the partition's new sequence,
//! written in the step's transaction and fenced by the claim.

use invitrack_model::GuildKey;
use invitrack_storage::AsyncPgConnection;
use invitrack_storage::progress::{self, GuildStateRow, PartitionClaim};

use crate::WorkerError;

/// Where a partition's progress is recorded, and the claim that fences it.
pub(crate) struct Progress {
    pub(crate) stream: String,
    pub(crate) partition: u32,
    pub(crate) claim: PartitionClaim,
}

impl Progress {
    /// Saves the engine states and moves the committed sequence to `last`. Fails with
    /// [`WorkerError::Fenced`] when another worker claimed the partition, or the database is
    /// behind this picture of it (a commit lost in a crash): the caller must roll back.
    pub(crate) async fn commit(
        &self,
        conn: &mut AsyncPgConnection,
        states: &[(GuildKey, GuildStateRow)],
        last: u64,
    ) -> Result<(), WorkerError> {
        progress::save_guild_states(conn, states).await?;
        let advanced = progress::advance_sequence(
            conn,
            &self.stream,
            self.partition,
            self.claim.epoch,
            self.claim.last_sequence,
            last,
        )
        .await?;
        if advanced {
            Ok(())
        } else {
            Err(WorkerError::Fenced {
                partition: self.partition,
            })
        }
    }
}
