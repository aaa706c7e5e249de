//! Seeds a small database for the schemathesis run (`fuzz/schemathesis.sh`): one guild with
//! joins of every source through the worker's own batch effects (some fake, some
//! left), and an admin key for the bot, which it prints. The ids match the `examples` of the
//! OpenAPI document, so documented examples hit real rows.
//!
//! ```sh
//! DATABASE_URL=postgres://postgres@127.0.0.1:5432/invitrack_fuzz \
//!     cargo run -p invitrack-api --example fuzz_seed
//! ```

use chrono::{Duration, Utc};
use invitrack_attribution::{Decision, Verdict};
use invitrack_model::{BotId, GuildId, GuildKey, InviteCode, UnknownReason, UserId};
use invitrack_storage::keys::{self, KeyScope};
use invitrack_worker::effects::BatchEffects;

const BOT: BotId = BotId::new(859_000_000_000_000_001);
const GUILD: GuildId = GuildId::new(417_977_361_011_572_747);
const INVITER: u64 = 417_977_361_011_572_748;
const MEMBER: u64 = 417_977_361_011_572_749;

fn code(raw: String) -> anyhow::Result<InviteCode> {
    Ok(InviteCode::parse(raw)?)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let url = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/invitrack_fuzz".into());
    invitrack_storage::prepare_database(&url).await?;
    let mut conn = invitrack_storage::connect(&url).await?;
    let guild = GuildKey::new(BOT, GUILD);
    let now = Utc::now();
    for n in 0..40_u64 {
        let member = UserId::new(if n == 0 { MEMBER } else { MEMBER + 1000 + n });
        let key = guild.member(member);
        let joined_at = now - Duration::hours(i64::try_from(n * 7)?);
        let verdict = match n % 8 {
            6 => Verdict::Vanity {
                code: code("vanity".into())?,
            },
            7 => Verdict::Ambiguous {
                candidates: vec![code("abcDEF10".into())?, code("abcDEF11".into())?],
                inviter_id: None,
            },
            5 => Verdict::Unknown {
                reason: UnknownReason::Untracked,
            },
            _ => Verdict::Invite {
                code: code(format!("abcDEF1{}", n % 3))?,
                inviter_id: Some(UserId::new(INVITER + (n % 3) * 10)),
            },
        };
        // What the worker does with a batch: read, apply the member's events and the engine's
        // decision, write. Every sixth member carries Discord's DID_REJOIN flag (a fake join).
        let mut effects = BatchEffects::read(&mut conn, &[key], &[guild]).await?;
        effects.member_joined(key, joined_at, n % 5 != 0, n % 6 == 1);
        effects.decided(
            guild,
            Decision {
                user_id: member,
                joined_at: joined_at.timestamp_millis(),
                verdict,
            },
        )?;
        if n % 4 == 2 {
            effects.member_left(key, joined_at + Duration::minutes(30));
        }
        effects.finish(&mut conn).await?;
        effects.write(&mut conn).await?;
    }
    let (token, _) =
        keys::create_key(&mut conn, BOT, None, KeyScope::Admin, "schemathesis").await?;
    println!("{token}");
    Ok(())
}
