//! The blocking API over Memcached: the pools are made inside the blocking cache's
//! own runtime and used from plain threads.

use cache_core::{blocking, Cache};
use cache_memcached::MemcachedBuilder;

#[test]
fn blocking_cache_over_memcached_from_several_threads() {
    let servers = conformance_tests::servers::env("CACHE_TEST_MEMCACHED_SERVERS");
    let namespace = conformance_tests::random_namespace();
    let cache = blocking::Cache::connect(|| async move {
        Ok(Cache::new(
            MemcachedBuilder::default()
                .servers(servers.split(','))
                .namespace(namespace)
                .build()
                .await?,
        ))
    })
    .expect("connects to the test memcached");
    conformance_tests::scenarios::blocking_from_threads(&cache);
}
