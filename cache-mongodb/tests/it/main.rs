//! The integration tests of cache-mongodb, in one test binary (one link instead of one
//! per file): each module is what was a test file of its own; `common` is shared;
//! `scenarios` (blocking API, lazy start, stampede, fault) comes from [`MongoSpec`].

mod clock;
mod common;
mod config;
mod conformance;
mod fence;

use cache_mongodb::MongoBuilder;
use conformance_tests::servers::OwnProcess;
use std::time::Duration;

/// What the shared scenarios need from MongoDB (SecantusDB in the tests).
struct MongoSpec;

impl conformance_tests::scenarios::ScenarioSpec for MongoSpec {
    type Builder = MongoBuilder;
    type Server = OwnProcess;

    async fn builder(&self, namespace: &str) -> MongoBuilder {
        common::builder(namespace).await
    }

    fn unreachable(&self, port: u16) -> Option<MongoBuilder> {
        Some(
            MongoBuilder::new(format!("mongodb://127.0.0.1:{port}/db"))
                .connect_timeout(Duration::from_millis(300)),
        )
    }

    async fn child_env(&self) -> Vec<(&'static str, String)> {
        vec![("CACHE_TEST_MONGODB_URL", common::url().await)]
    }

    /// A SecantusDB of the test's own.
    fn own_server(&self) -> OwnProcess {
        common::own_server(OwnProcess::free_port())
    }

    async fn on_own_server(&self, port: u16, timeout: Duration) -> MongoBuilder {
        MongoBuilder::new(format!("mongodb://127.0.0.1:{port}/fault"))
            .namespace("fault")
            .timeout(timeout)
            .connect_timeout(Duration::from_secs(5))
    }
}

conformance_tests::scenarios!(MongoSpec);
