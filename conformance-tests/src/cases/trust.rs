//! Trust the values: what get-or-compute writes never replaces what the application
//! wrote meanwhile, and a slow store does not multiply computes. On a [`ManualClock`]
//! where freshness matters; the store's own TTLs are a minute or more.

use super::*;
use cache_core::{CacheBuilder, ManualClock};

const FRESH: Duration = Duration::from_secs(60);
const KEEP: Duration = Duration::from_secs(600);

/// A value computed, then past its freshness (kept for fail-safe).
async fn kept_value<H: Harness>(h: &H) -> (Cache, Cache, Arc<ManualClock>) {
    let backend = fresh(h).await;
    let clock = Arc::new(ManualClock::new());
    let cache = CacheBuilder::from_arc(backend.clone())
        .clock(clock.clone())
        .default_expiry(FRESH)
        .fail_safe(KEEP)
        .build();
    let app = cache_of(backend);
    let v: u32 = cache
        .get_or_compute("k", || async { Ok::<_, std::io::Error>(1) })
        .await
        .unwrap();
    assert_eq!(v, 1);
    clock.advance(FRESH + Duration::from_secs(1));
    (cache, app, clock)
}

/// While a compute fails, the application writes a newer value: the fail-safe answer
/// is the kept value, and the store keeps the application's (the throttle writes
/// nothing back).
pub async fn trust_fail_safe_never_writes_over_an_app_set<H: Harness>(h: &H) {
    let (cache, app, _clock) = kept_value(h).await;
    let got: u32 = cache
        .get_or_compute("k", || {
            let app = app.clone();
            async move {
                app.set("k", &2u32, FRESH).await.unwrap();
                Err::<u32, _>(std::io::Error::other("origin down"))
            }
        })
        .await
        .expect("fail-safe answers");
    assert_eq!(got, 1, "the kept value, for the failed compute");
    assert_eq!(
        app.get::<u32>("k").await.unwrap(),
        Some(2),
        "the app's write stays"
    );
    let next: u32 = cache
        .get_or_compute("k", || async { Ok::<_, std::io::Error>(3) })
        .await
        .unwrap();
    assert_eq!(next, 2, "the app's value is what get-or-compute finds");
}

/// While a compute fails, the application deletes the key (its data changed): the
/// old value is not written back.
pub async fn trust_fail_safe_never_undoes_an_app_delete<H: Harness>(h: &H) {
    let (cache, app, _clock) = kept_value(h).await;
    let got: u32 = cache
        .get_or_compute("k", || {
            let app = app.clone();
            async move {
                app.delete("k").await.unwrap();
                Err::<u32, _>(std::io::Error::other("origin down"))
            }
        })
        .await
        .expect("fail-safe answers");
    assert_eq!(got, 1);
    assert_eq!(app.get::<u32>("k").await.unwrap(), None, "the delete stays");
}

/// A store slower than the call timeout: callers arriving one after another, whose
/// reads time out after the first flight ended, take its value instead of computing
/// again. One compute for the process.
pub async fn trust_a_slow_store_computes_once<H: Harness>(h: &H) {
    let slow = Arc::new(FaultyBackend::new(fresh(h).await));
    slow.set_delay(Duration::from_millis(300));
    let cache = CacheBuilder::from_arc(slow.clone())
        .timeout(Duration::from_millis(20))
        .default_expiry(FRESH)
        .build();
    let calls = counter();
    let mut tasks = Vec::new();
    for _ in 0..60 {
        tasks.push(spawn_counted(&cache, "k", &calls, Duration::ZERO, 7u32));
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), 7);
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1, "one compute per flight");
}

/// `clear` removes the namespace's values and leaves its held locks alone: a clear
/// during a compute must not let a second caller compute the same key.
pub async fn trust_clear_leaves_held_locks<H: Harness>(h: &H) {
    let store = fresh(h).await;
    let token = store
        .acquire_lock("k", Duration::from_secs(30))
        .await
        .unwrap()
        .expect("a free lock is taken");
    store.set("v", b("1"), Expiry::After(FRESH)).await.unwrap();
    store.clear().await.unwrap();
    assert_eq!(store.get("v").await.unwrap(), None, "values are cleared");
    assert!(
        store
            .acquire_lock("k", Duration::from_secs(30))
            .await
            .unwrap()
            .is_none(),
        "clear freed a held lock"
    );
    assert!(
        store.release_lock("k", &token).await.unwrap(),
        "the owner still holds it"
    );
    assert!(store
        .acquire_lock("k", Duration::from_secs(30))
        .await
        .unwrap()
        .is_some());
}
