//! The driver side: the pool, the table, the statements, key and TTL encoding.

use crate::config::PostgresConfig;
use crate::error::{config, map, pool, BACKEND};
use bb8::Pool;
use cache_core::raw::{sha256_hex, within, KeyKind, KeyLayout, StoreKey, Ttl};
use cache_core::{Bytes, Error, Expiry, Result};
use std::sync::{Arc, Weak};
use std::time::Duration;
use tokio_postgres::types::{ToSql, Type};

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

/// How connections talk TLS: rustls with the `tls` feature, never without it.
#[cfg(feature = "tls")]
pub(crate) type Connector = tokio_postgres_rustls::MakeRustlsConnect;
/// How connections talk TLS: rustls with the `tls` feature, never without it.
#[cfg(not(feature = "tls"))]
pub(crate) type Connector = tokio_postgres::NoTls;

pub(crate) type PgPool = Pool<Manager>;

/// The TLS connector: certificates verified against `tls_ca_file` or the system's roots.
#[cfg(feature = "tls")]
fn connector(cfg: &PostgresConfig) -> Result<Connector> {
    use rustls::pki_types::{pem::PemObject, CertificateDer};
    let mut roots = rustls::RootCertStore::empty();
    match &cfg.tls_ca_file {
        Some(path) => {
            let bad = |e: &dyn std::fmt::Display| {
                config(format!(
                    "cannot read tls_ca_file {}: {e}; give a PEM file of CA certificates",
                    path.display()
                ))
            };
            for cert in CertificateDer::pem_file_iter(path).map_err(|e| bad(&e))? {
                roots.add(cert.map_err(|e| bad(&e))?).map_err(|e| bad(&e))?;
            }
            if roots.is_empty() {
                return Err(bad(&"no certificate in the file"));
            }
        }
        None => {
            // Roots the system cannot parse are skipped, as every TLS client does.
            let found = rustls_native_certs::load_native_certs();
            roots.add_parsable_certificates(found.certs);
        }
    }
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| config(format!("rustls refused its own defaults: {e}")))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(tls))
}

/// Without the `tls` feature: plain connections; a CA file or `sslmode=require` is a
/// `Config` error rather than a silent downgrade.
#[cfg(not(feature = "tls"))]
fn connector(cfg: &PostgresConfig) -> Result<Connector> {
    if cfg.tls_ca_file.is_some() {
        return Err(config(
            "tls_ca_file is set but cache-postgres was built without its `tls` feature; enable it",
        ));
    }
    Ok(tokio_postgres::NoTls)
}

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

/// One statement: its text (the table's quoted name pasted in once, at build), its
/// parameters' types, and its place in every connection's prepared list.
pub(crate) struct Sql {
    text: String,
    types: &'static [Type],
    slot: usize,
}

/// Every statement; each pooled connection prepares them all once, when it opens
/// (a call is then bind + execute: measured 1.7x faster than an unnamed statement).
pub(crate) struct Statements {
    pub(crate) get: Sql,
    pub(crate) has: Sql,
    pub(crate) set: Sql,
    pub(crate) delete: Sql,
    pub(crate) clear: Sql,
    pub(crate) get_many: Sql,
    pub(crate) set_many: Sql,
    pub(crate) delete_many: Sql,
    pub(crate) set_if_absent: Sql,
    pub(crate) insert_if_absent: Sql,
    pub(crate) release: Sql,
    pub(crate) set_locked: Sql,
    /// The first of a delete's two statements: marks the key's lock.
    pub(crate) mark: Sql,
    /// The first of `delete_many`'s two statements: marks the keys' locks.
    pub(crate) mark_many: Sql,
    /// The first of `clear`'s two statements: marks the namespace's locks.
    pub(crate) mark_all: Sql,
    sweep: Sql,
}

const LIVE: &str = "(expires_at IS NULL OR expires_at > now())";
const EXPIRES: &str = "now() + $4::int8 * interval '1 millisecond'";

