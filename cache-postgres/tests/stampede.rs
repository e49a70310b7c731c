//! Distributed stampede: 4 separate OS processes, 50 tasks each, all asking
//! get-or-compute for the same cold key with a compute that takes 200 ms. The compute
//! runs exactly once in total (counted in a table of the test database), and every
//! caller gets the value. With stampede protection off, the same run computes more
//! than once: the count is what the lock changes.
//!
//! The parent test re-runs this test binary as the child processes.

mod common;
use cache_core::Cache;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::process::Command;

const PROCESSES: usize = 4;
const TASKS: usize = 50;
const CHILD_ENV: &str = "CACHE_STAMPEDE_CHILD";

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

async fn raw() -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(&common::url().await, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    client
}

/// Run the children with protection on or off; the number of computes counted.
async fn computes(protection: bool) -> i64 {
    let namespace = conformance_tests::random_namespace();
    let client = raw().await;
    client
        // Two tests create it at once: serialise (a bare IF NOT EXISTS race fails).
        .batch_execute(
            "BEGIN; SELECT pg_advisory_xact_lock(7340033); \
             CREATE TABLE IF NOT EXISTS stampede_counts (ns text PRIMARY KEY, n int NOT NULL); COMMIT;",
        )
        .await
        .unwrap();
    let start_at = unix_ms() + 2000; // every child starts its 50 calls at this instant
    let exe = std::env::current_exe().unwrap();
    let url = common::url().await;
    let children: Vec<_> = (0..PROCESSES)
        .map(|_| {
            Command::new(&exe)
                .args([
                    "--exact",
                    "stampede_child",
                    "--nocapture",
                    "--test-threads",
                    "1",
                ])
                .env(CHILD_ENV, format!("{namespace},{start_at},{protection}"))
                .env("CACHE_TEST_POSTGRES_URL", &url)
                .output()
        })
        .collect();
    let mut total = 0;
    for child in children {
        let out = child.await.expect("child process runs");
        let stdout = String::from_utf8_lossy(&out.stdout);
        eprint!("{}", String::from_utf8_lossy(&out.stderr));
        assert!(
            out.status.success(),
            "child failed:\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        total += stdout
            .lines()
            .find_map(|l| l.split_once("STAMPEDE-OK ").map(|(_, n)| n))
            .unwrap_or_else(|| panic!("child printed no result:\n{stdout}"))
            .trim()
            .parse::<usize>()
            .unwrap();
    }
    assert_eq!(total, PROCESSES * TASKS, "every caller got the value");
    client
        .query_opt("SELECT n FROM stampede_counts WHERE ns = $1", &[&namespace])
        .await
        .unwrap()
        .map_or(0, |r| i64::from(r.get::<_, i32>(0)))
}

/// Both runs in one test, one after the other: eight debug-build processes at once
/// on a small machine would push calls past the fail-open timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compute_runs_once_across_four_processes() {
    assert_eq!(
        computes(true).await,
        1,
        "the compute ran exactly once across {PROCESSES} processes"
    );
    let n = computes(false).await;
    assert!(
        n > 1,
        "without the lock {n} compute(s): the test could not tell"
    );
}

/// One child process: 50 concurrent get-or-compute calls on the shared key. Does
/// nothing when run as an ordinary test.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stampede_child() {
    let Ok(arg) = std::env::var(CHILD_ENV) else {
        return;
    };
    // Fail-open warnings (a lock call that timed out, say) go to stderr, which the
    // parent prints when the count is wrong.
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter("warn")
        .try_init();
    let mut parts = arg.split(',');
    let namespace = parts.next().unwrap().to_owned();
    let start_at: u64 = parts.next().unwrap().parse().unwrap();
    let protection: bool = parts.next().unwrap().parse().unwrap();
    // The lock is under test, not fail-open: a generous per-call timeout.
    let backend = common::builder(&namespace)
        .await
        .timeout(Duration::from_secs(5))
        .build()
        .await
        .unwrap();
    let cache = Cache::builder(backend)
        .stampede_protection(protection)
        .timeout(Duration::from_secs(5))
        .build();
    // Counted with an atomic upsert on a connection of its own, so two overlapping
    // computes could never be counted as one.
    let counter = std::sync::Arc::new(raw().await);
    tokio::time::sleep(Duration::from_millis(start_at.saturating_sub(unix_ms()))).await;
    let tasks: Vec<_> = (0..TASKS)
        .map(|_| {
            let (cache, counter, namespace) = (cache.clone(), counter.clone(), namespace.clone());
            tokio::spawn(async move {
                cache
                    .get_or_compute("cold-key", || async move {
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        counter
                            .execute(
                                "INSERT INTO stampede_counts (ns, n) VALUES ($1, 1) \
                                 ON CONFLICT (ns) DO UPDATE SET n = stampede_counts.n + 1",
                                &[&namespace],
                            )
                            .await
                            .unwrap();
                        Ok::<_, std::io::Error>("the value".to_string())
                    })
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut ok = 0;
    for t in tasks {
        if t.await.unwrap() == "the value" {
            ok += 1;
        }
    }
    println!("STAMPEDE-OK {ok}");
}
