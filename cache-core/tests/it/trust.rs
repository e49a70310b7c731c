//! Rules of "trust the values" that live in the core alone, on the in-process store:
//! early refresh under the defaults, a panicking compute, keys kept out of logs, and
//! header detection with any codec. Store-dependent rules are the conformance suite's
//! `trust` cases, run on every store.

use cache_core::{Cache, Codec, ComputeError, ManualClock, Result};
use cache_memory::MemoryBackend;
use serde::{de::DeserializeOwned, Serialize};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

fn memory() -> MemoryBackend {
    MemoryBackend::builder().build().unwrap()
}

/// Early refresh fires under the defaults (stampede protection on): the leader
/// picked early recomputes instead of finding the value it was picked to refresh.
#[tokio::test]
async fn early_refresh_recomputes_with_stampede_protection_on() {
    let clock = Arc::new(ManualClock::new());
    let cache = Cache::builder(memory())
        .clock(clock.clone())
        .early_refresh(1.0)
        .build();
    let computes = Arc::new(AtomicUsize::new(0));
    let call = || {
        let (cache, computes, clock) = (cache.clone(), computes.clone(), clock.clone());
        async move {
            cache
                .cached("k")
                .expiry(Duration::from_secs(10))
                .get_or_compute(|| async move {
                    computes.fetch_add(1, Ordering::SeqCst);
                    // The compute takes 100 ms, by the clock that XFetch reads.
                    clock.advance(Duration::from_millis(100));
                    Ok::<_, std::io::Error>(computes.load(Ordering::SeqCst))
                })
                .await
                .unwrap()
        }
    };
    assert_eq!(call().await, 1);
    // 10 ms before expiry: XFetch picks a caller with probability ~0.9 per call.
    clock.advance(Duration::from_millis(10_000 - 100 - 10));
    for _ in 0..20 {
        call().await;
    }
    assert!(
        computes.load(Ordering::SeqCst) >= 2,
        "20 calls 10 ms before expiry refreshed nothing"
    );
}

/// A panicking compute runs once: the waiters get an error, the leader's caller the panic.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_compute_runs_once_and_reaches_every_waiter() {
    let cache = Cache::new(memory());
    let runs = Arc::new(AtomicUsize::new(0));
    let started = Arc::new(tokio::sync::Notify::new());
    let leader = {
        let (cache, runs, started) = (cache.clone(), runs.clone(), started.clone());
        tokio::spawn(async move {
            cache
                .get_or_compute::<u32, std::io::Error, _>("k", || async move {
                    runs.fetch_add(1, Ordering::SeqCst);
                    started.notify_one();
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    panic!("compute panicked (expected by the test)");
                })
                .await
        })
    };
    started.notified().await;
    let waiters: Vec<_> = (0..10)
        .map(|_| {
            let (cache, runs) = (cache.clone(), runs.clone());
            tokio::spawn(async move {
                cache
                    .get_or_compute::<u32, std::io::Error, _>("k", || async move {
                        runs.fetch_add(1, Ordering::SeqCst);
                        panic!("a waiter's compute ran (expected not to)");
                    })
                    .await
            })
        })
        .collect();
    assert!(
        leader.await.unwrap_err().is_panic(),
        "the leader's caller gets the panic"
    );
    for w in waiters {
        let got = w.await.expect("a waiter must not panic");
        assert!(
            matches!(&got, Err(ComputeError::Panicked(m)) if m.contains("expected by the test")),
            "{got:?}"
        );
    }
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    // The next call runs the compute again.
    let v: u32 = cache
        .get_or_compute("k", || async { Ok::<_, std::io::Error>(3) })
        .await
        .unwrap();
    assert_eq!(v, 3);
}

/// Log lines as text, captured.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A store that is down: every call fails.
struct Down;

