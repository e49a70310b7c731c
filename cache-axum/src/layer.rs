//! [`HttpCacheLayer`]: a tower layer that caches whole HTTP responses in a [`Cache`]
//! as a shared cache (RFC 9111).

use crate::budget::Budget;
use crate::flight::Flights;
use cache_core::{Cache, Clock, KeyBuilder, SystemClock};
use futures::future::BoxFuture;
use http::{HeaderName, Uri};
use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tower::{Layer, Service};

use axum::extract::Request;
use axum::response::Response;

/// The header that says how a response was served: `HIT` (fresh from the cache),
/// `STALE` (served stale: within `stale-while-revalidate`, `max-stale` or
/// `stale-if-error`), `REVALIDATED` (the stored response, confirmed by the service with
/// a `304`), `MISS` (fetched and stored), `PASS` (fetched, not stored) or `BYPASS`
/// (the request asked for no store).
///
/// The cache's [`stats`](cache_core::Cache::stats) and metrics count each request once,
/// by this label, under the layer's [`namespace`](HttpCacheLayer::namespace) label: `HIT`
/// a hit (or, for a request that waited for a concurrent fetch of its URL, coalesced),
/// `STALE` a miss and a stale value served, `MISS` and `REVALIDATED` a miss; `PASS` and
/// `BYPASS` are not reads. Each request has a `cache` span (DEBUG, `op = "http"`) with
/// the label as `x_cache` and `hit`; the layer's own store reads are not counted as
/// hits or misses.
pub const CACHE_STATUS: HeaderName = HeaderName::from_static("x-cache");

/// A shared HTTP cache (RFC 9111) in front of the service it wraps, storing in a
/// [`Cache`] (any backend: memory, Redis, ...).
///
/// By default the origin decides: a response is stored when its headers allow a
/// shared cache to (`Cache-Control: max-age`/`s-maxage`/`public`, `Expires`, or a
/// status cacheable by default with a heuristic lifetime from `Last-Modified`), for
/// as long as they say. Nothing private is shared: a response to a request with
/// `Authorization` is stored only when it says so (`public`, `s-maxage`,
/// `must-revalidate`), one to a request with `Cookie` only when it is `public` or has
/// `s-maxage`, a response that sets a cookie never, and `private`/`no-store` never.
/// `Vary` selects variants by the request's headers (`Vary: *`: not stored); the key
/// holds the host, the path and the query. Stale responses are revalidated with
/// `If-None-Match`/`If-Modified-Since`, and a `304` refreshes the stored one; the
/// `stale-while-revalidate` and `stale-if-error` directives are honoured; a successful
/// `POST`/`PUT`/`DELETE`/`PATCH` invalidates its URL (and its `Location` and
/// `Content-Location` on the same host). Conditional requests are answered from the
/// cache; `HEAD` is answered from a stored `GET`. Concurrent misses of one URL call
/// the service once in this process. A store that is down makes responses uncached,
/// never failed. Range requests and those with `If-Match`, `If-Unmodified-Since` or
/// `If-Range` go to the service.
///
/// ```
/// use axum::{routing::get, Router};
/// use cache_axum::HttpCacheLayer;
/// use std::time::Duration;
/// let cache = cache_core::Cache::new(cache_memory::MemoryBackend::builder().build().unwrap());
/// let app: Router = Router::new()
///     .route("/report", get(|| async {
///         ([("cache-control", "public, max-age=30")], "slow report")
///     }))
///     .layer(HttpCacheLayer::new(cache).max_body(256 * 1024));
/// ```
#[derive(Clone)]
pub struct HttpCacheLayer {
    pub(crate) shared: Arc<LayerState>,
}

/// What every clone of the layer and its services share.
pub(crate) struct LayerState {
    pub cache: Cache,
    pub settings: HttpSettings,
    pub flights: Arc<Flights>,
    pub budget: Budget,
}

