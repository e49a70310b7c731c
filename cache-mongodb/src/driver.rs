//! The driver side: the client, the collection and its indexes, documents, filters,
//! expiry encoding.

use crate::config::MongoConfig;
use crate::error::{config, map, BACKEND};
use cache_core::raw::{within, KeyKind, KeyLayout, Ttl};
use cache_core::{Error, Expiry, Result};
use mongodb::bson::{doc, oid::ObjectId, spec::BinarySubtype, Binary, Bson, DateTime, Document};
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
/// A value document's write stamp: a fresh `ObjectId` on every write (tombstones
/// included), so that `set_locked` can write only over the document it read.
pub(crate) const WRITE: &str = "w";

/// Index names; an existing index of the same name with other options is a
/// `Config` error (the server answers code 85/86).
const NS_INDEX: &str = "cache_ns";
const TTL_INDEX: &str = "cache_ttl";

/// The `_id` of `key` of `kind` in `namespace`.
pub(crate) fn id(namespace: &str, kind: KeyKind, key: &str) -> String {
    LAYOUT.key(namespace, kind, key).to_string()
}

/// The client's clock: the system's, shifted by an offset that only tests set (to
/// play a client whose clock runs ahead or behind).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Clock {
    pub(crate) offset_ms: i64,
}

impl Clock {
    pub(crate) fn now(self) -> DateTime {
        DateTime::from_millis(
            DateTime::now()
                .timestamp_millis()
                .saturating_add(self.offset_ms),
        )
    }
}

/// When a value written at `now` with `expiry` expires (`None`: never), or `Err(())`
/// if it already has. BSON dates are milliseconds; far expiries are clamped to year 9999.
pub(crate) fn expires_at(
    expiry: Expiry,
    now: DateTime,
) -> std::result::Result<Option<DateTime>, ()> {
    const MAX_MS: i64 = 253_402_300_799_000; // 9999-12-31T23:59:59Z
    match expiry.ttl() {
        Ttl::Forever => Ok(None),
        Ttl::Expired => Err(()),
        Ttl::For(d) => {
            let ms = i64::try_from(d.as_nanos().div_ceil(1_000_000)).unwrap_or(i64::MAX);
            let at = now.timestamp_millis().saturating_add(ms).min(MAX_MS);
            Ok(Some(DateTime::from_millis(at)))
        }
    }
}

/// A whole entry document (every field written, so a replace leaves nothing behind),
/// with a fresh write stamp.
pub(crate) fn entry(namespace: &str, value: &[u8], expires: Option<DateTime>) -> Document {
    doc! {
        NS: namespace,
        VALUE: Binary { subtype: BinarySubtype::Generic, bytes: value.to_vec() },
        EXPIRES: expires.map_or(Bson::Null, Bson::DateTime),
        WRITE: ObjectId::new(),
    }
}

/// How long a tombstone stays at least: longer than a `set_locked` can take between
/// its read of the key and its write (two calls, each bounded by `timeout`), and 10 s
/// at least, for clocks that disagree.
pub(crate) fn tombstone_life(timeout: Duration) -> Duration {
    timeout.saturating_mul(2).max(Duration::from_secs(10))
}

/// What a delete leaves: no value (`v` absent: what marks a tombstone, which every
/// read, `has`, `set_if_absent` and `delete` take for nothing) and a fresh write stamp,
/// so that a `set_locked` that read the key before the delete writes nothing, even
/// when the key held nothing. It expires [`tombstone_life`] after `now`: the TTL
/// monitor must not remove it before such a `set_locked`'s write would have met it.
pub(crate) fn tombstone(namespace: &str, now: DateTime, timeout: Duration) -> Document {
    let life = i64::try_from(tombstone_life(timeout).as_millis()).unwrap_or(i64::MAX);
    doc! {
        NS: namespace,
        EXPIRES: DateTime::from_millis(now.timestamp_millis().saturating_add(life)),
        WRITE: ObjectId::new(),
    }
}

/// The filter of documents that hold a value (not tombstones). With `_id` beside it,
/// still a plain `_id` lookup.
pub(crate) fn has_value() -> Document {
    doc! { "$exists": true }
}

/// In an update pipeline: whether the document's `exp` is after the server's `$$NOW`.
/// Compared as milliseconds (`$toLong`): SecantusDB compares a stored date with
/// `$$NOW` wrongly, numbers rightly; a missing `exp` is `null`, never live.
fn live_on_server() -> Document {
    doc! { "$gt": [ { "$toLong": format!("${EXPIRES}") }, { "$toLong": "$$NOW" } ] }
}

/// The update pipeline of `acquire_lock`: a live lock stays as it is; an expired or
/// missing one becomes `token`'s, until the server's `$$NOW` + `ttl_ms`. Every
/// deadline of a lock is the server's clock, never a client's.
pub(crate) fn acquire_pipeline(token: &str, lock_namespace: &str, ttl_ms: i64) -> Vec<Document> {
    let live = live_on_server();
    vec![doc! { "$set": {
        VALUE: { "$cond": [ live.clone(), format!("${VALUE}"), { "$literal": token } ] },
        NS: { "$literal": lock_namespace },
        EXPIRES: { "$cond": [ live, format!("${EXPIRES}"), { "$add": [ "$$NOW", ttl_ms ] } ] },
    } }]
}

