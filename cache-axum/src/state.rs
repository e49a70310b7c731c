//! The [`Cache`] as application state: an extractor, and closing it at shutdown.

use axum::extract::{FromRef, FromRequestParts};
use axum::response::{IntoResponse, Response};
use axum::Router;
use cache_core::Cache;
use http::request::Parts;
use std::convert::Infallible;
use std::future::Future;

/// The application's [`Cache`], taken from the router's state: the `Cache` itself, or
/// any state `S` with `impl FromRef<S> for Cache`: the counterpart of the Python
/// library's `get_cache()` dependency. Write the impl (below), or put
/// `#[derive(FromRef)]` on the state, which needs axum's `macros` feature
/// (`axum = { version = "0.8", features = ["macros"] }`).
///
/// ```
/// use axum::{routing::get, Router};
/// use cache_axum::AppCache;
/// async fn visits(AppCache(cache): AppCache) -> String {
///     let n: u64 = cache.get("visits").await.ok().flatten().unwrap_or(0);
///     let _ = cache.set("visits", &(n + 1), std::time::Duration::from_secs(60)).await;
///     format!("{}", n + 1)
/// }
/// let cache = cache_core::Cache::new(cache_memory::MemoryBackend::builder().build().unwrap());
/// let app: Router = Router::new().route("/visits", get(visits)).with_state(cache);
/// ```
///
/// With a state of your own:
///
/// ```
/// use axum::{extract::FromRef, routing::get, Router};
/// use cache_axum::AppCache;
/// use cache_core::Cache;
///
/// #[derive(Clone)]
/// struct AppState {
///     cache: Cache,
///     greeting: &'static str,
/// }
///
/// impl FromRef<AppState> for Cache {
///     fn from_ref(state: &AppState) -> Cache {
///         state.cache.clone()
///     }
/// }
///
/// let cache = Cache::new(cache_memory::MemoryBackend::builder().build().unwrap());
/// let app: Router = Router::new()
///     .route("/hits", get(|AppCache(c): AppCache| async move { c.stats().hits.to_string() }))
///     .with_state(AppState { cache, greeting: "hello" });
/// ```
#[derive(Clone, Debug)]
pub struct AppCache(pub Cache);

impl<S> FromRequestParts<S> for AppCache
where
    Cache: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = Infallible;

    async fn from_request_parts(_: &mut Parts, state: &S) -> Result<Self, Infallible> {
        Ok(AppCache(Cache::from_ref(state)))
    }
}

/// A handler answering with the application cache's [`CacheStats`] in the Prometheus text format (version
/// 0.0.4), labelled `backend` and `namespace` (the backend's): a `/metrics` endpoint
/// for a service without a `metrics` recorder (with one, serve the recorder's
/// exporter instead: the names are the same). For JSON, [`CacheStats`] is
/// `serde::Serialize`: `axum::Json(cache.stats())` (axum's default `json` feature).
///
/// ```
/// use axum::{routing::get, Router};
/// use cache_axum::AppCache;
/// let cache = cache_core::Cache::new(cache_memory::MemoryBackend::builder().build().unwrap());
/// let app: Router = Router::new()
///     .route("/metrics", get(cache_axum::prometheus_stats))
///     .route("/stats", get(|AppCache(c): AppCache| async move {
///         serde_json::to_string(&c.stats()).unwrap_or_default()
///     }))
///     .with_state(cache);
/// ```
///
/// [`CacheStats`]: cache_core::CacheStats
pub async fn prometheus_stats(AppCache(cache): AppCache) -> Response {
    use cache_core::CacheBackend;
    let backend = cache.backend();
    let text = cache.stats().to_prometheus(&[
        ("backend", backend.capabilities().name),
        ("namespace", backend.namespace()),
    ]);
    (
        [(
            http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

/// Serve `app` on `listener` until `shutdown` resolves, let the requests in flight
/// finish, then close `cache`: the counterpart of the Python library's lifespan.
///
/// ```no_run
/// # async fn demo(app: axum::Router, cache: cache_core::Cache) -> std::io::Result<()> {
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
/// cache_axum::serve(listener, app, cache, async {
///     let _ = tokio::signal::ctrl_c().await;
/// })
/// .await
/// # }
/// ```
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    cache: Cache,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await?;
    if let Err(e) = cache.close().await {
        tracing::warn!(error = %e, "closing the cache at shutdown failed");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::extract::Request;
    use axum::routing::get;
    use axum::Router;
    use http_body_util::BodyExt;
    use std::time::Duration;
    use tower::Service;

    /// `/metrics` answers the Prometheus text of the cache's stats: every sample
    /// line parses, labelled with the backend and its namespace.
    #[tokio::test]
    async fn prometheus_stats_serves_the_stats_as_prometheus_text() {
        let backend = cache_memory::MemoryBackend::builder()
            .namespace("app")
            .build()
            .unwrap();
        let cache = cache_core::Cache::new(backend);
        cache.set("a", &1u8, Duration::from_secs(60)).await.unwrap();
        let _ = cache.get::<u8>("a").await.unwrap();
        let _ = cache.get::<u8>("b").await.unwrap();
        let mut app: Router = Router::new()
            .route("/metrics", get(super::prometheus_stats))
            .with_state(cache);
        let req = Request::get("/metrics").body(Body::empty()).unwrap();
        let resp = app.call(req).await.unwrap();
        assert_eq!(
            resp.headers()["content-type"],
            "text/plain; version=0.0.4; charset=utf-8"
        );
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        let text = std::str::from_utf8(&body).unwrap();
        let mut samples = std::collections::HashMap::new();
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let (series, value) = line.rsplit_once(' ').unwrap();
            let value: f64 = value.parse().unwrap_or_else(|_| panic!("{line}"));
            samples.insert(series.to_owned(), value);
        }
        let labels = r#"backend="memory",namespace="app""#;
        assert_eq!(samples[&format!("cache_hits_total{{{labels}}}")], 1.0);
        assert_eq!(samples[&format!("cache_misses_total{{{labels}}}")], 1.0);
        assert_eq!(
            samples[&format!(r#"cache_errors_total{{{labels},kind="timeout"}}"#)],
            0.0
        );
    }
}
