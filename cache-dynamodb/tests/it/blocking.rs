//! The blocking API over DynamoDB: the client is made inside the blocking cache's own
//! runtime and used from plain threads.

use crate::common;
use cache_core::{blocking, Cache};

#[test]
fn blocking_cache_over_dynamodb_from_several_threads() {
    let url = common::env("CACHE_TEST_DYNAMODB_URL");
    let namespace = conformance_tests::random_namespace();
    let cache = blocking::Cache::connect(|| async move {
        let builder = common::builder_at(&url)
            .table(common::table_for(&namespace))
            .namespace(namespace);
        builder.create_table().await?;
        Ok(Cache::new(builder.build().await?))
    })
    .expect("connects to the test DynamoDB");
    conformance_tests::scenarios::blocking_from_threads(&cache);
}
