//! An axum app with the cache wired in: `cargo run -p cache-axum --example web` serves
//! it on 127.0.0.1:3000 (`CACHE_WEB_ADDR` to change) on the in-memory default; with
//! `CACHE_REDIS_URL=redis://127.0.0.1:6379` on Redis, built lazily so the app starts
//! while Redis is down. Ctrl-C stops it: requests in flight finish, then the cache is
//! closed.
//!
//! Try: `curl -i 'http://127.0.0.1:3000/report?id=1'` twice (the second is a `HIT`),
//! with `-H 'Cache-Control: no-store'` (a `BYPASS`), or with `-H 'If-None-Match: <etag>'`
//! (a `304`).

mod app;

use cache_core::{BackendBuilder, BreakerConfig, Cache};
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let cache = match std::env::var("CACHE_REDIS_URL") {
        Ok(url) => Cache::builder(cache_redis::RedisBackend::builder().url(url).build_lazy()?)
            .circuit_breaker(BreakerConfig::default())
            .build(),
        Err(_) => Cache::new(cache_memory::MemoryBackend::builder().build()?),
    };
    let addr = std::env::var("CACHE_WEB_ADDR").unwrap_or_else(|_| "127.0.0.1:3000".into());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("listening on http://{}", listener.local_addr()?);
    let state = app::AppState {
        cache: cache.clone(),
        calls: Arc::default(),
    };
    cache_axum::serve(listener, app::app(state), cache, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    Ok(())
}
