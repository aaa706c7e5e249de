//! The maintained counters equal a recount from the rows after every kind of change.

use invitrack_storage::keys::KeyScope;
use serde_json::json;

use crate::helpers::{GUILD, Join, OTHER_GUILD, spawn_app};

#[tokio::test]
async fn counters_equal_a_recount_after_a_mix_of_everything() {
    let mut app = spawn_app().await;
    let admin = app.key(None, KeyScope::Admin).await;
    let inviters = [11_u64, 12, 13, 14];
    let mut member = 1_000_u64;
    let mut resets = Vec::new();
    // A deterministic mix: joins (some fake), leaves, bonus, resets and restores, in rounds.
    for round in 0..4_u64 {
        for (i, inviter) in inviters.iter().enumerate() {
            let i = i as u64;
            for k in 0..(3 + i + round) {
                member += 1;
                let guild = if (member + round).is_multiple_of(5) {
                    OTHER_GUILD
                } else {
                    GUILD
                };
                app.join(Join {
                    guild,
                    flagged_rejoin: matches!((member + k) % 7, 0 | 3),
                    ..Join::invite(member, "c", *inviter, i64::try_from(member).expect("small"))
                })
                .await;
                if (member * 31 + round).is_multiple_of(3) {
                    app.leave(guild, member).await;
                }
            }
            let amount = i64::try_from(round + i).expect("small") - 2;
            if amount != 0 {
                let (status, _) = app
                    .post(
                        &app.guild_path(&format!("/inviters/{inviter}/bonus")),
                        &admin,
                        &json!({"amount": amount, "author": "mix"}),
                    )
                    .await;
                assert_eq!(status, 201);
            }
        }
        app.assert_counters_match_rows().await;
        let body = if round.is_multiple_of(2) {
            json!({"inviter_id": inviters[usize::try_from(round).expect("small")].to_string(), "author": "mix"})
        } else {
            json!({"author": "mix"})
        };
        let (status, reset) = app.post(&app.guild_path("/resets"), &admin, &body).await;
        assert_eq!(status, 201);
        resets.push(reset["id"].as_i64().expect("id"));
        app.assert_counters_match_rows().await;
        // Members of cleared joins leave meanwhile.
        for m in (member - 3)..=member {
            if app.present(GUILD, m).await {
                app.leave(GUILD, m).await;
            }
        }
        app.assert_counters_match_rows().await;
        if round == 1 || round == 3 {
            let id = resets[usize::try_from(round - 1).expect("small")];
            let (status, _) = app
                .post(
                    &app.guild_path(&format!("/resets/{id}/restore")),
                    &admin,
                    &json!({"author": "mix"}),
                )
                .await;
            assert_eq!(status, 200);
            app.assert_counters_match_rows().await;
        }
    }
    // Restore everything left, newest first.
    for id in resets.iter().rev() {
        let _ = app
            .post(
                &app.guild_path(&format!("/resets/{id}/restore")),
                &admin,
                &json!({"author": "mix"}),
            )
            .await;
        app.assert_counters_match_rows().await;
    }
    // Non-trivial: something of every kind is counted.
    let maintained = invitrack_storage::dashboard::maintained_counts(
        &mut app.conn,
        crate::helpers::guild_key(GUILD),
    )
    .await
    .expect("counts");
    assert_eq!(maintained.len(), 4);
    assert!(maintained.values().any(|c| c.fake > 0));
    assert!(maintained.values().any(|c| c.leaves > 0));
    assert!(maintained.values().any(|c| c.bonus != 0));
}
