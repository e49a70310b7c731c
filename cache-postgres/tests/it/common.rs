//! Shared by the PostgreSQL integration tests: the server comes from `scripts/servers.sh`.

use cache_core::{async_trait, CacheBackend};
use cache_postgres::{PostgresBackend, PostgresBuilder};
use conformance_tests::{servers, Harness};
pub use servers::env;
use std::sync::Arc;

/// A table name made of quotes, `;`, `%`, `_` and a backslash: quoted, never pasted.
pub const HOSTILE_TABLE: &str = "cache\"; DROP TABLE x; --%_\\";

pub async fn url() -> String {
    servers::address(&servers::POSTGRES).await
}

pub async fn builder(namespace: &str) -> PostgresBuilder {
    PostgresBuilder::new(url().await)
        .namespace(namespace)
        .max_value_size(4 * 1024 * 1024)
        .pool_size(8)
}

pub async fn backend(namespace: &str) -> PostgresBackend {
    builder(namespace)
        .await
        .build()
        .await
        .unwrap_or_else(|e| panic!("cannot connect to the test PostgreSQL ({e}); start it with `bash scripts/servers.sh start postgres`"))
}

/// One pool per test; every namespace asked for shares it, as processes share a table.
pub struct PostgresHarness {
    table: Option<&'static str>,
    store: tokio::sync::OnceCell<PostgresBackend>,
}

impl PostgresHarness {
    pub fn new() -> Self {
        PostgresHarness {
            table: None,
            store: tokio::sync::OnceCell::new(),
        }
    }

    /// A logged table with a hostile name.
    pub fn hostile_logged_table() -> Self {
        PostgresHarness {
            table: Some(HOSTILE_TABLE),
            store: tokio::sync::OnceCell::new(),
        }
    }
}

#[async_trait]
impl Harness for PostgresHarness {
    async fn backend(&self, namespace: &str) -> Arc<dyn CacheBackend> {
        let store = self
            .store
            .get_or_init(|| async {
                let mut b = builder("harness").await;
                if let Some(t) = self.table {
                    b = b.table(t).unlogged(false);
                }
                b.build().await.unwrap_or_else(|e| {
                    panic!("cannot connect to the test PostgreSQL ({e}); start it with `bash scripts/servers.sh start postgres`")
                })
            })
            .await;
        Arc::new(store.with_namespace(namespace).expect("valid namespace"))
    }
}
