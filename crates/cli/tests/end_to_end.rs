//! One member join travels from the simulator's gateway to the HTTP API, for real: the
//! simulator on a loopback port, twilight in ingest, NATS JetStream, the worker, PostgreSQL,
//! actix-web. Each run has its own database and bus prefix, so runs do not collide with each
//! other or with a running demo.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use invitrack_api::{ApiConfig, ApiOptions, Application};
use invitrack_bus::BusConfig;
use invitrack_ingest::IngestConfig;
use invitrack_model::{BotId, GuildId, GuildKey, UserId};
use invitrack_sim::{SimConfig, Simulator};
use invitrack_testkit::TestDatabase;
use invitrack_worker::WorkerConfig;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

struct Stack {
    sim: invitrack_sim::RunningSim,
    api: String,
    /// Where ingest and the worker serve metrics and health.
    ingest_ops: SocketAddr,
    worker_ops: SocketAddr,
    /// Dropped (with FORCE) when the stack is.
    _database: TestDatabase,
    database_url: String,
    bot_id: u64,
    bus: BusConfig,
    layout: invitrack_bus::BusLayout,
    shutdown: CancellationToken,
    /// Stops ingest alone (a child of `shutdown`); replaced when ingest starts again.
    ingest: std::sync::Mutex<(CancellationToken, Option<tokio::task::JoinHandle<()>>)>,
    ingest_config: IngestConfig,
    http: reqwest::Client,
}

/// What a test changes from the services' defaults.
#[derive(Default)]
struct Tuning {
    members_search: invitrack_ingest::MembersSearchConfig,
    sim_members_search: Option<invitrack_sim::MembersSearchOptions>,
    settle_ms: Option<i64>,
}

impl Stack {
    async fn start() -> Self {
        Self::start_with(Tuning::default()).await
    }

    async fn start_with(tuning: Tuning) -> Self {
        let database = TestDatabase::new("invitrack_e2e");
        let database_url = database.url();
        let bus = BusConfig {
            nats_url: invitrack_testkit::nats_url(),
            bus_prefix: invitrack_testkit::unique("e2e"),
            bus_partitions: 4,
            bus_max_age_hours: 1,
            ..BusConfig::default()
        };
        let sim = Simulator::start(SimConfig {
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            members_search: tuning.sim_members_search.unwrap_or_default(),
            ..SimConfig::default()
        })
        .await
        .expect("simulator starts");
        let shutdown = CancellationToken::new();
        let layout = bus.layout().expect("valid layout");
        invitrack_storage::prepare_database(&database_url)
            .await
            .expect("database");
        let loopback = |port| SocketAddr::from(([127, 0, 0, 1], port));
        let ingest_ops = loopback(invitrack_testkit::free_port());
        let worker_ops = loopback(invitrack_testkit::free_port());
        tokio::spawn(invitrack_worker::run(
            WorkerConfig {
                db_connections: 2,
                batch: 100,
                tick_ms: 100,
                gateway_lag_ms: 1_000,
                max_pending_ms: 60_000,
                metrics_bind: Some(worker_ops),
                ..WorkerConfig::new(database_url.clone(), bus.clone())
            },
            shutdown.clone(),
        ));
        let ingest_config = IngestConfig {
            discord_gateway_url: Some(sim.gateway_url()),
            discord_api_proxy: Some(sim.api_proxy()),
            buffer: 10_000,
            metrics_bind: Some(ingest_ops),
            settle_ms: tuning
                .settle_ms
                .unwrap_or(invitrack_ingest::DEFAULT_SETTLE_MS),
            members_search: tuning.members_search,
            ..IngestConfig::new(SimConfig::default().bot_token, bus.clone())
        };
        let api = Application::build(&ApiConfig {
            database_url: database_url.clone(),
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            workers: 1,
            db_connections: 2,
            options: ApiOptions::default(),
        })
        .await
        .expect("API starts");
        let api_url = format!("http://{}", api.addr());
        tokio::spawn(api.run_until_stopped(shutdown.clone()));
        let stack = Self {
            sim,
            api: api_url,
            ingest_ops,
            worker_ops,
            bus,
            _database: database,
            database_url,
            bot_id: SimConfig::default().bot_user_id,
            layout,
            ingest: std::sync::Mutex::new((shutdown.child_token(), None)),
            shutdown,
            ingest_config,
            http: reqwest::Client::new(),
        };
        stack.start_ingest(stack.ingest_config.clone());
        stack
    }

