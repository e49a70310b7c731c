//! Shared by the DynamoDB integration tests: the server (moto) comes from
//! `scripts/servers.sh`; the SDK gets static test credentials and a region, so it never
//! looks for real ones.
#![allow(dead_code, unused_imports)]

use cache_core::{async_trait, CacheBackend};
use cache_dynamodb::{DynamoBackend, DynamoBuilder};
use conformance_tests::{servers, Harness};
pub use servers::env;
use std::sync::Arc;
use std::time::Duration;

/// The table of the shared tests (made once, idempotently).
pub const TABLE: &str = "cache_test";

pub async fn url() -> String {
    servers::address(&servers::DYNAMODB).await
}

/// A builder for `endpoint` with test credentials and region.
pub fn builder_at(endpoint: &str) -> DynamoBuilder {
    DynamoBuilder::default()
        .endpoint(endpoint)
        .region("us-east-1")
        .static_credentials("test", "test")
}

pub async fn builder(namespace: &str) -> DynamoBuilder {
    builder_at(&url().await)
        .table(TABLE)
        .namespace(namespace)
        // moto is written in Python and serves ≈ 500 calls per second: the suite's
        // 1 000 parallel set/get queue behind each other there (past 5 s on a loaded CI
        // machine), and new connections wait in its accept queue (a connect past 5 s
        // failed a fresh-clone CI run). The behaviour is under test, not the speed.
        .timeout(Duration::from_secs(30))
        .connect_timeout(Duration::from_secs(30))
}

/// A backend on the shared test table, creating the table if needed.
pub async fn backend(namespace: &str) -> DynamoBackend {
    let b = builder(namespace).await;
    b.create_table().await.unwrap_or_else(|e| {
        panic!("cannot reach the test DynamoDB ({e}); start it with `bash scripts/servers.sh start dynamodb`")
    });
    b.build().await.expect("the test table")
}

/// The raw SDK client on the test server.
pub async fn raw_client() -> aws_sdk_dynamodb::Client {
    let conf = aws_sdk_dynamodb::Config::builder()
        .behavior_version_latest()
        .endpoint_url(url().await)
        .region(aws_sdk_dynamodb::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "test", "test", None, None, "test",
        ))
        .http_client(
            aws_smithy_http_client::Builder::new()
                .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
                    aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
                ))
                .build_https(),
        )
        .build();
    aws_sdk_dynamodb::Client::from_conf(conf)
}

/// One client per test; every namespace asked for shares it.
pub struct DynamoHarness {
    store: tokio::sync::OnceCell<DynamoBackend>,
}

impl DynamoHarness {
    pub fn new() -> Self {
        DynamoHarness {
            store: tokio::sync::OnceCell::new(),
        }
    }
}

#[async_trait]
impl Harness for DynamoHarness {
    async fn backend(&self, namespace: &str) -> Arc<dyn CacheBackend> {
        let store = self.store.get_or_init(|| backend("harness")).await;
        Arc::new(store.with_namespace(namespace).expect("valid namespace"))
    }

    /// moto (Python) answers ≈ 500 calls per second: while the suite's 1 000 parallel
    /// set/get run, two calls of an expiry case can be more than 500 ms apart.
    fn ttl_scale(&self) -> u32 {
        6
    }
}
