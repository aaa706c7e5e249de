//! The gate's figures in Prometheus' text format, under a service's prefix: the same families
//! for every service that calls Discord.

use std::fmt::Write as _;
use std::sync::atomic::Ordering;

use crate::DiscordGate;

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// Writes `{prefix}_discord_*`: requests sent, error answers by status (the gate's 401, 403 and
/// 429, then `more_errors` the service counts itself), rejections in the window, the ceiling,
/// requests halted by it, and whether the token was refused.
pub fn write_gate_metrics(
    out: &mut String,
    prefix: &str,
    gate: &DiscordGate,
    more_errors: &[(&str, u64)],
) {
    let stats = gate.stats();
    let load = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed);
    let name = format!("{prefix}_discord_requests_total");
    family(
        out,
        &name,
        "counter",
        "Requests sent to Discord's REST API (every route, retries included).",
    );
    let _ = writeln!(out, "{name} {}", load(&stats.sent));
    let name = format!("{prefix}_discord_errors_total");
    family(
        out,
        &name,
        "counter",
        "Error answers from Discord REST, by status.",
    );
    let gate_errors = [
        ("401", load(&stats.unauthorized)),
        ("403", load(&stats.forbidden)),
        ("429", load(&stats.rate_limited)),
    ];
    for (status, value) in gate_errors.iter().chain(more_errors) {
        let _ = writeln!(out, "{name}{{status=\"{status}\"}} {value}");
    }
    let plain = [
        (
            "discord_rejected_last_10m",
            "gauge",
            "401, 403 and 429 answers in the last 10 minutes (Discord bans the IP address at 10,000).",
            gate.rejected_in_window() as u64,
        ),
        (
            "discord_rejection_ceiling",
            "gauge",
            "DISCORD_REJECTION_CEILING: past it nothing is sent until older rejections age out.",
            u64::from(gate.ceiling()),
        ),
        (
            "discord_halted_total",
            "counter",
            "Requests not sent because the rejections of the last 10 minutes reached the ceiling.",
            load(&stats.halted),
        ),
        (
            "discord_token_invalid",
            "gauge",
            "1 once Discord refused the token (401): nothing more is sent.",
            u64::from(gate.token_invalid()),
        ),
    ];
    for (suffix, kind, help, value) in plain {
        let name = format!("{prefix}_{suffix}");
        family(out, &name, kind, help);
        let _ = writeln!(out, "{name} {value}");
    }
}
