//! Distributed stampede: 4 separate OS processes, 50 tasks each, all asking
//! get-or-compute for the same cold key with a compute that takes 200 ms. The compute
//! runs exactly once in total (counted on the emulator with an increment transform),
//! and every caller gets the value. With stampede protection off, the same run
//! computes more than once. The parent test re-runs this test binary as the children
//! (`conformance_tests::scenarios::stampede_*`).

use crate::common;
use cache_core::Cache;
use conformance_tests::scenarios::{stampede_child, stampede_child_args, stampede_parent};
use firestore::FirestoreDb;
use gcloud_sdk::google::firestore::v1::{
    batch_get_documents_response, document_transform::field_transform, value::ValueType, write,
    BatchGetDocumentsRequest, CommitRequest, Document, DocumentMask, Value, Write,
};
use std::time::Duration;

fn counter(db: &FirestoreDb, namespace: &str) -> String {
    format!("{}/stampede_counts/{namespace}", db.get_documents_path())
}

/// Add one to the counter: an increment transform, with an empty mask so that no
/// field is replaced.
async fn count(db: &FirestoreDb, namespace: &str) {
    let write = Write {
        operation: Some(write::Operation::Update(Document {
            name: counter(db, namespace),
            ..Default::default()
        })),
        update_mask: Some(DocumentMask::default()),
        update_transforms: vec![
            gcloud_sdk::google::firestore::v1::document_transform::FieldTransform {
                field_path: "n".into(),
                transform_type: Some(field_transform::TransformType::Increment(Value {
                    value_type: Some(ValueType::IntegerValue(1)),
                })),
            },
        ],
        ..Default::default()
    };
    db.client()
        .get()
        .commit(CommitRequest {
            database: db.get_database_path().clone(),
            writes: vec![write],
            ..Default::default()
        })
        .await
        .unwrap();
}

async fn read_count(db: &FirestoreDb, namespace: &str) -> u64 {
    let mut stream = db
        .client()
        .get()
        .batch_get_documents(BatchGetDocumentsRequest {
            database: db.get_database_path().clone(),
            documents: vec![counter(db, namespace)],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let mut n = 0;
    while let Some(r) = stream.message().await.unwrap() {
        if let Some(batch_get_documents_response::Result::Found(d)) = r.result {
            if let Some(Some(ValueType::IntegerValue(v))) =
                d.fields.get("n").map(|v| v.value_type.clone())
            {
                n = v as u64;
            }
        }
    }
    n
}

/// Run the children with protection on or off; the number of computes counted.
async fn computes(protection: bool) -> u64 {
    let namespace = conformance_tests::random_namespace();
    let host = common::host().await;
    stampede_parent(
        "stampede::stampede_child_process",
        &format!("{namespace},{protection}"),
        &[
            ("CACHE_TEST_FIRESTORE_HOST", &host),
            ("FIRESTORE_EMULATOR_HOST", &host),
        ],
    )
    .await;
    let backend = common::backend("counts").await;
    read_count(backend.db(), &namespace).await
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
    let backend = common::backend(namespace).await;
    let db = backend.db().clone();
    let cache = Cache::builder(backend)
        .stampede_protection(protection.parse().unwrap())
        .store_timeout(Duration::from_secs(5))
        .build();
    let namespace = namespace.to_owned();
    stampede_child(&cache, move || {
        let (db, namespace) = (db.clone(), namespace.clone());
        async move { count(&db, &namespace).await }
    })
    .await;
}