#[cache_core::async_trait]
impl cache_core::CacheBackend for Down {
    fn capabilities(&self) -> cache_core::Capabilities {
        cache_core::Capabilities::new("down")
    }
    async fn get(&self, _: &str) -> Result<Option<cache_core::Bytes>> {
        Err(cache_core::Error::new(
            cache_core::ErrorKind::Unavailable,
            "down",
            "down",
        ))
    }
    async fn set(&self, _: &str, _: cache_core::Bytes, _: cache_core::Expiry) -> Result<()> {
        Err(cache_core::Error::new(
            cache_core::ErrorKind::Unavailable,
            "down",
            "down",
        ))
    }
    async fn delete(&self, _: &str) -> Result<bool> {
        Ok(false)
    }
    async fn clear(&self) -> Result<()> {
        Ok(())
    }
    async fn set_if_absent(
        &self,
        _: &str,
        _: cache_core::Bytes,
        _: cache_core::Expiry,
    ) -> Result<bool> {
        Ok(false)
    }
    async fn acquire_lock(&self, _: &str, _: Duration) -> Result<Option<cache_core::LockToken>> {
        Err(cache_core::Error::new(
            cache_core::ErrorKind::Unavailable,
            "down",
            "down",
        ))
    }
    async fn release_lock(&self, _: &str, _: &cache_core::LockToken) -> Result<bool> {
        Ok(false)
    }
    async fn close(&self) -> Result<()> {
        Ok(())
    }
}

/// Keys reach the fail-open warnings only with `trace_keys(true)`; a digest otherwise.
#[test]
fn keys_are_logged_only_when_asked() {
    let secret = "reset-token=s3cr3t&email=ada@example.com";
    for trace_keys in [false, true] {
        let out = Captured::default();
        let writer = out.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let cache = Cache::builder(Down).trace_keys(trace_keys).build();
                let v: u32 = cache
                    .get_or_compute(secret, || async { Ok::<_, std::io::Error>(1) })
                    .await
                    .unwrap();
                assert_eq!(v, 1);
            });
        });
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        assert!(text.contains("continuing without the cache"), "{text}");
        assert_eq!(
            text.contains("s3cr3t"),
            trace_keys,
            "trace_keys({trace_keys}): {text}"
        );
        if !trace_keys {
            assert!(text.contains("key=#"), "a digest stands in: {text}");
        }
    }
}

/// A codec whose bytes start with 0xC1 (the header's mark), as a custom codec may.
#[derive(Clone)]
struct Marked;

impl Codec for Marked {
    fn name(&self) -> &'static str {
        "marked"
    }
    fn encode<T: Serialize + ?Sized>(&self, value: &T) -> Result<Vec<u8>> {
        let mut out = vec![0xC1, 0x01];
        out.extend(serde_json::to_vec(value).unwrap());
        out.extend([0u8; 40]);
        Ok(out)
    }
    fn decode<T: DeserializeOwned>(&self, bytes: &[u8]) -> Result<T> {
        let body = bytes
            .strip_prefix(&[0xC1, 0x01])
            .and_then(|b| b.strip_suffix(&[0u8; 40]))
            .ok_or_else(|| cache_core::Error::invalid_input("marked", "not marked"))?;
        serde_json::from_slice(body)
            .map_err(|e| cache_core::Error::invalid_input("marked", e.to_string()))
    }
}

