//! The blocking view of an async Redis cache inside `spawn_blocking` (the blocking API
//! from plain threads on a cache of its own is `scenarios::blocking_from_threads`).

use cache_core::{blocking, Cache};
use cache_redis::RedisBuilder;

fn url() -> String {
    conformance_tests::servers::env("CACHE_TEST_REDIS_URL")
}

/// A sync handler of an async service: the Redis connection belongs to the service's
/// multi-thread runtime, the blocking view runs inside `spawn_blocking` (and from
/// plain threads it starts there).
#[test]
fn blocking_view_of_an_async_redis_cache_inside_spawn_blocking() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let cache = Cache::new(
            RedisBuilder::new(url())
                .namespace(conformance_tests::random_namespace())
                .build()
                .await
                .expect("connects to the test Redis"),
        );
        let sync_cache = blocking::Cache::from_async(cache.clone()).unwrap();
        tokio::task::spawn_blocking(move || {
            conformance_tests::scenarios::blocking_from_threads(&sync_cache)
        })
        .await
        .expect("the sync handler ran");
        assert!(cache.stats().computes >= 1);
    });
}
