//! From a join to its message: how long a member waits to be announced, beside how long the
//! worker takes to decide the join. Everything in one process over real sockets: the
//! simulator, ingest, a worker and the bot, on a fresh database and bus prefix.
//!
//! ```text
//! cargo run --release -p invitrack-bot --example message_latency -- JOINS INTERVAL_MS
//! cargo run --release -p invitrack-bot --example message_latency -- 30 10000   # 0.1 join/s
//! cargo run --release -p invitrack-bot --example message_latency -- 200 0       # a raid
//! ```
//! A raid's messages are paced by the channel's bucket (the simulator's default, 5 per 5 s);
//! `SIM_CHANNEL_BUCKET=1000` widens it to see the rest of the pipeline alone.

mod support;

use std::collections::HashMap;
use std::time::Duration;

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use invitrack_model::ChannelId;
use invitrack_sim::{
    ChannelSpec, GuildSpec, InviteSpec, JoinSpec, JoinVia, Route, RouteLimit, SimConfig,
};
use invitrack_storage::admin::{Actor, SettingsChange};
use invitrack_storage::schema::joins;
use support::{Running, percentiles};
use twilight_model::id::Id;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let count = usize::try_from(<[u64]>::first(&args).copied().unwrap_or(30))?;
    let interval = Duration::from_millis(args.get(1).copied().unwrap_or(10_000));
    let mut sim_config = SimConfig::default();
    if let Some(limit) = std::env::var("SIM_CHANNEL_BUCKET")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        sim_config.rate_limits.routes.insert(
            Route::CreateMessage,
            RouteLimit {
                limit,
                window_ms: 5_000,
            },
        );
    }
    let mut setup = None;
    let running = Running::start("latency", sim_config, async |world, database_url| {
        let guild = world.create_guild(GuildSpec::default())?.guild_id;
        let code = world
            .create_invite(guild, InviteSpec::by(Id::new(777_000_000_000_000_001)))?
            .code;
        let join_log = world.create_channel(
            guild,
            ChannelSpec {
                name: "join-log".into(),
                bot_deny: 0,
            },
        )?;
        let bot_id = invitrack_model::BotId::new(world.bot().user_id.get());
        invitrack_storage::admin::update_settings(
            &mut invitrack_storage::connect(database_url).await?,
            invitrack_model::GuildKey::new(bot_id, invitrack_model::GuildId::new(guild.get())),
            SettingsChange {
                join_log_channel_id: Some(Some(ChannelId::new(join_log.get()))),
                ..SettingsChange::default()
            },
            &Actor {
                key_id: 0,
                key_label: "benchmark",
                author: "benchmark",
            },
        )
        .await?;
        setup = Some((guild, code, join_log));
        Ok(())
    })
    .await?;
    let (guild, code, join_log) = setup.expect("prepared");
    let (world, database_url, shutdown) =
        (&running.world, &running.database_url, &running.shutdown);

    let mut joined_at = HashMap::new();
    for _ in 0..count {
        let truth = world.join(guild, JoinVia::Invite(code.clone()), JoinSpec::default())?;
        joined_at.insert(truth.user_id.get(), truth.joined_at);
        tokio::time::sleep(interval).await;
    }
    // A message may carry several joins (a raid): each join's time is its message's.
    let posted_at = |messages: &[invitrack_sim::PostedMessage]| -> HashMap<u64, i64> {
        joined_at
            .iter()
            .filter_map(|(member, at)| {
                let mention = format!("<@{member}>");
                let message = messages.iter().find(|m| m.content.contains(&mention))?;
                Some((*member, (message.created_at - *at).num_milliseconds()))
            })
            .collect()
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(600);
    let to_message = loop {
        let messages = world.channel_messages(join_log)?;
        let posted = posted_at(&messages);
        if posted.len() == count {
            println!("{count} joins in {} messages", messages.len());
            break posted;
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "{} of {count} joins posted after 10 minutes",
            posted.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let mut to_message: Vec<i64> = to_message.into_values().collect();
    let mut conn = invitrack_storage::connect(database_url).await?;
    let decided: Vec<(chrono::DateTime<chrono::Utc>, chrono::DateTime<chrono::Utc>)> = joins::table
        .select((joins::created_at, joins::decided_at))
        .load(&mut conn)
        .await?;
    let mut to_decision: Vec<i64> = decided
        .iter()
        .map(|(joined, decided)| (*decided - *joined).num_milliseconds())
        .collect();
    shutdown.cancel();
    let rate = if interval.is_zero() {
        "a raid (no pause)".to_owned()
    } else {
        format!("{:.2} join/s", 1.0 / interval.as_secs_f64())
    };
    println!("{count} joins at {rate}:");
    println!(
        "  join -> decision stored: {}",
        percentiles(&mut to_decision)
    );
    println!(
        "  join -> message posted:  {}",
        percentiles(&mut to_message)
    );
    Ok(())
}