#[derive(Clone)]
pub(crate) struct HttpSettings {
    pub default_ttl: Option<Duration>,
    pub heuristic: f64,
    pub max_ttl: Duration,
    pub keep_stale: Duration,
    pub stale_if_error: Option<Duration>,
    pub vary: Vec<HeaderName>,
    pub query: Option<Vec<String>>,
    pub max_body: usize,
    pub max_bytes: usize,
    pub revalidate_window: Duration,
    pub weak_etags: bool,
    pub cdn_cache_control: bool,
    pub namespace: String,
    pub clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for HttpCacheLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = &self.shared.settings;
        f.debug_struct("HttpCacheLayer")
            .field("cache", &self.shared.cache)
            .field("default_ttl", &s.default_ttl)
            .field("heuristic", &s.heuristic)
            .field("max_ttl", &s.max_ttl)
            .field("keep_stale", &s.keep_stale)
            .field("stale_if_error", &s.stale_if_error)
            .field("vary", &s.vary)
            .field("query", &s.query)
            .field("max_body", &s.max_body)
            .field("max_bytes", &s.max_bytes)
            .field("revalidate_window", &s.revalidate_window)
            .field("weak_etags", &s.weak_etags)
            .field("cdn_cache_control", &s.cdn_cache_control)
            .field("namespace", &s.namespace)
            .finish()
    }
}

impl HttpCacheLayer {
    /// A layer storing responses in `cache` as their headers allow: no default
    /// lifetime, a heuristic lifetime of 10 % of the time since `Last-Modified`, kept at
    /// most 1 day, stale responses with a validator kept 10 min to be revalidated,
    /// bodies up to 1 MiB, 256 MiB stored by this process at most, client `no-cache`
    /// revalidating at most once a second per URL, keys in the namespace `http`.
    pub fn new(cache: Cache) -> Self {
        HttpCacheLayer {
            shared: Arc::new(LayerState {
                cache,
                settings: HttpSettings {
                    default_ttl: None,
                    heuristic: 0.1,
                    max_ttl: Duration::from_secs(24 * 3600),
                    keep_stale: Duration::from_secs(600),
                    stale_if_error: None,
                    vary: Vec::new(),
                    query: None,
                    max_body: 1024 * 1024,
                    max_bytes: 256 * 1024 * 1024,
                    revalidate_window: Duration::from_secs(1),
                    weak_etags: false,
                    cdn_cache_control: true,
                    namespace: "http".into(),
                    clock: Arc::new(SystemClock),
                },
                flights: Arc::default(),
                budget: Budget::default(),
            }),
        }
    }

    fn with(self, f: impl FnOnce(&mut HttpSettings)) -> Self {
        let mut settings = self.shared.settings.clone();
        f(&mut settings);
        HttpCacheLayer {
            shared: Arc::new(LayerState {
                cache: self.shared.cache.clone(),
                settings,
                flights: Arc::default(),
                budget: Budget::default(),
            }),
        }
    }

