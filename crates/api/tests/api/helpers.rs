//! `spawn_app()`: a fresh database, the API on port 0, request helpers, and seeding through the
//! worker's own batch effects (`invitrack_worker::effects`), so the API reads data written by
//! the code production runs.

use std::net::SocketAddr;

use chrono::{DateTime, Duration, Utc};
use invitrack_api::{ApiConfig, ApiOptions, Application};
use invitrack_attribution::{Decision, Verdict};
use invitrack_model::{BotId, GuildId, GuildKey, InviteCode, UnknownReason, UserId};
use invitrack_storage::AsyncPgConnection;
use invitrack_storage::invites::SeenInvite;
use invitrack_storage::keys::{self, KeyScope};
use invitrack_testkit::TestDatabase;
use invitrack_worker::effects::BatchEffects;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

pub const BOT: u64 = 859_000_000_000_000_001;
pub const GUILD: u64 = 417_977_361_011_572_747;
pub const OTHER_GUILD: u64 = 417_977_361_011_572_999;

pub struct TestApp {
    pub address: String,
    pub http: reqwest::Client,
    shutdown: CancellationToken,
    pub conn: AsyncPgConnection,
    /// Dropped last (with FORCE), after the API and the connection.
    database: TestDatabase,
}

/// The API without rate limit and without the counts cache: tests write as the worker does
/// (another connection) and read back at once; `tests/api/cache.rs` covers the cache, whose
/// answers follow commits within a small bound instead.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(ApiOptions {
        rate_limit_per_second: 0,
        counts_cache_secs: 0,
        ..ApiOptions::default()
    })
    .await
}

pub async fn spawn_app_with(options: ApiOptions) -> TestApp {
    spawn_app_on(options, 0).await
}

