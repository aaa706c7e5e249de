//! Three nats-servers clustered on loopback, for tests of a replicated bus.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{NatsServer, TempDir, free_port, tail, wait_for_port};

/// One server of a [`NatsCluster`].
#[derive(Debug)]
struct Node {
    name: String,
    port: u16,
    cluster_port: u16,
    monitor_port: u16,
    child: Option<Child>,
}

/// Three nats-servers with JetStream clustered on loopback (`--cluster_name`, `--cluster`,
/// `--routes` to the two others), each with its own free client, cluster and monitoring ports,
/// store and log in one temporary directory; killed on drop. The binary is
/// [`NatsServer::binary`]'s.
#[derive(Debug)]
pub struct NatsCluster {
    binary: PathBuf,
    cluster_name: String,
    dir: TempDir,
    nodes: Vec<Node>,
}

/// Servers in a [`NatsCluster`].
pub const CLUSTER_SIZE: usize = 3;

impl NatsCluster {
    /// Starts three servers and waits until they listen and JetStream has a meta leader
    /// (every server reports JetStream healthy).
    ///
    /// # Panics
    /// When no nats-server binary is found, or the cluster is not ready within 60 s.
    #[must_use]
    pub fn start() -> Self {
        let binary = NatsServer::binary()
            .expect("nats-server is on PATH (or NATS_SERVER_BIN names it): see docs/operations.md#test-servers");
        let dir = TempDir::new("nats-cluster");
        let nodes = (0..CLUSTER_SIZE)
            .map(|i| Node {
                name: format!("n{i}"),
                port: free_port(),
                cluster_port: free_port(),
                monitor_port: free_port(),
                child: None,
            })
            .collect();
        let mut cluster = Self {
            binary,
            cluster_name: crate::unique("invitrack"),
            dir,
            nodes,
        };
        for i in 0..CLUSTER_SIZE {
            cluster.spawn(i);
        }
        for i in 0..CLUSTER_SIZE {
            cluster.wait_listening(i);
        }
        cluster.wait_ready(Duration::from_secs(60));
        cluster
    }

    /// Every server's client URL, separated by commas (what `NATS_URL` takes).
    #[must_use]
    pub fn url(&self) -> String {
        (0..self.nodes.len())
            .map(|i| self.node_url(i))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The client URL of server `i` alone.
    #[must_use]
    pub fn node_url(&self, i: usize) -> String {
        format!("nats://127.0.0.1:{}", self.nodes[i].port)
    }

    /// Server `i`'s name (`--server_name`): what JetStream names stream and meta leaders by.
    #[must_use]
    pub fn name(&self, i: usize) -> &str {
        &self.nodes[i].name
    }

    /// The index of the server called `name`.
    #[must_use]
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.nodes.iter().position(|n| n.name == name)
    }

    /// Server `i`'s monitoring port (`/varz`, `/jsz`, `/healthz`).
    #[must_use]
    pub fn monitor_port(&self, i: usize) -> u16 {
        self.nodes[i].monitor_port
    }

    #[must_use]
    pub fn log_path(&self, i: usize) -> PathBuf {
        self.dir.path().join(format!("{}.log", self.nodes[i].name))
    }