    /// Starts ingest again after [`Stack::stop_ingest`] (without its metrics endpoint, whose
    /// port the first run may still hold).
    fn restart_ingest(&self) {
        self.start_ingest(IngestConfig {
            metrics_bind: None,
            ..self.ingest_config.clone()
        });
    }

    fn start_ingest(&self, config: IngestConfig) {
        let mut ingest = self.ingest.lock().expect("ingest handle");
        let stop = self.shutdown.child_token();
        let task = tokio::spawn({
            let stop = stop.clone();
            async move {
                if let Err(error) = invitrack_ingest::run(config, stop).await {
                    eprintln!("ingest stopped: {error}");
                }
            }
        });
        *ingest = (stop, Some(task));
    }

    /// Stops ingest as an operator would (its shards close their sessions), and waits for it.
    async fn stop_ingest(&self) {
        let task = {
            let mut ingest = self.ingest.lock().expect("ingest handle");
            ingest.0.cancel();
            ingest.1.take()
        };
        if let Some(task) = task {
            tokio::time::timeout(Duration::from_secs(30), task)
                .await
                .expect("ingest stops")
                .expect("ingest task");
        }
    }

    async fn control(&self, path: &str, body: Value) -> Value {
        let response = self
            .http
            .post(format!("{}{path}", self.sim.control_url()))
            .json(&body)
            .send()
            .await
            .expect("control API answers");
        assert!(
            response.status().is_success(),
            "control {path}: {}",
            response.status()
        );
        if response.status() == reqwest::StatusCode::NO_CONTENT {
            return Value::Null;
        }
        response.json().await.expect("control JSON")
    }

    /// Creates an invite in the simulator; its code.
    async fn create_invite(&self, guild_id: &str, spec: Value) -> String {
        self.control(&format!("/guilds/{guild_id}/invites"), spec)
            .await["code"]
            .as_str()
            .expect("code")
            .to_owned()
    }

    /// Creates a key with the real CLI binary, as an operator would.
    fn create_key(&self, guild_id: Option<&str>) -> String {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_invitrack"));
        command
            .args(["keys", "create", "--bot-id", &self.bot_id.to_string()])
            .env("DATABASE_URL", &self.database_url)
            .env("RUST_LOG", "warn");
        if let Some(guild) = guild_id {
            command.args(["--guild-id", guild]);
        }
        let output = command.output().expect("invitrack keys create runs");
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout)
            .expect("utf-8")
            .trim()
            .to_owned()
    }

    async fn get(&self, path: &str, key: Option<&str>) -> (u16, Value) {
        let mut request = self.http.get(format!("{}{path}", self.api));
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        let response = request.send().await.expect("API answers");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }
}

