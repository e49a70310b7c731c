//! `RedisBuilder` and `RedisBackend`.

use crate::config::{redact_url, RedisConfig};
use crate::error::{config, map, BACKEND};
use cache_core::key::{validate_key, validate_namespace};
use cache_core::{
    async_trait, Bytes, CacheBackend, Capabilities, Error, Expiry, LockToken, Result, Ttl,
};
use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo, Slot};
use redis::{AsyncConnectionConfig, Cmd, Pipeline, RedisFuture, Value};
use std::collections::HashMap;
use std::future::Future;
use std::time::{Duration, UNIX_EPOCH};

/// Deletes the lock only if it still holds the caller's token.
const RELEASE_LOCK: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0";

/// Keys per SCAN page and per UNLINK batch in `clear`.
const CLEAR_BATCH: usize = 500;

/// A single server's auto-reconnecting multiplexed connection, or a cluster connection.
#[derive(Clone)]
enum Conn {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Single(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }
    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }
    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }
}

/// Builder for [`RedisBackend`].
///
/// ```no_run
/// # async fn demo() -> cache_core::Result<()> {
/// use cache_redis::{RedisBackend, RedisBuilder};
/// use std::time::Duration;
/// let single = RedisBackend::builder()
///     .url("redis://:password@127.0.0.1:6379/0")
///     .namespace("app")
///     .timeout(Duration::from_millis(500))
///     .build()
///     .await?;
/// let cluster = RedisBuilder::cluster(["redis://10.0.0.1:7000", "redis://10.0.0.2:7000"])
///     .namespace("app")
///     .build()
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Default)]
#[must_use]
pub struct RedisBuilder {
    config: RedisConfig,
}

