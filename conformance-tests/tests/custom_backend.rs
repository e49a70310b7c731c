//! A tiny backend written the way a user would write one, outside the workspace
//! crates' internals, run through the whole suite with two lines at the bottom.

use cache_core::key::validate_key;
use cache_core::{
    async_trait, Bytes, CacheBackend, Capabilities, Error, Expiry, LockToken, Result, Ttl,
};
use conformance_tests::Harness;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

type Store = Arc<Mutex<HashMap<(String, String), (Bytes, Option<Instant>)>>>;

struct TinyBackend {
    store: Store,
    namespace: String,
    closed: AtomicBool,
}

const NAME: &str = "tiny";
const MAX_VALUE: usize = 1024 * 1024;

impl TinyBackend {
    /// Validate the call and build the map key; `lock` keys live apart from values.
    fn key(&self, key: &str, lock: bool) -> Result<(String, String)> {
        if self.closed.load(Ordering::SeqCst) {
            return Err(Error::closed(NAME));
        }
        validate_key(NAME, key)?;
        let ns = if lock {
            format!("{}\u{1}", self.namespace)
        } else {
            self.namespace.clone()
        };
        Ok((ns, key.to_owned()))
    }

    fn live(entry: Option<&(Bytes, Option<Instant>)>) -> Option<&Bytes> {
        entry
            .filter(|(_, exp)| exp.is_none_or(|t| t > Instant::now()))
            .map(|(v, _)| v)
    }

    fn put(
        &self,
        k: (String, String),
        value: Bytes,
        expiry: Expiry,
        only_if_absent: bool,
    ) -> Result<bool> {
        if value.len() > MAX_VALUE {
            return Err(Error::invalid_input(NAME, "value too large"));
        }
        let mut map = self.store.lock().unwrap();
        if only_if_absent && Self::live(map.get(&k)).is_some() {
            return Ok(false);
        }
        match expiry.ttl() {
            Ttl::Expired => {
                map.remove(&k);
                Ok(false)
            }
            Ttl::Forever => {
                map.insert(k, (value, None));
                Ok(true)
            }
            Ttl::For(d) => {
                // Too far out to represent: as good as no expiry.
                map.insert(k, (value, Instant::now().checked_add(d)));
                Ok(true)
            }
        }
    }
}

#[async_trait]
impl CacheBackend for TinyBackend {
    fn capabilities(&self) -> Capabilities {
        Capabilities::new(NAME).max_value_size(Some(MAX_VALUE))
    }
    async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        let k = self.key(key, false)?;
        Ok(Self::live(self.store.lock().unwrap().get(&k)).cloned())
    }
    async fn set(&self, key: &str, value: Bytes, expiry: Expiry) -> Result<()> {
        self.put(self.key(key, false)?, value, expiry, false)
            .map(|_| ())
    }
    async fn delete(&self, key: &str) -> Result<bool> {
        let k = self.key(key, false)?;
        let removed = self.store.lock().unwrap().remove(&k);
        Ok(Self::live(removed.as_ref()).is_some())
    }
    async fn clear(&self) -> Result<()> {
        if self.closed.load(Ordering::SeqCst) {
            return Err(Error::closed(NAME));
        }
        self.store
            .lock()
            .unwrap()
            .retain(|(ns, _), _| ns != &self.namespace);
        Ok(())
    }
    async fn set_if_absent(&self, key: &str, value: Bytes, expiry: Expiry) -> Result<bool> {
        self.put(self.key(key, false)?, value, expiry, true)
    }
    async fn acquire_lock(&self, key: &str, ttl: Duration) -> Result<Option<LockToken>> {
        let token = LockToken::random();
        let stored = Bytes::copy_from_slice(token.as_str().as_bytes());
        let won = self.put(self.key(key, true)?, stored, Expiry::After(ttl), true)?;
        Ok(won.then_some(token))
    }
    async fn release_lock(&self, key: &str, token: &LockToken) -> Result<bool> {
        let k = self.key(key, true)?;
        let mut map = self.store.lock().unwrap();
        if Self::live(map.get(&k)).is_some_and(|v| v == token.as_str().as_bytes()) {
            map.remove(&k);
            return Ok(true);
        }
        Ok(false)
    }
    async fn close(&self) -> Result<()> {
        self.closed.store(true, Ordering::SeqCst);
        Ok(())
    }
}

#[derive(Default)]
struct TinyHarness {
    store: Store,
}

#[async_trait]
impl Harness for TinyHarness {
    async fn backend(&self, namespace: &str) -> Arc<dyn CacheBackend> {
        Arc::new(TinyBackend {
            store: self.store.clone(),
            namespace: namespace.to_owned(),
            closed: AtomicBool::new(false),
        })
    }
}

conformance_tests::suite!(TinyHarness::default());
