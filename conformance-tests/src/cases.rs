//! One public async function per behaviour. Each panics with a message on failure.

use crate::{random_namespace, FaultyBackend, Harness};
use cache_core::key::MAX_KEY_LEN;
use cache_core::{Bytes, Cache, CacheBackend, ComputeError, ErrorKind, Expiry, MessagePack};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::time::Instant;

async fn fresh<H: Harness>(h: &H) -> Arc<dyn CacheBackend> {
    h.backend(&random_namespace()).await
}

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

/// A TTL the backend can honour, and how long after it the value must be gone.
fn short_ttl(backend: &dyn CacheBackend) -> (Duration, Duration) {
    let p = backend.capabilities().ttl_precision;
    if p <= Duration::from_millis(1) {
        (Duration::from_millis(500), Duration::from_millis(1500))
    } else {
        (p * 2, p + Duration::from_millis(1500))
    }
}

/// Poll `f` until it returns true or `within` passes; false on timeout.
async fn eventually<F, Fut>(within: Duration, mut f: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    loop {
        if f().await {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn cache_of(backend: Arc<dyn CacheBackend>) -> Cache<MessagePack> {
    Cache::from_arc(backend)
}

/// A value written is read back unchanged.
pub async fn set_get_roundtrip<H: Harness>(h: &H) {
    let c = fresh(h).await;
    c.set("k", b("value"), Expiry::Never).await.unwrap();
    assert_eq!(c.get("k").await.unwrap(), Some(b("value")));
}

/// A second write replaces the first.
pub async fn overwrite<H: Harness>(h: &H) {
    let c = fresh(h).await;
    c.set("k", b("one"), Expiry::Never).await.unwrap();
    c.set("k", b("two"), Expiry::Never).await.unwrap();
    assert_eq!(c.get("k").await.unwrap(), Some(b("two")));
}

/// A key never written reads as `None`.
pub async fn missing_key<H: Harness>(h: &H) {
    let c = fresh(h).await;
    assert_eq!(c.get("never-written").await.unwrap(), None);
}

/// `delete` says whether it removed something.
pub async fn delete_reports_presence<H: Harness>(h: &H) {
    let c = fresh(h).await;
    c.set("k", b("v"), Expiry::Never).await.unwrap();
    assert!(
        c.delete("k").await.unwrap(),
        "delete of a present key returns true"
    );
    assert!(
        !c.delete("k").await.unwrap(),
        "delete of a missing key returns false"
    );
    assert_eq!(c.get("k").await.unwrap(), None);
}

/// `has` agrees with `get`.
pub async fn has_reports_presence<H: Harness>(h: &H) {
    let c = fresh(h).await;
    assert!(!c.has("k").await.unwrap());
    c.set("k", b("v"), Expiry::Never).await.unwrap();
    assert!(c.has("k").await.unwrap());
}

/// `Expiry::After` keeps the value for its TTL, then it is gone.
pub async fn expiry_after<H: Harness>(h: &H) {
    let c = fresh(h).await;
    let (ttl, grace) = short_ttl(c.as_ref());
    c.set("k", b("v"), Expiry::After(ttl)).await.unwrap();
    c.set("long", b("v"), Expiry::After(Duration::from_secs(3600)))
        .await
        .unwrap();
    assert_eq!(
        c.get("k").await.unwrap(),
        Some(b("v")),
        "value present before its TTL"
    );
    assert!(c.has("k").await.unwrap());
    let gone = eventually(ttl + grace, || async {
        c.get("k").await.unwrap().is_none()
    })
    .await;
    assert!(
        gone,
        "value still present {:?} after a TTL of {ttl:?}",
        ttl + grace
    );
    assert!(
        !c.has("k").await.unwrap(),
        "has() must not report an expired value"
    );
    assert_eq!(
        c.get("long").await.unwrap(),
        Some(b("v")),
        "a long TTL keeps its value"
    );
}

/// `Expiry::Never` keeps the value past a short TTL's lifetime.
pub async fn expiry_never<H: Harness>(h: &H) {
    let c = fresh(h).await;
    let (ttl, _) = short_ttl(c.as_ref());
    c.set("k", b("v"), Expiry::Never).await.unwrap();
    c.set("short", b("v"), Expiry::After(ttl)).await.unwrap();
    let gone = eventually(ttl * 2 + Duration::from_secs(2), || async {
        c.get("short").await.unwrap().is_none()
    })
    .await;
    assert!(gone, "the short-lived value expired");
    assert_eq!(c.get("k").await.unwrap(), Some(b("v")));
}

/// A zero or past expiry stores nothing and removes what was there.
pub async fn expiry_past_or_zero_removes<H: Harness>(h: &H) {
    let c = fresh(h).await;
    c.set("k", b("v"), Expiry::Never).await.unwrap();
    c.set("k", b("new"), Expiry::After(Duration::ZERO))
        .await
        .unwrap();
    assert_eq!(
        c.get("k").await.unwrap(),
        None,
        "zero expiry removes the old value"
    );
    c.set("k2", b("v"), Expiry::Never).await.unwrap();
    let past = SystemTime::now() - Duration::from_secs(10);
    c.set("k2", b("new"), Expiry::At(past)).await.unwrap();
    assert_eq!(
        c.get("k2").await.unwrap(),
        None,
        "past expiry removes the old value"
    );
    c.set("k3", b("v"), Expiry::At(past)).await.unwrap();
    assert_eq!(
        c.get("k3").await.unwrap(),
        None,
        "past expiry stores nothing"
    );
    let future = SystemTime::now() + Duration::from_secs(3600);
    c.set("k4", b("v"), Expiry::At(future)).await.unwrap();
    assert_eq!(
        c.get("k4").await.unwrap(),
        Some(b("v")),
        "a future At keeps the value"
    );
}

/// Expiries too far out for the store's clock are kept as (practically) forever,
/// never an error and never an instant expiry.
pub async fn expiry_far_future_is_kept<H: Harness>(h: &H) {
    let c = fresh(h).await;
    c.set("max", b("v"), Expiry::After(Duration::MAX))
        .await
        .unwrap();
    c.set(
        "years",
        b("v"),
        Expiry::After(Duration::from_secs(200 * 365 * 86_400)),
    )
    .await
    .unwrap();
    let far = SystemTime::UNIX_EPOCH + Duration::from_secs(1 << 40);
    c.set("at", b("v"), Expiry::At(far)).await.unwrap();
    assert!(c
        .set_if_absent("nx", b("v"), Expiry::After(Duration::MAX))
        .await
        .unwrap());
    for k in ["max", "years", "at", "nx"] {
        assert_eq!(c.get(k).await.unwrap(), Some(b("v")), "{k}");
    }
}

/// `clear` removes its own namespace's keys and no one else's.
pub async fn clear_only_own_namespace<H: Harness>(h: &H) {
    let base = random_namespace();
    let a = h.backend(&base).await;
    // A namespace that extends the first one's name must not be touched either.
    let other = h.backend(&format!("{base}x")).await;
    for i in 0..20 {
        let k = format!("k{i}");
        a.set(&k, b("a"), Expiry::Never).await.unwrap();
        other.set(&k, b("other"), Expiry::Never).await.unwrap();
    }
    a.clear().await.unwrap();
    for i in 0..20 {
        let k = format!("k{i}");
        assert_eq!(a.get(&k).await.unwrap(), None, "clear removed {k}");
        assert_eq!(
            other.get(&k).await.unwrap(),
            Some(b("other")),
            "clear touched another namespace"
        );
    }
    let again = h.backend(&base).await;
    assert_eq!(again.get("k0").await.unwrap(), None);
}

/// Empty and arbitrary binary values round-trip.
pub async fn empty_and_binary_values<H: Harness>(h: &H) {
    let c = fresh(h).await;
    c.set("empty", Bytes::new(), Expiry::Never).await.unwrap();
    assert_eq!(
        c.get("empty").await.unwrap(),
        Some(Bytes::new()),
        "empty value is a hit"
    );
    let all: Vec<u8> = (0..=255u8).chain((0..=255u8).rev()).collect();
    c.set("bin", Bytes::from(all.clone()), Expiry::Never)
        .await
        .unwrap();
    assert_eq!(c.get("bin").await.unwrap().as_deref(), Some(&all[..]));
    let crlf = Bytes::from_static(b"\r\nEND\r\n\0\xff$-1\r\n");
    c.set("crlf", crlf.clone(), Expiry::Never).await.unwrap();
    assert_eq!(c.get("crlf").await.unwrap(), Some(crlf));
}

/// A value at the declared size limit works; one byte over is `InvalidInput`.
pub async fn value_size_limit<H: Harness>(h: &H) {
    let c = fresh(h).await;
    match c.capabilities().max_value_size {
        Some(max) => {
            let v = Bytes::from(vec![7u8; max]);
            c.set("max", v.clone(), Expiry::Never).await.unwrap();
            assert_eq!(c.get("max").await.unwrap().map(|b| b.len()), Some(max));
            let err = c
                .set("over", Bytes::from(vec![7u8; max + 1]), Expiry::Never)
                .await
                .unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
            assert_eq!(c.get("over").await.unwrap(), None);
            let err = c
                .set_many(
                    &[("small", b("ok")), ("big", Bytes::from(vec![7u8; max + 1]))],
                    Expiry::Never,
                )
                .await
                .unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
            assert_eq!(
                c.get("small").await.unwrap(),
                None,
                "a batch with an oversized value stored nothing"
            );
            // The backend stays usable after refusing a value.
            c.set("after", b("ok"), Expiry::Never).await.unwrap();
            assert_eq!(c.get("after").await.unwrap(), Some(b("ok")));
        }
        None => {
            let v = Bytes::from(vec![7u8; 1 << 20]);
            c.set("big", v.clone(), Expiry::Never).await.unwrap();
            assert_eq!(c.get("big").await.unwrap(), Some(v));
        }
    }
}

fn invalid<T: std::fmt::Debug>(r: cache_core::Result<T>, what: &str) {
    match r {
        Err(e) => assert_eq!(e.kind(), ErrorKind::InvalidInput, "{what}: {e}"),
        Ok(v) => panic!("{what} was accepted: {v:?}"),
    }
}

/// Empty and over-long keys are `InvalidInput` on every call; the longest allowed key works.
pub async fn key_limits<H: Harness>(h: &H) {
    let c = fresh(h).await;
    let huge = "k".repeat(MAX_KEY_LEN + 1);
    for key in ["", huge.as_str()] {
        let what = if key.is_empty() {
            "empty key"
        } else {
            "oversized key"
        };
        invalid(c.get(key).await, what);
        invalid(c.set(key, b("v"), Expiry::Never).await, what);
        invalid(c.delete(key).await, what);
        invalid(c.has(key).await, what);
        invalid(c.set_if_absent(key, b("v"), Expiry::Never).await, what);
        invalid(c.get_many(&["ok", key]).await, what);
        invalid(
            c.set_many(&[("ok", b("v")), (key, b("v"))], Expiry::Never)
                .await,
            what,
        );
        invalid(c.delete_many(&["ok", key]).await, what);
        invalid(c.acquire_lock(key, Duration::from_secs(1)).await, what);
        assert_eq!(
            c.get("ok").await.unwrap(),
            None,
            "a batch with a bad key stored nothing"
        );
    }
    let longest = "k".repeat(MAX_KEY_LEN);
    c.set(&longest, b("v"), Expiry::Never).await.unwrap();
    assert_eq!(c.get(&longest).await.unwrap(), Some(b("v")));
    let cache = cache_of(c.clone());
    // get-or-compute caches under the longest key too (its lock key must fit as well).
    let calls = counter();
    let long2 = format!("{}2", "k".repeat(MAX_KEY_LEN - 1));
    for _ in 0..2 {
        let calls = calls.clone();
        let v: u8 = cache
            .get_or_compute(long2.as_str(), || async move {
                calls.fetch_add(1, Ordering::SeqCst);
                Ok::<_, std::io::Error>(1)
            })
            .await
            .unwrap();
        assert_eq!(v, 1);
    }
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "the longest key is cached by get-or-compute"
    );
    let err = cache
        .get_or_compute("", || async { Ok::<_, std::io::Error>(1u8) })
        .await
        .unwrap_err();
    assert!(matches!(err, ComputeError::Cache(ref e) if e.kind() == ErrorKind::InvalidInput));
}

/// Unicode keys work and stay distinct (no normalisation).
pub async fn unicode_keys<H: Harness>(h: &H) {
    let c = fresh(h).await;
    let keys = ["ключ", "键", "🔑", "caf\u{e9}", "cafe\u{301}"];
    for (i, k) in keys.iter().enumerate() {
        c.set(k, b(&i.to_string()), Expiry::Never).await.unwrap();
    }
    for (i, k) in keys.iter().enumerate() {
        assert_eq!(
            c.get(k).await.unwrap(),
            Some(b(&i.to_string())),
            "key {k:?}"
        );
    }
}

/// Spaces, CR/LF, control characters and quote/glob characters round-trip as
/// distinct keys, with no protocol or query injection.
pub async fn control_character_keys_are_distinct<H: Harness>(h: &H) {
    let c = fresh(h).await;
    let keys = [
        "a b",
        "a\tb",
        "a\r\nb",
        "a\nb",
        "a\0b",
        "a\u{1}b",
        "a\u{7f}b",
        "ab",
        "a:b",
        "a*",
        "a?b",
        "a[b]",
        "x'; DROP TABLE cache; --",
        "k\"v",
        "set x 0 0 1\r\nx",
        "\r\n",
        " ",
        "#hash",
    ];
    for (i, k) in keys.iter().enumerate() {
        c.set(k, b(&format!("v{i}")), Expiry::Never).await.unwrap();
    }
    for (i, k) in keys.iter().enumerate() {
        assert_eq!(
            c.get(k).await.unwrap(),
            Some(b(&format!("v{i}"))),
            "key {k:?}"
        );
    }
    assert_eq!(
        c.get("x").await.unwrap(),
        None,
        "an injected command stored nothing"
    );
    assert_eq!(
        c.get("a").await.unwrap(),
        None,
        "a glob key did not match others"
    );
    assert!(c.delete("a*").await.unwrap());
    assert_eq!(
        c.get("a:b").await.unwrap(),
        Some(b("v8")),
        "deleting \"a*\" touched only itself"
    );
}

/// Keys longer than the store's own limit work, and two that differ only at the
/// end do not collide.
pub async fn long_keys_do_not_collide<H: Harness>(h: &H) {
    let c = fresh(h).await;
    let len = c.capabilities().max_key_len.unwrap_or(250).max(250) + 100;
    let stem = "x".repeat(len);
    let (k1, k2) = (format!("{stem}1"), format!("{stem}2"));
    c.set(&k1, b("one"), Expiry::Never).await.unwrap();
    c.set(&k2, b("two"), Expiry::Never).await.unwrap();
    assert_eq!(c.get(&k1).await.unwrap(), Some(b("one")));
    assert_eq!(c.get(&k2).await.unwrap(), Some(b("two")));
    assert!(c.delete(&k1).await.unwrap());
    assert_eq!(c.get(&k2).await.unwrap(), Some(b("two")));
}

/// `get_many`, `set_many` and `delete_many` agree with the single calls.
pub async fn batch_agrees_with_single<H: Harness>(h: &H) {
    let c = fresh(h).await;
    let keys: Vec<String> = (0..25).map(|i| format!("key {i}")).collect();
    let items: Vec<(&str, Bytes)> = keys
        .iter()
        .map(|k| (k.as_str(), b(&format!("v-{k}"))))
        .collect();
    c.set_many(&items, Expiry::Never).await.unwrap();
    for (k, v) in &items {
        assert_eq!(c.get(k).await.unwrap().as_ref(), Some(v));
    }
    let mut asked: Vec<&str> = keys.iter().map(String::as_str).collect();
    asked.insert(3, "missing");
    let got = c.get_many(&asked).await.unwrap();
    assert_eq!(got.len(), asked.len());
    for (k, v) in asked.iter().zip(&got) {
        assert_eq!(v, &c.get(k).await.unwrap(), "get_many disagrees for {k}");
    }
    assert_eq!(got[3], None);
    assert_eq!(c.get_many(&[]).await.unwrap(), Vec::<Option<Bytes>>::new());
    let n = c
        .delete_many(&[&keys[0], &keys[1], "missing"])
        .await
        .unwrap();
    assert_eq!(n, 2, "delete_many counts what was there");
    assert_eq!(c.get(&keys[0]).await.unwrap(), None);
    assert_eq!(
        c.get(&keys[2]).await.unwrap(),
        Some(b(&format!("v-{}", keys[2])))
    );
    let (ttl, grace) = short_ttl(c.as_ref());
    c.set_many(&[("t1", b("x")), ("t2", b("y"))], Expiry::After(ttl))
        .await
        .unwrap();
    let gone = eventually(ttl + grace, || async {
        c.get_many(&["t1", "t2"]).await.unwrap() == vec![None, None]
    })
    .await;
    assert!(gone, "set_many honours the expiry");
}

/// `set_if_absent` from 50 concurrent tasks has exactly one winner.
pub async fn set_if_absent_has_one_winner<H: Harness>(h: &H) {
    let c = fresh(h).await;
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let c = c.clone();
            tokio::spawn(async move {
                (
                    i,
                    c.set_if_absent("race", b(&format!("t{i}")), Expiry::Never)
                        .await
                        .unwrap(),
                )
            })
        })
        .collect();
    let mut winners = vec![];
    for t in tasks {
        let (i, won) = t.await.unwrap();
        if won {
            winners.push(i);
        }
    }
    assert_eq!(winners.len(), 1, "winners: {winners:?}");
    assert_eq!(
        c.get("race").await.unwrap(),
        Some(b(&format!("t{}", winners[0])))
    );
    assert!(!c
        .set_if_absent("race", b("late"), Expiry::Never)
        .await
        .unwrap());
    c.delete("race").await.unwrap();
    assert!(
        c.set_if_absent("race", b("again"), Expiry::Never)
            .await
            .unwrap(),
        "absent again after delete"
    );
}

