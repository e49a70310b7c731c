//! Chaos on a real Redis: for a few seconds the test alternates store outages (its own
//! Redis killed and restarted, empty) and origin failures, under 16 tasks reading 8
//! keys through get-or-compute with stale-while-revalidate, fail-safe and a circuit
//! breaker. No error may reach a caller (an outage of the store alone leaves the
//! origin; an outage of the origin alone leaves the stale values), and while the store
//! is up the origin is asked at most once per key per refresh window.

use cache_core::{BreakerConfig, Cache};
use cache_redis::RedisBuilder;
use conformance_tests::servers::OwnProcess;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering};
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
        .store_timeout(Duration::from_secs(1))
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

/// Per key, the origin's newest version and the newest version whose cache write (a
/// `set` of it, or a `delete` after it) completed.
struct Versions {
    origin: [AtomicU64; KEYS],
    written: [AtomicU64; KEYS],
}

const KEYS: usize = 4;

/// The store is up and the origin answers, but the other process does not write.
const QUIET: u8 = 4;

/// Wrong values, counted. Chaos as above (store killed and restarted, origin
/// failures), plus another process (a second handle) that changes the origin and then
/// sets or deletes the key while computes run, and a lock TTL shorter than some
/// computes (a compute outlives its lock and another one starts). A read may be stale
/// only in the ways the options allow; it is *wrong* when it returns a version older
/// than the newest write that completed before the read started. There must be none.
///
/// The other process writes only while this one can reach the store, and pauses for
/// a moment (longer than a compute) before each outage: a write completed just before
/// the store goes away cannot be seen by this process, whose compute from before that
/// write then cannot store (or be refused) either; while the store is unreachable it
/// serves what it computed, for at most the value's freshness (see the core README).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_read_returns_a_value_older_than_a_completed_write() {
    let mut server = OwnProcess::redis(OwnProcess::free_port(), &[]);
    let url = format!("redis://127.0.0.1:{}", server.port);
    let open = || async {
        RedisBuilder::new(url.clone())
            .namespace("wrong")
            .timeout(Duration::from_secs(1))
            .build()
            .await
            .unwrap()
    };
    let fresh = Duration::from_millis(200);
    let cache = Cache::builder(open().await)
        .store_timeout(Duration::from_secs(1))
        .default_expiry(fresh)
        .stale_while_revalidate(Duration::from_secs(30))
        .fail_safe(Duration::from_secs(60))
        .fail_safe_throttle(fresh)
        .lock_ttl(Duration::from_millis(60))
        .lock_wait(Duration::from_millis(150))
        .circuit_breaker(BreakerConfig::default().retry_after(Duration::from_millis(300)))
        .build();
    let app = Cache::builder(open().await)
        .store_timeout(Duration::from_secs(1))
        .build();
    let versions = Arc::new(Versions {
        origin: Default::default(),
        written: Default::default(),
    });
    let phase = Arc::new(AtomicU8::new(NORMAL));
    let stop = Arc::new(AtomicBool::new(false));
    let (reads, wrong, writes) = (
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicUsize::new(0)),
    );
    let mut tasks: Vec<_> = (0..12usize)
        .map(|t| {
            let (cache, versions, phase) = (cache.clone(), versions.clone(), phase.clone());
            let (stop, reads, wrong) = (stop.clone(), reads.clone(), wrong.clone());
            tokio::spawn(async move {
                let mut i = t;
                while !stop.load(Ordering::SeqCst) {
                    let k = i % KEYS;
                    i += 5;
                    let floor = versions.written[k].load(Ordering::SeqCst);
                    let (p0, t0) = (phase.load(Ordering::SeqCst), Instant::now());
                    let (v2, p2) = (versions.clone(), phase.clone());
                    let slow = Duration::from_millis((i % 5) as u64 * 30);
                    let got = cache
                        .cached(format!("k{k}"))
                        .get_or_compute_detached(move || async move {
                            // The origin's answer is its state when asked; answering
                            // takes up to 120 ms, longer than the lock's TTL.
                            let v = v2.origin[k].load(Ordering::SeqCst);
                            tokio::time::sleep(slow).await;
                            if p2.load(Ordering::SeqCst) == ORIGIN_DOWN {
                                return Err(std::io::Error::other("origin down"));
                            }
                            Ok::<u64, _>(v)
                        })
                        .await;
                    reads.fetch_add(1, Ordering::SeqCst);
                    if let Ok(v) = got {
                        if v < floor {
                            wrong.fetch_add(1, Ordering::SeqCst);
                            eprintln!("k{k}: read {v}, but {floor} was written before the read (phase {} -> {}, {:?})", p0, phase.load(Ordering::SeqCst), t0.elapsed());
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
            })
        })
        .collect();
    // The other process: change the origin, then set or delete the key.
    {
        let (versions, phase, stop, writes) = (
            versions.clone(),
            phase.clone(),
            stop.clone(),
            writes.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut i = 0usize;
            while !stop.load(Ordering::SeqCst) {
                i += 1;
                let p = phase.load(Ordering::SeqCst);
                if p == NORMAL || p == ORIGIN_DOWN {
                    let k = (i * 3) % KEYS;
                    let v = versions.origin[k].fetch_add(1, Ordering::SeqCst) + 1;
                    let key = format!("k{k}");
                    let done = if i.is_multiple_of(2) {
                        app.set(&key, &v, fresh).await
                    } else {
                        app.delete(&key).await.map(drop)
                    };
                    // Counted only once the store confirmed it, and only if the
                    // phase did not change meanwhile.
                    if done.is_ok() && phase.load(Ordering::SeqCst) == p {
                        versions.written[k].fetch_max(v, Ordering::SeqCst);
                        writes.fetch_add(1, Ordering::SeqCst);
                    }
                }
                tokio::time::sleep(Duration::from_millis(7)).await;
            }
        }));
    }
    let at = |p: u8, d: u64| {
        phase.store(p, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(d))
    };
    for _ in 0..2 {
        at(NORMAL, 700).await;
        at(QUIET, 300).await;
        phase.store(STORE_DOWN, Ordering::SeqCst);
        server.kill();
        at(STORE_DOWN, 500).await;
        server.restart();
        at(SETTLING, 900).await;
        at(ORIGIN_DOWN, 600).await;
    }
    at(NORMAL, 500).await;
    stop.store(true, Ordering::SeqCst);
    for t in tasks {
        t.await.unwrap();
    }
    eprintln!(
        "wrong values: {} reads, {} completed writes by the other process, {} wrong",
        reads.load(Ordering::SeqCst),
        writes.load(Ordering::SeqCst),
        wrong.load(Ordering::SeqCst)
    );
    assert!(reads.load(Ordering::SeqCst) > 500, "too few reads ran");
    assert!(writes.load(Ordering::SeqCst) > 50, "too few writes ran");
    assert_eq!(
        wrong.load(Ordering::SeqCst),
        0,
        "reads older than a completed write"
    );
}
