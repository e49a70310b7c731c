//! Batch calls.

use super::*;

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
    let (ttl, grace) = short_ttl(h, c.as_ref());
    c.set_many(&[("t1", b("x")), ("t2", b("y"))], Expiry::After(ttl))
        .await
        .unwrap();
    let gone = eventually(ttl + grace, || async {
        c.get_many(&["t1", "t2"]).await.unwrap() == vec![None, None]
    })
    .await;
    assert!(gone, "set_many honours the expiry");
}

/// Batches keep request order and handle a key asked twice: `get_many` answers each
/// position, `set_many` keeps the last value given for a key, `delete_many` counts a
/// removed key once.
pub async fn batch_duplicates_keep_request_order<H: Harness>(h: &H) {
    let c = fresh(h).await;
    c.set_many(
        &[("a", b("1")), ("b", b("2")), ("a", b("3"))],
        Expiry::Never,
    )
    .await
    .unwrap();
    assert_eq!(
        c.get("a").await.unwrap(),
        Some(b("3")),
        "the last value wins"
    );
    let got = c.get_many(&["b", "a", "missing", "b", "a"]).await.unwrap();
    assert_eq!(
        got,
        vec![Some(b("2")), Some(b("3")), None, Some(b("2")), Some(b("3"))]
    );
    let n = c.delete_many(&["a", "a", "b", "missing"]).await.unwrap();
    assert_eq!(n, 2, "each removed key counts once");
    assert_eq!(c.get_many(&["a", "b"]).await.unwrap(), vec![None, None]);
}

/// Batch get-or-compute of `ids` (keys `item-<id>`), whose compute records the ids it
/// was asked for in `asked`, waits `delay` and answers `id * 10` for the ids `knows`.
async fn compute_many(
    cache: &Cache,
    ids: &[u32],
    asked: &Arc<parking_lot::Mutex<Vec<u32>>>,
    delay: Duration,
    knows: fn(u32) -> bool,
) -> Result<Vec<Option<u32>>, ComputeError<String>> {
    let asked = asked.clone();
    cache
        .cached_many(ids.iter().map(|id| (format!("item-{id}"), *id)))
        .expiry(Duration::from_secs(300))
        // These cases are about locks and flights, not a slow store: a store call that
        // outlived the default 1 s on a loaded machine would leave a value unstored
        // and have another batch compute it again (fail-open, as designed).
        .store_timeout(Duration::from_secs(30))
        .lock_wait(Duration::from_secs(30))
        .lock_ttl(Duration::from_secs(60))
        .get_or_compute_many(move |missing: Vec<u32>| {
            let asked = asked.clone();
            async move {
                asked.lock().extend(&missing);
                tokio::time::sleep(delay).await;
                Ok::<_, String>(
                    missing
                        .into_iter()
                        .filter(move |i| knows(*i))
                        .map(|i| (i, i * 10)),
                )
            }
        })
        .await
}

fn asked() -> Arc<parking_lot::Mutex<Vec<u32>>> {
    Arc::default()
}

/// Batch get-or-compute answers in request order, a key asked twice once, computes
/// only the missing keys (one compute), and what it stored is what single calls read.
pub async fn batch_compute_keeps_order_and_computes_the_misses<H: Harness>(h: &H) {
    let cache = cache_of(fresh(h).await);
    let a = asked();
    let all = |_| true;
    assert_eq!(
        compute_many(&cache, &[5], &a, Duration::ZERO, all)
            .await
            .unwrap(),
        vec![Some(50)]
    );
    let got = compute_many(&cache, &[3, 5, 3, 7], &a, Duration::ZERO, all)
        .await
        .unwrap();
    assert_eq!(got, vec![Some(30), Some(50), Some(30), Some(70)]);
    assert_eq!(
        *a.lock(),
        vec![5, 3, 7],
        "the misses once each, in request order"
    );
    // All stored: no compute, and a single get-or-compute reads the same values.
    let again = compute_many(&cache, &[7, 3, 5], &a, Duration::ZERO, all)
        .await
        .unwrap();
    assert_eq!(again, vec![Some(70), Some(30), Some(50)]);
    assert_eq!(a.lock().len(), 3);
    let single: u32 = cache
        .get_or_compute("item-7", || async { Ok::<_, String>(0) })
        .await
        .unwrap();
    assert_eq!(single, 70);
}

/// A key the compute does not return is `None` and not stored; a failed compute
/// fails the call and stores nothing.
pub async fn batch_compute_partial_and_failed_computes_store_nothing_wrong<H: Harness>(h: &H) {
    let backend = fresh(h).await;
    let cache = cache_of(backend.clone());
    let a = asked();
    let got = compute_many(&cache, &[1, 2, 3], &a, Duration::ZERO, |i| i != 2)
        .await
        .unwrap();
    assert_eq!(got, vec![Some(10), None, Some(30)]);
    assert_eq!(backend.get("item-2").await.unwrap(), None, "not stored");
    let failing = cache
        .cached_many([("item-4".to_string(), 4u32), ("item-1".to_string(), 1)])
        .get_or_compute_many(|_: Vec<u32>| async {
            Err::<Vec<(u32, u32)>, _>("origin down".to_string())
        })
        .await
        .unwrap_err();
    assert!(matches!(failing, ComputeError::Compute(ref e) if **e == "origin down"));
    assert_eq!(backend.get("item-4").await.unwrap(), None);
    // The stored key is still served.
    let got = compute_many(&cache, &[1], &a, Duration::ZERO, |_| true)
        .await
        .unwrap();
    assert_eq!(got, vec![Some(10)]);
}

/// Two batches overlapping in keys and in time, from two caches on one store (two
/// processes): each key is computed once in all (the store's locks keep the second
/// batch waiting for the first one's values).
pub async fn batch_compute_overlapping_batches_compute_each_key_once<H: Harness>(h: &H) {
    let ns = random_namespace();
    let (one, two) = (cache_of(open(h, &ns).await), cache_of(open(h, &ns).await));
    let a = asked();
    let first: Vec<u32> = (1..=20).collect();
    let second: Vec<u32> = (10..=30).collect();
    let delay = Duration::from_millis(300);
    let (x, y) = tokio::join!(compute_many(&one, &first, &a, delay, |_| true), async {
        // The first batch takes its locks first.
        tokio::time::sleep(Duration::from_millis(100)).await;
        compute_many(&two, &second, &a, delay, |_| true).await
    });
    assert_eq!(
        x.unwrap(),
        first.iter().map(|i| Some(i * 10)).collect::<Vec<_>>()
    );
    assert_eq!(
        y.unwrap(),
        second.iter().map(|i| Some(i * 10)).collect::<Vec<_>>()
    );
    let mut computed = a.lock().clone();
    computed.sort_unstable();
    assert_eq!(
        computed,
        (1..=30).collect::<Vec<_>>(),
        "every key computed once"
    );
}
