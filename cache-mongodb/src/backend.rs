//! `MongoBuilder` and `MongoBackend`: a thin `CacheBackend` over the driver side.

use crate::config::MongoConfig;
use crate::driver::{
    acquire_pipeline, entry, expires_at, has_value, id, is_live, overtake_pipeline, tombstone,
    value_of, Clock, Driver, EXPIRES, NS, VALUE, WRITE,
};
use crate::error::{is_duplicate_key, map, BACKEND, DUPLICATE_KEY};
use cache_core::raw::{
    distinct, last_of_each, lock_state, overtaken, validate_namespace, KeyKind, KeyLayout,
    LockState,
};
use cache_core::{async_trait, Bytes, CacheBackend, Capabilities, Expiry, LockToken, Result};
use futures::TryStreamExt;
use mongodb::bson::{doc, Bson, DateTime, Document};
use mongodb::options::ReturnDocument;
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
    /// Tests only: how far this client's clock is shifted, in ms.
    clock_offset_ms: i64,
}

impl MongoBuilder {
    /// A builder for the server at `uri`.
    pub fn new(uri: impl Into<String>) -> Self {
        Self::default().uri(uri)
    }
    cache_core::builder_setters! { config: MongoConfig;
        from_config,
        uri(uri: impl Into<String>) = uri.into(),
        database(database: impl Into<String>) = Some(database.into()),
        collection(collection: impl Into<String>) = collection.into(),
        namespace, pool_size, timeout, connect_timeout, max_value_size,
        test_clock_offset_ms => clock_offset_ms,
    }

    /// Connect, ping and create the indexes if absent. A bad URI, wrong credentials or
    /// a conflicting index is a [`Config`](cache_core::ErrorKind::Config) error; an
    /// unreachable server is `Unavailable` or `Timeout` within the connect timeout.
    pub async fn build(self) -> Result<MongoBackend> {
        let (cfg, clock) = (
            self.config,
            Clock {
                offset_ms: self.clock_offset_ms,
            },
        );
        validate_namespace(BACKEND, &cfg.namespace)?;
        if cfg.max_value_size > 16 * 1024 * 1024 - 16 * 1024 {
            return Err(crate::error::config(
                "max_value_size is over what fits a 16 MiB MongoDB document with its key; use at most 16 MiB - 16 KiB",
            ));
        }
        let driver = Arc::new(Driver::connect(&cfg).await?);
        tracing::debug!(namespace = %cfg.namespace, collection = %cfg.collection, "mongodb backend connected");
        Ok(MongoBackend::on_driver(driver, cfg, clock))
    }
}

/// A cache backend on one MongoDB collection, shared by every namespace.
///
/// Documents are `{_id: "ns:key", ns, v: binary, exp: date | null, w: write stamp}`,
/// with an index on `ns` (for `clear`) and a TTL index on `exp`; reads filter expired
/// documents. Writes of get-or-compute are fenced (see the crate README).
pub struct MongoBackend {
    driver: Arc<Driver>,
    caps: Capabilities,
    config: MongoConfig,
    clock: Clock,
}

cache_core::backend_handle! {
    MongoBackend: MongoBuilder, MongoConfig;
    /// Another backend on the same client and collection with its own namespace.
    with_namespace: on_driver(driver.clone(), config, clock),
}

impl MongoBackend {
    fn on_driver(driver: Arc<Driver>, config: MongoConfig, clock: Clock) -> Self {
        MongoBackend {
            driver,
            caps: config.capabilities(),
            config,
            clock,
        }
    }

    fn ns(&self) -> &str {
        &self.config.namespace
    }

    /// The client's clock (for values' expiries; locks are decided on the server's).
    fn now(&self) -> DateTime {
        self.clock.now()
    }

    fn value_id(&self, key: &str) -> String {
        id(self.ns(), KeyKind::Value, key)
    }

    /// What a delete leaves now (see [`tombstone`]).
    fn tombstone(&self) -> Document {
        tombstone(self.ns(), self.now(), self.driver.timeout)
    }