    /// Lifetime of a response that carries no freshness information (no `max-age`,
    /// `s-maxage`, `Expires` nor `Last-Modified`), for the statuses cacheable by
    /// default (200, 203, 204, 300, 301, 308, 404, 405, 410, 414, 501). Off by default:
    /// such responses are not reused without revalidation.
    pub fn ttl(self, d: Duration) -> Self {
        self.with(|s| s.default_ttl = Some(d))
    }
    /// Share of the time since `Last-Modified` that a response without explicit
    /// freshness is fresh for (RFC 9111 §4.2.2; default 0.1, `0.0` turns it off).
    pub fn heuristic(self, fraction: f64) -> Self {
        self.with(|s| s.heuristic = fraction.clamp(0.0, 1.0))
    }
    /// Longest time any response is kept in the store, fresh and stale (default 1 day).
    pub fn max_ttl(self, d: Duration) -> Self {
        self.with(|s| s.max_ttl = d)
    }
    /// How long past its freshness a response with a validator (`ETag`,
    /// `Last-Modified`) is kept to be revalidated with a conditional request (default
    /// 10 min).
    pub fn keep_stale(self, d: Duration) -> Self {
        self.with(|s| s.keep_stale = d)
    }
    /// Serve a stored response up to this long past its freshness when the service
    /// answers 500, 502, 503 or 504, for responses without a `stale-if-error`
    /// directive of their own (off by default; never for `must-revalidate`,
    /// `proxy-revalidate`, `s-maxage` or `no-cache` responses).
    pub fn stale_if_error(self, d: Duration) -> Self {
        self.with(|s| s.stale_if_error = Some(d))
    }
    /// Also select variants by this request header, as if every response named it in
    /// `Vary`.
    pub fn vary(self, name: HeaderName) -> Self {
        self.with(|s| s.vary.push(name))
    }
    /// Key responses by these query parameters only (in this order), so that other
    /// parameters (tracking, cache busting) do not make new entries. By default the
    /// whole query is in the key.
    pub fn query_params<I: IntoIterator<Item = S>, S: Into<String>>(self, names: I) -> Self {
        let names = names.into_iter().map(Into::into).collect();
        self.with(|s| s.query = Some(names))
    }
    /// Largest body stored, in bytes (default 1 MiB); longer ones pass through, streamed.
    pub fn max_body(self, bytes: usize) -> Self {
        self.with(|s| s.max_body = bytes)
    }
    /// Most bytes of responses this process keeps stored at once (default 256 MiB):
    /// past it the oldest it stored are deleted first.
    pub fn max_bytes(self, bytes: usize) -> Self {
        self.with(|s| s.max_bytes = bytes)
    }
    /// A client's `Cache-Control: no-cache` (or `max-age=0`) revalidates the stored
    /// response with the service at most once per URL in this window (default 1 s);
    /// within it, the response just validated is served. Zero: every such request
    /// revalidates (concurrent ones still share one request to the service).
    pub fn revalidate_window(self, d: Duration) -> Self {
        self.with(|s| s.revalidate_window = d)
    }
    /// Give a stored response without validators a weak `ETag` made from a digest of
    /// its body, so that clients can revalidate it with `If-None-Match` (off by
    /// default: validators are the service's to give).
    pub fn weak_etags(self, on: bool) -> Self {
        self.with(|s| s.weak_etags = on)
    }
    /// Whether a response's `CDN-Cache-Control` (RFC 9213), when present and valid,
    /// decides instead of its `Cache-Control` and `Expires` (default on: this layer is
    /// the service's reverse-proxy cache; turn it off when a CDN in front of the
    /// service is the one these directives are meant for).
    pub fn cdn_cache_control(self, on: bool) -> Self {
        self.with(|s| s.cdn_cache_control = on)
    }
    /// Namespace of the stored responses within the cache (default `http`).
    pub fn namespace(self, namespace: impl Into<String>) -> Self {
        let namespace = namespace.into();
        self.with(|s| s.namespace = namespace)
    }
    /// The clock that ages responses (default: the system's); for tests.
    pub fn clock(self, clock: Arc<dyn Clock>) -> Self {
        self.with(|s| s.clock = clock)
    }

    /// Remove the stored responses of a URL (every variant), as an unsafe request to
    /// it would: `host` as clients send it in `Host`, `path_and_query` as in the
    /// request line (`/items/7?lang=en`). Says whether something was stored.
    ///
    /// ```
    /// # async fn demo(layer: cache_axum::HttpCacheLayer) -> Result<(), cache_core::Error> {
    /// layer.purge("shop.example", "/items/7").await?;
    /// # Ok(()) }
    /// ```
    pub async fn purge(&self, host: &str, path_and_query: &str) -> cache_core::Result<bool> {
        let uri: Uri = path_and_query.parse().map_err(|e| {
            cache_core::Error::invalid_input("http", format!("not a path and query: {e}"))
        })?;
        let key = self.shared.primary_key(host, &uri)?;
        self.shared.cache.delete(&key).await
    }
}

