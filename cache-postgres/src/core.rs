//! The driver side: the pool, the table, the statements, key and TTL encoding.

use crate::config::PostgresConfig;
use crate::error::{config, map, pool, BACKEND};
use bb8::{ManageConnection, Pool};
use bb8_postgres::PostgresConnectionManager;
use cache_core::raw::{sha256_hex, KeyKind, KeyLayout, StoreKey, Ttl};
use cache_core::{Bytes, Error, Expiry, Result};
use std::future::Future;
use std::sync::{Arc, Weak};
use std::time::Duration;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::NoTls;

/// Keys in a `text` column: no NUL byte (PostgreSQL refuses it in text), and short
/// enough for the primary key's btree (an index row holds at most ~2.7 kB).
pub(crate) const LAYOUT: KeyLayout = KeyLayout::ANY
    .max_len(MAX_KEY_LEN)
    .safe_chars(|c| c != '\0');

/// Longest store key kept readable; longer ones are stored as their digest.
pub(crate) const MAX_KEY_LEN: usize = 2048;

/// Longest TTL written (200 years, in ms): longer ones are as good as forever, and
/// `timestamptz` has an end.
const MAX_TTL_MS: i64 = 200 * 365 * 86_400 * 1000;

/// Rows deleted per statement by the sweep.
const SWEEP_BATCH: i64 = 1000;

pub(crate) type PgPool = Pool<PostgresConnectionManager<NoTls>>;

/// `"name"` with inner quotes doubled: any name is one identifier, never SQL.
fn quote_ident(name: &str) -> Result<String> {
    if name.is_empty() || name.len() > 63 || name.contains('\0') {
        return Err(config(format!(
            "invalid SQL identifier {name:?}: use 1 to 63 bytes without NUL"
        )));
    }
    Ok(format!("\"{}\"", name.replace('"', "\"\"")))
}

/// The TTL in milliseconds for `now() + ms`, or `None` for no expiry.
pub(crate) fn ttl_ms(expiry: Expiry) -> Option<i64> {
    match expiry.ttl() {
        Ttl::Forever => None,
        // Expired can only happen here when an `Expiry::At` passes during the call.
        ttl => Some(
            i64::try_from(ttl.as_millis_ceil().unwrap_or(0))
                .unwrap_or(i64::MAX)
                .min(MAX_TTL_MS),
        ),
    }
}

/// Every statement, with the table's quoted name pasted in once, at build.
pub(crate) struct Statements {
    pub(crate) get: String,
    pub(crate) has: String,
    pub(crate) set: String,
    pub(crate) delete: String,
    pub(crate) clear: String,
    pub(crate) get_many: String,
    pub(crate) set_many: String,
    pub(crate) delete_many: String,
    pub(crate) insert_if_absent: String,
    pub(crate) release: String,
    sweep: String,
}

const LIVE: &str = "(expires_at IS NULL OR expires_at > now())";
const EXPIRES: &str = "now() + $4::int8 * interval '1 millisecond'";

impl Statements {
    fn new(table: &str) -> Self {
        let upsert = "ON CONFLICT (namespace, key) DO UPDATE \
                      SET value = EXCLUDED.value, expires_at = EXCLUDED.expires_at";
        Statements {
            get: format!("SELECT value FROM {table} WHERE namespace = $1 AND key = $2 AND {LIVE}"),
            has: format!(
                "SELECT EXISTS (SELECT 1 FROM {table} WHERE namespace = $1 AND key = $2 AND {LIVE})"
            ),
            set: format!(
                "INSERT INTO {table} (namespace, key, value, expires_at) \
                 VALUES ($1, $2, $3, {EXPIRES}) {upsert}"
            ),
            delete: format!(
                "DELETE FROM {table} WHERE namespace = $1 AND key = $2 RETURNING {LIVE}"
            ),
            clear: format!("DELETE FROM {table} WHERE namespace = $1"),
            get_many: format!(
                "SELECT t.value FROM unnest($2::text[]) WITH ORDINALITY AS k(key, ord) \
                 LEFT JOIN {table} t ON t.namespace = $1 AND t.key = k.key \
                 AND (t.expires_at IS NULL OR t.expires_at > now()) ORDER BY k.ord"
            ),
            set_many: format!(
                "INSERT INTO {table} (namespace, key, value, expires_at) \
                 SELECT $1, u.key, u.value, {EXPIRES} FROM unnest($2::text[], $3::bytea[]) AS u(key, value) \
                 {upsert}"
            ),
            delete_many: format!(
                "DELETE FROM {table} WHERE namespace = $1 AND key = ANY($2::text[]) RETURNING {LIVE}"
            ),
            // Takes a free or expired row atomically: a live row makes the update's
            // WHERE false, so nothing is returned.
            insert_if_absent: format!(
                "INSERT INTO {table} AS t (namespace, key, value, expires_at) \
                 VALUES ($1, $2, $3, {EXPIRES}) {upsert} \
                 WHERE t.expires_at IS NOT NULL AND t.expires_at <= now() RETURNING 1"
            ),
            release: format!(
                "DELETE FROM {table} WHERE namespace = $1 AND key = $2 AND value = $3 \
                 AND {LIVE} RETURNING 1"
            ),
            sweep: format!(
                "DELETE FROM {table} WHERE ctid = ANY(ARRAY( \
                 SELECT ctid FROM {table} WHERE expires_at <= now() LIMIT $1)) RETURNING 1"
            ),
        }
    }
}