/// An expired value counts as absent for `set_if_absent`.
pub async fn set_if_absent_after_expiry<H: Harness>(h: &H) {
    let c = fresh(h).await;
    let (ttl, grace) = short_ttl(c.as_ref());
    assert!(c
        .set_if_absent("k", b("first"), Expiry::After(ttl))
        .await
        .unwrap());
    assert!(!c
        .set_if_absent("k", b("second"), Expiry::Never)
        .await
        .unwrap());
    let took_over = eventually(ttl + grace, || async {
        c.set_if_absent("k", b("third"), Expiry::Never)
            .await
            .unwrap()
    })
    .await;
    assert!(
        took_over,
        "set_if_absent never succeeded after the value expired"
    );
    assert_eq!(c.get("k").await.unwrap(), Some(b("third")));
}

/// A lock has exactly one holder among 50 tasks; release frees it for the next.
pub async fn lock_has_one_holder<H: Harness>(h: &H) {
    let c = fresh(h).await;
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let c = c.clone();
            tokio::spawn(async move {
                c.acquire_lock("lock", Duration::from_secs(30))
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut tokens = vec![];
    for t in tasks {
        if let Some(tok) = t.await.unwrap() {
            tokens.push(tok);
        }
    }
    assert_eq!(tokens.len(), 1, "exactly one holder");
    assert!(c
        .acquire_lock("lock", Duration::from_secs(30))
        .await
        .unwrap()
        .is_none());
    assert_eq!(
        c.get("lock").await.unwrap(),
        None,
        "locks do not show up as values"
    );
    assert!(c.release_lock("lock", &tokens[0]).await.unwrap());
    assert!(
        !c.release_lock("lock", &tokens[0]).await.unwrap(),
        "second release is a no-op"
    );
    assert!(c
        .acquire_lock("lock", Duration::from_secs(30))
        .await
        .unwrap()
        .is_some());
}

/// A lock cannot be released with someone else's token.
pub async fn lock_rejects_wrong_token<H: Harness>(h: &H) {
    let c = fresh(h).await;
    let mine = c
        .acquire_lock("lock", Duration::from_secs(30))
        .await
        .unwrap()
        .unwrap();
    let forged = cache_core::LockToken::random();
    assert!(!c.release_lock("lock", &forged).await.unwrap());
    assert!(
        c.acquire_lock("lock", Duration::from_secs(30))
            .await
            .unwrap()
            .is_none(),
        "still held"
    );
    let other = c
        .acquire_lock("other", Duration::from_secs(30))
        .await
        .unwrap()
        .unwrap();
    assert!(
        !c.release_lock("lock", &other).await.unwrap(),
        "a token of another lock does not fit"
    );
    assert!(c.release_lock("lock", &mine).await.unwrap());
}

/// A lock frees itself after its ttl.
pub async fn lock_expires<H: Harness>(h: &H) {
    let c = fresh(h).await;
    let (ttl, grace) = short_ttl(c.as_ref());
    let first = c.acquire_lock("lock", ttl).await.unwrap().unwrap();
    assert!(c.acquire_lock("lock", ttl).await.unwrap().is_none());
    let freed = eventually(ttl + grace, || async {
        c.acquire_lock("lock", Duration::from_secs(30))
            .await
            .unwrap()
            .is_some()
    })
    .await;
    assert!(freed, "lock never expired");
    assert!(
        !c.release_lock("lock", &first).await.unwrap(),
        "an expired holder cannot release the new holder's lock"
    );
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

/// A hit does not recompute.
pub async fn compute_hit_does_not_recompute<H: Harness>(h: &H) {
    let cache = cache_of(fresh(h).await);
    let calls = counter();
    for _ in 0..3 {
        let calls = calls.clone();
        let v: String = cache
            .get_or_compute("k", || async move {
                calls.fetch_add(1, Ordering::SeqCst);
                Ok::<_, std::io::Error>("computed".to_string())
            })
            .await
            .unwrap();
        assert_eq!(v, "computed");
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(
        cache.get::<String>("k").await.unwrap().as_deref(),
        Some("computed")
    );
}

/// 100 concurrent misses compute once, and all get the value.
pub async fn compute_concurrent_misses_compute_once<H: Harness>(h: &H) {
    let cache = cache_of(fresh(h).await);
    let calls = counter();
    let tasks: Vec<_> = (0..100)
        .map(|_| {
            spawn_counted(
                &cache,
                "hot",
                &calls,
                Duration::from_millis(100),
                vec![1u32, 2, 3],
            )
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap(), vec![1, 2, 3]);
    }
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "one compute for 100 callers"
    );
}

/// A compute error reaches every waiter, and nothing is cached.
pub async fn compute_error_reaches_waiters_and_is_not_cached<H: Harness>(h: &H) {
    let cache = cache_of(fresh(h).await);
    let calls = counter();
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let (cache, calls) = (cache.clone(), calls.clone());
            tokio::spawn(async move {
                cache
                    .get_or_compute("k", || async move {
                        calls.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        Err::<u32, _>(std::io::Error::other("db down"))
                    })
                    .await
            })
        })
        .collect();
    for t in tasks {
        let err = t.await.unwrap().unwrap_err();
        assert_eq!(
            err.compute_error().map(|e| e.to_string()).as_deref(),
            Some("db down")
        );
    }
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "waiters share the leader's error"
    );
    assert!(!cache.has("k").await.unwrap(), "an error is never cached");
    let v = cache
        .get_or_compute("k", || async { Ok::<_, std::io::Error>(5u32) })
        .await
        .unwrap();
    assert_eq!(v, 5, "the next call computes again");
}

