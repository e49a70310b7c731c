//! Shared by the DynamoDB integration tests: the server (moto) comes from
//! `scripts/servers.sh`; the SDK gets static test credentials and a region, so it never
//! looks for real ones.

use aws_sdk_dynamodb::config::retry::{RetryConfig, RetryPartition, TokenBucket};
use cache_core::{async_trait, CacheBackend};
use cache_dynamodb::{DynamoBackend, DynamoBuilder};
use conformance_tests::servers::{self, OwnProcess, OwnServer};
use conformance_tests::Harness;
pub use servers::env;
use std::sync::Arc;
use std::time::Duration;

/// The table of a test's namespace: its own, made once, idempotently. moto copies the
/// whole table for every TransactWriteItems (to roll back), so a table shared by every
/// test (and kept across runs by a long-running moto) would make each fenced write
/// slower as the table grows; DynamoDB does nothing of the kind.
pub fn table_for(namespace: &str) -> String {
    let clean: String = namespace
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "_-.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .take(200)
        .collect();
    format!("t-{clean}")
}

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

/// The SDK configuration of the clients on the shared test server: 20 attempts per
/// call instead of the SDK's 3, quick backoff, no retry quota. moto's TransactWriteItems copies the whole table (to
/// roll back) without a lock, so under the suite's parallel writes some transactions
/// fail with HTTP 500 ("dictionary changed size during iteration"), which the SDK
/// retries (a retried transaction carries its idempotency token). DynamoDB has no
/// such failure.
pub fn client_config(endpoint: &str) -> aws_sdk_dynamodb::Config {
    aws_sdk_dynamodb::Config::builder()
        .behavior_version_latest()
        .endpoint_url(endpoint)
        .region(aws_sdk_dynamodb::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "test", "test", None, None, "test",
        ))
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(20)
                .with_initial_backoff(Duration::from_millis(10))
                .with_max_backoff(Duration::from_millis(200)),
        )
        .retry_partition(
            RetryPartition::custom("moto-tests")
                .token_bucket(TokenBucket::unlimited())
                .build(),
        )
        .http_client(
            aws_smithy_http_client::Builder::new()
                .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
                    aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
                ))
                .build_https(),
        )
        .build()
}

pub async fn builder(namespace: &str) -> DynamoBuilder {
    let url = url().await;
    builder_at(&url)
        .client_config(client_config(&url))
        // moto rolls a cancelled transaction back by restoring a copy of the table
        // taken when it began, erasing what concurrent requests wrote meanwhile (a
        // set_if_absent race then had two winners): each backend's transactions run
        // alone, its other requests among themselves. DynamoDB needs no such thing.
        .test_transactions_alone()
        .table(table_for(namespace))
        .namespace(namespace)
        // moto is written in Python and serves ≈ 500 calls per second: the suite's
        // 1 000 parallel set/get queue behind each other there (past 5 s on a loaded CI
        // machine), and new connections wait in its accept queue (a connect past 5 s
        // failed a fresh-clone CI run). The behaviour is under test, not the speed.
        .timeout(Duration::from_secs(30))
        .connect_timeout(Duration::from_secs(30))
}

/// A backend on the namespace's test table, creating the table if needed.
pub async fn backend(namespace: &str) -> DynamoBackend {
    let b = builder(namespace).await;
    b.create_table().await.unwrap_or_else(|e| {
        panic!("cannot reach the test DynamoDB ({e}); start it with `bash scripts/servers.sh start dynamodb`")
    });
    b.build().await.expect("the test table")
}

/// The raw SDK client on the test server.
pub async fn raw_client() -> aws_sdk_dynamodb::Client {
    aws_sdk_dynamodb::Client::from_conf(client_config(&url().await))
}

/// One client and one table per test (the harness is made for each); every namespace
/// the test asks for shares them.
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
        let store = self
            .store
            .get_or_init(|| async {
                // Each write is a transaction, which moto serves by copying the whole
                // table under Python's lock: the suite's 1 000 parallel writes into one
                // table queue for tens of seconds on a loaded machine (DynamoDB takes
                // them at once). The behaviour is under test, not moto's speed.
                let b = builder(&conformance_tests::random_namespace())
                    .await
                    .timeout(Duration::from_secs(180));
                b.create_table().await.unwrap_or_else(|e| {
                    panic!("cannot reach the test DynamoDB ({e}); start it with `bash scripts/servers.sh start dynamodb`")
                });
                b.build().await.expect("the test table")
            })
            .await;
        Arc::new(store.with_namespace(namespace).expect("valid namespace"))
    }

    /// moto (Python) answers ≈ 500 calls per second: while the suite's 1 000 parallel
    /// set/get run, two calls of an expiry case can be more than 500 ms apart.
    fn ttl_scale(&self) -> u32 {
        6
    }
}

/// A moto of a test's own (`CACHE_TEST_DYNAMODB_SERVER`) with the table `table`: moto
/// keeps its tables in memory, so each start makes the table again (as a real outage
/// would not need).
pub struct OwnMoto {
    process: OwnProcess,
    table: &'static str,
}

impl OwnMoto {
    pub fn start(table: &'static str) -> Self {
        let port = OwnProcess::free_port();
        let process = OwnProcess::start(
            &env("CACHE_TEST_DYNAMODB_SERVER"),
            &["-H", "127.0.0.1", "-p", &port.to_string()],
            port,
        );
        let moto = OwnMoto { process, table };
        moto.create_table();
        moto
    }

    /// From a thread and a runtime of its own: `restart` is called from synchronous
    /// code inside the test's runtime.
    fn create_table(&self) {
        let builder = builder_at(&format!("http://127.0.0.1:{}", self.process.port))
            .table(self.table)
            .connect_timeout(Duration::from_secs(5));
        std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(builder.create_table())
        })
        .join()
        .unwrap()
        .expect("the table is made on the test's own moto");
    }
}

impl OwnServer for OwnMoto {
    fn port(&self) -> u16 {
        self.process.port
    }

    fn kill(&mut self) {
        self.process.kill();
    }

    fn restart(&mut self) {
        self.process.restart();
        self.create_table();
    }
}
