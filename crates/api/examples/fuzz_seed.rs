//! Seeds a small database for the schemathesis run (`fuzz/schemathesis.sh`): one guild with
//! joins of every source through the storage functions the worker calls (some fake, some
//! left), and an admin key for the bot, which it prints. The ids match the `examples` of the
//! OpenAPI document, so documented examples hit real rows.
//!
//! ```sh
//! DATABASE_URL=postgres://postgres@127.0.0.1:5432/invitrack_fuzz \
//!     cargo run -p invitrack-api --example fuzz_seed
//! ```

use chrono::{Duration, Utc};
use invitrack_storage::joins::{self, JoinSource, NewJoin};
use invitrack_storage::keys::{self, KeyScope};
use invitrack_storage::members;

const BOT: u64 = 859_000_000_000_000_001;
const GUILD: u64 = 417_977_361_011_572_747;
const INVITER: u64 = 417_977_361_011_572_748;
const MEMBER: u64 = 417_977_361_011_572_749;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let url = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/invitrack_fuzz".into());
    invitrack_storage::prepare_database(&url).await?;
    let mut conn = invitrack_storage::connect(&url).await?;
    let now = Utc::now();
    for n in 0..40_u64 {
        let member = if n == 0 { MEMBER } else { MEMBER + 1000 + n };
        let joined_at = now - Duration::hours(i64::try_from(n * 7)?);
        members::member_joined(&mut conn, BOT, GUILD, member, joined_at, n % 5 != 0, false).await?;
        let source = match n % 8 {
            6 => JoinSource::Vanity,
            7 => JoinSource::Ambiguous,
            5 => JoinSource::Unknown,
            _ => JoinSource::Invite,
        };
        let invite = source == JoinSource::Invite;
        joins::insert_join(
            &mut conn,
            &NewJoin {
                bot_id: BOT,
                guild_id: GUILD,
                member_id: member,
                joined_at,
                source,
                invite_code: invite.then(|| format!("abcDEF1{}", n % 3)),
                inviter_id: invite.then_some(INVITER + (n % 3) * 10),
                candidates: if source == JoinSource::Ambiguous {
                    vec!["abcDEF10".into(), "abcDEF11".into()]
                } else {
                    Vec::new()
                },
                unknown_reason: (source == JoinSource::Unknown).then_some("no_evidence"),
                fake: if n % 6 == 1 { 1 } else { 0 },
                left_at: None,
            },
        )
        .await?;
        if n % 4 == 2 {
            let left_at = joined_at + Duration::minutes(30);
            if let Some(joined_at) =
                members::member_left(&mut conn, BOT, GUILD, member, left_at).await?
            {
                joins::mark_left(&mut conn, BOT, GUILD, member, joined_at, left_at).await?;
            }
        }
    }
    let (token, _) =
        keys::create_key(&mut conn, BOT, None, KeyScope::Admin, "schemathesis").await?;
    println!("{token}");
    Ok(())
}
