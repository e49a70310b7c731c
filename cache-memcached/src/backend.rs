//! `MemcachedBuilder` and `MemcachedBackend`: a thin `CacheBackend` over the driver side.

use crate::config::MemcachedConfig;
use crate::driver::{
    deadline, decode, encode, generation_key, held_key, is_live, lock_key, parse_generation,
    read_generation, tombstone, tombstone_lifetime, ttl_flag, value_key, Driver, Generations,
    HEADER,
};
use crate::error::BACKEND;
use async_memcached::{AsciiProtocol, Client, Error as McError, MetaProtocol, MetaValue, Status};
use cache_core::raw::validate_namespace;
use cache_core::{async_trait, Bytes, CacheBackend, Capabilities, Expiry, LockToken, Result};
use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// Builder for [`MemcachedBackend`].
///
/// ```no_run
/// # async fn demo() -> cache_core::Result<()> {
/// use cache_memcached::MemcachedBackend;
/// use std::time::Duration;
/// let backend = MemcachedBackend::builder()
///     .servers(["10.0.0.1:11211", "10.0.0.2:11211"])
///     .namespace("sessions")
///     .timeout(Duration::from_millis(200))
///     .build()
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Default)]
#[must_use]
pub struct MemcachedBuilder {
    config: MemcachedConfig,
    /// Added to this process's clock (ms), for tests of clock skew.
    clock_offset_ms: i64,
}

impl MemcachedBuilder {
    /// A builder for the one server at `addr` (`host:port`).
    pub fn new(addr: impl Into<String>) -> Self {
        Self::default().servers([addr.into()])
    }
    /// See [`MemcachedConfig::servers`].
    pub fn servers<I, S>(mut self, servers: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.config.servers = servers.into_iter().map(Into::into).collect();
        self
    }
    cache_core::builder_setters! { config: MemcachedConfig;
        from_config,
        namespace, pool_size, timeout, connect_timeout, max_value_size,
        generation_check(trust: Duration),
        max_clock_skew,
        test_clock_offset_ms => clock_offset_ms,
    }

    /// Connect once to every server and make the pools. A bad setting is a
    /// [`Config`](cache_core::ErrorKind::Config) error; a server that cannot be reached
    /// is `Unavailable` or `Timeout` within the connect timeout, naming the server.
    pub async fn build(self) -> Result<MemcachedBackend> {
        let cfg = self.config;
        validate_namespace(BACKEND, &cfg.namespace)?;
        let driver = Arc::new(Driver::connect(&cfg).await?);
        tracing::debug!(namespace = %cfg.namespace, servers = cfg.servers.len(), "memcached backend connected");
        Ok(MemcachedBackend::on_driver(
            driver,
            cfg,
            self.clock_offset_ms,
        ))
    }
}

/// A cache backend on one or many memcached servers.
///
/// Keys are spread over the servers by consistent hashing. Each namespace has a
/// generation number on every server, folded into its value keys: `clear` bumps it
/// (one command per server, never `flush_all`), which orphans the namespace's values
/// at once; memcached evicts them in time.
pub struct MemcachedBackend {
    driver: Arc<Driver>,
    generations: Generations,
    caps: Capabilities,
    config: MemcachedConfig,
    clock_offset_ms: i64,
}

cache_core::backend_handle! {
    MemcachedBackend: MemcachedBuilder, MemcachedConfig;
    /// Another backend on the same servers and pools with its own namespace.
    with_namespace: on_driver(driver.clone(), config, clock_offset_ms),
}

/// What one server answered for one pipelined read: the generation it holds now
/// (`None`: missing) and the values of the keys asked for, by key.
struct Read {
    generation: Option<u64>,
    values: Vec<MetaValue>,
}

/// What a read under the current generation found.
struct Found {
    generation: u64,
    /// The stored values of the keys asked for, in order.
    values: Vec<Option<Vec<u8>>>,
    /// Whether each key's lock has a held mark (asked for by deletes only).
    held: Vec<bool>,
}

/// What `set_locked`'s connection work ended with.
enum Fenced {
    Done(bool),
    /// The generation changed under every read (clears in a loop).
    Churn,
}

