//! `RedisBackend` through the trait and the typed `Cache`, against the raw `redis`
//! crate on the same connection type (`ConnectionManager`) and the same server, in
//! one run: `bash scripts/bench.sh redis` (or, with servers up,
//! `cargo bench -p cache-redis --bench redis`).
//!
//! 100-byte values. p50/p99 latency of GET and SET at 1 task, throughput at 64
//! concurrent tasks, each over 9 interleaved rounds; the median of the per-round ratios to raw. Targets:
//! <= 1.05x raw p50 latency, >= 0.95x raw throughput. Also prints
//! `redis-benchmark -c 50 -P 1` against the same server as its unpipelined ceiling,
//! and a bb8 pool of 16 connections as the road not taken.

use cache_core::{Bytes, Cache, CacheBackend, Expiry};
use cache_redis::RedisBuilder;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use std::sync::Arc;
use std::time::{Duration, Instant};

const LAT_OPS: usize = 5_000;
const TPUT_TASKS: usize = 64;
const TPUT_OPS: usize = 200_000;
const ROUNDS: usize = 9;
const KEYS: usize = 1_000;

#[derive(Clone, Copy, PartialEq)]
enum Op {
    Get,
    Set,
}

#[derive(Clone)]
enum Client {
    Raw(ConnectionManager),
    Pool(bb8::Pool<redis::Client>),
    Trait(Arc<dyn CacheBackend>),
    Typed(Cache),
}

struct Ctx {
    keys: Vec<String>,
    raw_keys: Vec<String>,
    value: Bytes,
    text: String,
}

impl Client {
    async fn run(&mut self, op: Op, i: usize, ctx: &Ctx) {
        let k = i % KEYS;
        match (self, op) {
            (Client::Raw(c), Op::Get) => {
                let _: Option<Vec<u8>> = redis::cmd("GET")
                    .arg(&ctx.raw_keys[k])
                    .query_async(c)
                    .await
                    .unwrap();
            }
            (Client::Raw(c), Op::Set) => {
                let _: () = redis::cmd("SET")
                    .arg(&ctx.raw_keys[k])
                    .arg(&ctx.value[..])
                    .query_async(c)
                    .await
                    .unwrap();
            }
            (Client::Pool(p), op) => {
                let mut c = p.get().await.unwrap();
                let mut cmd = redis::cmd(if op == Op::Get { "GET" } else { "SET" });
                cmd.arg(&ctx.raw_keys[k]);
                if op == Op::Set {
                    cmd.arg(&ctx.value[..]);
                }
                let _: redis::Value = cmd.query_async(&mut *c).await.unwrap();
            }
            (Client::Trait(b), Op::Get) => {
                b.get(&ctx.keys[k]).await.unwrap();
            }
            (Client::Trait(b), Op::Set) => {
                b.set(&ctx.keys[k], ctx.value.clone(), Expiry::Never)
                    .await
                    .unwrap();
            }
            (Client::Typed(c), Op::Get) => {
                let _: Option<String> = c.get(&ctx.keys[k]).await.unwrap();
            }
            (Client::Typed(c), Op::Set) => {
                c.set(&ctx.keys[k], &ctx.text, Expiry::Never).await.unwrap();
            }
        }
    }
}

/// (p50, p99) in microseconds at one task.
async fn latency(client: &Client, op: Op, ctx: &Ctx) -> (f64, f64) {
    let mut c = client.clone();
    let mut lat = Vec::with_capacity(LAT_OPS);
    for i in 0..LAT_OPS {
        let t = Instant::now();
        c.run(op, i, ctx).await;
        lat.push(t.elapsed());
    }
    lat.sort();
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    (us(lat[LAT_OPS / 2]), us(lat[LAT_OPS * 99 / 100]))
}

