//! What `#[cached]` registers for each function: its key prefix and namespace, so that
//! two functions that would read each other's values fail instead (hidden; used by
//! the code the macro generates).

use crate::error::{Error, ErrorKind, Result};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

/// A prefix and namespace, and the functions that build keys from them.
struct Shared {
    collided: AtomicBool,
    sites: Mutex<Vec<&'static str>>,
    prefix: String,
}

/// One `#[cached]` function's registration.
#[doc(hidden)]
pub struct KeySite(Arc<Shared>);

static SITES: OnceLock<Mutex<HashMap<String, Arc<Shared>>>> = OnceLock::new();

impl KeySite {
    /// Register the function at `site` (module path and name) as building keys from
    /// `prefix` in the namespace written `namespace`: a second function registering
    /// the same pair makes both fail (see [`check`](Self::check)).
    pub fn register(prefix: &str, namespace: &str, site: &'static str) -> KeySite {
        let map = SITES.get_or_init(Mutex::default);
        let mut map = map.lock();
        let shared = map
            .entry(format!("{prefix}\u{0}{namespace}"))
            .or_insert_with(|| {
                Arc::new(Shared {
                    collided: AtomicBool::new(false),
                    sites: Mutex::new(Vec::new()),
                    prefix: prefix.to_owned(),
                })
            })
            .clone();
        let mut sites = shared.sites.lock();
        if !sites.contains(&site) {
            sites.push(site);
        }
        if sites.len() > 1 {
            shared.collided.store(true, Ordering::Release);
            tracing::error!(prefix, functions = ?*sites, "#[cached] functions share a key prefix and namespace; they refuse to run until one sets key_prefix");
        }
        drop(sites);
        KeySite(shared)
    }

    /// `Ok` unless another function builds keys from the same prefix and namespace:
    /// then a [`Config`](ErrorKind::Config) error naming both (one atomic load).
    #[inline]
    pub fn check(&self) -> Result<()> {
        if !self.0.collided.load(Ordering::Acquire) {
            return Ok(());
        }
        let sites = self.0.sites.lock().join(", ");
        Err(Error::new(
            ErrorKind::Config,
            "cached",
            format!(
                "#[cached] functions {sites} build keys from the same prefix {:?} in the same namespace, so each would read the other's values; give each its own `key_prefix = \"...\"` (or namespace)",
                self.0.prefix
            ),
        ))
    }
}
