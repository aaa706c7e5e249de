use clap::Parser;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Layer as _};

#[derive(Parser)]
#[command(
    name = "invitrack-ingest",
    about = "Reads Discord's gateway and invite lists into NATS"
)]
struct Cli {
    #[command(flatten)]
    config: invitrack_ingest::IngestConfig,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // The shared logging set-up (invitrack-telemetry's), plus a layer that counts the 429s
    // twilight-http retries on its own, for `ingest_discord_errors_total{status="429"}`.
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_target(false)
                .with_filter(filter),
        )
        .with(invitrack_ingest::rate_limit_layer())
        .init();
    let cli = Cli::parse();
    let shutdown = invitrack_telemetry::shutdown_on_ctrl_c();
    invitrack_ingest::run(cli.config, shutdown).await?;
    Ok(())
}
