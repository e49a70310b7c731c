//! Shared by the PostgreSQL integration tests: the server comes from `scripts/servers.sh`.

use cache_core::{async_trait, CacheBackend};
use cache_postgres::{PostgresBackend, PostgresBuilder};
use conformance_tests::{servers, Harness};
pub use servers::env;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

/// A table name made of quotes, `;`, `%`, `_` and a backslash: quoted, never pasted.
pub const HOSTILE_TABLE: &str = "cache\"; DROP TABLE x; --%_\\";

pub async fn url() -> String {
    servers::address(&servers::POSTGRES).await
}

pub async fn builder(namespace: &str) -> PostgresBuilder {
    PostgresBuilder::new(url().await)
        .namespace(namespace)
        .max_value_size(4 * 1024 * 1024)
        .pool_size(8)
}

pub async fn backend(namespace: &str) -> PostgresBackend {
    builder(namespace)
        .await
        .build()
        .await
        .unwrap_or_else(|e| panic!("cannot connect to the test PostgreSQL ({e}); start it with `bash scripts/servers.sh start postgres`"))
}

/// One pool per test; every namespace asked for shares it, as processes share a table.
pub struct PostgresHarness {
    table: Option<&'static str>,
    store: tokio::sync::OnceCell<PostgresBackend>,
}

impl PostgresHarness {
    pub fn new() -> Self {
        PostgresHarness {
            table: None,
            store: tokio::sync::OnceCell::new(),
        }
    }

    /// A logged table with a hostile name.
    pub fn hostile_logged_table() -> Self {
        PostgresHarness {
            table: Some(HOSTILE_TABLE),
            store: tokio::sync::OnceCell::new(),
        }
    }
}

#[async_trait]
impl Harness for PostgresHarness {
    async fn backend(&self, namespace: &str) -> Arc<dyn CacheBackend> {
        let store = self
            .store
            .get_or_init(|| async {
                let mut b = builder("harness").await;
                if let Some(t) = self.table {
                    b = b.table(t).unlogged(false);
                }
                b.build().await.unwrap_or_else(|e| {
                    panic!("cannot connect to the test PostgreSQL ({e}); start it with `bash scripts/servers.sh start postgres`")
                })
            })
            .await;
        Arc::new(store.with_namespace(namespace).expect("valid namespace"))
    }
}

/// A PostgreSQL of a test's own (initdb in a temporary folder, `CACHE_TEST_POSTGRES_BIN_DIR`),
/// so that stopping it disturbs no one; stopped and removed when dropped.
pub struct OwnPostgres {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
}

/// Run a server binary, as the `postgres` user when we are root (it refuses root).
fn pg(bin: &Path, tool: &str, args: &[&str]) -> std::process::Output {
    let exe = bin.join(tool);
    let mut cmd = if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(exe);
        c
    } else {
        Command::new(exe)
    };
    cmd.args(args).output().expect("a PostgreSQL tool runs")
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

impl OwnPostgres {
    /// Made (initdb) and started on a free port.
    pub fn start_new() -> Self {
        let server = Self::init();
        server.start();
        server
    }

    fn init() -> Self {
        let bin = PathBuf::from(env("CACHE_TEST_POSTGRES_BIN_DIR"));
        let dir = std::env::temp_dir().join(format!(
            "cache-pg-fault-{}",
            conformance_tests::random_namespace()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        if is_root() {
            Command::new("chown")
                .args(["postgres"])
                .arg(&dir)
                .status()
                .unwrap();
        }
        let data = dir.join("data");
        let out = pg(
            &bin,
            "initdb",
            &[
                "-D",
                data.to_str().unwrap(),
                "-U",
                "postgres",
                "-A",
                "trust",
            ],
        );
        assert!(
            out.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        OwnPostgres { bin, dir, port }
    }

    fn start(&self) {
        let opts = format!(
            "-h 127.0.0.1 -p {} -k {} -c fsync=off",
            self.port,
            self.dir.display()
        );
        let data = self.dir.join("data");
        let log = self.dir.join("log");
        let out = pg(
            &self.bin,
            "pg_ctl",
            &[
                "-D",
                data.to_str().unwrap(),
                "-l",
                log.to_str().unwrap(),
                "-w",
                "-o",
                &opts,
                "start",
            ],
        );
        assert!(
            out.status.success(),
            "pg_ctl start: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Stop it as a crash would (`pg_ctl -m immediate`).
    fn crash(&self) {
        let data = self.dir.join("data");
        pg(
            &self.bin,
            "pg_ctl",
            &[
                "-D",
                data.to_str().unwrap(),
                "-m",
                "immediate",
                "-w",
                "stop",
            ],
        );
    }
}

impl Drop for OwnPostgres {
    fn drop(&mut self) {
        self.crash();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl servers::OwnServer for OwnPostgres {
    fn port(&self) -> u16 {
        self.port
    }

    fn kill(&mut self) {
        self.crash();
    }

    fn restart(&mut self) {
        self.start();
    }
}
