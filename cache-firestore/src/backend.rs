//! `FirestoreBuilder` and `FirestoreBackend`: a thin `CacheBackend` over the driver side.

use crate::config::FirestoreConfig;
use crate::core::{
    create, delete, delete_if_unchanged, doc_id, expires_at, is_live, now_ms, put,
    replace_if_unchanged, value_of, Conditional, Shared, COMMIT_MAX, EXPIRES, GET_MAX, MAX_KEY_LEN,
    VALUE,
};
use crate::error::BACKEND;
use cache_core::raw::{distinct, last_of_each, validate_namespace, KeyKind, KeyLayout};
use cache_core::{async_trait, Bytes, CacheBackend, Capabilities, Expiry, LockToken, Result};
use futures::future::try_join_all;
use gcloud_sdk::google::firestore::v1::{value::ValueType, Document, Write};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Builder for [`FirestoreBackend`].
///
/// ```no_run
/// # async fn demo() -> cache_core::Result<()> {
/// use cache_firestore::FirestoreBackend;
/// use std::time::Duration;
/// let backend = FirestoreBackend::builder()
///     .project_id("my-project")
///     .collection("cache_entries")
///     .namespace("sessions")
///     .timeout(Duration::from_millis(500))
///     .build()
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Default)]
#[must_use]
pub struct FirestoreBuilder {
    config: FirestoreConfig,
}

impl FirestoreBuilder {
    /// Start from a full configuration.
    pub fn from_config(config: FirestoreConfig) -> Self {
        FirestoreBuilder { config }
    }
    /// See [`FirestoreConfig::project_id`].
    pub fn project_id(mut self, id: impl Into<String>) -> Self {
        self.config.project_id = id.into();
        self
    }
    /// See [`FirestoreConfig::database_id`].
    pub fn database_id(mut self, id: impl Into<String>) -> Self {
        self.config.database_id = id.into();
        self
    }
    /// See [`FirestoreConfig::collection`].
    pub fn collection(mut self, collection: impl Into<String>) -> Self {
        self.config.collection = collection.into();
        self
    }
    /// See [`FirestoreConfig::namespace`].
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.config.namespace = namespace.into();
        self
    }
    /// See [`FirestoreConfig::key_file`].
    pub fn key_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.config.key_file = Some(path.into());
        self
    }
    /// See [`FirestoreConfig::timeout`].
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.config.timeout = timeout;
        self
    }
    /// See [`FirestoreConfig::connect_timeout`].
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.config.connect_timeout = timeout;
        self
    }
    /// See [`FirestoreConfig::sweep_interval`].
    pub fn sweep_interval(mut self, every: Duration) -> Self {
        self.config.sweep_interval = Some(every);
        self
    }
    /// See [`FirestoreConfig::max_value_size`].
    pub fn max_value_size(mut self, bytes: usize) -> Self {
        self.config.max_value_size = bytes;
        self
    }

    /// Check the settings, connect and read once: a missing project id, bad names,
    /// refused credentials or a missing database are a
    /// [`Config`](cache_core::ErrorKind::Config) error; an unreachable service is
    /// `Unavailable` or `Timeout` within the connect timeout.
    pub async fn build(self) -> Result<FirestoreBackend> {
        let cfg = self.config;
        validate_namespace(BACKEND, &cfg.namespace)?;
        if cfg.sweep_interval.is_some_and(|d| d.is_zero()) {
            return Err(crate::error::config("sweep_interval must be positive"));
        }
        let shared = Arc::new(Shared::connect(&cfg).await?);
        tracing::debug!(namespace = %cfg.namespace, collection = %cfg.collection, "firestore backend ready");
        let sweeper = cfg
            .sweep_interval
            .map(|every| Sweeper::start(Arc::downgrade(&shared), cfg.namespace.clone(), every));
        let mut backend = FirestoreBackend::on_shared(shared, cfg);
        backend.sweeper = sweeper;
        Ok(backend)
    }
}