impl RedisBuilder {
    /// Start from a full configuration.
    pub fn from_config(config: RedisConfig) -> Self {
        RedisBuilder { config }
    }
    /// A single server at `url` (`redis://` or `rediss://`).
    pub fn new(url: impl Into<String>) -> Self {
        Self::default().url(url)
    }
    /// A Redis Cluster reached through these seed nodes.
    pub fn cluster<I, S>(urls: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut b = Self::default();
        b.config.cluster_urls = urls.into_iter().map(Into::into).collect();
        b
    }
    /// See [`RedisConfig::url`].
    pub fn url(mut self, url: impl Into<String>) -> Self {
        self.config.url = url.into();
        self
    }
    /// See [`RedisConfig::namespace`].
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.config.namespace = namespace.into();
        self
    }
    /// See [`RedisConfig::timeout`].
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.config.timeout = timeout;
        self
    }
    /// See [`RedisConfig::connect_timeout`].
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.config.connect_timeout = timeout;
        self
    }
    /// See [`RedisConfig::max_value_size`].
    pub fn max_value_size(mut self, bytes: usize) -> Self {
        self.config.max_value_size = bytes;
        self
    }
    /// See [`RedisConfig::tls_ca_file`].
    pub fn tls_ca_file(mut self, path: impl Into<std::path::PathBuf>) -> Self {
        self.config.tls_ca_file = Some(path.into());
        self
    }

    /// Connect. A bad URL, a wrong password or an invalid namespace is a
    /// [`Config`](cache_core::ErrorKind::Config) error at once (no retry loop); an
    /// unreachable server is `Unavailable` or `Timeout`.
    pub async fn build(self) -> Result<RedisBackend> {
        let cfg = self.config;
        validate_namespace(BACKEND, &cfg.namespace)?;
        if cfg.timeout.is_zero() || cfg.connect_timeout.is_zero() {
            return Err(config("timeout and connect_timeout must be positive"));
        }
        // rustls needs one process-wide crypto provider; ours is `ring`. An error means
        // one is installed already, which is just as good.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let certs = match &cfg.tls_ca_file {
            Some(path) => Some(redis::TlsCertificates {
                client_tls: None,
                root_cert: Some(std::fs::read(path).map_err(|e| {
                    config(format!("cannot read tls_ca_file {}", path.display())).with_source(e)
                })?),
            }),
            None => None,
        };
        let limit = cfg.connect_timeout;
        let (conn, cluster) = if cfg.cluster_urls.is_empty() {
            let client = match certs {
                Some(c) => redis::Client::build_with_tls(cfg.url.as_str(), c),
                None => redis::Client::open(cfg.url.as_str()),
            }
            .map_err(map)?;
            let where_ = format!("connecting to {}", redact_url(&cfg.url));
            // One plain attempt first: the manager retries every failure, a wrong
            // password included, and we want a clear error at once instead.
            let probe_cfg = AsyncConnectionConfig::new()
                .set_connection_timeout(Some(cfg.connect_timeout))
                .set_response_timeout(Some(cfg.timeout));
            let mut probe = bounded(
                limit,
                &where_,
                client.get_multiplexed_async_connection_with_config(&probe_cfg),
            )
            .await?;
            // A server that requires a password accepts the connection and refuses the
            // first command: ask one now.
            bounded(
                limit,
                &where_,
                redis::cmd("PING").query_async::<()>(&mut probe),
            )
            .await?;
            drop(probe);
            let manager_cfg = ConnectionManagerConfig::new()
                .set_connection_timeout(Some(cfg.connect_timeout))
                .set_response_timeout(Some(cfg.timeout))
                .set_number_of_retries(6)
                .set_min_delay(Duration::from_millis(10))
                .set_max_delay(Duration::from_millis(250));
            let manager = bounded(
                limit,
                &where_,
                ConnectionManager::new_with_config(client, manager_cfg),
            )
            .await?;
            (Conn::Single(manager), false)
        } else {
            let mut b = redis::cluster::ClusterClientBuilder::new(cfg.cluster_urls.clone())
                .connection_timeout(cfg.connect_timeout)
                .response_timeout(cfg.timeout);
            if let Some(c) = certs {
                b = b.certs(c);
            }
            let client = b.build().map_err(map)?;
            let where_ = format!(
                "connecting to the cluster at {}",
                redact_url(&cfg.cluster_urls[0])
            );
            let mut conn = bounded(limit, &where_, client.get_async_connection()).await?;
            bounded(
                limit,
                &where_,
                redis::cmd("PING").query_async::<()>(&mut conn),
            )
            .await?;
            (Conn::Cluster(conn), true)
        };
        tracing::debug!(namespace = %cfg.namespace, cluster, "redis backend connected");
        Ok(RedisBackend {
            conn: parking_lot::Mutex::new(Some(conn)),
            prefix: format!("{}:", cfg.namespace).into_bytes(),
            lock_prefix: format!("{}\0", cfg.namespace).into_bytes(),
            clear_pattern: format!("{}:*", glob_escape(&cfg.namespace)),
            max_value_size: cfg.max_value_size,
            release_script: redis::Script::new(RELEASE_LOCK),
            config: cfg,
        })
    }
}

/// Bound a connection attempt; a timeout says what was being connected to.
async fn bounded<T>(
    limit: Duration,
    what: &str,
    fut: impl Future<Output = redis::RedisResult<T>>,
) -> Result<T> {
    match tokio::time::timeout(limit, fut).await {
        Ok(r) => r.map_err(|e| {
            let err = map(e);
            Error::new(err.kind(), BACKEND, format!("{what}: {}", err.message())).with_source(err)
        }),
        Err(_) => {
            Err(Error::timeout(BACKEND, limit).with_source(std::io::Error::other(what.to_owned())))
        }
    }
}

/// `prefix` + `key` written as one Redis argument, without building it first.
struct NsKey<'a> {
    prefix: &'a [u8],
    key: &'a str,
}

