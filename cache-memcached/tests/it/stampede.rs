//! Distributed stampede: 4 separate OS processes, 50 tasks each, all asking
//! get-or-compute for the same cold key with a compute that takes 200 ms. The compute
//! runs exactly once in total (counted on memcached with an auto-creating increment),
//! and every caller gets the value. With stampede protection off, the same run
//! computes more than once. The parent test re-runs this test binary as the children
//! (`conformance_tests::scenarios::stampede_*`).

use crate::common;
use async_memcached::MetaProtocol;
use cache_core::Cache;
use conformance_tests::scenarios::{stampede_child, stampede_child_args, stampede_parent};
use std::sync::Arc;
use std::time::Duration;

fn counter_key(namespace: &str) -> String {
    format!("stampede-count:{namespace}")
}

/// Run the children with protection on or off; the number of computes counted.
async fn computes(protection: bool) -> u64 {
    let namespace = conformance_tests::random_namespace();
    let servers = common::env("CACHE_TEST_MEMCACHED_SERVERS");
    stampede_parent(
        "stampede::stampede_child_process",
        &format!("{namespace},{protection}"),
        &[("CACHE_TEST_MEMCACHED_SERVERS", &servers)],
    )
    .await;
    let mut raw = common::raw(&common::url().await).await;
    raw.meta_get(counter_key(&namespace), false, None, Some(&["v"]))
        .await
        .unwrap()
        .and_then(|v| v.data)
        .map_or(0, |d| String::from_utf8(d).unwrap().trim().parse().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compute_runs_once_across_four_processes() {
    conformance_tests::scenarios::assert_lock_decides(|on| async move { computes(on).await }).await;
}

/// One child process; does nothing when run as an ordinary test.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stampede_child_process() {
    let Some(args) = stampede_child_args() else {
        return;
    };
    let (namespace, protection) = args.split_once(',').unwrap();
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter("warn")
        .try_init();
    // The lock is under test, not fail-open: a generous per-call timeout. All three
    // servers: the lock's key lives on one of them, chosen by the ring.
    let backend = common::builder(namespace)
        .await
        .servers(common::servers())
        .timeout(Duration::from_secs(5))
        .build()
        .await
        .unwrap();
    let cache = Cache::builder(backend)
        .stampede_protection(protection.parse().unwrap())
        .store_timeout(Duration::from_secs(5))
        .build();
    let counter = Arc::new(tokio::sync::Mutex::new(
        common::raw(&common::url().await).await,
    ));
    let key = counter_key(namespace);
    stampede_child(&cache, move || {
        let (counter, key) = (counter.clone(), key.clone());
        async move {
            counter
                .lock()
                .await
                .meta_increment(&key, false, None, None, Some(&["N0", "J1"]))
                .await
                .unwrap();
        }
    })
    .await;
}
