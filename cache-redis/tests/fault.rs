//! Kill Redis during a loop of get-or-compute calls and start it again: no panic,
//! every call returns the computed value while Redis is down (fail-open, bounded by
//! the per-call timeout), plain `get` returns a transient error instead of hanging,
//! and caching resumes within one second of Redis being back.

mod common;
use cache_core::Cache;
use cache_redis::RedisBuilder;
use std::process::{Child, Command, Stdio};
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
    let mut restarted = None;
    // Plain get is bounded by the driver's timeouts and its quick reconnect retries
    // (about 1 s).
    let report = conformance_tests::scenarios::fault_cycle(
        &cache,
        timeout,
        Duration::from_secs(3),
        || redis.kill(),
        || restarted = Some(OwnRedis::start(port)),
    )
    .await;
    eprintln!("{report:?}");
    drop(restarted);
}
