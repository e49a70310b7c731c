//! Stop PostgreSQL (`pg_ctl -m immediate`, a crash) during a loop of get-or-compute
//! calls and start it again: every call returns the computed value while it is down
//! (fail-open, bounded by the per-call timeout), plain `get` returns a transient error
//! within the timeout, and caching resumes within one second of the restart. The test
//! runs its own server (initdb in a temporary folder) so it disturbs no one.

use crate::common;
use cache_core::Cache;
use cache_postgres::PostgresBuilder;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

struct OwnPostgres {
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
    fn init() -> Self {
        let bin = PathBuf::from(common::env("CACHE_TEST_POSTGRES_BIN_DIR"));
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_crashed_and_restarted_during_get_or_compute() {
    let server = OwnPostgres::init();
    server.start();
    let timeout = Duration::from_millis(300);
    let backend = PostgresBuilder::new(format!(
        "postgres://postgres@127.0.0.1:{}/postgres",
        server.port
    ))
    .namespace("fault")
    .timeout(timeout)
    .connect_timeout(timeout)
    .build()
    .await
    .unwrap();
    let cache = Cache::builder(backend).store_timeout(timeout).build();
    let report = conformance_tests::scenarios::fault_cycle(
        &cache,
        timeout,
        timeout * 3,
        || server.crash(),
        || server.start(),
    )
    .await;
    eprintln!("{report:?}");
}