impl Statements {
    /// Every statement, in slot order.
    fn all(&self) -> [&Sql; 16] {
        [
            &self.get,
            &self.has,
            &self.set,
            &self.delete,
            &self.clear,
            &self.get_many,
            &self.set_many,
            &self.delete_many,
            &self.set_if_absent,
            &self.insert_if_absent,
            &self.release,
            &self.set_locked,
            &self.mark,
            &self.mark_many,
            &self.mark_all,
            &self.sweep,
        ]
    }
}

/// A pooled connection with every statement prepared on it.
pub(crate) struct Conn {
    client: tokio_postgres::Client,
    prepared: Vec<tokio_postgres::Statement>,
}

/// The pool's connection manager: opens a connection (TLS as configured) and
/// prepares the statements on it, in one pipelined round trip.
pub(crate) struct Manager {
    pg: tokio_postgres::Config,
    tls: Connector,
    sql: Arc<Statements>,
}

impl Manager {
    async fn open(&self) -> std::result::Result<tokio_postgres::Client, tokio_postgres::Error> {
        // `NoTls` is Copy, the rustls connector (feature `tls`) is not.
        #[allow(clippy::clone_on_copy)]
        let tls = self.tls.clone();
        let (client, connection) = self.pg.connect(tls).await?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "postgres connection ended");
            }
        });
        Ok(client)
    }

    async fn prepare(
        &self,
        client: tokio_postgres::Client,
    ) -> std::result::Result<Conn, tokio_postgres::Error> {
        let prepared = futures::future::try_join_all(
            self.sql
                .all()
                .into_iter()
                .map(|s| client.prepare_typed(&s.text, s.types)),
        )
        .await?;
        Ok(Conn { client, prepared })
    }
}

impl bb8::ManageConnection for Manager {
    type Connection = Conn;
    type Error = tokio_postgres::Error;

    async fn connect(&self) -> std::result::Result<Conn, tokio_postgres::Error> {
        let client = self.open().await?;
        self.prepare(client).await
    }

    async fn is_valid(&self, conn: &mut Conn) -> std::result::Result<(), tokio_postgres::Error> {
        conn.client.simple_query("").await.map(drop)
    }

    fn has_broken(&self, conn: &mut Conn) -> bool {
        conn.client.is_closed()
    }
}

const NS_KEY: &[Type] = &[Type::TEXT, Type::TEXT];
const NS_KEYS: &[Type] = &[Type::TEXT, Type::TEXT_ARRAY];
const NS_KEY_VALUE: &[Type] = &[Type::TEXT, Type::TEXT, Type::BYTEA];
const NS_KEY_VALUE_TTL: &[Type] = &[Type::TEXT, Type::TEXT, Type::BYTEA, Type::INT8];
/// A value's key, its value and TTL, and (`$5`) its lock's key.
const NS_KEY_VALUE_TTL_LOCK: &[Type] =
    &[Type::TEXT, Type::TEXT, Type::BYTEA, Type::INT8, Type::TEXT];

