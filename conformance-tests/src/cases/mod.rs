//! One public async function per behaviour, in modules by theme. Each panics with a
//! message on failure. Every `pub async fn name<H: Harness>(h: &H)` in a file of this
//! folder is a case: the build script lists them for [`suite!`](crate::suite), so a new
//! case (or a new theme file, declared below) needs no second list.
//!
//! Backends reach the cases through the [`Checked`] layer, as they reach a
//! [`Cache`]: the cases prove what only the store can (isolation, atomicity, expiry)
//! and that the contract holds end to end.

pub mod atomic;
pub mod batch;
pub mod compute;
pub mod expiry;
pub mod keys;
pub mod lifecycle;
pub mod resilience;
pub mod store;
pub mod trust;

pub use atomic::*;
pub use batch::*;
pub use compute::*;
pub use expiry::*;
pub use keys::*;
pub use lifecycle::*;
pub use resilience::*;
pub use store::*;
pub use trust::*;

use crate::{random_namespace, FaultyBackend, Harness};
use cache_core::raw::MAX_KEY_LEN;
use cache_core::{
    Bytes, Cache, CacheBackend, Checked, ComputeError, ErrorKind, Expiry, LockToken, MessagePack,
};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::time::Instant;

/// The harness's backend on `namespace`, behind the checking layer.
async fn open<H: Harness>(h: &H, namespace: &str) -> Arc<dyn CacheBackend> {
    Arc::new(Checked::new(h.backend(namespace).await))
}

async fn fresh<H: Harness>(h: &H) -> Arc<dyn CacheBackend> {
    open(h, &random_namespace()).await
}

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

/// A TTL the backend can honour, and how long after it the value must be gone.
fn short_ttl<H: Harness>(h: &H, backend: &dyn CacheBackend) -> (Duration, Duration) {
    let p = backend.capabilities().ttl_precision;
    let (ttl, grace) = if p <= Duration::from_millis(1) {
        (Duration::from_millis(500), Duration::from_millis(1500))
    } else {
        (p * 2, p + Duration::from_millis(1500))
    };
    let scale = h.ttl_scale().max(1);
    (ttl * scale, grace * scale)
}

/// Poll `f` until it returns true or `within` passes; false on timeout. The last
/// check always starts after the deadline: a slow server that answers a check sent
/// before the deadline only after it cannot fail the case early.
async fn eventually<F, Fut>(within: Duration, mut f: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    loop {
        let started = Instant::now();
        if f().await {
            return true;
        }
        if started >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn cache_of(backend: Arc<dyn CacheBackend>) -> Cache<MessagePack> {
    Cache::from_arc(backend)
}

type Counter = Arc<AtomicUsize>;

fn counter() -> Counter {
    Arc::new(AtomicUsize::new(0))
}

/// Spawn a get-or-compute of `key` whose compute counts itself in `calls`, takes
/// `delay` and returns `value`; the task yields the value the caller got.
fn spawn_counted<T>(
    cache: &Cache,
    key: &'static str,
    calls: &Counter,
    delay: Duration,
    value: T,
) -> tokio::task::JoinHandle<T>
where
    T: serde::Serialize + serde::de::DeserializeOwned + Clone + Send + Sync + 'static,
{
    let (cache, calls) = (cache.clone(), calls.clone());
    tokio::spawn(async move {
        cache
            .get_or_compute(key, || async move {
                calls.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(delay).await;
                Ok::<_, std::io::Error>(value)
            })
            .await
            .expect("the compute does not fail")
    })
}

fn invalid<T: std::fmt::Debug>(r: cache_core::Result<T>, what: &str) {
    match r {
        Err(e) => assert_eq!(e.kind(), ErrorKind::InvalidInput, "{what}: {e}"),
        Ok(v) => panic!("{what} was accepted: {v:?}"),
    }
}
