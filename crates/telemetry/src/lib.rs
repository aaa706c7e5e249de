//! What every invitrack binary sets up the same way: logging, the shutdown signal, secrets read
//! from files, and the operations endpoint (metrics and health).

mod backoff;
mod ops;
pub mod secrets;

pub use backoff::backoff;
pub use ops::{NotReady, OpsEndpoint, Readiness};

use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

/// Logs to stderr, filtered by `RUST_LOG` (default `info`).
pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // A second init (tests, the demo) keeps the first subscriber.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .try_init();
}

/// A token cancelled on Ctrl-C or SIGTERM.
#[must_use]
pub fn shutdown_on_ctrl_c() -> CancellationToken {
    let token = CancellationToken::new();
    let trigger = token.clone();
    tokio::spawn(async move {
        #[cfg(unix)]
        {
            let mut term =
                match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                    Ok(term) => term,
                    Err(_) => {
                        let _ = tokio::signal::ctrl_c().await;
                        trigger.cancel();
                        return;
                    }
                };
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("shutting down");
        trigger.cancel();
    });
    token
}

/// An error and its sources, `: `-separated, for text that must carry the whole chain (a dead
/// letter's reason, a webhook delivery's last error): many errors say little alone (reqwest's
/// "error sending request"). Logs record the error as a field and get the chain from tracing.
#[must_use]
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The command line of `P`, with secrets read from `NAME_FILE` files (see [`secrets`]); on a
/// usage error or an unreadable secret, prints why and exits with status 2, as clap does.
#[must_use]
pub fn parse_args<P: clap::Parser>() -> P {
    let command = match secrets::with_secret_files(P::command()) {
        Ok(command) => command,
        Err(error) => {
            eprintln!("error: {error}");
            std::process::exit(2);
        }
    };
    let matches = command.get_matches();
    P::from_arg_matches(&matches).unwrap_or_else(|error| error.exit())
}
