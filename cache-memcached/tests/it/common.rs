//! Shared by the Memcached integration tests: the servers come from `scripts/servers.sh`.

use async_memcached::Client;
use cache_core::{async_trait, CacheBackend};
use cache_memcached::{MemcachedBackend, MemcachedBuilder};
use conformance_tests::{servers, Harness};
pub use servers::env;
use std::sync::Arc;

/// The single test server.
pub async fn url() -> String {
    servers::address(&servers::MEMCACHED).await
}

/// The three test servers.
pub fn servers() -> Vec<String> {
    env("CACHE_TEST_MEMCACHED_SERVERS")
        .split(',')
        .map(str::to_owned)
        .collect()
}

pub async fn builder(namespace: &str) -> MemcachedBuilder {
    MemcachedBuilder::new(url().await)
        .namespace(namespace)
        .pool_size(8)
}

pub async fn backend(namespace: &str) -> MemcachedBackend {
    builder(namespace).await.build().await.unwrap_or_else(|e| {
        panic!("cannot connect to the test memcached ({e}); start it with `bash scripts/servers.sh start memcached`")
    })
}

/// A raw client of the test server: another application on the same memcached.
pub async fn raw(addr: &str) -> Client {
    Client::new(format!("tcp://{addr}"))
        .await
        .expect("a raw connection to memcached")
}

/// One set of pools per test; every namespace asked for shares it.
pub struct MemcachedHarness {
    ring: bool,
    store: tokio::sync::OnceCell<MemcachedBackend>,
}

impl MemcachedHarness {
    /// The first test server alone.
    pub fn single() -> Self {
        MemcachedHarness {
            ring: false,
            store: tokio::sync::OnceCell::new(),
        }
    }

    /// All three test servers, keys spread by consistent hashing.
    pub fn ring() -> Self {
        MemcachedHarness {
            ring: true,
            store: tokio::sync::OnceCell::new(),
        }
    }
}

#[async_trait]
impl Harness for MemcachedHarness {
    async fn backend(&self, namespace: &str) -> Arc<dyn CacheBackend> {
        let store = self
            .store
            .get_or_init(|| async {
                let mut b = builder("harness").await;
                if self.ring {
                    b = b.servers(servers());
                }
                b.build().await.unwrap_or_else(|e| {
                    panic!("cannot connect to the test memcached ({e}); start it with `bash scripts/servers.sh start memcached`")
                })
            })
            .await;
        Arc::new(store.with_namespace(namespace).expect("valid namespace"))
    }
}
