//! `invitrack-sim`: runs the Discord simulator until Ctrl-C / SIGTERM.

use clap::Parser;
use invitrack_sim::{SimConfig, Simulator};
use std::net::SocketAddr;

/// A Discord simulator (gateway v10, REST v10, control API) on one port.
#[derive(Debug, Parser)]
#[command(name = "invitrack-sim", version, about)]
struct Args {
    /// Address to listen on (port 0 picks a free one).
    #[arg(long, env = "SIM_BIND", default_value = "127.0.0.1:9001")]
    bind: SocketAddr,
    /// Bot token clients must present.
    #[arg(long, env = "SIM_BOT_TOKEN", default_value = "sim-token")]
    bot_token: String,
    /// The bot's user id.
    #[arg(long, env = "SIM_BOT_USER_ID", default_value_t = invitrack_sim::DEFAULT_BOT_USER_ID)]
    bot_user_id: u64,
    /// Shard count recommended by GET /gateway/bot.
    #[arg(long, env = "SIM_SHARDS", default_value_t = 1)]
    shards: u32,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let args = Args::parse();
    let sim = Simulator::start(SimConfig {
        bind: args.bind,
        bot_token: args.bot_token,
        bot_user_id: args.bot_user_id,
        shards: args.shards,
    })
    .await?;
    tracing::info!(
        gateway = %sim.gateway_url(),
        api_proxy = %sim.api_proxy(),
        control = %sim.control_url(),
        "invitrack-sim ready"
    );
    shutdown_signal().await;
    tracing::info!("stopping");
    sim.stop().await;
    Ok(())
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
