use clap::Parser;

#[derive(Parser)]
#[command(
    name = "invitrack-bot",
    about = "Posts each guild's join and leave messages from invitrack's decisions"
)]
struct Cli {
    #[command(flatten)]
    config: invitrack_bot::BotConfig,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    invitrack_telemetry::init();
    let cli: Cli = invitrack_telemetry::parse_args();
    let shutdown = invitrack_telemetry::shutdown_on_ctrl_c();
    invitrack_bot::run(cli.config, shutdown).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    #[test]
    fn the_flags_do_not_collide() {
        super::Cli::command().debug_assert();
    }
}
