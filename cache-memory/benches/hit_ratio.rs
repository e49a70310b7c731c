//! Hit ratio as a measured property: replay a Zipf(1.0) trace over 100 000 keys, and
//! the same trace polluted by one-off scans, at a capacity of 10 % of the key space;
//! every miss inserts the key. Prints the hit ratio of `MemoryBackend` (default
//! builder: 2 shards at this size), of an exact single-lock LRU, of moka (future) and of
//! quick_cache at the same capacity: `cargo bench -p cache-memory --bench hit_ratio`.
//! Target: within 1 point of the exact LRU.

use cache_core::{Bytes, CacheBackend, Expiry};
use cache_memory::MemoryBackend;
use rand::{rngs::StdRng, Rng, SeedableRng};
use rand_distr::{Distribution, Zipf};
use std::num::NonZeroUsize;

const KEYS: u64 = 100_000;
const CAPACITY: usize = 10_000;
const REQUESTS: usize = 1_000_000;

/// The trace: Zipf keys; with `scans`, one request in five is the next key of a
/// sequential scan over keys never asked for otherwise.
fn trace(scans: bool) -> Vec<u64> {
    let mut rng = StdRng::seed_from_u64(7);
    let zipf = Zipf::new(KEYS as f64, 1.0).unwrap();
    let mut scan = KEYS;
    (0..REQUESTS)
        .map(|_| {
            if scans && rng.random_ratio(1, 5) {
                scan += 1;
                scan
            } else {
                zipf.sample(&mut rng) as u64
            }
        })
        .collect()
}

async fn memory_backend(t: &[u64]) -> f64 {
    let b = MemoryBackend::builder()
        .max_entries(CAPACITY)
        .build()
        .unwrap();
    let v = Bytes::from_static(b"v");
    let mut hits = 0;
    for k in t {
        let key = k.to_string();
        if b.get(&key).await.unwrap().is_some() {
            hits += 1;
        } else {
            b.set(&key, v.clone(), Expiry::Never).await.unwrap();
        }
    }
    hits as f64 / t.len() as f64
}

fn exact_lru(t: &[u64]) -> f64 {
    let mut c = lru::LruCache::new(NonZeroUsize::new(CAPACITY).unwrap());
    let mut hits = 0;
    for k in t {
        if c.get(k).is_some() {
            hits += 1;
        } else {
            c.put(*k, ());
        }
    }
    hits as f64 / t.len() as f64
}

async fn moka(t: &[u64]) -> f64 {
    let c = moka::future::Cache::new(CAPACITY as u64);
    let mut hits = 0;
    for k in t {
        if c.get(k).await.is_some() {
            hits += 1;
        } else {
            c.insert(*k, ()).await;
        }
    }
    hits as f64 / t.len() as f64
}

fn quick_cache(t: &[u64]) -> f64 {
    let c = quick_cache::sync::Cache::new(CAPACITY);
    let mut hits = 0;
    for k in t {
        if c.get(k).is_some() {
            hits += 1;
        } else {
            c.insert(*k, ());
        }
    }
    hits as f64 / t.len() as f64
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    println!(
        "hit ratio: {REQUESTS} requests, Zipf(1.0) over {KEYS} keys, capacity {CAPACITY} (10 %)"
    );
    for (name, scans) in [("zipf", false), ("zipf + scans (1 in 5)", true)] {
        let t = trace(scans);
        let exact = exact_lru(&t);
        let ours = memory_backend(&t).await;
        println!("{name}");
        println!("  exact LRU (one lock)       {:6.2} %", exact * 100.0);
        println!(
            "  MemoryBackend              {:6.2} %  ({:+.2} points vs exact LRU; target within 1)",
            ours * 100.0,
            (ours - exact) * 100.0
        );
        println!(
            "  moka (TinyLFU admission)   {:6.2} %",
            moka(&t).await * 100.0
        );
        println!(
            "  quick_cache (CLOCK-Pro)    {:6.2} %",
            quick_cache(&t) * 100.0
        );
    }
}
