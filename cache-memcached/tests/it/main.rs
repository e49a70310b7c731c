//! The integration tests of cache-memcached, in one test binary (one link instead of one
//! per file): each module is what was a test file of its own; `common` is shared;
//! `scenarios` (blocking API, lazy start, stampede, fault) comes from [`MemcachedSpec`].

mod clock;
mod common;
mod config;
mod conformance;
mod fault;
mod fence;
mod namespaces;

use cache_memcached::MemcachedBuilder;
use conformance_tests::servers::{self, OwnProcess};
use std::time::Duration;

/// What the shared scenarios need from memcached.
struct MemcachedSpec;

impl conformance_tests::scenarios::ScenarioSpec for MemcachedSpec {
    type Builder = MemcachedBuilder;
    type Server = OwnProcess;

    /// All three test servers: a stampede's lock lives on one of them, chosen by the
    /// ring.
    async fn builder(&self, namespace: &str) -> MemcachedBuilder {
        common::builder(namespace)
            .await
            .servers(common::servers())
            .timeout(Duration::from_secs(5))
    }

    fn unreachable(&self, port: u16) -> Option<MemcachedBuilder> {
        Some(
            MemcachedBuilder::new(format!("127.0.0.1:{port}"))
                .connect_timeout(Duration::from_millis(300)),
        )
    }

    async fn child_env(&self) -> Vec<(&'static str, String)> {
        vec![
            (servers::MEMCACHED.var, common::url().await),
            (
                "CACHE_TEST_MEMCACHED_SERVERS",
                common::env("CACHE_TEST_MEMCACHED_SERVERS"),
            ),
        ]
    }

    fn own_server(&self) -> OwnProcess {
        common::memcached(OwnProcess::free_port())
    }

    async fn on_own_server(&self, port: u16, timeout: Duration) -> MemcachedBuilder {
        MemcachedBuilder::new(format!("127.0.0.1:{port}"))
            .namespace("fault")
            .timeout(timeout)
    }

    fn fault_timeout(&self) -> Duration {
        Duration::from_millis(200)
    }
}

conformance_tests::scenarios!(MemcachedSpec);
