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
/// Store-agnostic: run once, by `cache-core` (see [`suite_once!`](crate::suite_once)).
pub async fn trust_a_slow_store_computes_once<H: Harness>(h: &H) {
    let slow = Arc::new(FaultyBackend::new(fresh(h).await));
    slow.set_delay(Duration::from_millis(300));
    let cache = CacheBuilder::from_arc(slow.clone())
        .store_timeout(Duration::from_millis(20))
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

/// Two handles on one namespace, as two processes would have.
async fn two_handles<H: Harness>(h: &H) -> (Arc<dyn CacheBackend>, Arc<dyn CacheBackend>) {
    let ns = random_namespace();
    (open(h, &ns).await, open(h, &ns).await)
}

async fn lock(store: &Arc<dyn CacheBackend>) -> LockToken {
    store
        .acquire_lock("k", Duration::from_secs(30))
        .await
        .unwrap()
        .expect("a free lock is taken")
}

async fn lock_is_free(store: &Arc<dyn CacheBackend>) -> bool {
    match store
        .acquire_lock("k", Duration::from_secs(30))
        .await
        .unwrap()
    {
        Some(t) => {
            store.release_lock("k", &t).await.unwrap();
            true
        }
        None => false,
    }
}

/// The lock holder's write stores its value and frees the lock.
pub async fn trust_set_locked_stores_and_releases<H: Harness>(h: &H) {
    let (store, other) = two_handles(h).await;
    let token = lock(&store).await;
    assert!(store
        .set_locked("k", b("v"), Expiry::After(FRESH), &token)
        .await
        .unwrap());
    assert_eq!(other.get("k").await.unwrap(), Some(b("v")));
    assert!(lock_is_free(&other).await, "the write released the lock");
    assert!(
        !store.release_lock("k", &token).await.unwrap(),
        "released once"
    );
}

/// A holder whose lock expired and was taken by another caller writes nothing: the
/// newer holder's value stays.
pub async fn trust_set_locked_refused_after_the_lock_passed<H: Harness>(h: &H) {
    let (store, other) = two_handles(h).await;
    let (ttl, grace) = short_ttl(h, &*store);
    let late = store.acquire_lock("k", ttl).await.unwrap().expect("free");
    let deadline = Instant::now() + ttl + grace;
    let next = loop {
        let started = Instant::now();
        if let Some(t) = other.acquire_lock("k", FRESH).await.unwrap() {
            break t;
        }
        assert!(started < deadline, "the lock frees itself after its ttl");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(
        !store
            .set_locked("k", b("old"), Expiry::After(FRESH), &late)
            .await
            .unwrap(),
        "the late holder's write is refused"
    );
    assert_eq!(other.get("k").await.unwrap(), None);
    assert!(other
        .set_locked("k", b("new"), Expiry::After(FRESH), &next)
        .await
        .unwrap());
    assert_eq!(store.get("k").await.unwrap(), Some(b("new")));
}

/// What another handle may do to a key while its lock is held.
#[derive(Debug, Clone, Copy)]
enum AppWrite {
    Set,
    SetMany,
    SetIfAbsent,
    Delete,
    DeleteMany,
    Clear,
}

const APP_WRITES: [AppWrite; 6] = [
    AppWrite::Set,
    AppWrite::SetMany,
    AppWrite::SetIfAbsent,
    AppWrite::Delete,
    AppWrite::DeleteMany,
    AppWrite::Clear,
];

impl AppWrite {
    /// Do it through `store`; the value the key holds afterwards.
    async fn apply(self, store: &Arc<dyn CacheBackend>) -> Option<Bytes> {
        let e = Expiry::After(FRESH);
        match self {
            AppWrite::Set => store.set("k", b("app"), e).await.unwrap(),
            AppWrite::SetMany => store.set_many(&[("k", b("app"))], e).await.unwrap(),
            AppWrite::SetIfAbsent => assert!(store.set_if_absent("k", b("app"), e).await.unwrap()),
            AppWrite::Delete => drop(store.delete("k").await.unwrap()),
            AppWrite::DeleteMany => drop(store.delete_many(&["k"]).await.unwrap()),
            AppWrite::Clear => store.clear().await.unwrap(),
        }
        match self {
            AppWrite::Set | AppWrite::SetMany | AppWrite::SetIfAbsent => Some(b("app")),
            _ => None,
        }
    }
}

/// A `set`, `set_many`, `set_if_absent`, `delete`, `delete_many` or `clear` of another
/// handle while the lock is held overtakes it: the lock stays held (no second compute
/// starts), the holder's write stores nothing and frees it. Backends without
/// [`fenced_writes`](cache_core::Capabilities::fenced_writes) skip this case.
pub async fn trust_app_writes_overtake_a_held_lock<H: Harness>(h: &H) {
    for what in APP_WRITES {
        let (store, app) = two_handles(h).await;
        if !store.capabilities().fenced_writes {
            return;
        }
        let token = lock(&store).await;
        let expected = what.apply(&app).await;
        assert!(!lock_is_free(&app).await, "{what:?}: the lock stays held");
        assert!(
            !store
                .set_locked("k", b("computed"), Expiry::After(FRESH), &token)
                .await
                .unwrap(),
            "{what:?}: the holder's write is refused"
        );
        assert_eq!(app.get("k").await.unwrap(), expected, "{what:?} wins");
        assert!(lock_is_free(&app).await, "{what:?}: the holder freed it");
    }
}

/// The owner of an overtaken lock still releases it; nobody else does.
pub async fn trust_an_overtaken_lock_is_released_by_its_owner_only<H: Harness>(h: &H) {
    let (store, app) = two_handles(h).await;
    let token = lock(&store).await;
    app.set("k", b("app"), Expiry::After(FRESH)).await.unwrap();
    let stranger = LockToken::random();
    assert!(!app.release_lock("k", &stranger).await.unwrap());
    assert!(!app
        .set_locked("k", b("x"), Expiry::After(FRESH), &stranger)
        .await
        .unwrap());
    assert!(!lock_is_free(&app).await, "a stranger freed it");
    assert!(store.release_lock("k", &token).await.unwrap());
    assert!(lock_is_free(&app).await);
    assert_eq!(app.get("k").await.unwrap(), Some(b("app")));
}

/// Get-or-compute on one handle, the application on another (as another process):
/// a `set` or `delete` made while the compute runs is never overwritten by the
/// compute's write; the computed value still reaches its caller.
pub async fn trust_a_compute_never_overwrites_another_handles_write<H: Harness>(h: &H) {
    let (store, other) = two_handles(h).await;
    if !store.capabilities().fenced_writes {
        return;
    }
    let cache = CacheBuilder::from_arc(store).default_expiry(FRESH).build();
    let app = cache_of(other);
    for (key, delete) in [("set", false), ("delete", true)] {
        let got: u32 = cache
            .get_or_compute(key, || {
                let app = app.clone();
                async move {
                    if delete {
                        app.delete(key).await.unwrap();
                    } else {
                        app.set(key, &2u32, FRESH).await.unwrap();
                    }
                    Ok::<_, std::io::Error>(1)
                }
            })
            .await
            .unwrap();
        assert_eq!(got, 1, "{key}: the caller gets what it computed");
        let want = (!delete).then_some(2u32);
        assert_eq!(
            app.get::<u32>(key).await.unwrap(),
            want,
            "{key}: the app's write stays"
        );
    }
}

/// A compute that outlives its lock: another process takes the lock, computes newer
/// data and writes it; the late compute's older value is not written over it.
pub async fn trust_a_late_lock_holder_never_overwrites<H: Harness>(h: &H) {
    let (store, other) = two_handles(h).await;
    let (ttl, grace) = short_ttl(h, &*store);
    let cache = CacheBuilder::from_arc(store)
        .default_expiry(FRESH)
        .lock_ttl(ttl)
        .build();
    let newer = cache_of(other.clone());
    let got: u32 = cache
        .get_or_compute("k", || {
            let (other, newer) = (other.clone(), newer.clone());
            async move {
                // This compute outlives its lock: another process then computes.
                assert!(
                    eventually(ttl + grace, || {
                        let other = other.clone();
                        async move { lock_is_free(&other).await }
                    })
                    .await,
                    "the lock frees itself"
                );
                let v: u32 = newer
                    .get_or_compute("k", || async { Ok::<_, std::io::Error>(2) })
                    .await
                    .unwrap();
                assert_eq!(v, 2);
                Ok::<_, std::io::Error>(1)
            }
        })
        .await
        .unwrap();
    assert_eq!(got, 1);
    assert_eq!(
        newer.get::<u32>("k").await.unwrap(),
        Some(2),
        "the newer value stays"
    );
}

/// The holder's write with an expiry already past removes the value (as `set` does),
/// under the same fence: after another handle's write it removes nothing.
pub async fn trust_set_locked_with_a_past_expiry_removes_under_the_fence<H: Harness>(h: &H) {
    let (store, app) = two_handles(h).await;
    let past = Expiry::After(Duration::ZERO);
    app.set("k", b("old"), Expiry::After(FRESH)).await.unwrap();
    let token = lock(&store).await;
    store.set_locked("k", b("x"), past, &token).await.unwrap();
    assert_eq!(app.get("k").await.unwrap(), None, "the old value went");
    assert!(lock_is_free(&app).await);
    if !store.capabilities().fenced_writes {
        return;
    }
    let token = lock(&store).await;
    app.set("k", b("app"), Expiry::After(FRESH)).await.unwrap();
    assert!(!store.set_locked("k", b("x"), past, &token).await.unwrap());
    assert_eq!(
        app.get("k").await.unwrap(),
        Some(b("app")),
        "the app's write stays"
    );
    assert!(lock_is_free(&app).await);
}