/// Values of such a codec are read back whole, by `get` and by get-or-compute.
#[tokio::test]
async fn a_codec_whose_bytes_look_like_the_header_is_read_right() {
    let cache = Cache::builder(memory()).codec(Marked).build();
    cache
        .set("k", &"hello".to_owned(), Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(
        cache.get::<String>("k").await.unwrap().as_deref(),
        Some("hello")
    );
    let v: String = cache
        .get_or_compute("k", || async {
            Ok::<_, std::io::Error>("computed".to_owned())
        })
        .await
        .unwrap();
    assert_eq!(v, "hello", "a hit, not a miss");
}

/// A write or delete by this process while a compute runs wins: the computed value is
/// returned to its callers but not stored (the process's own fence; across processes
/// the store's fenced write is the conformance suite's).
#[tokio::test]
async fn this_process_writes_during_a_compute_win() {
    let cache = Cache::new(memory());
    for delete in [false, true] {
        let key = if delete { "deleted" } else { "written" };
        let got: u32 = cache
            .get_or_compute(key, || {
                let cache = cache.clone();
                async move {
                    if delete {
                        cache.delete(key).await.unwrap();
                    } else {
                        cache
                            .set(key, &2u32, Duration::from_secs(60))
                            .await
                            .unwrap();
                    }
                    Ok::<_, std::io::Error>(1)
                }
            })
            .await
            .unwrap();
        assert_eq!(got, 1, "the compute's callers get its value");
        let stored = cache.get::<u32>(key).await.unwrap();
        assert_eq!(stored, if delete { None } else { Some(2) }, "{key}");
    }
}

/// A compute closure that panics before it returns its future also runs once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closure_that_panics_at_once_runs_once() {
    let cache = Cache::new(memory());
    let runs = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let (cache, runs) = (cache.clone(), runs.clone());
            tokio::spawn(async move {
                cache
                    .get_or_compute::<u32, std::io::Error, _>("k", || {
                        runs.fetch_add(1, Ordering::SeqCst);
                        std::thread::sleep(Duration::from_millis(50));
                        panic!("before the future (expected by the test)");
                        #[allow(unreachable_code)]
                        async {
                            Ok(1)
                        }
                    })
                    .await
            })
        })
        .collect();
    let mut panicked = 0;
    for t in tasks {
        match t.await {
            Err(e) if e.is_panic() => panicked += 1,
            Ok(Err(ComputeError::Panicked(_))) => {}
            other => panic!("unexpected: {other:?}"),
        }
    }
    assert_eq!(panicked, 1);
    assert_eq!(runs.load(Ordering::SeqCst), 1);
}

/// The memory store, recording the expiry of every write.
struct Recording {
    inner: MemoryBackend,
    seen: Mutex<Vec<cache_core::Expiry>>,
}

#[cache_core::async_trait]
impl cache_core::CacheBackend for Recording {
    fn capabilities(&self) -> cache_core::Capabilities {
        self.inner.capabilities()
    }
    async fn get(&self, k: &str) -> Result<Option<cache_core::Bytes>> {
        self.inner.get(k).await
    }
    async fn set(&self, k: &str, v: cache_core::Bytes, e: cache_core::Expiry) -> Result<()> {
        self.seen.lock().unwrap().push(e);
        self.inner.set(k, v, e).await
    }
    async fn set_locked(
        &self,
        k: &str,
        v: cache_core::Bytes,
        e: cache_core::Expiry,
        t: &cache_core::LockToken,
    ) -> Result<bool> {
        self.seen.lock().unwrap().push(e);
        self.inner.set_locked(k, v, e, t).await
    }
    async fn delete(&self, k: &str) -> Result<bool> {
        self.inner.delete(k).await
    }
    async fn clear(&self) -> Result<()> {
        self.inner.clear().await
    }
    async fn set_if_absent(
        &self,
        k: &str,
        v: cache_core::Bytes,
        e: cache_core::Expiry,
    ) -> Result<bool> {
        self.inner.set_if_absent(k, v, e).await
    }
    async fn acquire_lock(&self, k: &str, d: Duration) -> Result<Option<cache_core::LockToken>> {
        self.inner.acquire_lock(k, d).await
    }
    async fn release_lock(&self, k: &str, t: &cache_core::LockToken) -> Result<bool> {
        self.inner.release_lock(k, t).await
    }
    async fn close(&self) -> Result<()> {
        self.inner.close().await
    }
}