impl redis::ToRedisArgs for NsKey<'_> {
    fn write_redis_args<W: ?Sized + redis::RedisWrite>(&self, out: &mut W) {
        use std::io::Write;
        let mut w = out.writer_for_next_arg();
        // Writing into the command's own buffer cannot fail.
        let _ = w.write_all(self.prefix);
        let _ = w.write_all(self.key.as_bytes());
    }
}

impl redis::ToSingleRedisArg for NsKey<'_> {}

/// Escape Redis glob metacharacters so a namespace matches only itself.
fn glob_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\' | '^' | '-') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// What `SET` should do with an expiry.
enum SetTtl {
    Keep,
    Px(u64),
    PxAt(u64),
    Delete,
}

/// Largest TTL sent to Redis, in ms (about 36 million years): Redis refuses
/// expiries that overflow its clock, so longer ones are clamped, which is the same
/// as forever in practice.
const MAX_TTL_MS: u64 = 1 << 50;

fn set_ttl(expiry: Expiry) -> SetTtl {
    match (expiry, expiry.ttl()) {
        (_, Ttl::Expired) => SetTtl::Delete,
        (_, Ttl::Forever) => SetTtl::Keep,
        (Expiry::At(t), ttl) => match t.duration_since(UNIX_EPOCH) {
            Ok(d) => SetTtl::PxAt(
                u64::try_from(d.as_nanos().div_ceil(1_000_000))
                    .unwrap_or(u64::MAX)
                    .min(MAX_TTL_MS),
            ),
            Err(_) => SetTtl::Px(ttl.as_millis_ceil().unwrap_or(1).min(MAX_TTL_MS)),
        },
        (_, ttl) => SetTtl::Px(ttl.as_millis_ceil().unwrap_or(1).min(MAX_TTL_MS)),
    }
}

fn with_ttl(cmd: &mut Cmd, ttl: &SetTtl) {
    match ttl {
        SetTtl::Px(ms) => {
            cmd.arg("PX").arg(*ms);
        }
        SetTtl::PxAt(ms) => {
            cmd.arg("PXAT").arg(*ms);
        }
        SetTtl::Keep | SetTtl::Delete => {}
    }
}

/// A cache backend on Redis or Redis Cluster.
///
/// Values live under `namespace:key`, locks under `namespace\0key`; both are plain
/// binary-safe Redis keys, so any key round-trips and nothing can be injected.
pub struct RedisBackend {
    conn: parking_lot::Mutex<Option<Conn>>,
    prefix: Vec<u8>,
    lock_prefix: Vec<u8>,
    clear_pattern: String,
    max_value_size: usize,
    release_script: redis::Script,
    config: RedisConfig,
}

impl std::fmt::Debug for RedisBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisBackend")
            .field("config", &self.config)
            .finish()
    }
}

impl RedisBackend {
    /// A builder with the defaults of [`RedisConfig`].
    pub fn builder() -> RedisBuilder {
        RedisBuilder::default()
    }

    /// This backend's namespace.
    pub fn namespace(&self) -> &str {
        &self.config.namespace
    }

    /// Whether this backend talks to a Redis Cluster.
    pub fn is_cluster(&self) -> bool {
        !self.config.cluster_urls.is_empty()
    }

    fn conn(&self) -> Result<Conn> {
        self.conn
            .lock()
            .clone()
            .ok_or_else(|| Error::closed(BACKEND))
    }

    fn value_key(&self, key: &str) -> Result<Vec<u8>> {
        validate_key(BACKEND, key)?;
        Ok([self.prefix.as_slice(), key.as_bytes()].concat())
    }

    /// The store key of a value, for single-key commands.
    fn ns_key<'a>(&'a self, key: &'a str) -> Result<NsKey<'a>> {
        validate_key(BACKEND, key)?;
        Ok(NsKey {
            prefix: &self.prefix,
            key,
        })
    }

    fn lock_key(&self, key: &str) -> Result<Vec<u8>> {
        validate_key(BACKEND, key)?;
        Ok([self.lock_prefix.as_slice(), key.as_bytes()].concat())
    }

