//! The circuit breaker on a real Redis that the test kills and restarts: once open,
//! get-or-compute answers at the speed of the compute (the store is skipped, not
//! waited for), plain calls fail at once, and caching resumes soon after Redis is back.
//! The figures are printed (`--nocapture`); the bounds asserted are generous.

use cache_core::{BreakerConfig, Cache, ErrorKind};
use cache_redis::RedisBuilder;
use conformance_tests::servers::OwnProcess;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn breaker_skips_a_killed_redis_and_closes_when_it_is_back() {
    let mut server = OwnProcess::redis(OwnProcess::free_port(), &[]);
    let timeout = Duration::from_millis(300);
    let backend = RedisBuilder::new(format!("redis://127.0.0.1:{}", server.port))
        .namespace("breaker")
        .timeout(timeout)
        .build()
        .await
        .unwrap();
    let cache = Cache::builder(backend)
        .store_timeout(timeout)
        .circuit_breaker(BreakerConfig::default())
        .build();
    let computes = Arc::new(AtomicUsize::new(0));
    let call = |cache: Cache, computes: Arc<AtomicUsize>, key: String, v: u64| async move {
        let started = Instant::now();
        let got = cache
            .get_or_compute(key, || async move {
                computes.fetch_add(1, Ordering::SeqCst);
                Ok::<_, std::io::Error>(v)
            })
            .await
            .expect("get-or-compute never fails because of the cache");
        (got, started.elapsed())
    };
    assert_eq!(
        call(cache.clone(), computes.clone(), "up".into(), 1)
            .await
            .0,
        1
    );
    assert_eq!(
        call(cache.clone(), computes.clone(), "up".into(), 2)
            .await
            .0,
        1
    );

    // 32 tasks call get-or-compute for one second of outage.
    server.kill();
    let outage = Duration::from_secs(1);
    let down_at = Instant::now();
    let tasks: Vec<_> = (0..32u64)
        .map(|t| {
            let (cache, computes) = (cache.clone(), computes.clone());
            tokio::spawn(async move {
                let mut took = vec![];
                let mut i = 0;
                while down_at.elapsed() < outage {
                    let v = t * 1_000_000 + i;
                    let (got, d) =
                        call(cache.clone(), computes.clone(), format!("d{t}-{i}"), v).await;
                    assert_eq!(got, v, "the computed value while Redis is down");
                    took.push((down_at.elapsed(), d));
                    i += 1;
                }
                took
            })
        })
        .collect();
    let mut took = vec![];
    for t in tasks {
        took.extend(t.await.unwrap());
    }
    // Calls that started once the first failures had opened the breaker (timeouts
    // end by `timeout` after the kill; give it twice that).
    let mut open: Vec<Duration> = took
        .iter()
        .filter(|(at, d)| *at > timeout * 2 + *d)
        .map(|(_, d)| *d)
        .collect();
    open.sort();
    assert!(!open.is_empty(), "no call ran with the breaker open");
    let p50 = open[open.len() / 2];
    let p99 = open[open.len() * 99 / 100];
    eprintln!(
        "outage of {outage:?} under 32 tasks: {} get-or-compute calls finished; with the breaker open: {} calls, p50 {p50:?}, p99 {p99:?}",
        took.len(),
        open.len()
    );
    assert!(
        p50 < Duration::from_millis(5),
        "p50 {p50:?} with the breaker open"
    );
    assert!(
        took.len() > 500,
        "only {} calls during the outage",
        took.len()
    );

    // Plain calls fail at once, and say why.
    let started = Instant::now();
    let err = cache.get::<u64>("up").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    assert!(err.message().contains("circuit breaker open"), "{err}");
    assert!(started.elapsed() < Duration::from_millis(50));

    // Back: caching resumes (a second call is a hit) soon after.
    server.restart();
    let back_at = Instant::now();
    let mut resumed = None;
    let mut n = 0u64;
    while back_at.elapsed() < Duration::from_secs(5) {
        let before = computes.load(Ordering::SeqCst);
        let key = format!("after-{n}");
        call(cache.clone(), computes.clone(), key.clone(), n).await;
        let (got, _) = call(cache.clone(), computes.clone(), key, n + 1).await;
        if got == n && computes.load(Ordering::SeqCst) == before + 1 {
            resumed = Some(back_at.elapsed());
            break;
        }
        n += 2;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let resumed = resumed.expect("caching never resumed after Redis came back");
    eprintln!("caching resumed {resumed:?} after Redis was back");
    assert!(
        resumed < Duration::from_secs(2),
        "resumed after {resumed:?}"
    );
}

/// The outage of issue 31, with the defaults: a `Cache` over a Redis built with
/// `.timeout(250 ms)` and nothing else. Redis killed, each get-or-compute request
/// returns its computed value within the timeout + 10 % (+ 125 ms of scheduling
/// slack, asserted; the figures are printed) until the default circuit breaker has
/// seen its 5 failures, then at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_defaults_each_request_is_bounded_by_the_timeout_then_skips_redis() {
    let mut server = OwnProcess::redis(OwnProcess::free_port(), &[]);
    let timeout = Duration::from_millis(250);
    let backend = RedisBuilder::new(format!("redis://127.0.0.1:{}", server.port))
        .namespace("outage")
        .timeout(timeout)
        .build()
        .await
        .unwrap();
    let cache = Cache::new(backend);
    let threshold = cache
        .circuit_breaker()
        .expect("a breaker by default on Redis")
        .config()
        .failure_threshold as usize;
    let request = |i: u64| {
        let cache = cache.clone();
        async move {
            let started = Instant::now();
            let v = cache
                .get_or_compute(
                    format!("user:{i}"),
                    || async move { Ok::<_, std::io::Error>(i) },
                )
                .await
                .expect("get-or-compute never fails because of the cache");
            assert_eq!(v, i);
            started.elapsed()
        }
    };
    request(0).await;
    server.kill();
    let mut took = vec![];
    for i in 1..=threshold as u64 + 10 {
        took.push(request(i).await);
    }
    eprintln!("requests with Redis down (timeout {timeout:?}): {took:?}");
    let bound = timeout + timeout / 10 + conformance_tests::scenarios::BOUND_SLACK;
    for (i, d) in took[..threshold].iter().enumerate() {
        assert!(
            *d <= bound,
            "request {i} took {d:?} before the breaker opened"
        );
    }
    for (i, d) in took[threshold..].iter().enumerate() {
        assert!(
            *d < Duration::from_millis(50),
            "request {} took {d:?} with the breaker open",
            threshold + i
        );
    }
}
