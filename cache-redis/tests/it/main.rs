//! The integration tests of cache-redis, in one test binary (one link instead of one
//! per file): each module is what was a test file of its own; `common` is shared;
//! `scenarios` (blocking API, lazy start, stampede, fault) comes from [`RedisSpec`].

mod auth;
mod blocking;
mod breaker;
mod chaos;
mod common;
mod conformance;
mod lazy;
mod namespaces;
mod trust;

use cache_redis::RedisBuilder;
use conformance_tests::servers::{self, OwnProcess};
use std::time::Duration;

/// What the shared scenarios need from Redis.
struct RedisSpec;

impl conformance_tests::scenarios::ScenarioSpec for RedisSpec {
    type Builder = RedisBuilder;
    type Server = OwnProcess;

    async fn builder(&self, namespace: &str) -> RedisBuilder {
        common::builder(&common::Target::Single, namespace)
            .await
            .timeout(Duration::from_secs(5))
    }

    fn unreachable(&self, port: u16) -> Option<RedisBuilder> {
        Some(
            RedisBuilder::new(format!("redis://127.0.0.1:{port}"))
                .connect_timeout(Duration::from_millis(300)),
        )
    }

    async fn child_env(&self) -> Vec<(&'static str, String)> {
        vec![(
            "CACHE_TEST_REDIS_URL",
            servers::address(&servers::REDIS).await,
        )]
    }

    fn own_server(&self) -> OwnProcess {
        OwnProcess::redis(OwnProcess::free_port(), &[])
    }

    async fn on_own_server(&self, port: u16, timeout: Duration) -> RedisBuilder {
        RedisBuilder::new(format!("redis://127.0.0.1:{port}"))
            .namespace("fault")
            .timeout(timeout)
    }

    fn fault_timeout(&self) -> Duration {
        Duration::from_millis(200)
    }
}

conformance_tests::scenarios!(RedisSpec);
