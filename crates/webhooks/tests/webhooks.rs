//! The webhook sender end to end with real NATS, PostgreSQL and HTTP receivers on loopback:
//! decisions are published on the decision stream as the worker's relay publishes them, and
//! the receivers check what reaches them as a user's server would.

use std::collections::BTreeMap;
use std::time::Duration;

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use invitrack_bus::{BusConfig, Decision, DecisionKind, proto};
use invitrack_model::{BotId, GuildId, GuildKey};
use invitrack_storage::admin::Actor;
use invitrack_storage::schema::webhook_deliveries;
use invitrack_storage::webhooks::{self, Created};
use invitrack_testkit::{Answer, Receiver, TestDatabase, eventually};
use invitrack_webhooks::{WebhookConfig, WebhookOptions, signature};
use prost::Message as _;
use tokio_util::sync::CancellationToken;

const BOT: u64 = 859_000_000_000_000_001;
const GUILD: u64 = 417_977_361_011_572_747;
const OTHER_GUILD: u64 = 417_977_361_011_572_999;

/// A receiver answering by how many earlier requests carried the same delivery id.
async fn receiver(answer: Answer) -> Receiver {
    Receiver::start("invitrack-delivery", answer).await
}

struct Setup {
    database: TestDatabase,
    bus: BusConfig,
    shutdown: CancellationToken,
}

impl Setup {
    async fn start(name: &str, options: WebhookOptions) -> Self {
        let _ = tracing_subscriber::fmt()
            .with_env_filter("warn,invitrack_webhooks=info")
            .with_test_writer()
            .try_init();
        let database = TestDatabase::new(&format!("invitrack_{name}"));
        invitrack_storage::prepare_database(&database.url())
            .await
            .expect("database");
        let bus = BusConfig {
            nats_url: invitrack_testkit::nats_url(),
            bus_prefix: invitrack_testkit::unique(name),
            bus_partitions: 2,
            bus_max_age_hours: 1,
            ..BusConfig::default()
        };
        let shutdown = CancellationToken::new();
        tokio::spawn(invitrack_webhooks::run(
            WebhookConfig {
                database_url: database.url(),
                bus: bus.clone(),
                options,
                registry: None,
            },
            shutdown.clone(),
        ));
        let setup = Self {
            database,
            bus,
            shutdown,
        };
        // The queue's consumers exist before anything is published (they take new decisions).
        let bus = setup.bus.connect().await.expect("bus");
        eventually(Duration::from_secs(20), "the webhook consumers", || {
            let bus = bus.clone();
            async move {
                let mut stream = bus
                    .jetstream
                    .get_stream(bus.layout.decision_stream())
                    .await
                    .ok()?;
                let info = stream.info().await.ok()?;
                (info.state.consumer_count == 2).then_some(())
            }
        })
        .await;
        setup
    }

    async fn conn(&self) -> diesel_async::AsyncPgConnection {
        invitrack_storage::connect(&self.database.url())
            .await
            .expect("database")
    }

    async fn register(&self, guild: u64, url: &str, events: &[&str]) -> i64 {
        let created = webhooks::create(
            &mut self.conn().await,
            key(guild),
            url,
            events,
            "whsec_test_secret",
            &Actor {
                key_id: 1,
                key_label: "test",
                author: "tests",
            },
        )
        .await
        .expect("created");
        match created {
            Created::Created(webhook) => webhook.id,
            Created::TooMany => panic!("too many webhooks"),
        }
    }

    /// Publishes `decision` on the decision stream as the worker's relay does.
    async fn publish(&self, decision: &Decision, message_id: &str) {
        let bus = self.bus.connect().await.expect("bus");
        let guild = key(decision.guild_id);
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Msg-Id", message_id);
        bus.jetstream
            .publish_with_headers(
                bus.layout.decision_subject(guild),
                headers,
                decision.encode_to_vec().into(),
            )
            .await
            .expect("published")
            .await
            .expect("stored");
    }
}

