//! Settings of the Firestore backend.

use crate::driver::MAX_KEY_LEN;
use crate::error::BACKEND;
use cache_core::Capabilities;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Duration;

/// Largest value that fits a 1 MiB document with the longest stored key, the
/// namespace, the document name and the field names, with room to spare.
pub(crate) const MAX_VALUE: usize = 1024 * 1024 - 8 * 1024;

/// Settings of [`FirestoreBackend`](crate::FirestoreBackend), loadable with serde.
///
/// Nothing here is secret: the key file's path is shown by `Debug`, its contents are
/// never read here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct FirestoreConfig {
    /// Google Cloud project id. Default: empty (an error at `build()`).
    pub project_id: String,
    /// Database id. Default `(default)`.
    pub database_id: String,
    /// Collection holding every namespace's entries. Default `cache_entries`.
    pub collection: String,
    /// Namespace of this backend's documents (the `ns` field). Default `"default"`.
    pub namespace: String,
    /// A service account key file; `None` uses Application Default Credentials
    /// (`GOOGLE_APPLICATION_CREDENTIALS`, gcloud's login, the metadata server). With
    /// `FIRESTORE_EMULATOR_HOST` set and no key file, no credentials are looked up.
    pub key_file: Option<PathBuf>,
    /// Bound on each call; past it the call fails with a `Timeout` error. Default 2 s.
    #[serde(with = "cache_core::raw::millis")]
    pub timeout: Duration,
    /// Bound on connecting and on the check of `build()`. Default 10 s.
    #[serde(with = "cache_core::raw::millis")]
    pub connect_timeout: Duration,
    /// How often a background task deletes this namespace's expired documents
    /// (`None`: never; rely on a TTL policy, see the README). On Firestore the sweep's
    /// query needs a composite index on (`ns`, `expires_at`). Default `None`.
    #[serde(with = "cache_core::raw::opt_millis")]
    pub sweep_interval: Option<Duration>,
    /// Largest value accepted, in bytes; larger is `InvalidInput`. Default and most
    /// 1 MiB − 8 KiB: Firestore's 1 MiB document limit less room for the rest.
    pub max_value_size: usize,
    /// The most that the clocks of two clients using the collection may disagree by.
    /// Firestore has no clock a precondition can compare with, so a lock's deadline is
    /// written with its holder's clock and judged with a contender's: a lock is taken
    /// over (and counted as abandoned by an application write, or the sweep) only once
    /// its deadline has passed by more than this on the contender's clock, so a
    /// contender whose clock runs ahead by less never takes a live lock. An abandoned
    /// lock is free this much later than its TTL. Default 1 s.
    #[serde(with = "cache_core::raw::millis")]
    pub max_clock_skew: Duration,
}

impl Default for FirestoreConfig {
    fn default() -> Self {
        FirestoreConfig {
            project_id: String::new(),
            database_id: "(default)".into(),
            collection: "cache_entries".into(),
            namespace: cache_core::raw::DEFAULT_NAMESPACE.into(),
            key_file: None,
            timeout: Duration::from_secs(2),
            connect_timeout: Duration::from_secs(10),
            sweep_interval: None,
            max_value_size: MAX_VALUE,
            max_clock_skew: Duration::from_secs(1),
        }
    }
}

impl FirestoreConfig {
    /// What a backend of these settings can do (known before it connects).
    pub(crate) fn capabilities(&self) -> Capabilities {
        Capabilities::networked(BACKEND, Some(MAX_KEY_LEN), self.max_value_size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loads_from_json_with_defaults() {
        let cfg: FirestoreConfig =
            serde_json::from_str(r#"{"project_id": "p", "timeout": 250}"#).unwrap();
        assert_eq!(cfg.project_id, "p");
        assert_eq!(cfg.database_id, "(default)");
        assert_eq!(cfg.timeout, Duration::from_millis(250));
        assert!(format!("{cfg:?}").contains("cache_entries"));
        assert_eq!(cfg.max_clock_skew, Duration::from_secs(1));
        let cfg: FirestoreConfig = serde_json::from_str(r#"{"max_clock_skew": 2500}"#).unwrap();
        assert_eq!(cfg.max_clock_skew, Duration::from_millis(2500));
    }
}
