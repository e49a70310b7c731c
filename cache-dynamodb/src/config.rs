//! Settings of the DynamoDB backend.

use crate::driver::MAX_KEY_LEN;
use crate::error::BACKEND;
use cache_core::Capabilities;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Largest value that fits an item with the longest key, namespace and expiry, with
/// room to spare (DynamoDB's limit is 409 600 bytes; moto's, 405 000).
pub(crate) const MAX_VALUE: usize = 390 * 1024;

/// Settings of [`DynamoBackend`](crate::DynamoBackend), loadable with serde.
///
/// Credentials are not settings: they come from the AWS configuration given to the
/// builder ([`DynamoBuilder::sdk_config`](crate::DynamoBuilder::sdk_config)) or from
/// the environment's credential chain (variables, profile, SSO, container or instance
/// role), as every AWS SDK finds them.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct DynamoConfig {
    /// Table holding every namespace's entries. Default `cache_entries`. Make it once
    /// with [`DynamoBuilder::create_table`](crate::DynamoBuilder::create_table).
    pub table: String,
    /// Namespace of this backend's items (the `ns` attribute). Default `"default"`.
    pub namespace: String,
    /// Endpoint URL instead of the region's (DynamoDB Local, a test server, a VPC
    /// endpoint). Default: none.
    pub endpoint: Option<String>,
    /// Region instead of the one the AWS configuration names. Default: none.
    pub region: Option<String>,
    /// Bound on each call (the SDK's retries included); past it the call fails with a
    /// `Timeout` error. Default 1 s.
    #[serde(with = "cache_core::raw::millis")]
    pub timeout: Duration,
    /// Bound on opening a connection, and on the table check of `build()`. Default 5 s.
    #[serde(with = "cache_core::raw::millis")]
    pub connect_timeout: Duration,
    /// Strongly consistent reads (a read sees every write acknowledged before it).
    /// Eventually consistent reads cost half the read capacity but may miss a value
    /// written less than a second ago. Default `true`.
    pub consistent_reads: bool,
    /// Largest value accepted, in bytes; larger is `InvalidInput`. Default and most:
    /// 390 KiB, DynamoDB's 400 KB item limit less room for a 2 KiB key and the other
    /// attributes.
    pub max_value_size: usize,
    /// The most that the clocks of two clients using the table may disagree by.
    /// DynamoDB has no clock a condition can read, so a lock's deadline is written
    /// with its holder's clock and judged with a contender's: a lock is taken over
    /// only once its deadline has passed by more than this on the contender's clock,
    /// so a contender whose clock runs ahead by less never takes a live lock. An
    /// abandoned lock is free this much later than its TTL. Default 1 s.
    #[serde(with = "cache_core::raw::millis")]
    pub max_clock_skew: Duration,
}

impl Default for DynamoConfig {
    fn default() -> Self {
        DynamoConfig {
            table: "cache_entries".into(),
            namespace: cache_core::raw::DEFAULT_NAMESPACE.into(),
            endpoint: None,
            region: None,
            timeout: Duration::from_secs(1),
            connect_timeout: Duration::from_secs(5),
            consistent_reads: true,
            max_value_size: MAX_VALUE,
            max_clock_skew: Duration::from_secs(1),
        }
    }
}

impl DynamoConfig {
    /// What a backend of these settings can do (known before it connects).
    pub(crate) fn capabilities(&self) -> Capabilities {
        Capabilities::networked(BACKEND, Some(MAX_KEY_LEN), self.max_value_size)
    }
}

cache_core::config_debug!(DynamoConfig {
    table, namespace,
    endpoint => |url: &Option<String>| url.as_deref().map(cache_core::raw::redact_url),
    region, timeout, connect_timeout, consistent_reads, max_value_size, max_clock_skew,
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_a_password_in_the_endpoint() {
        let cfg = DynamoConfig {
            endpoint: Some("https://user:s3cret@proxy.internal:8443".into()),
            ..DynamoConfig::default()
        };
        let dbg = format!("{cfg:?}");
        assert!(!dbg.contains("s3cret"), "{dbg}");
        assert!(dbg.contains("proxy.internal"), "{dbg}");
    }

    #[test]
    fn loads_from_json_with_defaults() {
        let cfg: DynamoConfig = serde_json::from_str(r#"{"table": "t", "timeout": 250}"#).unwrap();
        assert_eq!(cfg.table, "t");
        assert_eq!(cfg.timeout, Duration::from_millis(250));
        assert!(cfg.consistent_reads);
        assert_eq!(cfg.max_clock_skew, Duration::from_secs(1));
        let cfg: DynamoConfig = serde_json::from_str(r#"{"max_clock_skew": 2500}"#).unwrap();
        assert_eq!(cfg.max_clock_skew, Duration::from_millis(2500));
    }
}
