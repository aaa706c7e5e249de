use clap::Parser;

#[derive(Parser)]
#[command(
    name = "invitrack-worker",
    about = "Attributes joins and writes them to PostgreSQL"
)]
struct Cli {
    #[command(flatten)]
    config: invitrack_worker::WorkerConfig,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    invitrack_telemetry::init();
    let cli: Cli = invitrack_telemetry::parse_args();
    let shutdown = invitrack_telemetry::shutdown_on_ctrl_c();
    invitrack_worker::run(cli.config, shutdown).await?;
    Ok(())
}
