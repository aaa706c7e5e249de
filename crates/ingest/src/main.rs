use clap::Parser;

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
    invitrack_telemetry::init();
    let cli: Cli = invitrack_telemetry::parse_args();
    let shutdown = invitrack_telemetry::shutdown_on_ctrl_c();
    invitrack_ingest::run(cli.config, shutdown).await?;
    Ok(())
}
