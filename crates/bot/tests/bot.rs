//! invitrack-bot end to end over real sockets: the simulator speaks Discord (gateway and REST),
//! ingest and the worker run in-process against real NATS and PostgreSQL, and the bot runs as
//! its binary. Messages are read back from the simulator's channels and counted by nonce.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use invitrack_bus::BusConfig;
use invitrack_model::{BotId, ChannelId, GuildId, GuildKey};
use invitrack_sim::{
    ChannelSpec, GuildSpec, InteractionKind, InteractionReply, InteractionSpec, InviteSpec,
    JoinSpec, JoinVia, PostedMessage, Route, RunningSim, SimConfig, Simulator, permissions,
};
use invitrack_storage::admin::{Actor, SettingsChange};
use invitrack_storage::schema::bot_posts;
use invitrack_testkit::{Receiver, TempDir, TestDatabase};
use tokio_util::sync::CancellationToken;
use twilight_model::id::Id;
use twilight_model::id::marker::{ChannelMarker, GuildMarker, InteractionMarker};

const INVITER: u64 = 777_000_000_000_000_001;

/// The simulator, ingest and a worker on a test database and bus prefix of their own.
struct Stack {
    sim: RunningSim,
    database: TestDatabase,
    bus: BusConfig,
    guild: Id<GuildMarker>,
    code: String,
    join_log: Id<ChannelMarker>,
    leave_log: Id<ChannelMarker>,
    logs: TempDir,
    shutdown: CancellationToken,
}

impl Stack {
    async fn start(name: &str, sim_config: SimConfig) -> Self {
        let sim = Simulator::start(SimConfig {
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            ..sim_config
        })
        .await
        .expect("simulator starts");
        let world = sim.world();
        let guild = world
            .create_guild(GuildSpec::default())
            .expect("guild")
            .guild_id;
        let code = world
            .create_invite(guild, InviteSpec::by(Id::new(INVITER)))
            .expect("invite")
            .code;
        let channel = |name: &str, bot_deny: u64| {
            world
                .create_channel(
                    guild,
                    ChannelSpec {
                        name: name.into(),
                        bot_deny,
                    },
                )
                .expect("channel")
        };
        let join_log = channel("join-log", 0);
        let leave_log = channel("leave-log", 0);
        let database = TestDatabase::new(&format!("invitrack_{name}"));
        invitrack_storage::prepare_database(&database.url())
            .await
            .expect("database");
        let bus = BusConfig {
            nats_url: invitrack_testkit::nats_url(),
            bus_prefix: invitrack_testkit::unique(name),
            bus_partitions: 4,
            bus_max_age_hours: 1,
            ..BusConfig::default()
        };
        let shutdown = CancellationToken::new();
        let mut worker = invitrack_worker::WorkerConfig::new(database.url(), bus.clone());
        worker.tick_ms = 50;
        tokio::spawn(invitrack_worker::run(worker, shutdown.clone()));
        tokio::spawn(invitrack_ingest::run(
            invitrack_ingest::IngestConfig {
                discord_gateway_url: Some(sim.gateway_url()),
                discord_api_proxy: Some(sim.api_proxy()),
                ..invitrack_ingest::IngestConfig::new(world.bot().token.clone(), bus.clone())
            },
            shutdown.clone(),
        ));
        let stack = Self {
            sim,
            database,
            bus,
            guild,
            code,
            join_log,
            leave_log,
            logs: TempDir::new(name),
            shutdown,
        };
        stack.set_channels(Some(join_log), Some(leave_log)).await;
        let deadline = Instant::now() + Duration::from_secs(30);
        while world.connected_sessions() == 0 {
            assert!(Instant::now() < deadline, "ingest never connected");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        stack
    }

    fn guild_key(&self) -> GuildKey {
        GuildKey::new(
            BotId::new(self.sim.world().bot().user_id.get()),
            GuildId::new(self.guild.get()),
        )
    }

    async fn conn(&self) -> diesel_async::AsyncPgConnection {
        invitrack_storage::connect(&self.database.url())
            .await
            .expect("database")
    }

    async fn set_channels(
        &self,
        join: Option<Id<ChannelMarker>>,
        leave: Option<Id<ChannelMarker>>,
    ) {
        let channel = |c: Option<Id<ChannelMarker>>| Some(c.map(|c| ChannelId::new(c.get())));
        invitrack_storage::admin::update_settings(
            &mut self.conn().await,
            self.guild_key(),
            SettingsChange {
                join_log_channel_id: channel(join),
                leave_log_channel_id: channel(leave),
                ..SettingsChange::default()
            },
            &Actor {
                key_id: 0,
                key_label: "test",
                author: "test",
            },
        )
        .await
        .expect("settings");
    }

    /// The bot's binary, with `extra` environment variables.
    fn spawn_bot(&self, extra: &[(&str, &str)]) -> Child {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.logs.path().join("bot.log"))
            .expect("log file");
        let mut command = Command::new(env!("CARGO_BIN_EXE_invitrack-bot"));
        command
            .env("DISCORD_TOKEN", &self.sim.world().bot().token)
            .env("DISCORD_API_PROXY", self.sim.api_proxy())
            .env("DATABASE_URL", self.database.url())
            .env("NATS_URL", &self.bus.nats_url)
            .env("BUS_PREFIX", &self.bus.bus_prefix)
            .env("BUS_PARTITIONS", self.bus.bus_partitions.to_string())
            .env("RUST_LOG", "info")
            .stdout(log.try_clone().expect("log file"))
            .stderr(log);
        for (name, value) in extra {
            command.env(name, value);
        }
        command.spawn().expect("the bot starts")
    }