impl Stack {
    /// Stops the services and removes this run's database and streams.
    async fn clean_up(self) {
        self.shutdown.cancel();
        tokio::time::sleep(Duration::from_millis(300)).await;
        if let Ok(nats) = async_nats::connect(invitrack_testkit::nats_url()).await {
            let js = async_nats::jetstream::new(nats);
            invitrack_bus::delete_streams(&js, &self.layout).await;
        }
        // The database goes with `self.database`.
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn joins_travel_from_gateway_to_api() {
    let stack = Stack::start().await;
    let bot = stack.bot_id;

    let guild = stack
        .control(
            "/guilds",
            json!({"name": "e2e", "vanity_code": "e2evanity", "manage_guild": true}),
        )
        .await;
    let guild_id = guild["guild_id"].as_str().expect("guild id").to_owned();
    let alice = "1100000000000000001";
    let bob = "1100000000000000002";
    let alice_code = stack
        .create_invite(&guild_id, json!({"inviter_id": alice}))
        .await;
    let alice_second = stack
        .create_invite(&guild_id, json!({"inviter_id": alice}))
        .await;
    let bob_code = stack
        .create_invite(&guild_id, json!({"inviter_id": bob, "max_uses": 1}))
        .await;

    // Let ingest connect and take the guild's baseline snapshot before anyone joins.
    tokio::time::sleep(Duration::from_secs(2)).await;

    // Sequential joins, far enough apart that each has its own snapshot.
    let mut joined = Vec::new();
    for body in [
        json!({"code": alice_code}),
        json!({"code": alice_code, "account_age_days": 1}),
        json!({"code": alice_second}),
        json!({"code": bob_code}),
        json!({"vanity": true}),
        json!({}),
    ] {
        let truth = stack
            .control(&format!("/guilds/{guild_id}/joins"), body)
            .await;
        joined.push(truth);
        tokio::time::sleep(Duration::from_millis(900)).await;
    }
    let first_member = joined[0]["user_id"].as_str().expect("user id").to_owned();
    stack
        .control(
            &format!("/guilds/{guild_id}/leaves"),
            json!({"user_id": first_member}),
        )
        .await;

    let key = stack.create_key(None);
    let user = |inviter: &str| {
        format!("/v1/invites/user?bot_id={bot}&guild_id={guild_id}&inviter_id={inviter}")
    };

    // Alice: three joins through two codes, one of them a one-day-old account (fake: YOUNG),
    // one member left. Bob: one join through a one-use invite that vanished at its last use.
    let expected_alice = json!({"total": 3, "leaves": 1, "fake": 1, "bonus": 0, "real": 1});
    let expected_bob = json!({"total": 1, "leaves": 0, "fake": 0, "bonus": 0, "real": 1});
    let deadline = Instant::now() + Duration::from_secs(45);
    loop {
        let (_, a) = stack.get(&user(alice), Some(&key)).await;
        let (_, b) = stack.get(&user(bob), Some(&key)).await;
        if a == expected_alice && b == expected_bob {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "counts never converged: alice {a}, bob {b}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }

    // The code endpoint lists exactly the members that really joined through the code.
    let (status, rows) = stack
        .get(
            &format!("/v1/invites/code?bot_id={bot}&guild_id={guild_id}&invite_code={alice_code}"),
            Some(&key),
        )
        .await;
    assert_eq!(status, 200);
    let rows = rows.as_array().expect("array");
    let members: Vec<&str> = rows
        .iter()
        .map(|r| r["member_id"].as_str().expect("member"))
        .collect();
    let truth: Vec<&str> = joined[..2]
        .iter()
        .map(|j| j["user_id"].as_str().expect("user"))
        .collect();
    assert_eq!(members, truth);
    assert_eq!(rows[0]["left"], json!(true));
    assert_eq!(rows[0]["fake"], json!(false));
    assert_eq!(rows[1]["left"], json!(false));
    assert_eq!(rows[1]["fake"], json!(true));
    assert_eq!(rows[0]["cleared"], json!(false));
    let keys: Vec<&String> = rows[0].as_object().expect("object").keys().collect();
    assert_eq!(
        keys,
        [
            "cleared",
            "created_at",
            "fake",
            "left",
            "member_id",
            "updated_at"
        ]
    );
    let created_at = rows[0]["created_at"].as_str().expect("timestamp");
    assert!(
        created_at.ends_with('Z') && created_at.len() == 24,
        "InviteLogger timestamp shape: {created_at}"
    );

    // Parameters as a GET body, as InviteLogger documents them.
    let response = stack
        .http
        .get(format!("{}/v1/invites/user", stack.api))
        .bearer_auth(&key)
        .json(&json!({"bot_id": bot.to_string(), "guild_id": guild_id, "inviter_id": alice}))
        .send()
        .await
        .expect("API answers");
    assert_eq!(
        response.json::<Value>().await.expect("json"),
        expected_alice
    );

    // Every join is in the database, attributed as the ground truth says.
    let truth: Value = stack
        .http
        .get(format!("{}/truth", stack.sim.control_url()))
        .send()
        .await
        .expect("truth")
        .json()
        .await
        .expect("json");
    assert_eq!(truth.as_array().expect("array").len(), 6);
    let mut conn = invitrack_storage::connect(&stack.database_url)
        .await
        .expect("db");
    let inviter_total = invitrack_storage::counts::recount_from_joins(
        &mut conn,
        GuildKey::new(BotId::new(bot), GuildId::parse(&guild_id).expect("id")),
        UserId::parse(alice).expect("id"),
    )
    .await
    .expect("recount");
    assert_eq!(
        (
            inviter_total.joins,
            inviter_total.fake,
            inviter_total.leaves
        ),
        (3, 1, 1)
    );

    // Errors: no key, another guild's key, malformed ids.
    let (status, body) = stack.get(&user(alice), None).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("unauthorized"))
    );
    let (status, _) = stack.get(&user(alice), Some("itk_not_a_key")).await;
    assert_eq!(status, 401);
    let other_guild_key = stack.create_key(Some("42"));
    let (status, body) = stack.get(&user(alice), Some(&other_guild_key)).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("forbidden"))
    );
    let (status, body) = stack
        .get(
            &format!("/v1/invites/user?bot_id=1&guild_id={guild_id}&inviter_id={alice}"),
            Some(&key),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("forbidden"))
    );
    let (status, body) = stack
        .get(
            &format!("/v1/invites/user?bot_id={bot}&guild_id=abc&inviter_id={alice}"),
            Some(&key),
        )
        .await;
    assert_eq!(status, 400);
    assert!(
        body["error"]["message"]
            .as_str()
            .expect("message")
            .contains("guild_id")
    );
    let (status, body) = stack
        .get(
            &format!("/v1/invites/code?bot_id={bot}&guild_id={guild_id}"),
            Some(&key),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("missing_parameter"))
    );

    drop(conn);
    stack.clean_up().await;
}

