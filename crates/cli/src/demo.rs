//! `invitrack demo`: every service in one process, against the simulator (or Discord), with
//! members joining and leaving, until Ctrl-C.

use invitrack_model::{BotId, ChannelId, GuildId, GuildKey};
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context as _;
use invitrack_api::{ApiConfig, ApiOptions, Application};
use invitrack_bot::BotConfig;
use invitrack_bus::BusConfig;
use invitrack_ingest::IngestConfig;
use invitrack_sim::{
    ChannelSpec, GuildSpec, InviteSpec, JoinSpec, JoinVia, SimConfig, Simulator, World,
};
use invitrack_storage::admin::{Actor, SettingsChange};
use invitrack_webhooks::WebhookOptions;
use invitrack_worker::WorkerConfig;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio_util::sync::CancellationToken;
use twilight_model::id::Id;
use twilight_model::id::marker::{ChannelMarker, GuildMarker, UserMarker};

#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/invitrack_demo"
    )]
    database_url: String,
    #[arg(long, env = "NATS_URL", default_value = "nats://127.0.0.1:4222")]
    nats_url: String,
    #[arg(long, env = "BUS_PREFIX", default_value = "invitrack-demo")]
    bus_prefix: String,
    /// Where the API listens; another free port is used if this one is taken.
    #[arg(long, env = "API_BIND", default_value = "127.0.0.1:8080")]
    api_bind: SocketAddr,
    /// Where the simulator listens; another free port is used if this one is taken.
    #[arg(long, env = "SIM_BIND", default_value = "127.0.0.1:9001")]
    sim_bind: SocketAddr,
    /// Run against Discord with this bot token instead of the simulator.
    #[arg(long, env = "DISCORD_TOKEN", hide_env_values = true)]
    discord_token: Option<String>,
    /// With DISCORD_TOKEN: a gateway URL to use instead of Discord's.
    #[arg(long, env = "DISCORD_GATEWAY_URL")]
    discord_gateway_url: Option<String>,
    /// With DISCORD_TOKEN: a plain-HTTP REST endpoint to use instead of Discord's.
    #[arg(long, env = "DISCORD_API_PROXY")]
    discord_api_proxy: Option<String>,
    /// Simulated guilds.
    #[arg(long, env = "DEMO_GUILDS", default_value_t = 3)]
    guilds: usize,
    /// Time between simulated member events, in milliseconds.
    #[arg(long, env = "DEMO_EVENT_INTERVAL_MS", default_value_t = 1500)]
    event_interval_ms: u64,
    /// Seed of the simulated traffic.
    #[arg(long, env = "DEMO_SEED", default_value_t = 7)]
    seed: u64,
    #[command(flatten)]
    api_options: ApiOptions,
}

/// The demo's bus is its own and disposable: when an earlier version's single event stream is
/// still on the server (it captures the subjects of the partition streams), it is deleted
/// instead of stopping the demo, as `invitrack_bus::ensure_streams` stops a deployment.
async fn retire_earlier_event_stream(bus: &BusConfig) -> anyhow::Result<()> {
    let stream = bus.layout()?.events_group();
    let client = bus
        .client()
        .await
        .with_context(|| format!("connecting to NATS at {}", bus.nats_url))?;
    let jetstream = async_nats::jetstream::new(client);
    if jetstream.get_stream(&stream).await.is_ok() {
        jetstream
            .delete_stream(&stream)
            .await
            .with_context(|| format!("deleting the earlier event stream {stream}"))?;
        tracing::info!(%stream, "deleted the demo's event stream of an earlier version");
    }
    Ok(())
}

/// One simulated guild and who can invite to it.
struct DemoGuild {
    guild_id: Id<GuildMarker>,
    name: String,
    has_vanity: bool,
    codes: Vec<(String, Id<UserMarker>)>,
    /// Where the bot posts join and leave messages.
    join_log: Id<ChannelMarker>,
    leave_log: Id<ChannelMarker>,
}