impl LayerState {
    /// The key of a URL: host, path, and the query (or the chosen parameters, matched
    /// by their decoded names). Request headers select variants under it (see
    /// [`LayerState::variant_key`]), so invalidating the URL reaches every variant.
    pub fn primary_key(&self, host: &str, uri: &Uri) -> cache_core::Result<String> {
        let s = &self.settings;
        let query = match (&s.query, uri.query()) {
            (_, None) => None,
            (None, Some(q)) => Some(q.to_owned()),
            (Some(names), Some(q)) => {
                // Decoded as the application decodes them (`%69d` is `id`).
                let pairs: Vec<_> = form_urlencoded::parse(q.as_bytes()).collect();
                let kept: Vec<String> = names
                    .iter()
                    .flat_map(|n| {
                        pairs
                            .iter()
                            .filter(move |(k, _)| k == n)
                            .map(|(k, v)| format!("{k}={v}"))
                    })
                    .collect();
                (!kept.is_empty()).then(|| kept.join("&"))
            }
        };
        let key = KeyBuilder::new("http")
            .arg(&host.to_ascii_lowercase())
            .arg(uri.path())
            .arg(&query)
            .build()?;
        Ok(format!("{}:{key}", s.namespace))
    }

    /// The key of one variant of a URL: the request header values that select it
    /// enter only as a digest, so credentials a response varies by (`Vary: Cookie`)
    /// never appear in a store key.
    pub fn variant_key(
        &self,
        primary: &str,
        generation: u64,
        selecting: &[(String, Option<String>)],
    ) -> cache_core::Result<String> {
        let values = serde_json::to_vec(selecting).unwrap_or_default();
        let key = KeyBuilder::new("http.variant")
            .arg(primary)
            .arg(&generation)
            .arg(&cache_core::raw::sha256_hex(&values))
            .build()?;
        Ok(format!("{}:{key}", self.settings.namespace))
    }
}

impl<S> Layer<S> for HttpCacheLayer {
    type Service = HttpCache<S>;
    fn layer(&self, inner: S) -> HttpCache<S> {
        HttpCache {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service made by [`HttpCacheLayer`].
#[derive(Clone, Debug)]
pub struct HttpCache<S> {
    inner: S,
    layer: HttpCacheLayer,
}

impl<S> Service<Request> for HttpCache<S>
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + Sync + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        // The clone that was made ready serves this request (tower's usual dance).
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        let shared = self.layer.shared.clone();
        Box::pin(async move { Ok(crate::serve::serve(shared, inner, req).await) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_hold_no_header_values_and_decode_parameter_names() {
        let cache = Cache::new(cache_memory::MemoryBackend::builder().build().unwrap());
        let layer = HttpCacheLayer::new(cache).query_params(["id"]);
        let s = &layer.shared;
        let uri = |u: &str| u.parse::<Uri>().unwrap();
        let k = s.primary_key("a.example", &uri("/x?%69d=1&utm=2")).unwrap();
        assert_eq!(k, s.primary_key("a.example", &uri("/x?id=1")).unwrap());
        assert_eq!(
            s.primary_key("a.example", &uri("/x?utm=2")).unwrap(),
            s.primary_key("a.example", &uri("/x")).unwrap(),
            "nothing kept is no query"
        );
        let selecting = vec![("cookie".to_owned(), Some("session=SECRET".to_owned()))];
        let v = s.variant_key(&k, 7, &selecting).unwrap();
        assert!(!v.contains("SECRET"), "{v}");
    }

    #[tokio::test]
    async fn purge_refuses_what_is_not_a_path() {
        let cache = Cache::new(cache_memory::MemoryBackend::builder().build().unwrap());
        let layer = HttpCacheLayer::new(cache);
        let err = layer.purge("a.example", "not a path").await.unwrap_err();
        assert_eq!(err.kind(), cache_core::ErrorKind::InvalidInput, "{err}");
        assert!(!layer.purge("a.example", "/items/7").await.unwrap());
    }
}