/// An absolute expiry reaches the store as a deadline (Redis's `PXAT`), moved by what
/// fail-safe keeps past it; a relative one as a duration.
#[tokio::test]
async fn an_absolute_expiry_stays_absolute() {
    use cache_core::{CacheBackend, Expiry};
    use std::time::SystemTime;
    let rec = Arc::new(Recording {
        inner: memory(),
        seen: Mutex::new(Vec::new()),
    });
    let at = SystemTime::now() + Duration::from_secs(600);
    let keep = Duration::from_secs(3600);
    let plain = Cache::from_arc(rec.clone() as Arc<dyn CacheBackend>);
    let kept = cache_core::CacheBuilder::from_arc(rec.clone() as Arc<dyn CacheBackend>)
        .fail_safe(keep)
        .build();
    let one = || async { Ok::<_, std::io::Error>(1u32) };
    let _: u32 = plain
        .cached("a")
        .expiry(Expiry::At(at))
        .get_or_compute(one)
        .await
        .unwrap();
    let _: u32 = kept
        .cached("b")
        .expiry(Expiry::At(at))
        .get_or_compute(one)
        .await
        .unwrap();
    plain.set("c", &1u32, Expiry::At(at)).await.unwrap();
    let _: u32 = plain
        .cached("d")
        .expiry(Duration::from_secs(5))
        .get_or_compute(one)
        .await
        .unwrap();
    let seen = rec.seen.lock().unwrap().clone();
    assert_eq!(
        seen,
        vec![
            Expiry::At(at),
            Expiry::At(at + keep),
            Expiry::At(at),
            Expiry::After(Duration::from_secs(5)),
        ]
    );
}

/// Freshness is resolved once, on the cache's clock, rounded up: 1.5 ms is fresh for
/// 2 ms, never 1; and an absolute deadline already past on the cache's clock is not
/// fresh, whatever the system's clock says.
#[tokio::test]
async fn expiry_is_resolved_once_on_the_cache_clock_rounded_up() {
    use cache_core::Expiry;
    use std::time::SystemTime;
    let clock = Arc::new(ManualClock::new());
    let cache = Cache::builder(memory()).clock(clock.clone()).build();
    let computes = Arc::new(AtomicUsize::new(0));
    let counted = |key: &'static str, expiry: Expiry| {
        let (cache, computes) = (cache.clone(), computes.clone());
        async move {
            let v: u32 = cache
                .cached(key)
                .expiry(expiry)
                .get_or_compute(move || async move {
                    computes.fetch_add(1, Ordering::SeqCst);
                    Ok::<_, std::io::Error>(1u32)
                })
                .await
                .unwrap();
            v
        }
    };
    counted("short", Expiry::After(Duration::from_micros(1500))).await;
    clock.advance(Duration::from_millis(1));
    counted("short", Expiry::After(Duration::from_micros(1500))).await;
    assert_eq!(computes.load(Ordering::SeqCst), 1, "fresh 1 ms later");
    // The cache's clock runs an hour ahead of the system's: a deadline ten minutes
    // from the system's now has passed for the cache.
    clock.advance(Duration::from_secs(3600));
    let at = Expiry::At(SystemTime::now() + Duration::from_secs(600));
    counted("ahead", at).await;
    counted("ahead", at).await;
    assert_eq!(
        computes.load(Ordering::SeqCst),
        3,
        "never fresh on the cache's clock"
    );
}

/// A caller whose lock wait elapsed (another process holds the lock) computes for
/// itself but stores nothing: its value could be older than a write made meanwhile.
#[tokio::test]
async fn a_caller_without_the_lock_never_stores() {
    use cache_core::CacheBackend;
    let store: Arc<dyn CacheBackend> = Arc::new(memory());
    let other = store
        .acquire_lock("k", Duration::from_secs(30))
        .await
        .unwrap()
        .expect("free");
    let cache = cache_core::CacheBuilder::from_arc(store.clone())
        .lock_wait(Duration::from_millis(30))
        .build();
    let app = Cache::from_arc(store.clone());
    let got: u32 = cache
        .get_or_compute("k", || {
            let app = app.clone();
            async move {
                app.set("k", &2u32, Duration::from_secs(60)).await.unwrap();
                Ok::<_, std::io::Error>(1)
            }
        })
        .await
        .unwrap();
    assert_eq!(got, 1, "the caller gets its value");
    assert_eq!(
        app.get::<u32>("k").await.unwrap(),
        Some(2),
        "the app's write stays"
    );
    assert!(
        store.release_lock("k", &other).await.unwrap(),
        "the lock is still the other's"
    );
}