pub async fn run(args: DemoArgs) -> anyhow::Result<()> {
    let shutdown = invitrack_telemetry::shutdown_on_ctrl_c();
    invitrack_storage::prepare_database(&args.database_url)
        .await
        .with_context(|| format!("preparing the database at {}", args.database_url))?;

    let mut sim = None;
    let (token, gateway_url, api_proxy) = match &args.discord_token {
        Some(token) => (
            token.clone(),
            args.discord_gateway_url.clone(),
            args.discord_api_proxy.clone(),
        ),
        None => {
            let config = SimConfig {
                bind: args.sim_bind,
                ..SimConfig::default()
            };
            let running = match Simulator::start(config.clone()).await {
                Ok(running) => running,
                Err(_) => Simulator::start(SimConfig {
                    bind: SocketAddr::from(([127, 0, 0, 1], 0)),
                    ..config.clone()
                })
                .await
                .context("starting the Discord simulator")?,
            };
            let urls = (
                config.bot_token.clone(),
                Some(running.gateway_url()),
                Some(running.api_proxy()),
            );
            sim = Some(running);
            urls
        }
    };

    let guilds = match &sim {
        Some(running) => populate(&running.world(), args.guilds, args.seed)?,
        None => Vec::new(),
    };

    let bus = BusConfig {
        nats_url: args.nats_url.clone(),
        bus_prefix: args.bus_prefix.clone(),
        bus_partitions: invitrack_bus::DEFAULT_PARTITIONS,
        bus_max_age_hours: 24,
        ..BusConfig::default()
    };
    retire_earlier_event_stream(&bus).await?;
    let bot_id = bot_id(&token, api_proxy.as_deref()).await?;

    log_channels(&args.database_url, bot_id, &guilds).await?;

    let worker = tokio::spawn(invitrack_worker::run(
        WorkerConfig::new(args.database_url.clone(), bus.clone()),
        shutdown.clone(),
    ));
    let bot = tokio::spawn(invitrack_bot::run(
        BotConfig {
            discord_api_proxy: api_proxy.clone(),
            // The demo's webhooks are for receivers on this machine.
            webhooks: WebhookOptions {
                allow_private_networks: true,
                ..WebhookOptions::default()
            },
            ..BotConfig::new(token.clone(), args.database_url.clone(), bus.clone())
        },
        shutdown.clone(),
    ));
    let ingest = tokio::spawn(invitrack_ingest::run(
        IngestConfig {
            discord_gateway_url: gateway_url,
            discord_api_proxy: api_proxy,
            ..IngestConfig::new(token, bus)
        },
        shutdown.clone(),
    ));

    // The API's address is settled first: Discord login's redirect URI names it.
    let api_bind = std::net::TcpListener::bind(args.api_bind)
        .or_else(|_| std::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))))
        .and_then(|listener| listener.local_addr())
        .context("finding a port for the API")?;
    let mut api_options = ApiOptions {
        webhooks_allow_private_networks: true,
        ..args.api_options.clone()
    };
    if let Some(running) = &sim {
        api_options.login = demo_login(running, api_bind, &guilds)?;
    }
    let api = Application::build(&ApiConfig {
        database_url: args.database_url.clone(),
        bind: api_bind,
        workers: 2,
        db_connections: 8,
        options: api_options,
    })
    .await
    .context("starting the API")?;
    let api_url = format!("http://{}", api.addr());

    let mut conn = invitrack_storage::connect(&args.database_url).await?;
    let (key, _) = invitrack_storage::keys::create_key(
        &mut conn,
        bot_id,
        None,
        invitrack_storage::keys::KeyScope::Read,
        "invitrack demo",
    )
    .await?;
    // The dashboard's link signs in as an admin of the demo, so its settings can be tried.
    let (dashboard_key, _) = invitrack_storage::keys::create_key(
        &mut conn,
        bot_id,
        None,
        invitrack_storage::keys::KeyScope::Admin,
        "invitrack demo dashboard",
    )
    .await?;
    drop(conn);

    print_banner(
        &api_url,
        &key,
        &dashboard_key,
        bot_id,
        &guilds,
        sim.as_ref().map(|s| s.control_url()),
    );

    if let Some(running) = &sim {
        tokio::spawn(traffic(
            running.world(),
            guilds,
            Duration::from_millis(args.event_interval_ms.max(10)),
            args.seed,
            shutdown.clone(),
        ));
    }

    let api_result = api.run_until_stopped(shutdown.clone()).await;
    shutdown.cancel();
    match ingest.await {
        Ok(Err(e)) => eprintln!("ingest stopped: {}", invitrack_telemetry::error_chain(&e)),
        Err(e) => eprintln!("ingest task failed: {e}"),
        Ok(Ok(())) => {}
    }
    match worker.await {
        Ok(Err(e)) => eprintln!("worker stopped: {}", invitrack_telemetry::error_chain(&e)),
        Err(e) => eprintln!("worker task failed: {e}"),
        Ok(Ok(())) => {}
    }
    match bot.await {
        Ok(Err(e)) => eprintln!("bot stopped: {}", invitrack_telemetry::error_chain(&e)),
        Err(e) => eprintln!("bot task failed: {e}"),
        Ok(Ok(())) => {}
    }
    if let Some(running) = sim {
        running.stop().await;
    }
    api_result.context("API")
}

