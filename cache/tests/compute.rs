//! Get-or-compute options beyond the conformance suite: per-call namespace, key
//! builder, lock wait, and the typed handle's codecs.

use cache::{Cache, ComputeError, ErrorKind, Json, KeyBuilder, MemoryBackend};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

fn backend() -> MemoryBackend {
    MemoryBackend::builder().build().unwrap()
}

#[tokio::test]
async fn namespace_and_key_builder_shape_the_key() {
    let cache = Cache::new(backend());
    let v: u32 = cache
        .cached(KeyBuilder::new("users::age").arg(&7))
        .namespace("users")
        .get_or_compute(|| async { Ok::<_, std::io::Error>(30) })
        .await
        .unwrap();
    assert_eq!(v, 30);
    assert_eq!(
        cache.get::<u32>("users:users::age(7)").await.unwrap(),
        Some(30)
    );
    let err = cache
        .cached("k")
        .namespace("bad ns")
        .get_or_compute(|| async { Ok::<_, std::io::Error>(1u8) })
        .await
        .unwrap_err();
    assert!(matches!(err, ComputeError::Cache(ref e) if e.kind() == ErrorKind::Config));
}

#[tokio::test]
async fn lock_wait_elapses_and_computes_instead_of_hanging() {
    let b = Arc::new(backend());
    // Someone else holds the lock for this key and never writes the value.
    let held =
        cache::CacheBackend::acquire_lock(b.as_ref(), "\u{1}lock:k", Duration::from_secs(60))
            .await
            .unwrap();
    assert!(held.is_some());
    let cache = cache::CacheBuilder::from_arc(b).build();
    let calls = Arc::new(AtomicUsize::new(0));
    let c2 = calls.clone();
    let v: u32 = cache
        .cached("k")
        .lock_wait(Duration::from_millis(200))
        .get_or_compute(|| async move {
            c2.fetch_add(1, Ordering::SeqCst);
            Ok::<_, std::io::Error>(1)
        })
        .await
        .unwrap();
    assert_eq!(v, 1);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn stampede_protection_off_still_single_flights_in_process() {
    let cache = Cache::builder(backend()).stampede_protection(false).build();
    let calls = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let (cache, calls) = (cache.clone(), calls.clone());
            tokio::spawn(async move {
                cache
                    .get_or_compute("k", || async move {
                        calls.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        Ok::<_, std::io::Error>(1u8)
                    })
                    .await
                    .unwrap()
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn json_codec_and_default_expiry() {
    let cache = Cache::builder(backend())
        .codec(Json)
        .default_expiry(Duration::from_millis(30))
        .build();
    cache.insert("k", &serde_json_value()).await.unwrap();
    let raw = cache.backend().get("k").await.unwrap().unwrap();
    assert_eq!(&raw[..], br#"{"a":1}"#);
    tokio::time::sleep(Duration::from_millis(60)).await;
    assert!(!cache.has("k").await.unwrap(), "the default expiry applied");
}

fn serde_json_value() -> std::collections::BTreeMap<String, u8> {
    [("a".to_string(), 1u8)].into_iter().collect()
}