/// What every namespace's handle shares: the pool and the statements.
pub(crate) struct Shared {
    pub(crate) pool: PgPool,
    pub(crate) sql: Statements,
    pub(crate) timeout: Duration,
    /// Open backend handles; the sweep stops when the last one closes.
    pub(crate) handles: std::sync::atomic::AtomicUsize,
    sweeper: std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl Shared {
    /// Connect once (so a bad password or a missing database is an error now, not a
    /// retry loop), create the table if absent, and make the pool.
    pub(crate) async fn connect(cfg: &PostgresConfig) -> Result<Arc<Self>> {
        if cfg.timeout.is_zero() || cfg.connect_timeout.is_zero() || cfg.pool_size == 0 {
            return Err(config(
                "timeout, connect_timeout and pool_size must be positive",
            ));
        }
        if cfg.sweep_interval.is_some_and(|d| d.is_zero()) {
            return Err(config(
                "sweep_interval must be positive, or None to turn the sweep off",
            ));
        }
        let mut pg: tokio_postgres::Config = cfg.dsn.parse().map_err(|e| {
            config("cannot parse the DSN; use postgres://user:password@host:port/db or key=value pairs")
                .with_source(e)
        })?;
        pg.connect_timeout(cfg.connect_timeout);
        let table = format!("{}.{}", quote_ident(&cfg.schema)?, quote_ident(&cfg.table)?);
        let manager = PostgresConnectionManager::new(pg, NoTls);
        let first = match tokio::time::timeout(cfg.connect_timeout, manager.connect()).await {
            Ok(conn) => conn.map_err(map)?,
            Err(_) => return Err(Error::timeout(BACKEND, cfg.connect_timeout)),
        };
        create_table(&first, cfg, &table).await?;
        let pool = Pool::builder()
            .max_size(cfg.pool_size)
            // One connection stays open, so a call after a quiet spell does not pay
            // for a new connection (and its authentication) within its timeout.
            .min_idle(Some(1))
            .connection_timeout(cfg.timeout)
            // A round trip per checkout would double the cost of a call; a broken
            // connection is noticed (is_closed) and dropped when it comes back.
            .test_on_check_out(false)
            .build_unchecked(manager);
        // The checked connection is the pool's first.
        let _ = pool.add(first);
        let shared = Arc::new(Shared {
            pool,
            sql: Statements::new(&table),
            timeout: cfg.timeout,
            handles: std::sync::atomic::AtomicUsize::new(0),
            sweeper: std::sync::Mutex::new(None),
        });
        if let Some(every) = cfg.sweep_interval {
            let handle = tokio::spawn(sweep_loop(Arc::downgrade(&shared), every));
            *shared.sweeper.lock().unwrap_or_else(|p| p.into_inner()) = Some(handle);
        }
        Ok(shared)
    }

    /// Bound a whole call (waiting for a connection included) by the timeout.
    async fn bounded<T>(&self, call: impl Future<Output = Result<T>>) -> Result<T> {
        match tokio::time::timeout(self.timeout, call).await {
            Ok(r) => r,
            Err(_) => Err(Error::timeout(BACKEND, self.timeout)),
        }
    }

    /// Rows of `sql` with typed parameters: one round trip (no separate prepare).
    pub(crate) async fn query(
        &self,
        sql: &str,
        params: &[(&(dyn ToSql + Sync), Type)],
    ) -> Result<Vec<tokio_postgres::Row>> {
        self.bounded(async {
            let conn = self.pool.get().await.map_err(pool)?;
            conn.query_typed(sql, params).await.map_err(map)
        })
        .await
    }

    /// Delete expired rows, `SWEEP_BATCH` at a time; how many went.
    pub(crate) async fn sweep(&self) -> Result<u64> {
        let mut total = 0;
        loop {
            let n = self
                .query(&self.sql.sweep, &[(&SWEEP_BATCH, Type::INT8)])
                .await?
                .len() as u64;
            total += n;
            if n < SWEEP_BATCH as u64 {
                return Ok(total);
            }
        }
    }

    pub(crate) fn stop_sweeper(&self) {
        if let Some(h) = self
            .sweeper
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            h.abort();
        }
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        self.stop_sweeper();
    }
}

