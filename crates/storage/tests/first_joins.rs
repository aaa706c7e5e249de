//! `first_joins` against a real PostgreSQL: the earliest stored join of each member asked for,
//! members with none left out (ALREADY_JOINED after a restart depends on it).

use chrono::{DateTime, TimeZone, Utc};
use diesel_async::RunQueryDsl;
use invitrack_model::{
    BotId, FakeReasons, GuildId, GuildKey, JoinSource, MemberKey, UnknownReason, UserId,
};
use invitrack_storage::joins::{self, NewJoin};
use invitrack_testkit::TestDatabase;

const BOT: BotId = BotId::new(7);
const GUILD: GuildId = GuildId::new(1_000);
const OTHER_GUILD: GuildId = GuildId::new(1_001);

fn member(guild_id: GuildId, member_id: u64) -> MemberKey {
    GuildKey::new(BOT, guild_id).member(UserId::new(member_id))
}

fn at(seconds: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_800_000_000 + seconds, 0).unwrap()
}

fn join(guild_id: GuildId, member_id: u64, joined_at: DateTime<Utc>) -> NewJoin {
    NewJoin {
        member: member(guild_id, member_id),
        joined_at,
        source: JoinSource::Unknown,
        invite_code: None,
        inviter_id: None,
        candidates: Vec::new(),
        unknown_reason: Some(UnknownReason::Untracked),
        fake: FakeReasons::NONE,
        left_at: None,
    }
}

#[tokio::test]
async fn the_earliest_join_of_each_member_and_none_for_newcomers() {
    let database = TestDatabase::new("invitrack_first_joins");
    let database_url = database.url();
    invitrack_storage::prepare_database(&database_url)
        .await
        .expect("a database of its own");
    let mut conn = invitrack_storage::connect(&database_url)
        .await
        .expect("connects");

    // Member 1 joined three times (stored out of order), member 2 once, member 3 only in
    // another guild, and a crowd of 500 members once each.
    let mut stored = vec![
        join(GUILD, 1, at(300)),
        join(GUILD, 1, at(100)),
        join(GUILD, 1, at(200)),
        join(GUILD, 2, at(50)),
        join(OTHER_GUILD, 3, at(10)),
    ];
    stored.extend((0..500_u32).map(|m| join(GUILD, 10_000 + u64::from(m), at(i64::from(m)))));
    let written = joins::write_joins(&mut conn, &stored, &[])
        .await
        .expect("stored");
    assert_eq!(written.inserted.len(), stored.len());

    let mut keys: Vec<MemberKey> = (1..=4).map(|m| member(GUILD, m)).collect();
    keys.extend((0..500).map(|m| member(GUILD, 10_000 + m)));
    let first = joins::first_joins(&mut conn, &keys).await.expect("read");

    assert_eq!(
        first.get(&member(GUILD, 1)),
        Some(&at(100)),
        "the earliest of three"
    );
    assert_eq!(first.get(&member(GUILD, 2)), Some(&at(50)));
    assert_eq!(
        first.get(&member(GUILD, 3)),
        None,
        "joined another guild only"
    );
    assert_eq!(first.get(&member(GUILD, 4)), None, "never joined");
    assert_eq!(first.get(&member(GUILD, 10_499)), Some(&at(499)));
    assert_eq!(first.len(), 2 + 500);

    // The worker runs this for every batch: the connection keeps it prepared instead of
    // parsing and planning it each time.
    joins::first_joins(&mut conn, &keys[..1])
        .await
        .expect("read");
    #[derive(diesel::QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let kept: Count = diesel::sql_query(
        "SELECT count(*) AS n FROM pg_prepared_statements \
         WHERE statement LIKE '%min(j.created_at)%' AND statement NOT LIKE '%pg_prepared%'",
    )
    .get_result(&mut conn)
    .await
    .expect("prepared statements");
    assert_eq!(kept.n, 1, "first_joins is prepared once and kept");
}
