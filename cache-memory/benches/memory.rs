//! Read throughput of the in-memory backend against `quick_cache::sync::Cache`,
//! `moka::sync::Cache` and `moka::future::Cache` holding the same bytes, measured in
//! the same run: `cargo bench -p cache-memory --bench memory`.
//!
//! Skewed (Zipf, s = 1.0) reads over 10 000 keys holding 100-byte values, on 1 and
//! 2 threads, in interleaved rounds. Prints the median operations per second and the
//! median of the per-round ratios.
//! Also the typed get of values written by get-or-compute (with the freshness
//! header) against the bare typed get (target: within 5 %), and the typed get with
//! observability on (the default: stats, and spans and metrics with no subscriber or
//! recorder installed) against the same store read by a cache built with
//! `.observe(false)`, in adjacent pairs of runs (target: within 3 %).
//! Targets: through the trait (`get_now`, what `Cache` uses) >= 0.75x quick_cache at
//! 1 thread and never below 2x moka::sync; typed `Cache::get` >= 0.4x quick_cache.

use cache_core::{Bytes, Cache, CacheBackend, CacheBuilder, Expiry};
use cache_memory::MemoryBackend;
use serde::{Deserialize, Serialize};
use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

const KEYS: usize = 10_000;
const OPS_PER_THREAD: usize = 2_000_000;
const ROUNDS: usize = 7;

#[derive(Clone, Serialize, Deserialize)]
struct Small {
    id: u64,
    score: f64,
    name: String,
}

fn small(i: usize) -> Small {
    Small {
        id: i as u64,
        score: i as f64 / 3.0,
        name: format!("user-{i}"),
    }
}

/// Indices drawn from a Zipf(1.0) distribution (`rand_distr`), reproducibly.
fn zipf_indices(n: usize, count: usize, seed: u64) -> Vec<usize> {
    use rand::{rngs::StdRng, SeedableRng};
    use rand_distr::{Distribution, Zipf};
    let zipf = Zipf::new(n as f64, 1.0).expect("valid Zipf parameters");
    let mut rng = StdRng::seed_from_u64(seed);
    (0..count)
        .map(|_| (zipf.sample(&mut rng) as usize - 1).min(n - 1))
        .collect()
}

/// Run `f(thread_index)` on `threads` OS threads at once; ops per second overall.
fn run_threads<F>(threads: usize, f: F) -> f64
where
    F: Fn(usize) + Send + Sync + 'static,
{
    let f = Arc::new(f);
    let barrier = Arc::new(std::sync::Barrier::new(threads + 1));
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let (f, barrier) = (f.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                f(t);
            })
        })
        .collect();
    barrier.wait();
    let start = Instant::now();
    for h in handles {
        h.join().unwrap();
    }
    (threads * OPS_PER_THREAD) as f64 / start.elapsed().as_secs_f64()
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap()
        .block_on(f)
}