/// A cache backend on one Firestore collection, shared by every namespace.
///
/// Documents are named by the SHA-256 of the store key and hold
/// `{ns, key, value: bytes, expires_at: timestamp | null}`; reads filter expired ones.
pub struct FirestoreBackend {
    shared: Arc<Shared>,
    caps: Capabilities,
    config: FirestoreConfig,
    /// The background sweep of the built backend's namespace, if configured; stopped
    /// by `close` or when the backend is dropped.
    sweeper: Option<Sweeper>,
}

/// The background task of [`FirestoreConfig::sweep_interval`].
struct Sweeper(tokio::task::AbortHandle);

impl Sweeper {
    fn start(shared: std::sync::Weak<Shared>, namespace: String, every: Duration) -> Sweeper {
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tick.tick().await;
                let Some(shared) = shared.upgrade() else {
                    return;
                };
                // The namespace's values, and its expired locks (kept apart).
                let locks = KeyLayout::lock_namespace(&namespace);
                let swept = match sweep(&shared, &namespace).await {
                    Ok(n) => sweep(&shared, &locks).await.map(|m| n + m),
                    e => e,
                };
                match swept {
                    Ok(0) => {}
                    Ok(n) => tracing::debug!(
                        namespace,
                        removed = n,
                        "firestore: swept expired documents"
                    ),
                    Err(e) => {
                        tracing::warn!(namespace, error = %e, "firestore: sweep failed; retrying at the next interval")
                    }
                }
            }
        });
        Sweeper(task.abort_handle())
    }
}

impl Drop for Sweeper {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Delete the expired documents of `namespace`, each only if unchanged since the
/// query saw it (an update-time precondition: a value written again meanwhile stays).
async fn sweep(shared: &Shared, namespace: &str) -> Result<usize> {
    use futures::{StreamExt, TryStreamExt};
    let mut removed = 0;
    loop {
        let expired = shared
            .query_ns(namespace, Some(now_ms()), COMMIT_MAX)
            .await?;
        let full = expired.len() == COMMIT_MAX;
        let done: Vec<Conditional> = futures::stream::iter(expired.into_iter().filter_map(|d| {
            let seen = d.update_time?;
            Some(shared.commit_conditional(vec![delete_if_unchanged(d.name, seen)]))
        }))
        .buffer_unordered(16)
        .try_collect()
        .await?;
        removed += done
            .iter()
            .filter(|c| matches!(c, Conditional::Done))
            .count();
        if !full {
            return Ok(removed);
        }
    }
}

impl std::fmt::Debug for FirestoreBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FirestoreBackend")
            .field("config", &self.config)
            .finish()
    }
}

/// How many times a create-or-take-over is tried again when the document changed
/// between its read and its write.
const TAKEOVER_ATTEMPTS: usize = 3;

impl FirestoreBackend {
    /// A builder with the defaults of [`FirestoreConfig`].
    pub fn builder() -> FirestoreBuilder {
        FirestoreBuilder::default()
    }

    fn on_shared(shared: Arc<Shared>, config: FirestoreConfig) -> Self {
        FirestoreBackend {
            shared,
            caps: capabilities(&config),
            config,
            sweeper: None,
        }
    }

    /// Another backend on the same client and collection with its own namespace.
    pub fn with_namespace(&self, namespace: &str) -> Result<FirestoreBackend> {
        validate_namespace(BACKEND, namespace)?;
        let mut config = self.config.clone();
        config.namespace = namespace.to_owned();
        Ok(FirestoreBackend::on_shared(self.shared.clone(), config))
    }

    /// This backend's namespace.
    pub fn namespace(&self) -> &str {
        &self.config.namespace
    }

    /// Delete this namespace's expired documents now (what the background sweep of
    /// [`FirestoreConfig::sweep_interval`] does); how many were deleted.
    pub async fn sweep(&self) -> Result<usize> {
        sweep(&self.shared, self.ns()).await
    }

    /// The firestore crate's client, for calls this crate does not make.
    pub fn db(&self) -> &firestore::FirestoreDb {
        &self.shared.db
    }

    fn ns(&self) -> &str {
        &self.config.namespace
    }