/// `GET url`: the status and the body.
async fn fetch(http: &reqwest::Client, url: &str) -> (u16, String) {
    match http.get(url).send().await {
        Ok(response) => (
            response.status().as_u16(),
            response.text().await.unwrap_or_default(),
        ),
        Err(error) => (0, error.to_string()),
    }
}

/// The metric families (`# TYPE` lines) of a Prometheus text exposition.
/// The value of one sample (name and labels) on a service's `/metrics`; 0 when absent.
async fn sample(stack: &Stack, ops: SocketAddr, sample: &str) -> f64 {
    let (_, exposition) = fetch(&stack.http, &format!("http://{ops}/metrics")).await;
    exposition
        .lines()
        .find_map(|l| l.strip_prefix(sample)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0)
}

fn families(exposition: &str) -> std::collections::BTreeSet<String> {
    exposition
        .lines()
        .filter_map(|line| line.strip_prefix("# TYPE "))
        .filter_map(|rest| rest.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

/// The metric names `docs/metrics.md` lists for `service`.
fn documented(service: &str) -> std::collections::BTreeSet<String> {
    let doc = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/metrics.md"
    ))
    .expect("docs/metrics.md");
    doc.lines()
        .filter_map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            // | `name{labels}` | service | type | meaning |
            let name = cells.get(1)?.strip_prefix("`invitrack_")?;
            (cells.get(2) == Some(&service)).then(|| {
                let name = name.trim_end_matches('`');
                let name = name.split('{').next().unwrap_or(name);
                format!("invitrack_{name}")
            })
        })
        .collect()
}

