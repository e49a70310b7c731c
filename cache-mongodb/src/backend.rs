//! `MongoBuilder` and `MongoBackend`: a thin `CacheBackend` over the driver side.

use crate::config::MongoConfig;
use crate::core::{
    entry, expires_at, id, is_live, value_of, Shared, EXPIRES, MAX_KEY_LEN, NS, VALUE,
};
use crate::error::{is_duplicate_key, map, BACKEND};
use cache_core::raw::{last_of_each, validate_namespace, KeyKind, KeyLayout};
use cache_core::{async_trait, Bytes, CacheBackend, Capabilities, Expiry, LockToken, Result};
use futures::TryStreamExt;
use mongodb::bson::{doc, spec::BinarySubtype, Binary, DateTime, Document};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// Builder for [`MongoBackend`].
///
/// ```no_run
/// # async fn demo() -> cache_core::Result<()> {
/// use cache_mongodb::MongoBackend;
/// use std::time::Duration;
/// let backend = MongoBackend::builder()
///     .uri("mongodb://app:secret@127.0.0.1:27017/app")
///     .collection("cache_entries")
///     .namespace("sessions")
///     .timeout(Duration::from_millis(500))
///     .build()
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Default)]
#[must_use]
pub struct MongoBuilder {
    config: MongoConfig,
}

impl MongoBuilder {
    /// Start from a full configuration.
    pub fn from_config(config: MongoConfig) -> Self {
        MongoBuilder { config }
    }
    /// A builder for the server at `uri`.
    pub fn new(uri: impl Into<String>) -> Self {
        Self::default().uri(uri)
    }
    /// See [`MongoConfig::uri`].
    pub fn uri(mut self, uri: impl Into<String>) -> Self {
        self.config.uri = uri.into();
        self
    }
    /// See [`MongoConfig::database`].
    pub fn database(mut self, database: impl Into<String>) -> Self {
        self.config.database = Some(database.into());
        self
    }
    /// See [`MongoConfig::collection`].
    pub fn collection(mut self, collection: impl Into<String>) -> Self {
        self.config.collection = collection.into();
        self
    }
    /// See [`MongoConfig::namespace`].
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.config.namespace = namespace.into();
        self
    }
    /// See [`MongoConfig::pool_size`].
    pub fn pool_size(mut self, n: u32) -> Self {
        self.config.pool_size = n;
        self
    }
    /// See [`MongoConfig::timeout`].
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.config.timeout = timeout;
        self
    }
    /// See [`MongoConfig::connect_timeout`].
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.config.connect_timeout = timeout;
        self
    }
    /// See [`MongoConfig::max_value_size`].
    pub fn max_value_size(mut self, bytes: usize) -> Self {
        self.config.max_value_size = bytes;
        self
    }

    /// Connect, ping and create the indexes if absent. A bad URI, wrong credentials or
    /// a conflicting index is a [`Config`](cache_core::ErrorKind::Config) error; an
    /// unreachable server is `Unavailable` or `Timeout` within the connect timeout.
    pub async fn build(self) -> Result<MongoBackend> {
        let cfg = self.config;
        validate_namespace(BACKEND, &cfg.namespace)?;
        if cfg.max_value_size > 16 * 1024 * 1024 - 16 * 1024 {
            return Err(crate::error::config(
                "max_value_size is over what fits a 16 MiB MongoDB document with its key; use at most 16 MiB - 16 KiB",
            ));
        }
        let shared = Arc::new(Shared::connect(&cfg).await?);
        tracing::debug!(namespace = %cfg.namespace, collection = %cfg.collection, "mongodb backend connected");
        Ok(MongoBackend::on_shared(shared, cfg))
    }
}

/// A cache backend on one MongoDB collection, shared by every namespace.
///
/// Documents are `{_id: "ns:key", ns, v: binary, exp: date | null}`, with an index
/// on `ns` (for `clear`) and a TTL index on `exp`; reads filter expired documents.
pub struct MongoBackend {
    shared: Arc<Shared>,
    caps: Capabilities,
    config: MongoConfig,
}

impl std::fmt::Debug for MongoBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MongoBackend")
            .field("config", &self.config)
            .finish()
    }
}

fn binary(bytes: &[u8]) -> Binary {
    Binary {
        subtype: BinarySubtype::Generic,
        bytes: bytes.to_vec(),
    }
}

impl MongoBackend {
    /// A builder with the defaults of [`MongoConfig`].
    pub fn builder() -> MongoBuilder {
        MongoBuilder::default()
    }

