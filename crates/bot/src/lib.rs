#![doc = include_str!("../README.md")]

mod commands;
mod config;
mod consumer;
pub mod message;
mod metrics;
mod poster;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use invitrack_bus::BusError;
use invitrack_discord::{DiscordGate, GateError, RequestBudget};
use invitrack_model::BotId;
use invitrack_storage::StorageError;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

pub use config::{BotConfig, DEFAULT_REQUESTS_PER_SECOND};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Why the bot stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BotError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Bus(#[from] BusError),
    #[error("JetStream: {operation} failed")]
    JetStream {
        operation: &'static str,
        #[source]
        source: BoxError,
    },
    #[error("webhooks: {0}")]
    Webhooks(#[source] invitrack_webhooks::WebhookError),
    #[error("could not bind the metrics endpoint to {addr}")]
    MetricsBind {
        addr: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("could not bind the interactions endpoint to {addr}")]
    InteractionsBind {
        addr: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    PublicKey(#[from] commands::endpoint::BadPublicKey),
    /// Discord refused the token, or would not be asked at all.
    #[error("Discord: {0}")]
    Discord(#[source] GateError),
}

impl BotError {
    fn jetstream(operation: &'static str, source: impl Into<BoxError>) -> Self {
        Self::JetStream {
            operation,
            source: source.into(),
        }
    }

    fn pool(error: impl std::fmt::Display) -> Self {
        Self::Storage(StorageError::Pool(error.to_string()))
    }
}

/// Runs the bot until `shutdown` fires: finds out which bot the token is, then posts the join
/// and leave messages of its decisions.
///
/// # Errors
/// When the database or NATS cannot be set up at start, or Discord refuses the token.
pub async fn run(config: BotConfig, shutdown: CancellationToken) -> Result<(), BotError> {
    // A bad key is a configuration error: said before anything connects.
    let public_key = config
        .discord_public_key
        .as_deref()
        .map(commands::endpoint::parse_public_key)
        .transpose()?;
    let http = Arc::new(invitrack_discord::client(
        config.discord_token.clone(),
        config.discord_api_proxy.as_deref(),
    ));
    // Bursts of 1: ingest keeps the bursts (`docs/bot.md#sharing-the-global-limit`).
    let gate = Arc::new(DiscordGate::with_budget(
        RequestBudget::with_burst(config.requests_per_second, 1),
        config.rejection_ceiling,
    ));
    let bot_id = loop {
        match gate.call(|| http.current_user()).await {
            Ok(response) => match response.model().await {
                Ok(user) => break BotId::new(user.id.get()),
                Err(error) => return Err(BotError::jetstream("read the current user", error)),
            },
            Err(GateError::RateLimited { .. }) => {}
            Err(error) => return Err(BotError::Discord(error)),
        }
    };
    let application_id = loop {
        match gate.call(|| http.current_user_application()).await {
            Ok(response) => match response.model().await {
                Ok(application) => break application.id,
                Err(error) => return Err(BotError::jetstream("read the application", error)),
            },
            Err(GateError::RateLimited { .. }) => {}
            Err(error) => return Err(BotError::Discord(error)),
        }
    };
    match commands::definitions::register(&http, &gate, application_id).await {
        Ok(true) => tracing::info!("slash commands registered"),
        Ok(false) => tracing::info!("slash commands already registered"),
        // Commands already registered keep working; the next start tries again.
        Err(error) => tracing::warn!(
            error = &error as &dyn std::error::Error,
            "slash commands not registered"
        ),
    }
    invitrack_storage::prepare_database(&config.database_url).await?;
    let pool = invitrack_storage::pool(&config.database_url, config.db_connections)?;
    let bus = config.bus.connect().await?;
    let metrics = Arc::new(metrics::BotMetrics::new(Arc::clone(&gate)));
    let stop = shutdown.child_token();
    let metrics_addr = match config.metrics_bind {
        Some(addr) => {
            let endpoint = invitrack_telemetry::OpsEndpoint::bind(addr)
                .map_err(|source| BotError::MetricsBind { addr, source })?;
            let bound = endpoint.local_addr().ok();
            let readiness = readiness(Arc::clone(&gate), bus.client.clone(), pool.clone());
            let serving = endpoint.serve(metrics.registry.clone(), readiness, stop.clone());
            tokio::spawn(async move {
                if let Err(error) = serving.await {
                    tracing::error!(%error, "metrics and health endpoint failed");
                }
            });
            bound
        }
        None => None,
    };
    tokio::spawn(Arc::clone(&metrics).watch_waiting(bus.clone(), bot_id, stop.clone()));
    let commands = Arc::new(commands::Commands {
        http: Arc::clone(&http),
        application_id,
        pool: pool.clone(),
        bot_id,
        gate: Arc::clone(&gate),
    });
    let interactions_addr = match (config.interactions_bind, public_key) {
        (Some(addr), Some(key)) => {
            let bound = commands::endpoint::serve(addr, key, Arc::clone(&commands), stop.clone())
                .map_err(|source| BotError::InteractionsBind { addr, source })?;
            Some(bound)
        }
        _ => None,
    };
    let poster = Arc::new(poster::Poster {
        http,
        gate,
        pool,
        bot_id,
        forbidden_pause: Duration::from_secs(config.forbidden_pause_secs),
        paused: Mutex::new(HashMap::new()),
        metrics: Arc::clone(&metrics),
    });
    tracing::info!(bot_id = %bot_id, partitions = bus.layout.partitions(), metrics = ?metrics_addr, interactions = ?interactions_addr, "bot ready");
    let mut partitions = JoinSet::new();
    partitions.spawn(commands.serve(bus.clone(), stop.clone()));
    if config.webhooks.enabled {
        let webhooks = invitrack_webhooks::WebhookConfig {
            database_url: config.database_url.clone(),
            bus: config.bus.clone(),
            options: config.webhooks.clone(),
            registry: Some(metrics.registry.clone()),
        };
        let stop = stop.clone();
        partitions.spawn(async move {
            invitrack_webhooks::run(webhooks, stop)
                .await
                .map_err(BotError::Webhooks)
        });
    }
    for partition in 0..bus.layout.partitions() {
        partitions.spawn(consumer::consume_partition(
            Arc::clone(&poster),
            bus.clone(),
            bot_id,
            partition,
            stop.clone(),
        ));
    }
    let mut outcome = Ok(());
    while let Some(joined) = partitions.join_next().await {
        if let Ok(Err(error)) = joined {
            tracing::error!(error = &error as &dyn std::error::Error, "bot stopped");
            outcome = Err(error);
            stop.cancel();
        }
    }
    outcome
}

/// Ready: Discord accepts the token, NATS is connected and PostgreSQL answers.
fn readiness(
    gate: Arc<DiscordGate>,
    nats: async_nats::Client,
    pool: invitrack_storage::Pool,
) -> invitrack_telemetry::Readiness {
    Arc::new(move || {
        let (gate, nats, pool) = (Arc::clone(&gate), nats.clone(), pool.clone());
        Box::pin(async move {
            if gate.token_invalid() {
                return Err("Discord refused the bot token (401)".to_owned());
            }
            if nats.connection_state() != async_nats::connection::State::Connected {
                return Err("NATS is not connected".to_owned());
            }
            invitrack_storage::ping(&pool)
                .await
                .map_err(|error| format!("PostgreSQL does not answer: {error}"))
        })
    })
}