/// Runs `invitrack healthcheck url`: whether it passed, and what it printed on stderr.
fn healthcheck(url: &str) -> (bool, String) {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_invitrack"))
        .args(["healthcheck", url, "--timeout-secs", "5"])
        .env("RUST_LOG", "warn")
        .output()
        .expect("invitrack healthcheck runs");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_service_serves_the_documented_metrics_and_its_health() {
    let stack = Stack::start().await;
    let bot_ops = SocketAddr::from(([127, 0, 0, 1], invitrack_testkit::free_port()));
    let mut bot = invitrack_bot::BotConfig::new(
        SimConfig::default().bot_token,
        stack.database_url.clone(),
        stack.bus.clone(),
    );
    bot.discord_api_proxy = Some(stack.sim.api_proxy());
    bot.metrics_bind = Some(bot_ops);
    bot.db_connections = 2;
    bot.webhooks.enabled = true;
    tokio::spawn(invitrack_bot::run(bot, stack.shutdown.clone()));

    // Traffic, so that every family has a sample: a guild, an invite, joins decided.
    let guild = stack
        .control("/guilds", json!({"name": "ops", "manage_guild": true}))
        .await;
    let guild_id = guild["guild_id"].as_str().expect("guild id").to_owned();
    let code = stack
        .create_invite(&guild_id, json!({"inviter_id": "1100000000000000001"}))
        .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    for _ in 0..2 {
        stack
            .control(&format!("/guilds/{guild_id}/joins"), json!({"code": code}))
            .await;
        tokio::time::sleep(Duration::from_millis(900)).await;
    }
    let key = stack.create_key(None);
    let bot_id = stack.bot_id;
    let user = format!(
        "/v1/invites/user?bot_id={bot_id}&guild_id={guild_id}&inviter_id=1100000000000000001"
    );
    let deadline = Instant::now() + Duration::from_secs(45);
    loop {
        let (_, counts) = stack.get(&user, Some(&key)).await;
        if counts["total"] == json!(2) {
            break;
        }
        assert!(Instant::now() < deadline, "joins never counted: {counts}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    stack.get(&user, Some(&key)).await; // a cached answer
    stack.get(&user, Some("invalid")).await; // a refused key

    let services = [
        ("ingest", format!("http://{}", stack.ingest_ops)),
        ("worker", format!("http://{}", stack.worker_ops)),
        ("bot", format!("http://{bot_ops}")),
        ("api", stack.api.clone()),
    ];
    for (service, base) in &services {
        // Ready once connected (the bot's shards are ingest's; its readiness is NATS and
        // PostgreSQL).
        let ready = format!("{base}/health/ready");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let (status, body) = fetch(&stack.http, &ready).await;
            if status == 200 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{service} never ready: {status} {body}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let (status, _) = fetch(&stack.http, &format!("{base}/health/live")).await;
        assert_eq!(status, 200, "{service} live");
        let (passed, said) = healthcheck(&ready);
        assert!(passed, "invitrack healthcheck {ready}: {said}");

        // The families the service serves are exactly those the documentation lists for it.
        let expected = documented(service);
        assert!(
            !expected.is_empty(),
            "docs/metrics.md lists nothing for {service}"
        );
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let (status, exposition) = fetch(&stack.http, &format!("{base}/metrics")).await;
            assert_eq!(status, 200, "{service} /metrics");
            let served = families(&exposition);
            if served == expected {
                break;
            }
            // Label-only families (the bot's waiting decisions, the API's requests) show once
            // they have a sample: wait a little for those, never for a name out of place.
            let undocumented: Vec<_> = served.difference(&expected).collect();
            assert!(
                undocumented.is_empty(),
                "{service} serves metrics docs/metrics.md does not list: {undocumented:?}"
            );
            assert!(
                Instant::now() < deadline,
                "{service} never served {:?}",
                expected.difference(&served).collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    // The worker counted the decisions by source; ingest read the guild once.
    let (_, worker) = fetch(&stack.http, &format!("http://{}/metrics", stack.worker_ops)).await;
    assert!(
        worker.contains("invitrack_worker_decisions_total{source=\"invite\"} 2"),
        "{worker}"
    );
    let (_, ingest) = fetch(&stack.http, &format!("http://{}/metrics", stack.ingest_ops)).await;
    assert!(
        ingest.contains("invitrack_ingest_guilds_read 1"),
        "{ingest}"
    );

    // The Grafana dashboard asks only for documented metrics.
    let dashboard = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../deploy/grafana/dashboards/invitrack.json"
    ))
    .expect("the dashboard");
    let all_documented: std::collections::BTreeSet<String> = ["ingest", "worker", "bot", "api"]
        .into_iter()
        .flat_map(documented)
        .collect();
    let mut asked = 0;
    for (start, _) in dashboard.match_indices("invitrack_") {
        let name: String = dashboard[start..]
            .chars()
            .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')
            .collect();
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|suffix| name.strip_suffix(suffix))
            .filter(|base| all_documented.contains(*base))
            .unwrap_or(&name);
        assert!(
            all_documented.contains(family),
            "the dashboard asks for {name}, which no service serves"
        );
        asked += 1;
    }
    assert!(asked > 20, "the dashboard's queries were not found");

    // A service that does not answer fails the check, saying why.
    let closed = format!(
        "http://127.0.0.1:{}/health/ready",
        invitrack_testkit::free_port()
    );
    let (passed, said) = healthcheck(&closed);
    assert!(!passed);
    assert!(said.contains("is not healthy"), "{said}");
    stack.clean_up().await;
}

/// `(member, source, code, decided_by, disagrees)` of a guild's joins that Discord reported on.
type ReportedRow = (
    UserId,
    invitrack_model::JoinSource,
    Option<String>,
    String,
    bool,
);

async fn reported_joins(stack: &Stack, guild: GuildKey) -> Vec<ReportedRow> {
    use diesel::{ExpressionMethods as _, QueryDsl as _};
    use diesel_async::RunQueryDsl as _;
    use invitrack_storage::schema::{join_evidence, joins};
    let mut conn = invitrack_storage::connect(&stack.database_url)
        .await
        .expect("db");
    joins::table
        .inner_join(join_evidence::table)
        .filter(joins::bot_id.eq(guild.bot_id))
        .filter(joins::guild_id.eq(guild.guild_id))
        .select((
            joins::member_id,
            joins::source,
            joins::invite_code,
            join_evidence::decided_by,
            join_evidence::disagrees,
        ))
        .order(joins::created_at.asc())
        .load(&mut conn)
        .await
        .expect("reported joins")
}

/// Joins the counters cannot tell apart are credited as Discord's member search reports them,
/// a join the counters settled is confirmed, and a guild that refuses the search says so in
/// its health (ATTRIBUTION_DISCORD_JOIN_SOURCE, `docs/attribution.md#discords-reported-source`).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn discords_reported_source_settles_what_the_counters_cannot() {
    let stack = Stack::start_with(Tuning {
        members_search: invitrack_ingest::MembersSearchConfig {
            enabled: true,
            delay_ms: 1_500,
            per_second: 20.0,
            attempts: 6,
            // Every join the counters settled is checked too.
            sample: 1.0,
        },
        // Searchable 1 s after joining; the first search in a guild meets the index being built.
        sim_members_search: Some(invitrack_sim::MembersSearchOptions {
            index_ms: 500,
            lag_ms: 1_000,
            retry_after_secs: 1.0,
        }),
        // One read counts the joins made within this long of each other.
        settle_ms: Some(1_000),
    })
    .await;
    let bot = BotId::new(stack.bot_id);
    let guild_id = stack
        .control("/guilds", json!({"name": "search", "manage_guild": true}))
        .await["guild_id"]
        .as_str()
        .expect("guild id")
        .to_owned();
    let refusing_id = stack
        .control(
            "/guilds",
            json!({"name": "no manage", "manage_guild": false}),
        )
        .await["guild_id"]
        .as_str()
        .expect("guild id")
        .to_owned();
    let alice = "1100000000000000001";
    let bob = "1100000000000000002";
    let alice_code = stack
        .create_invite(&guild_id, json!({"inviter_id": alice}))
        .await;
    let bob_code = stack
        .create_invite(&guild_id, json!({"inviter_id": bob}))
        .await;
    let refusing_code = stack
        .create_invite(&refusing_id, json!({"inviter_id": alice}))
        .await;
    tokio::time::sleep(Duration::from_secs(2)).await;

    // Five joins at once through two inviters' codes: one read counts them all.
    let bulk = |code: String, count: u32| {
        let path = format!("/guilds/{guild_id}/joins/bulk");
        let stack = &stack;
        async move {
            stack
                .control(&path, json!({"code": code, "count": count}))
                .await
        }
    };
    let (a, b) = tokio::join!(bulk(alice_code.clone(), 3), bulk(bob_code.clone(), 2));
    let mut truth: Vec<(String, String)> = Vec::new();
    for (joins, code) in [(a, &alice_code), (b, &bob_code)] {
        for join in joins.as_array().expect("joins") {
            truth.push((
                join["user_id"].as_str().expect("id").to_owned(),
                code.clone(),
            ));
        }
    }
    // A join alone in its read: the counters settle it, the search confirms it.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let lone = stack
        .control(
            &format!("/guilds/{guild_id}/joins"),
            json!({"code": alice_code}),
        )
        .await;
    truth.push((
        lone["user_id"].as_str().expect("id").to_owned(),
        alice_code.clone(),
    ));
    stack
        .control(
            &format!("/guilds/{refusing_id}/joins"),
            json!({"code": refusing_code}),
        )
        .await;

    let guild = GuildKey::new(bot, GuildId::parse(&guild_id).expect("id"));
    let deadline = Instant::now() + Duration::from_secs(60);
    let rows = loop {
        let rows = reported_joins(&stack, guild).await;
        if rows.len() == truth.len() {
            break rows;
        }
        assert!(
            Instant::now() < deadline,
            "Discord's reports never reached every join: {rows:?}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    for (member, code) in &truth {
        let row = rows
            .iter()
            .find(|r| r.0.to_string() == *member)
            .expect("a reported join per member");
        assert_eq!(
            (row.1, row.2.as_deref(), row.4),
            (
                invitrack_model::JoinSource::Invite,
                Some(code.as_str()),
                false
            ),
            "member {member}"
        );
    }
    let decided_by: Vec<&str> = rows.iter().map(|r| r.3.as_str()).collect();
    assert_eq!(
        decided_by.iter().filter(|d| **d == "discord").count(),
        5,
        "{decided_by:?}"
    );
    assert_eq!(
        decided_by.last(),
        Some(&"counters"),
        "the lone join was the counters'"
    );

    // The credits moved the inviters' counters as a recount from the rows says.
    let key = stack.create_key(None);
    for (inviter, total) in [(alice, 4), (bob, 2)] {
        let (_, counts) = stack
            .get(
                &format!("/v1/invites/user?bot_id={bot}&guild_id={guild_id}&inviter_id={inviter}"),
                Some(&key),
            )
            .await;
        assert_eq!(counts["total"], json!(total), "{inviter}: {counts}");
    }

    // The dashboard's feed says which evidence decided each join, and what Discord said.
    let (_, page) = stack
        .get(
            &format!("/v1/bots/{bot}/guilds/{guild_id}/joins"),
            Some(&key),
        )
        .await;
    let entries = page["joins"].as_array().expect("joins");
    assert_eq!(entries.len(), 6, "{page}");
    for entry in entries {
        assert_eq!(
            entry["discord_report"]["invite_code"], entry["invite_code"],
            "{entry}"
        );
        assert_eq!(
            entry["discord_report"]["source"],
            json!("invite"),
            "{entry}"
        );
        assert_eq!(
            entry["discord_report"]["disagrees"],
            json!(false),
            "{entry}"
        );
    }
    let by_discord = entries
        .iter()
        .filter(|e| e["decided_by"] == json!("discord"))
        .count();
    assert_eq!(by_discord, 5, "{page}");

    // The guild without Manage Server refused; its health says so.
    let (status, summary) = stack
        .get(
            &format!("/v1/bots/{bot}/guilds/{refusing_id}/summary"),
            Some(&key),
        )
        .await;
    assert_eq!(status, 200, "{summary}");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, summary) = stack
            .get(
                &format!("/v1/bots/{bot}/guilds/{refusing_id}/summary"),
                Some(&key),
            )
            .await;
        if summary["health"]["discord_join_source"]["refused_status"] == json!(403) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no refusal in the health: {summary}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let (_, summary) = stack
        .get(
            &format!("/v1/bots/{bot}/guilds/{guild_id}/summary"),
            Some(&key),
        )
        .await;
    assert_eq!(
        summary["health"]["discord_join_source"],
        json!({"reports": 6, "credited": 5, "confirmed": 1, "disagreements": 0,
               "refused_status": null, "refused_detail": null, "refused_at": null}),
        "{summary}"
    );

    for line in [
        "invitrack_ingest_members_searches_total{answer=\"indexing\"}",
        "invitrack_ingest_members_searches_total{answer=\"refused\"}",
    ] {
        let value = sample(&stack, stack.ingest_ops, line).await;
        assert!(value >= 1.0, "{line} is {value}");
    }
    stack.clean_up().await;
}

/// A stored join as the test reads it back: member, source, code, inviter, candidates,
/// why it is unknown.
type StoredJoin = (
    i64,
    invitrack_model::JoinSource,
    Option<String>,
    Option<i64>,
    Vec<String>,
    Option<String>,
);

async fn stored_joins(stack: &Stack, guild_id: &str) -> Vec<StoredJoin> {
    use diesel::{ExpressionMethods as _, QueryDsl as _};
    use diesel_async::RunQueryDsl as _;
    use invitrack_storage::schema::joins;
    let guild_id: i64 = guild_id.parse().expect("guild id");
    let mut conn = invitrack_storage::connect(&stack.database_url)
        .await
        .expect("db");
    joins::table
        .filter(joins::guild_id.eq(guild_id))
        .select((
            joins::member_id,
            joins::source,
            joins::invite_code,
            joins::inviter_id,
            joins::candidates,
            joins::unknown_reason,
        ))
        .order(joins::created_at.asc())
        .load(&mut conn)
        .await
        .expect("stored joins")
}

/// Waits until `guild_id` has `count` stored joins.
async fn wait_for_joins(stack: &Stack, guild_id: &str, count: usize) -> Vec<StoredJoin> {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let rows = stored_joins(stack, guild_id).await;
        if rows.len() >= count {
            return rows;
        }
        assert!(
            Instant::now() < deadline,
            "guild {guild_id}: {} of {count} joins stored: {rows:?}",
            rows.len()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// Members who join while ingest is stopped are found in the gateway's member list once it is
/// back (the first read after the gap shows uses no join explains), recorded, and credited
/// only where the counters force it (`docs/attribution.md#joins-made-while-away`).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn joins_made_while_ingest_was_away_are_found_and_credited_only_where_forced() {
    let stack = Stack::start().await;
    let bot = BotId::new(stack.bot_id);
    let (alice, bob, carol) = (
        "1100000000000000001",
        "1100000000000000002",
        "1100000000000000003",
    );
    let guild = |name: &'static str| {
        let stack = &stack;
        async move {
            stack
                .control("/guilds", json!({"name": name, "manage_guild": true}))
                .await["guild_id"]
                .as_str()
                .expect("guild id")
                .to_owned()
        }
    };
    let one_code = guild("one code moved").await;
    let one_owner = guild("codes of one owner").await;
    let two_owners = guild("codes of two owners").await;
    let invite = |guild: &str, inviter: &str| {
        let stack = &stack;
        let (guild, inviter) = (guild.to_owned(), inviter.to_owned());
        async move {
            stack
                .create_invite(&guild, json!({"inviter_id": inviter}))
                .await
        }
    };
    let a = invite(&one_code, alice).await;
    let (b1, b2) = (invite(&one_owner, bob).await, invite(&one_owner, bob).await);
    let (c, d) = (
        invite(&two_owners, alice).await,
        invite(&two_owners, carol).await,
    );
    let join = |guild: &str, code: &str| {
        let stack = &stack;
        let (path, code) = (format!("/guilds/{guild}/joins"), code.to_owned());
        async move {
            stack.control(&path, json!({"code": code})).await["user_id"]
                .as_str()
                .expect("user id")
                .parse::<i64>()
                .expect("numeric id")
        }
    };
    // Every guild read and tracked: a live join in each is decided.
    tokio::time::sleep(Duration::from_secs(2)).await;
    join(&one_code, &a).await;
    join(&one_owner, &b1).await;
    join(&two_owners, &c).await;
    for guild in [&one_code, &one_owner, &two_owners] {
        wait_for_joins(&stack, guild, 1).await;
    }

    stack.stop_ingest().await;
    let away = [
        join(&one_code, &a).await,
        join(&one_code, &a).await,
        join(&one_owner, &b1).await,
        join(&one_owner, &b2).await,
        join(&two_owners, &c).await,
        join(&two_owners, &d).await,
    ];
    tokio::time::sleep(Duration::from_secs(1)).await;
    stack.restart_ingest();

    let late = |rows: Vec<StoredJoin>| -> Vec<StoredJoin> {
        rows.into_iter().filter(|r| away.contains(&r.0)).collect()
    };
    // `a` moved by exactly the two joins found: both are its.
    let rows = late(wait_for_joins(&stack, &one_code, 3).await);
    assert_eq!(rows.len(), 2, "{rows:?}");
    for row in &rows {
        assert_eq!(
            (row.1, row.2.as_deref(), row.3),
            (
                invitrack_model::JoinSource::Invite,
                Some(a.as_str()),
                Some(alice.parse().expect("id"))
            ),
            "{row:?}"
        );
    }
    // Two codes of one owner moved once each: which is whose is unknown, the inviter is not.
    let rows = late(wait_for_joins(&stack, &one_owner, 3).await);
    assert_eq!(rows.len(), 2, "{rows:?}");
    let mut both = vec![b1.clone(), b2.clone()];
    both.sort();
    for row in &rows {
        assert_eq!(
            (row.1, row.2.as_deref(), row.3, &row.4),
            (
                invitrack_model::JoinSource::Ambiguous,
                None,
                Some(bob.parse().expect("id")),
                &both
            ),
            "{row:?}"
        );
    }
    // Two owners' codes moved once each: nobody is credited.
    let rows = late(wait_for_joins(&stack, &two_owners, 3).await);
    assert_eq!(rows.len(), 2, "{rows:?}");
    for row in &rows {
        assert_eq!(
            (row.1, row.2.as_deref(), row.3),
            (invitrack_model::JoinSource::Ambiguous, None, None),
            "{row:?}"
        );
    }

    // The inviters' totals count what was credited.
    let key = stack.create_key(None);
    for (guild, inviter, total) in [
        (&one_code, alice, 3),
        (&one_owner, bob, 3),
        (&two_owners, alice, 1),
        (&two_owners, carol, 0),
    ] {
        let (_, counts) = stack
            .get(
                &format!("/v1/invites/user?bot_id={bot}&guild_id={guild}&inviter_id={inviter}"),
                Some(&key),
            )
            .await;
        assert_eq!(counts["total"], json!(total), "{guild} {inviter}: {counts}");
    }

    // Tracking goes on live after the gap.
    let after = join(&one_code, &a).await;
    let rows = wait_for_joins(&stack, &one_code, 4).await;
    let row = rows.iter().find(|r| r.0 == after).expect("the live join");
    assert_eq!(row.2.as_deref(), Some(a.as_str()), "{row:?}");

    let found = sample(
        &stack,
        stack.worker_ops,
        "invitrack_worker_joins_found_late_total",
    )
    .await;
    assert_eq!(found, 6.0);
    stack.clean_up().await;
}