impl Drop for Setup {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

fn key(guild: u64) -> GuildKey {
    GuildKey::new(BotId::new(BOT), GuildId::new(guild))
}

fn join(id: i64, guild: u64, member: u64) -> Decision {
    Decision {
        id,
        bot_id: BOT,
        guild_id: guild,
        member_id: member,
        decided_at_ms: 1_700_000_002_000,
        kind: Some(DecisionKind::Join(proto::JoinDecided {
            joined_at_ms: 1_700_000_000_000,
            source: "invite".into(),
            code: "abcDEF".into(),
            inviter_id: 777,
            inviter_counts: Some(proto::InviterCounts {
                total: 1,
                real: 1,
                ..Default::default()
            }),
            ..Default::default()
        })),
    }
}

fn leave(id: i64, member: u64) -> Decision {
    Decision {
        id,
        bot_id: BOT,
        guild_id: GUILD,
        member_id: member,
        decided_at_ms: 1_700_000_020_000,
        kind: Some(DecisionKind::Leave(proto::MemberLeft {
            left_at_ms: 1_700_000_019_000,
            joined_at_ms: 1_700_000_000_000,
            inviter_id: 777,
            inviter_counts: None,
        })),
    }
}

fn fast_retries() -> WebhookOptions {
    WebhookOptions {
        allow_private_networks: true,
        first_retry_ms: 100,
        timeout_secs: 5,
        ..WebhookOptions::default()
    }
}

/// (status, attempts, last_status) of each delivery of `webhook`, by decision id.
async fn deliveries(setup: &Setup, webhook: i64) -> BTreeMap<i64, (String, i32, Option<i32>)> {
    webhook_deliveries::table
        .filter(webhook_deliveries::webhook_id.eq(webhook))
        .select((
            webhook_deliveries::decision_id,
            webhook_deliveries::status,
            webhook_deliveries::attempts,
            webhook_deliveries::last_status,
        ))
        .load::<(i64, String, i32, Option<i32>)>(&mut setup.conn().await)
        .await
        .expect("deliveries")
        .into_iter()
        .map(|(id, status, attempts, last)| (id, (status, attempts, last)))
        .collect()
}

#[tokio::test]
async fn events_arrive_signed_once_each_and_failures_are_retried_then_given_up() {
    let setup = Setup::start("webhooks_delivery", fast_retries()).await;
    let ok = receiver(|_| 200).await;
    let flaky = receiver(|earlier| if earlier < 2 { 500 } else { 204 }).await;
    let down = receiver(|_| 503).await;
    let ok_id = setup
        .register(GUILD, &ok.url("/hook"), &["member.join", "member.leave"])
        .await;
    let flaky_id = setup
        .register(GUILD, &flaky.url("/hook"), &["member.join"])
        .await;
    let down_id = setup
        .register(GUILD, &down.url("/hook"), &["member.join"])
        .await;
    // Another guild's webhook gets nothing of this guild.
    let other = receiver(|_| 200).await;
    setup
        .register(OTHER_GUILD, &other.url("/hook"), &["member.join"])
        .await;

    setup.publish(&join(11, GUILD, 5_001), "decision:11").await;
    setup.publish(&leave(12, 5_001), "decision:12").await;
    // The same decision again, past the stream's duplicate window: queued once all the same.
    setup
        .publish(&join(11, GUILD, 5_001), "decision:11:late")
        .await;

    eventually(
        Duration::from_secs(30),
        "the flaky receiver's third try",
        || {
            let flaky = flaky.received();
            async move { (flaky.len() >= 3).then_some(()) }
        },
    )
    .await;
    eventually(
        Duration::from_secs(10),
        "the ok receiver's two events",
        || {
            let ok = ok.received();
            async move { (ok.len() >= 2).then_some(()) }
        },
    )
    .await;
    // Nothing more comes: one request per event for a receiver that answers 2xx.
    tokio::time::sleep(Duration::from_millis(1_500)).await;

    let got = ok.received();
    assert_eq!(got.len(), 2, "{got:?}");
    let now = chrono::Utc::now().timestamp();
    for received in &got {
        signature::verify(
            "whsec_test_secret",
            received.header("invitrack-signature"),
            &received.body,
            now,
            300,
        )
        .expect("a valid signature");
        assert!(
            signature::verify(
                "another secret",
                received.header("invitrack-signature"),
                &received.body,
                now,
                300
            )
            .is_err()
        );
        assert_eq!(received.header("invitrack-attempt"), "1");
    }
    let bodies: Vec<serde_json::Value> = got
        .iter()
        .map(|r| serde_json::from_slice(&r.body).expect("JSON"))
        .collect();
    let join_body = bodies
        .iter()
        .find(|b| b["type"] == "member.join")
        .expect("the join");
    assert_eq!(join_body["id"], "11");
    assert_eq!(join_body["guild_id"], GUILD.to_string());
    assert_eq!(join_body["member"]["id"], "5001");
    assert_eq!(join_body["code"], "abcDEF");
    assert_eq!(join_body["inviter_id"], "777");
    assert_eq!(join_body["inviter_counts"]["total"], 1);
    let leave_body = bodies
        .iter()
        .find(|b| b["type"] == "member.leave")
        .expect("the leave");
    assert_eq!(leave_body["member"]["left_at"], "2023-11-14T22:13:39Z");
    let headers: Vec<(&str, &str)> = got
        .iter()
        .map(|r| (r.header("invitrack-delivery"), r.header("invitrack-event")))
        .collect();
    assert!(headers.contains(&("11", "member.join")), "{headers:?}");
    assert!(headers.contains(&("12", "member.leave")), "{headers:?}");

    // The flaky receiver: 500, 500, then 204; one delivery, three attempts.
    let flaky_got = flaky.received();
    assert_eq!(flaky_got.len(), 3, "{flaky_got:?}");
    assert!(
        flaky_got
            .iter()
            .all(|r| r.header("invitrack-delivery") == "11")
    );
    assert_eq!(
        flaky_got
            .iter()
            .map(|r| r.header("invitrack-attempt"))
            .collect::<Vec<_>>(),
        ["1", "2", "3"]
    );
    assert_eq!(
        deliveries(&setup, flaky_id).await,
        BTreeMap::from([(11, ("delivered".to_owned(), 3, Some(204)))])
    );
    assert_eq!(
        deliveries(&setup, ok_id).await.len(),
        2,
        "one delivery per event"
    );
    assert!(other.received().is_empty());

    // The receiver that is down: tried again and again; once the event is a day old, the next
    // failure gives up, and the delivery shows as failed with the last answer.
    let before = down.received().len();
    assert!(before >= 2, "retried: {before}");
    diesel::update(webhook_deliveries::table.filter(webhook_deliveries::webhook_id.eq(down_id)))
        .set(webhook_deliveries::created_at.eq(chrono::Utc::now() - chrono::TimeDelta::hours(25)))
        .execute(&mut setup.conn().await)
        .await
        .expect("aged");
    let failed = eventually(Duration::from_secs(30), "the failed delivery", || {
        let setup = &setup;
        async move {
            let rows = webhooks::deliveries(
                &mut setup.conn().await,
                key(GUILD),
                down_id,
                Some("failed"),
                None,
                10,
            )
            .await
            .expect("deliveries");
            (!rows.is_empty()).then_some(rows)
        }
    })
    .await;
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].last_status, Some(503));
    assert_eq!(failed[0].last_error.as_deref(), Some("answered HTTP 503"));
    let tries = down.received().len();
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    assert_eq!(down.received().len(), tries, "nothing after giving up");
}

