//! Settings of the MongoDB backend.

use serde::{Deserialize, Serialize};
use std::fmt;
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

impl fmt::Debug for MongoConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MongoConfig")
            .field("uri", &cache_core::raw::redact_url(&self.uri))
            .field("database", &self.database)
            .field("collection", &self.collection)
            .field("namespace", &self.namespace)
            .field("pool_size", &self.pool_size)
            .field("timeout", &self.timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("max_value_size", &self.max_value_size)
            .finish()
    }
}

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
