//! A nats-server of the test's own, for tests that stop and start it or must not share one.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::{TempDir, free_port, wait_for_port};

/// A nats-server with JetStream on a free loopback port, its store and log in a temporary
/// directory; killed on drop.
#[derive(Debug)]
pub struct NatsServer {
    port: u16,
    binary: PathBuf,
    dir: TempDir,
    child: Option<Child>,
}

impl NatsServer {
    /// The nats-server binary: `NATS_SERVER_BIN`, else the first `nats-server` on `PATH` (or in
    /// `/usr/sbin`, where Debian puts it and which is not on every user's `PATH`).
    #[must_use]
    pub fn binary() -> Option<PathBuf> {
        if let Some(path) = std::env::var_os("NATS_SERVER_BIN") {
            return Some(PathBuf::from(path));
        }
        let path = std::env::var_os("PATH").unwrap_or_default();
        std::env::split_paths(&path)
            .chain([PathBuf::from("/usr/sbin")])
            .map(|dir| dir.join("nats-server"))
            .find(|candidate| candidate.is_file())
    }

    /// Starts a server and waits until it listens.
    ///
    /// # Panics
    /// When no nats-server binary is found or it does not listen within 20 s.
    #[must_use]
    pub fn start() -> Self {
        let binary = Self::binary()
            .expect("nats-server is on PATH (or NATS_SERVER_BIN names it): see docs/operations.md#test-servers");
        let mut server = Self {
            port: free_port(),
            binary,
            dir: TempDir::new("nats"),
            child: None,
        };
        server.resume();
        server
    }

    #[must_use]
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    #[must_use]
    pub fn port(&self) -> u16 {
        self.port
    }

    #[must_use]
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("nats.log")
    }

    /// Starts the server again on the same port and store (after `kill`).
    ///
    /// # Panics
    /// When it cannot be started or does not listen within 20 s.
    pub fn resume(&mut self) {
        let store = self.dir.path().join("store");
        let child = Command::new(&self.binary)
            .args([
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-js",
                "-sd",
            ])
            .arg(&store)
            .arg("-l")
            .arg(self.log_path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{} starts: {e}", self.binary.display()));
        self.child = Some(child);
        assert!(
            wait_for_port(self.port, Duration::from_secs(20)),
            "nats-server does not listen on {}: {}",
            self.port,
            tail(&self.log_path(), 20)
        );
    }

    /// `kill -9`: to clients it looks like a crash or a cut network.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// `kill -9`, then start again on the same port and store.
    pub fn restart(&mut self) {
        self.kill();
        self.resume();
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The last `lines` lines of a log file, for failure messages.
#[must_use]
pub fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