/// `skip` neither reads nor writes.
pub async fn compute_skip_bypasses_cache<H: Harness>(h: &H) {
    let cache = cache_of(fresh(h).await);
    let calls = counter();
    let run = |skip: bool, value: u32| {
        let (cache, calls) = (cache.clone(), calls.clone());
        async move {
            cache
                .cached("k")
                .skip(skip)
                .get_or_compute(|| async move {
                    calls.fetch_add(1, Ordering::SeqCst);
                    Ok::<_, std::io::Error>(value)
                })
                .await
                .unwrap()
        }
    };
    assert_eq!(run(true, 1).await, 1);
    assert!(!cache.has("k").await.unwrap(), "skip wrote nothing");
    assert_eq!(run(false, 2).await, 2);
    assert_eq!(run(true, 3).await, 3, "skip ignores the cached value");
    assert_eq!(
        cache.get::<u32>("k").await.unwrap(),
        Some(2),
        "skip left the cached value alone"
    );
    assert_eq!(calls.load(Ordering::SeqCst), 3);
}

/// `refresh` recomputes and overwrites.
pub async fn compute_refresh_overwrites<H: Harness>(h: &H) {
    let cache = cache_of(fresh(h).await);
    let v1: u32 = cache
        .get_or_compute("k", || async { Ok::<_, std::io::Error>(1) })
        .await
        .unwrap();
    let v2: u32 = cache
        .cached("k")
        .refresh(true)
        .get_or_compute(|| async { Ok::<_, std::io::Error>(2) })
        .await
        .unwrap();
    assert_eq!((v1, v2), (1, 2));
    assert_eq!(cache.get::<u32>("k").await.unwrap(), Some(2));
    let v3: u32 = cache
        .get_or_compute("k", || async { Ok::<_, std::io::Error>(3) })
        .await
        .unwrap();
    assert_eq!(v3, 2, "the refreshed value is now cached");
}