fn churn() -> cache_core::Error {
    cache_core::Error::new(
        cache_core::ErrorKind::Backend,
        BACKEND,
        "the namespace's generation kept changing during a read (clears in a loop?); retry",
    )
}

/// `Ok(false)` for the statuses of a compare-and-swap or add that lost.
fn lost(r: std::result::Result<Option<MetaValue>, McError>) -> std::result::Result<bool, McError> {
    match r {
        Ok(_) => Ok(true),
        Err(McError::Protocol(Status::Exists | Status::NotFound | Status::NotStored)) => Ok(false),
        Err(e) => Err(e),
    }
}

impl MemcachedBackend {
    fn on_driver(driver: Arc<Driver>, config: MemcachedConfig, clock_offset_ms: i64) -> Self {
        MemcachedBackend {
            generations: Generations::new(driver.servers.len(), config.generation_check),
            driver,
            caps: config.capabilities(),
            config,
            clock_offset_ms,
        }
    }

    /// This process's clock in Unix ms (shifted in tests of clock skew).
    fn now(&self) -> u64 {
        cache_core::raw::shifted_now_ms(self.clock_offset_ms)
    }

    /// The servers' addresses, in ring order of the configuration.
    pub fn servers(&self) -> impl Iterator<Item = &str> {
        self.driver.servers.iter().map(|s| s.addr.as_str())
    }

    /// The index (into [`servers`](Self::servers)) of the server holding `key`.
    pub fn server_of(&self, key: &str) -> usize {
        self.driver.ring.server(self.ns(), key)
    }

    fn ns(&self) -> &str {
        &self.config.namespace
    }

    /// Read (or, with `bump`, increment) the generation on server `s` and record it.
    async fn server_generation(&self, s: usize, bump: bool) -> Result<u64> {
        let ns = self.ns();
        let g = self
            .driver
            .on(s, async |c| read_generation(c, ns, bump).await)
            .await?;
        self.generations.record(s, g);
        Ok(g)
    }

    /// The generation for a write on server `s`: this process's copy while it is
    /// trusted, else read from the server (one round trip).
    async fn write_generation(&self, s: usize) -> Result<u64> {
        match self.generations.trusted(s) {
            Some(g) => Ok(g),
            None => self.server_generation(s, false).await,
        }
    }

    /// Read `keys` (user keys, all on server `s`) with the generation in the same
    /// round trip (and, with `held`, their locks' held marks). A generation that
    /// changed since this process last saw it is recorded and the read repeated under
    /// it; one that is missing (evicted) is made again from a fresh seed, and every
    /// value under the old one is a miss.
    async fn read(&self, s: usize, keys: &[&str], held: bool) -> Result<Found> {
        let ns = self.ns();
        let gen_key = generation_key(ns);
        let mut g = self.generations.known(s);
        for _ in 0..3 {
            if g == 0 {
                g = self.server_generation(s, false).await?;
            }
            let mut store_keys: Vec<String> = keys.iter().map(|k| value_key(ns, g, k)).collect();
            if held {
                store_keys.extend(keys.iter().map(|k| held_key(ns, g, k)));
            }
            let mut ask: Vec<&str> = Vec::with_capacity(keys.len() + 1);
            ask.push(&gen_key);
            ask.extend(store_keys.iter().map(String::as_str));
            let read = self
                .driver
                .on(s, async |c| {
                    let values = c.meta_get_multi(&ask, Some(&["v"])).await?;
                    Ok::<_, McError>(split_generation(values, &gen_key))
                })
                .await?;
            match read.generation {
                Some(now) if now == g => {
                    self.generations.record(s, g);
                    let mut values = match_keys(&store_keys, read.values);
                    let held = values
                        .split_off(keys.len())
                        .iter()
                        .map(Option::is_some)
                        .collect();
                    return Ok(Found {
                        generation: g,
                        values,
                        held,
                    });
                }
                Some(now) => {
                    self.generations.record(s, now);
                    g = now;
                }
                None => g = 0,
            }
        }
        Err(churn())
    }