    fn on_shared(shared: Arc<Shared>, config: MongoConfig) -> Self {
        MongoBackend {
            shared,
            caps: capabilities(&config),
            config,
        }
    }

    /// Another backend on the same client and collection with its own namespace.
    pub fn with_namespace(&self, namespace: &str) -> Result<MongoBackend> {
        validate_namespace(BACKEND, namespace)?;
        let mut config = self.config.clone();
        config.namespace = namespace.to_owned();
        Ok(MongoBackend::on_shared(self.shared.clone(), config))
    }

    /// This backend's namespace.
    pub fn namespace(&self) -> &str {
        &self.config.namespace
    }

    fn ns(&self) -> &str {
        &self.config.namespace
    }

    fn value_id(&self, key: &str) -> String {
        id(self.ns(), KeyKind::Value, key)
    }

    /// The live document of `key` with the fields of `projection` (and `exp`).
    async fn find_one(
        &self,
        key: &str,
        projection: impl Into<Option<Document>>,
    ) -> Result<Option<Document>> {
        let found = self
            .shared
            .call(
                self.shared
                    .coll
                    .find_one(doc! { "_id": self.value_id(key) })
                    .with_options(
                        mongodb::options::FindOneOptions::builder()
                            .projection(projection.into())
                            .build(),
                    ),
            )
            .await?;
        Ok(found.filter(|d| is_live(d, DateTime::now())))
    }

    /// `{_id: {$in: ids}}` and live, projected to the value.
    async fn find_live(&self, ids: &[String]) -> Result<HashMap<String, Vec<u8>>> {
        let filter = doc! { "_id": { "$in": ids } };
        let docs: Vec<Document> = self
            .shared
            .call(async {
                self.shared
                    .coll
                    .find(filter)
                    .projection(doc! { VALUE: 1, EXPIRES: 1 })
                    .await?
                    .try_collect()
                    .await
            })
            .await?;
        let now = DateTime::now();
        Ok(docs
            .iter()
            .filter(|d| is_live(d, now))
            .filter_map(|d| Some((d.get_str("_id").ok()?.to_owned(), value_of(d)?)))
            .collect())
    }

    /// Write `doc` under `_id` only if nothing live is there: an upsert on
    /// `{_id, exp < now}` takes a free or expired entry; a live one makes the upsert
    /// insert a second `_id`, which the server refuses (E11000): one winner.
    async fn insert_if_absent(&self, id: String, doc: Document) -> Result<bool> {
        let filter = doc! { "_id": &id, EXPIRES: { "$lt": DateTime::now() } };
        let r = self
            .shared
            .call_raw(
                self.shared
                    .coll
                    .update_one(filter, doc! { "$set": doc })
                    .upsert(true),
            )
            .await?;
        match r {
            Ok(_) => Ok(true),
            Err(e) if is_duplicate_key(&e) => Ok(false),
            Err(e) => Err(map(e)),
        }
    }
}

impl MongoBuilder {
    /// Lazy start: a backend that connects in the background (see
    /// [`LazyBackend`](cache_core::LazyBackend)), so the application starts while the
    /// store is down; until it is reachable, calls fail fast with `Unavailable` and
    /// get-or-compute computes without the cache. Settings are checked at once;
    /// errors only the server can tell (credentials, a missing database) show on the
    /// calls as `Config` errors. Call it inside a tokio runtime.
    pub fn build_lazy(self) -> Result<cache_core::LazyBackend> {
        let caps = capabilities(&self.config);
        let namespace = self.config.namespace.clone();
        cache_core::LazyBackend::spawn(caps, namespace, move || self.clone().build())
    }
}

/// What a backend of `config` can do (known before it connects).
fn capabilities(config: &MongoConfig) -> Capabilities {
    Capabilities::new(BACKEND)
        .max_key_len(Some(MAX_KEY_LEN))
        .max_value_size(Some(config.max_value_size))
        .native_batch(true)
        .distributed_locks(true)
}

#[async_trait]
impl CacheBackend for MongoBackend {
    fn capabilities(&self) -> Capabilities {
        self.caps
    }

    fn namespace(&self) -> &str {
        Self::namespace(self)
    }

