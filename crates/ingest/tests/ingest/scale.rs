//! Several bots into one stream; one bot's shards split over several processes.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use invitrack_ingest::ShardRange;
use invitrack_sim::{JoinSpec, JoinVia, SimConfig};
use twilight_model::id::{Id, marker::GuildMarker};

use crate::helpers::{
    RunningIngest, TestBus, guild_with_invite, ingest_config, member_adds, nats_url, snapshots,
    start_sim,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_bots_two_ingest_instances_share_one_stream() {
    let bus = TestBus::new(&nats_url()).await;
    let bots = [
        (859_000_000_000_000_101_u64, "token-bot-a"),
        (859_000_000_000_000_202_u64, "token-bot-b"),
    ];
    let mut sims = Vec::new();
    let mut ingests = Vec::new();
    for (bot_id, token) in bots {
        let sim = start_sim(SimConfig {
            bot_user_id: bot_id,
            bot_token: token.into(),
            ..SimConfig::default()
        })
        .await;
        let (guild_id, code) = guild_with_invite(&sim, "shared");
        let ingest = RunningIngest::start(ingest_config(&sim, &bus.config)).await;
        assert_eq!(ingest.bot_id.get(), bot_id);
        sims.push((sim, guild_id, code));
        ingests.push(ingest);
    }
    for ingest in &ingests {
        ingest
            .wait_metrics(Duration::from_secs(20), "the baseline snapshot", |m| {
                m.snapshots_published() >= 1
            })
            .await;
    }
    let mut expected = HashSet::new();
    for (sim, guild_id, code) in &sims {
        for _ in 0..3 {
            let truth = sim
                .world()
                .join(
                    *guild_id,
                    JoinVia::Invite(code.clone()),
                    JoinSpec::default(),
                )
                .expect("join");
            expected.insert((truth.guild_id.get(), truth.user_id.get()));
        }
    }

    let events = bus
        .wait_for(Duration::from_secs(20), "six joins", |events| {
            member_adds(events).len() >= 6
        })
        .await;
    let joins = member_adds(&events);
    assert_eq!(joins.len(), 6, "each join once: {joins:?}");
    assert_eq!(joins.into_iter().collect::<HashSet<_>>(), expected);
    // Every event sits under its own bot's subject, and says which bot saw it.
    let mut per_bot: HashMap<u64, usize> = HashMap::new();
    for (subject, event) in &events {
        let (_, subject_guild) = bus
            .layout
            .parse_guild_subject(subject)
            .expect("a guild subject");
        assert_eq!(subject_guild, event.guild());
        *per_bot.entry(event.bot_id).or_default() += 1;
    }
    assert_eq!(
        per_bot.keys().copied().collect::<HashSet<_>>(),
        bots.iter().map(|(id, _)| *id).collect::<HashSet<_>>()
    );

    for ingest in ingests {
        ingest.stop().await;
    }
    bus.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shard_ranges_split_one_bot_over_two_processes() {
    let bus = TestBus::new(&nats_url()).await;
    let sim = start_sim(SimConfig {
        shards: 4,
        ..SimConfig::default()
    })
    .await;
    // A guild's shard is its creation millisecond modulo the total (its id's timestamp): make
    // at least 12, and more until both processes' halves (shards 0-1 and 2-3) have some, since
    // a loaded machine's sleeps can land every creation on the same residue.
    let mut guilds = Vec::new();
    let half = |guild: &Id<GuildMarker>| (guild.get() >> 22) % 4 / 2;
    while guilds.len() < 12
        || !(0..2).all(|h| {
            guilds
                .iter()
                .any(|(g, _): &(Id<GuildMarker>, String)| half(g) == h)
        })
    {
        assert!(guilds.len() < 200, "guilds never spread over the shards");
        guilds.push(guild_with_invite(&sim, &format!("g{}", guilds.len())));
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
    let n = guilds.len();

    let ranges = ["0-1", "2-3"];
    let mut ingests = Vec::new();
    for range in ranges {
        let config = invitrack_ingest::IngestConfig {
            shard_total: Some(4),
            shard_range: Some(range.parse::<ShardRange>().expect("a range")),
            ..ingest_config(&sim, &bus.config)
        };
        ingests.push(RunningIngest::start(config).await);
    }
    // Each process identifies two shards, 5 s apart (the sim's max_concurrency is 1).
    for ingest in &ingests {
        ingest
            .wait_metrics(Duration::from_secs(30), "two shards up", |m| {
                m.shards_connected() == 2
            })
            .await;
    }
    let events = bus
        .wait_for(Duration::from_secs(30), "a baseline per guild", |events| {
            snapshots(events).len() >= n
        })
        .await;
    let baselines = snapshots(&events);
    assert_eq!(
        baselines.len(),
        n,
        "one baseline per guild, from one process"
    );
    let total_guilds: u64 = ingests.iter().map(|i| i.metrics.guilds()).sum();
    assert_eq!(total_guilds, n as u64);
    for snapshot in &baselines {
        // The simulator puts a guild on shard (id >> 22) % total, as Discord does.
        assert_eq!(u64::from(snapshot.shard_id), (snapshot.guild_id >> 22) % 4);
    }
    // Both processes own some of the guilds.
    assert!(ingests.iter().all(|i| i.metrics.guilds() > 0));

    for (guild_id, code) in &guilds {
        sim.world()
            .join(
                *guild_id,
                JoinVia::Invite(code.clone()),
                JoinSpec::default(),
            )
            .expect("join");
    }
    let events = bus
        .wait_for(Duration::from_secs(20), "a join per guild", |events| {
            member_adds(events).len() >= n
        })
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let joins = member_adds(&bus.events().await);
    assert_eq!(joins.len(), n, "each join published by exactly one process");
    assert_eq!(
        joins.iter().map(|(g, _)| *g).collect::<HashSet<_>>(),
        guilds.iter().map(|(g, _)| g.get()).collect::<HashSet<_>>()
    );
    drop(events);

    for ingest in ingests {
        ingest.stop().await;
    }
    bus.cleanup().await;
}