    fn check_value(&self, value: &[u8]) -> Result<()> {
        if value.len() > self.max_value_size {
            return Err(Error::value_too_large(
                BACKEND,
                value.len(),
                self.max_value_size,
            ));
        }
        Ok(())
    }

    /// Map a driver call's error. Calls are bounded by the driver's own response and
    /// connection timeouts (set from the config); no second timer per call, which
    /// measured 5 % of throughput at 64 concurrent tasks.
    async fn run<T>(&self, fut: impl Future<Output = redis::RedisResult<T>>) -> Result<T> {
        fut.await.map_err(map)
    }

    async fn query<T: redis::FromRedisValue>(&self, cmd: &Cmd) -> Result<T> {
        let mut conn = self.conn()?;
        self.run(cmd.query_async(&mut conn)).await
    }

    /// Indices of `keys` grouped so that each group can go in one multi-key command:
    /// everything at once on a single server, one group per hash slot on a cluster.
    fn slot_groups(&self, keys: &[Vec<u8>]) -> Vec<Vec<usize>> {
        if !self.is_cluster() {
            return vec![(0..keys.len()).collect()];
        }
        let mut groups: HashMap<Slot, Vec<usize>> = HashMap::new();
        for (i, k) in keys.iter().enumerate() {
            groups.entry(Slot::for_key(k)).or_default().push(i);
        }
        groups.into_values().collect()
    }

    /// Run one command per slot group concurrently; `make` builds it from the group's keys.
    async fn per_group<T: redis::FromRedisValue>(
        &self,
        keys: &[Vec<u8>],
        make: impl Fn(&[&Vec<u8>]) -> Cmd,
    ) -> Result<Vec<(Vec<usize>, T)>> {
        let calls = self.slot_groups(keys).into_iter().map(|group| {
            let cmd = make(&group.iter().map(|&i| &keys[i]).collect::<Vec<_>>());
            async move { Ok::<_, Error>((group, self.query::<T>(&cmd).await?)) }
        });
        futures::future::try_join_all(calls).await
    }

    async fn unlink(&self, keys: &[Vec<u8>]) -> Result<usize> {
        if keys.is_empty() {
            return Ok(0);
        }
        let counts = self
            .per_group::<usize>(keys, |ks| {
                let mut c = redis::cmd("UNLINK");
                c.arg(ks);
                c
            })
            .await?;
        Ok(counts.into_iter().map(|(_, n)| n).sum())
    }

    /// SCAN one server (or one cluster master) for this namespace and unlink what it finds.
    async fn clear_node(&self, node: Option<(String, u16)>) -> Result<()> {
        let mut cursor: u64 = 0;
        loop {
            let mut scan = redis::cmd("SCAN");
            scan.arg(cursor)
                .arg("MATCH")
                .arg(&self.clear_pattern)
                .arg("COUNT")
                .arg(CLEAR_BATCH);
            let (next, keys): (u64, Vec<Vec<u8>>) = match (&node, self.conn()?) {
                (Some((host, port)), Conn::Cluster(mut c)) => {
                    let route = RoutingInfo::SingleNode(SingleNodeRoutingInfo::ByAddress {
                        host: host.clone(),
                        port: *port,
                    });
                    let v = self.run(c.route_command(scan, route)).await?;
                    redis::from_redis_value(v).map_err(|e| map(e.into()))?
                }
                _ => self.query(&scan).await?,
            };
            self.unlink(&keys).await?;
            if next == 0 {
                return Ok(());
            }
            cursor = next;
        }
    }

