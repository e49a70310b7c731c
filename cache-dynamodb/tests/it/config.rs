//! Configuration and connection errors, the table helper, expiry on a store that never
//! deletes, and the size limit as DynamoDB reports it.

use crate::common;
use cache_core::{Bytes, CacheBackend, ErrorKind, Expiry};
use cache_dynamodb::aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType,
    ScalarAttributeType,
};
use cache_dynamodb::{DynamoBuilder, DynamoConfig};
use std::time::{Duration, Instant};

fn table_name() -> String {
    format!("t_{}", conformance_tests::random_namespace())
}

#[tokio::test]
async fn unreachable_endpoint_is_unavailable_within_the_connect_timeout() {
    let port = conformance_tests::servers::OwnProcess::free_port();
    let started = Instant::now();
    let err = common::builder_at(&format!("http://127.0.0.1:{port}"))
        .connect_timeout(Duration::from_millis(500))
        .build()
        .await
        .unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::Unavailable | ErrorKind::Timeout),
        "{err}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_missing_table_is_a_config_error_that_names_the_helper() {
    let err = common::builder("a")
        .await
        .table(table_name())
        .build()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config, "{err}");
    assert!(err.to_string().contains("create_table"), "{err}");
}

#[tokio::test]
async fn a_table_of_another_layout_is_a_config_error() {
    let name = table_name();
    let client = common::raw_client().await;
    client
        .create_table()
        .table_name(&name)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("id")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .unwrap(),
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("id")
                .key_type(KeyType::Hash)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let err = common::builder("a")
        .await
        .table(&name)
        .build()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config, "{err}");
    assert!(err.to_string().contains("layout"), "{err}");
}

#[tokio::test]
async fn bad_settings_are_config_errors() {
    let url = common::url().await;
    let cases = [
        ("a short table name", common::builder_at(&url).table("ab")),
        (
            "a table name with /",
            common::builder_at(&url).table("a/b/c"),
        ),
        (
            "a zero timeout",
            common::builder_at(&url).timeout(Duration::ZERO),
        ),
        (
            "a value limit over the item limit",
            common::builder_at(&url).max_value_size(400 * 1024),
        ),
        (
            "a namespace with ':'",
            common::builder_at(&url).namespace("a:b"),
        ),
        (
            "no region anywhere",
            DynamoBuilder::default()
                .sdk_config(
                    &aws_config::SdkConfig::builder()
                        .behavior_version(aws_config::BehaviorVersion::latest())
                        .build(),
                )
                .endpoint(&url)
                .static_credentials("test", "test"),
        ),
    ];
    for (what, builder) in cases {
        let err = builder.build().await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config, "{what}: {err}");
    }
}

