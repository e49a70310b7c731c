//! The driver side: the client, the collection and its indexes, documents, filters,
//! expiry encoding.

use crate::config::MongoConfig;
use crate::error::{config, map, BACKEND};
use cache_core::raw::{within, KeyKind, KeyLayout, Ttl};
use cache_core::{Error, Expiry, Result};
use mongodb::bson::{doc, spec::BinarySubtype, Binary, Bson, DateTime, Document};
use mongodb::options::{ClientOptions, IndexOptions};
use mongodb::{Client, Collection, Database, IndexModel};
use std::time::Duration;

/// `_id`s are `ns:key` strings (a namespace has no `:`, so the pair is unambiguous);
/// keys longer than this are stored as their digest, to keep the `_id` index small.
pub(crate) const LAYOUT: KeyLayout = KeyLayout::ANY.max_len(MAX_KEY_LEN);

/// Longest `_id` kept readable.
pub(crate) const MAX_KEY_LEN: usize = 1024;

/// Field names.
pub(crate) const NS: &str = "ns";
pub(crate) const VALUE: &str = "v";
pub(crate) const EXPIRES: &str = "exp";

/// Index names; an existing index of the same name with other options is a
/// `Config` error (the server answers code 85/86).
const NS_INDEX: &str = "cache_ns";
const TTL_INDEX: &str = "cache_ttl";

/// The `_id` of `key` of `kind` in `namespace`.
pub(crate) fn id(namespace: &str, kind: KeyKind, key: &str) -> String {
    LAYOUT.key(namespace, kind, key).to_string()
}

/// When a value written now with `expiry` expires (`None`: never), or `Err(())` if it
/// already has. BSON dates are milliseconds; far expiries are clamped to year 9999.
pub(crate) fn expires_at(expiry: Expiry) -> std::result::Result<Option<DateTime>, ()> {
    const MAX_MS: i64 = 253_402_300_799_000; // 9999-12-31T23:59:59Z
    match expiry.ttl() {
        Ttl::Forever => Ok(None),
        Ttl::Expired => Err(()),
        Ttl::For(d) => {
            let ms = i64::try_from(d.as_nanos().div_ceil(1_000_000)).unwrap_or(i64::MAX);
            let at = DateTime::now()
                .timestamp_millis()
                .saturating_add(ms)
                .min(MAX_MS);
            Ok(Some(DateTime::from_millis(at)))
        }
    }
}

/// A whole entry document (every field written, so a replace leaves nothing behind).
pub(crate) fn entry(namespace: &str, value: &[u8], expires: Option<DateTime>) -> Document {
    doc! {
        NS: namespace,
        VALUE: Binary { subtype: BinarySubtype::Generic, bytes: value.to_vec() },
        EXPIRES: expires.map_or(Bson::Null, Bson::DateTime),
    }
}

/// Whether a document (read with its `exp`) is live now: no expiry, or one in the
/// future. MongoDB's TTL monitor deletes expired documents only every 60 s, so every
/// read checks; here rather than in the query, so that reads stay plain `_id`
/// lookups every server plans well.
pub(crate) fn is_live(d: &Document, now: DateTime) -> bool {
    match d.get(EXPIRES) {
        Some(Bson::DateTime(t)) => t.timestamp_millis() > now.timestamp_millis(),
        _ => true,
    }
}

/// The value bytes of a document read with a `v` projection.
pub(crate) fn value_of(d: &Document) -> Option<Vec<u8>> {
    match d.get(VALUE)? {
        Bson::Binary(b) => Some(b.bytes.clone()),
        _ => None,
    }
}

/// What every namespace's handle shares: the database and the collection (each
/// holds the driver's client and its pool).
pub(crate) struct Shared {
    pub(crate) db: Database,
    pub(crate) coll: Collection<Document>,
    pub(crate) timeout: Duration,
}

