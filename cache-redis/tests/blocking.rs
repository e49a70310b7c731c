//! The blocking API over Redis: the connection is opened inside the blocking
//! cache's own runtime and used from plain threads.

use cache_core::{blocking, Cache};
use cache_redis::RedisBuilder;

fn url() -> String {
    conformance_tests::servers::env("CACHE_TEST_REDIS_URL")
}

#[test]
fn blocking_cache_over_redis_from_several_threads() {
    let namespace = conformance_tests::random_namespace();
    let cache = blocking::Cache::connect(|| async move {
        Ok(Cache::new(
            RedisBuilder::new(url())
                .namespace(namespace)
                .build()
                .await?,
        ))
    })
    .expect("connects to the test Redis");
    conformance_tests::scenarios::blocking_from_threads(&cache);
}
