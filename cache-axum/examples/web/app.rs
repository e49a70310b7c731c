//! The example application: shared by `examples/web/main.rs` and the end-to-end tests.

use axum::extract::{FromRef, Query, State};
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use cache_axum::{AppCache, HttpCacheLayer};
use cache_core::Cache;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// How often each handler ran (what caching saves).
#[derive(Default, Debug)]
pub struct Calls {
    pub report: AtomicUsize,
    pub private: AtomicUsize,
    pub missing: AtomicUsize,
    pub big: AtomicUsize,
}

/// The application state: the cache (built at start-up) and the counters.
#[derive(Clone)]
pub struct AppState {
    pub cache: Cache,
    pub calls: Arc<Calls>,
}

impl FromRef<AppState> for Cache {
    fn from_ref(state: &AppState) -> Cache {
        state.cache.clone()
    }
}

/// A slow report (100 ms), cached by the layer.
async fn report(State(s): State<AppState>, Query(q): Query<HashMap<String, String>>) -> String {
    s.calls.report.fetch_add(1, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(100)).await;
    format!("report {}", q.get("id").map_or("-", String::as_str))
}

/// A response for one user only: never stored.
async fn private(State(s): State<AppState>) -> impl IntoResponse {
    s.calls.private.fetch_add(1, Ordering::SeqCst);
    ([(header::CACHE_CONTROL, "private")], "yours only")
}

/// A 404: cached like a 200 (a status cacheable by default).
async fn missing(State(s): State<AppState>) -> impl IntoResponse {
    s.calls.missing.fetch_add(1, Ordering::SeqCst);
    (axum::http::StatusCode::NOT_FOUND, "no such thing")
}

/// 2 MiB: over the layer's body limit, streamed through.
async fn big(State(s): State<AppState>) -> Vec<u8> {
    s.calls.big.fetch_add(1, Ordering::SeqCst);
    vec![b'x'; 2 * 1024 * 1024]
}

/// The cache itself, through the extractor: a visit counter.
async fn visits(AppCache(cache): AppCache) -> String {
    let n: u64 = cache.get("visits").await.ok().flatten().unwrap_or(0) + 1;
    let _ = cache.set("visits", &n, Duration::from_secs(3600)).await;
    n.to_string()
}

pub fn app(state: AppState) -> Router {
    let cached = Router::new()
        .route("/report", get(report))
        .route("/private", get(private))
        .route("/missing", get(missing))
        .route("/big", get(big))
        .layer(
            HttpCacheLayer::new(state.cache.clone())
                .ttl(Duration::from_secs(60))
                .weak_etags(true),
        );
    Router::new()
        .merge(cached)
        .route("/visits", get(visits))
        .with_state(state)
}
