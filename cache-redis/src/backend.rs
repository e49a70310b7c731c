//! `RedisBuilder` and `RedisBackend`: a thin `CacheBackend` over the driver side.

use crate::config::RedisConfig;
use crate::driver::{connect, set_ttl, Driver, SetTtl};
use crate::error::BACKEND;
use cache_core::raw::{validate_namespace, KeyKind, Ttl};
use cache_core::{async_trait, Bytes, CacheBackend, Capabilities, Expiry, LockToken, Result};
use std::time::Duration;

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
    cache_core::builder_setters! { config: RedisConfig;
        from_config,
        url(url: impl Into<String>) = url.into(),
        namespace, timeout, connect_timeout, max_value_size,
        tls_ca_file(path: impl Into<std::path::PathBuf>) = Some(path.into()),
    }

    /// Connect. A bad URL, a wrong password or an invalid namespace is a
    /// [`Config`](cache_core::ErrorKind::Config) error at once (no retry loop); an
    /// unreachable server is `Unavailable` or `Timeout`.
    pub async fn build(self) -> Result<RedisBackend> {
        let cfg = self.config;
        validate_namespace(BACKEND, &cfg.namespace)?;
        let conn = connect(&cfg).await?;
        let redis = Driver::new(conn, &cfg.namespace, cfg.timeout);
        tracing::debug!(namespace = %cfg.namespace, cluster = redis.is_cluster(), "redis backend connected");
        Ok(RedisBackend {
            redis,
            caps: cfg.capabilities(),
            config: cfg,
        })
    }
}

cache_core::impl_backend_builder!(config: RedisBuilder => RedisBackend, RedisConfig::capabilities);

/// A cache backend on Redis or Redis Cluster.
///
/// Keys follow the core's layout (`namespace:key`, locks `namespace:#lock:key`); they
/// are binary-safe Redis keys, so any key round-trips and nothing can be injected.
pub struct RedisBackend {
    redis: Driver,
    caps: Capabilities,
    config: RedisConfig,
}

cache_core::backend_handle!(RedisBackend: RedisBuilder, RedisConfig);

impl RedisBackend {
    /// Whether this backend talks to a Redis Cluster.
    pub fn is_cluster(&self) -> bool {
        self.redis.is_cluster()
    }

    /// Another backend on the same connection with its own namespace (checked as the
    /// builder checks one). Each handle closes on its own; the connection closes when
    /// the last one does. A [`Closed`](cache_core::ErrorKind::Closed) error once this
    /// one is closed.
    pub fn with_namespace(&self, namespace: &str) -> Result<RedisBackend> {
        validate_namespace(BACKEND, namespace)?;
        let mut config = self.config.clone();
        config.namespace = namespace.to_owned();
        Ok(RedisBackend {
            redis: self.redis.for_namespace(namespace)?,
            caps: config.capabilities(),
            config,
        })
    }
}

#[async_trait]
impl CacheBackend for RedisBackend {
    cache_core::backend_identity!(caps);

    async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        let k = self.redis.key(KeyKind::Value, key);
        let v: Option<Vec<u8>> = self.redis.query(redis::cmd("GET").arg(&k)).await?;
        Ok(v.map(Bytes::from))
    }

    async fn set(&self, key: &str, value: Bytes, expiry: Expiry) -> Result<()> {
        let ks = self.redis.value_keys(std::iter::once(key));
        match set_ttl(expiry) {
            SetTtl::Delete => self.redis.app_write("del", &ks, &[], &SetTtl::Delete).await,
            ttl => self.redis.app_write("set", &ks, &[&value], &ttl).await,
        }
        .map(drop)
    }

    async fn delete(&self, key: &str) -> Result<bool> {
        let ks = self.redis.value_keys(std::iter::once(key));
        Ok(self
            .redis
            .app_write("del", &ks, &[], &SetTtl::Delete)
            .await?
            > 0)
    }

    async fn has(&self, key: &str) -> Result<bool> {
        let k = self.redis.key(KeyKind::Value, key);
        Ok(self
            .redis
            .query::<i64>(redis::cmd("EXISTS").arg(&k))
            .await?
            > 0)
    }

    async fn clear(&self) -> Result<()> {
        self.redis.clear().await
    }

    async fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<Bytes>>> {
        let ks = self.redis.value_keys(keys.iter());
        let groups = self
            .redis
            .per_group::<Vec<Option<Vec<u8>>>>(&ks, "MGET")
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
        let ks = self.redis.value_keys(items.iter().map(|(k, _)| k));
        // One script per slot group, in request order: a repeated key keeps its last value.
        match set_ttl(expiry) {
            SetTtl::Delete => self.redis.app_write("del", &ks, &[], &SetTtl::Delete).await,
            ttl => {
                let values: Vec<&[u8]> = items.iter().map(|(_, v)| &v[..]).collect();
                self.redis.app_write("set", &ks, &values, &ttl).await
            }
        }
        .map(drop)
    }

    async fn delete_many(&self, keys: &[&str]) -> Result<usize> {
        // A key named twice is counted once: the second DEL finds nothing (a key always
        // lands in one script: its hash slot's).
        let ks = self.redis.value_keys(keys.iter());
        self.redis.app_write("del", &ks, &[], &SetTtl::Delete).await
    }

    async fn set_if_absent(&self, key: &str, value: Bytes, expiry: Expiry) -> Result<bool> {
        let ttl = set_ttl(expiry);
        if let SetTtl::Delete = ttl {
            return Ok(false);
        }
        let ks = self.redis.value_keys(std::iter::once(key));
        Ok(self.redis.app_write("nx", &ks, &[&value], &ttl).await? > 0)
    }

    async fn acquire_lock(&self, key: &str, ttl: Duration) -> Result<Option<LockToken>> {
        let ms = Ttl::For(ttl).as_millis_ceil().unwrap_or(1);
        let token = LockToken::random();
        let reply: Option<String> = self
            .redis
            .query(
                redis::cmd("SET")
                    .arg(self.redis.lock_key(key))
                    .arg(token.as_str())
                    .arg("NX")
                    .arg("PX")
                    .arg(ms),
            )
            .await?;
        Ok(reply.map(|_| token))
    }

    async fn release_lock(&self, key: &str, token: &LockToken) -> Result<bool> {
        self.redis
            .release(&self.redis.lock_key(key), token.as_str())
            .await
    }

    async fn set_locked(
        &self,
        key: &str,
        value: Bytes,
        expiry: Expiry,
        token: &LockToken,
    ) -> Result<bool> {
        self.redis
            .set_locked(key, &value, &set_ttl(expiry), token.as_str())
            .await
    }

    async fn close(&self) -> Result<()> {
        self.redis.close();
        Ok(())
    }
}
