//! Settings of the Memcached backend.

use crate::driver::MAX_KEY_LEN;
use crate::error::BACKEND;
use cache_core::Capabilities;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Settings of [`MemcachedBackend`](crate::MemcachedBackend), loadable with serde.
///
/// Memcached's text protocol has no authentication, so nothing here is secret; keep
/// the servers on a private network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct MemcachedConfig {
    /// Servers as `host:port`, `tcp://host:port` or `unix:///path`. Keys are spread
    /// over them by consistent hashing. Default `["127.0.0.1:11211"]`.
    pub servers: Vec<String>,
    /// Namespace of this backend's keys. Default `"default"`.
    pub namespace: String,
    /// Most connections per server. Default 8.
    pub pool_size: u32,
    /// Bound on each call (waiting for a connection included); past it the call fails
    /// with a `Timeout` error. Default 1 s.
    #[serde(with = "cache_core::raw::millis")]
    pub timeout: Duration,
    /// Bound on opening a connection. Default 5 s.
    #[serde(with = "cache_core::raw::millis")]
    pub connect_timeout: Duration,
    /// Largest value accepted, in bytes; larger is `InvalidInput` before anything is
    /// sent. Default 1 MiB − 512 bytes, which fits memcached's default 1 MiB item limit
    /// with the longest key; raise both together (`memcached -I 5m`).
    pub max_value_size: usize,
    /// How long writes trust this process's copy of a namespace's generation (see the
    /// crate docs: reads always check it; a `clear` by another process reaches this
    /// process's writes within this bound). Default 1 s.
    #[serde(with = "cache_core::raw::millis")]
    pub generation_check: Duration,
    /// How far apart the clocks of the processes sharing the servers may be. A lock's
    /// deadline is written on its holder's clock (memcached's own TTLs count whole
    /// seconds), and a contender takes over an expired lock only once its own clock
    /// is past the deadline by this much: a contender whose clock runs ahead by less
    /// never takes a live lock. It delays the takeover of a lock whose holder died by
    /// as much. Default 1 s.
    #[serde(with = "cache_core::raw::millis")]
    pub max_clock_skew: Duration,
}

impl Default for MemcachedConfig {
    fn default() -> Self {
        MemcachedConfig {
            servers: vec!["127.0.0.1:11211".into()],
            namespace: cache_core::raw::DEFAULT_NAMESPACE.into(),
            pool_size: 8,
            timeout: Duration::from_secs(1),
            connect_timeout: Duration::from_secs(5),
            max_value_size: 1024 * 1024 - 512,
            generation_check: Duration::from_secs(1),
            max_clock_skew: Duration::from_secs(1),
        }
    }
}

impl MemcachedConfig {
    /// What a backend of these settings can do (known before it connects).
    pub(crate) fn capabilities(&self) -> Capabilities {
        Capabilities::networked(BACKEND, Some(MAX_KEY_LEN), self.max_value_size)
    }
}
