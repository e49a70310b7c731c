//! Configuration errors, values as bytes, expiry on a store that never deletes, and
//! batches and `clear` past Firestore's per-call limits.

use crate::common;
use cache_core::{Bytes, CacheBackend, ErrorKind, Expiry};
use cache_firestore::FirestoreBuilder;
use gcloud_sdk::google::firestore::v1::{
    batch_get_documents_response, value::ValueType, BatchGetDocumentsRequest,
};
use std::time::Duration;

#[tokio::test]
async fn bad_settings_are_config_errors() {
    common::host().await;
    let ok = || FirestoreBuilder::default().project_id(common::PROJECT);
    let cases = [
        ("no project id", FirestoreBuilder::default()),
        ("a collection with /", ok().collection("a/b")),
        ("a collection named ..", ok().collection("..")),
        ("a reserved collection id", ok().collection("__x__")),
        ("an empty collection", ok().collection("")),
        ("a zero timeout", ok().timeout(Duration::ZERO)),
        ("a value limit over 1 MiB", ok().max_value_size(1 << 20)),
        ("a namespace with ':'", ok().namespace("a:b")),
        (
            "a key file that does not exist",
            ok().key_file("/nonexistent/key.json"),
        ),
    ];
    for (what, builder) in cases {
        let err = builder.build().await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config, "{what}: {err}");
    }
}