    /// The document name of `key` of `kind`.
    fn name(&self, kind: KeyKind, key: &str) -> String {
        self.shared.name(&doc_id(self.ns(), kind, key).0)
    }

    fn document(&self, kind: KeyKind, key: &str, bytes: &[u8], exp: Option<u64>) -> Document {
        let (id, stored) = doc_id(self.ns(), kind, key);
        match kind {
            // Under the locks' own namespace field: `clear` leaves held locks alone.
            KeyKind::Lock => {
                let ns = KeyLayout::lock_namespace(self.ns());
                self.shared.document(&id, &ns, stored, bytes, exp)
            }
            _ => self.shared.document(&id, self.ns(), stored, bytes, exp),
        }
    }

    /// The live documents of `names` (any number, duplicates allowed), by name.
    async fn live(
        &self,
        names: &[String],
        mask: Option<&[&str]>,
    ) -> Result<HashMap<String, Document>> {
        let unique = distinct(names.iter().cloned());
        let pages = try_join_all(
            unique
                .chunks(GET_MAX)
                .map(|chunk| self.shared.batch_get(chunk.to_vec(), mask)),
        )
        .await?;
        let now = now_ms();
        Ok(pages
            .into_iter()
            .flatten()
            .filter(|d| is_live(d, now))
            .map(|d| (d.name.clone(), d))
            .collect())
    }

    /// The document of `name` as stored (live or not), with its update time.
    async fn read(&self, name: String) -> Result<Option<Document>> {
        Ok(self.shared.batch_get(vec![name], None).await?.pop())
    }

    /// Commit `writes` in chunks of [`COMMIT_MAX`], at once.
    async fn commit_all(&self, writes: Vec<Write>) -> Result<()> {
        try_join_all(
            writes
                .chunks(COMMIT_MAX)
                .map(|chunk| self.shared.commit(chunk.to_vec())),
        )
        .await
        .map(drop)
    }

