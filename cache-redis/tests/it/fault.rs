//! Kill Redis during a loop of get-or-compute calls and start it again: no panic,
//! every call returns the computed value while Redis is down (fail-open, bounded by
//! the per-call timeout), plain `get` returns a transient error instead of hanging,
//! and caching resumes within one second of Redis being back.

use cache_core::Cache;
use cache_redis::RedisBuilder;
use conformance_tests::servers::OwnProcess;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_killed_and_restarted_during_get_or_compute() {
    let redis = std::cell::RefCell::new(OwnProcess::redis(OwnProcess::free_port(), &[]));
    let port = redis.borrow().port;
    let timeout = Duration::from_millis(200);
    let backend = RedisBuilder::new(format!("redis://127.0.0.1:{port}"))
        .namespace("fault")
        .timeout(timeout)
        .build()
        .await
        .unwrap();
    let cache = Cache::builder(backend).store_timeout(timeout).build();
    // Plain get is bounded by the driver's timeouts and its quick reconnect retries
    // (about 1 s).
    let report = conformance_tests::scenarios::fault_cycle(
        &cache,
        timeout,
        Duration::from_secs(3),
        || redis.borrow_mut().kill(),
        || redis.borrow_mut().restart(),
    )
    .await;
    eprintln!("{report:?}");
}