/// Operations per second with 64 concurrent tasks.
async fn throughput(client: &Client, op: Op, ctx: &Arc<Ctx>) -> f64 {
    let start = Instant::now();
    let tasks: Vec<_> = (0..TPUT_TASKS)
        .map(|t| {
            let (mut c, ctx) = (client.clone(), ctx.clone());
            tokio::spawn(async move {
                for i in 0..TPUT_OPS / TPUT_TASKS {
                    c.run(op, t * 7919 + i, &ctx).await;
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    (TPUT_OPS / TPUT_TASKS * TPUT_TASKS) as f64 / start.elapsed().as_secs_f64()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let url = std::env::var("CACHE_TEST_REDIS_URL").unwrap_or_else(|_| {
        panic!("CACHE_TEST_REDIS_URL is not set: run `bash scripts/bench.sh redis`, or start the servers with `bash scripts/servers.sh start` and `eval \"$(bash scripts/servers.sh env)\"`")
    });
    let timeout = Duration::from_secs(1);
    let namespace = "bench";
    let backend = RedisBuilder::new(url.clone())
        .namespace(namespace)
        .timeout(timeout)
        .build()
        .await
        .unwrap();
    let backend: Arc<dyn CacheBackend> = Arc::new(backend);
    let typed = Cache::from_arc(backend.clone());
    let raw_cfg = ConnectionManagerConfig::new()
        .set_response_timeout(Some(timeout))
        .set_connection_timeout(Some(Duration::from_secs(5)));
    let raw =
        ConnectionManager::new_with_config(redis::Client::open(url.as_str()).unwrap(), raw_cfg)
            .await
            .unwrap();
    let ctx = Arc::new(Ctx {
        keys: (0..KEYS).map(|i| format!("key:{i}")).collect(),
        raw_keys: (0..KEYS).map(|i| format!("{namespace}:raw:{i}")).collect(),
        value: Bytes::from(vec![b'x'; 100]),
        text: "x".repeat(98),
    });
    let pool = bb8::Pool::builder()
        .max_size(16)
        .test_on_check_out(false) // no PING per checkout: the fairest pool
        .build(redis::Client::open(url.as_str()).unwrap())
        .await
        .unwrap();
    let clients = [
        ("raw redis (ConnectionManager)", Client::Raw(raw)),
        ("RedisBackend via dyn trait", Client::Trait(backend.clone())),
        ("typed Cache<String>", Client::Typed(typed)),
        ("bb8 pool, 16 multiplexed conns", Client::Pool(pool)),
    ];
    // Warm up and fill the keys for GET.
    for (_, c) in &clients {
        for i in 0..KEYS {
            c.clone().run(Op::Set, i, &ctx).await;
        }
    }

    println!("Redis at {url}: 100-byte values, medians of {ROUNDS} interleaved rounds");
    for op in [Op::Get, Op::Set] {
        let name = if op == Op::Get { "GET" } else { "SET" };
        // Per round: each client once, in a rotating order; ratios are taken within a
        // round (so drift of the shared 2-core machine cancels) and the median is shown.
        let mut p50 = vec![vec![]; clients.len()];
        let mut p99 = vec![vec![]; clients.len()];
        let mut tput = vec![vec![]; clients.len()];
        for round in 0..ROUNDS {
            for j in 0..clients.len() {
                let i = (round + j) % clients.len();
                let (a, b) = latency(&clients[i].1, op, &ctx).await;
                p50[i].push(a);
                p99[i].push(b);
                tput[i].push(throughput(&clients[i].1, op, &ctx).await);
            }
        }
        println!("{name}");
        for (i, (label, _)) in clients.iter().enumerate() {
            let ratio = if i == 0 || label.starts_with("bb8") {
                String::new()
            } else {
                let lat_ratio = median((0..ROUNDS).map(|r| p50[i][r] / p50[0][r]).collect());
                let tput_ratio = median((0..ROUNDS).map(|r| tput[i][r] / tput[0][r]).collect());
                format!(
                    "  p50 {lat_ratio:.3}x raw (target <= 1.05x), throughput {tput_ratio:.3}x raw (target >= 0.95x)"
                )
            };
            println!(
                "  {label:<30} p50 {:>6.1} us  p99 {:>6.1} us  64 tasks {:>8.0} ops/s{ratio}",
                median(p50[i].clone()),
                median(p99[i].clone()),
                median(tput[i].clone())
            );
        }
    }
    backend.clear().await.unwrap();
    let mut raw_conn = redis::Client::open(url.as_str())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let _: usize = redis::cmd("DEL")
        .arg(&ctx.raw_keys)
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
