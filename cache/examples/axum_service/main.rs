//! The service of `cache-axum/GUIDE.md`, runnable:
//!
//! ```sh
//! DATABASE_URL=postgres://user:password@127.0.0.1:5432/app \
//! CACHE_URL=redis://127.0.0.1:6379 \
//! cargo run -p cache --example axum_service --features axum,redis
//! ```
//!
//! Without `CACHE_URL` the cache is in process (`memory:`). It listens on
//! 127.0.0.1:3000 (`ADDR` to change) and stops at SIGTERM or Ctrl-C. Try
//! `curl -X PUT -H 'content-type: application/json' -d '{"name":"Ada"}' localhost:3000/users/1`
//! after `INSERT INTO users VALUES (1, 'ada')`, then `curl localhost:3000/users/1`,
//! `curl -i localhost:3000/report` (twice: `x-cache: HIT`) and `curl localhost:3000/metrics`.

mod app;

use std::time::Duration;
use tracing_subscriber::fmt::format::FmtSpan;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The cache's spans are DEBUG spans named `cache` (targets cache_core and
    // cache_axum) with no events inside: FmtSpan::CLOSE prints each as it closes.
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| EnvFilter::new("info,cache_core=debug,cache_axum=debug")),
        )
        .with_span_events(FmtSpan::CLOSE)
        .init();

    let cache = cache::CacheUrl::from_env()? // CACHE_URL, else memory:
        .default_namespace("users-service")
        .lazy(true) // start while the store is down; computed without it meanwhile
        .builder()
        .await?
        .default_expiry(Duration::from_secs(300))
        .build();
    let db = app::Db::connect(&std::env::var("DATABASE_URL")?).await?;
    db.create_table().await?;

    let addr = std::env::var("ADDR").unwrap_or_else(|_| "127.0.0.1:3000".into());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    tracing::info!(%addr, cache = ?cache, "listening");
    let state = app::AppState {
        cache: cache.clone(),
        db,
    };
    // Serves until SIGTERM, lets requests in flight finish, then closes the cache.
    cache::axum::serve(listener, app::router(state), cache, app::shutdown_signal()?).await?;
    Ok(())
}