    /// Store `stored` under `key` only if nothing live is there: an add, or, over an
    /// expired entry (which memcached may keep up to two seconds past its deadline), a
    /// compare-and-swap on the CAS just read, so one racer wins. An entry counts as
    /// live until `margin` ms past its deadline (the clock skew, for locks).
    async fn insert_if_absent(
        &self,
        c: &mut Client,
        key: &str,
        stored: &[u8],
        ttl: &str,
        margin: u64,
    ) -> std::result::Result<bool, McError> {
        for _ in 0..2 {
            match c
                .meta_set(key, stored, false, None, Some(&["ME", ttl]))
                .await
            {
                Ok(_) => return Ok(true),
                Err(McError::Protocol(Status::NotStored)) => {}
                Err(e) => return Err(e),
            }
            if let Some(won) = self.take_expired(c, key, stored, ttl, margin).await? {
                return Ok(won);
            }
        }
        Ok(false)
    }

    /// The second half of an insert-if-absent whose add failed: read the entry with
    /// its CAS; if it is no longer live (`margin` ms past its deadline), swap it for
    /// `stored` on that CAS. `None` if the entry went meanwhile (add again).
    async fn take_expired(
        &self,
        c: &mut Client,
        key: &str,
        stored: &[u8],
        ttl: &str,
        margin: u64,
    ) -> std::result::Result<Option<bool>, McError> {
        let Some(old) = c.meta_get(key, false, None, Some(&["v", "c"])).await? else {
            return Ok(None);
        };
        let now = self.now().saturating_sub(margin);
        if old.data.as_deref().is_some_and(|d| is_live(d, now)) {
            return Ok(Some(false));
        }
        let cas = format!("C{}", old.cas.unwrap_or(0));
        lost(
            c.meta_set(key, stored, false, None, Some(&[&cas, ttl]))
                .await,
        )
        .map(Some)
    }

    /// The tombstone's TTL flag, written by deletes of a key whose lock is held.
    fn tombstone_ttl(&self, now: u64) -> String {
        let ms = tombstone_lifetime(self.config.timeout).as_millis();
        ttl_flag(
            Some(now.saturating_add(u64::try_from(ms).unwrap_or(u64::MAX))),
            now,
        )
    }

