//! Distributed stampede: 4 separate OS processes, 50 tasks each, all asking
//! get-or-compute for the same cold key with a compute that takes 200 ms. The compute
//! runs exactly once in total (counted with `$inc` in a collection of the test
//! database), and every caller gets the value. With stampede protection off, the same
//! run computes more than once. The parent test re-runs this test binary as the
//! children (`conformance_tests::scenarios::stampede_*`).

use crate::common;
use cache_core::Cache;
use conformance_tests::scenarios::{stampede_child, stampede_child_args, stampede_parent};
use mongodb::bson::{doc, Document};
use std::time::Duration;

async fn counts() -> mongodb::Collection<Document> {
    mongodb::Client::with_uri_str(common::url().await)
        .await
        .unwrap()
        .database("cache_test")
        .collection("stampede_counts")
}

/// Run the children with protection on or off; the number of computes counted.
async fn computes(protection: bool) -> i64 {
    let namespace = conformance_tests::random_namespace();
    let url = common::url().await;
    stampede_parent(
        "stampede::stampede_child_process",
        &format!("{namespace},{protection}"),
        &[("CACHE_TEST_MONGODB_URL", &url)],
    )
    .await;
    counts()
        .await
        .find_one(doc! { "_id": &namespace })
        .await
        .unwrap()
        .map_or(0, |d| d.get_i64("n").unwrap())
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
    let counter = counts().await;
    let namespace = namespace.to_owned();
    stampede_child(&cache, move || {
        let (counter, namespace) = (counter.clone(), namespace.clone());
        async move {
            counter
                .update_one(doc! { "_id": namespace }, doc! { "$inc": { "n": 1i64 } })
                .upsert(true)
                .await
                .unwrap();
        }
    })
    .await;
}
