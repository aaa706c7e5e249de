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
    /// Dropped (with FORCE) when the stack is.
    _database: TestDatabase,
    database_url: String,
    bot_id: u64,
    layout: invitrack_bus::BusLayout,
    shutdown: CancellationToken,
    http: reqwest::Client,
}

impl Stack {
    async fn start() -> Self {
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
            ..SimConfig::default()
        })
        .await
        .expect("simulator starts");
        let shutdown = CancellationToken::new();
        let layout = bus.layout().expect("valid layout");
        invitrack_storage::prepare_database(&database_url)
            .await
            .expect("database");
        tokio::spawn(invitrack_worker::run(
            WorkerConfig {
                db_connections: 2,
                batch: 100,
                tick_ms: 100,
                gateway_lag_ms: 1_000,
                max_pending_ms: 60_000,
                ..WorkerConfig::new(database_url.clone(), bus.clone())
            },
            shutdown.clone(),
        ));
        tokio::spawn(invitrack_ingest::run(
            IngestConfig {
                discord_gateway_url: Some(sim.gateway_url()),
                discord_api_proxy: Some(sim.api_proxy()),
                buffer: 10_000,
                ..IngestConfig::new(SimConfig::default().bot_token, bus)
            },
            shutdown.clone(),
        ));
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
        Self {
            sim,
            api: api_url,
            _database: database,
            database_url,
            bot_id: SimConfig::default().bot_user_id,
            layout,
            shutdown,
            http: reqwest::Client::new(),
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