    /// The last lines of every server's log, for failure messages.
    #[must_use]
    pub fn logs(&self, lines: usize) -> String {
        (0..self.nodes.len())
            .map(|i| {
                format!(
                    "--- {}\n{}",
                    self.nodes[i].name,
                    tail(&self.log_path(i), lines)
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Whether server `i` is running (not killed).
    #[must_use]
    pub fn is_running(&self, i: usize) -> bool {
        self.nodes[i].child.is_some()
    }

    /// `kill -9` of server `i`: to clients and the other servers it looks like a crash.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.nodes[i].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts server `i` again on the same ports and store (after [`kill`](Self::kill), or
    /// kills it first), and waits until it listens and reports JetStream healthy (caught up
    /// with the cluster).
    ///
    /// # Panics
    /// When it does not come back within 60 s.
    pub fn restart(&mut self, i: usize) {
        self.kill(i);
        self.spawn(i);
        self.wait_listening(i);
        self.wait_healthy(i, Duration::from_secs(60));
    }

    /// Waits until every running server reports JetStream healthy: the meta leader is elected
    /// and each server is current with it.
    ///
    /// # Panics
    /// When that takes longer than `within`.
    pub fn wait_ready(&self, within: Duration) {
        for i in 0..self.nodes.len() {
            if self.is_running(i) {
                self.wait_healthy(i, within);
            }
        }
    }

    /// Waits until server `i` answers `/healthz?js-enabled-only=true` and then `/healthz`
    /// with 200: JetStream is on, it has a meta leader and is current.
    ///
    /// # Panics
    /// When that takes longer than `within`.
    pub fn wait_healthy(&self, i: usize, within: Duration) {
        let deadline = Instant::now() + within;
        let port = self.nodes[i].monitor_port;
        loop {
            let last = match http_get(port, "/healthz") {
                Ok((200, _)) => return,
                Ok((status, body)) => format!("{status} {body}"),
                Err(error) => error.to_string(),
            };
            assert!(
                Instant::now() < deadline,
                "nats-server {} not healthy within {within:?}: {last}\n{}",
                self.nodes[i].name,
                self.logs(20)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// A page of server `i`'s monitoring port (`/jsz?leader-only=true`, `/varz`...): its
    /// status and body.
    ///
    /// # Errors
    /// When the server does not answer.
    pub fn monitor(&self, i: usize, path: &str) -> std::io::Result<(u16, String)> {
        http_get(self.nodes[i].monitor_port, path)
    }

    /// The name of the JetStream meta leader as server `i` sees it (from `/jsz`).
    #[must_use]
    pub fn meta_leader(&self, i: usize) -> Option<String> {
        let (status, body) = self.monitor(i, "/jsz").ok()?;
        if status != 200 {
            return None;
        }
        // "meta_cluster": {"name": ..., "leader": "n1", ...}: no JSON parser in this crate.
        let meta = &body[body.find("\"meta_cluster\"")?..];
        let after = &meta[meta.find("\"leader\"")? + "\"leader\"".len()..];
        let start = after.find('"')? + 1;
        let end = start + after[start..].find('"')?;
        Some(after[start..end].to_owned())
    }

    fn spawn(&mut self, i: usize) {
        let node = &self.nodes[i];
        let routes = self
            .nodes
            .iter()
            .filter(|other| other.name != node.name)
            .map(|other| format!("nats://127.0.0.1:{}", other.cluster_port))
            .collect::<Vec<_>>()
            .join(",");
        let store = self.dir.path().join(&node.name);
        let child = Command::new(&self.binary)
            .args(["-a", "127.0.0.1", "-p", &node.port.to_string()])
            .args(["-m", &node.monitor_port.to_string()])
            .args(["--server_name", &node.name])
            .args(["--cluster_name", &self.cluster_name])
            .args([
                "--cluster",
                &format!("nats://127.0.0.1:{}", node.cluster_port),
            ])
            .args(["--routes", &routes])
            .args(["-js", "-sd"])
            .arg(&store)
            .arg("-l")
            .arg(self.log_path(i))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{} starts: {e}", self.binary.display()));
        self.nodes[i].child = Some(child);
    }

    fn wait_listening(&self, i: usize) {
        let node = &self.nodes[i];
        for port in [node.port, node.monitor_port] {
            assert!(
                wait_for_port(port, Duration::from_secs(20)),
                "nats-server {} does not listen on {port}: {}",
                node.name,
                tail(&self.log_path(i), 20)
            );
        }
    }
}

impl Drop for NatsCluster {
    fn drop(&mut self) {
        for i in 0..self.nodes.len() {
            self.kill(i);
        }
    }
}

/// A plain HTTP/1.0 GET on a loopback port: status and body.
fn http_get(port: u16, path: &str) -> std::io::Result<(u16, String)> {
    use std::io::{Read as _, Write as _};
    let address = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let mut stream = std::net::TcpStream::connect_timeout(&address, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("not an HTTP answer: {response:?}")))?;
    let body = response
        .split_once("\r\n\r\n")
        .map_or(String::new(), |(_, body)| body.to_owned());
    Ok((status, body))
}