fn main() {
    let keys: Arc<Vec<String>> = Arc::new((0..KEYS).map(|i| format!("key:{i}")).collect());
    let streams: Arc<Vec<Vec<usize>>> = Arc::new(
        (0..2)
            .map(|t| zipf_indices(KEYS, OPS_PER_THREAD, 0x9E37_79B9 + t as u64))
            .collect(),
    );
    let value = Bytes::from(vec![b'x'; 100]);

    let backend = Arc::new(
        MemoryBackend::builder()
            .max_entries(KEYS * 2)
            .build()
            .unwrap(),
    );
    let dyn_backend: Arc<dyn CacheBackend> = backend.clone();
    let typed_backend: Arc<dyn CacheBackend> = Arc::new(
        MemoryBackend::builder()
            .max_entries(KEYS * 2)
            .build()
            .unwrap(),
    );
    let typed = Cache::from_arc(typed_backend.clone());
    // The same store read without spans, metrics or stats.
    let quiet = CacheBuilder::from_arc(typed_backend).observe(false).build();
    // The same values written by get-or-compute, so each carries the freshness header.
    let enveloped = Cache::new(
        MemoryBackend::builder()
            .max_entries(KEYS * 2)
            .build()
            .unwrap(),
    );
    let moka_bytes: moka::future::Cache<String, Bytes> =
        moka::future::Cache::new((KEYS * 2) as u64);
    let moka_struct: moka::future::Cache<String, Small> =
        moka::future::Cache::new((KEYS * 2) as u64);
    let quick: Arc<quick_cache::sync::Cache<String, Bytes>> =
        Arc::new(quick_cache::sync::Cache::new(KEYS * 2));
    let moka_sync: moka::sync::Cache<String, Bytes> = moka::sync::Cache::new((KEYS * 2) as u64);
    block_on(async {
        for (i, k) in keys.iter().enumerate() {
            dyn_backend
                .set(k, value.clone(), Expiry::Never)
                .await
                .unwrap();
            typed.set(k, &small(i), Expiry::Never).await.unwrap();
            let v: Small = enveloped
                .cached(k)
                .expiry(Expiry::Never)
                .get_or_compute(|| async move { Ok::<_, std::io::Error>(small(i)) })
                .await
                .unwrap();
            black_box(v);
            moka_bytes.insert(k.clone(), value.clone()).await;
            moka_struct.insert(k.clone(), small(i)).await;
            quick.insert(k.clone(), value.clone());
            moka_sync.insert(k.clone(), value.clone());
        }
        moka_sync.run_pending_tasks();
        moka_bytes.run_pending_tasks().await;
        moka_struct.run_pending_tasks().await;
    });

    println!(
        "memory backend vs quick_cache and moka: Zipf(1.0) reads over {KEYS} keys, 100-byte values"
    );
    println!(
        "({ROUNDS} interleaved rounds of {OPS_PER_THREAD} gets per thread; medians of ops/s and of the per-round ratios)"
    );
    observe_cost(&typed, &quiet, &keys, &streams[0]);
    for threads in [1usize, 2] {
        // One measurement: every thread reads its own Zipf stream with a clone of `$client`.
        macro_rules! measure {
            ($client:expr, |$c:ident, $k:ident| $get:expr) => {{
                let ($c, keys, streams) = ($client.clone(), keys.clone(), streams.clone());
                run_threads(threads, move |t| {
                    block_on(async {
                        for &i in &streams[t] {
                            let $k = keys[i].as_str();
                            black_box($get);
                        }
                    })
                })
            }};
        }
        // Rounds interleave the four readers, so drift of the shared machine hits all
        // of them alike; ratios are taken within a round.
        let mut ops: [Vec<f64>; 8] = Default::default();
        for _ in 0..ROUNDS {
            ops[0].push(measure!(quick, |q, k| q.get(k)));
            ops[1].push(measure!(moka_sync, |m, k| m.get(k)));
            ops[2].push(measure!(moka_bytes, |m, k| m.get(k).await));
            ops[3].push(measure!(moka_struct, |m, k| m.get(k).await));
            ops[4].push(measure!(dyn_backend, |b, k| b.get_now(k).unwrap().unwrap()));
            ops[5].push(measure!(dyn_backend, |b, k| b.get(k).await.unwrap()));
            ops[6].push(measure!(typed, |c, k| c.get::<Small>(k).await.unwrap()));
            ops[7].push(measure!(enveloped, |c, k| c.get::<Small>(k).await.unwrap()));
        }
        let ratio =
            |a: usize, b: usize| median((0..ROUNDS).map(|r| ops[a][r] / ops[b][r]).collect());
        let [quick_ops, moka_sync_ops, moka_b, moka_s, now_ops, trait_ops, typed_ops, env_ops] =
            ops.clone().map(median);
        println!("threads={threads}");
        println!("  quick_cache::sync get (Bytes)      {quick_ops:>12.0} ops/s");
        println!("  moka::sync get (Bytes)             {moka_sync_ops:>12.0} ops/s");
        println!("  moka::future get (Bytes)           {moka_b:>12.0} ops/s");
        println!("  moka::future get (struct, cloned)  {moka_s:>12.0} ops/s");
        println!(
            "  get_now via dyn trait (Cache's)    {now_ops:>12.0} ops/s  {:.2}x quick_cache (target >= 0.75x at 1 thread), {:.2}x moka::sync (target >= 2x)",
            ratio(4, 0),
            ratio(4, 1)
        );
        println!(
            "  get().await via dyn trait          {trait_ops:>12.0} ops/s  {:.2}x quick_cache, {:.2}x moka::sync, {:.2}x moka::future",
            ratio(5, 0),
            ratio(5, 1),
            ratio(5, 2)
        );
        println!(
            "  Cache::get::<Small> (msgpack)      {typed_ops:>12.0} ops/s  {:.2}x quick_cache (target >= 0.40x), {:.2}x moka::future struct",
            ratio(6, 0),
            ratio(6, 3)
        );
        println!(
            "  Cache::get::<Small>, with header     {env_ops:>12.0} ops/s  {:.3}x the bare typed get (target >= 0.95x)",
            ratio(7, 6)
        );
    }
}

/// The observed typed get (the default) against `observe(false)` over the same store,
/// on one thread, in adjacent pairs of short runs (order alternating), so that the
/// machine's drift, larger than the difference, cancels within a pair.
fn observe_cost(observed: &Cache, quiet: &Cache, keys: &[String], stream: &[usize]) {
    const PAIRS: usize = 41;
    const OPS: usize = 200_000;
    let run = |c: &Cache| {
        block_on(async {
            let start = Instant::now();
            for &i in &stream[..OPS] {
                black_box(c.get::<Small>(keys[i].as_str()).await.unwrap());
            }
            start.elapsed().as_secs_f64()
        })
    };
    let mut ratios = Vec::with_capacity(PAIRS);
    let (mut on_total, mut off_total) = (0.0, 0.0);
    for p in 0..PAIRS {
        let (on, off) = if p % 2 == 0 {
            let on = run(observed);
            (on, run(quiet))
        } else {
            let off = run(quiet);
            (run(observed), off)
        };
        on_total += on;
        off_total += off;
        ratios.push(off / on);
    }
    println!(
        "observability, 1 thread, {PAIRS} adjacent pairs of {OPS} typed gets: observed {:.0} ops/s, observe(false) {:.0} ops/s; observed = {:.3}x observe(false) (median of pairs; target >= 0.97x)",
        (PAIRS * OPS) as f64 / on_total,
        (PAIRS * OPS) as f64 / off_total,
        median(ratios)
    );
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}
