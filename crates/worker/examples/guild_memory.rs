//! Bytes per cached guild: the worker keeps one `GuildAttribution` per active guild in memory
//! (an LRU bounded by `WORKER_MAX_CACHED_GUILDS`); this measures what one costs.
//!
//! For each invite count it builds 10,000 guild states the way the worker does (a baseline
//! snapshot, then joins decided by the next snapshot), keeps them in a `HashMap` keyed like the
//! worker's cache, and reports the process's resident-memory growth divided by the guild
//! count (allocator overhead included), next to the size of the state as stored in
//! PostgreSQL (JSON).
//!
//! ```text
//! cargo run --release -p invitrack-worker --example guild_memory
//! ```

use std::collections::HashMap;

use invitrack_attribution::{
    DeliveryClock, EngineConfig, GuildAttribution, InviteInfo, Observation,
};
use invitrack_model::{InviteCode, UserId};

const GUILDS: u64 = 10_000;

fn resident_bytes() -> u64 {
    // /proc/self/statm: size resident shared ... in pages.
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

fn invites(guild: u64, count: u64, uses: u64, t: i64) -> Vec<InviteInfo> {
    (0..count)
        .map(|i| InviteInfo {
            code: InviteCode::parse(format!("{:08x}", guild * 1_000 + i)).expect("a valid code"),
            inviter_id: Some(UserId::new(400_000_000_000_000_000 + i % 8)),
            uses: if i == 0 { uses } else { 3 },
            max_uses: 0,
            created_at: t - 86_400_000,
            expires_at: None,
        })
        .collect()
}

fn main() {
    // Each count is measured in a fresh process: memory freed by one would be reused by the
    // next without showing in its RSS growth.
    if let Some(count) = std::env::args().nth(1).and_then(|a| a.parse().ok()) {
        measure(count);
        return;
    }
    println!("| invites per guild | RSS growth per cached guild | stored state (JSON) |");
    println!("|---:|---:|---:|");
    for count in [1_u64, 5, 20, 100] {
        let status = std::env::current_exe().and_then(|exe| {
            std::process::Command::new(exe)
                .arg(count.to_string())
                .status()
        });
        if !status.is_ok_and(|s| s.success()) {
            eprintln!("measuring {count} invites failed");
        }
    }
}

fn measure(count: u64) {
    let engine = EngineConfig::default();
    {
        let before = resident_bytes();
        let mut cache: HashMap<(u64, u64), GuildAttribution> = HashMap::new();
        let mut json_bytes = 0;
        let t = 1_800_000_000_000_i64;
        for guild in 0..GUILDS {
            let mut state = GuildAttribution::new();
            let snapshot = |uses: u64, at: i64| Observation::Snapshot {
                requested_at: at,
                received_at: at + 150,
                invites: invites(guild, count, uses, t),
                vanity: None,
            };
            state.observe(&engine, snapshot(0, t), t);
            // A few joins, each decided by the next snapshot: the state a busy guild settles in.
            for j in 0..3_u64 {
                let at = t + 10_000 * i64::try_from(j + 1).unwrap_or(0);
                state.observe(
                    &engine,
                    Observation::MemberJoined {
                        user_id: UserId::new(5_000_000_000 + guild * 10 + j),
                        joined_at: at,
                    },
                    at,
                );
                state.observe(&engine, snapshot(j + 1, at + 500), at + 650);
                let clock = DeliveryClock {
                    now: at + 3_000,
                    delivery_lag: None,
                };
                state.tick(&engine, clock);
            }
            json_bytes += serde_json::to_vec(&state).map_or(0, |v| v.len());
            cache.insert((1, guild), state);
        }
        let after = resident_bytes();
        println!(
            "| {count} | {} B | {} B |",
            after.saturating_sub(before) / GUILDS,
            json_bytes / usize::try_from(GUILDS).unwrap_or(1)
        );
        drop(cache);
    }
}
