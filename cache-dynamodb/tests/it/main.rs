//! The integration tests of cache-dynamodb, in one test binary (one link instead of one
//! per file): each module is what was a test file of its own; `common` is shared;
//! `scenarios` (blocking API, lazy start, stampede, fault) comes from [`DynamoSpec`].

mod auth;
mod clock;
mod common;
mod config;
mod conformance;
mod fence;
mod unprocessed;

use cache_dynamodb::DynamoBuilder;
use std::time::Duration;

/// What the shared scenarios need from DynamoDB (moto in the tests).
struct DynamoSpec;

/// The table on the test's own moto.
const FAULT_TABLE: &str = "fault";

impl conformance_tests::scenarios::ScenarioSpec for DynamoSpec {
    type Builder = DynamoBuilder;
    type Server = common::OwnMoto;

    /// On the namespace's own table, made first (a missing table is a `Config` error,
    /// for good, to a lazy backend too).
    async fn builder(&self, namespace: &str) -> DynamoBuilder {
        let b = common::builder(namespace).await;
        b.create_table().await.unwrap_or_else(|e| {
            panic!("cannot reach the test DynamoDB ({e}); start it with `bash scripts/servers.sh start dynamodb`")
        });
        b
    }

    fn unreachable(&self, port: u16) -> Option<DynamoBuilder> {
        Some(
            common::builder_at(&format!("http://127.0.0.1:{port}"))
                .connect_timeout(Duration::from_millis(300)),
        )
    }

    async fn child_env(&self) -> Vec<(&'static str, String)> {
        vec![("CACHE_TEST_DYNAMODB_URL", common::url().await)]
    }

    fn own_server(&self) -> common::OwnMoto {
        common::OwnMoto::start(FAULT_TABLE)
    }

    async fn on_own_server(&self, port: u16, timeout: Duration) -> DynamoBuilder {
        common::builder_at(&format!("http://127.0.0.1:{port}"))
            .table(FAULT_TABLE)
            .namespace("fault")
            .timeout(timeout)
            .connect_timeout(Duration::from_secs(5))
    }
}

conformance_tests::scenarios!(DynamoSpec);