/// A caller that joins a compute after another process deleted the key gets a value
/// computed after the delete, not the flight's older one (whose write the delete
/// refused); the flight's own caller, who asked before the delete, gets its value.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn followers_of_a_superseded_compute_look_again() {
    use cache_core::CacheBackend;
    let store: Arc<dyn CacheBackend> = Arc::new(memory());
    let cache = Cache::from_arc(store.clone());
    let app = Cache::from_arc(store.clone());
    let (go, wait) = tokio::sync::oneshot::channel::<()>();
    let leader = {
        let cache = cache.clone();
        tokio::spawn(async move {
            cache
                .get_or_compute("k", || async move {
                    wait.await.unwrap();
                    Ok::<u32, std::io::Error>(1)
                })
                .await
                .unwrap()
        })
    };
    // The leader holds the lock and computes; another process deletes the key.
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(
        store
            .acquire_lock("k", Duration::from_secs(1))
            .await
            .unwrap()
            .is_none(),
        "the leader holds the lock"
    );
    app.delete("k").await.unwrap();
    let follower = {
        let cache = cache.clone();
        tokio::spawn(async move {
            cache
                .get_or_compute("k", || async { Ok::<u32, std::io::Error>(2) })
                .await
                .unwrap()
        })
    };
    tokio::time::sleep(Duration::from_millis(20)).await;
    go.send(()).unwrap();
    assert_eq!(leader.await.unwrap(), 1, "the leader's caller asked first");
    assert_eq!(
        follower.await.unwrap(),
        2,
        "the follower asked after the delete"
    );
    assert_eq!(app.get::<u32>("k").await.unwrap(), Some(2));
}

/// A caller that joins a failing compute after another process deleted the key does
/// not get the leader's fail-safe value (read before the delete): it has none of its
/// own, so it gets the error. The leader's caller gets its fail-safe value.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn followers_of_a_failed_compute_use_their_own_fail_safe_value() {
    use cache_core::CacheBackend;
    let store: Arc<dyn CacheBackend> = Arc::new(memory());
    let clock = Arc::new(ManualClock::new());
    let cache = cache_core::CacheBuilder::from_arc(store.clone())
        .clock(clock.clone())
        .default_expiry(Duration::from_secs(60))
        .fail_safe(Duration::from_secs(600))
        .build();
    let app = Cache::from_arc(store.clone());
    let _: u32 = cache
        .get_or_compute("k", || async { Ok::<u32, std::io::Error>(1) })
        .await
        .unwrap();
    clock.advance(Duration::from_secs(61));
    let (go, wait) = tokio::sync::oneshot::channel::<()>();
    let leader = {
        let cache = cache.clone();
        tokio::spawn(async move {
            cache
                .get_or_compute("k", || async move {
                    wait.await.unwrap();
                    Err::<u32, _>(std::io::Error::other("origin down"))
                })
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(20)).await;
    app.delete("k").await.unwrap();
    let follower = {
        let cache = cache.clone();
        tokio::spawn(async move {
            cache
                .get_or_compute("k", || async { Ok::<u32, std::io::Error>(2) })
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(20)).await;
    go.send(()).unwrap();
    assert_eq!(
        leader.await.unwrap().unwrap(),
        1,
        "the leader's own fail-safe value"
    );
    assert!(
        follower.await.unwrap().is_err(),
        "the follower read nothing after the delete: the flight's error, not its old value"
    );
}

/// A compute whose write is refused (here: it outlives its lock) does not make each
/// waiting caller compute in turn: callers that asked before it began look again once,
/// and the next compute's value serves them all, stored or not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_write_costs_at_most_one_more_compute() {
    let cache = Cache::builder(memory())
        .lock_ttl(Duration::from_millis(30))
        .build();
    let computes = Arc::new(AtomicUsize::new(0));
    let calls: Vec<_> = (0..8)
        .map(|_| {
            let (cache, computes) = (cache.clone(), computes.clone());
            tokio::spawn(async move {
                let v: u32 = cache
                    .get_or_compute("k", move || async move {
                        computes.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        Ok::<_, std::io::Error>(1)
                    })
                    .await
                    .unwrap();
                v
            })
        })
        .collect();
    for c in calls {
        assert_eq!(c.await.unwrap(), 1);
    }
    assert!(
        computes.load(Ordering::SeqCst) <= 2,
        "{} computes for 8 callers",
        computes.load(Ordering::SeqCst)
    );
}
