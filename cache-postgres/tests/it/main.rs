//! The integration tests of cache-postgres, in one test binary (one link instead of one
//! per file): each module is what was a test file of its own; `common` is shared;
//! `scenarios` (blocking API, lazy start, stampede, fault) comes from [`PostgresSpec`].

mod common;
mod config;
mod conformance;
mod fence;
mod tls;

use cache_postgres::PostgresBuilder;
use std::time::Duration;

/// What the shared scenarios need from PostgreSQL.
struct PostgresSpec;

impl conformance_tests::scenarios::ScenarioSpec for PostgresSpec {
    type Builder = PostgresBuilder;
    /// Stopped with `pg_ctl -m immediate` (a crash) and started again.
    type Server = common::OwnPostgres;

    async fn builder(&self, namespace: &str) -> PostgresBuilder {
        common::builder(namespace)
            .await
            .timeout(Duration::from_secs(5))
    }

    fn unreachable(&self, port: u16) -> Option<PostgresBuilder> {
        Some(
            PostgresBuilder::new(format!("postgres://postgres@127.0.0.1:{port}/cache_test"))
                .connect_timeout(Duration::from_millis(300)),
        )
    }

    async fn child_env(&self) -> Vec<(&'static str, String)> {
        vec![("CACHE_TEST_POSTGRES_URL", common::url().await)]
    }

    fn own_server(&self) -> common::OwnPostgres {
        common::OwnPostgres::start_new()
    }

    async fn on_own_server(&self, port: u16, timeout: Duration) -> PostgresBuilder {
        PostgresBuilder::new(format!("postgres://postgres@127.0.0.1:{port}/postgres"))
            .namespace("fault")
            .timeout(timeout)
            .connect_timeout(timeout)
    }
}

conformance_tests::scenarios!(PostgresSpec);
