//! The blocking API over MongoDB: the client is made inside the blocking cache's own
//! runtime and used from plain threads.

use cache_core::{blocking, Cache};
use cache_mongodb::MongoBuilder;

#[test]
fn blocking_cache_over_mongodb_from_several_threads() {
    let url = conformance_tests::servers::env("CACHE_TEST_MONGODB_URL");
    let namespace = conformance_tests::random_namespace();
    let cache = blocking::Cache::connect(|| async move {
        Ok(Cache::new(
            MongoBuilder::new(url).namespace(namespace).build().await?,
        ))
    })
    .expect("connects to the test MongoDB");
    conformance_tests::scenarios::blocking_from_threads(&cache);
}