/// The expiry given to get-or-compute applies: after it, the value is computed again.
pub async fn compute_expiry_is_honoured<H: Harness>(h: &H) {
    let backend = fresh(h).await;
    let (ttl, grace) = short_ttl(backend.as_ref());
    let cache = cache_of(backend);
    let calls = counter();
    let run = || {
        let (cache, calls) = (cache.clone(), calls.clone());
        async move {
            cache
                .cached("k")
                .expiry(ttl)
                .get_or_compute(|| async move {
                    Ok::<_, std::io::Error>(calls.fetch_add(1, Ordering::SeqCst) as u32)
                })
                .await
                .unwrap()
        }
    };
    assert_eq!(run().await, 0);
    assert_eq!(run().await, 0, "a hit before the expiry");
    let recomputed = eventually(ttl + grace, || async { run().await == 1 }).await;
    assert!(recomputed, "the value was not recomputed after its expiry");
}

/// A cached `None` is a hit, not a miss.
pub async fn compute_cached_none_is_a_hit<H: Harness>(h: &H) {
    let cache = cache_of(fresh(h).await);
    let calls = counter();
    for _ in 0..2 {
        let calls = calls.clone();
        let v: Option<u32> = cache
            .get_or_compute("nothing", || async move {
                calls.fetch_add(1, Ordering::SeqCst);
                Ok::<_, std::io::Error>(None)
            })
            .await
            .unwrap();
        assert_eq!(v, None);
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

/// A value that no longer decodes counts as a miss and is overwritten; plain `get`
/// reports it as a `Serialization` error.
pub async fn compute_undecodable_is_a_miss<H: Harness>(h: &H) {
    let backend = fresh(h).await;
    backend
        .set(
            "k",
            Bytes::from_static(b"\xc1\xc1 not msgpack"),
            Expiry::Never,
        )
        .await
        .unwrap();
    let cache = cache_of(backend);
    let err = cache.get::<u32>("k").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Serialization);
    let v: u32 = cache
        .get_or_compute("k", || async { Ok::<_, std::io::Error>(9) })
        .await
        .unwrap();
    assert_eq!(v, 9);
    assert_eq!(cache.get::<u32>("k").await.unwrap(), Some(9));
}

/// When the leader's future is dropped mid-compute, a waiter takes over.
pub async fn compute_leader_dropped_waiters_take_over<H: Harness>(h: &H) {
    let cache = cache_of(fresh(h).await);
    let started = Arc::new(tokio::sync::Notify::new());
    let leader = {
        let (cache, started) = (cache.clone(), started.clone());
        tokio::spawn(async move {
            cache
                .get_or_compute("k", || async move {
                    started.notify_one();
                    tokio::time::sleep(Duration::from_secs(60)).await;
                    Ok::<_, std::io::Error>(1u32)
                })
                .await
        })
    };
    started.notified().await;
    let follower = spawn_counted(&cache, "k", &counter(), Duration::ZERO, 2u32);
    tokio::time::sleep(Duration::from_millis(50)).await;
    leader.abort();
    let v = tokio::time::timeout(Duration::from_secs(10), follower)
        .await
        .expect("the waiter hung after its leader was dropped")
        .unwrap();
    assert_eq!(v, 2);
}

/// When the compute panics, waiters do not hang.
pub async fn compute_panic_waiters_do_not_hang<H: Harness>(h: &H) {
    let cache = cache_of(fresh(h).await);
    let started = Arc::new(tokio::sync::Notify::new());
    let leader = {
        let (cache, started) = (cache.clone(), started.clone());
        tokio::spawn(async move {
            cache
                .get_or_compute("k", || async move {
                    started.notify_one();
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    if std::hint::black_box(true) {
                        panic!("compute panicked (expected by the test)");
                    }
                    Ok::<_, std::io::Error>(1u32)
                })
                .await
        })
    };
    started.notified().await;
    let follower = spawn_counted(&cache, "k", &counter(), Duration::ZERO, 2u32);
    assert!(leader.await.unwrap_err().is_panic());
    let v = tokio::time::timeout(Duration::from_secs(10), follower)
        .await
        .expect("the waiter hung after its leader panicked")
        .unwrap();
    assert_eq!(v, 2);
}

/// Two caches (two processes' worth of handles) on one namespace compute once:
/// the backend's lock spans them.
pub async fn compute_lock_spans_caches<H: Harness>(h: &H) {
    let ns = random_namespace();
    let caches = [
        cache_of(h.backend(&ns).await),
        cache_of(h.backend(&ns).await),
    ];
    let calls = counter();
    let mut tasks = vec![];
    for cache in &caches {
        for _ in 0..20 {
            tasks.push(spawn_counted(
                cache,
                "hot",
                &calls,
                Duration::from_millis(200),
                42u32,
            ));
        }
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), 42);
    }
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "one compute across both caches"
    );
}

