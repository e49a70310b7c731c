//! Stale-while-revalidate, fail-safe, compute timeouts and early refresh, on a
//! [`ManualClock`]: freshness moves with the clock, not with sleeps. The store's own
//! TTLs are durations of a minute or more, so they never interfere.

use super::*;
use cache_core::{CacheBuilder, Clock, Codec, ManualClock};

const FRESH: Duration = Duration::from_secs(60);
const KEEP: Duration = Duration::from_secs(600);

fn clocked(backend: Arc<dyn CacheBackend>) -> (Cache, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new());
    let cache = CacheBuilder::from_arc(backend)
        .clock(clock.clone())
        .default_expiry(FRESH)
        .build();
    (cache, clock)
}

/// A compute that counts its calls and returns `v`.
fn counted(
    calls: &Arc<AtomicUsize>,
    v: u32,
) -> impl std::future::Future<Output = Result<u32, std::io::Error>> + Send + 'static {
    let calls = calls.clone();
    async move {
        calls.fetch_add(1, Ordering::SeqCst);
        Ok(v)
    }
}

fn failing(
    calls: &Arc<AtomicUsize>,
) -> impl std::future::Future<Output = Result<u32, std::io::Error>> + Send + 'static {
    let calls = calls.clone();
    async move {
        calls.fetch_add(1, Ordering::SeqCst);
        Err(std::io::Error::other("origin down"))
    }
}

async fn wait_for_value(cache: &Cache, key: &str, want: u32) {
    assert!(
        eventually(Duration::from_secs(10), || async {
            cache.get::<u32>(key).await.ok().flatten() == Some(want)
        })
        .await,
        "the background refresh never stored {want}"
    );
}

/// Past its expiry but within the stale window, a value is returned at once and
/// refreshed once in the background, however many callers ask meanwhile; plain
/// `get` never returns it stale.
pub async fn stale_while_revalidate_serves_stale_and_refreshes_once<H: Harness>(h: &H) {
    let (cache, clock) = clocked(fresh(h).await);
    let calls = counter();
    let first: u32 = cache
        .cached("k")
        .stale_while_revalidate(KEEP)
        .get_or_compute_detached({
            let c = calls.clone();
            move || counted(&c, 1)
        })
        .await
        .unwrap();
    assert_eq!(first, 1);
    clock.advance(FRESH + Duration::from_secs(1));
    assert_eq!(
        cache.get::<u32>("k").await.unwrap(),
        None,
        "plain get: stale is gone"
    );
    // The refresh waits on a gate, so every caller below sees it in progress.
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    for _ in 0..20 {
        let (calls, gate) = (calls.clone(), gate.clone());
        let v: u32 = cache
            .cached("k")
            .stale_while_revalidate(KEEP)
            .get_or_compute_detached(move || async move {
                calls.fetch_add(1, Ordering::SeqCst);
                let _permit = gate.acquire().await;
                Ok::<_, std::io::Error>(2)
            })
            .await
            .unwrap();
        assert_eq!(v, 1, "the stale value, at once");
    }
    gate.add_permits(100);
    wait_for_value(&cache, "k", 2).await;
    assert_eq!(
        calls.load(Ordering::SeqCst),
        2,
        "one refresh for 20 stale reads"
    );
}

/// With fail-safe, a failing compute returns the value kept past its expiry instead
/// of the error, and the origin is asked again once per throttle; past the fail-safe
/// window the error comes through.
pub async fn fail_safe_returns_the_kept_value_when_the_compute_fails<H: Harness>(h: &H) {
    let (cache, clock) = clocked(fresh(h).await);
    let calls = counter();
    let call = |compute: bool| {
        let (cache, calls) = (cache.clone(), calls.clone());
        async move {
            cache
                .cached("k")
                .fail_safe(KEEP)
                .get_or_compute(move || async move {
                    if compute {
                        counted(&calls, 1).await
                    } else {
                        failing(&calls).await
                    }
                })
                .await
        }
    };
    assert_eq!(call(true).await.unwrap(), 1);
    clock.advance(FRESH + Duration::from_secs(1));
    assert_eq!(
        cache.get::<u32>("k").await.unwrap(),
        None,
        "plain get: expired"
    );
    assert_eq!(
        call(false).await.unwrap(),
        1,
        "the kept value, not the error"
    );
    assert_eq!(calls.load(Ordering::SeqCst), 2, "the compute was tried");
    // Throttled: fresh again for the throttle (1 s), so the failing origin is not
    // asked on every call.
    for _ in 0..5 {
        assert_eq!(call(false).await.unwrap(), 1);
    }
    assert_eq!(
        calls.load(Ordering::SeqCst),
        2,
        "asked again within the throttle"
    );
    clock.advance(Duration::from_secs(2));
    assert_eq!(call(false).await.unwrap(), 1);
    assert_eq!(
        calls.load(Ordering::SeqCst),
        3,
        "asked again after the throttle"
    );
    clock.advance(KEEP);
    let err = call(false).await.unwrap_err();
    assert!(err.compute_error().is_some(), "past the window: {err}");
}