    /// [`set_locked`](CacheBackend::set_locked), with `between` run after the check
    /// and before the write (tests put another handle's write there, into the window
    /// that memcached's lack of multi-key atomicity leaves; see the README).
    #[doc(hidden)]
    pub async fn set_locked_with(
        &self,
        key: &str,
        value: Bytes,
        expiry: Expiry,
        token: &LockToken,
        between: impl Future<Output = ()>,
    ) -> Result<bool> {
        let s = self.server_of(key);
        let ns = self.ns();
        let lock_k = lock_key(ns, key);
        let gen_key = generation_key(ns);
        let token = token.as_str().as_bytes();
        let fenced = self
            .driver
            .on(s, async |c| {
                // One round trip: the generation, the value with its CAS, the held mark,
                // the lock with its CAS; the value is read BEFORE the mark (see the
                // README: an application write deletes the mark before it writes).
                let mut g = self.generations.known(s);
                let mut read = None;
                for _ in 0..3 {
                    if g == 0 {
                        g = read_generation(c, ns, false).await?;
                    }
                    let (vk, hk) = (value_key(ns, g, key), held_key(ns, g, key));
                    let ask = [gen_key.as_str(), vk.as_str(), hk.as_str(), lock_k.as_str()];
                    let mut got: HashMap<Vec<u8>, MetaValue> = c
                        .meta_get_multi(&ask, Some(&["v", "c"]))
                        .await?
                        .into_iter()
                        .filter_map(|v| Some((v.key.clone()?, v)))
                        .collect();
                    let now_gen = got
                        .remove(gen_key.as_bytes())
                        .and_then(|v| parse_generation(v.data.as_deref()));
                    match now_gen {
                        Some(now) if now == g => {
                            self.generations.record(s, g);
                            let value = got.remove(vk.as_bytes());
                            let held = got.remove(hk.as_bytes());
                            let lock = got.remove(lock_k.as_bytes());
                            read = Some((vk, hk, value, held, lock));
                            break;
                        }
                        Some(now) => {
                            self.generations.record(s, now);
                            g = now;
                        }
                        None => g = 0,
                    }
                }
                let Some((vk, hk, value_now, held, lock)) = read else {
                    return Ok(Fenced::Churn);
                };
                let now = self.now();
                let Some(lock) = lock else {
                    return Ok(Fenced::Done(false));
                };
                let data = lock.data.as_deref().unwrap_or_default();
                let ours = data.len() >= HEADER && &data[HEADER..] == token && is_live(data, now);
                if !ours {
                    return Ok(Fenced::Done(false)); // another caller's lock, or none
                }
                let held = held.is_some_and(|h| h.data.as_deref() == Some(token));
                let mut stored = false;
                if held {
                    between.await;
                    // The write lands only on the value as read: a `cas` on its CAS, or
                    // an `add` if there was none. Whatever an application wrote or
                    // deleted since the read (after deleting the mark, so after our
                    // check) makes it fail.
                    stored = match deadline(expiry, now) {
                        Ok(at) => {
                            let guard = match &value_now {
                                Some(v) => format!("C{}", v.cas.unwrap_or(0)),
                                None => "ME".into(),
                            };
                            let ttl = ttl_flag(at, now);
                            lost(
                                c.meta_set(
                                    &vk,
                                    &encode(&value, at)[..],
                                    false,
                                    None,
                                    Some(&[&ttl, &guard]),
                                )
                                .await,
                            )?
                        }
                        // Expired while the call ran: remove the value as read.
                        Err(()) => match &value_now {
                            None => true,
                            Some(v) => {
                                let cas = format!("C{}", v.cas.unwrap_or(0));
                                lost(c.meta_delete(&vk, false, None, Some(&[&cas])).await)?
                            }
                        },
                    };
                }
                // Release, stored or not: the held mark (ours: the lock was ours at the
                // read), then the lock, only as read.
                c.delete_no_reply(&hk).await?;
                let cas = format!("C{}", lock.cas.unwrap_or(0));
                lost(c.meta_delete(&lock_k, false, None, Some(&[&cas])).await)?;
                Ok(Fenced::Done(stored))
            })
            .await?;
        match fenced {
            Fenced::Done(stored) => Ok(stored),
            Fenced::Churn => Err(churn()),
        }
    }

    /// Group key indices by server.
    fn by_server(&self, keys: &[&str]) -> Vec<(usize, Vec<usize>)> {
        let mut groups: Vec<(usize, Vec<usize>)> = Vec::new();
        for (i, k) in keys.iter().enumerate() {
            let s = self.server_of(k);
            match groups.iter_mut().find(|(g, _)| *g == s) {
                Some((_, ix)) => ix.push(i),
                None => groups.push((s, vec![i])),
            }
        }
        groups
    }
}

/// The answers of a pipelined read in request order (misses are absent from them);
/// a key asked twice gets its value twice.
fn match_keys(store_keys: &[String], values: Vec<MetaValue>) -> Vec<Option<Vec<u8>>> {
    if let [only] = store_keys {
        let hit = values
            .into_iter()
            .find(|v| v.key.as_deref() == Some(only.as_bytes()));
        return vec![hit.and_then(|v| v.data)];
    }
    let mut by_key: HashMap<Vec<u8>, Vec<u8>> = values
        .into_iter()
        .filter_map(|v| Some((v.key?, v.data?)))
        .collect();
    let mut first: HashMap<&str, usize> = HashMap::with_capacity(store_keys.len());
    let mut found: Vec<Option<Vec<u8>>> = Vec::with_capacity(store_keys.len());
    for (i, k) in store_keys.iter().enumerate() {
        let v = match first.get(k.as_str()) {
            Some(&j) => found[j].clone(),
            None => {
                first.insert(k, i);
                by_key.remove(k.as_bytes())
            }
        };
        found.push(v);
    }
    found
}

