//! Exact LRU where users can see it: the Python library's scenarios, with the default
//! builder, on many fresh stores (a sampled or sharded LRU fails them now and then).

use cache_core::{Bytes, CacheBackend, Expiry};
use cache_memory::MemoryBackend;

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

async fn present(c: &MemoryBackend, keys: &[&str]) -> Vec<String> {
    let mut out = vec![];
    for k in keys {
        if c.get(k).await.unwrap().is_some() {
            out.push((*k).to_owned());
        }
    }
    out
}

#[tokio::test]
async fn a_read_refreshes_and_the_fourth_insert_evicts_the_least_recently_used() {
    for run in 0..500 {
        let c = MemoryBackend::builder().max_entries(3).build().unwrap();
        for k in ["a", "b", "c"] {
            c.set(k, b(k), Expiry::Never).await.unwrap();
        }
        assert!(c.get("a").await.unwrap().is_some());
        c.set("d", b("d"), Expiry::Never).await.unwrap();
        // `has` does not touch the order.
        assert_eq!(
            kept(&c, &["a", "b", "c", "d"]).await,
            ["a", "c", "d"],
            "run {run}"
        );
    }
}

async fn kept(c: &MemoryBackend, keys: &[&str]) -> Vec<String> {
    let mut out = vec![];
    for k in keys {
        if c.has(k).await.unwrap() {
            out.push((*k).to_owned());
        }
    }
    out
}

#[tokio::test]
async fn without_reads_the_oldest_goes_first_and_the_bound_is_exact() {
    for run in 0..200 {
        let c = MemoryBackend::builder().max_entries(3).build().unwrap();
        for k in ["a", "b", "c", "d", "e"] {
            c.set(k, b(k), Expiry::Never).await.unwrap();
        }
        assert_eq!(
            present(&c, &["a", "b", "c", "d", "e"]).await,
            ["c", "d", "e"],
            "run {run}"
        );
    }
}

#[tokio::test]
async fn many_reads_between_writes_keep_their_order() {
    // More reads than the read buffer holds, in an order that differs from the
    // insertion order: eviction follows the reads.
    let c = MemoryBackend::builder().max_entries(100).build().unwrap();
    let keys: Vec<String> = (0..100).map(|i| format!("k{i}")).collect();
    for k in &keys {
        c.set(k, b("v"), Expiry::Never).await.unwrap();
    }
    // Read every key, newest first, so k0 becomes the most recent and k99 the oldest.
    for k in keys.iter().rev() {
        assert!(c.get(k).await.unwrap().is_some());
    }
    for i in 0..10 {
        c.set(&format!("new{i}"), b("v"), Expiry::Never)
            .await
            .unwrap();
    }
    for (i, k) in keys.iter().enumerate() {
        assert_eq!(c.has(k).await.unwrap(), i < 90, "{k}");
    }
}

/// A model of exact LRU: most recent last.
#[derive(Default)]
struct Model {
    order: Vec<String>,
    cap: usize,
}

impl Model {
    fn touch(&mut self, k: &str) -> bool {
        match self.order.iter().position(|x| x == k) {
            Some(i) => {
                let k = self.order.remove(i);
                self.order.push(k);
                true
            }
            None => false,
        }
    }
    fn set(&mut self, k: &str) {
        if !self.touch(k) {
            if self.order.len() == self.cap {
                self.order.remove(0);
            }
            self.order.push(k.to_owned());
        }
    }
    fn delete(&mut self, k: &str) -> bool {
        let had = self.order.iter().any(|x| x == k);
        self.order.retain(|x| x != k);
        had
    }
}

/// Random gets, sets, deletes and set_if_absents over a key space twice the bound,
/// checked after every step against the model: the store evicts exactly what an
/// exact LRU evicts, on every step of 20 000, for several bounds.
#[tokio::test]
async fn random_operations_match_an_exact_lru_step_by_step() {
    use rand::{rngs::StdRng, Rng, SeedableRng};
    for cap in [1usize, 2, 3, 7, 64] {
        let mut rng = StdRng::seed_from_u64(cap as u64);
        let c = MemoryBackend::builder().max_entries(cap).build().unwrap();
        let mut m = Model {
            cap,
            ..Model::default()
        };
        let keys: Vec<String> = (0..cap * 2).map(|i| format!("k{i}")).collect();
        for step in 0..20_000 {
            let k = keys[rng.random_range(0..keys.len())].as_str();
            match rng.random_range(0..10) {
                0..=4 => {
                    let got = c.get(k).await.unwrap().is_some();
                    assert_eq!(got, m.touch(k), "cap {cap} step {step}: get {k}");
                }
                5..=7 => {
                    c.set(k, b(k), Expiry::Never).await.unwrap();
                    m.set(k);
                }
                8 => {
                    let had = c.delete(k).await.unwrap();
                    assert_eq!(had, m.delete(k), "cap {cap} step {step}: delete {k}");
                }
                _ => {
                    let stored = c.set_if_absent(k, b(k), Expiry::Never).await.unwrap();
                    let absent = !m.order.iter().any(|x| x == k);
                    assert_eq!(stored, absent, "cap {cap} step {step}: add {k}");
                    if stored {
                        m.set(k);
                    }
                }
            }
            assert_eq!(c.store_len(), m.order.len(), "cap {cap} step {step}");
        }
        // `has` leaves the order alone; what is there is exactly the model's set.
        let mut there = vec![];
        for k in &keys {
            if c.has(k).await.unwrap() {
                there.push(k.clone());
            }
        }
        let mut want = m.order.clone();
        want.sort();
        there.sort();
        assert_eq!(there, want, "cap {cap}");
    }
}