/// The bot's user id, as Discord (or the simulator) reports it.
async fn bot_id(token: &str, api_proxy: Option<&str>) -> anyhow::Result<BotId> {
    let user = invitrack_discord::client(token.to_owned(), api_proxy)
        .current_user()
        .await
        .context("asking Discord who the bot is (GET /users/@me)")?
        .model()
        .await?;
    Ok(BotId::new(user.id.get()))
}

/// Points each demo guild's join and leave messages at its log channels, as a guild's admin
/// does with `PUT .../settings`.
async fn log_channels(
    database_url: &str,
    bot_id: BotId,
    guilds: &[DemoGuild],
) -> anyhow::Result<()> {
    let mut conn = invitrack_storage::connect(database_url).await?;
    let channel = |id: Id<ChannelMarker>| Some(Some(ChannelId::new(id.get())));
    for guild in guilds {
        invitrack_storage::admin::update_settings(
            &mut conn,
            GuildKey::new(bot_id, GuildId::new(guild.guild_id.get())),
            SettingsChange {
                join_log_channel_id: channel(guild.join_log),
                leave_log_channel_id: channel(guild.leave_log),
                ..SettingsChange::default()
            },
            &Actor {
                key_id: 0,
                key_label: "invitrack demo",
                author: "invitrack demo",
            },
        )
        .await
        .context("setting the demo guilds' log channels")?;
    }
    Ok(())
}

const GUILD_NAMES: [&str; 6] = [
    "Rust Lovers",
    "Pixel Art Club",
    "Speedrunners",
    "Lo-fi Study",
    "Board Games",
    "Mountain Bikes",
];

/// The simulated user "Login with Discord" signs in as: a moderator of every demo guild.
const DEMO_MODERATOR: u64 = 1_200_000_000_000_000_001;

/// Login with Discord against the simulator: the API is its OAuth2 client, and the demo's
/// moderator (Manage Server in every demo guild) is the one signed in to the simulated Discord.
fn demo_login(
    sim: &invitrack_sim::RunningSim,
    api: SocketAddr,
    guilds: &[DemoGuild],
) -> anyhow::Result<invitrack_api::LoginOptions> {
    let world = sim.world();
    let public = format!("http://{api}");
    world.set_oauth2_redirect_uris(vec![format!("{public}/auth/callback")])?;
    let moderator = Id::new(DEMO_MODERATOR);
    world.set_user_guilds(
        moderator,
        guilds
            .iter()
            .map(|g| {
                invitrack_sim::UserGuildSpec::member_of(
                    g.guild_id,
                    invitrack_sim::permissions::MANAGE_GUILD,
                )
            })
            .collect(),
    )?;
    world.sign_in(moderator, invitrack_sim::Consent::Approve);
    let client = world.oauth2_client();
    Ok(invitrack_api::LoginOptions {
        discord_client_id: Some(client.client_id.get()),
        discord_client_secret: Some(client.client_secret),
        dashboard_public_url: Some(public),
        discord_api_url: format!("http://{}/api/v10", sim.addr()),
        discord_authorize_url: format!("http://{}/oauth2/authorize", sim.addr()),
        session_hours: 12,
    })
}

/// Creates the demo guilds: a few inviters each, one with several codes, one limited invite.
fn populate(world: &World, count: usize, seed: u64) -> anyhow::Result<Vec<DemoGuild>> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut guilds = Vec::new();
    for i in 0..count.max(1) {
        let name = GUILD_NAMES[i % GUILD_NAMES.len()].to_owned();
        let has_vanity = i == 1;
        let created = world.create_guild(GuildSpec {
            name: name.clone(),
            vanity_code: has_vanity.then(|| format!("demo{i}")),
            manage_guild: true,
        })?;
        let mut codes = Vec::new();
        for inviter in 0..4_u64 {
            let inviter_id = Id::new(1_100_000_000_000_000_000 + (i as u64) * 100 + inviter + 1);
            let invites = if inviter == 0 {
                3
            } else {
                rng.random_range(1..=2)
            };
            for n in 0..invites {
                let mut spec = InviteSpec::by(inviter_id);
                if inviter == 3 && n == 0 {
                    spec.max_uses = 3;
                }
                let invite = world.create_invite(created.guild_id, spec)?;
                codes.push((invite.code, inviter_id));
            }
        }
        let channel = |name: &str| {
            world.create_channel(
                created.guild_id,
                ChannelSpec {
                    name: name.into(),
                    bot_deny: 0,
                },
            )
        };
        let join_log = channel("join-log")?;
        let leave_log = channel("leave-log")?;
        guilds.push(DemoGuild {
            guild_id: created.guild_id,
            name,
            has_vanity,
            codes,
            join_log,
            leave_log,
        });
    }
    Ok(guilds)
}

