//! Slash commands under load: how long from a user's command to the bot's answer, at a steady
//! rate of commands over guilds like the demo's (six guilds, four inviters each, members who
//! joined through their invites). Everything in one process over real sockets: the simulator,
//! ingest, a worker and the bot, on a fresh database and bus prefix.
//!
//! ```text
//! cargo run --release -p invitrack-bot --example command_latency -- RATE SECONDS [http]
//! cargo run --release -p invitrack-bot --example command_latency -- 200 15
//! cargo run --release -p invitrack-bot --example command_latency -- 200 15 http
//! ```
//! The time is the simulator's, from the moment it dispatches INTERACTION_CREATE to the moment
//! the callback reaches it: it holds the gateway, ingest, NATS and the way back, so it bounds
//! the bot's own time (received by ingest → callback sent) from above. With `http` the
//! simulator POSTs each interaction, signed, to the bot's interactions endpoint instead, and
//! the time ends with the HTTP response.

mod support;

use std::time::Duration;

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use invitrack_sim::{
    GuildSpec, InteractionKind, InteractionSpec, InviteSpec, JoinSpec, JoinVia, SimConfig,
    permissions,
};
use invitrack_storage::schema::joins;
use serde_json::json;
use support::{Delivery, Running, percentiles};
use twilight_model::id::Id;
use twilight_model::id::marker::{GuildMarker, UserMarker};

/// One demo-like guild: its inviters and the members who joined.
struct Guild {
    id: Id<GuildMarker>,
    inviters: Vec<Id<UserMarker>>,
    codes: Vec<String>,
    members: Vec<Id<UserMarker>>,
}

const GUILDS: u64 = 6;
const INVITERS: u64 = 4;
const JOINS_PER_GUILD: usize = 20;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let rate = <[u64]>::first(&args).copied().unwrap_or(200).max(1);
    let seconds = args.get(1).copied().unwrap_or(15).max(1);
    let total = usize::try_from(rate * seconds)?;
    let delivery = if std::env::args().any(|a| a == "http") {
        Delivery::Http
    } else {
        Delivery::Gateway
    };
    let sim_config = SimConfig {
        // Every interaction of the run stays readable.
        message_capacity: total + 1_000,
        ..SimConfig::default()
    };
    let mut guilds = Vec::new();
    let running = Running::start_with("commands", sim_config, delivery, async |world, _| {
        for g in 0..GUILDS {
            let id = world.create_guild(GuildSpec::default())?.guild_id;
            let inviters: Vec<Id<UserMarker>> = (0..INVITERS)
                .map(|i| Id::new(1_100_000_000_000_000_000 + g * 100 + i + 1))
                .collect();
            let codes = inviters
                .iter()
                .map(|&inviter| Ok(world.create_invite(id, InviteSpec::by(inviter))?.code))
                .collect::<anyhow::Result<Vec<_>>>()?;
            guilds.push(Guild {
                id,
                inviters,
                codes,
                members: Vec::new(),
            });
        }
        Ok(())
    })
    .await?;
    let world = &running.world;

    // Members join through the inviters' codes, spaced so each is attributed.
    for n in 0..JOINS_PER_GUILD {
        for guild in &mut guilds {
            let code = guild.codes[n % guild.codes.len()].clone();
            let truth = world.join(guild.id, JoinVia::Invite(code), JoinSpec::default())?;
            guild.members.push(truth.user_id);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let joins = i64::try_from(guilds.len() * JOINS_PER_GUILD)?;
    let mut conn = invitrack_storage::connect(&running.database_url).await?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        let decided: i64 = joins::table.count().get_result(&mut conn).await?;
        if decided >= joins {
            break;
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "{decided} of {joins} joins decided"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    println!("{joins} joins decided in {} guilds", guilds.len());

    // The commands: a mix of what members type most.
    let period = Duration::from_secs_f64(1.0 / rate as f64);
    let start = tokio::time::Instant::now();
    let mut made = Vec::with_capacity(total);
    for i in 0..total {
        tokio::time::sleep_until(start + period * u32::try_from(i)?).await;
        let guild = &guilds[i % guilds.len()];
        let inviter = guild.inviters[i % guild.inviters.len()];
        let member = guild.members[i % guild.members.len()];
        let user = |name: &str, id: Id<UserMarker>| json!([{"name": name, "type": 6, "value": id.to_string()}]);
        let (name, options) = match i % 10 {
            0..=3 => ("invites", user("user", inviter)),
            4..=6 => ("leaderboard", serde_json::Value::Null),
            7 | 8 => ("inviter", user("member", member)),
            _ => ("invitecodes", user("user", inviter)),
        };
        let interaction = world.interact(InteractionSpec {
            guild_id: guild.id,
            user_id: member,
            member_permissions: permissions::EVERYONE,
            kind: InteractionKind::Command {
                name: name.to_owned(),
                options,
            },
            locale: "en-US".into(),
        })?;
        made.push(interaction.id);
    }
    let sent_in = start.elapsed();
    tokio::time::sleep(Duration::from_secs(4)).await;
    let mut answered = Vec::new();
    let (mut deferred, mut missing) = (0, 0);
    for id in &made {
        match world.interaction_reply(*id) {
            Some(reply) => {
                if matches!(reply.callback_type, 5 | 6) {
                    deferred += 1;
                }
                answered.push(i64::try_from(reply.acknowledged_after_ms)?);
            }
            None => missing += 1,
        }
    }
    running.shutdown.cancel();
    println!(
        "{total} commands at {rate}/s over {delivery:?} (sent in {:.1} s): INTERACTION_CREATE -> callback {}; {deferred} deferred, {missing} unanswered",
        sent_in.as_secs_f64(),
        percentiles(&mut answered)
    );
    Ok(())
}
