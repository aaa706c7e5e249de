//! `invitrack keys create|list|revoke`.

use anyhow::Context as _;
use clap::Subcommand;
use invitrack_model::{BotId, GuildId};
use invitrack_storage::keys::{self, KeyScope};

#[derive(Subcommand)]
pub enum KeysCommand {
    /// Create a key and print its token (shown once; only a hash is stored).
    Create {
        #[arg(
            long,
            env = "DATABASE_URL",
            default_value = "postgres://postgres@127.0.0.1:5432/invitrack"
        )]
        database_url: String,
        /// The bot whose data the key may read.
        #[arg(long)]
        bot_id: BotId,
        /// Restrict the key to one guild.
        #[arg(long)]
        guild_id: Option<GuildId>,
        /// `read`, or `admin` for writes.
        #[arg(long, default_value = "read", value_parser = parse_scope)]
        scope: KeyScope,
        /// A note to recognise the key by.
        #[arg(long, default_value = "")]
        label: String,
    },
    /// List live keys (never their tokens).
    List {
        #[arg(
            long,
            env = "DATABASE_URL",
            default_value = "postgres://postgres@127.0.0.1:5432/invitrack"
        )]
        database_url: String,
    },
    /// Revoke a key by id.
    Revoke {
        #[arg(
            long,
            env = "DATABASE_URL",
            default_value = "postgres://postgres@127.0.0.1:5432/invitrack"
        )]
        database_url: String,
        id: i64,
    },
}

fn parse_scope(s: &str) -> Result<KeyScope, String> {
    KeyScope::parse(s).ok_or_else(|| format!("unknown scope {s:?}: use read or admin"))
}

pub async fn run(command: KeysCommand) -> anyhow::Result<()> {
    match command {
        KeysCommand::Create {
            database_url,
            bot_id,
            guild_id,
            scope,
            label,
        } => {
            invitrack_storage::prepare_database(&database_url).await?;
            let mut conn = invitrack_storage::connect(&database_url).await?;
            let (token, key) = keys::create_key(&mut conn, bot_id, guild_id, scope, &label)
                .await
                .context("creating the key")?;
            eprintln!(
                "created key {} for bot {}{} with scope {}",
                key.id,
                key.bot_id,
                key.guild_id
                    .map(|g| format!(", guild {g}"))
                    .unwrap_or_default(),
                key.scope.as_str()
            );
            println!("{token}");
        }
        KeysCommand::List { database_url } => {
            let mut conn = invitrack_storage::connect(&database_url).await?;
            println!(
                "{:>6}  {:>20}  {:>20}  {:6}  {:25}  label",
                "id", "bot", "guild", "scope", "created"
            );
            for key in keys::list_keys(&mut conn).await? {
                println!(
                    "{:>6}  {:>20}  {:>20}  {:6}  {:25}  {}",
                    key.id,
                    key.bot_id,
                    key.guild_id
                        .map_or_else(|| "any".to_owned(), |g| g.to_string()),
                    key.scope.as_str(),
                    key.created_at.to_rfc3339(),
                    key.label
                );
            }
        }
        KeysCommand::Revoke { database_url, id } => {
            let mut conn = invitrack_storage::connect(&database_url).await?;
            anyhow::ensure!(
                keys::revoke_key(&mut conn, id).await?,
                "no live key with id {id}"
            );
            eprintln!("revoked key {id}");
        }
    }
    Ok(())
}
