//! `RedisBackend` through the trait and the typed `Cache`, against the raw `redis`
//! crate on the same connection type (`ConnectionManager`) and the same server, in
//! one run: `bash scripts/bench.sh redis` (or, with servers up,
//! `cargo bench -p cache-redis --bench redis`).
//!
//! The loop is `conformance_tests::bench` (p50/p99 at 1 task, throughput at 64
//! tasks, 9 interleaved rounds, per-round ratios). Targets: p50 at most 1.05x raw,
//! throughput at least 0.95x raw. Also prints `redis-benchmark -c 50 -P 1` against the same
//! server as its unpipelined ceiling, and a bb8 pool of 16 connections as the road
//! not taken.

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
