//! Distributed stampede: 4 separate OS processes, 50 tasks each, all asking
//! get-or-compute for the same cold key with a compute that takes 200 ms. The compute
//! runs exactly once in total (counted in Redis), and every caller gets the value.
//!
//! The parent test re-runs this test binary as the child processes.

mod common;
use cache_core::Cache;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::process::Command;

const PROCESSES: usize = 4;
const TASKS: usize = 50;
const CHILD_ENV: &str = "CACHE_STAMPEDE_CHILD";

fn counter_key(namespace: &str) -> String {
    format!("stampede-test:{namespace}:computes")
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compute_runs_once_across_four_processes() {
    let namespace = conformance_tests::random_namespace();
    let start_at = unix_ms() + 1500; // every child starts its 50 calls at this instant
    let exe = std::env::current_exe().unwrap();
    // The children use the parent's server, wherever it came from.
    let url = conformance_tests::servers::address(&conformance_tests::servers::REDIS).await;
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
                .env(CHILD_ENV, format!("{namespace},{start_at}"))
                .env("CACHE_TEST_REDIS_URL", &url)
                .output()
        })
        .collect();
    let mut total = 0;
    for child in children {
        let out = child.await.expect("child process runs");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "child failed:\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let got: usize = stdout
            .lines()
            .find_map(|l| l.split_once("STAMPEDE-OK ").map(|(_, n)| n))
            .unwrap_or_else(|| panic!("child printed no result:\n{stdout}"))
            .trim()
            .parse()
            .unwrap();
        total += got;
    }
    assert_eq!(total, PROCESSES * TASKS, "every caller got the value");
    let mut raw = redis::Client::open(
        conformance_tests::servers::address(&conformance_tests::servers::REDIS).await,
    )
    .unwrap()
    .get_multiplexed_async_connection()
    .await
    .unwrap();
    let computes: Option<u64> = redis::cmd("GET")
        .arg(counter_key(&namespace))
        .query_async(&mut raw)
        .await
        .unwrap();
    assert_eq!(
        computes,
        Some(1),
        "the compute ran exactly once across {PROCESSES} processes"
    );
}

/// One child process: 50 concurrent get-or-compute calls on the shared key. Does
/// nothing when run as an ordinary test.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stampede_child() {
    let Ok(arg) = std::env::var(CHILD_ENV) else {
        return;
    };
    let (namespace, start_at) = arg.split_once(',').unwrap();
    let start_at: u64 = start_at.parse().unwrap();
    let cache = Cache::new(common::backend(&common::Target::Single, namespace).await);
    // Counted with an atomic INCR on a raw connection, so two overlapping computes
    // could never be counted as one.
    let counter = redis::Client::open(
        conformance_tests::servers::address(&conformance_tests::servers::REDIS).await,
    )
    .unwrap()
    .get_multiplexed_async_connection()
    .await
    .unwrap();
    let counter_key = counter_key(namespace);
    tokio::time::sleep(Duration::from_millis(start_at.saturating_sub(unix_ms()))).await;
    let tasks: Vec<_> = (0..TASKS)
        .map(|_| {
            let (cache, mut counter, counter_key) =
                (cache.clone(), counter.clone(), counter_key.clone());
            tokio::spawn(async move {
                cache
                    .get_or_compute("cold-key", || async move {
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        let _: u64 = redis::cmd("INCR")
                            .arg(&counter_key)
                            .query_async(&mut counter)
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
