//! Shared by the MongoDB integration tests: the server comes from `scripts/servers.sh`.

use cache_core::{async_trait, CacheBackend};
use cache_mongodb::{MongoBackend, MongoBuilder};
use conformance_tests::{servers, Harness};
pub use servers::env;
use std::sync::Arc;

/// A collection name with `.`, quotes, `;`, spaces and regex characters (MongoDB
/// refuses `$` in collection names: a `Config` error, tested in config.rs).
pub const HOSTILE_COLLECTION: &str = "cache.x\"'; .*+?[]{}%_\\";

pub async fn url() -> String {
    servers::address(&servers::MONGODB).await
}

pub async fn builder(namespace: &str) -> MongoBuilder {
    MongoBuilder::new(url().await)
        .namespace(namespace)
        .max_value_size(4 * 1024 * 1024)
        // SecantusDB is written in Python: the suite's 1 000 parallel set/get queue
        // behind each other there (past 5 s on a loaded machine). The behaviour is
        // under test, not the speed.
        .timeout(std::time::Duration::from_secs(30))
}

pub async fn backend(namespace: &str) -> MongoBackend {
    builder(namespace).await.build().await.unwrap_or_else(|e| {
        panic!("cannot connect to the test MongoDB ({e}); start it with `bash scripts/servers.sh start mongodb`")
    })
}

/// One client per test; every namespace asked for shares it.
pub struct MongoHarness {
    collection: Option<&'static str>,
    store: tokio::sync::OnceCell<MongoBackend>,
}

impl MongoHarness {
    pub fn new() -> Self {
        MongoHarness {
            collection: None,
            store: tokio::sync::OnceCell::new(),
        }
    }

    pub fn hostile_collection() -> Self {
        MongoHarness {
            collection: Some(HOSTILE_COLLECTION),
            store: tokio::sync::OnceCell::new(),
        }
    }
}

#[async_trait]
impl Harness for MongoHarness {
    async fn backend(&self, namespace: &str) -> Arc<dyn CacheBackend> {
        let store = self
            .store
            .get_or_init(|| async {
                let mut b = builder("harness").await;
                if let Some(c) = self.collection {
                    b = b.collection(c);
                }
                b.build().await.unwrap_or_else(|e| {
                    panic!("cannot connect to the test MongoDB ({e}); start it with `bash scripts/servers.sh start mongodb`")
                })
            })
            .await;
        Arc::new(store.with_namespace(namespace).expect("valid namespace"))
    }

    /// SecantusDB (Python) slows under the suite's parallel load: longer short TTLs
    /// keep two calls of an expiry case well inside them.
    fn ttl_scale(&self) -> u32 {
        2
    }
}

/// A SecantusDB of a test's own on `port` (killed when dropped), started from Python
/// as `scripts/servers/mongodb.sh` does.
pub fn own_server(port: u16) -> conformance_tests::servers::OwnProcess {
    let python = env("CACHE_TEST_MONGODB_PYTHON");
    let script = format!(
        "from secantus.server import SecantusDBServer\n\
         s = SecantusDBServer(host='127.0.0.1', port={port}, storage_path=':memory:', \
         ttl_sweep_seconds=1.0, replica_set_name=None)\n\
         s.start()\n\
         s.wait()\n"
    );
    conformance_tests::servers::OwnProcess::start(&python, &["-c", &script], port)
}
