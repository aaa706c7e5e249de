//! `ensure_streams` against the shared NATS server (`NATS_URL`), under a prefix of its own.

use std::time::Duration;

use async_nats::jetstream::stream;
use invitrack_bus::{BusConfig, BusLayout, StreamSettings, ensure_streams};

/// Streams made by an earlier version (no byte limit, old messages discarded) are updated to
/// the configured limit, discard policy and duplicate window; ensuring again changes nothing.
#[tokio::test]
async fn streams_of_an_earlier_version_are_updated() {
    let config = BusConfig {
        nats_url: invitrack_testkit::nats_url(),
        bus_prefix: invitrack_testkit::unique("bus-update"),
        bus_partitions: 2,
        bus_max_age_hours: 1,
        ..BusConfig::default()
    };
    let client = config.client().await.expect("NATS");
    let js = async_nats::jetstream::new(client);
    let layout: BusLayout = config.layout().expect("layout");
    for partition in 0..layout.partitions() {
        js.create_stream(stream::Config {
            name: layout.partition_stream(partition),
            subjects: vec![layout.partition_filter(partition)],
            max_age: Duration::from_secs(3600),
            duplicate_window: Duration::from_secs(120),
            ..Default::default()
        })
        .await
        .expect("an old-style stream");
    }
    let settings = StreamSettings {
        max_bytes: 8 << 20,
        duplicate_window: Duration::from_secs(30),
        ..config.stream_settings()
    };
    let ensured = ensure_streams(&js, &layout, &settings).await;
    let mut infos = Vec::new();
    for name in layout
        .partition_streams()
        .into_iter()
        .chain([layout.decision_stream(), layout.dead_letter_stream()])
    {
        let info = js
            .get_stream(&name)
            .await
            .expect("stream")
            .info()
            .await
            .expect("info")
            .config
            .clone();
        infos.push(info);
    }
    let again = ensure_streams(&js, &layout, &settings).await;
    invitrack_bus::delete_streams(&js, &layout).await;
    ensured.expect("streams updated");
    again.expect("nothing to change");
    for info in infos {
        assert_eq!(info.max_bytes, 8 << 20, "{}", info.name);
        assert_eq!(
            info.duplicate_window,
            Duration::from_secs(30),
            "{}",
            info.name
        );
        assert_eq!(info.num_replicas, 1, "{}", info.name);
        let discard = if info.name == layout.dead_letter_stream() {
            stream::DiscardPolicy::Old
        } else {
            stream::DiscardPolicy::New
        };
        assert_eq!(info.discard, discard, "{}", info.name);
    }
}

/// A full event stream refuses a publish instead of discarding what it holds; ingest's
/// publisher retries every failed publish, so the event waits in its buffer.
#[tokio::test]
async fn a_full_event_stream_refuses_new_events() {
    let config = BusConfig {
        nats_url: invitrack_testkit::nats_url(),
        bus_prefix: invitrack_testkit::unique("bus-full"),
        bus_partitions: 1,
        bus_max_age_hours: 1,
        bus_max_bytes: 4096,
        ..BusConfig::default()
    };
    let bus = config.connect().await.expect("NATS");
    let version = bus.client.server_info().version;
    if invitrack_bus::discard_new_unsafe(&version) {
        // Seen with 2.9.10: 100 events into 4 KiB, all acknowledged, the first 70 gone.
        eprintln!(
            "SKIPPED a_full_event_stream_refuses_new_events: nats-server {version} trims a full \
             DiscardNew stream (nats-server#4771); run with NATS_URL on a newer server"
        );
        invitrack_bus::delete_streams(&bus.jetstream, &bus.layout).await;
        return;
    }
    let mut refused = None;
    for i in 0..100 {
        let event = invitrack_bus::GuildEvent {
            bot_id: 1,
            guild_id: 2,
            observed_at_ms: i,
            shard_id: 0,
            kind: Some(invitrack_bus::EventKind::MemberRemove(
                invitrack_bus::proto::MemberRemove { user_id: 3 },
            )),
        };
        let ack =
            invitrack_bus::publish_event(&bus.jetstream, &bus.layout, &event, &format!("e{i}"))
                .await
                .expect("sent");
        if let Err(error) = ack.await {
            refused = Some((i, error.to_string()));
            break;
        }
    }
    let state = bus
        .jetstream
        .get_stream(bus.layout.partition_stream(0))
        .await
        .expect("stream")
        .info()
        .await
        .expect("info")
        .clone();
    let (state, discard) = (state.state, state.config.discard);
    assert_eq!(discard, stream::DiscardPolicy::New);
    let first = state.first_sequence;
    invitrack_bus::delete_streams(&bus.jetstream, &bus.layout).await;
    let (at, error) = refused.unwrap_or_else(|| panic!("the stream refused no event: {state:?}"));
    assert!(at > 0, "refused the first event: {error}");
    assert_eq!(first, 1, "the stream discarded its oldest event");
}
