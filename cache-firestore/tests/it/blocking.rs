//! The blocking API over Firestore: the client is made inside the blocking cache's own
//! runtime and used from plain threads.

use crate::common;
use cache_core::{blocking, Cache};
use cache_firestore::FirestoreBuilder;

#[test]
fn blocking_cache_over_firestore_from_several_threads() {
    common::env("CACHE_TEST_FIRESTORE_HOST");
    let namespace = conformance_tests::random_namespace();
    let cache = blocking::Cache::connect(|| async move {
        Ok(Cache::new(
            FirestoreBuilder::default()
                .project_id(common::PROJECT)
                .namespace(namespace)
                .build()
                .await?,
        ))
    })
    .expect("connects to the Firestore emulator");
    conformance_tests::scenarios::blocking_from_threads(&cache);
}