impl Shared {
    /// Connect, ping (so a wrong password or an unreachable server is an error now),
    /// and create the indexes (idempotent).
    pub(crate) async fn connect(cfg: &MongoConfig) -> Result<Shared> {
        if cfg.timeout.is_zero() || cfg.connect_timeout.is_zero() || cfg.pool_size == 0 {
            return Err(config(
                "timeout, connect_timeout and pool_size must be positive",
            ));
        }
        if cfg.collection.is_empty()
            || cfg.collection.contains(['\0', '$'])
            || cfg.collection.starts_with("system.")
        {
            return Err(config(format!(
                "invalid collection name {:?}: use a non-empty name without $ or NUL, not starting with system.",
                cfg.collection
            )));
        }
        let mut options = within(BACKEND, cfg.connect_timeout, async {
            ClientOptions::parse(&cfg.uri).await.map_err(|e| {
                Error::new(
                    cache_core::ErrorKind::Config,
                    BACKEND,
                    "cannot parse the URI; use mongodb://user:password@host:port/db",
                )
                .with_source(e)
            })
        })
        .await?;
        options.server_selection_timeout = Some(cfg.connect_timeout);
        options.connect_timeout = Some(cfg.connect_timeout);
        options
            .app_name
            .get_or_insert_with(|| "cache-mongodb".into());
        // A few connections kept open and opened in parallel, so a burst of first
        // calls does not queue behind one handshake at a time (the driver's default
        // opens two at once and keeps none).
        options.max_pool_size = Some(cfg.pool_size);
        options.min_pool_size = Some(cfg.pool_size.min(4));
        options.max_connecting = Some(cfg.pool_size.min(8));
        let database = cfg
            .database
            .clone()
            .or_else(|| options.default_database.clone())
            .unwrap_or_else(|| "cache".into());
        if database.is_empty() || database.contains(['/', '\\', '.', ' ', '"', '$', '\0']) {
            return Err(config(format!(
                "invalid database name {database:?}: no /\\. \"$, spaces or NUL"
            )));
        }
        let client = Client::with_options(options).map_err(map)?;
        let db = client.database(&database);
        within(BACKEND, cfg.connect_timeout, async {
            db.run_command(doc! { "ping": 1 }).await.map_err(map)
        })
        .await?;
        let coll = db.collection::<Document>(&cfg.collection);
        let indexes = [
            IndexModel::builder()
                .keys(doc! { NS: 1 })
                .options(IndexOptions::builder().name(NS_INDEX.to_string()).build())
                .build(),
            IndexModel::builder()
                .keys(doc! { EXPIRES: 1 })
                .options(
                    IndexOptions::builder()
                        .name(TTL_INDEX.to_string())
                        .expire_after(Duration::ZERO)
                        .build(),
                )
                .build(),
        ];
        within(BACKEND, cfg.connect_timeout, async {
            coll.create_indexes(indexes).await.map(drop).map_err(map)
        })
        .await?;
        Ok(Shared {
            db,
            coll,
            timeout: cfg.timeout,
        })
    }

    /// Bound a call by the timeout.
    pub(crate) async fn call<T>(
        &self,
        op: impl std::future::IntoFuture<Output = mongodb::error::Result<T>>,
    ) -> Result<T> {
        self.call_raw(op).await?.map_err(map)
    }

    /// Bound a call by the timeout, leaving the driver's error for the caller to read.
    pub(crate) async fn call_raw<T>(
        &self,
        op: impl std::future::IntoFuture<Output = mongodb::error::Result<T>>,
    ) -> Result<mongodb::error::Result<T>> {
        within(BACKEND, self.timeout, async { Ok(op.await) }).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unambiguous_and_bounded() {
        assert_eq!(id("app", KeyKind::Value, "user:1"), "app:user:1");
        assert_eq!(id("app", KeyKind::Lock, "user:1"), "app:#lock:user:1");
        assert!(id("app", KeyKind::Value, &"x".repeat(5000)).len() <= MAX_KEY_LEN);
        // Namespaces have no ':', so "a:b:c" can only be namespace "a", key "b:c".
        assert!(cache_core::raw::validate_namespace("t", "a:b").is_err());
    }

    #[test]
    fn expiries_round_up_and_clamp() {
        assert_eq!(expires_at(Expiry::Never), Ok(None));
        assert_eq!(expires_at(Expiry::After(Duration::ZERO)), Err(()));
        let far = expires_at(Expiry::After(Duration::MAX)).unwrap().unwrap();
        assert_eq!(far.timestamp_millis(), 253_402_300_799_000);
        let soon = expires_at(Expiry::After(Duration::from_micros(10)))
            .unwrap()
            .unwrap();
        assert!(soon.timestamp_millis() > DateTime::now().timestamp_millis() - 5);
    }
}
