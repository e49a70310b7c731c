//! The driver side: connecting, store keys, command encoding and cluster routing.

use crate::config::{redact_url, RedisConfig};
use crate::error::{config, map, BACKEND};
use cache_core::raw::{KeyKind, KeyLayout, StoreKey, Ttl};
use cache_core::{Error, ErrorKind, Expiry, Result};
use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo, Slot};
use redis::{AsyncConnectionConfig, Cmd, Pipeline, RedisFuture, Value};
use std::collections::HashMap;
use std::future::Future;
use std::time::{Duration, UNIX_EPOCH};

/// Deletes the lock only if it holds the caller's token, overtaken or not.
const RELEASE_LOCK: &str = r"
local t = redis.call('GET', KEYS[1])
if t == ARGV[1] or t == '!' .. ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0";

/// The writes of the application: KEYS are pairs (value, its lock); ARGV[1] is the
/// operation (`set`, `nx` or `del`), ARGV[2] and ARGV[3] the expiry (`PX`/`PXAT` and
/// ms, or empty), the rest the values in order. A held lock of a key written, deleted
/// or added to is marked overtaken (`!` + token, its TTL kept): the lock stays held,
/// its holder's fenced write stores nothing. Returns how many keys were deleted or
/// added.
const APP_WRITE: &str = r"
local op, mode, ms = ARGV[1], ARGV[2], ARGV[3]
local n = 0
local function overtake(lock)
  local t = redis.call('GET', lock)
  if t and string.sub(t, 1, 1) ~= '!' then
    redis.call('SET', lock, '!' .. t, 'KEEPTTL')
  end
end
for i = 1, #KEYS, 2 do
  -- First the lock, then the value: a failing mark changes nothing.
  if op ~= 'nx' then overtake(KEYS[i + 1]) end
  local done = true
  if op == 'del' then
    done = redis.call('DEL', KEYS[i]) == 1
    if done then n = n + 1 end
  else
    local v = ARGV[3 + (i + 1) / 2]
    local r
    if mode == '' then
      if op == 'nx' then r = redis.call('SET', KEYS[i], v, 'NX') else r = redis.call('SET', KEYS[i], v) end
    else
      if op == 'nx' then r = redis.call('SET', KEYS[i], v, 'NX', mode, ms) else r = redis.call('SET', KEYS[i], v, mode, ms) end
    end
    done = r ~= false
    if op == 'nx' and done then n = n + 1 end
  end
  if op == 'nx' and done then overtake(KEYS[i + 1]) end
end
return n";

/// Marks the held lock KEYS[1] overtaken (for `clear`).
const OVERTAKE: &str = r"
local t = redis.call('GET', KEYS[1])
if t and string.sub(t, 1, 1) ~= '!' then
  redis.call('SET', KEYS[1], '!' .. t, 'KEEPTTL')
  return 1
end
return 0";

/// The lock holder's write: KEYS[1] the value, KEYS[2] its lock; ARGV[1] the token,
/// ARGV[2] the value, ARGV[3] and ARGV[4] the expiry (`PX`/`PXAT` and ms, empty, or
/// `DEL` to remove the value). Writes only while the lock holds the token, not
/// overtaken; releases the lock if it is the caller's. 1 if written.
const SET_LOCKED: &str = r"
local t = redis.call('GET', KEYS[2])
if t == ARGV[1] then
  redis.call('DEL', KEYS[2])
  if ARGV[3] == 'DEL' then
    redis.call('DEL', KEYS[1])
  elseif ARGV[3] == '' then
    redis.call('SET', KEYS[1], ARGV[2])
  else
    redis.call('SET', KEYS[1], ARGV[2], ARGV[3], ARGV[4])
  end
  return 1
end
if t == '!' .. ARGV[1] then
  redis.call('DEL', KEYS[2])
end
return 0";

/// Keys per SCAN page and per UNLINK batch in `clear`.
const CLEAR_BATCH: usize = 500;

/// Largest TTL sent to Redis, in ms (about 36 million years): Redis refuses
/// expiries that overflow its clock, so longer ones are clamped, which is the same
/// as forever in practice.
const MAX_TTL_MS: u64 = 1 << 50;

