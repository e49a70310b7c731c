//! Kill Redis during a loop of get-or-compute calls and start it again: no panic,
//! every call returns the computed value while Redis is down (fail-open, bounded by
//! the per-call timeout), plain `get` returns a transient error instead of hanging,
//! and caching resumes within one second of Redis being back.

mod common;
use cache_core::Cache;
use cache_redis::RedisBuilder;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A redis-server of this test's own, on its own port, so killing it disturbs no one.
struct OwnRedis {
    port: u16,
    child: Option<Child>,
}

impl OwnRedis {
    fn free_port() -> u16 {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    }

    fn start(port: u16) -> Self {
        let bin = common::env("CACHE_TEST_REDIS_SERVER_BIN");
        let child = Command::new(bin)
            .args([
                "--bind",
                "127.0.0.1",
                "--port",
                &port.to_string(),
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "redis-server did not start on {port}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        OwnRedis {
            port,
            child: Some(child),
        }
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.kill();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_killed_and_restarted_during_get_or_compute() {
    let mut redis = OwnRedis::start(OwnRedis::free_port());
    let port = redis.port;
    let timeout = Duration::from_millis(200);
    let backend = RedisBuilder::new(format!("redis://127.0.0.1:{port}"))
        .namespace("fault")
        .timeout(timeout)
        .build()
        .await
        .unwrap();
    let cache = Cache::builder(backend).timeout(timeout).build();
    let computes = Arc::new(AtomicUsize::new(0));
    let call = |key: String, value: u64| {
        let (cache, computes) = (cache.clone(), computes.clone());
        async move {
            let started = Instant::now();
            let v = cache
                .get_or_compute(key, || async move {
                    computes.fetch_add(1, Ordering::SeqCst);
                    Ok::<_, std::io::Error>(value)
                })
                .await
                .expect("get-or-compute never fails because of the cache");
            (v, started.elapsed())
        }
    };

    // Up: the second call is a hit.
    assert_eq!(call("up".into(), 1).await.0, 1);
    assert_eq!(call("up".into(), 2).await.0, 1);
    assert_eq!(computes.load(Ordering::SeqCst), 1);

    // Down: every call computes and returns, each within a few timeouts, none hangs.
    redis.kill();
    let down_since = Instant::now();
    let mut i = 0u64;
    while down_since.elapsed() < Duration::from_millis(1500) {
        let (v, took) = call(format!("down-{}", i % 3), i).await;
        assert_eq!(v, i, "the computed value is returned while Redis is down");
        assert!(took < timeout * 5, "call {i} took {took:?} with Redis down");
        i += 1;
    }
    assert!(i >= 3, "only {i} calls ran while Redis was down");
    let started = Instant::now();
    let err = cache.get::<u64>("up").await.unwrap_err();
    assert!(err.is_transient(), "plain get while down: {err}");
    // Bounded by the driver's timeouts and its quick reconnect retries (about 1 s).
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "plain get took {:?}",
        started.elapsed()
    );

    // Back: caching resumes within one second.
    let _redis = OwnRedis::start(port);
    let back_at = Instant::now();
    let mut resumed = None;
    let mut n = 1000;
    while back_at.elapsed() < Duration::from_secs(3) {
        let before = computes.load(Ordering::SeqCst);
        call("after".into(), n).await;
        let (v, _) = call("after".into(), n + 1).await;
        if computes.load(Ordering::SeqCst) == before + 1 && v == n {
            resumed = Some(back_at.elapsed());
            break;
        }
        cache.delete("after").await.ok();
        n += 2;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let resumed = resumed.expect("caching never resumed after Redis came back");
    assert!(
        resumed < Duration::from_secs(1),
        "caching resumed only after {resumed:?}"
    );
    eprintln!("calls while down: {i}; caching resumed {resumed:?} after restart");
}