    /// Addresses of the cluster's masters, from CLUSTER SLOTS.
    async fn masters(&self) -> Result<Vec<(String, u16)>> {
        let slots: Vec<Vec<Value>> = self
            .query(&redis::cmd("CLUSTER").arg("SLOTS").clone())
            .await?;
        let mut out: Vec<(String, u16)> = Vec::new();
        for range in slots {
            if let Some(master) = range.into_iter().nth(2) {
                let (host, port): (String, u16) = match master {
                    Value::Array(parts) => {
                        let mut it = parts.into_iter();
                        let host = it.next().map(redis::from_redis_value).transpose();
                        let port = it.next().map(redis::from_redis_value).transpose();
                        match (host, port) {
                            (Ok(Some(h)), Ok(Some(p))) => (h, p),
                            _ => continue,
                        }
                    }
                    _ => continue,
                };
                if !out.contains(&(host.clone(), port)) {
                    out.push((host, port));
                }
            }
        }
        if out.is_empty() {
            return Err(Error::new(
                cache_core::ErrorKind::Unavailable,
                BACKEND,
                "the cluster reported no masters; is it fully set up?",
            ));
        }
        Ok(out)
    }

    fn set_cmd(key: impl redis::ToRedisArgs, value: &[u8], ttl: &SetTtl) -> Cmd {
        let mut cmd = redis::cmd("SET");
        cmd.arg(key).arg(value);
        with_ttl(&mut cmd, ttl);
        cmd
    }
}

#[async_trait]
impl CacheBackend for RedisBackend {
    fn capabilities(&self) -> Capabilities {
        Capabilities::new(BACKEND)
            .ttl_precision(Duration::from_millis(1))
            .max_value_size(Some(self.max_value_size))
            .native_batch(true)
            .distributed_locks(true)
    }