// Fenced writes (see `CacheBackend::set_locked`), each in ONE round trip.
//
// A lock is a row `(namespace, '#lock:<key>', token)`; an application write of the
// key (set, set_many, set_if_absent that stores, delete, delete_many, clear) marks it
// *overtaken* by putting `!` before the token, before (or as) it writes, and only while
// the lock is live and not yet marked (its `expires_at` is kept, so it still ends by
// its TTL). The holder's `set_locked` deletes its lock row if the row holds its token
// or the overtaken token, and writes the value only when the deleted row held exactly
// the token. `set`, `set_many`, `set_if_absent` and `set_locked` are one statement
// each; `delete`, `delete_many` and `clear` are two (the mark, then the delete), sent
// together (pipelined: one round trip), each its own implicit transaction.
//
// Why this is safe under READ COMMITTED (the default, and what a pooled autocommit
// statement runs in): a statement commits as a whole, so another statement's snapshot
// sees the mark and the application's value together or neither. The statements that
// could race change the same two rows, the lock row and the value row, and every one of
// them takes the lock row FIRST: `set_locked` reads its lock through the DELETE in its
// CTE, which its INSERT reads from; `set`, `set_many` and `set_if_absent` make their
// main statement read the overtaking CTE (`SELECT count(*) FROM o`, an InitPlan run
// before the scan), so the lock row is updated (and row-locked) before the value row is
// touched (PostgreSQL would otherwise run an unread data-modifying CTE after the main
// query, and two statements taking the two rows in opposite orders could deadlock);
// a delete's mark commits before its delete starts. So:
//   - the application's mark got the lock row first: `set_locked`'s DELETE waits for
//     it to commit, then re-evaluates its WHERE on the new version of the row (READ
//     COMMITTED's re-check): `!token` still matches, the row is deleted (the lock
//     released) and RETURNING gives `!token`, which is not the token: nothing is
//     inserted. The application's value (or its deletion) stays.
//   - `set_locked`'s DELETE got the lock row first: the application's mark waits,
//     then finds the row deleted and marks nothing. Its value write, after
//     `set_locked` committed, replaces the computed value: an `INSERT … ON CONFLICT`
//     meets the committed row through the unique index even when its snapshot, taken
//     before the wait, does not hold it (READ COMMITTED: it either inserts or updates),
//     so `set`, `set_many` stay one statement, and `set_if_absent` then finds a live
//     value and stores nothing. A DELETE has no such rule: it only finds rows of its
//     snapshot (re-checking the newest version of those), so a DELETE in the marking
//     statement would miss a value row that `set_locked` inserted while the mark
//     waited, and the computed value (perhaps stale) would outlive the delete. Hence
//     the delete's second statement: it starts after the mark committed, and so after
//     `set_locked` committed, and its snapshot holds the computed value. The later
//     write wins.
//   - a lock row that another caller took over (expired, then replaced by a new
//     token) fails `set_locked`'s token test, before or after waiting for it.
// A delete's mark row-locks the key's lock row whatever it holds (live or expired,
// marked or not), so it also waits for a `set_locked` that judged the lock live at its
// own start when the lock has expired by the mark's start. A holder that takes the lock
// after the mark committed computes after the delete was called, so its value is not
// stale (the delete may delete it, or not). If the mark fails, the delete still runs
// (its own transaction) but the call returns the mark's error: a failed delete promises
// nothing, as always.
//
// No deadlocks: statements of many keys take their rows in key order (`SELECT … ORDER
// BY key FOR UPDATE`, read the same way, or the INSERT's `ORDER BY`): the one-statement
// writes take their lock rows by key, then their value rows by key; a delete's mark
// holds lock rows only (by key), its delete value rows only (by key, another such CTE
// before the DELETE, which then finds every row it deletes already locked). Every
// transaction takes rows in one order (lock rows by key, then value rows by key), so
// none waits for another in a cycle; the sweep skips locked rows.
// `now()` is the statement's (transaction's) start on the server: every expiry test
// is on the server's clock, never a client's.
impl Statements {
    fn new(table: &str) -> Self {
        let mut slot = 0;
        let mut sql = |text: String, types: &'static [Type]| {
            slot += 1;
            Sql {
                text,
                types,
                slot: slot - 1,
            }
        };
        let upsert = "ON CONFLICT (namespace, key) DO UPDATE \
                      SET value = EXCLUDED.value, expires_at = EXCLUDED.expires_at";
        // The CTE `o` marking the held, live, not yet overtaken lock of one key.
        let overtake = |which: &str| {
            format!(
                "WITH o AS (UPDATE {table} SET value = '!'::bytea || value \
                 WHERE namespace = $1 AND {which} AND {LIVE} \
                 AND substr(value, 1, 1) <> '!'::bytea RETURNING 1)"
            )
        };
        // The same for the locks of many keys, row-locked first in key order (`lk`),
        // so that two statements on overlapping keys take them in the same order.
        let overtake_many = |which: &str| {
            let held = format!(
                "namespace = $1 AND {which} AND {LIVE} AND substr(value, 1, 1) <> '!'::bytea"
            );
            format!(
                "WITH lk AS (SELECT 1 FROM {table} WHERE {held} ORDER BY key FOR UPDATE), \
                 o AS (UPDATE {table} SET value = '!'::bytea || value \
                 WHERE {held} AND (SELECT count(*) FROM lk) >= 0 RETURNING 1)"
            )
        };
        // Makes the main statement read `o` first: the lock rows before the values.
        let after_o = "(SELECT count(*) FROM o) >= 0";
        // A delete's first statement: row-locks the lock rows `which` names in key order
        // (`lk`), whatever they hold, so it waits for any statement holding one (a
        // `set_locked` under way), then marks the held ones. One row per lock marked.
        let mark = |which: &str| {
            let rows = format!("namespace = $1 AND {which}");
            format!(
                "WITH lk AS (SELECT 1 FROM {table} WHERE {rows} ORDER BY key FOR UPDATE) \
                 UPDATE {table} SET value = '!'::bytea || value \
                 WHERE {rows} AND {LIVE} AND substr(value, 1, 1) <> '!'::bytea \
                 AND (SELECT count(*) FROM lk) >= 0 RETURNING 1"
            )
        };
        // A delete's second statement, sent after its mark (so its snapshot holds what
        // a holder committed while the mark waited): deletes the value rows `which`
        // names, row-locked first in key order.
        let delete_values = |which: &str, returning: &str| {
            let rows = format!("namespace = $1 AND {which}");
            format!(
                "WITH vk AS (SELECT 1 FROM {table} WHERE {rows} ORDER BY key FOR UPDATE) \
                 DELETE FROM {table} WHERE {rows} AND (SELECT count(*) FROM vk) >= 0 {returning}"
            )
        };
        Statements {
            get: sql(
                format!("SELECT value FROM {table} WHERE namespace = $1 AND key = $2 AND {LIVE}"),
                NS_KEY,
            ),
            has: sql(
                format!(
                "SELECT EXISTS (SELECT 1 FROM {table} WHERE namespace = $1 AND key = $2 AND {LIVE})"
            ),
                NS_KEY,
            ),
            set: sql(
                format!(
                    "{} INSERT INTO {table} (namespace, key, value, expires_at) \
                     SELECT $1, $2, $3, {EXPIRES} WHERE {after_o} {upsert}",
                    overtake("key = $5")
                ),
                NS_KEY_VALUE_TTL_LOCK,
            ),
            // After `mark`: one row, whether the deleted value was live.
            delete: sql(
                format!("DELETE FROM {table} WHERE namespace = $1 AND key = $2 RETURNING {LIVE}"),
                NS_KEY,
            ),
            // After `mark_all`. Held locks stay (their keys start with the lock marker),
            // overtaken.
            clear: sql(delete_values("left(key, 6) <> '#lock:'", ""), &[Type::TEXT]),
            get_many: sql(
                format!(
                    "SELECT t.value FROM unnest($2::text[]) WITH ORDINALITY AS k(key, ord) \
                 LEFT JOIN {table} t ON t.namespace = $1 AND t.key = k.key \
                 AND (t.expires_at IS NULL OR t.expires_at > now()) ORDER BY k.ord"
                ),
                NS_KEYS,
            ),
            set_many: sql(
                format!(
                    "{} INSERT INTO {table} (namespace, key, value, expires_at) \
                     SELECT $1, u.key, u.value, {EXPIRES} \
                     FROM unnest($2::text[], $3::bytea[]) AS u(key, value) WHERE {after_o} \
                     ORDER BY u.key {upsert}",
                    overtake_many("key = ANY($5::text[])")
                ),
                &[
                    Type::TEXT,
                    Type::TEXT_ARRAY,
                    Type::BYTEA_ARRAY,
                    Type::INT8,
                    Type::TEXT_ARRAY,
                ],
            ),
            // After `mark_many`: one row per deleted value, whether it was live.
            delete_many: sql(
                delete_values("key = ANY($2::text[])", &format!("RETURNING {LIVE}")),
                NS_KEYS,
            ),
            // The value's insert-if-absent, marking the lock only when it will store:
            // when the statement's snapshot holds no live value. A value written by
            // a concurrent statement makes the insert store nothing after the mark;
            // that writer was an application write (which marks the lock anyway) or
            // the holder's `set_locked` (which deleted the lock row first, so the
            // mark found nothing).
            set_if_absent: sql(
                format!(
                    "{} INSERT INTO {table} AS t (namespace, key, value, expires_at) \
                     SELECT $1, $2, $3, {EXPIRES} WHERE {after_o} {upsert} \
                     WHERE t.expires_at IS NOT NULL AND t.expires_at <= now() RETURNING 1",
                    overtake(&format!(
                        "key = $5 AND NOT EXISTS (SELECT 1 FROM {table} v \
                         WHERE v.namespace = $1 AND v.key = $2 \
                         AND (v.expires_at IS NULL OR v.expires_at > now()))"
                    ))
                ),
                NS_KEY_VALUE_TTL_LOCK,
            ),
            // Takes a free or expired row atomically: a live row makes the update's
            // WHERE false, so nothing is returned. For locks (no overtaking).
            insert_if_absent: sql(
                format!(
                    "INSERT INTO {table} AS t (namespace, key, value, expires_at) \
                 VALUES ($1, $2, $3, {EXPIRES}) {upsert} \
                 WHERE t.expires_at IS NOT NULL AND t.expires_at <= now() RETURNING 1"
                ),
                NS_KEY_VALUE_TTL,
            ),
            // The owner's token, overtaken or not.
            release: sql(
                format!(
                    "DELETE FROM {table} WHERE namespace = $1 AND key = $2 \
                 AND (value = $3 OR value = '!'::bytea || $3) AND {LIVE} RETURNING 1"
                ),
                NS_KEY_VALUE,
            ),
            // Release the lock `$5` if `$6` owns it, and write the value only if the
            // released lock was not overtaken: one row if stored.
            set_locked: sql(
                format!(
                    "WITH l AS (DELETE FROM {table} WHERE namespace = $1 AND key = $5 \
                     AND (value = $6 OR value = '!'::bytea || $6) AND {LIVE} RETURNING value) \
                     INSERT INTO {table} (namespace, key, value, expires_at) \
                     SELECT $1, $2, $3, {EXPIRES} FROM l WHERE l.value = $6 {upsert} RETURNING 1"
                ),
                &[
                    Type::TEXT,
                    Type::TEXT,
                    Type::BYTEA,
                    Type::INT8,
                    Type::TEXT,
                    Type::BYTEA,
                ],
            ),
            // `$2`: the lock's key.
            mark: sql(mark("key = $2"), NS_KEY),
            // `$2`: the locks' keys.
            mark_many: sql(mark("key = ANY($2::text[])"), NS_KEYS),
            mark_all: sql(mark("left(key, 6) = '#lock:'"), &[Type::TEXT]),
            // Rows another statement has row-locked are skipped (swept next time):
            // the sweep never waits, so it never takes part in a deadlock.
            sweep: sql(
                format!(
                    "DELETE FROM {table} WHERE ctid = ANY(ARRAY( \
                     SELECT ctid FROM {table} WHERE expires_at <= now() LIMIT $1 \
                     FOR UPDATE SKIP LOCKED)) RETURNING 1"
                ),
                &[Type::INT8],
            ),
        }
    }
}

