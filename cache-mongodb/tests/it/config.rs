//! Configuration and connection errors, indexes, and the TTL index at work.

use crate::common;
use cache_core::{Bytes, CacheBackend, ErrorKind, Expiry};
use cache_mongodb::{MongoBuilder, MongoConfig};
use mongodb::bson::doc;
use std::time::{Duration, Instant};

#[tokio::test]
async fn unreachable_server_is_unavailable_within_the_connect_timeout() {
    let port = conformance_tests::servers::OwnProcess::free_port();
    let started = Instant::now();
    let err = MongoBuilder::new(format!("mongodb://127.0.0.1:{port}/db"))
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
async fn bad_settings_are_config_errors() {
    let url = common::url().await;
    let cases = [
        ("a URI that is not one", MongoBuilder::new("postgres://x")),
        (
            "a collection with $",
            MongoBuilder::new(url.clone()).collection("a$b"),
        ),
        (
            "a system collection",
            MongoBuilder::new(url.clone()).collection("system.x"),
        ),
        (
            "a database with /",
            MongoBuilder::new(url.clone()).database("a/b"),
        ),
        (
            "a zero timeout",
            MongoBuilder::new(url.clone()).timeout(Duration::ZERO),
        ),
        ("no pool", MongoBuilder::new(url.clone()).pool_size(0)),
        (
            "a value limit over 16 MiB",
            MongoBuilder::new(url.clone()).max_value_size(16 << 20),
        ),
        (
            "a namespace with ':'",
            MongoBuilder::new(url.clone()).namespace("a:b"),
        ),
    ];
    for (what, builder) in cases {
        let err = builder.build().await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config, "{what}: {err}");
    }
}

#[tokio::test]
async fn indexes_are_made_once_and_a_conflicting_one_is_a_config_error() {
    let collection = format!("idx_{}", conformance_tests::random_namespace());
    for _ in 0..2 {
        common::builder("a")
            .await
            .collection(&collection)
            .build()
            .await
            .expect("creating the indexes twice is fine");
    }
    // Another collection where `cache_ttl` exists with other options.
    let other = format!("idx2_{}", conformance_tests::random_namespace());
    let client = mongodb::Client::with_uri_str(common::url().await)
        .await
        .unwrap();
    let coll = client
        .database("cache_test")
        .collection::<mongodb::bson::Document>(&other);
    coll.create_index(
        mongodb::IndexModel::builder()
            .keys(doc! { "exp": 1 })
            .options(
                mongodb::options::IndexOptions::builder()
                    .name("cache_ttl".to_string())
                    .expire_after(Duration::from_secs(3600))
                    .build(),
            )
            .build(),
    )
    .await
    .unwrap();
    let err = common::builder("a")
        .await
        .collection(&other)
        .build()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config, "{err}");
    assert!(err.to_string().contains("index"), "{err}");
}

#[tokio::test]
async fn the_ttl_index_removes_expired_documents() {
    let collection = format!("ttl_{}", conformance_tests::random_namespace());
    let backend = common::builder("ttl")
        .await
        .collection(&collection)
        .build()
        .await
        .unwrap();
    backend
        .set(
            "k",
            Bytes::from_static(b"v"),
            Expiry::After(Duration::from_millis(100)),
        )
        .await
        .unwrap();
    let client = mongodb::Client::with_uri_str(common::url().await)
        .await
        .unwrap();
    let coll = client
        .database("cache_test")
        .collection::<mongodb::bson::Document>(&collection);
    assert_eq!(coll.count_documents(doc! {}).await.unwrap(), 1);
    // Reads filter at once; the server's TTL monitor (every second here, every 60 s on
    // MongoDB) deletes the document itself.
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(backend.get("k").await.unwrap(), None);
    let deadline = Instant::now() + Duration::from_secs(10);
    while coll.count_documents(doc! {}).await.unwrap() != 0 {
        assert!(
            Instant::now() < deadline,
            "the TTL monitor never removed the document"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[test]
fn debug_hides_the_password() {
    let mut cfg = MongoConfig::default();
    cfg.uri = "mongodb://app:hunter2@db:27017/app".into();
    let builder = MongoBuilder::from_config(cfg);
    let dbg = format!("{builder:?}");
    assert!(!dbg.contains("hunter2") && dbg.contains("***"), "{dbg}");
}

#[tokio::test]
async fn a_value_at_the_default_limit_fits_a_document_and_one_byte_more_is_refused() {
    let backend = MongoBuilder::new(common::url().await)
        .namespace(conformance_tests::random_namespace())
        .timeout(Duration::from_secs(30))
        .build()
        .await
        .unwrap();
    let max = backend.capabilities().max_value_size.unwrap();
    assert_eq!(max, 16 * 1024 * 1024 - 16 * 1024);
    let cache = cache_core::Cache::new(backend);
    // The longest key too: the document holds it twice (_id) and the namespace.
    let key = "k".repeat(1000);
    let store = cache.backend();
    store
        .set(&key, Bytes::from(vec![7u8; max]), Expiry::Never)
        .await
        .expect("a value of max_value_size fits one document");
    assert_eq!(store.get(&key).await.unwrap().map(|v| v.len()), Some(max));
    let err = store
        .set("over", Bytes::from(vec![7u8; max + 1]), Expiry::Never)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    store.clear().await.unwrap();
}
