//! `FirestoreBackend` through the trait and the typed `Cache`, against the firestore
//! crate's own gRPC client (the same `FirestoreDb`) making the same calls — a
//! BatchGetDocuments of one document, a Commit of one whole document — on the same
//! emulator, in one run: `bash scripts/bench.sh firestore` (or, with the emulator up
//! and `FIRESTORE_EMULATOR_HOST` set, `cargo bench -p cache-firestore --bench
//! firestore`). The loop is `conformance_tests::bench`. The emulator is one Node
//! process: read the ratios, not the absolute numbers.

use cache_core::{Cache, CacheBackend};
use cache_firestore::FirestoreBackend;
use conformance_tests::bench::{compare, raw_key, value, Op, Settings, Subject};
use gcloud_sdk::google::firestore::v1::{
    value::ValueType, write, BatchGetDocumentsRequest, CommitRequest, Document, Value, Write,
};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

fn field(v: ValueType) -> Value {
    Value {
        value_type: Some(v),
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let host = std::env::var("FIRESTORE_EMULATOR_HOST").unwrap_or_else(|_| {
        panic!("FIRESTORE_EMULATOR_HOST is not set: run `bash scripts/bench.sh firestore`, or `bash scripts/servers.sh start firestore` and `eval \"$(bash scripts/servers.sh env firestore)\"`")
    });
    let backend = FirestoreBackend::builder()
        .project_id("cache-bench")
        .collection("bench_entries")
        .namespace("bench")
        .timeout(Duration::from_secs(10))
        .build()
        .await
        .unwrap();
    let db = backend.db().clone();
    let backend: Arc<dyn CacheBackend> = Arc::new(backend);
    let v = value();
    // The same documents as the backend's: named by the SHA-256 of `bench:key`.
    let name = move |db: &firestore::FirestoreDb, i: usize| {
        let id = cache_core::raw::sha256_hex(format!("bench:{}", raw_key(i)).as_bytes());
        format!("{}/bench_entries/{id}", db.get_documents_path())
    };
    let subjects = [
        Subject::new("raw firestore client", move |op, i| {
            let (db, v) = (db.clone(), v.clone());
            async move {
                let mut client = db.client().get();
                match op {
                    Op::Get => {
                        let mut stream = client
                            .batch_get_documents(BatchGetDocumentsRequest {
                                database: db.get_database_path().clone(),
                                documents: vec![name(&db, i)],
                                ..Default::default()
                            })
                            .await
                            .unwrap()
                            .into_inner();
                        while stream.message().await.unwrap().is_some() {}
                    }
                    Op::Set => {
                        let fields = HashMap::from([
                            (
                                "ns".to_owned(),
                                field(ValueType::StringValue("bench".into())),
                            ),
                            ("key".to_owned(), field(ValueType::StringValue(raw_key(i)))),
                            ("value".to_owned(), field(ValueType::BytesValue(v.to_vec()))),
                            ("expires_at".to_owned(), field(ValueType::NullValue(0))),
                        ]);
                        client
                            .commit(CommitRequest {
                                database: db.get_database_path().clone(),
                                writes: vec![Write {
                                    operation: Some(write::Operation::Update(Document {
                                        name: name(&db, i),
                                        fields,
                                        ..Default::default()
                                    })),
                                    ..Default::default()
                                }],
                                ..Default::default()
                            })
                            .await
                            .unwrap();
                    }
                }
            }
        }),
        Subject::backend("FirestoreBackend via dyn trait", backend.clone()),
        Subject::typed("typed Cache<String>", Cache::from_arc(backend.clone())),
    ];
    let settings = Settings {
        lat_ops: 500,
        tput_ops: 5_000,
        rounds: 3,
        ..Settings::default()
    };
    compare(
        &format!("Firestore (npm emulator) at {host}"),
        settings,
        &subjects,
    )
    .await;
    backend.clear().await.unwrap();
}
