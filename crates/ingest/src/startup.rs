//! Start-up progress: after a start, every guild's invites must be read once before its joins
//! can be attributed, which takes minutes for thousands of guilds under the request budget.
//! This logs how far that is (guilds read of total, with an estimate of the time left) and
//! keeps `invitrack_ingest_startup_eta_seconds` up to date.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::metrics::IngestMetrics;

/// How often progress is logged while guilds wait for their first read.
const REPORT_EVERY: Duration = Duration::from_secs(10);

/// The time left to read `remaining` guilds at the pace of `read` guilds in `elapsed`; `None`
/// before any pace is known.
#[must_use]
pub(crate) fn time_left(read: u64, elapsed: Duration, remaining: u64) -> Option<Duration> {
    if read == 0 || elapsed.is_zero() {
        return None;
    }
    let per_guild = elapsed.as_secs_f64() / read as f64;
    Some(Duration::from_secs_f64(per_guild * remaining as f64))
}

/// Logs and exports the progress until `stop`. A phase of catching up starts whenever guilds
/// wait for their first read (at start, or when many guilds become available after an outage)
/// and ends when all are read.
pub(crate) async fn report(metrics: Arc<IngestMetrics>, stop: CancellationToken) {
    let mut phase: Option<(Instant, u64)> = None;
    loop {
        tokio::select! {
            () = tokio::time::sleep(REPORT_EVERY) => {}
            () = stop.cancelled() => return,
        }
        let (total, read) = (metrics.guilds(), metrics.guilds_read());
        if read >= total {
            if let Some((started, _)) = phase.take() {
                tracing::info!(
                    guilds = total,
                    seconds = started.elapsed().as_secs(),
                    "every guild's invites read: joins anywhere can be attributed"
                );
            }
            metrics.startup_eta.set(0.0);
            continue;
        }
        let (started, read_at_start) = *phase.get_or_insert((Instant::now(), read));
        let left = time_left(
            read.saturating_sub(read_at_start),
            started.elapsed(),
            total - read,
        );
        metrics
            .startup_eta
            .set(left.map_or(-1.0, |left| left.as_secs_f64().round()));
        tracing::info!(
            guilds_read = read,
            guilds = total,
            eta_seconds = left.map(|left| left.as_secs()),
            "reading every guild's invites once (joins in guilds not read yet stay unattributed)"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_time_left_follows_the_pace_so_far() {
        assert_eq!(time_left(0, Duration::from_secs(10), 100), None);
        assert_eq!(time_left(5, Duration::ZERO, 100), None);
        assert_eq!(
            time_left(400, Duration::from_secs(10), 9_600),
            Some(Duration::from_secs(240))
        );
        assert_eq!(
            time_left(10, Duration::from_secs(1), 0),
            Some(Duration::ZERO)
        );
    }
}
