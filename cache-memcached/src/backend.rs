//! `MemcachedBuilder` and `MemcachedBackend`: a thin `CacheBackend` over the driver side.

use crate::config::MemcachedConfig;
use crate::core::{
    deadline, decode, encode, generation_key, is_live, lock_key, now_ms, parse_generation,
    read_generation, ttl_flag, value_key, Generations, Shared, HEADER, MAX_KEY_LEN,
};
use crate::error::BACKEND;
use async_memcached::{AsciiProtocol, Error as McError, MetaProtocol, MetaValue, Status};
use cache_core::raw::validate_namespace;
use cache_core::{async_trait, Bytes, CacheBackend, Capabilities, Expiry, LockToken, Result};
use std::collections::HashMap;
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
}

impl MemcachedBuilder {
    /// Start from a full configuration.
    pub fn from_config(config: MemcachedConfig) -> Self {
        MemcachedBuilder { config }
    }
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
    /// See [`MemcachedConfig::namespace`].
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.config.namespace = namespace.into();
        self
    }
    /// See [`MemcachedConfig::pool_size`].
    pub fn pool_size(mut self, n: u32) -> Self {
        self.config.pool_size = n;
        self
    }
    /// See [`MemcachedConfig::timeout`].
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.config.timeout = timeout;
        self
    }
    /// See [`MemcachedConfig::connect_timeout`].
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.config.connect_timeout = timeout;
        self
    }
    /// See [`MemcachedConfig::max_value_size`].
    pub fn max_value_size(mut self, bytes: usize) -> Self {
        self.config.max_value_size = bytes;
        self
    }
    /// See [`MemcachedConfig::generation_check`].
    pub fn generation_check(mut self, trust: Duration) -> Self {
        self.config.generation_check = trust;
        self
    }

    /// Connect once to every server and make the pools. A bad setting is a
    /// [`Config`](cache_core::ErrorKind::Config) error; a server that cannot be reached
    /// is `Unavailable` or `Timeout` within the connect timeout, naming the server.
    pub async fn build(self) -> Result<MemcachedBackend> {
        let cfg = self.config;
        validate_namespace(BACKEND, &cfg.namespace)?;
        let shared = Arc::new(Shared::connect(&cfg).await?);
        tracing::debug!(namespace = %cfg.namespace, servers = cfg.servers.len(), "memcached backend connected");
        Ok(MemcachedBackend::on_shared(shared, cfg))
    }
}

/// A cache backend on one or many memcached servers.
///
/// Keys are spread over the servers by consistent hashing. Each namespace has a
/// generation number on every server, folded into its value keys: `clear` bumps it
/// (one command per server, never `flush_all`), which orphans the namespace's values
/// at once; memcached evicts them in time.
pub struct MemcachedBackend {
    shared: Arc<Shared>,
    generations: Generations,
    caps: Capabilities,
    config: MemcachedConfig,
}

impl std::fmt::Debug for MemcachedBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemcachedBackend")
            .field("config", &self.config)
            .finish()
    }
}

/// What one server answered for one pipelined read: the generation it holds now
/// (`None`: missing) and the values of the keys asked for, by key.
struct Read {
    generation: Option<u64>,
    values: Vec<MetaValue>,
}

impl MemcachedBackend {
    /// A builder with the defaults of [`MemcachedConfig`].
    pub fn builder() -> MemcachedBuilder {
        MemcachedBuilder::default()
    }

    fn on_shared(shared: Arc<Shared>, config: MemcachedConfig) -> Self {
        MemcachedBackend {
            generations: Generations::new(shared.servers.len(), config.generation_check),
            shared,
            caps: capabilities(&config),
            config,
        }
    }

    /// Another backend on the same servers and pools with its own namespace.
    pub fn with_namespace(&self, namespace: &str) -> Result<MemcachedBackend> {
        validate_namespace(BACKEND, namespace)?;
        let mut config = self.config.clone();
        config.namespace = namespace.to_owned();
        Ok(MemcachedBackend::on_shared(self.shared.clone(), config))
    }

    /// This backend's namespace.
    pub fn namespace(&self) -> &str {
        &self.config.namespace
    }

    /// The servers' addresses, in ring order of the configuration.
    pub fn servers(&self) -> impl Iterator<Item = &str> {
        self.shared.servers.iter().map(|s| s.addr.as_str())
    }