    /// Waits until the bot's consumers of the decision stream exist (its messages' and its
    /// webhooks', which take only decisions published after they are made).
    async fn wait_consumers(&self) {
        let bus = self.bus.connect().await.expect("bus");
        let expected = 2 * bus.layout.partitions() as usize;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let mut stream = bus
                .jetstream
                .get_stream(bus.layout.decision_stream())
                .await
                .expect("the decision stream");
            let consumers = stream
                .info()
                .await
                .expect("stream info")
                .state
                .consumer_count;
            if consumers >= expected {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{consumers} of {expected} consumers; bot log:\n{}",
                self.bot_log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn bot_log(&self) -> String {
        invitrack_testkit::tail(&self.logs.path().join("bot.log"), 40)
    }

    fn join(&self) -> u64 {
        self.sim
            .world()
            .join(
                self.guild,
                JoinVia::Invite(self.code.clone()),
                JoinSpec::default(),
            )
            .expect("join")
            .user_id
            .get()
    }

    fn messages(&self, channel: Id<ChannelMarker>) -> Vec<PostedMessage> {
        self.sim
            .world()
            .channel_messages(channel)
            .expect("a channel")
    }

    /// Waits until `channel` holds `count` messages (at most `within`).
    async fn wait_messages(&self, channel: Id<ChannelMarker>, count: usize, within: Duration) {
        let deadline = Instant::now() + within;
        while self.messages(channel).len() < count {
            assert!(
                Instant::now() < deadline,
                "{} of {count} messages in channel {channel}; bot log:\n{}",
                self.messages(channel).len(),
                self.bot_log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Makes an interaction as `user` with `permissions` and waits for its answer's content;
    /// made again if nobody answered (the bot's interaction subscription may not exist yet).
    async fn ask(
        &self,
        user: u64,
        member_permissions: u64,
        kind: InteractionKind,
        locale: &str,
    ) -> InteractionReply {
        let world = self.sim.world();
        for _ in 0..5 {
            let made = world
                .interact(InteractionSpec {
                    guild_id: self.guild,
                    user_id: Id::new(user),
                    member_permissions,
                    kind: kind.clone(),
                    locale: locale.to_owned(),
                })
                .expect("an interaction");
            let deadline = Instant::now() + Duration::from_secs(4);
            while Instant::now() < deadline {
                // Answered: a message (a deferred one once edited), or a form.
                if let Some(reply) = world.interaction_reply(made.id)
                    && (reply.content.is_some() || reply.callback_type == 9)
                {
                    return reply;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        panic!("{kind:?} never answered; bot log:\n{}", self.bot_log());
    }

    async fn command(
        &self,
        user: u64,
        permissions: u64,
        name: &str,
        options: serde_json::Value,
    ) -> InteractionReply {
        self.ask(
            user,
            permissions,
            InteractionKind::Command {
                name: name.to_owned(),
                options,
            },
            "en-US",
        )
        .await
    }

    async fn press(&self, user: u64, permissions: u64, custom_id: &str) -> InteractionReply {
        self.ask(
            user,
            permissions,
            InteractionKind::Component {
                custom_id: custom_id.to_owned(),
                message_id: None,
            },
            "en-US",
        )
        .await
    }

    /// `/config template message:invite` by `user`: the interaction the form answered.
    async fn open_template_form(&self, user: u64, permissions: u64) -> Id<InteractionMarker> {
        let world = self.sim.world();
        let made = world
            .interact(InteractionSpec {
                guild_id: self.guild,
                user_id: Id::new(user),
                member_permissions: permissions,
                kind: InteractionKind::Command {
                    name: "config".into(),
                    options: serde_json::json!([{"name": "template", "type": 1, "options": [
                        {"name": "message", "type": 3, "value": "invite"}
                    ]}]),
                },
                locale: "en-US".into(),
            })
            .expect("interaction");
        let deadline = Instant::now() + Duration::from_secs(10);
        while world
            .interaction_reply(made.id)
            .is_none_or(|r| r.callback_type != 9)
        {
            assert!(
                Instant::now() < deadline,
                "no form; bot log:\n{}",
                self.bot_log()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        made.id
    }

    async fn settings(&self) -> invitrack_storage::admin::GuildSettings {
        invitrack_storage::admin::guild_settings(&mut self.conn().await, self.guild_key())
            .await
            .expect("settings")
    }

    async fn counts(&self, inviter: u64) -> invitrack_storage::counts::InviterCounts {
        invitrack_storage::counts::inviter_counts(
            &mut self.conn().await,
            self.guild_key(),
            invitrack_model::UserId::new(inviter),
        )
        .await
        .expect("counts")
    }

    async fn finish(self) {
        self.shutdown.cancel();
        if let Ok(connected) = self.bus.connect().await {
            invitrack_bus::delete_streams(&connected.jetstream, &connected.layout).await;
        }
    }
}

/// The lines of `messages` that mention `member`.
fn mentions(messages: &[PostedMessage], member: u64) -> Vec<String> {
    let mention = format!("<@{member}>");
    messages
        .iter()
        .flat_map(|m| m.content.lines())
        .filter(|line| line.contains(&mention))
        .map(str::to_owned)
        .collect()
}

/// Messages by nonce; panics on a nonce posted twice.
fn by_nonce(messages: &[PostedMessage]) -> BTreeMap<String, &PostedMessage> {
    let mut seen = BTreeMap::new();
    for message in messages {
        let nonce = message.nonce.as_ref().expect("a nonce").text();
        assert!(
            seen.insert(nonce.clone(), message).is_none(),
            "nonce {nonce} posted twice"
        );
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_join_and_leave_gets_one_message_and_a_forbidden_channel_is_not_hammered() {
    let stack = Stack::start("bot_messages", SimConfig::default()).await;
    // A webhook of the guild, on this machine: the bot sends it every join and leave too.
    let receiver = Receiver::start("invitrack-delivery", |_| 200).await;
    invitrack_storage::webhooks::create(
        &mut stack.conn().await,
        stack.guild_key(),
        &receiver.url("/hook"),
        &["member.join", "member.leave"],
        "whsec_bot_test",
        &Actor {
            key_id: 0,
            key_label: "test",
            author: "test",
        },
    )
    .await
    .expect("webhook");
    let metrics_port = invitrack_testkit::free_port();
    let metrics_bind = format!("127.0.0.1:{metrics_port}");
    let mut bot = stack.spawn_bot(&[
        ("WEBHOOKS_ALLOW_PRIVATE_NETWORKS", "true"),
        ("BOT_METRICS_BIND", &metrics_bind),
    ]);
    stack.wait_consumers().await;
    let members: Vec<u64> = (0..3)
        .map(|_| {
            let member = stack.join();
            std::thread::sleep(Duration::from_millis(1_500));
            member
        })
        .collect();
    stack
        .sim
        .world()
        .leave(stack.guild, Id::new(members[0]))
        .expect("leave");
    stack
        .wait_messages(stack.join_log, 3, Duration::from_secs(60))
        .await;
    stack
        .wait_messages(stack.leave_log, 1, Duration::from_secs(60))
        .await;

    let joins = stack.messages(stack.join_log);
    let _ = by_nonce(&joins);
    for member in &members {
        let lines = mentions(&joins, *member);
        assert_eq!(lines.len(), 1, "member {member}: {joins:?}");
        assert!(
            lines[0].contains(&format!("<@{INVITER}>")) && lines[0].contains(&stack.code),
            "join message: {}",
            lines[0]
        );
    }
    for message in &joins {
        assert_eq!(
            message.allowed_mentions,
            Some(serde_json::json!({"parse": []})),
            "a join log pings nobody"
        );
    }
    let leave = &stack.messages(stack.leave_log)[0];
    assert!(
        leave.content.contains(&format!("<@{}>", members[0])),
        "leave message: {}",
        leave.content
    );

    // The webhook got the same four events, signed.
    let events =
        invitrack_testkit::eventually(Duration::from_secs(30), "four webhook events", || {
            let received = receiver.received();
            async move { (received.len() >= 4).then_some(received) }
        })
        .await;
    let now = chrono::Utc::now().timestamp();
    let mut seen = BTreeSet::new();
    for event in &events {
        invitrack_webhooks::signature::verify(
            "whsec_bot_test",
            event.header("invitrack-signature"),
            &event.body,
            now,
            300,
        )
        .expect("signed");
        let body: serde_json::Value = serde_json::from_slice(&event.body).expect("JSON");
        let member: u64 = body["member"]["id"]
            .as_str()
            .and_then(|id| id.parse().ok())
            .expect("a member id");
        seen.insert((body["type"].as_str().unwrap_or_default().to_owned(), member));
        if body["type"] == "member.join" {
            assert_eq!(body["code"], stack.code.as_str(), "{body}");
            assert_eq!(body["inviter_id"], INVITER.to_string(), "{body}");
        }
    }
    let expected: BTreeSet<(String, u64)> = members
        .iter()
        .map(|m| ("member.join".to_owned(), *m))
        .chain([("member.leave".to_owned(), members[0])])
        .collect();
    assert_eq!(seen, expected);
    assert_eq!(events.len(), 4, "each event once");

    // A channel where the bot may not post: one refused request, then nothing for a while,
    // and the refusals are on record.
    let forbidden = stack
        .sim
        .world()
        .create_channel(
            stack.guild,
            ChannelSpec {
                name: "no-access".into(),
                bot_deny: invitrack_sim::permissions::SEND_MESSAGES,
            },
        )
        .expect("channel");
    stack
        .set_channels(Some(forbidden), Some(stack.leave_log))
        .await;
    let before = create_message_requests(&stack);
    stack.join();
    std::thread::sleep(Duration::from_millis(1_000));
    stack.join();
    let mut conn = stack.conn().await;
    let deadline = Instant::now() + Duration::from_secs(60);
    let refused = loop {
        let refused: Vec<String> = bot_posts::table
            .filter(bot_posts::outcome.ne("posted"))
            .select(bot_posts::outcome)
            .load(&mut conn)
            .await
            .expect("bot_posts");
        if refused.len() == 2 {
            break refused;
        }
        assert!(
            Instant::now() < deadline,
            "refusals: {refused:?}\n{}",
            stack.bot_log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(refused, ["missing_permissions", "missing_permissions"]);
    assert_eq!(
        create_message_requests(&stack) - before,
        1,
        "one 403, then the channel is left alone"
    );
    assert!(stack.messages(forbidden).is_empty());

    // The metrics say the same, once the webhook has the two joins of the forbidden channel.
    invitrack_testkit::eventually(Duration::from_secs(30), "six webhook events", || {
        let received = receiver.received().len();
        async move { (received >= 6).then_some(()) }
    })
    .await;
    let scraped = reqwest::get(format!("http://{metrics_bind}/metrics"))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    let value = |name: &str| -> f64 {
        scraped
            .lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("{name} missing from\n{scraped}"))
    };
    assert_eq!(value("invitrack_bot_decisions_posted_total"), 4.0);
    assert_eq!(
        value("invitrack_bot_messages_total{outcome=\"missing_permissions\"}"),
        1.0
    );
    assert_eq!(value("invitrack_bot_channels_paused"), 1.0);
    assert_eq!(
        value("invitrack_bot_discord_errors_total{status=\"403\"}"),
        1.0
    );
    assert_eq!(
        value("invitrack_webhooks_attempts_total{result=\"delivered\"}"),
        6.0
    );
    assert!(scraped.contains("invitrack_bot_decisions_waiting{partition=\"0\"}"));

    let _ = bot.kill();
    let _ = bot.wait();
    stack.finish().await;
}

fn create_message_requests(stack: &Stack) -> u64 {
    stack
        .sim
        .world()
        .rest_stats()
        .routes
        .get(&Route::CreateMessage)
        .map_or(0, |r| r.requests)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_raid_goes_out_in_few_messages_each_join_once_even_through_a_kill_9() {
    const RAID: usize = 200;
    // The simulator's channel bucket (5 per 5 s, as Discord commonly has): a message per join
    // would take 200 s; decisions waiting for the channel go out together.
    let stack = Stack::start("bot_raid", SimConfig::default()).await;
    let mut bot = stack.spawn_bot(&[]);
    let mut members = BTreeSet::new();
    for _ in 0..RAID {
        members.insert(stack.join());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let all_mentioned = |messages: &[PostedMessage]| {
        members
            .iter()
            .filter(|member| !mentions(messages, **member).is_empty())
            .count()
    };
    // kill -9 once the messages have started, then a new bot.
    let deadline = Instant::now() + Duration::from_secs(90);
    while all_mentioned(&stack.messages(stack.join_log)) < RAID / 4 {
        assert!(
            Instant::now() < deadline,
            "no messages: {}",
            stack.bot_log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bot.kill().expect("kill -9");
    let _ = bot.wait();
    let before_kill = stack.messages(stack.join_log).len();
    let mut bot = stack.spawn_bot(&[]);
    let deadline = Instant::now() + Duration::from_secs(120);
    while all_mentioned(&stack.messages(stack.join_log)) < RAID {
        assert!(
            Instant::now() < deadline,
            "{} of {RAID} joins posted: {}",
            all_mentioned(&stack.messages(stack.join_log)),
            stack.bot_log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Nothing more comes.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let messages = stack.messages(stack.join_log);
    eprintln!(
        "{RAID} joins: {} messages ({before_kill} before the kill -9)",
        messages.len()
    );
    let _ = by_nonce(&messages);
    for member in &members {
        assert_eq!(
            mentions(&messages, *member).len(),
            1,
            "member {member} posted once"
        );
    }
    assert!(
        messages.len() <= RAID / 5,
        "a raid goes out in few messages: {}",
        messages.len()
    );
    let _ = bot.kill();
    let _ = bot.wait();
    stack.finish().await;
}

/// The custom ids of a reply's buttons.
fn button_ids(reply: &InteractionReply) -> Vec<String> {
    reply
        .components
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|row| row["components"].as_array().cloned().unwrap_or_default())
        .filter_map(|button| button["custom_id"].as_str().map(str::to_owned))
        .collect()
}

const EPHEMERAL: u64 = 1 << 6;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_command_answers_from_the_data_and_admin_commands_need_manage_server() {
    let stack = Stack::start("bot_commands", SimConfig::default()).await;
    let mut bot = stack.spawn_bot(&[]);
    stack.wait_consumers().await;
    let world = stack.sim.world();
    let mut names: Vec<String> = world.commands().into_iter().map(|c| c.name).collect();
    names.sort();
    assert_eq!(
        names,
        [
            "bonus",
            "config",
            "invite",
            "invitecodes",
            "inviter",
            "invites",
            "leaderboard",
            "resetinvites",
            "restoreinvites",
            "tracking"
        ]
    );

    let members: Vec<u64> = (0..3).map(|_| stack.join()).collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    while stack.counts(INVITER).await.joins < 3 {
        assert!(Instant::now() < deadline, "joins never counted");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let user = |id: u64| serde_json::json!([{"name": "user", "type": 6, "value": id.to_string()}]);
    let someone = 900_000_000_000_000_001;
    let admin = 900_000_000_000_000_002;
    let manage = permissions::EVERYONE | permissions::MANAGE_GUILD;

    // /invites says the counters the API reads.
    let expected = |c: invitrack_storage::counts::InviterCounts| {
        format!(
            "<@{INVITER}> has **{}** invites ({} real, {} fake, {} left, {} bonus).",
            c.total(),
            c.real(),
            c.fake,
            c.leaves,
            c.bonus
        )
    };
    let invites = stack
        .command(someone, permissions::EVERYONE, "invites", user(INVITER))
        .await;
    assert_eq!(invites.content, Some(expected(stack.counts(INVITER).await)));
    assert_eq!(invites.callback_type, 4);
    assert_eq!(invites.flags & EPHEMERAL, 0);
    let french = stack
        .ask(
            someone,
            permissions::EVERYONE,
            InteractionKind::Command {
                name: "invites".into(),
                options: user(INVITER),
            },
            "fr",
        )
        .await;
    assert_eq!(
        french.content.as_deref(),
        Some(
            format!("<@{INVITER}> a **3** invitations (3 réelles, 0 fausses, 0 parties, 0 bonus).")
                .as_str()
        )
    );

    let leaderboard = stack
        .command(someone, 0, "leaderboard", serde_json::Value::Null)
        .await;
    let text = leaderboard.content.expect("an answer");
    assert!(
        text.contains(&format!("\n1. <@{INVITER}>: **3** real")),
        "{text}"
    );

    let inviter = stack
        .command(
            someone,
            0,
            "inviter",
            serde_json::json!([{"name": "member", "type": 6, "value": members[0].to_string()}]),
        )
        .await;
    let text = inviter.content.expect("an answer");
    assert!(
        text.contains(&format!("with invite `{}` from <@{INVITER}>.", stack.code)),
        "{text}"
    );
    let codes = stack
        .command(someone, 0, "invitecodes", user(INVITER))
        .await;
    let text = codes.content.expect("an answer");
    assert!(
        text.contains(&format!(
            "`{}`: 3 uses, never expires; 3 credited",
            stack.code
        )),
        "{text}"
    );
    let tracking = stack
        .command(someone, 0, "tracking", serde_json::Value::Null)
        .await;
    let text = tracking.content.expect("an answer");
    assert!(
        text.contains("Last 7 days: 3 by invite, 0 by the vanity URL, 0 ambiguous, 0 unknown."),
        "{text}"
    );
    assert_eq!(tracking.flags & EPHEMERAL, EPHEMERAL);

    // Admin commands: refused without Manage Server, whatever Discord showed the member.
    let refused = stack
        .command(
            someone,
            permissions::EVERYONE,
            "resetinvites",
            user(INVITER),
        )
        .await;
    assert_eq!(refused.flags & EPHEMERAL, EPHEMERAL);
    assert_eq!(
        refused.content.as_deref(),
        Some("You need the Manage Server permission to do this.")
    );
    assert!(button_ids(&refused).is_empty());
    assert_eq!(stack.counts(INVITER).await.joins, 3);

    // With it: a question, confirmed only by the admin who asked.
    let asked = stack
        .command(admin, manage, "resetinvites", user(INVITER))
        .await;
    assert_eq!(asked.flags & EPHEMERAL, EPHEMERAL);
    let confirm = format!("reset:{admin}:{INVITER}");
    assert_eq!(
        button_ids(&asked),
        [confirm.clone(), format!("reset-cancel:{admin}")]
    );
    assert_eq!(
        stack.counts(INVITER).await.joins,
        3,
        "nothing changes before the confirmation"
    );
    let other = stack.press(someone, manage, &confirm).await;
    assert_eq!(
        other.content.as_deref(),
        Some("Only the member who asked can answer this.")
    );
    assert_eq!(stack.counts(INVITER).await.joins, 3);
    let done = stack.press(admin, manage, &confirm).await;
    assert_eq!(done.callback_type, 7, "the question is replaced");
    let text = done.content.expect("an answer");
    assert!(
        text.starts_with(&format!(
            "Reset: 3 joins and 0 bonus entries of <@{INVITER}>"
        )),
        "{text}"
    );
    assert_eq!(stack.counts(INVITER).await.real(), 0);

    let restored = stack
        .command(admin, manage, "restoreinvites", serde_json::Value::Null)
        .await;
    let text = restored.content.expect("an answer");
    assert!(
        text.starts_with(&format!("Restored the reset of <@{INVITER}>")),
        "{text}"
    );
    assert_eq!(stack.counts(INVITER).await.real(), 3);
    let again = stack
        .command(admin, manage, "restoreinvites", serde_json::Value::Null)
        .await;
    assert_eq!(again.content.as_deref(), Some("There is no reset to undo."));

    let bonus = |sub: &str, amount: i64| {
        serde_json::json!([{"name": sub, "type": 1, "options": [
            {"name": "user", "type": 6, "value": INVITER.to_string()},
            {"name": "amount", "type": 4, "value": amount},
            {"name": "reason", "type": 3, "value": "event winner"}
        ]}])
    };
    let refused = stack.command(someone, 0, "bonus", bonus("add", 2)).await;
    assert_eq!(
        refused.content.as_deref(),
        Some("You need the Manage Server permission to do this.")
    );
    let added = stack.command(admin, manage, "bonus", bonus("add", 2)).await;
    assert_eq!(stack.counts(INVITER).await.bonus, 2);
    assert!(
        added
            .content
            .expect("an answer")
            .ends_with(&expected(stack.counts(INVITER).await))
    );
    stack
        .command(admin, manage, "bonus", bonus("remove", 1))
        .await;
    assert_eq!(stack.counts(INVITER).await.bonus, 1);

    // /config changes what the bot reads for its messages.
    let channel = stack.leave_log.get();
    let set = stack
        .command(
            admin,
            manage,
            "config",
            serde_json::json!([{"name": "join-channel", "type": 1, "options": [
                {"name": "channel", "type": 7, "value": channel.to_string()}
            ]}]),
        )
        .await;
    assert_eq!(
        set.content,
        Some(format!("Join messages now go to <#{channel}>."))
    );
    let settings =
        invitrack_storage::admin::guild_settings(&mut stack.conn().await, stack.guild_key())
            .await
            .expect("settings");
    assert_eq!(settings.join_log_channel_id, Some(ChannelId::new(channel)));
    let fake = stack
        .command(
            admin,
            manage,
            "config",
            serde_json::json!([{"name": "fake-rules", "type": 1, "options": [
                {"name": "young-accounts", "type": 5, "value": true},
                {"name": "young-days", "type": 4, "value": 3}
            ]}]),
        )
        .await;
    assert!(
        fake.content
            .expect("an answer")
            .contains("accounts younger than 3 days")
    );
    let shown = stack
        .command(
            admin,
            manage,
            "config",
            serde_json::json!([{"name": "show", "type": 1}]),
        )
        .await;
    let text = shown.content.expect("an answer");
    assert!(
        text.contains(&format!("Join messages: <#{channel}>")),
        "{text}"
    );
    assert!(text.contains("accounts younger than 3 days"), "{text}");

    // Eleven inviters make two leaderboard pages; Next turns the page in place.
    for n in 1..=10 {
        invitrack_storage::admin::add_bonus(
            &mut stack.conn().await,
            stack.guild_key(),
            invitrack_model::UserId::new(INVITER + n),
            1,
            "",
            &Actor {
                key_id: 0,
                key_label: "test",
                author: "test",
            },
        )
        .await
        .expect("bonus");
    }
    let first = stack
        .command(someone, 0, "leaderboard", serde_json::Value::Null)
        .await;
    assert!(
        first
            .content
            .as_deref()
            .unwrap_or_default()
            .contains("page 1 of 2")
    );
    assert_eq!(
        button_ids(&first),
        ["leaderboard:all:1", "leaderboard:all:2"]
    );
    let second = stack.press(someone, 0, "leaderboard:all:2").await;
    assert_eq!(second.callback_type, 7);
    let text = second.content.expect("an answer");
    assert!(
        text.starts_with("**Leaderboard** (all time), page 2 of 2\n11. <@"),
        "{text}"
    );

    bot.kill().expect("the bot stops");
    bot.wait().expect("the bot stops");
    stack.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_http_interactions_endpoint_checks_signatures_and_answers_commands() {
    use ed25519_dalek::{Signer as _, SigningKey};
    let stack = Stack::start("bot_endpoint", SimConfig::default()).await;
    let world = stack.sim.world();
    let port = invitrack_testkit::free_port();
    // The application's public key, as the developer portal shows it.
    let mut bot = stack.spawn_bot(&[
        ("BOT_INTERACTIONS_BIND", &format!("127.0.0.1:{port}")),
        ("DISCORD_PUBLIC_KEY", &world.bot().verify_key),
    ]);
    assert!(
        invitrack_testkit::wait_for_port(port, Duration::from_secs(30)),
        "the endpoint never listened; bot log:\n{}",
        stack.bot_log()
    );
    let url = format!("http://127.0.0.1:{port}/interactions");
    let client = reqwest::Client::new();
    let post = |body: &str, signature: Option<String>| {
        let mut request = client
            .post(&url)
            .header("Content-Type", "application/json")
            .header("X-Signature-Timestamp", "1764806400");
        if let Some(signature) = signature {
            request = request.header("X-Signature-Ed25519", signature);
        }
        request.body(body.to_owned())
    };
    let ping = r#"{"id":"1","application_id":"2","type":1,"token":"t","version":1}"#;
    let unsigned = post(ping, None).send().await.expect("a response");
    assert_eq!(unsigned.status(), 401);
    let forged = hex::encode(
        SigningKey::from_bytes(&[43; 32])
            .sign(format!("1764806400{ping}").as_bytes())
            .to_bytes(),
    );
    let refused = post(ping, Some(forged)).send().await.expect("a response");
    assert_eq!(refused.status(), 401);

    // The simulator takes the URL as Discord does: its signed PING answered PONG, a wrongly
    // signed one refused with 401. A URL that does not answer is refused.
    let control = |url: serde_json::Value| {
        client
            .put(format!("{}/interactions-endpoint", stack.sim.control_url()))
            .json(&serde_json::json!({ "url": url }))
            .send()
    };
    let dead = format!(
        "http://127.0.0.1:{}/interactions",
        invitrack_testkit::free_port()
    );
    let not_taken = control(serde_json::json!(dead)).await.expect("a response");
    assert_eq!(not_taken.status(), 400);
    assert!(
        not_taken
            .text()
            .await
            .unwrap_or_default()
            .contains("could not be verified"),
        "a dead URL taken"
    );
    let taken = control(serde_json::json!(url)).await.expect("a response");
    assert_eq!(taken.status(), 200, "bot log:\n{}", stack.bot_log());
    assert_eq!(world.interactions_url(), Some(url.clone()));

    // A command now arrives signed over HTTP, not on the gateway, and the HTTP response is
    // its answer.
    let answer = stack
        .command(
            900_000_000_000_000_003,
            permissions::EVERYONE,
            "invites",
            serde_json::json!([{"name": "user", "type": 6, "value": INVITER.to_string()}]),
        )
        .await;
    assert!(answer.over_http, "{answer:?}");
    assert_eq!(answer.callback_type, 4);
    assert_eq!(
        answer.content,
        Some(format!(
            "<@{INVITER}> has **0** invites (0 real, 0 fake, 0 left, 0 bonus)."
        ))
    );
    let bot_log = stack.bot_log();
    assert!(
        !bot_log.contains("interaction not answered"),
        "bot log:\n{bot_log}"
    );

    bot.kill().expect("the bot stops");
    bot.wait().expect("the bot stops");
    stack.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn personal_invites_are_credited_to_their_member_and_template_forms_save_with_a_preview() {
    let stack = Stack::start("bot_invite_link", SimConfig::default()).await;
    let mut bot = stack.spawn_bot(&[]);
    stack.wait_consumers().await;
    let world = stack.sim.world();
    let member = 900_000_000_000_000_011_u64;
    let admin = 900_000_000_000_000_012_u64;
    let manage = permissions::EVERYONE | permissions::MANAGE_GUILD;
    let link = |user| {
        stack.command(
            user,
            permissions::EVERYONE,
            "invite",
            serde_json::json!([{"name": "link", "type": 1}]),
        )
    };

    // Off until an admin names a channel; the bot may not create invites in a locked one.
    let off = link(member).await;
    assert!(
        off.content
            .as_deref()
            .unwrap_or("")
            .starts_with("Personal invites are off"),
        "{off:?}"
    );
    let locked = world
        .create_channel(
            stack.guild,
            ChannelSpec {
                name: "locked".into(),
                bot_deny: permissions::CREATE_INSTANT_INVITE,
            },
        )
        .expect("channel");
    let lobby = world
        .create_channel(
            stack.guild,
            ChannelSpec {
                name: "lobby".into(),
                bot_deny: 0,
            },
        )
        .expect("channel");
    let set_channel = |channel: Id<ChannelMarker>| {
        stack.command(
            admin,
            manage,
            "config",
            serde_json::json!([{"name": "invite-channel", "type": 1, "options": [
                {"name": "channel", "type": 7, "value": channel.to_string()}
            ]}]),
        )
    };
    let refused = stack
        .command(
            member,
            permissions::EVERYONE,
            "config",
            serde_json::json!([{"name": "invite-channel", "type": 1}]),
        )
        .await;
    assert!(
        refused
            .content
            .as_deref()
            .unwrap_or("")
            .contains("Manage Server"),
        "{refused:?}"
    );
    set_channel(locked).await;
    let forbidden = link(member).await;
    assert_eq!(
        forbidden.content,
        Some(format!(
            "The bot may not create invites in <#{locked}>: give its role Create Invite there."
        ))
    );
    let set = set_channel(lobby).await;
    assert_eq!(
        set.content,
        Some(format!(
            "/invite link now creates members' invites in <#{lobby}>."
        ))
    );

    // The invite: the bot's on Discord, the member's here; asked again, the same one.
    let given = link(member).await;
    let text = given.content.clone().unwrap_or_default();
    let code = text
        .split("https://discord.gg/")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .expect("a link")
        .to_owned();
    assert_eq!(given.flags & EPHEMERAL, EPHEMERAL);
    let invite = world
        .invites(stack.guild)
        .expect("invites")
        .into_iter()
        .find(|i| i.code == code)
        .expect("the invite exists on Discord");
    assert_eq!(invite.inviter_id, Some(world.bot().user_id));
    assert_eq!((invite.max_uses, invite.max_age_secs), (0, 0));
    assert_eq!(link(member).await.content, given.content);

    // Joins through it count for the member, not the bot.
    for _ in 0..2 {
        world
            .join(
                stack.guild,
                JoinVia::Invite(code.clone()),
                JoinSpec::default(),
            )
            .expect("join");
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while stack.counts(member).await.joins < 2 {
        assert!(
            Instant::now() < deadline,
            "joins through the personal invite never counted for its member"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(stack.counts(world.bot().user_id.get()).await.joins, 0);
    let codes = stack
        .command(
            member,
            permissions::EVERYONE,
            "invitecodes",
            serde_json::json!([]),
        )
        .await;
    assert!(
        codes.content.as_deref().unwrap_or("").contains(&code),
        "{codes:?}"
    );

    // /config template: a form with the current wording and a preview.
    let template = serde_json::json!([{"name": "template", "type": 1, "options": [
        {"name": "message", "type": 3, "value": "invite"}
    ]}]);
    let form = stack
        .command(admin, manage, "config", template.clone())
        .await;
    assert_eq!(form.callback_type, 9, "{form:?}");
    let shown = form.components.to_string();
    assert!(shown.contains("(on sample data)"), "{shown}");
    let submit = |of, permissions, values: &[(&str, &str)]| {
        stack.ask(
            admin,
            permissions,
            InteractionKind::ModalSubmit {
                of,
                values: values
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect(),
            },
            "en-US",
        )
    };
    // Both text and an embed: refused, nothing saved.
    let both = submit(
        stack.open_template_form(admin, manage).await,
        manage,
        &[("content", "Hi {member.mention}"), ("title", "Welcome")],
    )
    .await;
    assert!(
        both.content
            .as_deref()
            .unwrap_or("")
            .starts_with("Nothing saved: a message is either text or an embed"),
        "{both:?}"
    );
    // Manage Server lost meanwhile: refused.
    let lost = submit(
        stack.open_template_form(admin, manage).await,
        permissions::EVERYONE,
        &[("content", "Hi")],
    )
    .await;
    assert!(
        lost.content
            .as_deref()
            .unwrap_or("")
            .contains("Manage Server"),
        "{lost:?}"
    );
    // A placeholder that does not exist: refused with the reason.
    let typo = submit(
        stack.open_template_form(admin, manage).await,
        manage,
        &[("content", "Hi {member.nam}")],
    )
    .await;
    assert!(
        typo.content
            .as_deref()
            .unwrap_or("")
            .starts_with("Nothing saved: "),
        "{typo:?}"
    );
    assert!(
        stack
            .settings()
            .await
            .templates
            .custom(invitrack_messages::MessageKind::Invite)
            .is_none()
    );
    // An embed: saved, and shown as the bot will post it.
    let saved = submit(
        stack.open_template_form(admin, manage).await,
        manage,
        &[
            ("content", ""),
            ("title", "Welcome {member.name}"),
            ("description", "Invited by {inviter.mention}"),
        ],
    )
    .await;
    assert!(
        saved.content.as_deref().unwrap_or("").starts_with("Saved."),
        "{saved:?}"
    );
    assert_eq!(saved.embeds.len(), 1, "{saved:?}");
    assert!(
        saved.embeds[0]["title"]
            .as_str()
            .unwrap_or("")
            .starts_with("Welcome "),
        "{saved:?}"
    );
    assert!(
        stack
            .settings()
            .await
            .templates
            .custom(invitrack_messages::MessageKind::Invite)
            .is_some()
    );
    // The next join's message uses it.
    stack.join();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !stack.messages(stack.join_log).iter().any(|m| {
        m.embeds.iter().any(|e| {
            e["title"]
                .as_str()
                .is_some_and(|t| t.starts_with("Welcome "))
        })
    }) {
        assert!(
            Instant::now() < deadline,
            "the new wording was never posted; bot log:\n{}",
            stack.bot_log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Everything empty: back to the default.
    let reset = submit(
        stack.open_template_form(admin, manage).await,
        manage,
        &[
            ("content", ""),
            ("title", ""),
            ("description", ""),
            ("footer", ""),
        ],
    )
    .await;
    assert!(
        reset
            .content
            .as_deref()
            .unwrap_or("")
            .contains("back to the default"),
        "{reset:?}"
    );
    assert!(
        stack
            .settings()
            .await
            .templates
            .custom(invitrack_messages::MessageKind::Invite)
            .is_none()
    );

    bot.kill().expect("the bot stops");
    bot.wait().expect("the bot stops");
    stack.finish().await;
}