    async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        // The whole document: it has only these fields, and a projection costs the
        // server more than the bytes it saves.
        let found = self.find_one(key, None).await?;
        Ok(found.as_ref().and_then(value_of).map(Bytes::from))
    }

    async fn set(&self, key: &str, value: Bytes, expiry: Expiry) -> Result<()> {
        let Ok(exp) = expires_at(expiry) else {
            return self.delete(key).await.map(drop);
        };
        let id = self.value_id(key);
        self.shared
            .call(
                self.shared
                    .coll
                    .replace_one(doc! { "_id": &id }, entry(self.ns(), &value, exp))
                    .upsert(true),
            )
            .await
            .map(drop)
    }

    async fn delete(&self, key: &str) -> Result<bool> {
        let removed = self
            .shared
            .call(
                self.shared
                    .coll
                    .find_one_and_delete(doc! { "_id": self.value_id(key) })
                    .projection(doc! { EXPIRES: 1 }),
            )
            .await?;
        Ok(removed.is_some_and(|d| is_live(&d, DateTime::now())))
    }

    async fn has(&self, key: &str) -> Result<bool> {
        // Without the value, which may be large.
        Ok(self.find_one(key, doc! { EXPIRES: 1 }).await?.is_some())
    }

    async fn clear(&self) -> Result<()> {
        // By the namespace field, never a regex over user text.
        self.shared
            .call(self.shared.coll.delete_many(doc! { NS: self.ns() }))
            .await
            .map(drop)
    }

    async fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<Bytes>>> {
        let ids: Vec<String> = keys.iter().map(|k| self.value_id(k)).collect();
        let found = self.find_live(&ids).await?;
        Ok(ids
            .iter()
            .map(|id| found.get(id).map(|v| Bytes::copy_from_slice(v)))
            .collect())
    }

    async fn set_many(&self, items: &[(&str, Bytes)], expiry: Expiry) -> Result<()> {
        let Ok(exp) = expires_at(expiry) else {
            let keys: Vec<&str> = items.iter().map(|(k, _)| *k).collect();
            return self.delete_many(&keys).await.map(drop);
        };
        // The last value given for a key wins.
        let order = last_of_each(items);
        // One `update` command with an upsert per key: one round trip, on every
        // server version.
        let updates: Vec<Document> = order
            .iter()
            .map(|&i| {
                let (k, v) = &items[i];
                doc! {
                    "q": { "_id": self.value_id(k) },
                    "u": entry(self.ns(), v, exp),
                    "upsert": true,
                }
            })
            .collect();
        let command = doc! {
            "update": self.shared.coll.name(),
            "updates": updates,
            "ordered": false,
        };
        let reply = self
            .shared
            .call(self.shared.db.run_command(command))
            .await?;
        match reply.get_array("writeErrors") {
            Ok(errors) if !errors.is_empty() => Err(cache_core::Error::new(
                cache_core::ErrorKind::Backend,
                BACKEND,
                format!(
                    "MongoDB refused {} write(s) of the batch: {:?}",
                    errors.len(),
                    errors[0]
                ),
            )),
            _ => Ok(()),
        }
    }

    async fn delete_many(&self, keys: &[&str]) -> Result<usize> {
        let ids: Vec<String> = keys.iter().map(|k| self.value_id(k)).collect();
        let live_ids = self.find_live(&ids).await?.len();
        self.shared
            .call(
                self.shared
                    .coll
                    .delete_many(doc! { "_id": { "$in": &ids } }),
            )
            .await?;
        Ok(live_ids)
    }

    async fn set_if_absent(&self, key: &str, value: Bytes, expiry: Expiry) -> Result<bool> {
        let Ok(exp) = expires_at(expiry) else {
            return Ok(false);
        };
        self.insert_if_absent(self.value_id(key), entry(self.ns(), &value, exp))
            .await
    }

    async fn acquire_lock(&self, key: &str, ttl: Duration) -> Result<Option<LockToken>> {
        let token = LockToken::random();
        let exp = expires_at(Expiry::After(ttl)).ok().flatten();
        let won = self
            .insert_if_absent(
                id(self.ns(), KeyKind::Lock, key),
                // Under the locks' own namespace field: `clear` leaves held locks alone.
                entry(
                    &KeyLayout::lock_namespace(self.ns()),
                    token.as_str().as_bytes(),
                    exp,
                ),
            )
            .await?;
        Ok(won.then_some(token))
    }

    async fn release_lock(&self, key: &str, token: &LockToken) -> Result<bool> {
        let filter = doc! {
            "_id": id(self.ns(), KeyKind::Lock, key),
            VALUE: binary(token.as_str().as_bytes()),
            EXPIRES: { "$gt": DateTime::now() },
        };
        let r = self
            .shared
            .call(self.shared.coll.delete_one(filter))
            .await?;
        Ok(r.deleted_count == 1)
    }

    async fn close(&self) -> Result<()> {
        Ok(())
    }
}
