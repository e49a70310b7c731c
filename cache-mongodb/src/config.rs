//! Settings of the MongoDB backend.

use crate::driver::MAX_KEY_LEN;
use crate::error::BACKEND;
use cache_core::Capabilities;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Settings of [`MongoBackend`](crate::MongoBackend), loadable with serde.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct MongoConfig {
    /// Connection string (`mongodb://user:password@host:port/db?options`). Default
    /// `mongodb://127.0.0.1:27017`. `mongodb+srv://` needs the driver's DNS resolver,
    /// which this crate leaves out.
    pub uri: String,
    /// Database; `None` takes the one in the URI, else `cache`.
    pub database: Option<String>,
    /// Collection holding every namespace's entries; created with its indexes if
    /// absent. Default `cache_entries`.
    pub collection: String,
    /// Namespace of this backend's documents (the `ns` field). Default `"default"`.
    pub namespace: String,
    /// Most connections to each server. Default 16.
    pub pool_size: u32,
    /// Bound on each call; past it the call fails with a `Timeout` error. Default 1 s.
    #[serde(with = "cache_core::raw::millis")]
    pub timeout: Duration,
    /// Bound on connecting and choosing a server. Default 5 s.
    #[serde(with = "cache_core::raw::millis")]
    pub connect_timeout: Duration,
    /// Largest value accepted, in bytes; larger is `InvalidInput`. Default 16 MiB
    /// − 16 KiB, under MongoDB's 16 MiB document limit with the key and fields.
    pub max_value_size: usize,
}

impl Default for MongoConfig {
    fn default() -> Self {
        MongoConfig {
            uri: "mongodb://127.0.0.1:27017".into(),
            database: None,
            collection: "cache_entries".into(),
            namespace: cache_core::raw::DEFAULT_NAMESPACE.into(),
            pool_size: 16,
            timeout: Duration::from_secs(1),
            connect_timeout: Duration::from_secs(5),
            max_value_size: 16 * 1024 * 1024 - 16 * 1024,
        }
    }
}

impl MongoConfig {
    /// What a backend of these settings can do (known before it connects).
    pub(crate) fn capabilities(&self) -> Capabilities {
        Capabilities::networked(BACKEND, Some(MAX_KEY_LEN), self.max_value_size)
    }
}

cache_core::config_debug!(MongoConfig {
    uri => cache_core::raw::redact_url,
    database, collection, namespace, pool_size, timeout, connect_timeout, max_value_size,
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_the_password() {
        let cfg = MongoConfig {
            uri: "mongodb://app:s3cret@db.internal:27017/cache?authSource=admin".into(),
            ..MongoConfig::default()
        };
        let dbg = format!("{cfg:?}");
        assert!(!dbg.contains("s3cret"), "{dbg}");
        assert!(dbg.contains("app:***@db.internal"), "{dbg}");
    }
}