    /// The index (into [`servers`](Self::servers)) of the server holding `key`.
    pub fn server_of(&self, key: &str) -> usize {
        self.shared.ring.server(self.ns(), key)
    }

    fn ns(&self) -> &str {
        &self.config.namespace
    }

    /// Read (or, with `bump`, increment) the generation on server `s` and record it.
    async fn server_generation(&self, s: usize, bump: bool) -> Result<u64> {
        let ns = self.ns();
        let g = self
            .shared
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
    /// round trip. A generation that changed since this process last saw it is
    /// recorded and the read repeated under it; one that is missing (evicted) is made
    /// again from a fresh seed, and every value under the old one is a miss.
    async fn read(&self, s: usize, keys: &[&str]) -> Result<(u64, Vec<Option<Vec<u8>>>)> {
        let ns = self.ns();
        let gen_key = generation_key(ns);
        let mut g = self.generations.known(s);
        for _ in 0..3 {
            if g == 0 {
                g = self.server_generation(s, false).await?;
            }
            let store_keys: Vec<String> = keys.iter().map(|k| value_key(ns, g, k)).collect();
            let mut ask: Vec<&str> = Vec::with_capacity(keys.len() + 1);
            ask.push(&gen_key);
            ask.extend(store_keys.iter().map(String::as_str));
            let read = self
                .shared
                .on(s, async |c| {
                    let values = c.meta_get_multi(&ask, Some(&["v"])).await?;
                    Ok::<_, McError>(split_generation(values, &gen_key))
                })
                .await?;
            match read.generation {
                Some(now) if now == g => {
                    self.generations.record(s, g);
                    let found = match_keys(&store_keys, read.values);
                    return Ok((g, found));
                }
                Some(now) => {
                    self.generations.record(s, now);
                    g = now;
                }
                None => g = 0,
            }
        }
        Err(cache_core::Error::new(
            cache_core::ErrorKind::Backend,
            BACKEND,
            "the namespace's generation kept changing during a read (clears in a loop?); retry",
        ))
    }

    /// Store `stored` under `key` only if no live value is there: an add, or, over an
    /// expired one (which memcached may keep up to two seconds past its deadline), a
    /// compare-and-swap on the CAS just read, so one racer wins.
    async fn insert_if_absent(
        &self,
        s: usize,
        key: &str,
        stored: &[u8],
        ttl: &str,
    ) -> Result<bool> {
        self.shared
            .on(s, async |c| {
                for _ in 0..2 {
                    match c
                        .meta_set(key, stored, false, None, Some(&["ME", ttl]))
                        .await
                    {
                        Ok(_) => return Ok(true),
                        Err(McError::Protocol(Status::NotStored)) => {}
                        Err(e) => return Err(e),
                    }
                    let Some(old) = c.meta_get(key, false, None, Some(&["v", "c"])).await? else {
                        continue; // gone meanwhile: add again
                    };
                    if old.data.as_deref().is_some_and(|d| is_live(d, now_ms())) {
                        return Ok(false);
                    }
                    let cas = format!("C{}", old.cas.unwrap_or(0));
                    return match c
                        .meta_set(key, stored, false, None, Some(&[&cas, ttl]))
                        .await
                    {
                        Ok(_) => Ok(true),
                        Err(McError::Protocol(Status::Exists | Status::NotFound)) => Ok(false),
                        Err(e) => Err(e),
                    };
                }
                Ok(false)
            })
            .await
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

impl MemcachedBuilder {
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
fn capabilities(config: &MemcachedConfig) -> Capabilities {
    Capabilities::new(BACKEND)
        .max_key_len(Some(MAX_KEY_LEN))
        .max_value_size(Some(config.max_value_size))
        .native_batch(true)
        .distributed_locks(true)
}

#[async_trait]
impl CacheBackend for MemcachedBackend {
    fn capabilities(&self) -> Capabilities {
        self.caps
    }

    fn namespace(&self) -> &str {
        Self::namespace(self)
    }

    async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        let s = self.server_of(key);
        let (_, mut found) = self.read(s, &[key]).await?;
        Ok(found.pop().flatten().and_then(|v| decode(v, now_ms())))
    }

    async fn set(&self, key: &str, value: Bytes, expiry: Expiry) -> Result<()> {
        let s = self.server_of(key);
        let now = now_ms();
        let Ok(deadline) = deadline(expiry, now) else {
            return self.delete(key).await.map(drop);
        };
        let g = self.write_generation(s).await?;
        let k = value_key(self.ns(), g, key);
        let stored = encode(&value, deadline);
        let ttl = ttl_flag(deadline, now);
        self.shared
            .on(s, async |c| {
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
        let (_, found) = self.read(s, &[key]).await?;
        Ok(found[0].as_deref().is_some_and(|v| is_live(v, now_ms())))
    }

    async fn clear(&self) -> Result<()> {
        let ns = self.ns();
        let bumped =
            futures::future::join_all((0..self.shared.servers.len()).map(|s| async move {
                let g = self
                    .shared
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
            self.read(*s, &ks).await
        }))
        .await;
        let now = now_ms();
        let mut out = vec![None; keys.len()];
        for ((_, ix), read) in groups.iter().zip(reads) {
            let (_, found) = read?;
            for (&i, v) in ix.iter().zip(found) {
                out[i] = v.and_then(|v| decode(v, now));
            }
        }
        Ok(out)
    }

    async fn set_many(&self, items: &[(&str, Bytes)], expiry: Expiry) -> Result<()> {
        let now = now_ms();
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
                let refused = self
                    .shared
                    .on(*s, async |c| {
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
            // Which are live, then delete them all: `noreply` deletes and a `version`
            // behind them on the same connection, whose answer means the server has
            // done the deletes (a later call may run on another connection).
            let (g, found) = self.read(*s, &ks).await?;
            let now = now_ms();
            let mut live = std::collections::HashSet::new();
            for (k, v) in ks.iter().zip(&found) {
                if v.as_deref().is_some_and(|v| is_live(v, now)) {
                    live.insert(*k);
                }
            }
            let store_keys: Vec<String> = ks.iter().map(|k| value_key(self.ns(), g, k)).collect();
            self.shared
                .on(*s, async |c| {
                    c.delete_multi_no_reply(&store_keys).await?;
                    c.version().await.map(drop)
                })
                .await?;
            Ok::<_, cache_core::Error>(live.len())
        }))
        .await;
        counts.into_iter().sum()
    }

    async fn set_if_absent(&self, key: &str, value: Bytes, expiry: Expiry) -> Result<bool> {
        let s = self.server_of(key);
        let now = now_ms();
        let Ok(deadline) = deadline(expiry, now) else {
            return Ok(false);
        };
        // Always the server's generation, not a trusted copy: a stale one would let a
        // second caller win after another process's clear.
        let g = self.server_generation(s, false).await?;
        let k = value_key(self.ns(), g, key);
        self.insert_if_absent(s, &k, &encode(&value, deadline), &ttl_flag(deadline, now))
            .await
    }

    async fn acquire_lock(&self, key: &str, ttl: Duration) -> Result<Option<LockToken>> {
        let s = self.server_of(key);
        let now = now_ms();
        let deadline = deadline(Expiry::After(ttl), now).ok().flatten();
        let token = LockToken::random();
        let stored = encode(token.as_str().as_bytes(), deadline);
        let won = self
            .insert_if_absent(
                s,
                &lock_key(self.ns(), key),
                &stored,
                &ttl_flag(deadline, now),
            )
            .await?;
        Ok(won.then_some(token))
    }

    async fn release_lock(&self, key: &str, token: &LockToken) -> Result<bool> {
        let s = self.server_of(key);
        let k = lock_key(self.ns(), key);
        self.shared
            .on(s, async |c| {
                let Some(held) = c.meta_get(&k, false, None, Some(&["v", "c"])).await? else {
                    return Ok(false);
                };
                let data = held.data.unwrap_or_default();
                let ours = data.len() >= HEADER
                    && &data[HEADER..] == token.as_str().as_bytes()
                    && is_live(&data, now_ms());
                if !ours {
                    return Ok(false);
                }
                // Delete only if nobody took it over since the read.
                let cas = format!("C{}", held.cas.unwrap_or(0));
                match c.meta_delete(&k, false, None, Some(&[&cas])).await {
                    Ok(_) => Ok(true),
                    Err(McError::Protocol(Status::Exists | Status::NotFound)) => Ok(false),
                    Err(e) => Err(e),
                }
            })
            .await
    }

    async fn close(&self) -> Result<()> {
        Ok(())
    }
}