#[test]
fn debug_output_hides_the_secret_key() {
    let b = common::builder_at("http://127.0.0.1:1")
        .static_credentials("AKIDEXAMPLE", "wJalrXUtnFEMI-s3cret")
        .sdk_config(
            &aws_config::SdkConfig::builder()
                .credentials_provider(aws_sdk_dynamodb::config::SharedCredentialsProvider::new(
                    aws_sdk_dynamodb::config::Credentials::new(
                        "AKID2",
                        "other-s3cret",
                        None,
                        None,
                        "t",
                    ),
                ))
                .build(),
        );
    let dbg = format!("{b:?}");
    assert!(!dbg.contains("s3cret"), "{dbg}");
    assert!(dbg.contains("AKIDEXAMPLE"), "{dbg}");
    let cfg: DynamoConfig = serde_json::from_str(r#"{"table": "x"}"#).unwrap();
    assert!(format!("{cfg:?}").contains("\"x\""));
}

#[tokio::test]
async fn create_table_is_idempotent_and_enables_ttl_on_exp() {
    let name = table_name();
    let b = common::builder("a").await.table(&name);
    b.create_table().await.unwrap();
    b.create_table().await.expect("a second call is a no-op");
    b.clone().build().await.expect("the table has the layout");
    let ttl = common::raw_client()
        .await
        .describe_time_to_live()
        .table_name(&name)
        .send()
        .await
        .unwrap();
    let d = ttl.time_to_live_description.unwrap();
    assert_eq!(d.attribute_name(), Some("exp"));
}

/// moto never deletes expired items (DynamoDB does, days late): the item is still in
/// the table, and every read says it is gone.
#[tokio::test]
async fn expired_items_left_in_the_table_are_never_read() {
    let backend = common::backend("expired").await;
    let ms = |n| Expiry::After(Duration::from_millis(n));
    backend
        .set("k", Bytes::from_static(b"v"), ms(30))
        .await
        .unwrap();
    backend
        .set_many(
            &[
                ("a", Bytes::from_static(b"1")),
                ("b", Bytes::from_static(b"2")),
            ],
            ms(30),
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(60)).await;
    assert_eq!(backend.get("k").await.unwrap(), None);
    assert!(!backend.has("k").await.unwrap());
    assert_eq!(
        backend.get_many(&["a", "b", "k"]).await.unwrap(),
        vec![None, None, None]
    );
    assert_eq!(backend.delete_many(&["a", "b"]).await.unwrap(), 0);
    let raw = common::raw_client()
        .await
        .get_item()
        .table_name(common::table_for("expired"))
        .key("pk", AttributeValue::S("expired:k".into()))
        .send()
        .await
        .unwrap();
    let item = raw.item.expect("moto keeps the expired item");
    assert!(item.contains_key("exp") && item.contains_key("exp_ms"));
    assert!(
        !backend.delete("k").await.unwrap(),
        "an expired entry is not there"
    );
}

/// The largest value allowed, under the longest key DynamoDB takes literally: the item
/// fits (moto's limit, 405 000 bytes, is below DynamoDB's 409 600).
#[tokio::test]
async fn the_largest_value_fits_with_the_longest_key() {
    let backend = common::backend("big").await;
    let max = backend.capabilities().max_value_size.unwrap();
    assert_eq!(max, 390 * 1024);
    let key = "k".repeat(2048 - "big:".len());
    let v = Bytes::from(vec![9u8; max]);
    backend
        .set(&key, v.clone(), Expiry::After(Duration::from_secs(60)))
        .await
        .unwrap();
    assert_eq!(backend.get(&key).await.unwrap(), Some(v));
}

/// More keys than one BatchGetItem (100) or BatchWriteItem (25) takes, duplicates
/// included: chunked, in request order, the last value of a duplicate winning.
#[tokio::test]
async fn batches_over_the_service_limits_are_chunked() {
    let backend = common::backend(&conformance_tests::random_namespace()).await;
    let keys: Vec<String> = (0..130).map(|i| format!("k{i}")).collect();
    let mut items: Vec<(&str, Bytes)> = keys
        .iter()
        .map(|k| (k.as_str(), Bytes::from(format!("v-{k}"))))
        .collect();
    items.push(("k7", Bytes::from_static(b"last")));
    backend.set_many(&items, Expiry::Never).await.unwrap();
    let mut ask: Vec<&str> = keys.iter().map(String::as_str).collect();
    ask.extend(["missing", "k0", "k7"]);
    ask.extend(keys.iter().map(String::as_str)); // 263 keys, 131 distinct
    let got = backend.get_many(&ask).await.unwrap();
    assert_eq!(got.len(), ask.len());
    for (k, v) in ask.iter().zip(&got) {
        let want = match *k {
            "missing" => None,
            "k7" => Some(Bytes::from_static(b"last")),
            k => Some(Bytes::from(format!("v-{k}"))),
        };
        assert_eq!(v, &want, "{k}");
    }
    let mut del: Vec<&str> = keys.iter().map(String::as_str).collect();
    del.extend(["k1", "missing"]);
    assert_eq!(backend.delete_many(&del).await.unwrap(), 130);
    assert!(backend
        .get_many(&ask)
        .await
        .unwrap()
        .iter()
        .all(Option::is_none));
}
