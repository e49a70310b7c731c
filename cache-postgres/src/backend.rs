//! `PostgresBuilder` and `PostgresBackend`: a thin `CacheBackend` over the driver side.

use crate::config::PostgresConfig;
use crate::driver::{body, token_bytes, ttl_ms, Driver, Sql};
use crate::error::BACKEND;
use cache_core::raw::{validate_namespace, KeyKind};
use cache_core::{async_trait, Bytes, CacheBackend, Capabilities, Expiry, LockToken, Result};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio_postgres::Row;

/// Builder for [`PostgresBackend`].
///
/// ```no_run
/// # async fn demo() -> cache_core::Result<()> {
/// use cache_postgres::PostgresBackend;
/// use std::time::Duration;
/// let backend = PostgresBackend::builder()
///     .dsn("postgres://app:secret@127.0.0.1:5432/app")
///     .namespace("sessions")
///     .table("cache_entries")
///     .timeout(Duration::from_millis(500))
///     .build()
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Default)]
#[must_use]
pub struct PostgresBuilder {
    config: PostgresConfig,
    /// Connection settings given as a driver config; wins over `config.dsn`.
    pg: Option<tokio_postgres::Config>,
}

impl PostgresBuilder {
    /// A builder for the server a driver config describes (its `Debug` hides the
    /// password too). It wins over [`dsn`](Self::dsn).
    pub fn from_pg_config(pg: tokio_postgres::Config) -> Self {
        PostgresBuilder {
            pg: Some(pg),
            ..Self::default()
        }
    }
    /// A builder for the server at `dsn`.
    pub fn new(dsn: impl Into<String>) -> Self {
        Self::default().dsn(dsn)
    }
    cache_core::builder_setters! { config: PostgresConfig;
        from_config,
        dsn(dsn: impl Into<String>) = dsn.into(),
        namespace,
        schema(schema: impl Into<String>) = schema.into(),
        table(table: impl Into<String>) = table.into(),
        unlogged(unlogged: bool),
        pool_size, timeout, connect_timeout,
        sweep_interval(every: Option<Duration>),
        /// Needs the `tls` feature.
        tls_ca_file(path: impl Into<std::path::PathBuf>) = Some(path.into()),
        max_value_size,
    }

    /// Connect once, create the table if absent, and make the pool. A bad DSN, a
    /// wrong password, a missing database or schema is a
    /// [`Config`](cache_core::ErrorKind::Config) error at once; an unreachable server
    /// is `Unavailable` or `Timeout` within the connect timeout.
    pub async fn build(self) -> Result<PostgresBackend> {
        let cfg = self.config;
        validate_namespace(BACKEND, &cfg.namespace)?;
        let driver = Driver::connect(&cfg, self.pg).await?;
        tracing::debug!(namespace = %cfg.namespace, table = %cfg.table, "postgres backend connected");
        Ok(PostgresBackend::on_driver(driver, cfg))
    }
}

/// A cache backend on one PostgreSQL table, shared by every namespace.
///
/// Rows are `(namespace, key, value bytea, expires_at timestamptz)`, keys in the core's
/// layout; every statement is parameterised, and the table's name is quoted, so no
/// key, namespace or name can inject SQL.
pub struct PostgresBackend {
    driver: Arc<Driver>,
    caps: Capabilities,
    config: PostgresConfig,
    closed: AtomicBool,
}

cache_core::backend_handle! {
    PostgresBackend: PostgresBuilder, PostgresConfig;
    /// Another backend on the same pool and table with its own namespace.
    with_namespace: on_driver(driver.clone(), config),
}

impl PostgresBackend {
    fn on_driver(driver: Arc<Driver>, config: PostgresConfig) -> Self {
        driver.handles.fetch_add(1, Ordering::AcqRel);
        PostgresBackend {
            driver,
            caps: config.capabilities(),
            config,
            closed: AtomicBool::new(false),
        }
    }

    /// Delete expired rows of every namespace now (what the background sweep does);
    /// returns how many.
    pub async fn sweep(&self) -> Result<u64> {
        self.driver.sweep().await
    }

    fn ns(&self) -> &str {
        &self.config.namespace
    }

    /// Rows of `sql` with `$1` = this namespace and `$2` = the store key of `key`.
    async fn by_key(&self, sql: &Sql, kind: KeyKind, key: &str) -> Result<Vec<Row>> {
        let k = body(self.ns(), kind, key);
        self.driver.query(sql, &[&self.ns(), &k]).await
    }

    /// The store keys of the locks of `keys` (a lock's key is hashed on its own terms,
    /// so it is computed, never derived from the value's key in SQL).
    fn lock_keys<'a>(&self, keys: impl Iterator<Item = &'a str>) -> Vec<String> {
        keys.map(|k| body(self.ns(), KeyKind::Lock, k)).collect()
    }

    fn release(&self) {
        if !self.closed.swap(true, Ordering::AcqRel)
            && self.driver.handles.fetch_sub(1, Ordering::AcqRel) == 1
        {
            self.driver.stop_sweeper();
        }
    }
}

impl Drop for PostgresBackend {
    fn drop(&mut self) {
        self.release();
    }
}

cache_core::impl_backend_builder!(config: PostgresBuilder => PostgresBackend, PostgresConfig::capabilities);

#[async_trait]
impl CacheBackend for PostgresBackend {
    cache_core::backend_identity!(caps);

