//! `RedisBackend` through the trait and the typed `Cache`, against the raw `redis`
//! crate on the same connection type (`ConnectionManager`) and the same server, in
//! one run: `bash scripts/bench.sh redis` (or, with servers up,
//! `cargo bench -p cache-redis --bench redis`).
//!
//! The loop is `conformance_tests::bench` (p50/p99 at 1 task, throughput at 64
//! tasks, 9 interleaved rounds, per-round ratios). Targets: p50 at most 1.05x raw,
//! throughput at least 0.95x raw. Also prints `redis-benchmark -c 50 -P 1` against the same
//! server as its unpipelined ceiling, and a bb8 pool of 16 connections as the road
//! not taken. Then batch get-or-compute of 100 warm keys against a loop of 100 single
//! calls, at 64 tasks (target: the batch at least 5x the loop's keys per second).

use cache_core::{Cache, CacheBackend};
use cache_redis::RedisBuilder;
use conformance_tests::bench::{compare, raw_key, value, Op, Settings, Subject};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use std::sync::Arc;
use std::time::Duration;

/// A GET or SET of `raw:N` as the raw driver sends it.
fn command(op: Op, i: usize, v: &[u8]) -> redis::Cmd {
    let mut cmd = redis::cmd(if op == Op::Get { "GET" } else { "SET" });
    cmd.arg(format!("bench:{}", raw_key(i)));
    if op == Op::Set {
        cmd.arg(v);
    }
    cmd
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let url = std::env::var("CACHE_TEST_REDIS_URL").unwrap_or_else(|_| {
        panic!("CACHE_TEST_REDIS_URL is not set: run `bash scripts/bench.sh redis`, or start the servers with `bash scripts/servers.sh start` and `eval \"$(bash scripts/servers.sh env)\"`")
    });
    let timeout = Duration::from_secs(1);
    let backend = RedisBuilder::new(url.clone())
        .namespace("bench")
        .timeout(timeout)
        .build()
        .await
        .unwrap();
    let backend: Arc<dyn CacheBackend> = Arc::new(backend);
    let raw_cfg = ConnectionManagerConfig::new()
        .set_response_timeout(Some(timeout))
        .set_connection_timeout(Some(Duration::from_secs(5)));
    let raw =
        ConnectionManager::new_with_config(redis::Client::open(url.as_str()).unwrap(), raw_cfg)
            .await
            .unwrap();
    let pool = bb8::Pool::builder()
        .max_size(16)
        .test_on_check_out(false) // no PING per checkout: the fairest pool
        .build(redis::Client::open(url.as_str()).unwrap())
        .await
        .unwrap();
    let (v, v2) = (value(), value());
    let subjects = [
        Subject::new("raw redis (ConnectionManager)", move |op, i| {
            let (mut c, cmd) = (raw.clone(), command(op, i, &v));
            async move {
                let _: redis::Value = cmd.query_async(&mut c).await.unwrap();
            }
        }),
        Subject::backend("RedisBackend via dyn trait", backend.clone()),
        Subject::typed("typed Cache<String>", Cache::from_arc(backend.clone())),
        Subject::new("bb8 pool, 16 multiplexed conns", move |op, i| {
            let (p, cmd) = (pool.clone(), command(op, i, &v2));
            async move {
                let mut c = p.get().await.unwrap();
                let _: redis::Value = cmd.query_async(&mut *c).await.unwrap();
            }
        })
        .unranked(),
    ];
    let settings = Settings {
        lat_ops: 5_000,
        tput_ops: 200_000,
        rounds: 9,
        ..Settings::default()
    };
    compare(&format!("Redis at {url}"), settings, &subjects).await;
    batch_vs_loop(&Cache::from_arc(backend.clone())).await;
    backend.clear().await.unwrap();
    let mut raw_conn = redis::Client::open(url.as_str())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let raw_keys: Vec<String> = (0..conformance_tests::bench::KEYS)
        .map(|i| format!("bench:{}", raw_key(i)))
        .collect();
    let _: usize = redis::cmd("DEL")
        .arg(&raw_keys)
        .query_async(&mut raw_conn)
        .await
        .unwrap();

    let port = url
        .rsplit(':')
        .next()
        .unwrap_or("6379")
        .trim_end_matches('/')
        .to_string();
    match std::process::Command::new("redis-benchmark")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &port,
            "-c",
            "50",
            "-P",
            "1",
            "-d",
            "100",
            "-n",
            "100000",
            "-t",
            "get,set",
            "-q",
        ])
        .output()
    {
        Ok(out) => {
            println!("redis-benchmark -c 50 -P 1 -d 100 (the server's unpipelined ceiling):");
            for line in String::from_utf8_lossy(&out.stdout)
                .split(['\r', '\n'])
                .filter(|l| l.contains("requests per second"))
            {
                println!("  {}", line.trim());
            }
        }
        Err(e) => println!("redis-benchmark not run: {e}"),
    }
}

/// 100 warm keys at 64 tasks: `cached_many` (one read) against a loop of single
/// get-or-compute calls, in keys per second, 5 interleaved rounds, the median ratio.
async fn batch_vs_loop(cache: &Cache) {
    const KEYS: u32 = 100;
    const TASKS: usize = 64;
    let ids: Vec<u32> = (0..KEYS).collect();
    let batch = |cache: Cache, ids: Vec<u32>| async move {
        let got = cache
            .cached_many(ids.iter().map(|i| (format!("batch:{i}"), *i)))
            .get_or_compute_many(|missing: Vec<u32>| async move {
                Ok::<_, std::io::Error>(missing.into_iter().map(|i| (i, i)))
            })
            .await
            .unwrap();
        assert_eq!(got.len(), ids.len());
    };
    let looped = |cache: Cache, ids: Vec<u32>| async move {
        for i in ids {
            let v: u32 = cache
                .get_or_compute(format!("batch:{i}"), || async move {
                    Ok::<_, std::io::Error>(i)
                })
                .await
                .unwrap();
            assert_eq!(v, i);
        }
    };
    batch(cache.clone(), ids.clone()).await;
    // Keys per second of `runs` calls of `f` on each of TASKS tasks.
    async fn rate<F, Fut>(cache: &Cache, ids: &[u32], runs: usize, f: F) -> f64
    where
        F: Fn(Cache, Vec<u32>) -> Fut + Copy + Send + 'static,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        let started = std::time::Instant::now();
        let tasks: Vec<_> = (0..TASKS)
            .map(|_| {
                let (cache, ids) = (cache.clone(), ids.to_vec());
                tokio::spawn(async move {
                    for _ in 0..runs {
                        f(cache.clone(), ids.clone()).await;
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        (TASKS * runs * ids.len()) as f64 / started.elapsed().as_secs_f64()
    }
    let mut ratios = Vec::new();
    for round in 1..=5 {
        let b = rate(cache, &ids, 20, batch).await;
        let l = rate(cache, &ids, 2, looped).await;
        println!("batch get-or-compute, 100 warm keys, 64 tasks, round {round}: batch {b:.0} keys/s, loop {l:.0} keys/s, {:.1}x", b / l);
        ratios.push(b / l);
    }
    let ratio = conformance_tests::bench::median(ratios);
    println!("batch get-or-compute vs a loop of single calls: {ratio:.1}x (target >= 5x)");
}
