//! `invitrack healthcheck <url>`: what a container's health check runs, since the image has no
//! shell tools (no curl, and its `/bin/sh` cannot open TCP connections). Exit status 0 when the
//! URL answers 2xx within the timeout, 1 otherwise, with the reason on stderr.

use std::time::Duration;

#[derive(Debug, clap::Args)]
pub struct HealthcheckArgs {
    /// The URL to check, e.g. `http://127.0.0.1:9102/health/ready`.
    url: reqwest::Url,
    /// Seconds to wait for the answer.
    #[arg(long, default_value_t = 5)]
    timeout_secs: u64,
}

/// Exit status: 0 healthy, 1 not.
pub async fn run(args: HealthcheckArgs) -> u8 {
    match check(&args.url, Duration::from_secs(args.timeout_secs)).await {
        Ok(()) => 0,
        Err(reason) => {
            eprintln!("{} is not healthy: {reason}", args.url);
            1
        }
    }
}

async fn check(url: &reqwest::Url, timeout: Duration) -> Result<(), String> {
    let client = reqwest::Client::builder()
        .timeout(timeout)
        .build()
        .map_err(|e| e.to_string())?;
    let response = client
        .get(url.clone())
        .send()
        .await
        .map_err(|e| invitrack_telemetry::error_chain(&e))?;
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    let body = response.text().await.unwrap_or_default();
    Err(format!("{status}: {}", body.trim()))
}
