//! The dashboard in a real browser: Debian's headless Chromium driven through chromedriver
//! (WebDriver, with fantoccini), against the API on a fresh database seeded as the worker
//! writes. Screenshots of the main pages, desktop and phone, go to `docs/screenshots/`.

#[path = "api/helpers.rs"]
#[allow(dead_code)]
mod helpers;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use helpers::{GUILD, Join, spawn_app};
use invitrack_storage::keys::KeyScope;
use serde_json::{Value, json};

/// chromedriver on a port of its own, stopped when dropped.
struct Driver {
    child: Child,
    port: u16,
}

impl Driver {
    fn start() -> Self {
        let port = invitrack_testkit::free_port();
        let binary = std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "chromedriver".into());
        let child = Command::new(&binary)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("{binary} does not start ({e}): apt-get install chromium chromium-driver")
            });
        assert!(
            invitrack_testkit::wait_for_port(port, Duration::from_secs(20)),
            "chromedriver never listened"
        );
        Self { child, port }
    }

    async fn browser(&self, width: u32, height: u32) -> Client {
        let mut capabilities = serde_json::Map::new();
        let mut args = vec![
            "--headless=new".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            format!("--window-size={width},{height}"),
        ];
        if let Ok(binary) = std::env::var("CHROMIUM") {
            args.push(format!("--binary={binary}"));
        }
        capabilities.insert("goog:chromeOptions".into(), json!({ "args": args }));
        ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{}", self.port))
            .await
            .expect("a browser session")
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn screenshot(browser: &Client, name: &str) {
    let png = browser.screenshot().await.expect("a screenshot");
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/screenshots");
    std::fs::create_dir_all(&dir).expect("docs/screenshots");
    std::fs::write(dir.join(format!("{name}.png")), png).expect("screenshot written");
}

async fn wait_for(browser: &Client, css: &str) -> fantoccini::elements::Element {
    match browser
        .wait()
        .at_most(Duration::from_secs(20))
        .for_element(Locator::Css(css))
        .await
    {
        Ok(element) => element,
        Err(e) => {
            let url = browser.current_url().await.map(|u| u.to_string());
            let page = browser
                .find(Locator::Css("main"))
                .await
                .ok()
                .map(|m| async move { m.text().await.unwrap_or_default() });
            let page = match page {
                Some(text) => text.await,
                None => String::new(),
            };
            panic!("{css} never appeared ({e}) at {url:?}; the page says: {page}")
        }
    }
}

/// The text of `css`, found again if the page re-rendered it meanwhile.
async fn text_of(browser: &Client, css: &str) -> String {
    for _ in 0..50 {
        if let Ok(text) = wait_for(browser, css).await.text().await {
            return text;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{css} kept being replaced")
}

/// Turns on the fake rule `name` on the settings page and saves, waiting for "Saved.".
async fn toggle_and_save(browser: &Client, name: &str) {
    let rule = wait_for(browser, &format!("#settings input[name={name}]")).await;
    assert!(!rule.is_selected().await.expect("checked"), "{name} was on");
    rule.click().await.expect("click");
    wait_for(browser, "#settings button[type=submit]")
        .await
        .click()
        .await
        .expect("save");
    browser
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::XPath(
            "//*[@id='settings-status']//*[text()='Saved.']",
        ))
        .await
        .expect("saved");
}

const ALICE: u64 = 100_000_000_000_000_001;
const BOB: u64 = 100_000_000_000_000_002;
const CAROL: u64 = 100_000_000_000_000_003;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_shows_the_apis_numbers_and_saves_settings_in_a_real_browser() {
    let mut app = spawn_app().await;
    // Two weeks of joins: Alice's every day, Bob's every other day, Carol's one (who left),
    // some through the vanity URL, an unknown one, a fake one.
    let day = 24 * 60;
    let mut n = 0;
    let mut member = || {
        n += 1;
        300_000_000_000_000_000 + n
    };
    for d in 0..14 {
        app.join(Join::invite(member(), "alice1", ALICE, d * day + 60))
            .await;
        if d % 2 == 0 {
            app.join(Join::invite(member(), "bob1", BOB, d * day + 90))
                .await;
        }
        if d % 3 == 0 {
            app.join(Join {
                verdict: invitrack_attribution::Verdict::Vanity {
                    code: helpers::code("vanity"),
                },
                ..Join::unknown(member(), d * day + 120)
            })
            .await;
        }
    }
    app.join(Join::unknown(member(), 30)).await;
    let carols = member();
    app.join(Join::invite(carols, "carol1", CAROL, 45)).await;
    app.leave(GUILD, carols).await;
    app.join(Join {
        flagged_rejoin: true,
        ..Join::invite(member(), "bob1", BOB, 50)
    })
    .await;
    diesel_async::RunQueryDsl::execute(
        diesel::sql_query(format!(
            "INSERT INTO guild_states (bot_id, guild_id, state, pending_joins, missing_permissions, \
             last_snapshot_at, updated_at) VALUES ({}, {GUILD}, '{{}}', 0, false, now(), now())",
            helpers::BOT
        )),
        &mut app.conn,
    )
    .await
    .expect("a guild state");
    let admin = app.key(Some(GUILD), KeyScope::Admin).await;
    let read = app.key(Some(GUILD), KeyScope::Read).await;

    let driver = Driver::start();
    let browser = driver.browser(1280, 900).await;

    // The demo's kind of link: the key in the fragment, dropped from the URL once taken.
    browser
        .goto(&app.url(&format!("/dashboard/#key={admin}")))
        .await
        .expect("the dashboard");
    let bars = wait_for(&browser, "svg.chart rect[data-source]").await;
    assert!(bars.attr("height").await.expect("height").is_some());
    let url = browser.current_url().await.expect("url");
    assert!(
        !url.as_str().contains(&admin),
        "the key stays out of the URL: {url}"
    );
    let drawn = browser
        .find_all(Locator::Css("svg.chart rect[data-source]"))
        .await
        .expect("bars");
    let sources: std::collections::BTreeSet<String> = {
        let mut set = std::collections::BTreeSet::new();
        for bar in &drawn {
            set.insert(
                bar.attr("data-source")
                    .await
                    .expect("attr")
                    .unwrap_or_default(),
            );
        }
        set
    };
    assert_eq!(
        sources.into_iter().collect::<Vec<_>>(),
        ["invite", "unknown", "vanity"]
    );
    let (_, summary) = app
        .get(&app.guild_path("/summary?days=30"), Some(&admin))
        .await;
    let window: i64 = summary["days"]
        .as_array()
        .expect("days")
        .iter()
        .map(|d| {
            ["invite", "vanity", "ambiguous", "unknown"]
                .iter()
                .map(|k| d[k].as_i64().unwrap_or(0))
                .sum::<i64>()
        })
        .sum();
    assert_eq!(text_of(&browser, "#stat-joins b").await, window.to_string());
    screenshot(&browser, "overview").await;
    // A figure, not an assertion: how long the first load took (docs/dashboard.md).
    let timing: Value = browser
        .execute(
            "const n = performance.getEntriesByType('navigation')[0];
             const drawn = performance.getEntriesByName('overview-drawn')[0];
             return [n.domContentLoadedEventEnd, n.loadEventEnd, drawn ? drawn.startTime : null];",
            vec![],
        )
        .await
        .expect("timing");
    eprintln!("first load (ms): DOMContentLoaded, load, overview drawn: {timing}");

    // The leaderboard says what the API says.
    browser
        .goto(&app.url(&format!("/dashboard/#/g/{GUILD}/leaderboard")))
        .await
        .expect("leaderboard");
    wait_for(&browser, "#leaderboard tbody tr").await;
    let (_, board) = app
        .get(&app.guild_path("/leaderboard?per_page=25"), Some(&admin))
        .await;
    let rows = browser
        .find_all(Locator::Css("#leaderboard tbody tr"))
        .await
        .expect("rows");
    let entries = board["entries"].as_array().expect("entries");
    assert_eq!(rows.len(), entries.len());
    for (row, entry) in rows.iter().zip(entries) {
        assert_eq!(
            row.attr("data-inviter").await.expect("attr").as_deref(),
            entry["inviter_id"].as_str()
        );
        for count in ["real", "total", "fake", "leaves", "bonus"] {
            let cell = row
                .find(Locator::Css(&format!("td[data-count={count}]")))
                .await
                .expect("cell");
            assert_eq!(
                cell.text().await.expect("text"),
                entry[count].to_string(),
                "{count} of {}",
                entry["inviter_id"]
            );
        }
    }
    screenshot(&browser, "leaderboard").await;

    // A member lookup.
    browser
        .goto(&app.url(&format!("/dashboard/#/g/{GUILD}/member/{carols}")))
        .await
        .expect("member");
    let answer = text_of(&browser, "#member-answer").await;
    assert_eq!(answer, format!("Invited by {CAROL} with the code carol1."));

    // A settings change, saved through the API.
    browser
        .goto(&app.url(&format!("/dashboard/#/g/{GUILD}/settings")))
        .await
        .expect("settings");
    toggle_and_save(&browser, "no_avatar").await;
    let (_, settings) = app.get(&app.guild_path("/settings"), Some(&admin)).await;
    assert_eq!(settings["no_avatar"], Value::Bool(true));
    // The template preview follows the text as it is typed.
    let text = wait_for(&browser, "#template-text").await;
    text.clear().await.expect("clear");
    text.send_keys("Hello {member.mention}!")
        .await
        .expect("type");
    browser
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::XPath(
            "//*[@id='template-preview'][starts-with(normalize-space(.), 'Hello <@')]",
        ))
        .await
        .expect("the preview follows the text");
    screenshot(&browser, "settings").await;

    // A key for the guild, made on the page; its token is shown once.
    browser
        .goto(&app.url(&format!("/dashboard/#/g/{GUILD}/admin")))
        .await
        .expect("admin");
    wait_for(&browser, "input[name=label]")
        .await
        .send_keys("stats site")
        .await
        .expect("type");
    let made_with = browser
        .find_all(Locator::XPath("//button[text()='Make a key']"))
        .await
        .expect("button");
    made_with[0].click().await.expect("make");
    let token = text_of(&browser, "#new-key code").await;
    let (status, _) = app.get(&app.guild_path("/summary"), Some(&token)).await;
    assert_eq!(status, 200, "the key made in the browser reads the guild");
    screenshot(&browser, "admin").await;

    // Phone width.
    browser.set_window_size(390, 844).await.expect("resize");
    browser
        .goto(&app.url(&format!("/dashboard/#/g/{GUILD}/overview")))
        .await
        .expect("overview");
    wait_for(&browser, "svg.chart rect").await;
    let overflow: Value = browser
        .execute(
            "return document.documentElement.scrollWidth > window.innerWidth + 1",
            vec![],
        )
        .await
        .expect("script");
    assert_eq!(
        overflow,
        Value::Bool(false),
        "the overview fits a phone's width"
    );
    screenshot(&browser, "overview-phone").await;
    browser.close().await.expect("closed");

    // A read key sees, but may not change.
    let browser = driver.browser(1280, 900).await;
    browser
        .goto(&app.url(&format!("/dashboard/#key={read}")))
        .await
        .expect("the dashboard");
    wait_for(&browser, "svg.chart").await;
    browser
        .goto(&app.url(&format!("/dashboard/#/g/{GUILD}/settings")))
        .await
        .expect("settings");
    let checkbox = wait_for(&browser, "#settings input[name=no_avatar]").await;
    assert_eq!(
        checkbox.attr("disabled").await.expect("attr").as_deref(),
        Some("true")
    );
    let said = text_of(&browser, "#settings p.muted").await;
    assert!(said.contains("needs an admin key"), "{said}");
    browser
        .goto(&app.url(&format!("/dashboard/#/g/{GUILD}/admin")))
        .await
        .expect("admin");
    let refused = text_of(&browser, "main p.muted").await;
    assert!(refused.contains("need an admin key"), "{refused}");
    browser.close().await.expect("closed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_with_discord_opens_the_guilds_a_user_manages_and_nothing_else() {
    use invitrack_sim::{Consent, GuildSpec, SimConfig, Simulator, UserGuildSpec, permissions};
    let sim = Simulator::start(SimConfig {
        bind: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
        ..SimConfig::default()
    })
    .await
    .expect("the simulator");
    let world = sim.world();
    let managed = world
        .create_guild(GuildSpec::default())
        .expect("guild")
        .guild_id;
    let visited = world
        .create_guild(GuildSpec::default())
        .expect("guild")
        .guild_id;
    let client = world.oauth2_client();
    let port = invitrack_testkit::free_port();
    let public = format!("http://127.0.0.1:{port}");
    world
        .set_oauth2_redirect_uris(vec![format!("{public}/auth/callback")])
        .expect("redirect URI");
    let mut app = helpers::spawn_app_on(
        invitrack_api::ApiOptions {
            rate_limit_per_second: 0,
            counts_cache_secs: 0,
            login: invitrack_api::LoginOptions {
                discord_client_id: Some(client.client_id.get()),
                discord_client_secret: Some(client.client_secret.clone()),
                dashboard_public_url: Some(public.clone()),
                discord_api_url: format!("http://{}/api/v10", sim.addr()),
                discord_authorize_url: format!("http://{}/oauth2/authorize", sim.addr()),
                session_hours: 1,
            },
            ..invitrack_api::ApiOptions::default()
        },
        port,
    )
    .await;
    // The bot is in both guilds (the worker tracks them).
    let bot = client.client_id.get();
    for guild in [managed, visited] {
        diesel_async::RunQueryDsl::execute(
            diesel::sql_query(format!(
                "INSERT INTO guild_states (bot_id, guild_id, state, pending_joins, missing_permissions, \
                 last_snapshot_at, updated_at) VALUES ({bot}, {guild}, '{{}}', 0, false, now(), now())"
            )),
            &mut app.conn,
        )
        .await
        .expect("a guild state");
    }
    // A moderator: Manage Server in one guild, a plain member of the other.
    let moderator = twilight_model::id::Id::new(4_242);
    world
        .set_user_guilds(
            moderator,
            vec![
                UserGuildSpec::member_of(managed, permissions::MANAGE_GUILD),
                UserGuildSpec::member_of(visited, permissions::VIEW_CHANNEL),
            ],
        )
        .expect("memberships");
    world.sign_in(moderator, Consent::Approve);

    let driver = Driver::start();
    let browser = driver.browser(1280, 900).await;
    browser
        .goto(&format!("{public}/dashboard/"))
        .await
        .expect("the dashboard");
    wait_for(&browser, "#login-discord")
        .await
        .click()
        .await
        .expect("login");
    // Discord (the simulator) sends the browser back signed in; one guild: its overview.
    let title = text_of(&browser, "main h1").await;
    assert_eq!(title, format!("Guild {managed}"));
    screenshot(&browser, "login-overview").await;
    // The other guild is refused.
    browser
        .goto(&format!("{public}/dashboard/#/g/{visited}/overview"))
        .await
        .expect("the other guild");
    let refused = text_of(&browser, "main p.error").await;
    assert!(refused.contains("Manage Server"), "{refused}");
    // A write goes through with the session's CSRF token; without it, it does not.
    browser
        .goto(&format!("{public}/dashboard/#/g/{managed}/settings"))
        .await
        .expect("settings");
    toggle_and_save(&browser, "no_avatar").await;
    let forged: Value = browser
        .execute_async(
            &format!(
                "const done = arguments[arguments.length - 1];
                 fetch('/v1/bots/{bot}/guilds/{managed}/settings', {{method: 'PUT',
                   headers: {{'Content-Type': 'application/json'}},
                   body: JSON.stringify({{no_avatar: true, author: 'forged'}})}})
                   .then(r => done(r.status));"
            ),
            vec![],
        )
        .await
        .expect("script");
    assert_eq!(forged, json!(403), "a write without the CSRF token");
    let audit: (i64,) = {
        use diesel_async::RunQueryDsl as _;
        #[derive(diesel::QueryableByName)]
        struct Count {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        let row: Count = diesel::sql_query(format!(
            "SELECT count(*) AS n FROM audit_log WHERE guild_id = {managed} AND author LIKE 'dashboard:discord:{}%'",
            moderator
        ))
        .get_result(&mut app.conn)
        .await
        .expect("audit");
        (row.n,)
    };
    assert_eq!(audit.0, 1, "the change is audited as the Discord user");
    // Signing out ends the session.
    wait_for(&browser, "#signout")
        .await
        .click()
        .await
        .expect("sign out");
    wait_for(&browser, "#login-discord").await;
    let status: Value = browser
        .execute_async(
            "const done = arguments[arguments.length - 1];
             fetch('/v1/me').then(r => done(r.status));",
            vec![],
        )
        .await
        .expect("script");
    assert_eq!(status, json!(401));

    // Someone with Manage Server nowhere the bot is sees nothing.
    let member = twilight_model::id::Id::new(4_343);
    world
        .set_user_guilds(
            member,
            vec![UserGuildSpec::member_of(managed, permissions::VIEW_CHANNEL)],
        )
        .expect("memberships");
    world.sign_in(member, Consent::Approve);
    wait_for(&browser, "#login-discord")
        .await
        .click()
        .await
        .expect("login");
    let said = text_of(&browser, "#no-guilds").await;
    assert!(said.contains("Manage Server in no server"), "{said}");
    browser
        .goto(&format!("{public}/dashboard/#/g/{managed}/overview"))
        .await
        .expect("overview");
    let refused = text_of(&browser, "main p.error").await;
    assert!(refused.contains("Manage Server"), "{refused}");
    browser.close().await.expect("closed");
    sim.stop().await;
}
