//! The [`Cache`] as application state: an extractor, and closing it at shutdown.

use axum::extract::{FromRef, FromRequestParts};
use axum::Router;
use cache_core::Cache;
use http::request::Parts;
use std::convert::Infallible;
use std::future::Future;

/// The application's [`Cache`], taken from the router's state (any state that has a
/// `Cache` field with `#[derive(FromRef)]`, or the `Cache` itself): the counterpart of
/// the Python library's `get_cache()` dependency.
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
