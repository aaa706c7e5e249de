//! `invitrack invite-url`: the link that adds the bot to a server with the permissions invitrack
//! uses and no others. Each permission, its bit and why it is asked for are in [`PERMISSIONS`];
//! `docs/discord.md#permissions-and-intents` lists the same facts.

use std::fmt::Write as _;

use invitrack_model::{BotId, GuildId};

/// Discord's authorization page (`docs/discord.md#permissions-and-intents`).
const AUTHORIZE_URL: &str = "https://discord.com/oauth2/authorize";
/// The bot user, and its slash commands; percent-encoded (a space is `%20`).
const SCOPES: &str = "bot%20applications.commands";

#[derive(Debug, clap::Args)]
pub struct InviteUrlArgs {
    /// The application's client id (Developer Portal → your application → General
    /// Information → Application ID), which is also the bot user's id.
    #[arg(long, visible_alias = "bot-id", env = "DISCORD_CLIENT_ID")]
    client_id: BotId,
    /// Preselect this server in Discord's dialog, and do not let another be picked.
    #[arg(long)]
    guild_id: Option<GuildId>,
    /// Also ask for Manage Channels, so the gateway sends invite events (INVITE_CREATE,
    /// INVITE_DELETE); without it invites are known from reads of the invite list only.
    #[arg(long)]
    invite_events: bool,
}

/// A permission invitrack asks for.
#[derive(Debug, Clone, Copy)]
pub struct Permission {
    /// Discord's name for it.
    pub name: &'static str,
    /// Its bit in the permissions integer.
    pub bit: u32,
    /// What uses it.
    pub why: &'static str,
    /// Asked for only with `--invite-events`.
    pub only_for_invite_events: bool,
}

impl Permission {
    #[must_use]
    pub const fn value(self) -> u64 {
        1 << self.bit
    }
}

/// Every permission invitrack uses, found from each request it sends with the bot token and each
/// gateway event it reads (`docs/discord.md#permissions-and-intents`). Administrator is never
/// asked for.
pub const PERMISSIONS: &[Permission] = &[
    Permission {
        name: "CREATE_INSTANT_INVITE",
        bit: 0,
        why: "the bot: `/invite link` creates a personal invite in the invite channel \
              (POST /channels/{id}/invites)",
        only_for_invite_events: false,
    },
    Permission {
        name: "MANAGE_CHANNELS",
        bit: 4,
        why: "ingest: Discord sends INVITE_CREATE and INVITE_DELETE only for channels where \
              the bot has it (optional: reads of the invite list see the same invites)",
        only_for_invite_events: true,
    },
    Permission {
        name: "MANAGE_GUILD",
        bit: 5,
        why: "ingest: the invite list with each invite's uses (GET /guilds/{id}/invites) and \
              the vanity URL's uses (GET /guilds/{id}/vanity-url); without it every join is \
              unknown",
        only_for_invite_events: false,
    },
    Permission {
        name: "VIEW_CHANNEL",
        bit: 10,
        why: "the bot: see the join- and leave-log channels and the invite channel",
        only_for_invite_events: false,
    },
    Permission {
        name: "SEND_MESSAGES",
        bit: 11,
        why: "the bot: post join and leave messages (POST /channels/{id}/messages)",
        only_for_invite_events: false,
    },
    Permission {
        name: "EMBED_LINKS",
        bit: 14,
        why: "the bot: join and leave messages whose templates have an embed",
        only_for_invite_events: false,
    },
];

/// The permissions integer: the OR of the bits asked for.
#[must_use]
pub fn permissions(invite_events: bool) -> u64 {
    PERMISSIONS
        .iter()
        .filter(|p| invite_events || !p.only_for_invite_events)
        .fold(0, |all, p| all | p.value())
}

/// The authorization URL that adds the bot (`docs/discord.md#permissions-and-intents`).
#[must_use]
pub fn invite_url(client_id: BotId, guild_id: Option<GuildId>, invite_events: bool) -> String {
    // Every value is a decimal number or a fixed, already encoded text: nothing to escape.
    let mut url = format!(
        "{AUTHORIZE_URL}?client_id={client_id}&scope={SCOPES}&permissions={}",
        permissions(invite_events)
    );
    if let Some(guild_id) = guild_id {
        let _ = write!(url, "&guild_id={guild_id}&disable_guild_select=true");
    }
    url
}