/// [`spawn_app_with`] on a given port (one the test must know before the API starts).
pub async fn spawn_app_on(options: ApiOptions, port: u16) -> TestApp {
    if std::env::var_os("TEST_LOG").is_some() {
        invitrack_telemetry::init();
    }
    let database = TestDatabase::new("invitrack_api_test");
    let database_url = database.url();
    let app = Application::build(&ApiConfig {
        database_url: database_url.clone(),
        bind: SocketAddr::from(([127, 0, 0, 1], port)),
        workers: 1,
        db_connections: 4,
        options,
    })
    .await
    .expect("the API starts");
    let address = format!("http://{}", app.addr());
    let shutdown = CancellationToken::new();
    tokio::spawn(app.run_until_stopped(shutdown.clone()));
    let conn = invitrack_storage::connect(&database_url)
        .await
        .expect("test connection");
    TestApp {
        address,
        http: reqwest::Client::new(),
        shutdown,
        conn,
        database,
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// A timestamp PostgreSQL stores exactly (milliseconds).
pub fn at(minutes_ago: i64) -> DateTime<Utc> {
    let t = Utc::now() - Duration::minutes(minutes_ago);
    DateTime::from_timestamp_millis(t.timestamp_millis()).expect("in range")
}

/// A decided join to seed.
pub struct Join {
    pub guild: u64,
    pub member: u64,
    pub at: DateTime<Utc>,
    pub verdict: Verdict,
    /// Discord's `DID_REJOIN` flag: the member was in the guild before, so the join is fake
    /// (`already_joined`) by the default settings.
    pub flagged_rejoin: bool,
}

pub fn code(code: &str) -> InviteCode {
    InviteCode::parse(code).expect("a valid code")
}

impl Join {
    pub fn invite(member: u64, invite: &str, inviter: u64, minutes_ago: i64) -> Join {
        Join {
            verdict: Verdict::Invite {
                code: code(invite),
                inviter_id: Some(UserId::new(inviter)),
            },
            ..Join::unknown(member, minutes_ago)
        }
    }

    pub fn unknown(member: u64, minutes_ago: i64) -> Join {
        Join {
            guild: GUILD,
            member,
            at: at(minutes_ago),
            verdict: Verdict::Unknown {
                reason: UnknownReason::Untracked,
            },
            flagged_rejoin: false,
        }
    }
}

pub fn guild_key(guild: u64) -> GuildKey {
    GuildKey::new(BotId::new(BOT), GuildId::new(guild))
}

impl TestApp {
    pub async fn key(&mut self, guild: Option<u64>, scope: KeyScope) -> String {
        keys::create_key(
            &mut self.conn,
            BotId::new(BOT),
            guild.map(GuildId::new),
            scope,
            "test",
        )
        .await
        .expect("key")
        .0
    }

    /// Applies what `record` adds to a batch, as the worker does: read, record, write.
    async fn apply(
        &mut self,
        guild: u64,
        member: Option<u64>,
        record: impl FnOnce(&mut BatchEffects, GuildKey),
    ) {
        let guild = guild_key(guild);
        let members: Vec<_> = member
            .map(|m| guild.member(UserId::new(m)))
            .into_iter()
            .collect();
        let mut effects = BatchEffects::read(&mut self.conn, &members, &[guild])
            .await
            .expect("read");
        record(&mut effects, guild);
        effects.finish(&mut self.conn).await.expect("finish");
        effects.write(&mut self.conn).await.expect("write");
    }

    /// A join as the worker applies it: GUILD_MEMBER_ADD, then the engine's decision.
    pub async fn join(&mut self, j: Join) {
        let member = UserId::new(j.member);
        self.apply(j.guild, Some(j.member), |effects, guild| {
            effects.member_joined(guild.member(member), j.at, true, j.flagged_rejoin);
            let decision = Decision {
                user_id: member,
                joined_at: j.at.timestamp_millis(),
                verdict: j.verdict,
            };
            effects.decided(guild, decision).expect("decided");
        })
        .await;
    }

    /// A GUILD_MEMBER_REMOVE as the worker applies it.
    pub async fn leave(&mut self, guild: u64, member: u64) {
        self.apply(guild, Some(member), |effects, guild| {
            effects.member_left(guild.member(UserId::new(member)), at(0));
        })
        .await;
    }

    /// Whether the gateway last showed the member present.
    pub async fn present(&mut self, guild: u64, member: u64) -> bool {
        let key = guild_key(guild).member(UserId::new(member));
        invitrack_storage::members::load_members(&mut self.conn, &[key])
            .await
            .expect("members")
            .get(&key)
            .is_some_and(|m| m.present)
    }

    /// An invite snapshot of `GUILD` as the worker applies it, read a second ago.
    pub async fn snapshot(&mut self, invites: Vec<SeenInvite>) {
        self.apply(GUILD, None, |effects, guild| {
            effects.invite_snapshot(guild, at(0) - Duration::seconds(1), at(0), invites);
        })
        .await;
    }

    pub fn database_url(&self) -> String {
        self.database.url()
    }

    /// The Prometheus text of `GET /metrics`.
    pub async fn metrics(&self) -> String {
        self.http
            .get(self.url("/metrics"))
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .expect("metrics text")
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub fn guild_path(&self, rest: &str) -> String {
        format!("/v1/bots/{BOT}/guilds/{GUILD}{rest}")
    }

    pub async fn get(&self, path: &str, key: Option<&str>) -> (u16, Value) {
        let mut request = self.http.get(self.url(path));
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        let response = request.send().await.expect("request");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        key: Option<&str>,
        body: &Value,
    ) -> (u16, Value) {
        let mut request = self.http.request(method, self.url(path)).json(body);
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        let response = request.send().await.expect("request");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub async fn post(&self, path: &str, key: &str, body: &Value) -> (u16, Value) {
        self.send(reqwest::Method::POST, path, Some(key), body)
            .await
    }

    /// `GET /v1/invites/user` of one inviter as `(total, real, fake, leaves, bonus)`.
    pub async fn counts(&self, key: &str, inviter: u64) -> (i64, i64, i64, i64, i64) {
        let (status, body) = self
            .get(
                &format!("/v1/invites/user?bot_id={BOT}&guild_id={GUILD}&inviter_id={inviter}"),
                Some(key),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        let n = |k: &str| body[k].as_i64().expect("number");
        (n("total"), n("real"), n("fake"), n("leaves"), n("bonus"))
    }

    /// Every maintained counter equals its recount from the join and bonus rows.
    pub async fn assert_counters_match_rows(&mut self) {
        use invitrack_storage::dashboard::{maintained_counts, recount_guild};
        for guild in [GUILD, OTHER_GUILD] {
            let maintained = maintained_counts(&mut self.conn, guild_key(guild))
                .await
                .expect("counts");
            let recounted = recount_guild(&mut self.conn, guild_key(guild))
                .await
                .expect("recount");
            assert_eq!(maintained, recounted, "guild {guild}");
        }
    }
}

pub fn code_of(body: &Value) -> &str {
    // Every error carries its message twice: InviteLogger's clients read the top-level one.
    if body.get("error").is_some() {
        assert!(
            body["message"].is_string(),
            "no top-level message in {body}"
        );
        assert_eq!(body["message"], body["error"]["message"], "in {body}");
    }
    body["error"]["code"].as_str().unwrap_or("<no error code>")
}
