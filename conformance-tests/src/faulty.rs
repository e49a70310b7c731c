//! A wrapper backend that injects errors and delays on demand, to prove that
//! get-or-compute fails open and that callers survive a sick store.

use cache_core::{
    async_trait, Bytes, CacheBackend, Capabilities, Error, ErrorKind, Expiry, LockToken, Result,
};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Wraps a backend; every call first applies the configured delay, then fails with
/// an [`ErrorKind::Unavailable`] error while failing is on (or for the next N calls).
pub struct FaultyBackend {
    inner: Arc<dyn CacheBackend>,
    failing: AtomicBool,
    fail_next: AtomicUsize,
    delay_ms: AtomicU64,
    calls: AtomicUsize,
}

impl FaultyBackend {
    /// Wrap `inner`; no faults until asked.
    pub fn new(inner: Arc<dyn CacheBackend>) -> Self {
        FaultyBackend {
            inner,
            failing: AtomicBool::new(false),
            fail_next: AtomicUsize::new(0),
            delay_ms: AtomicU64::new(0),
            calls: AtomicUsize::new(0),
        }
    }
    /// Fail every call while `on`.
    pub fn set_failing(&self, on: bool) {
        self.failing.store(on, Ordering::SeqCst);
    }
    /// Fail the next `n` calls.
    pub fn fail_next(&self, n: usize) {
        self.fail_next.store(n, Ordering::SeqCst);
    }
    /// Delay every call by `d` (zero for none).
    pub fn set_delay(&self, d: Duration) {
        self.delay_ms.store(d.as_millis() as u64, Ordering::SeqCst);
    }
    /// How many calls reached this wrapper.
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    async fn fault(&self) -> Result<()> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let ms = self.delay_ms.load(Ordering::SeqCst);
        if ms > 0 {
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
        let once = self
            .fail_next
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if once || self.failing.load(Ordering::SeqCst) {
            return Err(Error::new(
                ErrorKind::Unavailable,
                "faulty",
                "injected fault",
            ));
        }
        Ok(())
    }
}

#[async_trait]
impl CacheBackend for FaultyBackend {
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }
    async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        self.fault().await?;
        self.inner.get(key).await
    }
    async fn set(&self, key: &str, value: Bytes, expiry: Expiry) -> Result<()> {
        self.fault().await?;
        self.inner.set(key, value, expiry).await
    }
    async fn set_locked(
        &self,
        key: &str,
        value: Bytes,
        expiry: Expiry,
        token: &LockToken,
    ) -> Result<bool> {
        self.fault().await?;
        self.inner.set_locked(key, value, expiry, token).await
    }
    async fn delete(&self, key: &str) -> Result<bool> {
        self.fault().await?;
        self.inner.delete(key).await
    }
    async fn has(&self, key: &str) -> Result<bool> {
        self.fault().await?;
        self.inner.has(key).await
    }
    async fn clear(&self) -> Result<()> {
        self.fault().await?;
        self.inner.clear().await
    }
    async fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<Bytes>>> {
        self.fault().await?;
        self.inner.get_many(keys).await
    }
    async fn set_many(&self, items: &[(&str, Bytes)], expiry: Expiry) -> Result<()> {
        self.fault().await?;
        self.inner.set_many(items, expiry).await
    }
    async fn delete_many(&self, keys: &[&str]) -> Result<usize> {
        self.fault().await?;
        self.inner.delete_many(keys).await
    }
    async fn set_if_absent(&self, key: &str, value: Bytes, expiry: Expiry) -> Result<bool> {
        self.fault().await?;
        self.inner.set_if_absent(key, value, expiry).await
    }
    async fn acquire_lock(&self, key: &str, ttl: Duration) -> Result<Option<LockToken>> {
        self.fault().await?;
        self.inner.acquire_lock(key, ttl).await
    }
    async fn release_lock(&self, key: &str, token: &LockToken) -> Result<bool> {
        self.fault().await?;
        self.inner.release_lock(key, token).await
    }
    async fn close(&self) -> Result<()> {
        self.inner.close().await
    }
}
