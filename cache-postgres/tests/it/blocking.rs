//! The blocking API over PostgreSQL: the pool is made inside the blocking cache's own
//! runtime and used from plain threads.

use cache_core::{blocking, Cache};
use cache_postgres::PostgresBuilder;

#[test]
fn blocking_cache_over_postgres_from_several_threads() {
    let url = conformance_tests::servers::env("CACHE_TEST_POSTGRES_URL");
    let namespace = conformance_tests::random_namespace();
    let cache = blocking::Cache::connect(|| async move {
        Ok(Cache::new(
            PostgresBuilder::new(url)
                .namespace(namespace)
                .build()
                .await?,
        ))
    })
    .expect("connects to the test PostgreSQL");
    conformance_tests::scenarios::blocking_from_threads(&cache);
}