fn print_banner(
    api_url: &str,
    key: &str,
    dashboard_key: &str,
    bot_id: BotId,
    guilds: &[DemoGuild],
    control_url: Option<String>,
) {
    println!();
    println!("invitrack demo is running. Press Ctrl-C to stop.");
    println!();
    // The key rides in the fragment, which browsers never send to the server.
    println!("  dashboard: {api_url}/dashboard/#key={dashboard_key}");
    println!("  API:      {api_url}");
    println!("  API key:  {key}");
    println!("  bot id:   {bot_id}");
    if let Some(control) = &control_url {
        println!(
            "             (or {api_url}/dashboard/ and \"Login with Discord\": the simulator signs you in as a moderator of every guild)"
        );
        println!("  simulator control API: {control}");
    }
    for guild in guilds {
        let vanity = if guild.has_vanity {
            " (has a vanity URL)"
        } else {
            ""
        };
        println!("  guild {} {}{vanity}", guild.guild_id, guild.name);
    }
    if let (Some(control), Some(guild)) = (&control_url, guilds.first()) {
        println!();
        println!(
            "The bot posts each join and leave to the guilds' join-log and leave-log channels:"
        );
        println!("  curl '{control}/channels/{}/messages'", guild.join_log);
        println!("  curl '{control}/channels/{}/messages'", guild.leave_log);
    }
    if let Some(guild) = guilds.first()
        && let Some((code, inviter)) = guild.codes.first()
    {
        println!();
        println!("Try, after a few joins:");
        println!(
            "  curl -H 'Authorization: Bearer {key}' '{api_url}/v1/invites/user?bot_id={bot_id}&guild_id={}&inviter_id={inviter}'",
            guild.guild_id
        );
        println!(
            "  curl -H 'Authorization: Bearer {key}' '{api_url}/v1/invites/code?bot_id={bot_id}&guild_id={}&invite_code={code}'",
            guild.guild_id
        );
    }
    println!();
}

/// Members join (mostly through invites, some by vanity or untracked) and sometimes leave.
async fn traffic(
    world: World,
    mut guilds: Vec<DemoGuild>,
    interval: Duration,
    seed: u64,
    shutdown: CancellationToken,
) {
    let mut rng = StdRng::seed_from_u64(seed ^ 0x5eed);
    let mut members: Vec<(Id<GuildMarker>, Id<UserMarker>)> = Vec::new();
    while !shutdown.is_cancelled() {
        tokio::select! {
            () = tokio::time::sleep(interval) => {}
            () = shutdown.cancelled() => return,
        }
        let g = rng.random_range(0..guilds.len());
        let roll: f64 = rng.random();
        if roll < 0.15 && !members.is_empty() {
            let (guild_id, user_id) = members.swap_remove(rng.random_range(0..members.len()));
            if let Err(error) = world.leave(guild_id, user_id) {
                tracing::debug!(%error, "demo leave");
            }
            continue;
        }
        let guild = &mut guilds[g];
        let via = if roll < 0.22 && guild.has_vanity {
            JoinVia::Vanity
        } else if roll < 0.25 {
            JoinVia::Untracked
        } else {
            // Zipf-like: earlier codes are more popular.
            let weights: Vec<f64> = (1..=guild.codes.len()).map(|r| 1.0 / r as f64).collect();
            let total: f64 = weights.iter().sum();
            let mut pick = rng.random::<f64>() * total;
            let mut index = 0;
            for (i, w) in weights.iter().enumerate() {
                if pick < *w {
                    index = i;
                    break;
                }
                pick -= w;
            }
            JoinVia::Invite(guild.codes[index].0.clone())
        };
        let spec = JoinSpec {
            avatar: rng.random_bool(0.9),
            account_age: Duration::from_secs(rng.random_range(1..=1000) * 86_400),
            ..JoinSpec::default()
        };
        match world.join(guild.guild_id, via.clone(), spec) {
            Ok(truth) => members.push((guild.guild_id, truth.user_id)),
            Err(error) => {
                // A limited invite used up: re-create it, as a moderator would.
                if let JoinVia::Invite(code) = via
                    && let Some(pos) = guild.codes.iter().position(|(c, _)| *c == code)
                {
                    let (_, inviter) = guild.codes.remove(pos);
                    let mut spec = InviteSpec::by(inviter);
                    spec.max_uses = 3;
                    if let Ok(invite) = world.create_invite(guild.guild_id, spec) {
                        guild.codes.push((invite.code, inviter));
                    }
                }
                tracing::debug!(%error, "demo join");
            }
        }
    }
}
