//! Distributed stampede: 4 separate OS processes, 50 tasks each, all asking
//! get-or-compute for the same cold key with a compute that takes 200 ms. The compute
//! runs exactly once in total (counted in a table of the test database), and every
//! caller gets the value. With stampede protection off, the same run computes more
//! than once: the count is what the lock changes. The parent test re-runs this test
//! binary as the child processes (`conformance_tests::scenarios::stampede_*`).

use crate::common;
use cache_core::Cache;
use conformance_tests::scenarios::{stampede_child, stampede_child_args, stampede_parent};
use std::sync::Arc;
use std::time::Duration;

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
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS stampede_counts (ns text PRIMARY KEY, n int NOT NULL)",
        )
        .await
        .unwrap();
    let url = common::url().await;
    stampede_parent(
        "stampede::stampede_child_process",
        &format!("{namespace},{protection}"),
        &[("CACHE_TEST_POSTGRES_URL", &url)],
    )
    .await;
    client
        .query_opt("SELECT n FROM stampede_counts WHERE ns = $1", &[&namespace])
        .await
        .unwrap()
        .map_or(0, |r| i64::from(r.get::<_, i32>(0)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compute_runs_once_across_four_processes() {
    conformance_tests::scenarios::assert_lock_decides(
        |on| async move { computes(on).await as u64 },
    )
    .await;
}

/// One child process; does nothing when run as an ordinary test.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stampede_child_process() {
    let Some(args) = stampede_child_args() else {
        return;
    };
    let (namespace, protection) = args.split_once(',').unwrap();
    // Fail-open warnings (a lock call that timed out, say) go to stderr, which the
    // parent prints.
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter("warn")
        .try_init();
    // The lock is under test, not fail-open: a generous per-call timeout.
    let backend = common::builder(namespace)
        .await
        .timeout(Duration::from_secs(5))
        .build()
        .await
        .unwrap();
    let cache = Cache::builder(backend)
        .stampede_protection(protection.parse().unwrap())
        .store_timeout(Duration::from_secs(5))
        .build();
    // Counted with an atomic upsert on a connection of its own.
    let counter = Arc::new(raw().await);
    let namespace = namespace.to_owned();
    stampede_child(&cache, move || {
        let (counter, namespace) = (counter.clone(), namespace.clone());
        async move {
            counter
                .execute(
                    "INSERT INTO stampede_counts (ns, n) VALUES ($1, 1) \
                     ON CONFLICT (ns) DO UPDATE SET n = stampede_counts.n + 1",
                    &[&namespace],
                )
                .await
                .unwrap();
        }
    })
    .await;
}
