//! Settings of the in-memory backend.

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Settings of [`MemoryBackend`](crate::MemoryBackend), loadable with serde.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct MemoryConfig {
    /// Most entries the store holds (all namespaces together); the least recently
    /// used entry of a shard is evicted to make room. Default 100 000.
    pub max_entries: usize,
    /// Namespace of this backend's keys. Default `"default"`.
    pub namespace: String,
    /// How often expired entries are swept away in the background; `None` turns the
    /// sweep off (expired entries are still never returned, and are dropped when read
    /// or evicted). Default 1 s.
    #[serde(with = "cache_core::raw::opt_millis")]
    pub sweep_interval: Option<Duration>,
    /// Most independently locked shards. Default 64; a store never has shards of
    /// fewer than 4 096 entries, so a cache of up to 8 191 entries is one exact LRU.
    pub shards: usize,
    /// Largest value accepted, in bytes. Default 16 MiB.
    pub max_value_size: usize,
}

impl Default for MemoryConfig {
    fn default() -> Self {
        MemoryConfig {
            max_entries: 100_000,
            namespace: cache_core::raw::DEFAULT_NAMESPACE.to_owned(),
            sweep_interval: Some(Duration::from_secs(1)),
            shards: 64,
            max_value_size: 16 * 1024 * 1024,
        }
    }
}
