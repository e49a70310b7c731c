//! `DynamoBackend` through the trait and the typed `Cache`, against the raw
//! `aws-sdk-dynamodb` client (a client of its own with the same configuration) running
//! the same calls on the same table and server, in one run: `bash scripts/bench.sh
//! dynamodb` (or, with the server up, `cargo bench -p cache-dynamodb --bench dynamodb`).
//! The loop is `conformance_tests::bench`. The test server is moto, written in Python:
//! it dominates the absolute numbers, so read the ratios.

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use cache_core::{Cache, CacheBackend};
use cache_dynamodb::DynamoBuilder;
use conformance_tests::bench::{compare, raw_key, value, Op, Settings, Subject};
use std::sync::Arc;
use std::time::Duration;

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
}
