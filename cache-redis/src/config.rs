//! Settings of the Redis backend.

use crate::error::BACKEND;
use cache_core::Capabilities;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Duration;

/// Settings of [`RedisBackend`](crate::RedisBackend), loadable with serde.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct RedisConfig {
    /// Server URL: `redis://[user][:password@]host[:port][/db]`, or `rediss://` for TLS.
    /// Ignored when `cluster_urls` is not empty. Default `redis://127.0.0.1:6379`.
    pub url: String,
    /// Seed nodes of a Redis Cluster; when not empty the backend runs in cluster mode.
    pub cluster_urls: Vec<String>,
    /// Namespace of this backend's keys (stored as `namespace:key`). Default `"default"`.
    pub namespace: String,
    /// Bound on each round trip to Redis, end to end: past it the call fails with a
    /// `Timeout` error. A call made while the connection is being re-established waits
    /// for the reconnect (up to 6 quick retries, 10 ms to 250 ms apart, in the
    /// background) within this bound too. `clear` makes a round trip per 500 keys
    /// scanned, each bounded. Default 1 s.
    #[serde(with = "cache_core::raw::millis")]
    pub timeout: Duration,
    /// Bound on opening a connection. Default 5 s.
    #[serde(with = "cache_core::raw::millis")]
    pub connect_timeout: Duration,
    /// Largest value accepted, in bytes; larger is `InvalidInput`. Default 16 MiB
    /// (Redis itself takes up to 512 MiB).
    pub max_value_size: usize,
    /// PEM file of the CA that signed the server's certificate, for `rediss://` with a
    /// private CA. Default: the system's trusted roots.
    pub tls_ca_file: Option<PathBuf>,
}

impl Default for RedisConfig {
    fn default() -> Self {
        RedisConfig {
            url: "redis://127.0.0.1:6379".into(),
            cluster_urls: Vec::new(),
            namespace: cache_core::raw::DEFAULT_NAMESPACE.into(),
            timeout: Duration::from_secs(1),
            connect_timeout: Duration::from_secs(5),
            max_value_size: 16 * 1024 * 1024,
            tls_ca_file: None,
        }
    }
}

impl RedisConfig {
    /// What a backend of these settings can do (known before it connects): Redis keys
    /// have no practical length limit.
    pub(crate) fn capabilities(&self) -> Capabilities {
        Capabilities::networked(BACKEND, None, self.max_value_size)
    }
}

pub(crate) use cache_core::raw::redact_url;

cache_core::config_debug!(RedisConfig {
    url => redact_url,
    cluster_urls => |urls: &Vec<String>| urls.iter().map(|u| redact_url(u)).collect::<Vec<_>>(),
    namespace, timeout, connect_timeout, max_value_size, tls_ca_file,
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_passwords() {
        let cfg = RedisConfig {
            url: "rediss://app:s3cret@cache.internal:6380/2".into(),
            cluster_urls: vec!["redis://:hunter2@10.0.0.1:7000".into()],
            ..RedisConfig::default()
        };
        let dbg = format!("{cfg:?}");
        assert!(!dbg.contains("s3cret") && !dbg.contains("hunter2"), "{dbg}");
        assert!(
            dbg.contains("rediss://app:***@cache.internal:6380/2"),
            "{dbg}"
        );
        assert_eq!(
            redact_url("redis://127.0.0.1:6379"),
            "redis://127.0.0.1:6379"
        );
        assert_eq!(redact_url("redis://tok@h/0?x=@"), "redis://***@h/0?x=@");
    }
}
