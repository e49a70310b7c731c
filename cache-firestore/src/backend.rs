//! `FirestoreBuilder` and `FirestoreBackend`: a thin `CacheBackend` over the driver side.

use crate::config::FirestoreConfig;
use crate::driver::{
    absent, create, delete, delete_if_unchanged, doc_id, is_live, put, replace_if_unchanged,
    value_of, value_ref, with_value, Conditional, Driver, COMMIT_MAX, EXPIRES, GET_MAX, VALUE,
};
use crate::error::BACKEND;
use cache_core::raw::{
    distinct, last_of_each, lock_state, overtaken, validate_namespace, KeyKind, KeyLayout,
    LockState,
};
use cache_core::{
    async_trait, Bytes, CacheBackend, Capabilities, Error, ErrorKind, Expiry, LockToken, Result,
};
use futures::future::try_join_all;
use futures::{StreamExt, TryStreamExt};
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
    /// Tests only: how far this client's clock is shifted, in ms.
    clock_offset_ms: i64,
}

impl FirestoreBuilder {
    cache_core::builder_setters! { config: FirestoreConfig;
        from_config,
        project_id(id: impl Into<String>) = id.into(),
        database_id(id: impl Into<String>) = id.into(),
        collection(collection: impl Into<String>) = collection.into(),
        namespace,
        key_file(path: impl Into<PathBuf>) = Some(path.into()),
        timeout, connect_timeout,
        sweep_interval(every: Duration) = Some(every),
        max_value_size, max_clock_skew,
        test_clock_offset_ms => clock_offset_ms,
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
        let clock = Clock::new(&cfg, self.clock_offset_ms);
        let driver = Arc::new(Driver::connect(&cfg).await?);
        tracing::debug!(namespace = %cfg.namespace, collection = %cfg.collection, "firestore backend ready");
        let sweeper = cfg.sweep_interval.map(|every| {
            Sweeper::start(Arc::downgrade(&driver), cfg.namespace.clone(), every, clock)
        });
        let mut backend = FirestoreBackend::on_driver(driver, cfg, clock);
        backend.sweeper = sweeper;
        Ok(backend)
    }
}

/// A cache backend on one Firestore collection, shared by every namespace.
///
/// Documents are named by the SHA-256 of the store key and hold
/// `{ns, key, value: bytes, expires_at: timestamp | null}`; reads filter expired ones.
pub struct FirestoreBackend {
    driver: Arc<Driver>,
    caps: Capabilities,
    config: FirestoreConfig,
    clock: Clock,
    /// The background sweep of the built backend's namespace, if configured; stopped
    /// by `close` or when the backend is dropped.
    sweeper: Option<Sweeper>,
}

/// This client's clock (shifted only by tests) and the margin of
/// [`FirestoreConfig::max_clock_skew`] for judging other clients' lock deadlines.
#[derive(Debug, Clone, Copy)]
struct Clock {
    offset_ms: i64,
    skew_ms: u64,
}

impl Clock {
    fn new(config: &FirestoreConfig, offset_ms: i64) -> Clock {
        Clock {
            offset_ms,
            skew_ms: u64::try_from(config.max_clock_skew.as_millis()).unwrap_or(u64::MAX),
        }
    }

    /// Now, in epoch milliseconds.
    fn now(&self) -> u64 {
        cache_core::raw::shifted_now_ms(self.offset_ms)
    }

    /// When an entry written now with `expiry` expires, in epoch milliseconds rounded
    /// up and clamped to the year 9999 (`None`: never), or `Err(())` if it already has.
    fn expires(&self, expiry: Expiry) -> std::result::Result<Option<u64>, ()> {
        cache_core::raw::expires_at_ms_from(self.now(), expiry)
    }

    /// The instant before which another client's lock deadline has surely passed: now
    /// less the skew margin. A lock whose deadline is later is held, for every caller
    /// but its holder.
    fn abandoned_before(&self) -> u64 {
        self.now().saturating_sub(self.skew_ms)
    }

    /// Whether a lock document (as read) is held, judged by a contender: its deadline
    /// has not passed by more than the skew margin.
    fn lock_held(&self, lock: &Document) -> bool {
        is_live(lock, self.abandoned_before())
    }
}

/// The background task of [`FirestoreConfig::sweep_interval`].
struct Sweeper(tokio::task::AbortHandle);

