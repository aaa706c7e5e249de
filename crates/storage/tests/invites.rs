//! The `invites` table across batches, against a real PostgreSQL: snapshots, INVITE_CREATE and
//! INVITE_DELETE folded per batch and written as the worker does, and what each leaves behind
//! (`docs/architecture.md#tables`).

use chrono::{DateTime, TimeZone, Utc};
use invitrack_model::{BotId, ChannelId, GuildId, GuildKey, InviteCode, UserId, VanishedReason};
use invitrack_storage::AsyncPgConnection;
use invitrack_storage::invites::{self, InviteChanges, SeenInvite, StoredInvite};
use invitrack_testkit::TestDatabase;

const GUILD: GuildKey = GuildKey::new(BotId::new(7), GuildId::new(1_000));
const ALICE: UserId = UserId::new(42);

fn at(seconds: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_800_000_000 + seconds, 0).unwrap()
}

fn code(name: &str) -> InviteCode {
    InviteCode::parse(name).expect("a valid code")
}

fn seen(name: &str, uses: u64, created: i64, expires: Option<i64>) -> SeenInvite {
    SeenInvite {
        code: code(name),
        channel_id: Some(ChannelId::new(9)),
        inviter_id: Some(ALICE),
        uses,
        max_uses: 0,
        max_age_secs: 0,
        temporary: false,
        created_at: Some(at(created)),
        expires_at: expires.map(at),
    }
}

async fn write(conn: &mut AsyncPgConnection, batch: impl FnOnce(&mut InviteChanges)) {
    let mut changes = InviteChanges::default();
    batch(&mut changes);
    changes.write(conn).await.expect("written");
}

async fn stored(conn: &mut AsyncPgConnection) -> Vec<StoredInvite> {
    invites::guild_invites(conn, GUILD, None, true)
        .await
        .expect("read")
}

fn find<'a>(rows: &'a [StoredInvite], name: &str) -> &'a StoredInvite {
    rows.iter()
        .find(|r| r.code.as_str() == name)
        .unwrap_or_else(|| panic!("{name} is stored: {rows:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invites_follow_snapshots_and_invite_events() {
    let database = TestDatabase::new("invitrack_invites");
    invitrack_storage::prepare_database(&database.url())
        .await
        .expect("migrated");
    let mut conn = invitrack_storage::connect(&database.url())
        .await
        .expect("connects");

    // A first read: "perm" with one use, "short" expiring at 100 s.
    write(&mut conn, |c| {
        c.snapshot(
            GUILD,
            at(9),
            at(10),
            vec![seen("perm", 1, 0, None), seen("short", 0, 0, Some(100))],
        );
    })
    .await;
    // INVITE_CREATE of "fresh", then a moderator deletes "perm".
    write(&mut conn, |c| {
        c.created(GUILD, seen("fresh", 0, 20, None), at(20));
        c.deleted(GUILD, code("perm"), at(30));
    })
    .await;
    let rows = stored(&mut conn).await;
    assert_eq!(find(&rows, "fresh").uses, 0);
    assert_eq!(find(&rows, "fresh").vanished_at, None);
    assert_eq!(
        (
            find(&rows, "perm").vanished_reason,
            find(&rows, "perm").vanished_at
        ),
        (Some(VanishedReason::Deleted), Some(at(30)))
    );

    // A late answer still showing "perm" does not bring it back; a read requested before
    // "newer" was created does not make it vanish.
    write(&mut conn, |c| {
        c.created(GUILD, seen("newer", 0, 45, None), at(45));
    })
    .await;
    write(&mut conn, |c| {
        c.snapshot(
            GUILD,
            at(40),
            at(50),
            vec![
                seen("perm", 1, 0, None),
                seen("short", 0, 0, Some(100)),
                seen("fresh", 2, 20, None),
            ],
        );
    })
    .await;
    let rows = stored(&mut conn).await;
    assert_eq!(
        find(&rows, "perm").vanished_reason,
        Some(VanishedReason::Deleted)
    );
    assert_eq!(
        find(&rows, "fresh").uses,
        2,
        "a read's uses replace the created row's 0"
    );
    assert_eq!(
        find(&rows, "newer").vanished_at,
        None,
        "created after the read was requested"
    );

    // A read after "short" expired and without "newer" (created before that read, no delete
    // seen): one expired, the other missing.
    write(&mut conn, |c| {
        c.snapshot(GUILD, at(200), at(201), vec![seen("fresh", 3, 20, None)]);
    })
    .await;
    let rows = stored(&mut conn).await;
    assert_eq!(
        find(&rows, "short").vanished_reason,
        Some(VanishedReason::Expired)
    );
    assert_eq!(
        find(&rows, "newer").vanished_reason,
        Some(VanishedReason::Missing)
    );
    assert_eq!(find(&rows, "fresh").uses, 3);
    let live: Vec<String> = invites::guild_invites(&mut conn, GUILD, Some(ALICE), false)
        .await
        .expect("read")
        .into_iter()
        .map(|r| r.code.as_str().to_owned())
        .collect();
    assert_eq!(live, ["fresh"], "current invites only");
    assert_eq!(rows.len(), 4);
}
