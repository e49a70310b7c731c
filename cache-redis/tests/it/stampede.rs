//! Distributed stampede: 4 separate OS processes, 50 tasks each, all asking
//! get-or-compute for the same cold key with a compute that takes 200 ms. The compute
//! runs exactly once in total (counted with INCR in Redis), and every caller gets the
//! value. The parent test re-runs this test binary as the child processes
//! (`conformance_tests::scenarios::stampede_*`).

use crate::common;
use cache_core::Cache;
use conformance_tests::scenarios::{stampede_child, stampede_child_args, stampede_parent};
use conformance_tests::servers::{address, REDIS};

fn counter_key(namespace: &str) -> String {
    format!("stampede-test:{namespace}:computes")
}

async fn raw() -> redis::aio::MultiplexedConnection {
    redis::Client::open(address(&REDIS).await)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compute_runs_once_across_four_processes() {
    let namespace = conformance_tests::random_namespace();
    // The children use the parent's server, wherever it came from.
    let url = address(&REDIS).await;
    stampede_parent(
        "stampede::stampede_child_process",
        &namespace,
        &[("CACHE_TEST_REDIS_URL", &url)],
    )
    .await;
    let computes: Option<u64> = redis::cmd("GET")
        .arg(counter_key(&namespace))
        .query_async(&mut raw().await)
        .await
        .unwrap();
    assert_eq!(
        computes,
        Some(1),
        "the compute ran exactly once across the processes"
    );
}

/// One child process; does nothing when run as an ordinary test.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stampede_child_process() {
    let Some(namespace) = stampede_child_args() else {
        return;
    };
    let cache = Cache::new(common::backend(&common::Target::Single, &namespace).await);
    // Counted with an atomic INCR on a raw connection, so two overlapping computes
    // could never be counted as one.
    let counter = raw().await;
    let key = counter_key(&namespace);
    stampede_child(&cache, move || {
        let (mut counter, key) = (counter.clone(), key.clone());
        async move {
            let _: u64 = redis::cmd("INCR")
                .arg(&key)
                .query_async(&mut counter)
                .await
                .unwrap();
        }
    })
    .await;
}
