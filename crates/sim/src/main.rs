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
    /// Bot-wide REST limit, LIMIT/WINDOW_MS (0 turns it off).
    #[arg(long, env = "SIM_GLOBAL_RATE_LIMIT", default_value = "50/1000")]
    global_rate_limit: String,
    /// Per-route limits, route=LIMIT/WINDOW_MS,... (default guild_invites=5/5000,
    /// create_message=5/5000, others 50/1000).
    #[arg(long, env = "SIM_RATE_LIMITS", default_value = "")]
    rate_limits: String,
    /// REST latency, route=MIN-MAX,... in ms (`default=` for every route).
    #[arg(long, env = "SIM_LATENCY_MS", default_value = "")]
    latency_ms: String,
    /// Probability of a 500/502/503 answer, route=P,... (`default=` for every route).
    #[arg(long, env = "SIM_ERROR_RATE", default_value = "")]
    error_rate: String,
    /// When a delayed request reads the state, as a fraction of its latency.
    #[arg(long, env = "SIM_READ_AT", default_value_t = 0.5)]
    read_at: f64,
    /// Gateway dispatch delay after the state change, MIN..MAX ms (negative: the `uses`
    /// counter moves that long after GUILD_MEMBER_ADD).
    #[arg(long, env = "SIM_EVENT_DELAY_MS", default_value = "0")]
    event_delay_ms: String,
    /// Frames a gateway connection may have queued before it is cut as too slow.
    #[arg(long, env = "SIM_GATEWAY_QUEUE", default_value_t = invitrack_sim::DEFAULT_GATEWAY_QUEUE)]
    gateway_queue: usize,
    /// Messages posted through REST (and, separately, interactions) the simulator keeps for
    /// reading back (oldest dropped).
    #[arg(long, env = "SIM_MESSAGE_CAPACITY", default_value_t = invitrack_sim::DEFAULT_MESSAGE_CAPACITY)]
    message_capacity: usize,
    /// How long `POST /guilds/{id}/members-search` answers 202 after a guild's first search
    /// while it is indexed, ms.
    #[arg(long, env = "SIM_MEMBERS_SEARCH_INDEX_MS", default_value_t = invitrack_sim::MembersSearchOptions::default().index_ms)]
    members_search_index_ms: u64,
    /// How long after joining a member is found by the member search, ms.
    #[arg(long, env = "SIM_MEMBERS_SEARCH_LAG_MS", default_value_t = invitrack_sim::MembersSearchOptions::default().lag_ms)]
    members_search_lag_ms: u64,
    /// How long after an answered gateway request for all of a guild's members (op 8,
    /// `query` "" and `limit` 0) another one for that guild gets RATE_LIMITED, ms (0 = never).
    #[arg(long, env = "SIM_ALL_MEMBERS_WINDOW_MS", default_value_t = invitrack_sim::DEFAULT_ALL_MEMBERS_WINDOW_MS)]
    all_members_window_ms: u64,
    /// Write the ground truth (JSON lines) here on exit and after a scenario or workload.
    #[arg(long, env = "SIM_TRUTH_FILE")]
    truth_file: Option<std::path::PathBuf>,
    /// Run this scenario file (JSON) once the server is up.
    #[arg(long, env = "SIM_SCENARIO")]
    scenario: Option<std::path::PathBuf>,
    /// Generate and run this workload (JSON spec) once the server is up.
    #[arg(long, env = "SIM_WORKLOAD")]
    workload: Option<std::path::PathBuf>,
    /// Exit when the scenario or workload is over (instead of serving until Ctrl-C).
    #[arg(long, env = "SIM_EXIT_AFTER_RUN", default_value_t = false)]
    exit_after_run: bool,
    /// Time scale of the scenario or workload (2 = twice as fast).
    #[arg(long, env = "SIM_SPEED", default_value_t = 1.0)]
    speed: f64,
    /// Wait this long after the server is up before the scenario or workload starts, ms (time
    /// for the trackers to connect).
    #[arg(long, env = "SIM_START_DELAY_MS", default_value_t = 0)]
    start_delay_ms: u64,
    /// The OAuth2 client secret of the bot's application (the client id is the bot's id).
    #[arg(long, env = "SIM_OAUTH2_CLIENT_SECRET", default_value = invitrack_sim::DEFAULT_CLIENT_SECRET)]
    oauth2_client_secret: String,
    /// Registered OAuth2 redirect URIs, comma-separated.
    #[arg(long, env = "SIM_OAUTH2_REDIRECT_URIS", default_value = "")]
    oauth2_redirect_uris: String,
}