    /// The live document of `key` with the fields of `projection` (and `exp`); never a
    /// tombstone.
    async fn find_one(
        &self,
        key: &str,
        projection: impl Into<Option<Document>>,
    ) -> Result<Option<Document>> {
        let found = self
            .driver
            .call(
                self.driver
                    .coll
                    .find_one(doc! { "_id": self.value_id(key), VALUE: has_value() })
                    .with_options(
                        mongodb::options::FindOneOptions::builder()
                            .projection(projection.into())
                            .build(),
                    ),
            )
            .await?;
        Ok(found.filter(|d| is_live(d, self.now())))
    }

    /// `{_id: {$in: ids}}` and live, projected to the value (tombstones left out).
    async fn find_live(&self, ids: &[String]) -> Result<HashMap<String, Vec<u8>>> {
        let filter = doc! { "_id": { "$in": ids }, VALUE: has_value() };
        let docs: Vec<Document> = self
            .driver
            .call(async {
                self.driver
                    .coll
                    .find(filter)
                    .projection(doc! { VALUE: 1, EXPIRES: 1 })
                    .await?
                    .try_collect()
                    .await
            })
            .await?;
        let now = self.now();
        Ok(docs
            .iter()
            .filter(|d| is_live(d, now))
            .filter_map(|d| Some((d.get_str("_id").ok()?.to_owned(), value_of(d)?)))
            .collect())
    }

    fn lock_id(&self, key: &str) -> String {
        id(self.ns(), KeyKind::Lock, key)
    }

    /// `set_locked`, step 1, in one round trip: the value document's write stamp
    /// (`None` if there is none) and what the key's lock says to `token`. The lock
    /// stays: it is released after the write, so that another process never finds
    /// neither the lock nor the value and computes again.
    async fn stamp_and_lock(
        &self,
        key: &str,
        token: &LockToken,
    ) -> Result<(Option<Bson>, LockState)> {
        let (value_id, lock_id) = (self.value_id(key), self.lock_id(key));
        let mut found = self
            .driver
            .call(
                self.driver
                    .coll
                    .find(doc! { "_id": { "$in": [&value_id, &lock_id] } })
                    .projection(doc! { WRITE: 1, VALUE: 1 }),
            )
            .await?;
        let (mut stamp, mut state) = (None, LockState::Other);
        while let Some(d) = self.driver.call(found.try_next()).await? {
            if d.get_str("_id") == Ok(lock_id.as_str()) {
                state = d
                    .get_str(VALUE)
                    .map_or(LockState::Other, |v| lock_state(v.as_bytes(), token));
            } else {
                stamp = Some(d.get(WRITE).cloned().unwrap_or(Bson::Null));
            }
        }
        Ok((stamp, state))
    }

    /// `set_locked`, step 3: write `value` only over the document whose stamp step 1
    /// read (or only where there was none): a write or delete of any handle since
    /// then changed the stamp or left a document, and wins. True if written.
    async fn write_over(
        &self,
        key: &str,
        before: Option<Bson>,
        value: Bytes,
        expiry: Expiry,
    ) -> Result<bool> {
        let id = self.value_id(key);
        let doc = match (expires_at(expiry, self.now()), &before) {
            (Ok(exp), _) => entry(self.ns(), &value, exp),
            (Err(()), Some(_)) => self.tombstone(),
            (Err(()), None) => return Ok(true),
        };
        match before {
            Some(stamp) => {
                let r = self
                    .driver
                    .call(
                        self.driver
                            .coll
                            .replace_one(doc! { "_id": &id, WRITE: stamp }, doc),
                    )
                    .await?;
                Ok(r.matched_count == 1)
            }
            None => {
                let mut doc = doc;
                doc.insert("_id", &id);
                match self
                    .driver
                    .call_raw(self.driver.coll.insert_one(doc))
                    .await?
                {
                    Ok(_) => Ok(true),
                    Err(e) if is_duplicate_key(&e) => Ok(false),
                    Err(e) => Err(map(e)),
                }
            }
        }
    }
}

/// The statement of an `update` command that marks the held locks of `ids` (one
/// `_id`, or `{$in: [...]}`) overtaken. It always comes first: a write marks the
/// lock before it touches the value (see the README, "Fenced writes").
fn overtake(ids: impl Into<Bson>) -> Document {
    doc! { "q": { "_id": ids.into() }, "u": overtake_pipeline(), "multi": true }
}

