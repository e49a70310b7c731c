//! Distributed stampede: 4 separate OS processes, 50 tasks each, all asking
//! get-or-compute for the same cold key with a compute that takes 200 ms. The compute
//! runs exactly once in total (counted with an atomic `ADD` on an item of a table of
//! the test's own), and every caller gets the value. With stampede protection off, the
//! same run computes more than once. The parent test re-runs this test binary as the
//! children (`conformance_tests::scenarios::stampede_*`).

use crate::common;
use aws_sdk_dynamodb::types::AttributeValue;
use cache_core::Cache;
use conformance_tests::scenarios::{stampede_child, stampede_child_args, stampede_parent};
use std::time::Duration;

/// The counters live in a table of their own, made like the cache's (its key is `pk`).
const COUNTS: &str = "stampede_counts";

async fn counts_table() {
    common::builder("counts")
        .await
        .table(COUNTS)
        .create_table()
        .await
        .unwrap();
}

/// Run the children with protection on or off; the number of computes counted.
async fn computes(protection: bool) -> u64 {
    counts_table().await;
    let namespace = conformance_tests::random_namespace();
    let url = common::url().await;
    stampede_parent(
        "stampede::stampede_child_process",
        &format!("{namespace},{protection}"),
        &[("CACHE_TEST_DYNAMODB_URL", &url)],
    )
    .await;
    let item = common::raw_client()
        .await
        .get_item()
        .table_name(COUNTS)
        .key("pk", AttributeValue::S(namespace))
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item;
    item.and_then(|i| i.get("n")?.as_n().ok()?.parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compute_runs_once_across_four_processes() {
    conformance_tests::scenarios::assert_lock_decides(computes).await;
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
    let backend = common::backend(namespace).await;
    let cache = Cache::builder(backend)
        .stampede_protection(protection.parse().unwrap())
        .store_timeout(Duration::from_secs(5))
        .build();
    let client = common::raw_client().await;
    let namespace = namespace.to_owned();
    stampede_child(&cache, move || {
        let (client, namespace) = (client.clone(), namespace.clone());
        async move {
            client
                .update_item()
                .table_name(COUNTS)
                .key("pk", AttributeValue::S(namespace))
                .update_expression("ADD n :one")
                .expression_attribute_values(":one", AttributeValue::N("1".into()))
                .send()
                .await
                .unwrap();
        }
    })
    .await;
}
