//! Shared by the Memcached integration tests: the servers come from `scripts/servers.sh`.

use async_memcached::Client;
use cache_core::{async_trait, CacheBackend};
use cache_memcached::{MemcachedBackend, MemcachedBuilder};
use conformance_tests::servers::{self, OwnProcess};
use conformance_tests::Harness;
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

/// A memcached of a test's own on `port` (`CACHE_TEST_MEMCACHED_BIN`), to kill and restart.
pub fn memcached(port: u16) -> OwnProcess {
    let bin = env("CACHE_TEST_MEMCACHED_BIN");
    let port_s = port.to_string();
    let mut args = vec!["-l", "127.0.0.1", "-p", &port_s, "-U", "0", "-m", "16"];
    // memcached refuses to run as root unless told which user to be.
    if is_root() {
        args.extend(["-u", "root"]);
    }
    OwnProcess::start(&bin, &args, port)
}

/// Whether this process runs as root (its real uid in /proc/self/status is 0).
fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}