    async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        let rows = self
            .by_key(&self.driver.sql.get, KeyKind::Value, key)
            .await?;
        Ok(rows.first().map(|r| Bytes::from(r.get::<_, Vec<u8>>(0))))
    }

    async fn set(&self, key: &str, value: Bytes, expiry: Expiry) -> Result<()> {
        let k = body(self.ns(), KeyKind::Value, key);
        let lock = body(self.ns(), KeyKind::Lock, key);
        let ttl = ttl_ms(expiry);
        self.driver
            .query(
                &self.driver.sql.set,
                &[&self.ns(), &k, &&value[..], &ttl, &lock],
            )
            .await
            .map(drop)
    }

    async fn delete(&self, key: &str) -> Result<bool> {
        let k = body(self.ns(), KeyKind::Value, key);
        let lock = body(self.ns(), KeyKind::Lock, key);
        // The mark, then the delete in a statement of its own (see `driver.rs`).
        let sql = &self.driver.sql;
        let rows = self
            .driver
            .query_after(
                (&sql.mark, &[&self.ns(), &lock]),
                (&sql.delete, &[&self.ns(), &k]),
            )
            .await?;
        Ok(rows.first().is_some_and(|r| r.get::<_, bool>(0)))
    }

    async fn has(&self, key: &str) -> Result<bool> {
        let rows = self
            .by_key(&self.driver.sql.has, KeyKind::Value, key)
            .await?;
        Ok(rows.first().is_some_and(|r| r.get::<_, bool>(0)))
    }

    async fn clear(&self) -> Result<()> {
        let sql = &self.driver.sql;
        self.driver
            .query_after((&sql.mark_all, &[&self.ns()]), (&sql.clear, &[&self.ns()]))
            .await
            .map(drop)
    }

    async fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<Bytes>>> {
        let ks: Vec<String> = keys
            .iter()
            .map(|k| body(self.ns(), KeyKind::Value, k))
            .collect();
        let rows = self
            .driver
            .query(&self.driver.sql.get_many, &[&self.ns(), &ks])
            .await?;
        Ok(rows
            .iter()
            .map(|r| r.get::<_, Option<Vec<u8>>>(0).map(Bytes::from))
            .collect())
    }

    async fn set_many(&self, items: &[(&str, Bytes)], expiry: Expiry) -> Result<()> {
        // One key twice in one ON CONFLICT statement fails (SQLSTATE 21000): keep the
        // last value given for each key.
        let order = cache_core::raw::last_of_each(items);
        let keys: Vec<String> = order
            .iter()
            .map(|&i| body(self.ns(), KeyKind::Value, items[i].0))
            .collect();
        let values: Vec<&[u8]> = order.iter().map(|&i| &items[i].1[..]).collect();
        let locks = self.lock_keys(order.iter().map(|&i| items[i].0));
        let ttl = ttl_ms(expiry);
        self.driver
            .query(
                &self.driver.sql.set_many,
                &[&self.ns(), &keys, &values, &ttl, &locks],
            )
            .await
            .map(drop)
    }

    async fn delete_many(&self, keys: &[&str]) -> Result<usize> {
        let ks: Vec<String> = keys
            .iter()
            .map(|k| body(self.ns(), KeyKind::Value, k))
            .collect();
        let locks = self.lock_keys(keys.iter().copied());
        let sql = &self.driver.sql;
        let rows = self
            .driver
            .query_after(
                (&sql.mark_many, &[&self.ns(), &locks]),
                (&sql.delete_many, &[&self.ns(), &ks]),
            )
            .await?;
        Ok(rows.iter().filter(|r| r.get::<_, bool>(0)).count())
    }

    async fn set_if_absent(&self, key: &str, value: Bytes, expiry: Expiry) -> Result<bool> {
        let k = body(self.ns(), KeyKind::Value, key);
        let lock = body(self.ns(), KeyKind::Lock, key);
        let ttl = ttl_ms(expiry);
        let rows = self
            .driver
            .query(
                &self.driver.sql.set_if_absent,
                &[&self.ns(), &k, &&value[..], &ttl, &lock],
            )
            .await?;
        Ok(!rows.is_empty())
    }

    async fn acquire_lock(&self, key: &str, ttl: Duration) -> Result<Option<LockToken>> {
        let token = LockToken::random();
        let k = body(self.ns(), KeyKind::Lock, key);
        let t = token_bytes(token.as_str());
        // The deadline is the server's `now()` plus the TTL, and a takeover compares
        // it with the server's `now()`: one clock for every process.
        let ttl = ttl_ms(Expiry::After(ttl));
        let rows = self
            .driver
            .query(
                &self.driver.sql.insert_if_absent,
                &[&self.ns(), &k, &&t[..], &ttl],
            )
            .await?;
        Ok((!rows.is_empty()).then_some(token))
    }

    async fn release_lock(&self, key: &str, token: &LockToken) -> Result<bool> {
        let k = body(self.ns(), KeyKind::Lock, key);
        let t = token_bytes(token.as_str());
        let rows = self
            .driver
            .query(&self.driver.sql.release, &[&self.ns(), &k, &&t[..]])
            .await?;
        Ok(!rows.is_empty())
    }

    /// One statement: deletes the lock row if `token` owns it (overtaken or not) and
    /// writes the value only if the deleted row held exactly the token (see the
    /// statements in `driver.rs` for why this is safe against concurrent writes).
    async fn set_locked(
        &self,
        key: &str,
        value: Bytes,
        expiry: Expiry,
        token: &LockToken,
    ) -> Result<bool> {
        let k = body(self.ns(), KeyKind::Value, key);
        let lock = body(self.ns(), KeyKind::Lock, key);
        let t = token_bytes(token.as_str());
        let ttl = ttl_ms(expiry);
        let rows = self
            .driver
            .query(
                &self.driver.sql.set_locked,
                &[&self.ns(), &k, &&value[..], &ttl, &lock, &&t[..]],
            )
            .await?;
        Ok(!rows.is_empty())
    }

    async fn close(&self) -> Result<()> {
        self.release();
        Ok(())
    }
}
