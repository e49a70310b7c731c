//! Quickstart on the embedded in-memory backend: `cargo run -p cache --example quickstart`.

use cache::{Cache, MemoryBackend};
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct User {
    id: u64,
    name: String,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let backend = MemoryBackend::builder()
        .max_entries(10_000)
        .namespace("quickstart")
        .build()?;
    let cache = Cache::builder(backend)
        .default_expiry(Duration::from_secs(300))
        .build();

    // Typed set and get.
    let ada = User {
        id: 1,
        name: "Ada".into(),
    };
    cache.set("user:1", &ada, Duration::from_secs(60)).await?;
    let back: Option<User> = cache.get("user:1").await?;
    println!("typed get: {back:?}");

    // Expiry: gone after its TTL.
    cache
        .set("flash", &"short-lived", Duration::from_millis(50))
        .await?;
    println!(
        "flash before expiry: {:?}",
        cache.get::<String>("flash").await?
    );
    tokio::time::sleep(Duration::from_millis(80)).await;
    println!(
        "flash after expiry:  {:?}",
        cache.get::<String>("flash").await?
    );

    // Get-or-compute: 100 concurrent callers, one compute.
    let computes = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..100 {
        let (cache, computes) = (cache.clone(), computes.clone());
        tasks.push(tokio::spawn(async move {
            cache
                .cached("user:2")
                .expiry(Duration::from_secs(60))
                .get_or_compute(|| async move {
                    computes.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(100)).await; // a slow query
                    Ok::<_, std::io::Error>(User {
                        id: 2,
                        name: "Grace".into(),
                    })
                })
                .await
        }));
    }
    for t in tasks {
        t.await??;
    }
    println!(
        "get_or_compute: 100 callers, {} compute(s), cached value {:?}",
        computes.load(Ordering::SeqCst),
        cache.get::<User>("user:2").await?
    );
    Ok(())
}