async fn sweep_loop(shared: Weak<Shared>, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.tick().await;
    loop {
        tick.tick().await;
        let Some(s) = shared.upgrade() else { return };
        match s.sweep().await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(removed = n, "swept expired rows"),
            Err(e) => tracing::warn!(error = %e, "sweeping expired rows failed; retrying later"),
        }
    }
}

/// Create the table and its expiry index if absent. Several processes may start at
/// once: an advisory lock serialises them (a bare `CREATE TABLE IF NOT EXISTS` race
/// fails with a unique violation on the catalog).
async fn create_table(
    conn: &tokio_postgres::Client,
    cfg: &PostgresConfig,
    table: &str,
) -> Result<()> {
    let id = sha256_hex(format!("{}.{}", cfg.schema, cfg.table).as_bytes());
    let index = quote_ident(&format!("cache_expires_{}", &id[..16]))?;
    let lock_id = i64::from_str_radix(&id[..15], 16).unwrap_or(0);
    let unlogged = if cfg.unlogged { "UNLOGGED " } else { "" };
    let ddl = format!(
        "BEGIN; SELECT pg_advisory_xact_lock({lock_id}); \
         CREATE {unlogged}TABLE IF NOT EXISTS {table} ( \
           namespace text NOT NULL, key text NOT NULL, value bytea NOT NULL, \
           expires_at timestamptz, PRIMARY KEY (namespace, key)); \
         CREATE INDEX IF NOT EXISTS {index} ON {table} (expires_at) WHERE expires_at IS NOT NULL; \
         COMMIT;"
    );
    if let Err(e) = conn.batch_execute(&ddl).await {
        let err = map(e);
        return Err(Error::new(
            err.kind(),
            BACKEND,
            format!("cannot create the cache table {table}: {}", err.message()),
        )
        .with_source(err));
    }
    Ok(())
}

/// A namespace's view: store keys of the core's layout in the `key` column, the
/// namespace in its own column.
pub(crate) fn body(namespace: &str, kind: KeyKind, key: &str) -> String {
    let k: StoreKey<'_> = LAYOUT.key(namespace, kind, key);
    k.body()
}

/// The token of a lock as stored in the `value` column.
pub(crate) fn token_bytes(token: &str) -> Bytes {
    Bytes::copy_from_slice(token.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_quoted_never_pasted() {
        assert_eq!(quote_ident("cache").unwrap(), "\"cache\"");
        assert_eq!(
            quote_ident("x\"; DROP TABLE t; --").unwrap(),
            "\"x\"\"; DROP TABLE t; --\""
        );
        assert!(quote_ident("").is_err());
        assert!(quote_ident(&"a".repeat(64)).is_err());
        assert!(quote_ident("a\0b").is_err());
    }

    #[test]
    fn ttls_round_up_and_clamp() {
        assert_eq!(ttl_ms(Expiry::Never), None);
        assert_eq!(ttl_ms(Expiry::After(Duration::from_micros(1500))), Some(2));
        assert_eq!(ttl_ms(Expiry::After(Duration::MAX)), Some(MAX_TTL_MS));
    }
}