/// What every namespace's handle shares: the pool and the statements.
pub(crate) struct Driver {
    pub(crate) pool: PgPool,
    pub(crate) sql: Arc<Statements>,
    pub(crate) timeout: Duration,
    /// Open backend handles; the sweep stops when the last one closes.
    pub(crate) handles: std::sync::atomic::AtomicUsize,
    sweeper: std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl Driver {
    /// Connect once (so a bad password or a missing database is an error now, not a
    /// retry loop), create the table if absent, and make the pool.
    pub(crate) async fn connect(
        cfg: &PostgresConfig,
        pg: Option<tokio_postgres::Config>,
    ) -> Result<Arc<Self>> {
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
        let mut pg: tokio_postgres::Config = match pg {
            Some(pg) => pg,
            None => cfg.dsn.parse().map_err(|e| {
                config("cannot parse the DSN; use postgres://user:password@host:port/db or key=value pairs")
                    .with_source(e)
            })?,
        };
        #[cfg(not(feature = "tls"))]
        if pg.get_ssl_mode() == tokio_postgres::config::SslMode::Require {
            return Err(config(
                "sslmode=require needs TLS, but cache-postgres was built without its `tls` feature; enable it",
            ));
        }
        pg.connect_timeout(cfg.connect_timeout);
        let table = format!("{}.{}", quote_ident(&cfg.schema)?, quote_ident(&cfg.table)?);
        let sql = Arc::new(Statements::new(&table));
        let manager = Manager {
            pg,
            tls: connector(cfg)?,
            sql: sql.clone(),
        };
        let client = match tokio::time::timeout(cfg.connect_timeout, manager.open()).await {
            Ok(conn) => conn.map_err(map)?,
            Err(_) => return Err(Error::timeout(BACKEND, cfg.connect_timeout)),
        };
        create_table(&client, cfg, &table).await?;
        let first = match tokio::time::timeout(cfg.connect_timeout, manager.prepare(client)).await {
            Ok(conn) => conn.map_err(map)?,
            Err(_) => return Err(Error::timeout(BACKEND, cfg.connect_timeout)),
        };
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
        let driver = Arc::new(Driver {
            pool,
            sql,
            timeout: cfg.timeout,
            handles: std::sync::atomic::AtomicUsize::new(0),
            sweeper: std::sync::Mutex::new(None),
        });
        if let Some(every) = cfg.sweep_interval {
            let handle = tokio::spawn(sweep_loop(Arc::downgrade(&driver), every));
            *driver.sweeper.lock().unwrap_or_else(|p| p.into_inner()) = Some(handle);
        }
        Ok(driver)
    }

    /// Rows of the prepared statement `sql` with `params`: one round trip.
    pub(crate) async fn query(
        &self,
        sql: &Sql,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<tokio_postgres::Row>> {
        // The whole call, waiting for a connection included, is bounded.
        within(BACKEND, self.timeout, async {
            let conn = self.pool.get().await.map_err(pool)?;
            conn.client
                .query(&conn.prepared[sql.slot], params)
                .await
                .map_err(map)
        })
        .await
    }

    /// Rows of `then` after running `first`, as two statements on one connection, each
    /// its own implicit transaction, sent together (one round trip): the server runs
    /// `then` after `first` committed (or failed), so `then`'s snapshot holds every
    /// row committed while `first` waited. `first`'s error, if any, wins.
    pub(crate) async fn query_after(
        &self,
        (first, first_params): (&Sql, &[&(dyn ToSql + Sync)]),
        (then, then_params): (&Sql, &[&(dyn ToSql + Sync)]),
    ) -> Result<Vec<tokio_postgres::Row>> {
        within(BACKEND, self.timeout, async {
            let conn = self.pool.get().await.map_err(pool)?;
            // tokio-postgres sends a request when its future is first polled, and
            // `join` polls `first` before `then`: the server gets them in this order.
            let (first, then) = futures::future::join(
                conn.client.query(&conn.prepared[first.slot], first_params),
                conn.client.query(&conn.prepared[then.slot], then_params),
            )
            .await;
            first.map_err(map)?;
            then.map_err(map)
        })
        .await
    }

    /// Delete expired rows, `SWEEP_BATCH` at a time; how many went.
    pub(crate) async fn sweep(&self) -> Result<u64> {
        let mut total = 0;
        loop {
            let n = self.query(&self.sql.sweep, &[&SWEEP_BATCH]).await?.len() as u64;
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

impl Drop for Driver {
    fn drop(&mut self) {
        self.stop_sweeper();
    }
}

async fn sweep_loop(driver: Weak<Driver>, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.tick().await;
    loop {
        tick.tick().await;
        let Some(s) = driver.upgrade() else { return };
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
    fn statements_are_listed_in_slot_order() {
        let sql = Statements::new("\"t\"");
        for (i, s) in sql.all().iter().enumerate() {
            assert_eq!(s.slot, i);
        }
    }

    #[test]
    fn ttls_round_up_and_clamp() {
        assert_eq!(ttl_ms(Expiry::Never), None);
        assert_eq!(ttl_ms(Expiry::After(Duration::from_micros(1500))), Some(2));
        assert_eq!(ttl_ms(Expiry::After(Duration::MAX)), Some(MAX_TTL_MS));
    }
}