#[tokio::test]
async fn private_addresses_are_refused_by_default() {
    let setup = Setup::start(
        "webhooks_private",
        WebhookOptions {
            allow_private_networks: false,
            ..fast_retries()
        },
    )
    .await;
    let receiver = receiver(|_| 200).await;
    // Registered while the deployment allowed private networks, say; the sender refuses them
    // now, by address and by a name that resolves to loopback.
    let by_address = setup
        .register(GUILD, &receiver.url("/hook"), &["member.join"])
        .await;
    let by_name = setup
        .register(
            GUILD,
            &format!("http://localhost:{}/hook", receiver.addr().port()),
            &["member.join"],
        )
        .await;
    setup.publish(&join(21, GUILD, 6_001), "decision:21").await;
    for webhook in [by_address, by_name] {
        let rows = eventually(Duration::from_secs(30), "a refused attempt", || {
            let setup = &setup;
            async move {
                let rows = webhooks::deliveries(
                    &mut setup.conn().await,
                    key(GUILD),
                    webhook,
                    None,
                    None,
                    10,
                )
                .await
                .expect("deliveries");
                <[_]>::first(&rows)
                    .is_some_and(|d| d.last_error.is_some())
                    .then_some(rows)
            }
        })
        .await;
        let error = rows[0].last_error.as_deref().unwrap_or_default();
        assert!(error.contains("private"), "{error}");
        assert_eq!(rows[0].last_status, None);
    }
    assert!(receiver.received().is_empty());
}