/// The scenario to play: a scenario file, or the scenario a workload spec generates.
fn plan(args: &Args) -> anyhow::Result<Option<invitrack_sim::scenario::Scenario>> {
    use anyhow::Context as _;
    if let Some(path) = &args.scenario {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading the scenario {}", path.display()))?;
        let scenario = serde_json::from_str(&text)
            .with_context(|| format!("parsing the scenario {}", path.display()))?;
        return Ok(Some(scenario));
    }
    if let Some(path) = &args.workload {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading the workload {}", path.display()))?;
        let spec: invitrack_sim::workload::WorkloadSpec = serde_json::from_str(&text)
            .with_context(|| format!("parsing the workload {}", path.display()))?;
        let scenario = invitrack_sim::workload::generate(&spec)
            .map_err(|e| anyhow::anyhow!("workload {}: {e}", path.display()))?;
        return Ok(Some(scenario));
    }
    Ok(None)
}

fn global_limit(text: &str) -> anyhow::Result<invitrack_sim::GlobalLimit> {
    let text = text.trim();
    if text == "0" {
        return Ok(invitrack_sim::GlobalLimit {
            limit: 0,
            window_ms: 1000,
        });
    }
    let (limit, window) = text
        .split_once('/')
        .ok_or_else(|| anyhow::anyhow!("global rate limit {text:?}: expected LIMIT/WINDOW_MS"))?;
    Ok(invitrack_sim::GlobalLimit {
        limit: limit.trim().parse()?,
        window_ms: window.trim().parse()?,
    })
}

fn config(args: &Args) -> anyhow::Result<SimConfig> {
    let routes = invitrack_sim::ratelimit::parse_route_limits(&args.rate_limits)
        .map_err(|e| anyhow::anyhow!("SIM_RATE_LIMITS: {e}"))?;
    let faults = invitrack_sim::FaultConfig::from_env_strings(
        Some(&args.latency_ms),
        Some(&args.error_rate),
        Some(args.read_at),
    )
    .map_err(|e| anyhow::anyhow!("SIM_LATENCY_MS / SIM_ERROR_RATE / SIM_READ_AT: {e}"))?;
    Ok(SimConfig {
        bind: args.bind,
        bot_token: args.bot_token.clone(),
        bot_user_id: args.bot_user_id,
        shards: args.shards,
        rate_limits: invitrack_sim::RateLimitConfig {
            global: global_limit(&args.global_rate_limit)?,
            routes,
        },
        faults,
        event_delay: invitrack_sim::EventDelay::parse(&args.event_delay_ms)
            .map_err(|e| anyhow::anyhow!("SIM_EVENT_DELAY_MS: {e}"))?,
        gateway_queue: args.gateway_queue,
        message_capacity: args.message_capacity,
        members_search: invitrack_sim::MembersSearchOptions {
            index_ms: args.members_search_index_ms,
            lag_ms: args.members_search_lag_ms,
            ..invitrack_sim::MembersSearchOptions::default()
        },
        member_requests: invitrack_sim::MemberRequestOptions {
            all_members_window_ms: args.all_members_window_ms,
        },
        truth_file: args.truth_file.clone(),
        oauth2: invitrack_sim::OAuth2Options {
            client_secret: args.oauth2_client_secret.clone(),
            redirect_uris: args
                .oauth2_redirect_uris
                .split(',')
                .map(str::trim)
                .filter(|uri| !uri.is_empty())
                .map(str::to_owned)
                .collect(),
        },
        privileged_intents: invitrack_sim::intents::PRIVILEGED,
    })
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
    if args.scenario.is_some() && args.workload.is_some() {
        anyhow::bail!("give --scenario or --workload, not both");
    }
    if args.speed.is_nan() || args.speed <= 0.0 {
        anyhow::bail!("--speed must be positive");
    }
    let plan = plan(&args)?;
    let sim = Simulator::start(config(&args)?).await?;
    tracing::info!(
        gateway = %sim.gateway_url(),
        api_proxy = %sim.api_proxy(),
        control = %sim.control_url(),
        "invitrack-sim ready"
    );
    if let Some(scenario) = plan {
        let world = sim.world();
        let options = invitrack_sim::scenario::RunOptions {
            speed: args.speed,
            until: None,
        };
        let start_delay = std::time::Duration::from_millis(args.start_delay_ms);
        let truth_file = args.truth_file.clone();
        let run = async move {
            tokio::time::sleep(start_delay).await;
            tracing::info!(steps = scenario.steps.len(), "playing the scenario");
            let report = invitrack_sim::scenario::run(&world, &scenario, options).await;
            tracing::info!(
                steps = report.steps,
                joins = report.joins,
                failed = report.failed,
                max_lag_ms = report.max_lag_ms,
                "scenario over"
            );
            for error in &report.errors {
                tracing::warn!(error, "scenario step failed");
            }
            if let Some(path) = &truth_file {
                match world.write_truth(path) {
                    Ok(lines) => {
                        tracing::info!(path = %path.display(), lines, "ground truth written")
                    }
                    Err(error) => {
                        tracing::error!(path = %path.display(), %error, "cannot write the ground truth")
                    }
                }
            }
            println!("{}", serde_json::to_string(&report).unwrap_or_default());
        };
        if args.exit_after_run {
            tokio::select! {
                () = run => {}
                () = shutdown_signal() => {}
            }
            tracing::info!("stopping");
            sim.stop().await;
            return Ok(());
        }
        tokio::spawn(run);
    }
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
