//! How invitrack's services call Discord's REST API: every request of a bot token in a process
//! goes through one [`DiscordGate`], which keeps the requests under one budget, pauses them all
//! after a 429, stops them after a 401, and stops them before Discord's invalid-request ban
//! (`docs/discord.md#rate-limits`).

mod budget;
mod gate;
mod metrics;

pub use budget::{BURST_REQUESTS, RequestBudget};
pub use gate::{
    DEFAULT_REJECTION_CEILING, DiscordGate, GateError, GateStats, REJECTION_WINDOW, Request,
    status_of,
};
pub use metrics::GateMetrics;

/// A twilight-http client for `token`, sending to `api_proxy` (`host:port`, plain HTTP: the
/// simulator or twilight-http-proxy) instead of Discord when given. A 401 is reported to the
/// caller rather than remembered by twilight, which would refuse every later request on its
/// own; the [`DiscordGate`] stops sending after one.
#[must_use]
pub fn client(token: String, api_proxy: Option<&str>) -> twilight_http::Client {
    let mut builder = twilight_http::Client::builder()
        .token(token)
        .remember_invalid_token(false)
        .timeout(std::time::Duration::from_secs(15));
    if let Some(proxy) = api_proxy {
        builder = builder.proxy(proxy.to_owned(), true);
    }
    builder.build()
}