/// A compute past the hard timeout is given up: the kept value if there is one,
/// else `TimedOut`, and nothing is cached.
/// Store-agnostic: run once, by `cache-core` (see [`suite_once!`](crate::suite_once)).
pub async fn hard_timeout_gives_up_the_compute<H: Harness>(h: &H) {
    let (cache, clock) = clocked(fresh(h).await);
    let hard = Duration::from_millis(100);
    let never = || std::future::pending::<Result<u32, std::io::Error>>();
    let err = cache
        .cached("cold")
        .hard_timeout(hard)
        .get_or_compute(never)
        .await
        .unwrap_err();
    assert!(
        matches!(err, ComputeError::TimedOut(d) if d == hard),
        "{err}"
    );
    assert_eq!(cache.get::<u32>("cold").await.unwrap(), None);
    let calls = counter();
    let v: u32 = cache
        .cached("warm")
        .fail_safe(KEEP)
        .get_or_compute({
            let c = calls.clone();
            move || counted(&c, 5)
        })
        .await
        .unwrap();
    assert_eq!(v, 5);
    clock.advance(FRESH * 2);
    let v: u32 = cache
        .cached("warm")
        .fail_safe(KEEP)
        .hard_timeout(hard)
        .get_or_compute(never)
        .await
        .unwrap();
    assert_eq!(v, 5, "the fail-safe value after the hard timeout");
}

/// Past the soft timeout the kept value is returned; the compute goes on in the
/// background and its result is cached.
/// Store-agnostic: run once, by `cache-core` (see [`suite_once!`](crate::suite_once)).
pub async fn soft_timeout_serves_the_kept_value_and_caches_the_late_result<H: Harness>(h: &H) {
    let (cache, clock) = clocked(fresh(h).await);
    let calls = counter();
    let v: u32 = cache
        .cached("k")
        .fail_safe(KEEP)
        .get_or_compute_detached({
            let c = calls.clone();
            move || counted(&c, 1)
        })
        .await
        .unwrap();
    assert_eq!(v, 1);
    clock.advance(FRESH * 2);
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let started = Instant::now();
    let v: u32 = cache
        .cached("k")
        .fail_safe(KEEP)
        .soft_timeout(Duration::from_millis(100))
        .get_or_compute_detached({
            let gate = gate.clone();
            move || async move {
                let _permit = gate.acquire().await;
                Ok::<_, std::io::Error>(2)
            }
        })
        .await
        .unwrap();
    assert_eq!(v, 1, "the kept value after the soft timeout");
    assert!(started.elapsed() < Duration::from_secs(5));
    gate.add_permits(1);
    wait_for_value(&cache, "k", 2).await;
}

/// Early refresh (XFetch): far from expiry a value is never refreshed early; just
/// before it, almost always (probability e^-0.1 = 0.90 per key here; at least half
/// of the keys must refresh).
/// Store-agnostic: run once, by `cache-core` (see [`suite_once!`](crate::suite_once)).
pub async fn early_refresh_refreshes_near_expiry_only<H: Harness>(h: &H) {
    let (cache, clock) = clocked(fresh(h).await);
    // Fewer keys on slow servers (the suite runs its cases in parallel).
    let n = (40 / h.ttl_scale().max(1) as usize).max(10);
    let keys: Vec<String> = (0..n).map(|i| format!("k{i}")).collect();
    let took = Duration::from_millis(100);
    let get = |key: String, calls: Arc<AtomicUsize>, slow: bool| {
        let (cache, clock) = (cache.clone(), clock.clone());
        async move {
            cache
                .cached(key)
                .early_refresh(1.0)
                .get_or_compute_detached(move || async move {
                    if slow {
                        clock.advance(took); // the compute "takes" 100 ms on the clock
                    }
                    counted(&calls, 1).await
                })
                .await
                .unwrap()
        }
    };
    let writes = counter();
    let mut fresh_until = vec![];
    for k in &keys {
        get(k.clone(), writes.clone(), true).await;
        fresh_until.push(clock.now_ms() + FRESH.as_millis() as u64);
    }
    assert_eq!(writes.load(Ordering::SeqCst), keys.len());
    // Far (at least 55 s left, 550 times the compute): probability e^-550 each.
    let far = counter();
    for k in &keys {
        get(k.clone(), far.clone(), false).await;
    }
    tokio::task::yield_now().await;
    assert_eq!(
        far.load(Ordering::SeqCst),
        0,
        "refreshed early, far from expiry"
    );
    // Near: 10 ms before each key's expiry (a tenth of its compute time).
    let near = counter();
    for (k, until) in keys.iter().zip(&fresh_until) {
        let now = clock.now_ms();
        clock.advance(Duration::from_millis(
            until.saturating_sub(10).saturating_sub(now),
        ));
        get(k.clone(), near.clone(), false).await;
    }
    assert!(
        eventually(Duration::from_secs(10), || async {
            near.load(Ordering::SeqCst) >= keys.len() / 2
        })
        .await,
        "only {} of {} keys refreshed early just before expiry",
        near.load(Ordering::SeqCst),
        keys.len()
    );
}

/// Values written without a header (by `Cache::set`, another program, or a version
/// before headers) are hits for get-or-compute until the store expires them; never
/// errors.
pub async fn values_without_a_header_are_hits<H: Harness>(h: &H) {
    let backend = fresh(h).await;
    backend
        .set(
            "k",
            Bytes::from(MessagePack.encode(&7u32).unwrap()),
            Expiry::Never,
        )
        .await
        .unwrap();
    let (cache, _) = clocked(backend);
    cache.set("typed", &8u32, FRESH).await.unwrap();
    let calls = counter();
    for (key, want) in [("k", 7u32), ("typed", 8)] {
        let v: u32 = cache
            .cached(key)
            .stale_while_revalidate(KEEP)
            .get_or_compute({
                let c = calls.clone();
                move || counted(&c, 0)
            })
            .await
            .unwrap();
        assert_eq!(v, want);
    }
    assert_eq!(calls.load(Ordering::SeqCst), 0);
}