    /// Write `doc` only if nothing live has its name: a create with the precondition
    /// "does not exist"; over an expired document, a replace with the precondition
    /// "last updated when we read it". Either way one racer wins.
    async fn put_if_absent(&self, doc: Document) -> Result<bool> {
        for _ in 0..TAKEOVER_ATTEMPTS {
            if let Conditional::Done = self
                .shared
                .commit_conditional(vec![create(doc.clone())])
                .await?
            {
                return Ok(true);
            }
            let Some(current) = self.read(doc.name.clone()).await? else {
                continue; // deleted since: try to create again
            };
            if is_live(&current, now_ms()) {
                return Ok(false);
            }
            let Some(seen) = current.update_time else {
                return Ok(false);
            };
            if let Conditional::Done = self
                .shared
                .commit_conditional(vec![replace_if_unchanged(doc.clone(), seen)])
                .await?
            {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

impl FirestoreBuilder {
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
fn capabilities(config: &FirestoreConfig) -> Capabilities {
    Capabilities::new(BACKEND)
        .max_key_len(Some(MAX_KEY_LEN))
        .max_value_size(Some(config.max_value_size))
        .native_batch(true)
        .distributed_locks(true)
}

#[async_trait]
impl CacheBackend for FirestoreBackend {
    fn capabilities(&self) -> Capabilities {
        self.caps
    }

    fn namespace(&self) -> &str {
        Self::namespace(self)
    }

    async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        let name = self.name(KeyKind::Value, key);
        let found = self.shared.batch_get(vec![name], None).await?.pop();
        Ok(found
            .filter(|d| is_live(d, now_ms()))
            .and_then(value_of)
            .map(Bytes::from))
    }

    async fn set(&self, key: &str, value: Bytes, expiry: Expiry) -> Result<()> {
        let Ok(exp) = expires_at(expiry) else {
            return self.delete(key).await.map(drop);
        };
        self.shared
            .commit(vec![put(self.document(KeyKind::Value, key, &value, exp))])
            .await
    }

    async fn delete(&self, key: &str) -> Result<bool> {
        let name = self.name(KeyKind::Value, key);
        let was_live = !self
            .live(std::slice::from_ref(&name), Some(&[EXPIRES]))
            .await?
            .is_empty();
        self.shared.commit(vec![delete(name)]).await?;
        Ok(was_live)
    }

    async fn has(&self, key: &str) -> Result<bool> {
        // Without the value, which may be large.
        let name = self.name(KeyKind::Value, key);
        Ok(!self.live(&[name], Some(&[EXPIRES])).await?.is_empty())
    }

    async fn clear(&self) -> Result<()> {
        // The namespace's documents by a query on the `ns` field (never a pattern),
        // a page at a time, each deleted in one commit.
        loop {
            let names: Vec<String> = (self.shared.query_ns(self.ns(), None, COMMIT_MAX).await?)
                .into_iter()
                .map(|d| d.name)
                .collect();
            let full = names.len() == COMMIT_MAX;
            if !names.is_empty() {
                self.shared
                    .commit(names.into_iter().map(delete).collect())
                    .await?;
            }
            if !full {
                return Ok(());
            }
        }
    }

    async fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<Bytes>>> {
        let names: Vec<String> = keys.iter().map(|k| self.name(KeyKind::Value, k)).collect();
        let found = self.live(&names, None).await?;
        Ok(names
            .iter()
            .map(
                |n| match found.get(n)?.fields.get(VALUE)?.value_type.as_ref()? {
                    ValueType::BytesValue(b) => Some(Bytes::copy_from_slice(b)),
                    _ => None,
                },
            )
            .collect())
    }

    async fn set_many(&self, items: &[(&str, Bytes)], expiry: Expiry) -> Result<()> {
        let Ok(exp) = expires_at(expiry) else {
            let keys: Vec<&str> = items.iter().map(|(k, _)| *k).collect();
            return self.delete_many(&keys).await.map(drop);
        };
        // The last value given for a key wins.
        let order = last_of_each(items);
        let writes = order
            .iter()
            .map(|&i| {
                let (k, v) = &items[i];
                put(self.document(KeyKind::Value, k, v, exp))
            })
            .collect();
        self.commit_all(writes).await
    }

    async fn delete_many(&self, keys: &[&str]) -> Result<usize> {
        let names = distinct(keys.iter().map(|k| self.name(KeyKind::Value, k)));
        let live = self.live(&names, Some(&[EXPIRES])).await?.len();
        self.commit_all(names.into_iter().map(delete).collect())
            .await?;
        Ok(live)
    }

    async fn set_if_absent(&self, key: &str, value: Bytes, expiry: Expiry) -> Result<bool> {
        let Ok(exp) = expires_at(expiry) else {
            return Ok(false);
        };
        self.put_if_absent(self.document(KeyKind::Value, key, &value, exp))
            .await
    }

    async fn acquire_lock(&self, key: &str, ttl: Duration) -> Result<Option<LockToken>> {
        let token = LockToken::random();
        let exp = expires_at(Expiry::After(ttl)).ok().flatten();
        let won = self
            .put_if_absent(self.document(KeyKind::Lock, key, token.as_str().as_bytes(), exp))
            .await?;
        Ok(won.then_some(token))
    }

    async fn release_lock(&self, key: &str, token: &LockToken) -> Result<bool> {
        // Read the lock; delete it only if it is ours, live, and unchanged since the
        // read (an update-time precondition: a takeover in between wins).
        let Some(current) = self.read(self.name(KeyKind::Lock, key)).await? else {
            return Ok(false);
        };
        if !is_live(&current, now_ms()) {
            return Ok(false);
        }
        let (Some(seen), name) = (current.update_time, current.name.clone()) else {
            return Ok(false);
        };
        if value_of(current).as_deref() != Some(token.as_str().as_bytes()) {
            return Ok(false);
        }
        Ok(matches!(
            self.shared
                .commit_conditional(vec![delete_if_unchanged(name, seen)])
                .await?,
            Conditional::Done
        ))
    }

    async fn close(&self) -> Result<()> {
        if let Some(s) = &self.sweeper {
            s.0.abort();
        }
        Ok(())
    }
}
