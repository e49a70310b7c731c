//! Chaos on a real Redis: for a few seconds the test alternates store outages (its own
//! Redis killed and restarted, empty) and origin failures, under 16 tasks reading 8
//! keys through get-or-compute with stale-while-revalidate, fail-safe and a circuit
//! breaker. No error may reach a caller (an outage of the store alone leaves the
//! origin; an outage of the origin alone leaves the stale values), and while the store
//! is up the origin is asked at most once per key per refresh window.

mod common;
use cache_core::{BreakerConfig, Cache};
use cache_redis::RedisBuilder;
use conformance_tests::servers::OwnProcess;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Per key, when the origin was asked and in which phase.
type OriginCalls = HashMap<String, Vec<(Instant, u8)>>;

/// What the chaos is doing now.
const NORMAL: u8 = 0;
const STORE_DOWN: u8 = 1;
/// The store is back but the breaker may still skip it: origin calls are not counted.
const SETTLING: u8 = 2;
const ORIGIN_DOWN: u8 = 3;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_and_origin_outages_reach_no_caller() {
    let mut server = OwnProcess::redis(OwnProcess::free_port(), &[]);
    let window = Duration::from_millis(200);
    let backend = RedisBuilder::new(format!("redis://127.0.0.1:{}", server.port))
        .namespace("chaos")
        // A killed server refuses at once; the bound only keeps a loaded machine's
        // slow answers from counting as outages.
        .timeout(Duration::from_secs(1))
        .build()
        .await
        .unwrap();
    let cache = Cache::builder(backend)
        .timeout(Duration::from_secs(1))
        .default_expiry(window)
        .stale_while_revalidate(Duration::from_secs(30))
        .fail_safe(Duration::from_secs(60))
        .fail_safe_throttle(window)
        .circuit_breaker(BreakerConfig::default().retry_after(Duration::from_millis(300)))
        .build();
    let phase = Arc::new(AtomicU8::new(NORMAL));
    // Origin calls per key while the store is up, with the time they were made.
    let counted: Arc<Mutex<OriginCalls>> = Arc::default();
    let (calls, errors) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let stop = Arc::new(AtomicBool::new(false));
    let tasks: Vec<_> = (0..16u64)
        .map(|t| {
            let (cache, phase, counted) = (cache.clone(), phase.clone(), counted.clone());
            let (calls, errors, stop) = (calls.clone(), errors.clone(), stop.clone());
            tokio::spawn(async move {
                let mut i = t;
                while !stop.load(Ordering::SeqCst) {
                    let key = format!("k{}", i % 8);
                    i += 7;
                    let (phase, counted, k) = (phase.clone(), counted.clone(), key.clone());
                    let got = cache
                        .cached(key)
                        .get_or_compute_detached(move || async move {
                            let now = phase.load(Ordering::SeqCst);
                            if now == NORMAL || now == ORIGIN_DOWN {
                                counted
                                    .lock()
                                    .entry(k)
                                    .or_default()
                                    .push((Instant::now(), now));
                            }
                            if now == ORIGIN_DOWN {
                                return Err(std::io::Error::other("origin down"));
                            }
                            Ok::<_, std::io::Error>(i)
                        })
                        .await;
                    calls.fetch_add(1, Ordering::SeqCst);
                    if let Err(e) = got {
                        errors.fetch_add(1, Ordering::SeqCst);
                        eprintln!("error reached a caller: {e}");
                    }
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
            })
        })
        .collect();
    let at = |p: u8, d: u64| {
        phase.store(p, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(d))
    };
    for _ in 0..2 {
        at(NORMAL, 600).await;
        // The phase changes before the kill, so no call counts on a store being killed.
        phase.store(STORE_DOWN, Ordering::SeqCst);
        server.kill();
        at(STORE_DOWN, 600).await;
        server.restart();
        at(SETTLING, 900).await;
        at(ORIGIN_DOWN, 800).await;
    }
    at(NORMAL, 400).await;
    stop.store(true, Ordering::SeqCst);
    for t in tasks {
        t.await.unwrap();
    }
    let counted = counted.lock();
    let mut closest = Duration::MAX;
    for (key, times) in counted.iter() {
        for pair in times.windows(2) {
            let gap = pair[1].0 - pair[0].0;
            if gap < window {
                eprintln!(
                    "{key}: two origin calls {gap:?} apart, phases {} and {}",
                    pair[0].1, pair[1].1
                );
            }
            closest = closest.min(gap);
        }
    }
    let origin: usize = counted.values().map(Vec::len).sum();
    eprintln!(
        "chaos: {} calls, {} errors; {origin} origin calls counted while the store was up, closest two of one key {closest:?} apart (window {window:?})",
        calls.load(Ordering::SeqCst),
        errors.load(Ordering::SeqCst)
    );
    assert_eq!(errors.load(Ordering::SeqCst), 0, "errors reached callers");
    assert!(calls.load(Ordering::SeqCst) > 1000, "too few calls ran");
    // One per key per window: allow a little timer slack.
    assert!(
        closest >= window - Duration::from_millis(20),
        "one key asked the origin twice within {closest:?}"
    );
}