/// The texts a lock of `token` may hold: the token, or the token overtaken.
fn owned_by(token: &LockToken) -> Document {
    doc! { "$in": [ token.as_str(), overtaken(token.as_str()) ] }
}

cache_core::impl_backend_builder!(config: MongoBuilder => MongoBackend, MongoConfig::capabilities);

#[async_trait]
impl CacheBackend for MongoBackend {
    cache_core::backend_identity!(caps);

    async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        // The whole document: it has only these fields, and a projection costs the
        // server more than the bytes it saves.
        let found = self.find_one(key, None).await?;
        Ok(found.as_ref().and_then(value_of).map(Bytes::from))
    }

    async fn set(&self, key: &str, value: Bytes, expiry: Expiry) -> Result<()> {
        let Ok(exp) = expires_at(expiry, self.now()) else {
            return self.delete(key).await.map(drop);
        };
        // One `update` command: mark the key's held lock, then replace the value.
        self.driver
            .update(vec![
                overtake(self.lock_id(key)),
                doc! {
                    "q": { "_id": self.value_id(key) },
                    "u": entry(self.ns(), &value, exp),
                    "upsert": true,
                },
            ])
            .await?
            .all_done()
    }

    async fn delete(&self, key: &str) -> Result<bool> {
        // One `update` command: mark the key's held lock; stamp a tombstone anew;
        // turn an expired value into a tombstone; then what is left with a value is
        // live: turn it into a tombstone, or insert one where there is no document.
        // The last statement says whether the value was live: it replaced it, or it
        // inserted (nothing was there), or the insert met a tombstone (E11000). Each
        // filter is `_id` and one field (no `$or`: plain `_id` lookups).
        let now = self.now();
        let id = self.value_id(key);
        let gone = self.tombstone();
        let r = self
            .driver
            .update(vec![
                overtake(self.lock_id(key)),
                doc! { "q": { "_id": &id, VALUE: { "$exists": false } }, "u": gone.clone() },
                doc! { "q": { "_id": &id, EXPIRES: { "$lte": now } }, "u": gone.clone() },
                doc! { "q": { "_id": &id, VALUE: has_value() }, "u": gone, "upsert": true },
            ])
            .await?;
        let mut live = !r.upserted.contains(&3);
        for e in r.errors {
            if e.index == 3 && e.code == DUPLICATE_KEY {
                live = false;
            } else {
                return Err(e.into_error());
            }
        }
        Ok(live)
    }

    async fn has(&self, key: &str) -> Result<bool> {
        // Without the value, which may be large (the filter leaves tombstones out).
        Ok(self.find_one(key, doc! { EXPIRES: 1 }).await?.is_some())
    }

    async fn clear(&self) -> Result<()> {
        // The held locks of the namespace are marked overtaken first (they stay held),
        // then the values go; both by the namespace field, never a regex over user text.
        // Tombstones stay, until they expire: a `set_locked` that read a key before a
        // delete must still meet its tombstone.
        self.driver
            .update(vec![doc! {
                "q": { NS: KeyLayout::lock_namespace(self.ns()) },
                "u": overtake_pipeline(),
                "multi": true,
            }])
            .await?
            .all_done()?;
        self.driver
            .call(
                self.driver
                    .coll
                    .delete_many(doc! { NS: self.ns(), VALUE: has_value() }),
            )
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
        let Ok(exp) = expires_at(expiry, self.now()) else {
            let keys: Vec<&str> = items.iter().map(|(k, _)| *k).collect();
            return self.delete_many(&keys).await.map(drop);
        };
        // The last value given for a key wins.
        let order = last_of_each(items);
        // One `update` command: mark the keys' held locks, then one upsert per key.
        let locks: Vec<String> = order.iter().map(|&i| self.lock_id(items[i].0)).collect();
        let mut statements = Vec::with_capacity(order.len() + 1);
        statements.push(overtake(doc! { "$in": locks }));
        statements.extend(order.iter().map(|&i| {
            let (k, v) = &items[i];
            doc! {
                "q": { "_id": self.value_id(k) },
                "u": entry(self.ns(), v, exp),
                "upsert": true,
            }
        }));
        self.driver.update(statements).await?.all_done()
    }

    async fn delete_many(&self, keys: &[&str]) -> Result<usize> {
        let keys = distinct(keys.iter().copied());
        let ids: Vec<String> = keys.iter().map(|k| self.value_id(k)).collect();
        let live_ids = self.find_live(&ids).await?.len();
        // One `update` command: mark the keys' held locks, then a tombstone per key.
        let locks: Vec<String> = keys.iter().map(|k| self.lock_id(k)).collect();
        let mut statements = Vec::with_capacity(ids.len() + 1);
        statements.push(overtake(doc! { "$in": locks }));
        statements.extend(ids.iter().map(|id| {
            doc! { "q": { "_id": id }, "u": self.tombstone(), "upsert": true }
        }));
        self.driver.update(statements).await?.all_done()?;
        Ok(live_ids)
    }

    async fn set_if_absent(&self, key: &str, value: Bytes, expiry: Expiry) -> Result<bool> {
        let Ok(exp) = expires_at(expiry, self.now()) else {
            return Ok(false);
        };
        // One `update` command: mark the key's held lock, then an upsert on
        // `{_id, exp < now or no v}`, which takes a free or expired entry or a
        // tombstone; over a live one it inserts a second `_id`, which the server
        // refuses (E11000): one winner. The mark cannot depend on the insert, so a
        // held lock is marked even when nothing is stored (see the README).
        let dead = doc! { "$or": [
            { EXPIRES: { "$lt": self.now() } },
            { VALUE: { "$exists": false } },
        ] };
        let mut filter = doc! { "_id": self.value_id(key) };
        filter.extend(dead);
        let r = self
            .driver
            .update(vec![
                overtake(self.lock_id(key)),
                doc! {
                    "q": filter,
                    "u": { "$set": entry(self.ns(), &value, exp) },
                    "upsert": true,
                },
            ])
            .await?;
        match r.errors.into_iter().next() {
            None => Ok(true),
            Some(e) if e.index == 1 && e.code == DUPLICATE_KEY => Ok(false),
            Some(e) => Err(e.into_error()),
        }
    }

    async fn acquire_lock(&self, key: &str, ttl: Duration) -> Result<Option<LockToken>> {
        let token = LockToken::random();
        let ttl_ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX).max(1);
        // One findAndModify: a live lock stays, a missing or expired one becomes this
        // token's, decided and timed by the server's clock ($$NOW), under the locks'
        // own namespace field (so `clear` leaves held locks alone). Two racers on a
        // missing lock both insert: the server refuses the second (E11000).
        let r = self
            .driver
            .call_raw(
                self.driver
                    .coll
                    .find_one_and_update(
                        doc! { "_id": self.lock_id(key) },
                        acquire_pipeline(
                            token.as_str(),
                            &KeyLayout::lock_namespace(self.ns()),
                            ttl_ms,
                        ),
                    )
                    .upsert(true)
                    .return_document(ReturnDocument::After)
                    .projection(doc! { VALUE: 1 }),
            )
            .await?;
        let won = match r {
            Ok(found) => found.is_some_and(|d| d.get_str(VALUE) == Ok(token.as_str())),
            Err(e) if is_duplicate_key(&e) => false,
            Err(e) => return Err(map(e)),
        };
        Ok(won.then_some(token))
    }

    async fn release_lock(&self, key: &str, token: &LockToken) -> Result<bool> {
        // Held or overtaken, as long as it is this token's. An expired lock that
        // nobody took since is still this token's and goes too.
        let filter = doc! { "_id": self.lock_id(key), VALUE: owned_by(token) };
        let r = self
            .driver
            .call(self.driver.coll.delete_one(filter))
            .await?;
        Ok(r.deleted_count == 1)
    }

    async fn set_locked(
        &self,
        key: &str,
        value: Bytes,
        expiry: Expiry,
        token: &LockToken,
    ) -> Result<bool> {
        // Without multi-document transactions (a server without a replica set has
        // none), three steps in this order (see the README, "Fenced writes"): read the
        // value's stamp and the lock, write over that stamp if the lock is held, then
        // release the lock (held or overtaken).
        let (before, state) = self.stamp_and_lock(key, token).await?;
        let written = match state {
            LockState::Held => self.write_over(key, before, value, expiry).await,
            LockState::Overtaken | LockState::Other => Ok(false),
        };
        if state != LockState::Other {
            self.release_lock(key, token).await?;
        }
        written
    }

    async fn close(&self) -> Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn backend() -> MongoBackend {
        let url = conformance_tests::servers::address(&conformance_tests::servers::MONGODB).await;
        MongoBuilder::new(url)
            .namespace(conformance_tests::random_namespace())
            .timeout(Duration::from_secs(30))
            .build()
            .await
            .expect("the test MongoDB (scripts/servers.sh start mongodb)")
    }

    /// The one window MongoDB leaves without transactions: an app write that lands
    /// after `set_locked` read the lock (so it saw it held) and before its write.
    /// The write stamp read before the lock makes the app's write win, whether the
    /// key held a value or not (a delete of nothing leaves a tombstone).
    #[tokio::test]
    async fn an_app_write_between_the_lock_check_and_the_write_wins() {
        let e = Expiry::After(Duration::from_secs(60));
        for (held_a_value, delete) in [(false, false), (false, true), (true, false), (true, true)] {
            let holder = backend().await;
            let app = holder.with_namespace(holder.namespace()).unwrap();
            if held_a_value {
                app.set("k", Bytes::from_static(b"old"), e).await.unwrap();
            }
            let token = holder
                .acquire_lock("k", Duration::from_secs(30))
                .await
                .unwrap()
                .unwrap();
            let (before, state) = holder.stamp_and_lock("k", &token).await.unwrap();
            assert_eq!(state, LockState::Held);
            if delete {
                app.delete("k").await.unwrap();
            } else {
                app.set("k", Bytes::from_static(b"app"), e).await.unwrap();
            }
            let case = format!("held a value: {held_a_value}, delete: {delete}");
            assert!(
                !holder
                    .write_over("k", before, Bytes::from_static(b"computed"), e)
                    .await
                    .unwrap(),
                "{case}: the late write is refused"
            );
            let want = (!delete).then(|| Bytes::from_static(b"app"));
            assert_eq!(
                app.get("k").await.unwrap(),
                want,
                "{case}: the app's write stays"
            );
        }
    }

    /// A delete between `set_locked`'s read (no document) and its write leaves a
    /// tombstone that outlives the write: neither the TTL monitor (a pass that removes
    /// what has expired by now) nor a `clear` removes it, so the late insert meets it
    /// and is refused. With a tombstone expired since 1970, either removed it and the
    /// computed value landed after the completed delete.
    #[tokio::test]
    async fn a_delete_between_the_read_and_the_write_wins_past_a_ttl_pass_or_a_clear() {
        let e = Expiry::After(Duration::from_secs(60));
        for clear in [false, true] {
            let holder = backend().await;
            let app = holder.with_namespace(holder.namespace()).unwrap();
            let token = holder
                .acquire_lock("k", Duration::from_secs(30))
                .await
                .unwrap()
                .unwrap();
            let (before, state) = holder.stamp_and_lock("k", &token).await.unwrap();
            assert_eq!(
                (&before, state),
                (&None, LockState::Held),
                "no document yet"
            );
            assert!(!app.delete("k").await.unwrap());
            if clear {
                app.clear().await.unwrap();
            } else {
                // What the TTL monitor does to this document on its next pass.
                holder
                    .driver
                    .coll
                    .delete_one(doc! {
                        "_id": holder.value_id("k"),
                        EXPIRES: { "$lt": DateTime::now() },
                    })
                    .await
                    .unwrap();
            }
            assert!(
                !holder
                    .write_over("k", before, Bytes::from_static(b"computed"), e)
                    .await
                    .unwrap(),
                "clear {clear}: the late write is refused"
            );
            assert_eq!(app.get("k").await.unwrap(), None, "clear {clear}");
            assert!(!app.has("k").await.unwrap(), "clear {clear}");
        }
    }
}