/// A failing backend does not fail get-or-compute: it computes and returns, and
/// caching resumes when the backend recovers. Plain calls return the error.
pub async fn compute_fails_open_on_errors<H: Harness>(h: &H) {
    let faulty = Arc::new(FaultyBackend::new(fresh(h).await));
    let cache = cache_of(faulty.clone());
    let calls = counter();
    let compute = |v: u32| {
        let calls = calls.clone();
        move || async move {
            calls.fetch_add(1, Ordering::SeqCst);
            Ok::<_, std::io::Error>(v)
        }
    };
    faulty.set_failing(true);
    assert_eq!(cache.get_or_compute("k", compute(1)).await.unwrap(), 1);
    assert_eq!(cache.get_or_compute("k", compute(2)).await.unwrap(), 2);
    assert_eq!(
        calls.load(Ordering::SeqCst),
        2,
        "nothing could be cached while down"
    );
    let err = cache.get::<u32>("k").await.unwrap_err();
    assert!(err.is_transient(), "{err}");
    faulty.set_failing(false);
    assert_eq!(cache.get_or_compute("k", compute(3)).await.unwrap(), 3);
    assert_eq!(
        cache.get_or_compute("k", compute(4)).await.unwrap(),
        3,
        "cached again after recovery"
    );
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    // A single failed write is skipped over as well.
    faulty.fail_next(1);
    let v: u32 = cache.get_or_compute("other", compute(5)).await.unwrap();
    assert_eq!(v, 5);
}