/// A single server's auto-reconnecting multiplexed connection, or a cluster connection.
#[derive(Clone)]
pub(crate) enum Conn {
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

/// Open the connection `cfg` describes and check it with a PING.
pub(crate) async fn connect(cfg: &RedisConfig) -> Result<Conn> {
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
    if !cfg.cluster_urls.is_empty() {
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
        return Ok(Conn::Cluster(conn));
    }
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
    // No response timeout of the manager's own: `Driver` bounds each call end to end
    // (the wait for a reconnect included) with one timer, `timeout`.
    let manager_cfg = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(cfg.connect_timeout))
        .set_response_timeout(None)
        .set_number_of_retries(6)
        .set_min_delay(Duration::from_millis(10))
        .set_max_delay(Duration::from_millis(250));
    let manager = bounded(
        limit,
        &where_,
        ConnectionManager::new_with_config(client, manager_cfg),
    )
    .await?;
    Ok(Conn::Single(manager))
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

/// A store key written as one Redis argument, straight into the command's buffer.
pub(crate) struct RedisKey<'a>(pub(crate) StoreKey<'a>);

impl redis::ToRedisArgs for RedisKey<'_> {
    fn write_redis_args<W: ?Sized + redis::RedisWrite>(&self, out: &mut W) {
        use std::io::Write;
        let mut w = out.writer_for_next_arg();
        for part in self.0.parts() {
            // Writing into the command's own buffer cannot fail.
            let _ = w.write_all(part.as_bytes());
        }
    }
}

impl redis::ToSingleRedisArg for RedisKey<'_> {}