/// Take the generation out of a pipelined read's answers.
fn split_generation(values: Vec<MetaValue>, gen_key: &str) -> Read {
    let mut generation = None;
    let mut rest = Vec::with_capacity(values.len());
    for v in values {
        if v.key.as_deref() == Some(gen_key.as_bytes()) {
            generation = parse_generation(v.data.as_deref());
        } else {
            rest.push(v);
        }
    }
    Read {
        generation,
        values: rest,
    }
}

cache_core::impl_backend_builder!(config: MemcachedBuilder => MemcachedBackend, MemcachedConfig::capabilities);

#[async_trait]
impl CacheBackend for MemcachedBackend {
    cache_core::backend_identity!(caps);

    async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        let s = self.server_of(key);
        let mut found = self.read(s, &[key], false).await?;
        Ok(found
            .values
            .pop()
            .flatten()
            .and_then(|v| decode(v, self.now())))
    }

    async fn set(&self, key: &str, value: Bytes, expiry: Expiry) -> Result<()> {
        let s = self.server_of(key);
        let now = self.now();
        let Ok(deadline) = deadline(expiry, now) else {
            return self.delete(key).await.map(drop);
        };
        let g = self.write_generation(s).await?;
        let k = value_key(self.ns(), g, key);
        let held = held_key(self.ns(), g, key);
        let stored = encode(&value, deadline);
        let ttl = ttl_flag(deadline, now);
        // One round trip on one connection: the held mark's delete (no reply; it
        // overtakes a held lock) runs before the write, in order.
        self.driver
            .on(s, async |c| {
                c.delete_no_reply(&held).await?;
                c.meta_set(&k, &stored[..], false, None, Some(&[&ttl]))
                    .await
                    .map(drop)
            })
            .await
    }

    async fn delete(&self, key: &str) -> Result<bool> {
        Ok(self.delete_many(&[key]).await? == 1)
    }

    async fn has(&self, key: &str) -> Result<bool> {
        let s = self.server_of(key);
        let found = self.read(s, &[key], false).await?;
        Ok(found.values[0]
            .as_deref()
            .is_some_and(|v| is_live(v, self.now())))
    }

    async fn clear(&self) -> Result<()> {
        let ns = self.ns();
        let bumped =
            futures::future::join_all((0..self.driver.servers.len()).map(|s| async move {
                let g = self
                    .driver
                    .on(s, async |c| read_generation(c, ns, true).await)
                    .await?;
                self.generations.record(s, g);
                Ok::<_, cache_core::Error>(())
            }))
            .await;
        // Every server is tried; the first failure is reported.
        bumped.into_iter().try_for_each(|r| r.map(drop))
    }

    async fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<Bytes>>> {
        let groups = self.by_server(keys);
        let reads = futures::future::join_all(groups.iter().map(|(s, ix)| async move {
            let ks: Vec<&str> = ix.iter().map(|&i| keys[i]).collect();
            self.read(*s, &ks, false).await
        }))
        .await;
        let now = self.now();
        let mut out = vec![None; keys.len()];
        for ((_, ix), read) in groups.iter().zip(reads) {
            for (&i, v) in ix.iter().zip(read?.values) {
                out[i] = v.and_then(|v| decode(v, now));
            }
        }
        Ok(out)
    }

    async fn set_many(&self, items: &[(&str, Bytes)], expiry: Expiry) -> Result<()> {
        let now = self.now();
        let Ok(deadline) = deadline(expiry, now) else {
            let keys: Vec<&str> = items.iter().map(|(k, _)| *k).collect();
            return self.delete_many(&keys).await.map(drop);
        };
        let ttl = ttl_flag(deadline, now);
        let keys: Vec<&str> = items.iter().map(|(k, _)| *k).collect();
        let groups = self.by_server(&keys);
        let written = futures::future::join_all(groups.iter().map(|(s, ix)| {
            let ttl = &ttl;
            async move {
                let g = self.write_generation(*s).await?;
                // In request order on one connection: a repeated key keeps its last value.
                let batch: Vec<(String, Vec<u8>)> = ix
                    .iter()
                    .map(|&i| {
                        (
                            value_key(self.ns(), g, items[i].0),
                            encode(&items[i].1, deadline),
                        )
                    })
                    .collect();
                let marks: Vec<String> = ix
                    .iter()
                    .map(|&i| held_key(self.ns(), g, items[i].0))
                    .collect();
                // The held marks' deletes first, then the writes: one round trip.
                let refused = self
                    .driver
                    .on(*s, async |c| {
                        c.delete_multi_no_reply(&marks).await?;
                        let pairs: Vec<(&str, &[u8])> =
                            batch.iter().map(|(k, v)| (k.as_str(), &v[..])).collect();
                        c.meta_set_multi(&pairs, Some(&[ttl])).await
                    })
                    .await?;
                match refused.first() {
                    None => Ok(()),
                    Some(v) => Err(cache_core::Error::new(
                        cache_core::ErrorKind::Backend,
                        BACKEND,
                        format!(
                            "memcached did not store a value of the batch ({:?})",
                            v.status
                        ),
                    )),
                }
            }
        }))
        .await;
        written.into_iter().collect()
    }

    async fn delete_many(&self, keys: &[&str]) -> Result<usize> {
        let groups = self.by_server(keys);
        let counts = futures::future::join_all(groups.iter().map(|(s, ix)| async move {
            let ks: Vec<&str> = ix.iter().map(|&i| keys[i]).collect();
            // Which are live and which have a held lock, then: `noreply` deletes of the
            // held marks (overtaking the locks), then of the values, then tombstones
            // where a lock was held (see the README), all on one connection, and an
            // answered command last (the tombstones' sets, or a `version`), whose
            // answer means the server has done them all (a later call may run on
            // another connection).
            let found = self.read(*s, &ks, true).await?;
            let g = found.generation;
            let now = self.now();
            let mut live = std::collections::HashSet::new();
            for (k, v) in ks.iter().zip(&found.values) {
                if v.as_deref().is_some_and(|v| is_live(v, now)) {
                    live.insert(*k);
                }
            }
            let mut deletes: Vec<String> = ks.iter().map(|k| held_key(self.ns(), g, k)).collect();
            let mut tombstones = Vec::new();
            for (k, held) in ks.iter().zip(&found.held) {
                let vk = value_key(self.ns(), g, k);
                if *held {
                    tombstones.push((vk, tombstone()));
                } else {
                    deletes.push(vk);
                }
            }
            let ttl = self.tombstone_ttl(now);
            let refused = self
                .driver
                .on(*s, async |c| {
                    c.delete_multi_no_reply(&deletes).await?;
                    if tombstones.is_empty() {
                        return c.version().await.map(|_| Vec::new());
                    }
                    let pairs: Vec<(&str, &[u8])> = tombstones
                        .iter()
                        .map(|(k, v)| (k.as_str(), &v[..]))
                        .collect();
                    c.meta_set_multi(&pairs, Some(&[&ttl])).await
                })
                .await?;
            if let Some(v) = refused.first() {
                return Err(cache_core::Error::new(
                    cache_core::ErrorKind::Backend,
                    BACKEND,
                    format!(
                        "memcached did not store a delete's tombstone ({:?})",
                        v.status
                    ),
                ));
            }
            Ok::<_, cache_core::Error>(live.len())
        }))
        .await;
        counts.into_iter().sum()
    }

    async fn set_if_absent(&self, key: &str, value: Bytes, expiry: Expiry) -> Result<bool> {
        let s = self.server_of(key);
        let now = self.now();
        let Ok(deadline) = deadline(expiry, now) else {
            return Ok(false);
        };
        // Always the server's generation, not a trusted copy: a stale one would let a
        // second caller win after another process's clear. The read also says whether
        // a live value is there: then nothing is stored, and the lock is left alone.
        let found = self.read(s, &[key], false).await?;
        if found.values[0].as_deref().is_some_and(|v| is_live(v, now)) {
            return Ok(false);
        }
        let g = found.generation;
        let k = value_key(self.ns(), g, key);
        let held = held_key(self.ns(), g, key);
        let (stored, ttl) = (encode(&value, deadline), ttl_flag(deadline, now));
        // It will store (unless another write lands first): overtake the lock, then
        // add, on one connection.
        self.driver
            .on(s, async |c| {
                c.delete_no_reply(&held).await?;
                self.insert_if_absent(c, &k, &stored, &ttl, 0).await
            })
            .await
    }

    async fn acquire_lock(&self, key: &str, ttl: Duration) -> Result<Option<LockToken>> {
        let s = self.server_of(key);
        let now = self.now();
        let deadline = deadline(Expiry::After(ttl), now).ok().flatten();
        let token = LockToken::random();
        let stored = encode(token.as_str().as_bytes(), deadline);
        let ttl = ttl_flag(deadline, now);
        let lock = lock_key(self.ns(), key);
        let held = held_key(self.ns(), self.write_generation(s).await?, key);
        let t = token.as_str().as_bytes();
        let skew = u64::try_from(self.config.max_clock_skew.as_millis()).unwrap_or(u64::MAX);
        let won = self
            .driver
            .on(s, async |c| {
                // One round trip: add the held mark, then add the lock. The mark is
                // there before the lock is, so no write can slip between them
                // unnoticed. A mark that is already there is an earlier holder's (its
                // lock released or expired: ours is then set over it below) or the
                // current holder's (then our lock add fails too).
                let refused = c
                    .meta_set_multi(
                        &[(held.as_str(), t), (lock.as_str(), &stored[..])],
                        Some(&["ME", &ttl]),
                    )
                    .await?;
                let refused_key = |k: &str| {
                    refused
                        .iter()
                        .any(|v| v.key.as_deref() == Some(k.as_bytes()))
                };
                let marked = !refused_key(&held);
                if refused_key(&lock) {
                    // Held, or expired but still kept: a takeover, `skew` ms past the
                    // deadline at the earliest (the deadline is the holder's clock).
                    let mut won = false;
                    for _ in 0..2 {
                        match self.take_expired(c, &lock, &stored, &ttl, skew).await? {
                            Some(w) => {
                                won = w;
                                break;
                            }
                            None => {
                                if lost(
                                    c.meta_set(
                                        &lock,
                                        &stored[..],
                                        false,
                                        None,
                                        Some(&["ME", &ttl]),
                                    )
                                    .await,
                                )? {
                                    won = true;
                                    break;
                                }
                            }
                        }
                    }
                    if !won {
                        return Ok(false);
                    }
                }
                // Our mark was not added: an earlier holder's is there (left when its
                // lock expired, or not yet deleted): the lock is ours now, so is the mark.
                if !marked {
                    c.meta_set(&held, t, false, None, Some(&[&ttl])).await?;
                }
                Ok(true)
            })
            .await?;
        Ok(won.then_some(token))
    }

    async fn release_lock(&self, key: &str, token: &LockToken) -> Result<bool> {
        let s = self.server_of(key);
        let k = lock_key(self.ns(), key);
        let g = self.generations.known(s);
        let mark = (g != 0).then(|| held_key(self.ns(), g, key));
        self.driver
            .on(s, async |c| {
                let Some(held) = c.meta_get(&k, false, None, Some(&["v", "c"])).await? else {
                    return Ok(false);
                };
                let data = held.data.unwrap_or_default();
                let ours = data.len() >= HEADER
                    && &data[HEADER..] == token.as_str().as_bytes()
                    && is_live(&data, self.now());
                if !ours {
                    return Ok(false);
                }
                // Our held mark first (the lock is ours: so is the mark), then the
                // lock, only if nobody took it over since the read.
                if let Some(mark) = &mark {
                    c.delete_no_reply(mark).await?;
                }
                let cas = format!("C{}", held.cas.unwrap_or(0));
                match c.meta_delete(&k, false, None, Some(&[&cas])).await {
                    Ok(_) => Ok(true),
                    Err(McError::Protocol(Status::Exists | Status::NotFound)) => Ok(false),
                    Err(e) => Err(e),
                }
            })
            .await
    }

    async fn set_locked(
        &self,
        key: &str,
        value: Bytes,
        expiry: Expiry,
        token: &LockToken,
    ) -> Result<bool> {
        self.set_locked_with(key, value, expiry, token, std::future::ready(()))
            .await
    }

    async fn close(&self) -> Result<()> {
        Ok(())
    }
}