impl Sweeper {
    fn start(
        driver: std::sync::Weak<Driver>,
        namespace: String,
        every: Duration,
        clock: Clock,
    ) -> Sweeper {
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tick.tick().await;
                let Some(driver) = driver.upgrade() else {
                    return;
                };
                // The namespace's values, and its expired locks (kept apart).
                let locks = KeyLayout::lock_namespace(&namespace);
                let swept = match sweep(&driver, &namespace, clock.now()).await {
                    Ok(n) => sweep(&driver, &locks, clock.abandoned_before())
                        .await
                        .map(|m| n + m),
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

/// Delete the documents of `namespace` that expired before `before` (epoch ms), each
/// only if unchanged since the query saw it (an update-time precondition: a value
/// written again meanwhile stays).
async fn sweep(driver: &Driver, namespace: &str, before: u64) -> Result<usize> {
    let mut removed = 0;
    loop {
        let expired = driver.query_ns(namespace, Some(before), COMMIT_MAX).await?;
        let full = expired.len() == COMMIT_MAX;
        let done: Vec<Conditional> = futures::stream::iter(expired.into_iter().filter_map(|d| {
            let seen = d.update_time?;
            Some(driver.commit_conditional(vec![delete_if_unchanged(d.name, seen)]))
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

cache_core::backend_handle! {
    FirestoreBackend: FirestoreBuilder, FirestoreConfig;
    /// Another backend on the same client and collection with its own namespace.
    with_namespace: on_driver(driver.clone(), config, clock),
}

/// How many times a create-or-take-over is tried again when the document changed
/// between its read and its write.
const TAKEOVER_ATTEMPTS: usize = 3;

/// How many times a fenced write (or a release) reads the lock again after the lock
/// changed between its read and the commit (taken, released or overtaken meanwhile).
const FENCE_ATTEMPTS: usize = 8;

/// The pause before a fenced write reads its locks again after `attempt` (1 or more)
/// commits whose fences were built from a read failed: the lock changed between the
/// read and the commit, so another writer of the key (or its holder) is at work. 5 ms
/// per attempt so far plus up to 10 ms of jitter, so that writers contending for one
/// lock do not read and commit again in step.
fn fence_backoff(attempt: usize) -> Duration {
    use std::hash::{BuildHasher, Hasher};
    // A random number without a random-number crate: std's per-process random
    // SipHash keys (a fresh `RandomState` differs from the last).
    let random = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    let steps = u64::try_from(attempt).unwrap_or(u64::MAX);
    Duration::from_millis(5u64.saturating_mul(steps)) + Duration::from_micros(random % 10_000)
}

/// Most keys in one fenced commit: each takes two of its writes (the value and the
/// fence on its lock).
const FENCED_MAX: usize = COMMIT_MAX / 2;

/// The error of a write whose documents kept changing under it.
fn contended() -> Error {
    Error::new(
        ErrorKind::Unavailable,
        BACKEND,
        "the key's lock document kept changing between the read and the write; retry",
    )
}

impl FirestoreBackend {
    fn on_driver(driver: Arc<Driver>, config: FirestoreConfig, clock: Clock) -> Self {
        FirestoreBackend {
            driver,
            caps: config.capabilities(),
            config,
            clock,
            sweeper: None,
        }
    }

    /// Delete this namespace's expired documents now (what the background sweep of
    /// [`FirestoreConfig::sweep_interval`] does); how many were deleted.
    pub async fn sweep(&self) -> Result<usize> {
        sweep(&self.driver, self.ns(), self.clock.now()).await
    }

    /// The firestore crate's client, for calls this crate does not make.
    pub fn db(&self) -> &firestore::FirestoreDb {
        &self.driver.db
    }

    fn ns(&self) -> &str {
        &self.config.namespace
    }

    /// The document name of `key` of `kind`.
    fn name(&self, kind: KeyKind, key: &str) -> String {
        self.driver.name(&doc_id(self.ns(), kind, key).0)
    }

    fn document(&self, kind: KeyKind, key: &str, bytes: &[u8], exp: Option<u64>) -> Document {
        let (id, stored) = doc_id(self.ns(), kind, key);
        match kind {
            // Under the locks' own namespace field: `clear` leaves held locks alone.
            KeyKind::Lock => {
                let ns = KeyLayout::lock_namespace(self.ns());
                self.driver.document(&id, &ns, stored, bytes, exp)
            }
            _ => self.driver.document(&id, self.ns(), stored, bytes, exp),
        }
    }

    /// The documents of `names` as stored (any number, duplicates allowed; live or
    /// not, with their update times), by name.
    async fn stored(
        &self,
        names: &[String],
        mask: Option<&[&str]>,
    ) -> Result<HashMap<String, Document>> {
        let unique = distinct(names.iter().cloned());
        let pages = try_join_all(
            unique
                .chunks(GET_MAX)
                .map(|chunk| self.driver.batch_get(chunk.to_vec(), mask)),
        )
        .await?;
        Ok(pages
            .into_iter()
            .flatten()
            .map(|d| (d.name.clone(), d))
            .collect())
    }

    /// The live documents of `names` (any number, duplicates allowed), by name.
    async fn live(
        &self,
        names: &[String],
        mask: Option<&[&str]>,
    ) -> Result<HashMap<String, Document>> {
        let now = self.clock.now();
        let mut found = self.stored(names, mask).await?;
        found.retain(|_, d| is_live(d, now));
        Ok(found)
    }

    /// The document of `name` as stored (live or not), with its update time.
    async fn read(&self, name: String) -> Result<Option<Document>> {
        Ok(self.driver.batch_get(vec![name], None).await?.pop())
    }

    /// The fence on the lock document `name` that a write of its key's value commits
    /// with, given the lock as read (`None`: there was none). No lock: a no-op write
    /// that fails the commit if a lock appeared since. A held lock: marked overtaken
    /// (`!token`, its expiry kept) if unchanged since the read. An abandoned lock
    /// (past its deadline by more than the skew margin): deleted if unchanged. A
    /// commit whose fence fails writes nothing: the caller reads the lock again.
    fn fence(&self, name: &str, lock: Option<&Document>) -> Write {
        let Some((lock, seen)) = lock.and_then(|l| Some((l, l.update_time?))) else {
            return absent(name.to_owned());
        };
        if !self.clock.lock_held(lock) {
            return delete_if_unchanged(name.to_owned(), seen);
        }
        // A lock already overtaken is written again unchanged, which keeps its update
        // time (Firestore keeps a document's update time on a write that changes
        // nothing): concurrent writers of one key do not fail each other's fences.
        let token = String::from_utf8_lossy(value_ref(lock).unwrap_or_default());
        replace_if_unchanged(with_value(lock, overtaken(&token).as_bytes()), seen)
    }

    /// Commit `writes` to the values of keys whose lock documents are `locks` (at most
    /// [`FENCED_MAX`]), in one commit with a [`fence`](Self::fence) on each lock, the
    /// fences first: the commit first assumes no lock exists; when a fence fails, it
    /// reads the locks and commits again with fences that hold for what it read.
    async fn commit_fenced(&self, locks: &[String], writes: Vec<Write>) -> Result<()> {
        let mut fences: Vec<Write> = locks.iter().cloned().map(absent).collect();
        for attempt in 0..FENCE_ATTEMPTS {
            fences.extend(writes.iter().cloned());
            if let Conditional::Done = self.driver.commit_conditional(fences).await? {
                return Ok(());
            }
            // The first commit assumed no lock: its failure is the usual news that one
            // exists, read at once. A later one means a lock changed between the read
            // and the commit: wait a little, with jitter, before reading again.
            if attempt > 0 {
                tokio::time::sleep(fence_backoff(attempt)).await;
            }
            let found = self.stored(locks, None).await?;
            fences = locks.iter().map(|l| self.fence(l, found.get(l))).collect();
        }
        Err(contended())
    }

    /// Write `doc` (a lock) only if no held lock has its name: a create with the
    /// precondition "does not exist"; over an abandoned lock (past its deadline by
    /// more than the skew margin), a replace with the precondition "last updated when
    /// we read it". Either way one racer wins.
    async fn take_lock(&self, doc: Document) -> Result<bool> {
        for _ in 0..TAKEOVER_ATTEMPTS {
            if let Conditional::Done = self
                .driver
                .commit_conditional(vec![create(doc.clone())])
                .await?
            {
                return Ok(true);
            }
            let Some(current) = self.read(doc.name.clone()).await? else {
                continue; // deleted since: try to create again
            };
            if self.clock.lock_held(&current) {
                return Ok(false);
            }
            let Some(seen) = current.update_time else {
                return Ok(false);
            };
            if let Conditional::Done = self
                .driver
                .commit_conditional(vec![replace_if_unchanged(doc.clone(), seen)])
                .await?
            {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Delete the lock `name`, read as `lock`, if it is unchanged since: one commit of
    /// the delete with an update-time precondition and `value` (the value's write) if
    /// given. False (and nothing written) if the lock changed since the read.
    async fn release_read(
        &self,
        name: &str,
        lock: &Document,
        value: Option<Write>,
    ) -> Result<bool> {
        let Some(seen) = lock.update_time else {
            return Ok(false);
        };
        let mut writes = vec![delete_if_unchanged(name.to_owned(), seen)];
        writes.extend(value);
        Ok(matches!(
            self.driver.commit_conditional(writes).await?,
            Conditional::Done
        ))
    }

    /// The lock's state for the holder of `token`, from the lock as read: `Other` if
    /// it is not `token`'s (or there is none).
    fn state(lock: &Document, token: &LockToken) -> LockState {
        lock_state(value_ref(lock).unwrap_or_default(), token)
    }
}

cache_core::impl_backend_builder!(config: FirestoreBuilder => FirestoreBackend, FirestoreConfig::capabilities);

#[async_trait]
impl CacheBackend for FirestoreBackend {
    cache_core::backend_identity!(caps);

    async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        let name = self.name(KeyKind::Value, key);
        let found = self.driver.batch_get(vec![name], None).await?.pop();
        Ok(found
            .filter(|d| is_live(d, self.clock.now()))
            .and_then(value_of)
            .map(Bytes::from))
    }

    async fn set(&self, key: &str, value: Bytes, expiry: Expiry) -> Result<()> {
        let Ok(exp) = self.clock.expires(expiry) else {
            return self.delete(key).await.map(drop);
        };
        let doc = self.document(KeyKind::Value, key, &value, exp);
        self.commit_fenced(&[self.name(KeyKind::Lock, key)], vec![put(doc)])
            .await
    }

    async fn delete(&self, key: &str) -> Result<bool> {
        let name = self.name(KeyKind::Value, key);
        let was_live = !self
            .live(std::slice::from_ref(&name), Some(&[EXPIRES]))
            .await?
            .is_empty();
        self.commit_fenced(&[self.name(KeyKind::Lock, key)], vec![delete(name)])
            .await?;
        Ok(was_live)
    }

    async fn has(&self, key: &str) -> Result<bool> {
        // Without the value, which may be large.
        let name = self.name(KeyKind::Value, key);
        Ok(!self.live(&[name], Some(&[EXPIRES])).await?.is_empty())
    }

    async fn clear(&self) -> Result<()> {
        // First mark the namespace's held locks overtaken (each with an update-time
        // precondition; one that changed meanwhile was released, marked or taken by a
        // caller that started during the clear), a page of locks at a time, by a
        // query on their namespace field...
        let locks = KeyLayout::lock_namespace(self.ns());
        let mut after = None;
        loop {
            let page = self
                .driver
                .query_ns_whole(&locks, after.take(), COMMIT_MAX)
                .await?;
            let full = page.len() == COMMIT_MAX;
            let marks: Vec<Write> = page
                .iter()
                .filter(|l| self.clock.lock_held(l))
                .filter(|l| !value_ref(l).unwrap_or_default().starts_with(b"!"))
                .map(|l| self.fence(&l.name, Some(l)))
                .collect();
            futures::stream::iter(marks)
                .map(|mark| self.driver.commit_conditional(vec![mark]))
                .buffer_unordered(16)
                .try_collect::<Vec<Conditional>>()
                .await?;
            if !full {
                break;
            }
            after = page.last().map(|l| l.name.clone());
        }
        // ...then delete the values: the namespace's documents by a query on the `ns`
        // field (never a pattern), a page at a time, each deleted in one commit.
        loop {
            let names: Vec<String> = (self.driver.query_ns(self.ns(), None, COMMIT_MAX).await?)
                .into_iter()
                .map(|d| d.name)
                .collect();
            let full = names.len() == COMMIT_MAX;
            if !names.is_empty() {
                self.driver
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
        let Ok(exp) = self.clock.expires(expiry) else {
            let keys: Vec<&str> = items.iter().map(|(k, _)| *k).collect();
            return self.delete_many(&keys).await.map(drop);
        };
        // The last value given for a key wins.
        let order = last_of_each(items);
        try_join_all(order.chunks(FENCED_MAX).map(|chunk| {
            let locks: Vec<String> = chunk
                .iter()
                .map(|&i| self.name(KeyKind::Lock, items[i].0))
                .collect();
            let writes = chunk
                .iter()
                .map(|&i| {
                    let (k, v) = &items[i];
                    put(self.document(KeyKind::Value, k, v, exp))
                })
                .collect();
            async move { self.commit_fenced(&locks, writes).await }
        }))
        .await
        .map(drop)
    }

    async fn delete_many(&self, keys: &[&str]) -> Result<usize> {
        let keys = distinct(keys.iter().copied());
        let names: Vec<String> = keys.iter().map(|k| self.name(KeyKind::Value, k)).collect();
        let live = self.live(&names, Some(&[EXPIRES])).await?.len();
        try_join_all(keys.chunks(FENCED_MAX).map(|chunk| {
            let locks: Vec<String> = chunk.iter().map(|k| self.name(KeyKind::Lock, k)).collect();
            let writes = chunk
                .iter()
                .map(|k| delete(self.name(KeyKind::Value, k)))
                .collect();
            async move { self.commit_fenced(&locks, writes).await }
        }))
        .await?;
        Ok(live)
    }

    async fn set_if_absent(&self, key: &str, value: Bytes, expiry: Expiry) -> Result<bool> {
        let Ok(exp) = self.clock.expires(expiry) else {
            return Ok(false);
        };
        // One commit: a create with the precondition "does not exist" and the fence on
        // the key's lock (first assumed absent). When it fails, read both: a live value
        // means absent it was not; an expired one is replaced if unchanged since.
        let doc = self.document(KeyKind::Value, key, &value, exp);
        let lock = self.name(KeyKind::Lock, key);
        let mut writes = vec![absent(lock.clone()), create(doc.clone())];
        for _ in 0..FENCE_ATTEMPTS {
            if let Conditional::Done = self.driver.commit_conditional(writes).await? {
                return Ok(true);
            }
            let found = self.stored(&[doc.name.clone(), lock.clone()], None).await?;
            let write = match found.get(&doc.name) {
                None => create(doc.clone()),
                Some(current) if is_live(current, self.clock.now()) => return Ok(false),
                Some(current) => match current.update_time {
                    Some(seen) => replace_if_unchanged(doc.clone(), seen),
                    None => return Ok(false),
                },
            };
            writes = vec![self.fence(&lock, found.get(&lock)), write];
        }
        Err(contended())
    }

    async fn acquire_lock(&self, key: &str, ttl: Duration) -> Result<Option<LockToken>> {
        let token = LockToken::random();
        let exp = self.clock.expires(Expiry::After(ttl)).ok().flatten();
        let won = self
            .take_lock(self.document(KeyKind::Lock, key, token.as_str().as_bytes(), exp))
            .await?;
        Ok(won.then_some(token))
    }

    async fn release_lock(&self, key: &str, token: &LockToken) -> Result<bool> {
        // Read the lock; delete it if it is ours (overtaken or not) and unchanged since
        // the read (an update-time precondition: a takeover in between wins; a lock
        // marked overtaken in between is read again). One past its deadline on this
        // clock is deleted too, but it was not held: false.
        let name = self.name(KeyKind::Lock, key);
        for _ in 0..FENCE_ATTEMPTS {
            let Some(current) = self.read(name.clone()).await? else {
                return Ok(false);
            };
            if Self::state(&current, token) == LockState::Other {
                return Ok(false);
            }
            if self.release_read(&name, &current, None).await? {
                return Ok(is_live(&current, self.clock.now()));
            }
        }
        Err(contended())
    }

    async fn set_locked(
        &self,
        key: &str,
        value: Bytes,
        expiry: Expiry,
        token: &LockToken,
    ) -> Result<bool> {
        // Read the lock, then one commit: its delete with the precondition "unchanged
        // since the read" and, if it held the token (not overtaken, not past its
        // deadline), the value's write. A lock taken over, released or overtaken
        // between the read and the commit fails the precondition, and the commit
        // writes nothing: read again.
        let write = match self.clock.expires(expiry) {
            Ok(exp) => put(self.document(KeyKind::Value, key, &value, exp)),
            Err(()) => delete(self.name(KeyKind::Value, key)),
        };
        let name = self.name(KeyKind::Lock, key);
        for _ in 0..FENCE_ATTEMPTS {
            let Some(current) = self.read(name.clone()).await? else {
                return Ok(false);
            };
            let store = match Self::state(&current, token) {
                LockState::Other => return Ok(false),
                LockState::Overtaken => false,
                LockState::Held => is_live(&current, self.clock.now()),
            };
            let value = store.then(|| write.clone());
            if self.release_read(&name, &current, value).await? {
                return Ok(store);
            }
        }
        Err(contended())
    }

    async fn close(&self) -> Result<()> {
        if let Some(s) = &self.sweeper {
            s.0.abort();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fence_retry_waits_a_little_with_jitter() {
        for attempt in 1..FENCE_ATTEMPTS {
            let least = Duration::from_millis(5 * attempt as u64);
            let pause = fence_backoff(attempt);
            assert!(
                pause >= least && pause < least + Duration::from_millis(10),
                "attempt {attempt}: {pause:?}"
            );
        }
        let pauses: std::collections::HashSet<Duration> =
            (0..20).map(|_| fence_backoff(1)).collect();
        assert!(pauses.len() > 1, "jittered: {pauses:?}");
    }
}
