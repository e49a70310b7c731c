//! The get-or-compute miss path on Redis, against a raw-driver reference measured in
//! the same run: `bash scripts/servers.sh start redis`, then
//! `cargo bench -p cache-redis --bench compute`.
//!
//! Every call is a miss on a new key: read, take the lock, read again, compute (no
//! work), write, release. The reference sends the same kind of round trips with the
//! raw `redis` crate on one multiplexed connection: GET, SET NX PX, GET, SET PX, and a
//! token-checked Lua DEL. Rounds alternate subject and reference; the ratio is the
//! median of per-round ratios.

use cache_core::Cache;
use cache_redis::RedisBuilder;
use redis::aio::ConnectionManager;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const TASKS: usize = 64;
const PER_TASK: usize = 300;
const ROUNDS: usize = 7;

static NEXT: AtomicUsize = AtomicUsize::new(0);

const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0";

async fn raw_miss(c: &mut ConnectionManager, script: &redis::Script, i: usize) {
    let k = format!("benchmiss-raw:{i}");
    let lock = format!("benchmiss-raw:#lock:{i}");
    let _: Option<Vec<u8>> = redis::cmd("GET").arg(&k).query_async(c).await.unwrap();
    let _: Option<String> = redis::cmd("SET")
        .arg(&lock)
        .arg("token")
        .arg("NX")
        .arg("PX")
        .arg(30_000)
        .query_async(c)
        .await
        .unwrap();
    let _: Option<Vec<u8>> = redis::cmd("GET").arg(&k).query_async(c).await.unwrap();
    let _: () = redis::cmd("SET")
        .arg(&k)
        .arg(&[7u8; 40][..])
        .arg("PX")
        .arg(60_000)
        .query_async(c)
        .await
        .unwrap();
    let _: i64 = script
        .key(&lock)
        .arg("token")
        .invoke_async(c)
        .await
        .unwrap();
}

async fn timed<F, Fut>(f: F) -> f64
where
    F: Fn(usize) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let start = Instant::now();
    let tasks: Vec<_> = (0..TASKS)
        .map(|_| {
            let f = f.clone();
            tokio::spawn(async move {
                for _ in 0..PER_TASK {
                    f(NEXT.fetch_add(1, Ordering::Relaxed)).await;
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    (TASKS * PER_TASK) as f64 / start.elapsed().as_secs_f64()
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let url = std::env::var("CACHE_TEST_REDIS_URL").expect("CACHE_TEST_REDIS_URL is not set: start the servers with `bash scripts/servers.sh start redis` and `eval \"$(bash scripts/servers.sh env redis)\"`");
    let backend = RedisBuilder::new(url.clone())
        .namespace("benchmiss")
        .timeout(Duration::from_secs(5))
        .build()
        .await
        .unwrap();
    let cache: Cache = Cache::builder(backend)
        .store_timeout(Duration::from_secs(5))
        .default_expiry(Duration::from_secs(60))
        .build();
    let raw = ConnectionManager::new(redis::Client::open(url.as_str()).unwrap())
        .await
        .unwrap();
    let script = Arc::new(redis::Script::new(RELEASE));
    let mut ratios = Vec::new();
    let (mut lib_best, mut raw_best) = (0f64, 0f64);
    for round in 0..ROUNDS {
        let c = cache.clone();
        let lib = timed(move |i| {
            let c = c.clone();
            async move {
                let v: Vec<u8> = c
                    .get_or_compute(format!("m{i}"), || async {
                        Ok::<_, std::io::Error>(vec![7u8; 32])
                    })
                    .await
                    .unwrap();
                assert_eq!(v.len(), 32);
            }
        })
        .await;
        let (r, s) = (raw.clone(), script.clone());
        let reference = timed(move |i| {
            let (mut r, s) = (r.clone(), s.clone());
            async move { raw_miss(&mut r, &s, i).await }
        })
        .await;
        println!("round {round}: get_or_compute miss {lib:.0}/s, raw 5-trip reference {reference:.0}/s, ratio {:.3}", lib / reference);
        ratios.push(lib / reference);
        lib_best = lib_best.max(lib);
        raw_best = raw_best.max(reference);
    }
    ratios.sort_by(f64::total_cmp);
    println!(
        "get_or_compute miss path, {TASKS} tasks: best {lib_best:.0}/s, raw reference best {raw_best:.0}/s; median per-round ratio {:.3}",
        ratios[ROUNDS / 2]
    );
    cache.clear().await.unwrap();
    let mut c = raw.clone();
    let mut cursor = 0u64;
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg("benchmiss-raw:*")
            .arg("COUNT")
            .arg(1000)
            .query_async(&mut c)
            .await
            .unwrap();
        if !keys.is_empty() {
            let _: usize = redis::cmd("UNLINK")
                .arg(&keys)
                .query_async(&mut c)
                .await
                .unwrap();
        }
        if next == 0 {
            break;
        }
        cursor = next;
    }
}