/// The update pipeline that marks a lock overtaken: its token `t` becomes `!t`
/// (`cache_core::raw::overtaken`), once; its expiry stays. A lock of another format
/// (the binary token of an older version) is left alone.
pub(crate) fn overtake_pipeline() -> Vec<Document> {
    let v = format!("${VALUE}");
    vec![doc! { "$set": { VALUE: { "$cond": [
        { "$eq": [ { "$type": &v }, "string" ] },
        { "$cond": [
            { "$eq": [ { "$substrCP": [ &v, 0, 1 ] }, "!" ] },
            &v,
            { "$concat": [ "!", &v ] },
        ] },
        &v,
    ] } } }]
}

/// Whether a document (read with its `exp`) is live now: no expiry, or one in the
/// future. MongoDB's TTL monitor deletes expired documents only every 60 s, so every
/// read checks; here rather than in the query, so that reads stay plain `_id`
/// lookups every server plans well. Tombstones (no `v`) are not live either: the
/// reads leave them out by their filter (`v` exists, [`has_value`]).
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
pub(crate) struct Driver {
    pub(crate) db: Database,
    pub(crate) coll: Collection<Document>,
    pub(crate) timeout: Duration,
}

impl Driver {
    /// Connect, ping (so a wrong password or an unreachable server is an error now),
    /// and create the indexes (idempotent).
    pub(crate) async fn connect(cfg: &MongoConfig) -> Result<Driver> {
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
        Ok(Driver {
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

    /// One `update` command (one round trip) of `statements`. Ordered: the server
    /// applies them in order and stops at the first that fails, which is what makes
    /// "mark the lock, then write the value" hold.
    pub(crate) async fn update(&self, statements: Vec<Document>) -> Result<Updated> {
        let command = doc! {
            "update": self.coll.name(),
            "updates": statements,
            "ordered": true,
        };
        let reply = self.call(self.db.run_command(command)).await?;
        if let Ok(e) = reply.get_document("writeConcernError") {
            return Err(Error::new(
                cache_core::ErrorKind::Unavailable,
                BACKEND,
                format!("MongoDB could not meet the write concern: {e}"),
            ));
        }
        let index = |d: &Document| match d.get("index") {
            Some(Bson::Int32(i)) => usize::try_from(*i).ok(),
            Some(Bson::Int64(i)) => usize::try_from(*i).ok(),
            _ => None,
        };
        let docs = |field: &str| -> Vec<Document> {
            reply
                .get_array(field)
                .map(|a| a.iter().filter_map(|d| d.as_document().cloned()).collect())
                .unwrap_or_default()
        };
        Ok(Updated {
            upserted: docs("upserted").iter().filter_map(index).collect(),
            errors: docs("writeErrors")
                .iter()
                .map(|d| WriteError {
                    index: index(d).unwrap_or(usize::MAX),
                    code: d.get_i32("code").unwrap_or_default(),
                    message: d.get_str("errmsg").unwrap_or_default().to_owned(),
                })
                .collect(),
        })
    }

    /// Bound a call by the timeout, leaving the driver's error for the caller to read.
    pub(crate) async fn call_raw<T>(
        &self,
        op: impl std::future::IntoFuture<Output = mongodb::error::Result<T>>,
    ) -> Result<mongodb::error::Result<T>> {
        within(BACKEND, self.timeout, async { Ok(op.await) }).await
    }
}

/// What an `update` command did, beyond counts: which statements inserted (upserts)
/// and which failed.
pub(crate) struct Updated {
    pub(crate) upserted: Vec<usize>,
    pub(crate) errors: Vec<WriteError>,
}

/// A statement of an `update` command that the server refused.
pub(crate) struct WriteError {
    pub(crate) index: usize,
    pub(crate) code: i32,
    pub(crate) message: String,
}

impl WriteError {
    pub(crate) fn into_error(self) -> Error {
        Error::new(
            cache_core::ErrorKind::Backend,
            BACKEND,
            format!(
                "MongoDB refused a write (statement {}, code {}): {}",
                self.index, self.code, self.message
            ),
        )
    }
}

impl Updated {
    /// Ok if every statement was applied.
    pub(crate) fn all_done(self) -> Result<()> {
        match self.errors.into_iter().next() {
            Some(e) => Err(e.into_error()),
            None => Ok(()),
        }
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
    fn a_tombstone_outlives_a_set_locked_between_its_read_and_its_write() {
        let s = Duration::from_secs;
        assert_eq!(tombstone_life(Duration::from_millis(500)), s(10));
        assert_eq!(tombstone_life(s(30)), s(60));
        let now = DateTime::from_millis(1_000_000);
        let t = tombstone("ns", now, s(1));
        assert_eq!(
            t.get_datetime(EXPIRES).unwrap().timestamp_millis(),
            1_010_000
        );
        assert!(t.get(VALUE).is_none() && t.get_object_id(WRITE).is_ok());
        assert_ne!(
            tombstone("ns", now, s(1)).get(WRITE),
            t.get(WRITE),
            "stamped anew"
        );
    }

    #[test]
    fn expiries_round_up_and_clamp() {
        assert_eq!(expires_at(Expiry::Never, DateTime::now()), Ok(None));
        assert_eq!(
            expires_at(Expiry::After(Duration::ZERO), DateTime::now()),
            Err(())
        );
        let far = expires_at(Expiry::After(Duration::MAX), DateTime::now())
            .unwrap()
            .unwrap();
        assert_eq!(far.timestamp_millis(), 253_402_300_799_000);
        let soon = expires_at(Expiry::After(Duration::from_micros(10)), DateTime::now())
            .unwrap()
            .unwrap();
        assert!(soon.timestamp_millis() > DateTime::now().timestamp_millis() - 5);
    }
}