#[test]
fn debug_output_never_reads_the_key_file() {
    let dir = std::env::temp_dir().join(format!("fs-key-{}", uuid::Uuid::new_v4()));
    std::fs::write(&dir, r#"{"private_key": "s3cret"}"#).unwrap();
    let dbg = format!("{:?}", FirestoreBuilder::default().key_file(&dir));
    std::fs::remove_file(&dir).unwrap();
    assert!(!dbg.contains("s3cret"), "{dbg}");
    assert!(dbg.contains("fs-key-"), "{dbg}");
}

/// The largest value is stored as a Firestore bytes value (not an array of numbers,
/// which is what `Vec<u8>` becomes through serde) and round-trips.
#[tokio::test]
async fn the_largest_value_is_stored_as_bytes() {
    let backend = common::backend(&conformance_tests::random_namespace()).await;
    let max = backend.capabilities().max_value_size.unwrap();
    assert_eq!(max, 1024 * 1024 - 8 * 1024);
    let v = Bytes::from((0..max).map(|i| (i % 251) as u8).collect::<Vec<u8>>());
    let key = "k".repeat(1400);
    backend.set(&key, v.clone(), Expiry::Never).await.unwrap();
    assert_eq!(backend.get(&key).await.unwrap(), Some(v.clone()));
    // The raw document, through the crate's client: a bytes value and a null expiry.
    let db = backend.db();
    let mut stream = db
        .client()
        .get()
        .run_query(gcloud_sdk::google::firestore::v1::RunQueryRequest {
            parent: db.get_documents_path().clone(),
            query_type: Some(
                gcloud_sdk::google::firestore::v1::run_query_request::QueryType::StructuredQuery(
                    gcloud_sdk::google::firestore::v1::StructuredQuery {
                        from: vec![gcloud_sdk::google::firestore::v1::structured_query::CollectionSelector {
                            collection_id: "cache_entries".into(),
                            all_descendants: false,
                        }],
                        ..Default::default()
                    },
                ),
            ),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let mut seen = false;
    while let Some(r) = stream.message().await.unwrap() {
        let Some(d) = r.document else { continue };
        let ns = d.fields.get("ns").and_then(|v| v.value_type.clone());
        if ns != Some(ValueType::StringValue(backend.namespace().to_owned())) {
            continue;
        }
        seen = true;
        assert!(
            matches!(d.fields["value"].value_type, Some(ValueType::BytesValue(ref b)) if b.len() == max)
        );
        assert!(matches!(
            d.fields["expires_at"].value_type,
            Some(ValueType::NullValue(_))
        ));
        assert_eq!(
            d.fields["key"].value_type,
            Some(ValueType::StringValue(key.clone()))
        );
    }
    assert!(seen, "the document was found");
}

/// The emulator never deletes expired documents (Firestore's TTL policy does, within a
/// day or so): the document is still there, and every read says it is gone.
#[tokio::test]
async fn expired_documents_left_in_the_store_are_never_read() {
    let backend = common::backend(&conformance_tests::random_namespace()).await;
    let ms = |n| Expiry::After(Duration::from_millis(n));
    backend
        .set("k", Bytes::from_static(b"v"), ms(30))
        .await
        .unwrap();
    backend
        .set("x", Bytes::from_static(b"v"), ms(30))
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
    assert_eq!(backend.get("x").await.unwrap(), None);
    assert!(!backend.has("k").await.unwrap());
    assert_eq!(
        backend.get_many(&["a", "b", "k"]).await.unwrap(),
        vec![None, None, None]
    );
    assert_eq!(backend.delete_many(&["a", "b"]).await.unwrap(), 0);
    assert!(
        !backend.delete("k").await.unwrap(),
        "an expired entry is not there"
    );
    // An expired entry is free for set_if_absent (taken over by an update-time check).
    assert!(backend
        .set_if_absent("a", Bytes::from_static(b"new"), Expiry::Never)
        .await
        .unwrap());
    assert_eq!(
        backend.get("a").await.unwrap(),
        Some(Bytes::from_static(b"new"))
    );
    // The raw store still holds the expired document that reads did not return.
    let db = backend.db();
    let id = cache_core::raw::sha256_hex(format!("{}:x", backend.namespace()).as_bytes());
    let mut stream = db
        .client()
        .get()
        .batch_get_documents(BatchGetDocumentsRequest {
            database: db.get_database_path().clone(),
            documents: vec![format!("{}/cache_entries/{id}", db.get_documents_path())],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let mut kept = false;
    while let Some(r) = stream.message().await.unwrap() {
        if let Some(batch_get_documents_response::Result::Found(d)) = r.result {
            kept = matches!(
                d.fields["expires_at"].value_type,
                Some(ValueType::TimestampValue(_))
            );
        }
    }
    assert!(kept, "the emulator keeps the expired document");
}

/// More writes than one Commit takes (500) and more keys than one batch get asks (100),
/// duplicates included; then `clear` over more than one page of 500.
#[tokio::test]
async fn batches_and_clear_past_the_per_call_limits() {
    let backend = common::backend(&conformance_tests::random_namespace()).await;
    let other = backend
        .with_namespace(&conformance_tests::random_namespace())
        .unwrap();
    other
        .set("keep", Bytes::from_static(b"1"), Expiry::Never)
        .await
        .unwrap();
    let keys: Vec<String> = (0..1_100).map(|i| format!("k{i}")).collect();
    let mut items: Vec<(&str, Bytes)> = keys
        .iter()
        .map(|k| (k.as_str(), Bytes::from(format!("v-{k}"))))
        .collect();
    items.push(("k7", Bytes::from_static(b"last")));
    backend.set_many(&items, Expiry::Never).await.unwrap();
    let mut ask: Vec<&str> = keys.iter().take(250).map(String::as_str).collect();
    ask.extend(["missing", "k0", "k7"]);
    let got = backend.get_many(&ask).await.unwrap();
    for (k, v) in ask.iter().zip(&got) {
        let want = match *k {
            "missing" => None,
            "k7" => Some(Bytes::from_static(b"last")),
            k => Some(Bytes::from(format!("v-{k}"))),
        };
        assert_eq!(v, &want, "{k}");
    }
    backend.clear().await.unwrap();
    assert!(backend
        .get_many(&ask)
        .await
        .unwrap()
        .iter()
        .all(Option::is_none));
    assert_eq!(backend.get("k1099").await.unwrap(), None);
    assert_eq!(
        other.get("keep").await.unwrap(),
        Some(Bytes::from_static(b"1"))
    );
}

/// The background sweep deletes the namespace's expired documents (the emulator never
/// does), leaves live ones and other namespaces alone, and stops with `close`.
#[tokio::test]
async fn the_sweep_deletes_expired_documents_of_its_namespace() {
    use cache_firestore::FirestoreBackend;
    let ns = conformance_tests::random_namespace();
    // The documents are written by a backend without a sweep, so that none can be swept
    // before they are counted (under load the writes can outlast a sweep interval).
    let writer = common::backend(&ns).await;
    let other = common::backend(&conformance_tests::random_namespace()).await;
    let soon = Expiry::After(Duration::from_millis(20));
    let items: Vec<(String, Bytes)> = (0..30)
        .map(|i| (format!("e{i}"), Bytes::from_static(b"x")))
        .collect();
    let refs: Vec<(&str, Bytes)> = items.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
    writer.set_many(&refs, soon).await.unwrap();
    other
        .set("e0", Bytes::from_static(b"x"), soon)
        .await
        .unwrap();
    writer
        .set("live", Bytes::from_static(b"v"), Expiry::Never)
        .await
        .unwrap();
    assert_eq!(count_docs(writer.db(), &ns).await, 31);
    let backend: FirestoreBackend = common::builder(&ns)
        .await
        .sweep_interval(Duration::from_millis(100))
        .build()
        .await
        .unwrap();
    // The background sweep (never called here) leaves only the live document.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while count_docs(backend.db(), &ns).await > 1 {
        assert!(
            std::time::Instant::now() < deadline,
            "the background sweep never ran"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        backend.get("live").await.unwrap(),
        Some(Bytes::from_static(b"v"))
    );
    // The other namespace's expired document is still in the store: its own sweep
    // removes it.
    assert_eq!(other.sweep().await.unwrap(), 1);
    backend.close().await.unwrap();
}

/// How many documents of namespace `ns` the store holds, live or not (a raw query).
async fn count_docs(db: &firestore::FirestoreDb, ns: &str) -> usize {
    use gcloud_sdk::google::firestore::v1::{
        run_query_request::QueryType, structured_query, RunQueryRequest, StructuredQuery, Value,
    };
    use structured_query::{
        field_filter, filter, CollectionSelector, FieldFilter, FieldReference, Filter,
    };
    let query = StructuredQuery {
        from: vec![CollectionSelector {
            collection_id: "cache_entries".into(),
            all_descendants: false,
        }],
        r#where: Some(Filter {
            filter_type: Some(filter::FilterType::FieldFilter(FieldFilter {
                field: Some(FieldReference {
                    field_path: "ns".into(),
                }),
                op: field_filter::Operator::Equal as i32,
                value: Some(Value {
                    value_type: Some(ValueType::StringValue(ns.into())),
                }),
            })),
        }),
        ..Default::default()
    };
    let mut stream = db
        .client()
        .get()
        .run_query(RunQueryRequest {
            parent: db.get_documents_path().clone(),
            query_type: Some(QueryType::StructuredQuery(query)),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let mut n = 0;
    while let Some(r) = stream.message().await.unwrap() {
        n += usize::from(r.document.is_some());
    }
    n
}
