//! Shared by the Redis integration tests: servers come from `scripts/servers.sh`.

use cache_core::{async_trait, CacheBackend};
use cache_redis::{RedisBackend, RedisBuilder};
use conformance_tests::{servers, Harness};
pub use servers::env;
use std::sync::Arc;

#[derive(Clone)]
pub enum Target {
    Single,
    Cluster,
    Tls,
}

pub async fn builder(target: &Target, namespace: &str) -> RedisBuilder {
    let b = match target {
        Target::Single => RedisBuilder::new(servers::address(&servers::REDIS).await),
        Target::Cluster => RedisBuilder::cluster(env("CACHE_TEST_REDIS_CLUSTER_URLS").split(',')),
        Target::Tls => RedisBuilder::new(env("CACHE_TEST_REDIS_TLS_URL"))
            .tls_ca_file(env("CACHE_TEST_REDIS_TLS_CA")),
    };
    b.namespace(namespace).max_value_size(4 * 1024 * 1024)
}

pub async fn backend(target: &Target, namespace: &str) -> RedisBackend {
    builder(target, namespace)
        .await
        .build()
        .await
        .unwrap_or_else(|e| panic!("cannot connect to the test Redis ({e}); start it with `bash scripts/servers.sh start`"))
}

pub struct RedisHarness(pub Target);

#[async_trait]
impl Harness for RedisHarness {
    async fn backend(&self, namespace: &str) -> Arc<dyn CacheBackend> {
        Arc::new(backend(&self.0, namespace).await)
    }
}
