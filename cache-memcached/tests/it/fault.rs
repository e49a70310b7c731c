//! One of three servers killed mid-loop and started again: only that server's keys
//! miss; the other two keep serving hits. (One server killed and restarted is the
//! shared `scenarios::fault_killed_and_restarted`.)

use crate::common;
use cache_core::{Cache, CacheBackend};
use cache_memcached::MemcachedBuilder;
use conformance_tests::servers::OwnProcess;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_of_three_servers_down_costs_only_its_keys() {
    let mut servers: Vec<OwnProcess> = (0..3)
        .map(|_| common::memcached(OwnProcess::free_port()))
        .collect();
    let timeout = Duration::from_millis(200);
    let backend = MemcachedBuilder::default()
        .servers(servers.iter().map(|s| format!("127.0.0.1:{}", s.port)))
        .namespace("ring-fault")
        .timeout(timeout)
        .build()
        .await
        .unwrap();
    let keys: Vec<String> = (0..60).map(|i| format!("k{i}")).collect();
    let on: Vec<usize> = keys.iter().map(|k| backend.server_of(k)).collect();
    for s in 0..3 {
        assert!(on.contains(&s), "the ring left server {s} without keys");
    }
    let cache = Cache::builder(backend).store_timeout(timeout).build();
    let computes = Arc::new(AtomicUsize::new(0));
    let call = |key: String| {
        let (cache, computes) = (cache.clone(), computes.clone());
        async move {
            let started = Instant::now();
            let v = cache
                .get_or_compute(key.clone(), || async move {
                    computes.fetch_add(1, Ordering::SeqCst);
                    Ok::<_, std::io::Error>(key)
                })
                .await
                .expect("get-or-compute never fails because of the cache");
            (v, started.elapsed())
        }
    };
    for k in &keys {
        call(k.clone()).await;
    }
    assert_eq!(computes.load(Ordering::SeqCst), keys.len());

    servers[1].kill();
    computes.store(0, Ordering::SeqCst);
    for k in &keys {
        let (v, took) = call(k.clone()).await;
        assert_eq!(&v, k);
        assert!(took < timeout * 5, "{k} took {took:?}");
    }
    let down = on.iter().filter(|&&s| s == 1).count();
    assert_eq!(
        computes.load(Ordering::SeqCst),
        down,
        "only the dead server's keys were computed again"
    );
    let dead_key = &keys[on.iter().position(|&s| s == 1).unwrap()];
    let live_key = &keys[on.iter().position(|&s| s != 1).unwrap()];
    let started = Instant::now();
    let err = cache.get::<String>(dead_key).await.unwrap_err();
    assert!(err.is_transient(), "{err}");
    assert!(
        started.elapsed() < timeout * 3,
        "took {:?}",
        started.elapsed()
    );
    assert!(
        err.to_string()
            .contains(&format!("127.0.0.1:{}", servers[1].port)),
        "{err}"
    );
    assert_eq!(
        cache.get::<String>(live_key).await.unwrap().as_ref(),
        Some(live_key)
    );

    servers[1].restart();
    let back = Instant::now();
    loop {
        computes.store(0, Ordering::SeqCst);
        call(dead_key.clone()).await;
        call(dead_key.clone()).await;
        if computes.load(Ordering::SeqCst) == 1 {
            break;
        }
        assert!(
            back.elapsed() < Duration::from_secs(1),
            "caching on the restarted server never resumed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    eprintln!(
        "the restarted server cached again after {:?}",
        back.elapsed()
    );
    let _ = cache.backend().clear().await;
}
