//! What the bot's benchmarks share: the whole system in one process over real sockets (the
//! simulator, ingest, a worker and the bot) on a fresh database and bus prefix, and how
//! figures are printed. Each example uses part of it.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use invitrack_bus::BusConfig;
use invitrack_model::{BotId, GuildId, GuildKey};
use invitrack_sim::{RunningSim, SimConfig, Simulator, World};
use tokio_util::sync::CancellationToken;
use twilight_model::id::Id;
use twilight_model::id::marker::GuildMarker;

const PG: &str = "postgres://postgres@127.0.0.1:5432";

/// How interactions reach the bot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// INTERACTION_CREATE on the gateway, through ingest and NATS.
    Gateway,
    /// Signed POSTs to the bot's interactions endpoint.
    Http,
}

pub struct Running {
    /// Kept: dropping it stops the simulator.
    pub sim: RunningSim,
    pub world: World,
    pub database_url: String,
    pub shutdown: CancellationToken,
}

impl Running {
    /// Starts the simulator with `sim_config` (bound to a free port), then, once `prepare` has
    /// populated the world and the fresh database, the worker, ingest and the bot; returns when
    /// ingest is connected.
    pub async fn start(
        name: &str,
        sim_config: SimConfig,
        prepare: impl AsyncFnOnce(&World, &str) -> anyhow::Result<()>,
    ) -> anyhow::Result<Self> {
        Self::start_with(name, sim_config, Delivery::Gateway, prepare).await
    }

    /// [`Running::start`], with interactions delivered as `delivery` says.
    pub async fn start_with(
        name: &str,
        sim_config: SimConfig,
        delivery: Delivery,
        prepare: impl AsyncFnOnce(&World, &str) -> anyhow::Result<()>,
    ) -> anyhow::Result<Self> {
        let sim = Simulator::start(SimConfig {
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            ..sim_config
        })
        .await?;
        let world = sim.world();
        let run = format!("{:08x}", rand_suffix());
        let database_url = format!("{PG}/invitrack_{name}_{run}");
        invitrack_storage::prepare_database(&database_url).await?;
        prepare(&world, &database_url).await?;
        let bus = BusConfig {
            nats_url: std::env::var("NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into()),
            bus_prefix: format!("{name}-{run}"),
            bus_partitions: 4,
            bus_max_age_hours: 1,
            ..BusConfig::default()
        };
        let shutdown = CancellationToken::new();
        let token = world.bot().token.clone();
        tokio::spawn(invitrack_worker::run(
            invitrack_worker::WorkerConfig::new(database_url.clone(), bus.clone()),
            shutdown.clone(),
        ));
        tokio::spawn(invitrack_ingest::run(
            invitrack_ingest::IngestConfig {
                discord_gateway_url: Some(sim.gateway_url()),
                discord_api_proxy: Some(sim.api_proxy()),
                ..invitrack_ingest::IngestConfig::new(token.clone(), bus.clone())
            },
            shutdown.clone(),
        ));
        let endpoint = match delivery {
            Delivery::Gateway => None,
            // A port the system gave and took back, for the bot to bind.
            Delivery::Http => Some(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?),
        };
        tokio::spawn(invitrack_bot::run(
            invitrack_bot::BotConfig {
                discord_api_proxy: Some(sim.api_proxy()),
                interactions_bind: endpoint,
                discord_public_key: endpoint.map(|_| world.bot().verify_key.clone()),
                ..invitrack_bot::BotConfig::new(token, database_url.clone(), bus)
            },
            shutdown.clone(),
        ));
        while world.connected_sessions() == 0 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // The bot's consumers and subscriptions start after its first calls to Discord.
        tokio::time::sleep(Duration::from_secs(2)).await;
        if let Some(endpoint) = endpoint {
            // As a developer sets the URL in Discord's portal: the simulator checks it first.
            let answer = reqwest::Client::new()
                .put(format!("{}/interactions-endpoint", sim.control_url()))
                .json(&serde_json::json!({"url": format!("http://{endpoint}/interactions")}))
                .send()
                .await?;
            anyhow::ensure!(
                answer.status().is_success(),
                "the interactions endpoint was refused: {}",
                answer.text().await?
            );
        }
        Ok(Self {
            sim,
            world,
            database_url,
            shutdown,
        })
    }

    pub fn guild_key(&self, guild: Id<GuildMarker>) -> GuildKey {
        GuildKey::new(
            BotId::new(self.world.bot().user_id.get()),
            GuildId::new(guild.get()),
        )
    }
}

/// `p50 …, p99 …, max … (n = …)` of `values` in ms.
pub fn percentiles(values: &mut [i64]) -> String {
    values.sort_unstable();
    let at = |q: f64| {
        let index = ((values.len() as f64 - 1.0) * q).round() as usize;
        values.get(index).copied().unwrap_or_default()
    };
    format!(
        "p50 {} ms, p99 {} ms, max {} ms (n = {})",
        at(0.5),
        at(0.99),
        values.last().copied().unwrap_or_default(),
        values.len()
    )
}

fn rand_suffix() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos())
}
