//! The blocking API over PostgreSQL: the pool is made inside the blocking cache's own
//! runtime and used from plain threads.

use cache_core::{blocking, Cache};
use cache_postgres::PostgresBuilder;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

#[test]
fn blocking_cache_over_postgres_from_several_threads() {
    let url = conformance_tests::servers::env("CACHE_TEST_POSTGRES_URL");
    let namespace = conformance_tests::random_namespace();
    let cache = blocking::Cache::connect(|| async move {
        Ok(Cache::new(
            PostgresBuilder::new(url)
                .namespace(namespace)
                .build()
                .await?,
        ))
    })
    .expect("connects to the test PostgreSQL");
    cache.set("k", &"v", Duration::from_secs(60)).unwrap();
    assert_eq!(cache.get::<String>("k").unwrap().as_deref(), Some("v"));
    let calls = Arc::new(AtomicUsize::new(0));
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let (cache, calls) = (cache.clone(), calls.clone());
            std::thread::spawn(move || {
                cache
                    .get_or_compute("slow", || {
                        calls.fetch_add(1, Ordering::SeqCst);
                        std::thread::sleep(Duration::from_millis(100));
                        Ok::<_, std::io::Error>(7u32)
                    })
                    .unwrap()
            })
        })
        .collect();
    for t in threads {
        assert_eq!(t.join().unwrap(), 7);
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    cache.clear().unwrap();
    cache.close().unwrap();
}