/// A backend slower than the per-call timeout does not hold get-or-compute up.
pub async fn compute_fails_open_on_slow_backend<H: Harness>(h: &H) {
    let faulty = Arc::new(FaultyBackend::new(fresh(h).await));
    let cache = cache_core::CacheBuilder::from_arc(faulty.clone())
        .timeout(Duration::from_millis(100))
        .build();
    faulty.set_delay(Duration::from_secs(30));
    let v = tokio::time::timeout(
        Duration::from_secs(5),
        cache.get_or_compute("k", || async { Ok::<_, std::io::Error>(7u32) }),
    )
    .await
    .expect("get-or-compute waited on a slow backend instead of failing open")
    .unwrap();
    assert_eq!(v, 7);
}

/// 1 000 parallel set/get on distinct keys lose nothing.
pub async fn parallel_set_get_lose_nothing<H: Harness>(h: &H) {
    let c = fresh(h).await;
    let tasks: Vec<_> = (0..1000)
        .map(|i| {
            let c = c.clone();
            tokio::spawn(async move {
                let k = format!("p{i}");
                c.set(&k, b(&format!("v{i}")), Expiry::Never).await.unwrap();
                assert_eq!(c.get(&k).await.unwrap(), Some(b(&format!("v{i}"))));
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let keys: Vec<String> = (0..1000).map(|i| format!("p{i}")).collect();
    let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
    let got = c.get_many(&refs).await.unwrap();
    let lost = got.iter().filter(|v| v.is_none()).count();
    assert_eq!(lost, 0, "{lost} of 1000 values lost");
}

/// After `close`, calls return a `Closed` error.
pub async fn use_after_close_is_an_error<H: Harness>(h: &H) {
    let c = fresh(h).await;
    c.set("k", b("v"), Expiry::Never).await.unwrap();
    c.close().await.unwrap();
    let err = c.get("k").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Closed, "{err}");
    let err = c.set("k", b("v"), Expiry::Never).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Closed, "{err}");
    c.close().await.expect("closing twice is fine");
}
