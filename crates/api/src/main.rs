use clap::Parser;

#[derive(Parser)]
#[command(name = "invitrack-api", about = "invitrack's HTTP API for dashboards")]
struct Cli {
    #[command(flatten)]
    config: invitrack_api::ApiConfig,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    invitrack_telemetry::init();
    let cli: Cli = invitrack_telemetry::parse_args();
    let shutdown = invitrack_telemetry::shutdown_on_ctrl_c();
    invitrack_api::run(cli.config, shutdown).await?;
    Ok(())
}
