//! PostgreSQL for tests: a database of the test's own on the shared server, or a whole cluster
//! of its own for tests that crash it.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use diesel_async::{AsyncConnection as _, AsyncPgConnection, RunQueryDsl as _};

use crate::{database_server_url, free_port, tail};

/// A database name of the test's own on the shared server, dropped (with `FORCE`) on drop.
/// The code under test creates and migrates it as the services do
/// (`invitrack_storage::prepare_database`).
#[derive(Debug)]
pub struct TestDatabase {
    server: String,
    name: String,
}

impl TestDatabase {
    /// A fresh name, `prefix` first (`[a-z0-9_]`), on `DATABASE_URL`'s server.
    #[must_use]
    pub fn new(prefix: &str) -> Self {
        Self::on(&database_server_url(), prefix)
    }

    /// A fresh name on the given server (`postgres://user@host:port`).
    #[must_use]
    pub fn on(server: &str, prefix: &str) -> Self {
        Self {
            server: server.to_owned(),
            name: crate::unique(prefix),
        }
    }

    #[must_use]
    pub fn url(&self) -> String {
        format!("{}/{}", self.server, self.name)
    }

    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let admin = format!("{}/postgres", self.server);
        let drop = format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.name);
        // Drop often runs inside the test's runtime, which cannot be blocked on: a thread with
        // a runtime of its own does it.
        let _ = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(async {
                if let Ok(mut conn) = AsyncPgConnection::establish(&admin).await {
                    let _ = diesel::sql_query(drop).execute(&mut conn).await;
                }
            });
        })
        .join();
    }
}

/// A PostgreSQL cluster of the test's own (initdb in `dir`, a free port, fsync off), so the test
/// can crash and restart it without disturbing anybody else. Stopped on drop.
#[derive(Debug)]
pub struct PostgresCluster {
    bin_dir: PathBuf,
    data: PathBuf,
    socket_dir: PathBuf,
    log: PathBuf,
    port: u16,
    as_postgres_user: bool,
}

impl PostgresCluster {
    /// PostgreSQL's server binaries: `PG_BIN_DIR`, else `pg_config --bindir`; `None` when
    /// `initdb` is not there.
    #[must_use]
    pub fn bin_dir() -> Option<PathBuf> {
        let dir = std::env::var_os("PG_BIN_DIR")
            .map(PathBuf::from)
            .or_else(|| {
                let output = Command::new("pg_config").arg("--bindir").output().ok()?;
                output
                    .status
                    .success()
                    .then(|| PathBuf::from(String::from_utf8_lossy(&output.stdout).trim()))
            })?;
        dir.join("initdb").is_file().then_some(dir)
    }

    /// initdb and start.
    ///
    /// # Panics
    /// When the binaries are missing or the cluster does not start.
    #[must_use]
    pub fn start(dir: &Path) -> Self {
        let bin_dir = Self::bin_dir()
            .expect("PostgreSQL's initdb (PG_BIN_DIR or pg_config --bindir): see docs/operations.md#test-servers");
        let root = dir.join("pg");
        std::fs::create_dir_all(&root).expect("cluster directory");
        // initdb refuses to run as root: the cluster runs as the `postgres` user then.
        let as_postgres_user = Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
        if as_postgres_user {
            let status = Command::new("chmod").arg("755").arg(dir).status();
            assert!(status.is_ok_and(|s| s.success()), "chmod {}", dir.display());
            let status = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&root)
                .status();
            assert!(
                status.is_ok_and(|s| s.success()),
                "chown {}",
                root.display()
            );
        }
        let cluster = Self {
            bin_dir,
            data: root.join("data"),
            socket_dir: root.clone(),
            log: root.join("postgres.log"),
            port: free_port(),
            as_postgres_user,
        };
        let output = cluster
            .command("initdb")
            .arg("-D")
            .arg(&cluster.data)
            .args(["-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync"])
            .output()
            .expect("initdb runs");
        assert!(
            output.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        cluster.run_server();
        cluster
    }

    /// `postgres://postgres@127.0.0.1:<port>`, to put a database name after.
    #[must_use]
    pub fn server_url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}", self.port)
    }

    #[must_use]
    pub fn url(&self, database: &str) -> String {
        format!("{}/{database}", self.server_url())
    }

    /// Stops the server as a crash would (no shutdown checkpoint: recovery on start).
    pub fn stop_immediately(&self) {
        let _ = self
            .command("pg_ctl")
            .arg("-D")
            .arg(&self.data)
            .args(["-m", "immediate", "-w", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }

    /// A crash and a start.
    pub fn crash_restart(&self) {
        self.stop_immediately();
        self.run_server();
    }

    fn command(&self, program: &str) -> Command {
        let path = self.bin_dir.join(program);
        if self.as_postgres_user {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(path);
            command
        } else {
            Command::new(path)
        }
    }

    fn run_server(&self) {
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -k {} -c fsync=off -c synchronous_commit=off \
             -c full_page_writes=off -c max_connections=200",
            self.port,
            self.socket_dir.display()
        );
        let output = self
            .command("pg_ctl")
            .arg("-D")
            .arg(&self.data)
            .arg("-l")
            .arg(&self.log)
            .args(["-o", &options, "-w", "-t", "60", "start"])
            .stdout(Stdio::null())
            .output()
            .expect("pg_ctl start runs");
        assert!(
            output.status.success(),
            "pg_ctl start: {}\n{}",
            String::from_utf8_lossy(&output.stderr),
            tail(&self.log, 20)
        );
    }
}

impl Drop for PostgresCluster {
    fn drop(&mut self) {
        self.stop_immediately();
    }
}
