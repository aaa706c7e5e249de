//! Streams a guild's joins export and watches this process's memory: the API runs in-process on
//! a fresh database holding `JOINS` joins of one guild, and a client reads
//! `GET .../export/joins?format=FORMAT` to the end, counting bytes and rows, while a thread
//! samples the resident set size (VmRSS) every 20 ms. See `BENCHMARKS.md`.
//!
//! ```sh
//! cargo build --release -p invitrack-api --example export_memory
//! target/release/examples/export_memory 1000000 csv
//! target/release/examples/export_memory 1000000 json import   # then imports it (with curl)
//! ```

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use diesel_async::RunQueryDsl as _;
use invitrack_api::{ApiConfig, ApiOptions, Application};
use invitrack_storage::keys::{self, KeyScope};
use tokio_util::sync::CancellationToken;

const BOT: u64 = 859_000_000_000_000_001;
const GUILD: u64 = 417_977_361_011_572_747;

/// This process's resident set size, in KiB.
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let joins: u64 = match <[String]>::first(&args) {
        Some(raw) => raw.parse()?,
        None => 1_000_000,
    };
    let format = args.get(1).map_or("csv", String::as_str).to_owned();
    let name = format!("invitrack_export_{:08x}", rand::random::<u32>());
    let url = format!("postgres://postgres@127.0.0.1:5432/{name}");
    invitrack_storage::prepare_database(&url).await?;
    let mut conn = invitrack_storage::connect(&url).await?;
    let seeding = Instant::now();
    diesel::sql_query(format!(
        "INSERT INTO joins (bot_id, guild_id, member_id, created_at, updated_at, source, \
         invite_code, inviter_id, candidates, unknown_reason, fake, has_left, cleared, decided_at) \
         SELECT {BOT}, {GUILD}, 300000000000000000 + n, now() - n * interval '1 second', now(), \
         'invite', 'code' || (n % 1000), 100000000000000000 + (n % 1000), '{{}}', NULL, \
         (n % 13 = 0)::int, n % 7 = 0, false, now() FROM generate_series(1, {joins}) AS n"
    ))
    .execute(&mut conn)
    .await?;
    let (key, _) = keys::create_key(
        &mut conn,
        invitrack_model::BotId::new(BOT),
        None,
        KeyScope::Read,
        "export benchmark",
    )
    .await?;
    println!(
        "seeded {joins} joins in {:.1} s",
        seeding.elapsed().as_secs_f64()
    );

    let app = Application::build(&ApiConfig {
        database_url: url.clone(),
        bind: SocketAddr::from(([127, 0, 0, 1], 0)),
        workers: 1,
        db_connections: 4,
        options: ApiOptions {
            rate_limit_per_second: 0,
            ..ApiOptions::default()
        },
    })
    .await?;
    let address = format!("http://{}", app.addr());
    let shutdown = CancellationToken::new();
    tokio::spawn(app.run_until_stopped(shutdown.clone()));

    let peak = Arc::new(AtomicU64::new(rss_kib()));
    let done = Arc::new(AtomicBool::new(false));
    let before = rss_kib();
    let sampler = {
        let (peak, done) = (Arc::clone(&peak), Arc::clone(&done));
        std::thread::spawn(move || {
            while !AtomicBool::load(&done, Ordering::Relaxed) {
                AtomicU64::fetch_max(&peak, rss_kib(), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };
    let started = Instant::now();
    let mut response = reqwest::Client::new()
        .get(format!(
            "{address}/v1/bots/{BOT}/guilds/{GUILD}/export/joins?format={format}"
        ))
        .bearer_auth(&key)
        .send()
        .await?
        .error_for_status()?;
    let first_byte = started.elapsed();
    let (mut bytes, mut lines) = (0_u64, 0_u64);
    // With `import`, the JSON export is kept in a file and then imported into another guild.
    let import = args.iter().any(|a| a == "import") && format == "json";
    let file_path = std::env::temp_dir().join(format!("{name}.json"));
    let mut file = import
        .then(|| std::fs::File::create(&file_path))
        .transpose()?;
    while let Some(chunk) = response.chunk().await? {
        bytes += chunk.len() as u64;
        lines += chunk.iter().filter(|b| **b == b'\n').count() as u64;
        if let Some(file) = &mut file {
            std::io::Write::write_all(file, &chunk)?;
        }
    }
    let took = started.elapsed();
    let export_peak = AtomicU64::load(&peak, Ordering::Relaxed);
    let mut imported = None;
    if import {
        drop(file);
        let (admin_key, _) = keys::create_key(
            &mut conn,
            invitrack_model::BotId::new(BOT),
            None,
            KeyScope::Admin,
            "import benchmark",
        )
        .await?;
        AtomicU64::store(&peak, rss_kib(), Ordering::Relaxed);
        let started = Instant::now();
        // curl sends the file: its memory is its own, not this process's.
        let output = tokio::process::Command::new("curl")
            .args(["-s", "-X", "POST", "--data-binary"])
            .arg(format!("@{}", file_path.display()))
            .args(["-H", "Content-Type: application/json", "-H"])
            .arg(format!("Authorization: Bearer {admin_key}"))
            .arg(format!(
                "{address}/v1/bots/{BOT}/guilds/{}/import/joins?author=benchmark",
                GUILD + 1
            ))
            .output()
            .await?;
        imported = Some((
            started.elapsed(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            AtomicU64::load(&peak, Ordering::Relaxed),
        ));
        std::fs::remove_file(&file_path).ok();
    }
    done.store(true, Ordering::Relaxed);
    sampler.join().ok();
    shutdown.cancel();
    drop(conn);
    let mut admin =
        invitrack_storage::connect("postgres://postgres@127.0.0.1:5432/postgres").await?;
    diesel::sql_query(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(&mut admin)
        .await?;
    println!(
        "{format} export of {joins} joins: {:.1} MB, {lines} lines in {:.1} s (first byte after {} ms, {:.0} rows/s); \
         RSS before {} MiB, peak while streaming {} MiB",
        bytes as f64 / 1e6,
        took.as_secs_f64(),
        first_byte.as_millis(),
        joins as f64 / took.as_secs_f64(),
        before / 1024,
        export_peak / 1024
    );
    if let Some((took, answer, peak)) = imported {
        println!(
            "import of that file into another guild: {answer} in {:.1} s; RSS peak while importing {} MiB",
            took.as_secs_f64(),
            peak / 1024
        );
    }
    Ok(())
}
