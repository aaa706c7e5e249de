//! `invitrack`: the command line for operators. Thin: each command calls a library.

mod demo;
mod healthcheck;
mod invite_url;
mod keys;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "invitrack",
    version,
    about = "Self-hosted Discord invite tracker"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create the database if needed and apply pending migrations.
    Migrate {
        #[arg(
            long,
            env = "DATABASE_URL",
            default_value = "postgres://postgres@127.0.0.1:5432/invitrack"
        )]
        database_url: String,
    },
    /// Manage API keys.
    Keys {
        #[command(subcommand)]
        command: keys::KeysCommand,
    },
    /// Check a health URL (`/health/ready` of a service): exit 0 when it answers 2xx. For
    /// container health checks: the image has no curl.
    Healthcheck(healthcheck::HealthcheckArgs),
    /// Run the simulator, ingest, worker and API together, with members joining and leaving,
    /// until Ctrl-C. With DISCORD_TOKEN set, run against Discord instead of the simulator.
    Demo(Box<demo::DemoArgs>),
    /// Print the URL that adds the bot to a server with the permissions invitrack uses.
    InviteUrl(invite_url::InviteUrlArgs),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    invitrack_telemetry::init();
    let cli: Cli = invitrack_telemetry::parse_args();
    match cli.command {
        Command::Migrate { database_url } => {
            let applied = invitrack_storage::prepare_database(&database_url).await?;
            if applied.is_empty() {
                eprintln!("database is up to date");
            }
            for version in applied {
                eprintln!("applied migration {version}");
            }
            Ok(())
        }
        Command::Keys { command } => keys::run(command).await,
        Command::Demo(args) => demo::run(*args).await,
        Command::InviteUrl(args) => invite_url::run(&args),
        Command::Healthcheck(args) => {
            std::process::exit(i32::from(healthcheck::run(args).await));
        }
    }
}
