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