/// Escape Redis glob metacharacters so a namespace matches only itself.
pub(crate) fn glob_escape(s: &str) -> String {
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
pub(crate) enum SetTtl {
    Keep,
    Px(u64),
    PxAt(u64),
    /// Only when an `Expiry::At` passes while the call runs (the checks turn every
    /// other past expiry into a delete before it gets here).
    Delete,
}

pub(crate) fn set_ttl(expiry: Expiry) -> SetTtl {
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

/// The connection of one backend, with its namespace's keys and scripts.
pub(crate) struct Driver {
    conn: parking_lot::Mutex<Option<Conn>>,
    /// Bound of each round trip, end to end (see [`Driver::bounded`]).
    timeout: Duration,
    namespace: String,
    cluster: bool,
    /// On a cluster, a namespace with a `{` but no whole hash tag (`a{`, `{}`) puts a
    /// value and its lock in different slots: one script cannot cover both, and the
    /// writes are fenced in two steps instead (the lock first, then the value).
    split: bool,
    clear_pattern: String,
    release_script: redis::Script,
    app_write_script: redis::Script,
    overtake_script: redis::Script,
    set_locked_script: redis::Script,
}

impl Driver {
    pub(crate) fn new(conn: Conn, namespace: &str, timeout: Duration) -> Self {
        let cluster = matches!(conn, Conn::Cluster(_));
        Driver {
            timeout,
            cluster,
            split: cluster && namespace.contains('{') && !has_hash_tag(namespace),
            conn: parking_lot::Mutex::new(Some(conn)),
            namespace: namespace.to_owned(),
            clear_pattern: format!("{}*", glob_escape(&KeyLayout::namespace_prefix(namespace))),
            release_script: redis::Script::new(RELEASE_LOCK),
            app_write_script: redis::Script::new(APP_WRITE),
            overtake_script: redis::Script::new(OVERTAKE),
            set_locked_script: redis::Script::new(SET_LOCKED),
        }
    }

    pub(crate) fn is_cluster(&self) -> bool {
        self.cluster
    }

    /// The store key of `key`: Redis keys are binary-safe, so any key stays readable.
    pub(crate) fn key<'a>(&'a self, kind: KeyKind, key: &'a str) -> RedisKey<'a> {
        RedisKey(KeyLayout::ANY.key(&self.namespace, kind, key))
    }

    /// The store key of `key`'s lock: `ns:#lock:{tag}` + the key (or its digest), where
    /// `tag` is a short hash tag of the value key's cluster slot, so that a value and
    /// its lock always share a slot and one script can fence them together.
    pub(crate) fn lock_key(&self, key: &str) -> Vec<u8> {
        let mut value = String::new();
        KeyLayout::ANY
            .key(&self.namespace, KeyKind::Value, key)
            .write_into(&mut value);
        lock_key_of(&self.namespace, value.as_bytes())
    }

    /// Store keys as owned bytes, for batches split by hash slot.
    pub(crate) fn value_keys(&self, keys: impl Iterator<Item = impl AsRef<str>>) -> Vec<Vec<u8>> {
        keys.map(|k| {
            let mut s = String::new();
            KeyLayout::ANY
                .key(&self.namespace, KeyKind::Value, k.as_ref())
                .write_into(&mut s);
            s.into_bytes()
        })
        .collect()
    }

    fn conn(&self) -> Result<Conn> {
        self.conn
            .lock()
            .clone()
            .ok_or_else(|| Error::closed(BACKEND))
    }

    /// A driver on the same connection for `namespace`.
    pub(crate) fn for_namespace(&self, namespace: &str) -> Result<Driver> {
        Ok(Driver::new(self.conn()?, namespace, self.timeout))
    }

    /// Drop this handle of the connection; it closes once in-flight calls end.
    pub(crate) fn close(&self) {
        self.conn.lock().take();
    }

    /// Bound one round trip by the timeout, end to end: the connection manager makes
    /// a call that finds the connection lost wait for its reconnect (up to 6 quick
    /// retries, about 0.85 s against a server that refuses connections, and up to
    /// `connect_timeout` an attempt against one that does not answer): past the
    /// timeout the call fails with `Timeout` while the reconnect goes on in the
    /// background, for the next calls. One timer per call: the manager has no response
    /// timeout of its own (a second timer measured 5 % of throughput at 64 tasks).
    async fn bounded<T>(&self, call: impl Future<Output = redis::RedisResult<T>>) -> Result<T> {
        match tokio::time::timeout(self.timeout, call).await {
            Ok(r) => r.map_err(map),
            Err(_) => Err(Error::new(
                ErrorKind::Timeout,
                BACKEND,
                format!(
                    "no answer within {:?} (the timeout, which also bounds the wait for a \
                     reconnect); is Redis up and reachable? Else raise the timeout",
                    self.timeout
                ),
            )),
        }
    }

    /// Make one request with `call`, bounded by the timeout; once more (within the
    /// same bound) if the connection was refused. A refused connection sent nothing:
    /// it is the outcome of a reconnect that failed earlier, which the manager hands
    /// to the next call while it starts another. Without the second try, the first
    /// call after the server is back would fail (and a circuit breaker's probe with
    /// it); with it, that call waits for the new reconnect.
    async fn request<T, Fut>(&self, call: impl Fn(Conn) -> Fut) -> Result<T>
    where
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        let conn = self.conn()?;
        self.bounded(async {
            match call(conn.clone()).await {
                Err(e) if e.is_connection_refusal() => call(conn).await,
                done => done,
            }
        })
        .await
    }

    /// Run one command, bounded by the timeout.
    pub(crate) async fn query<T: redis::FromRedisValue>(&self, cmd: &Cmd) -> Result<T> {
        self.request(|mut conn| async move { cmd.query_async(&mut conn).await })
            .await
    }

    /// Run one script, bounded by the timeout.
    async fn invoke<T: redis::FromRedisValue>(
        &self,
        invocation: &redis::ScriptInvocation<'_>,
    ) -> Result<T> {
        self.request(|mut conn| async move { invocation.invoke_async(&mut conn).await })
            .await
    }

    pub(crate) async fn release(&self, lock: &[u8], token: &str) -> Result<bool> {
        let mut invocation = self.release_script.key(lock);
        invocation.arg(token);
        let removed: i64 = self.invoke(&invocation).await?;
        Ok(removed > 0)
    }

    /// The lock holder's write (see [`SET_LOCKED`]); true if stored.
    pub(crate) async fn set_locked(
        &self,
        key: &str,
        value: &[u8],
        ttl: &SetTtl,
        token: &str,
    ) -> Result<bool> {
        if self.split {
            return self.set_locked_split(key, value, ttl, token).await;
        }
        let mut value_key = String::new();
        KeyLayout::ANY
            .key(&self.namespace, KeyKind::Value, key)
            .write_into(&mut value_key);
        let mut invocation = self.set_locked_script.key(value_key.as_bytes());
        invocation
            .key(lock_key_of(&self.namespace, value_key.as_bytes()))
            .arg(token)
            .arg(value);
        match ttl {
            SetTtl::Px(ms) => invocation.arg("PX").arg(*ms),
            SetTtl::PxAt(ms) => invocation.arg("PXAT").arg(*ms),
            SetTtl::Keep => invocation.arg("").arg(0),
            SetTtl::Delete => invocation.arg("DEL").arg(0),
        };
        let stored: i64 = self.invoke(&invocation).await?;
        Ok(stored > 0)
    }

    /// [`Redis::set_locked`] when the value and its lock are in different slots: the
    /// lock is checked and released, then the value written (an application write
    /// landing between the two is overwritten: a window of one round trip).
    async fn set_locked_split(
        &self,
        key: &str,
        value: &[u8],
        ttl: &SetTtl,
        token: &str,
    ) -> Result<bool> {
        let lock = self.lock_key(key);
        let mut invocation = self.set_locked_script.key(&lock[..]);
        invocation
            .key(&lock[..])
            .arg(token)
            .arg("")
            .arg("DEL")
            .arg(0);
        // KEYS[1] = KEYS[2] = the lock: the script deletes it and reports whose it was;
        // the value is written below.
        let held: i64 = self.invoke(&invocation).await?;
        if held == 0 {
            return Ok(false);
        }
        let k = self.key(KeyKind::Value, key);
        let mut cmd = redis::cmd("SET");
        match ttl {
            SetTtl::Delete => {
                self.query::<()>(redis::cmd("DEL").arg(&k)).await?;
                return Ok(true);
            }
            SetTtl::Px(ms) => cmd.arg(&k).arg(value).arg("PX").arg(*ms),
            SetTtl::PxAt(ms) => cmd.arg(&k).arg(value).arg("PXAT").arg(*ms),
            SetTtl::Keep => cmd.arg(&k).arg(value),
        };
        self.query::<()>(&cmd).await?;
        Ok(true)
    }

    /// The application's writes of `keys` (store keys of values) with `values` (empty
    /// for a delete), one script per slot group, overtaking held locks (see
    /// [`APP_WRITE`]). `op` is `set`, `nx` or `del`; returns how many keys were
    /// deleted or added.
    pub(crate) async fn app_write(
        &self,
        op: &str,
        keys: &[Vec<u8>],
        values: &[&[u8]],
        ttl: &SetTtl,
    ) -> Result<usize> {
        if keys.is_empty() {
            return Ok(0);
        }
        if self.split {
            return self.app_write_split(op, keys, values, ttl).await;
        }
        let calls = self.slot_groups(keys).into_iter().map(|group| {
            let mut invocation = self.app_write_script.prepare_invoke();
            for &i in &group {
                invocation
                    .key(&keys[i][..])
                    .key(lock_key_of(&self.namespace, &keys[i]));
            }
            invocation.arg(op);
            match ttl {
                SetTtl::Px(ms) => invocation.arg("PX").arg(*ms),
                SetTtl::PxAt(ms) => invocation.arg("PXAT").arg(*ms),
                SetTtl::Keep | SetTtl::Delete => invocation.arg("").arg(0),
            };
            if op != "del" {
                for &i in &group {
                    invocation.arg(values[i]);
                }
            }
            async move { self.invoke::<usize>(&invocation).await }
        });
        Ok(futures::future::try_join_all(calls)
            .await?
            .into_iter()
            .sum())
    }

    /// [`Redis::app_write`] when values and locks are in different slots: each key's
    /// lock is overtaken first, then the key written.
    async fn app_write_split(
        &self,
        op: &str,
        keys: &[Vec<u8>],
        values: &[&[u8]],
        ttl: &SetTtl,
    ) -> Result<usize> {
        let mut n = 0;
        for (i, k) in keys.iter().enumerate() {
            self.invoke::<i64>(&self.overtake_script.key(lock_key_of(&self.namespace, k)))
                .await?;
            let mut cmd = redis::cmd(if op == "del" { "DEL" } else { "SET" });
            cmd.arg(&k[..]);
            if op != "del" {
                cmd.arg(values[i]);
                if op == "nx" {
                    cmd.arg("NX");
                }
                match ttl {
                    SetTtl::Px(ms) => cmd.arg("PX").arg(*ms),
                    SetTtl::PxAt(ms) => cmd.arg("PXAT").arg(*ms),
                    SetTtl::Keep | SetTtl::Delete => &mut cmd,
                };
            }
            let reply: Value = self.query(&cmd).await?;
            n += usize::from(match reply {
                Value::Int(d) => d > 0,
                Value::Nil => false,
                _ => op == "nx",
            });
        }
        Ok(n)
    }

    /// Indices of `keys` grouped so that each group can go in one multi-key command:
    /// everything at once on a single server, one group per hash slot on a cluster.
    pub(crate) fn slot_groups(&self, keys: &[Vec<u8>]) -> Vec<Vec<usize>> {
        if !self.cluster {
            return vec![(0..keys.len()).collect()];
        }
        let mut groups: HashMap<Slot, Vec<usize>> = HashMap::new();
        for (i, k) in keys.iter().enumerate() {
            groups.entry(Slot::for_key(k)).or_default().push(i);
        }
        groups.into_values().collect()
    }

    /// Run `command` with each slot group's keys, concurrently.
    pub(crate) async fn per_group<T: redis::FromRedisValue>(
        &self,
        keys: &[Vec<u8>],
        command: &str,
    ) -> Result<Vec<(Vec<usize>, T)>> {
        let calls = self.slot_groups(keys).into_iter().map(|group| {
            let mut cmd = redis::cmd(command);
            for &i in &group {
                cmd.arg(&keys[i]);
            }
            async move { Ok::<_, Error>((group, self.query::<T>(&cmd).await?)) }
        });
        futures::future::try_join_all(calls).await
    }

    /// Delete `keys` (any number, split by slot); how many were there.
    pub(crate) async fn delete_keys(&self, command: &str, keys: &[Vec<u8>]) -> Result<usize> {
        if keys.is_empty() {
            return Ok(0);
        }
        let counts = self.per_group::<usize>(keys, command).await?;
        Ok(counts.into_iter().map(|(_, n)| n).sum())
    }

    /// Remove every key of the namespace: SCAN (glob-escaped prefix) + UNLINK, on
    /// every master of a cluster. Never KEYS or FLUSH*.
    pub(crate) async fn clear(&self) -> Result<()> {
        if !self.cluster {
            return self.clear_node(None).await;
        }
        for master in self.masters().await? {
            self.clear_node(Some(master)).await?;
        }
        Ok(())
    }

    /// Two passes: first every held lock of the namespace is overtaken, then the
    /// values are unlinked. A holder that wrote during the first pass wrote a value
    /// that exists for the whole second scan, which therefore finds and removes it;
    /// one that writes later finds its lock overtaken. (One pass, page by page, could
    /// miss a value written behind the scan by a holder whose lock was on a later page.)
    async fn clear_node(&self, node: Option<(String, u16)>) -> Result<()> {
        let locks = format!("{}*", glob_escape(&format!("{}:#lock:", self.namespace)));
        self.scan_node(&node, &locks, |keys| async move {
            for lock in keys
                .iter()
                .filter(|k| KeyLayout::is_lock_key(&self.namespace, k))
            {
                self.invoke::<i64>(&self.overtake_script.key(&lock[..]))
                    .await?;
            }
            Ok(())
        })
        .await?;
        // Held locks stay: a clear during a compute must not let a second caller
        // compute the same key.
        self.scan_node(&node, &self.clear_pattern, |keys| async move {
            let values: Vec<Vec<u8>> = keys
                .into_iter()
                .filter(|k| !KeyLayout::is_lock_key(&self.namespace, k))
                .collect();
            self.delete_keys("UNLINK", &values).await.map(drop)
        })
        .await
    }

    /// SCAN `pattern` on `node` (or the single server), handing each page to `page`.
    async fn scan_node<F, Fut>(
        &self,
        node: &Option<(String, u16)>,
        pattern: &str,
        page: F,
    ) -> Result<()>
    where
        F: Fn(Vec<Vec<u8>>) -> Fut,
        Fut: Future<Output = Result<()>>,
    {
        let mut cursor: u64 = 0;
        loop {
            let mut scan = redis::cmd("SCAN");
            scan.arg(cursor)
                .arg("MATCH")
                .arg(pattern)
                .arg("COUNT")
                .arg(CLEAR_BATCH);
            let (next, keys): (u64, Vec<Vec<u8>>) = match (node, self.conn()?) {
                (Some((host, port)), Conn::Cluster(mut c)) => {
                    let route = RoutingInfo::SingleNode(SingleNodeRoutingInfo::ByAddress {
                        host: host.clone(),
                        port: *port,
                    });
                    let v = self.bounded(c.route_command(scan, route)).await?;
                    redis::from_redis_value(v).map_err(|e| map(e.into()))?
                }
                _ => self.query(&scan).await?,
            };
            page(keys).await?;
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
            let Some(Value::Array(parts)) = range.into_iter().nth(2) else {
                continue;
            };
            let mut it = parts.into_iter();
            let host = it.next().map(redis::from_redis_value::<String>).transpose();
            let port = it.next().map(redis::from_redis_value::<u16>).transpose();
            if let (Ok(Some(host)), Ok(Some(port))) = (host, port) {
                if !out.contains(&(host.clone(), port)) {
                    out.push((host, port));
                }
            }
        }
        if out.is_empty() {
            return Err(Error::new(
                ErrorKind::Unavailable,
                BACKEND,
                "the cluster reported no masters; is it fully set up?",
            ));
        }
        Ok(out)
    }
}

/// The lock key of the value store key `value` of `namespace` (see [`Redis::lock_key`]).
///
/// A namespace with a `{` of its own decides the hash tag of every key in it: the
/// lock is then `ns:#lock:` + the key, in the value's slot when the namespace holds a
/// whole non-empty tag (`{tenant}`), in another one otherwise (see [`Redis::split`]).
fn lock_key_of(namespace: &str, value: &[u8]) -> Vec<u8> {
    let body = value
        .strip_prefix(namespace.as_bytes())
        .and_then(|r| r.strip_prefix(b":"))
        .unwrap_or(value);
    let mut out = Vec::with_capacity(namespace.len() + 16 + body.len());
    out.extend_from_slice(namespace.as_bytes());
    out.extend_from_slice(b":#lock:");
    if !namespace.contains('{') {
        out.push(b'{');
        out.extend_from_slice(slot_tag(Slot::for_key(value)).as_bytes());
        out.push(b'}');
    }
    out.extend_from_slice(body);
    out
}

/// Whether `namespace` holds a whole non-empty hash tag (`a{b}c`), which then puts
/// every key of the namespace in one slot.
fn has_hash_tag(namespace: &str) -> bool {
    namespace
        .split_once('{')
        .and_then(|(_, rest)| rest.split_once('}'))
        .is_some_and(|(tag, _)| !tag.is_empty())
}

/// The shortest tag (base 62, first found in a fixed order, so every process and
/// version agrees) whose hash slot is `slot`.
fn slot_tag(slot: Slot) -> &'static str {
    static TAGS: std::sync::OnceLock<HashMap<Slot, String>> = std::sync::OnceLock::new();
    let tags = TAGS.get_or_init(|| {
        const DIGITS: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
        let mut tags = HashMap::with_capacity(16_384);
        let mut len = 1;
        while tags.len() < 16_384 {
            let count = DIGITS.len().pow(len);
            for mut n in 0..count {
                let mut tag = String::with_capacity(len as usize);
                for _ in 0..len {
                    tag.push(char::from(DIGITS[n % DIGITS.len()]));
                    n /= DIGITS.len();
                }
                tags.entry(Slot::for_key(tag.as_bytes())).or_insert(tag);
            }
            len += 1;
        }
        tags
    });
    // Every slot has a tag: the search above stops only when all are found.
    tags.get(&slot).map_or("", String::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lock_shares_its_values_slot() {
        for key in [
            "user:1", "a{b}c", "{x}", "a}b{", "{}", "a{}b", "}{", "#", "",
        ] {
            let value = format!("ns:{key}");
            let lock = lock_key_of("ns", value.as_bytes());
            assert_eq!(
                Slot::for_key(&lock),
                Slot::for_key(value.as_bytes()),
                "{key}"
            );
            assert!(KeyLayout::is_lock_key("ns", &lock), "{key}");
            assert!(lock.ends_with(key.as_bytes()));
        }
        assert_ne!(lock_key_of("ns", b"ns:a"), lock_key_of("ns", b"ns:b"));
        // A namespace's own whole tag puts everything in its slot.
        let (value, lock) = (b"t{x}:k".as_slice(), lock_key_of("t{x}", b"t{x}:k"));
        assert_eq!(Slot::for_key(&lock), Slot::for_key(value));
        assert!(has_hash_tag("t{x}") && !has_hash_tag("t{}") && !has_hash_tag("t{"));
    }
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
