//! `DynamoBackend` through the trait and the typed `Cache`, against the raw
//! `aws-sdk-dynamodb` client (a client of its own with the same configuration) running
//! the same calls on the same table and server, in one run: `bash scripts/bench.sh
//! dynamodb` (or, with the server up, `cargo bench -p cache-dynamodb --bench dynamodb`).
//! The loop is `conformance_tests::bench`. The test server is moto, written in Python:
//! it dominates the absolute numbers, so read the ratios.

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use cache_core::{Bytes, Cache, CacheBackend, Expiry};
use cache_dynamodb::{DynamoBackend, DynamoBuilder};
use conformance_tests::bench::{compare, raw_key, value, Op, Settings, Subject};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let url = std::env::var("CACHE_TEST_DYNAMODB_URL").unwrap_or_else(|_| {
        panic!("CACHE_TEST_DYNAMODB_URL is not set: run `bash scripts/bench.sh dynamodb`, or `bash scripts/servers.sh start dynamodb` and `eval \"$(bash scripts/servers.sh env dynamodb)\"`")
    });
    let builder = DynamoBuilder::default()
        .endpoint(&url)
        .region("us-east-1")
        .static_credentials("test", "test")
        .table("bench_entries")
        .namespace("bench")
        .timeout(Duration::from_secs(10));
    builder.create_table().await.unwrap();
    let backend = builder.build().await.unwrap();
    let raw = aws_sdk_dynamodb::Client::from_conf(backend.client().config().clone());
    let concrete = backend.with_namespace("bench").unwrap();
    let backend: Arc<dyn CacheBackend> = Arc::new(backend);
    let v = value();
    let subjects = [
        Subject::new("raw aws-sdk-dynamodb", move |op, i| {
            let (raw, v) = (raw.clone(), v.clone());
            async move {
                let pk = AttributeValue::S(format!("bench:{}", raw_key(i)));
                match op {
                    Op::Get => drop(
                        raw.get_item()
                            .table_name("bench_entries")
                            .key("pk", pk)
                            .consistent_read(true)
                            .send()
                            .await
                            .unwrap(),
                    ),
                    Op::Set => drop(
                        raw.put_item()
                            .table_name("bench_entries")
                            .item("pk", pk)
                            .item("ns", AttributeValue::S("bench".into()))
                            .item("v", AttributeValue::B(Blob::new(v.to_vec())))
                            .send()
                            .await
                            .unwrap(),
                    ),
                }
            }
        }),
        Subject::backend("DynamoBackend via dyn trait", backend.clone()),
        Subject::typed("typed Cache<String>", Cache::from_arc(backend.clone())),
    ];
    let settings = Settings {
        lat_ops: 300,
        tput_ops: 3_000,
        rounds: 3,
        ..Settings::default()
    };
    compare(&format!("DynamoDB (moto) at {url}"), settings, &subjects).await;
    backend.clear().await.unwrap();
    clear_cost(&concrete).await;
}

/// What `clear` costs, through the `ns` index, against the scan it avoids: a namespace
/// with no entries in a table holding 2 000 entries of another, and one with 500.
async fn clear_cost(base: &DynamoBackend) {
    let median = |mut v: Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    let fill = |ns: &'static str, n: usize| {
        let b = base.with_namespace(ns).unwrap();
        async move {
            let keys: Vec<String> = (0..n).map(|i| format!("k{i}")).collect();
            let items: Vec<(&str, Bytes)> = keys.iter().map(|k| (k.as_str(), value())).collect();
            for chunk in items.chunks(500) {
                b.set_many(chunk, Expiry::Never).await.unwrap();
            }
            b
        }
    };
    let other = fill("bench_other", 2_000).await;
    let empty = base.with_namespace("bench_empty").unwrap();
    let mut index = Vec::new();
    let mut scan = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        empty.clear().await.unwrap();
        index.push(t.elapsed());
        let t = Instant::now();
        let mut pages = base
            .client()
            .scan()
            .table_name("bench_entries")
            .filter_expression("ns = :ns")
            .expression_attribute_values(":ns", AttributeValue::S("bench_empty".into()))
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            page.unwrap();
        }
        scan.push(t.elapsed());
    }
    let (index, scan) = (median(index), median(scan));
    println!(
        "CLEAR (the namespace's keys from the ns index, then batch deletes)\n  \
         empty namespace beside 2 000 entries: {:.1} ms; a Scan for it would take {:.1} ms ({:.3}x)",
        index.as_secs_f64() * 1e3,
        scan.as_secs_f64() * 1e3,
        index.as_secs_f64() / scan.as_secs_f64()
    );
    let full = fill("bench_full", 500).await;
    let t = Instant::now();
    full.clear().await.unwrap();
    println!(
        "  500 entries: {:.1} ms ({:.2} ms per entry)",
        t.elapsed().as_secs_f64() * 1e3,
        t.elapsed().as_secs_f64() * 1e3 / 500.0
    );
    assert_eq!(full.get("k1").await.unwrap(), None);
    assert!(other.get("k1").await.unwrap().is_some());
    other.clear().await.unwrap();
}