    async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        let k = self.ns_key(key)?;
        let v: Option<Vec<u8>> = self.query(redis::cmd("GET").arg(&k)).await?;
        Ok(v.map(Bytes::from))
    }

    async fn set(&self, key: &str, value: Bytes, expiry: Expiry) -> Result<()> {
        let k = self.ns_key(key)?;
        self.check_value(&value)?;
        match set_ttl(expiry) {
            SetTtl::Delete => self.query::<()>(redis::cmd("DEL").arg(&k)).await,
            ttl => self.query::<()>(&Self::set_cmd(k, &value, &ttl)).await,
        }
    }

    async fn delete(&self, key: &str) -> Result<bool> {
        let k = self.ns_key(key)?;
        Ok(self.query::<i64>(redis::cmd("DEL").arg(&k)).await? > 0)
    }

    async fn has(&self, key: &str) -> Result<bool> {
        let k = self.ns_key(key)?;
        Ok(self.query::<i64>(redis::cmd("EXISTS").arg(&k)).await? > 0)
    }

    async fn clear(&self) -> Result<()> {
        if self.is_cluster() {
            for master in self.masters().await? {
                self.clear_node(Some(master)).await?;
            }
            Ok(())
        } else {
            self.clear_node(None).await
        }
    }

    async fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<Bytes>>> {
        let ks = keys
            .iter()
            .map(|k| self.value_key(k))
            .collect::<Result<Vec<_>>>()?;
        if ks.is_empty() {
            self.conn()?;
            return Ok(Vec::new());
        }
        let groups = self
            .per_group::<Vec<Option<Vec<u8>>>>(&ks, |g| {
                let mut c = redis::cmd("MGET");
                c.arg(g);
                c
            })
            .await?;
        let mut out = vec![None; ks.len()];
        for (idx, values) in groups {
            for (i, v) in idx.into_iter().zip(values) {
                out[i] = v.map(Bytes::from);
            }
        }
        Ok(out)
    }

    async fn set_many(&self, items: &[(&str, Bytes)], expiry: Expiry) -> Result<()> {
        let ks = items
            .iter()
            .map(|(k, _)| self.value_key(k))
            .collect::<Result<Vec<_>>>()?;
        for (_, v) in items {
            self.check_value(v)?;
        }
        if ks.is_empty() {
            return Ok(());
        }
        let ttl = set_ttl(expiry);
        if let SetTtl::Delete = ttl {
            return self.unlink(&ks).await.map(|_| ());
        }
        let pipelines = self.slot_groups(&ks).into_iter().map(|group| {
            let mut pipe = redis::pipe();
            for &i in &group {
                pipe.add_command(Self::set_cmd(&ks[i][..], &items[i].1, &ttl))
                    .ignore();
            }
            async move {
                let mut conn = self.conn()?;
                self.run(pipe.query_async::<()>(&mut conn)).await
            }
        });
        futures::future::try_join_all(pipelines).await.map(|_| ())
    }

    async fn delete_many(&self, keys: &[&str]) -> Result<usize> {
        let ks = keys
            .iter()
            .map(|k| self.value_key(k))
            .collect::<Result<Vec<_>>>()?;
        if ks.is_empty() {
            return Ok(0);
        }
        let counts = self
            .per_group::<usize>(&ks, |g| {
                let mut c = redis::cmd("DEL");
                c.arg(g);
                c
            })
            .await?;
        Ok(counts.into_iter().map(|(_, n)| n).sum())
    }

    async fn set_if_absent(&self, key: &str, value: Bytes, expiry: Expiry) -> Result<bool> {
        let k = self.ns_key(key)?;
        self.check_value(&value)?;
        let ttl = set_ttl(expiry);
        if let SetTtl::Delete = ttl {
            self.conn()?;
            return Ok(false);
        }
        let mut cmd = Self::set_cmd(k, &value, &ttl);
        cmd.arg("NX");
        let reply: Option<String> = self.query(&cmd).await?;
        Ok(reply.is_some())
    }

    async fn acquire_lock(&self, key: &str, ttl: Duration) -> Result<Option<LockToken>> {
        let k = self.lock_key(key)?;
        let ms = Ttl::For(ttl)
            .as_millis_ceil()
            .filter(|_| !ttl.is_zero())
            .ok_or_else(|| Error::invalid_input(BACKEND, "lock ttl must be positive"))?;
        let token = LockToken::random();
        let reply: Option<String> = self
            .query(
                redis::cmd("SET")
                    .arg(&k)
                    .arg(token.as_str())
                    .arg("NX")
                    .arg("PX")
                    .arg(ms),
            )
            .await?;
        Ok(reply.map(|_| token))
    }

    async fn release_lock(&self, key: &str, token: &LockToken) -> Result<bool> {
        let k = self.lock_key(key)?;
        let mut conn = self.conn()?;
        let mut invocation = self.release_script.key(&k);
        invocation.arg(token.as_str());
        let removed: i64 = self.run(invocation.invoke_async(&mut conn)).await?;
        Ok(removed > 0)
    }

    async fn close(&self) -> Result<()> {
        // Dropping the last handle of the connection closes it once in-flight calls end.
        self.conn.lock().take();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::SystemTime;

    #[test]
    fn namespace_globs_are_escaped() {
        assert_eq!(glob_escape("a*b?[c]\\"), "a\\*b\\?\\[c\\]\\\\");
        assert_eq!(glob_escape("plain.ns-1"), "plain.ns\\-1");
    }

    #[test]
    fn expiry_maps_to_px_pxat_or_delete() {
        assert!(matches!(set_ttl(Expiry::Never), SetTtl::Keep));
        assert!(matches!(set_ttl(Expiry::millis(1500)), SetTtl::Px(1500)));
        assert!(matches!(
            set_ttl(Expiry::After(Duration::from_micros(10))),
            SetTtl::Px(1)
        ));
        assert!(matches!(
            set_ttl(Expiry::After(Duration::ZERO)),
            SetTtl::Delete
        ));
        let at = SystemTime::now() + Duration::from_secs(60);
        assert!(matches!(set_ttl(Expiry::At(at)), SetTtl::PxAt(_)));
        let past = SystemTime::now() - Duration::from_secs(60);
        assert!(matches!(set_ttl(Expiry::At(past)), SetTtl::Delete));
    }
}
