//! A tiny backend written the way a user would write one, with store logic only (the
//! checking layer in `cache-core` enforces keys, values, batches and the closed
//! state), run through the whole suite with two lines at the bottom.

use cache_core::raw::{KeyKind, KeyLayout, Ttl};
use cache_core::{async_trait, Bytes, CacheBackend, Capabilities, Expiry, LockToken, Result};
use conformance_tests::Harness;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

type Store = Arc<Mutex<HashMap<String, (Bytes, Option<Instant>)>>>;

struct TinyBackend {
    store: Store,
    namespace: String,
}

impl TinyBackend {
    fn key(&self, kind: KeyKind, key: &str) -> String {
        KeyLayout::ANY.key(&self.namespace, kind, key).to_string()
    }

    fn live(entry: Option<&(Bytes, Option<Instant>)>) -> Option<&Bytes> {
        entry
            .filter(|(_, exp)| exp.is_none_or(|t| t > Instant::now()))
            .map(|(v, _)| v)
    }

    fn put(&self, k: String, value: Bytes, expiry: Expiry, only_if_absent: bool) -> bool {
        let mut map = self.store.lock().unwrap();
        if only_if_absent && Self::live(map.get(&k)).is_some() {
            return false;
        }
        let expires_at = match expiry.ttl() {
            Ttl::Forever => None,
            // Too far out to represent: as good as no expiry.
            Ttl::For(d) => Instant::now().checked_add(d),
            Ttl::Expired => {
                map.remove(&k);
                return false;
            }
        };
        map.insert(k, (value, expires_at));
        true
    }
}

#[async_trait]
impl CacheBackend for TinyBackend {
    fn capabilities(&self) -> Capabilities {
        Capabilities::new("tiny").max_value_size(Some(1024 * 1024))
    }
    async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        let k = self.key(KeyKind::Value, key);
        Ok(Self::live(self.store.lock().unwrap().get(&k)).cloned())
    }
    async fn set(&self, key: &str, value: Bytes, expiry: Expiry) -> Result<()> {
        self.put(self.key(KeyKind::Value, key), value, expiry, false);
        Ok(())
    }
    async fn delete(&self, key: &str) -> Result<bool> {
        let removed = self
            .store
            .lock()
            .unwrap()
            .remove(&self.key(KeyKind::Value, key));
        Ok(Self::live(removed.as_ref()).is_some())
    }
    async fn clear(&self) -> Result<()> {
        // The namespace's values go; its held locks stay.
        let prefix = KeyLayout::namespace_prefix(&self.namespace);
        self.store.lock().unwrap().retain(|k, _| {
            !k.starts_with(&prefix) || KeyLayout::is_lock_key(&self.namespace, k.as_bytes())
        });
        Ok(())
    }
    async fn set_if_absent(&self, key: &str, value: Bytes, expiry: Expiry) -> Result<bool> {
        Ok(self.put(self.key(KeyKind::Value, key), value, expiry, true))
    }
    async fn acquire_lock(&self, key: &str, ttl: Duration) -> Result<Option<LockToken>> {
        let token = LockToken::random();
        let stored = Bytes::copy_from_slice(token.as_str().as_bytes());
        let won = self.put(self.key(KeyKind::Lock, key), stored, ttl.into(), true);
        Ok(won.then_some(token))
    }
    async fn release_lock(&self, key: &str, token: &LockToken) -> Result<bool> {
        let k = self.key(KeyKind::Lock, key);
        let mut map = self.store.lock().unwrap();
        let owned = Self::live(map.get(&k)).is_some_and(|v| v == token.as_str().as_bytes());
        if owned {
            map.remove(&k);
        }
        Ok(owned)
    }
    async fn close(&self) -> Result<()> {
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
        })
    }
}

conformance_tests::suite!(TinyHarness::default());
