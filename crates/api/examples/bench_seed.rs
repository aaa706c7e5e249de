//! Seeds a benchmark database: 1,000,000 joins over 100,000 inviters in 1,000 guilds (100
//! inviters per guild, 10 joins each, spread over 60 days; every 13th join fake, every 7th
//! member gone), the per-inviter counters the worker would have maintained, and a read key.
//! Prints the key. See `BENCHMARKS.md`.
//!
//! ```sh
//! DATABASE_URL=postgres://postgres@127.0.0.1:5432/invitrack_bench \
//!     cargo run --release -p invitrack-api --example bench_seed
//! ```

use diesel_async::RunQueryDsl as _;
use invitrack_storage::keys::{self, KeyScope};

/// The bot every seeded row and the key belong to.
const BOT: i64 = 859_000_000_000_000_001;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let url = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/invitrack_bench".into());
    invitrack_storage::prepare_database(&url).await?;
    let mut conn = invitrack_storage::connect(&url).await?;
    let started = std::time::Instant::now();
    // BENCH_KEY_ONLY=1: the database is seeded already; only make a key.
    let statements = if std::env::var_os("BENCH_KEY_ONLY").is_some() {
        Vec::new()
    } else {
        seed_statements()
    };
    for statement in statements {
        diesel::sql_query(statement).execute(&mut conn).await?;
    }
    eprintln!("seeded in {:.1} s", started.elapsed().as_secs_f64());
    let (token, _) = keys::create_key(
        &mut conn,
        invitrack_model::BotId::from_db(BOT),
        None,
        KeyScope::Read,
        "benchmark",
    )
    .await?;
    println!("{token}");
    Ok(())
}

fn seed_statements() -> Vec<String> {
    vec![
        "TRUNCATE joins, inviter_counts, reset_joins, bonus_invites, resets, audit_log".to_owned(),
        // Guild g = 1000000 + n % 1000, inviter = 2000000 + n % 100000 (so each inviter is in
        // one guild), member = 5000000000 + n, joined n × 5.184 s ago (evenly over 60 days).
        format!(
            "INSERT INTO joins (bot_id, guild_id, member_id, created_at, updated_at, source, \
                                invite_code, inviter_id, fake, has_left, left_at) \
             SELECT {BOT}, 1000000 + n % 1000, 5000000000 + n, t, t, 'invite', \
                    'c' || (n % 100000), 2000000 + n % 100000, \
                    CASE WHEN n % 13 = 0 THEN 1 ELSE 0 END, n % 7 = 0, \
                    CASE WHEN n % 7 = 0 THEN t + interval '1 hour' END \
             FROM generate_series(1, 1000000) AS n, \
                  LATERAL (SELECT now() - (n::BIGINT * 5184 / 1000) * interval '1 second' AS t) AS times"
        ),
        format!(
            "INSERT INTO inviter_counts (bot_id, guild_id, inviter_id, joins, fake, leaves, bonus) \
             SELECT {BOT}, guild_id, inviter_id, count(*), count(*) FILTER (WHERE fake <> 0), \
                    count(*) FILTER (WHERE fake = 0 AND has_left), 0 \
             FROM joins WHERE bot_id = {BOT} GROUP BY guild_id, inviter_id"
        ),
        // VACUUM as autovacuum would have by then: index-only scans need the visibility map.
        "VACUUM ANALYZE".to_owned(),
    ]
}