/// Prints the URL on stdout (to paste or pipe) and what it asks for on stderr.
pub fn run(args: &InviteUrlArgs) -> anyhow::Result<()> {
    println!(
        "{}",
        invite_url(args.client_id, args.guild_id, args.invite_events)
    );
    eprintln!(
        "\nPermissions asked for ({}):",
        permissions(args.invite_events)
    );
    for p in PERMISSIONS
        .iter()
        .filter(|p| args.invite_events || !p.only_for_invite_events)
    {
        eprintln!("  {:<22} 1 << {:<2}  {}", p.name, p.bit, p.why);
    }
    if !args.invite_events {
        eprintln!("  (add --invite-events to also ask for MANAGE_CHANNELS: invite events)");
    }
    eprintln!(
        "\nAlso turn on the Server Members Intent: Developer Portal → your application → Bot → \
         Privileged Gateway Intents (ingest cannot connect without it)."
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: InviteUrlArgs,
    }

    const CLIENT: u64 = 859_000_000_000_000_001;

    fn query(url: &str) -> Vec<(String, String)> {
        url::Url::parse(url)
            .expect("the URL parses")
            .query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect()
    }

    #[test]
    fn the_integer_is_the_or_of_discords_documented_values() {
        // The values of Discord's permissions table, written as it writes them.
        let create_instant_invite = 0x0000_0000_0000_0001;
        let manage_channels = 0x0000_0000_0000_0010;
        let manage_guild = 0x0000_0000_0000_0020;
        let view_channel = 0x0000_0000_0000_0400;
        let send_messages = 0x0000_0000_0000_0800;
        let embed_links = 0x0000_0000_0000_4000;
        let required =
            create_instant_invite | manage_guild | view_channel | send_messages | embed_links;
        assert_eq!(permissions(false), required);
        assert_eq!(permissions(false), 19_489);
        assert_eq!(permissions(true), required | manage_channels);
        assert_eq!(permissions(true), 19_505);
    }

    #[test]
    fn each_permission_is_named_once_and_administrator_never() {
        let mut seen = 0u64;
        for p in PERMISSIONS {
            assert_eq!(seen & p.value(), 0, "{} twice", p.name);
            seen |= p.value();
            assert!(!p.why.is_empty(), "{} has no reason", p.name);
        }
        let administrator = 0x0000_0000_0000_0008;
        assert_eq!(permissions(true) & administrator, 0);
    }

    #[test]
    fn the_url_asks_for_the_bot_and_its_commands_with_those_permissions() {
        let url = invite_url(BotId::new(CLIENT), None, false);
        assert!(
            url.starts_with("https://discord.com/oauth2/authorize?"),
            "{url}"
        );
        assert!(url.contains("scope=bot%20applications.commands"), "{url}");
        assert_eq!(
            query(&url),
            [
                ("client_id".to_owned(), CLIENT.to_string()),
                ("scope".to_owned(), "bot applications.commands".to_owned()),
                ("permissions".to_owned(), "19489".to_owned()),
            ]
        );
    }

    #[test]
    fn a_guild_is_preselected_and_locked() {
        let url = invite_url(BotId::new(CLIENT), Some(GuildId::new(42)), true);
        let query = query(&url);
        assert!(query.contains(&("permissions".to_owned(), "19505".to_owned())));
        assert!(query.contains(&("guild_id".to_owned(), "42".to_owned())));
        assert!(query.contains(&("disable_guild_select".to_owned(), "true".to_owned())));
    }

    #[test]
    fn the_client_id_must_be_a_snowflake_and_bot_id_is_an_alias() {
        let cli = Cli::try_parse_from(["t", "--bot-id", &CLIENT.to_string()]).expect("parses");
        assert_eq!(cli.args.client_id.get(), CLIENT);
        assert_eq!(cli.args.guild_id, None);
        let cli = Cli::try_parse_from(["t", "--client-id", "1", "--guild-id", "2"]).expect("ok");
        assert_eq!(cli.args.guild_id.map(GuildId::get), Some(2));
        for bad in ["0", "abc", "-1", "18446744073709551616", "12 "] {
            assert!(
                Cli::try_parse_from(["t", "--client-id", bad]).is_err(),
                "{bad:?}"
            );
        }
        assert!(Cli::try_parse_from(["t", "--client-id", "1", "--guild-id", "x"]).is_err());
    }
}
