//! [`HttpCacheLayer`]: a tower layer that caches whole HTTP responses in a [`Cache`].

use axum::body::Body;
use axum::extract::Request;
use axum::response::Response;
use bytes::Bytes;
use cache_core::{Cache, ComputeError, KeyBuilder};
use futures::future::BoxFuture;
use futures::StreamExt;
use http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use http_body_util::BodyExt;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tower::{Layer, Service};

/// The header that says how a response was served: `HIT`, `MISS`, `PASS` (not
/// cacheable) or `BYPASS` (the request asked for no cache).
pub const CACHE_STATUS: HeaderName = HeaderName::from_static("x-cache");

/// Caches the responses of the service it wraps, keyed by method, path, query and the
/// request headers named with [`vary`](Self::vary).
///
/// - Only `GET` and `HEAD` requests, and responses with a cacheable status (200 unless
///   set with [`cache_status`](Self::cache_status)), are cached.
/// - Requests: `Cache-Control: no-store` bypasses the cache; `no-cache` skips the
///   stored response and stores the new one.
/// - Responses: `no-store`, `no-cache`, `private`, `max-age=0`, `Vary: *` and
///   `Set-Cookie` are never stored; `s-maxage`, else `max-age`, else
///   [`ttl`](Self::ttl) says how long one is fresh, at most [`max_ttl`](Self::max_ttl).
/// - Hits carry `Age`; every response says how it was served in `x-cache`.
/// - Every stored response has an `ETag` (the service's, or a digest of the body); a
///   request whose `If-None-Match` matches gets `304 Not Modified` without a body.
/// - A body longer than [`max_body`](Self::max_body) passes through, streamed and
///   uncached.
/// - Concurrent misses of one key run the service once (get-or-compute's single
///   flight, and its distributed lock across processes); a store that is down makes
///   responses uncached, never failed.
///
/// ```
/// use axum::{routing::get, Router};
/// use cache_axum::HttpCacheLayer;
/// use std::time::Duration;
/// let cache = cache_core::Cache::new(cache_memory::MemoryBackend::builder().build().unwrap());
/// let app: Router = Router::new()
///     .route("/report", get(|| async { "slow report" }))
///     .layer(HttpCacheLayer::new(cache).ttl(Duration::from_secs(30)));
/// ```
#[derive(Clone)]
pub struct HttpCacheLayer {
    cache: Cache,
    settings: Arc<Settings>,
}

#[derive(Debug, Clone)]
struct Settings {
    ttl: Duration,
    max_ttl: Duration,
    vary: Vec<HeaderName>,
    statuses: Vec<StatusCode>,
    max_body: usize,
    namespace: String,
}

impl std::fmt::Debug for HttpCacheLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpCacheLayer")
            .field("cache", &self.cache)
            .field("settings", &self.settings)
            .finish()
    }
}

impl HttpCacheLayer {
    /// A layer storing responses in `cache`: fresh for 60 s unless the response says
    /// otherwise, at most 1 h, status 200 only, bodies up to 1 MiB, keys in the
    /// namespace `http`.
    pub fn new(cache: Cache) -> Self {
        HttpCacheLayer {
            cache,
            settings: Arc::new(Settings {
                ttl: Duration::from_secs(60),
                max_ttl: Duration::from_secs(3600),
                vary: Vec::new(),
                statuses: vec![StatusCode::OK],
                max_body: 1024 * 1024,
                namespace: "http".into(),
            }),
        }
    }
    fn with(mut self, f: impl FnOnce(&mut Settings)) -> Self {
        f(Arc::make_mut(&mut self.settings));
        self
    }
    /// Freshness of a response that gives no `max-age` (default 60 s).
    pub fn ttl(self, d: Duration) -> Self {
        self.with(|s| s.ttl = d)
    }
    /// Longest freshness, whatever the response says (default 1 h).
    pub fn max_ttl(self, d: Duration) -> Self {
        self.with(|s| s.max_ttl = d)
    }
    /// Also key responses by this request header (`Accept-Language`, ...).
    pub fn vary(self, name: HeaderName) -> Self {
        self.with(|s| s.vary.push(name))
    }
    /// Also cache responses with this status (default: 200 only).
    pub fn cache_status(self, status: StatusCode) -> Self {
        self.with(|s| s.statuses.push(status))
    }
    /// Largest body cached, in bytes (default 1 MiB); longer ones pass through.
    pub fn max_body(self, bytes: usize) -> Self {
        self.with(|s| s.max_body = bytes)
    }
    /// Namespace of the stored responses within the cache (default `http`).
    pub fn namespace(self, namespace: impl Into<String>) -> Self {
        let namespace = namespace.into();
        self.with(|s| s.namespace = namespace)
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
        let layer = self.layer.clone();
        Box::pin(async move { Ok(layer.serve(inner, req).await) })
    }
}

/// A response as stored.
#[derive(Clone, Serialize, Deserialize)]
struct Stored {
    status: u16,
    headers: Vec<Header>,
    #[serde(with = "serde_bytes")]
    body: Vec<u8>,
    etag: String,
    stored_at_ms: u64,
    fresh_for_ms: u64,
}

#[derive(Clone, Serialize, Deserialize)]
struct Header {
    name: String,
    #[serde(with = "serde_bytes")]
    value: Vec<u8>,
}

/// Why the service's answer is not stored; only the caller whose compute ran uses it.
enum Uncacheable {
    /// Buffered, but not to be stored.
    Pass(Mutex<Option<Response>>),
    /// Too long to buffer: streamed through.
    Stream(Mutex<Option<Response>>),
}

impl Uncacheable {
    fn take(&self) -> Option<Response> {
        let (Uncacheable::Pass(m) | Uncacheable::Stream(m)) = self;
        m.lock().unwrap_or_else(|p| p.into_inner()).take()
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The `Cache-Control` directives this layer reads.
#[derive(Default)]
struct CacheControl {
    no_store: bool,
    no_cache: bool,
    private: bool,
    max_age: Option<u64>,
    s_maxage: Option<u64>,
}

impl CacheControl {
    fn of(headers: &HeaderMap) -> Self {
        let mut cc = CacheControl::default();
        for v in headers.get_all(header::CACHE_CONTROL) {
            let Ok(v) = v.to_str() else { continue };
            for d in v.split(',') {
                let d = d.trim().to_ascii_lowercase();
                let (name, arg) = match d.split_once('=') {
                    Some((n, a)) => (
                        n.trim().to_owned(),
                        Some(a.trim().trim_matches('"').to_owned()),
                    ),
                    None => (d.clone(), None),
                };
                let secs = arg.and_then(|a| a.parse::<u64>().ok());
                match name.as_str() {
                    "no-store" => cc.no_store = true,
                    "no-cache" => cc.no_cache = true,
                    "private" => cc.private = true,
                    "max-age" => cc.max_age = secs.or(Some(0)),
                    "s-maxage" => cc.s_maxage = secs.or(Some(0)),
                    _ => {}
                }
            }
        }
        cc
    }
}

/// Whether `If-None-Match` names `etag` (weak comparison, as RFC 9110 asks here).
fn none_match(if_none_match: Option<&HeaderValue>, etag: &str) -> bool {
    let Some(v) = if_none_match.and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let bare = |t: &str| t.trim().trim_start_matches("W/").to_owned();
    v.split(',')
        .any(|t| t.trim() == "*" || bare(t) == bare(etag))
}

fn labelled(mut resp: Response, label: &'static str) -> Response {
    resp.headers_mut()
        .insert(CACHE_STATUS, HeaderValue::from_static(label));
    resp
}

impl HttpCacheLayer {
    fn key(&self, req: &Request) -> KeyBuilder {
        let mut key = KeyBuilder::new("http")
            .arg(&req.method().as_str())
            .arg(&req.uri().to_string());
        for name in &self.settings.vary {
            let values: Vec<String> = req
                .headers()
                .get_all(name)
                .iter()
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                .collect();
            key = key.arg(&(name.as_str(), values));
        }
        key
    }

    async fn serve<S>(&self, inner: S, req: Request) -> Response
    where
        S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
        S::Future: Send + 'static,
    {
        if req.method() != Method::GET && req.method() != Method::HEAD {
            return call(inner, req).await;
        }
        let asked = CacheControl::of(req.headers());
        if asked.no_store {
            return labelled(call(inner, req).await, "BYPASS");
        }
        let key = self.key(&req);
        let if_none_match = req.headers().get(header::IF_NONE_MATCH).cloned();
        let slot = Arc::new(Mutex::new(Some(req)));
        let mut refresh = asked.no_cache;
        // At most twice: a stored response past its own freshness is refreshed once.
        for _ in 0..2 {
            let ran = Arc::new(AtomicBool::new(false));
            let compute = {
                let (slot, ran, inner, settings) = (
                    slot.clone(),
                    ran.clone(),
                    inner.clone(),
                    self.settings.clone(),
                );
                move || async move {
                    ran.store(true, Ordering::SeqCst);
                    let req = slot.lock().unwrap_or_else(|p| p.into_inner()).take();
                    let Some(req) = req else {
                        return Err(Uncacheable::Pass(Mutex::new(Some(empty(
                            StatusCode::INTERNAL_SERVER_ERROR,
                        )))));
                    };
                    settings.store_or_pass(call(inner, req).await).await
                }
            };
            let got = self
                .cache
                .cached(key.clone())
                .namespace(self.settings.namespace.clone())
                .expiry(self.settings.max_ttl)
                .refresh(refresh)
                .get_or_compute(compute)
                .await;
            let ran = ran.load(Ordering::SeqCst);
            match got {
                Ok(stored) => {
                    let fresh = now_ms() < stored.stored_at_ms.saturating_add(stored.fresh_for_ms);
                    if ran || fresh {
                        return respond(
                            stored,
                            if ran { "MISS" } else { "HIT" },
                            if_none_match.as_ref(),
                        );
                    }
                    refresh = true; // stale by its own max-age: fetch it again, once
                }
                Err(ComputeError::Compute(why)) if ran => {
                    if let Some(resp) = why.take() {
                        return labelled(resp, "PASS");
                    }
                    break;
                }
                // Another caller's answer was not cacheable (it may be private to
                // that caller), or the key was refused: ask the service ourselves.
                Err(_) => break,
            }
        }
        let req = slot.lock().unwrap_or_else(|p| p.into_inner()).take();
        match req {
            Some(req) => labelled(call(inner, req).await, "PASS"),
            None => empty(StatusCode::INTERNAL_SERVER_ERROR),
        }
    }
}

async fn call<S>(mut inner: S, req: Request) -> Response
where
    S: Service<Request, Response = Response, Error = Infallible>,
{
    match inner.call(req).await {
        Ok(resp) => resp,
        Err(never) => match never {},
    }
}

/// A response with `status` and no body.
fn empty(status: StatusCode) -> Response {
    let mut resp = Response::new(Body::empty());
    *resp.status_mut() = status;
    resp
}

impl Settings {
    /// Buffer the service's response and decide: stored, or passed through.
    async fn store_or_pass(&self, resp: Response) -> Result<Stored, Uncacheable> {
        let (parts, body) = resp.into_parts();
        let too_long = parts
            .headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok())
            .is_some_and(|n| n > self.max_body);
        if too_long {
            let resp = Response::from_parts(parts, body);
            return Err(Uncacheable::Stream(Mutex::new(Some(resp))));
        }
        let mut body = body;
        let mut buf: Vec<u8> = Vec::new();
        while let Some(frame) = body.frame().await {
            let data = match frame {
                Ok(frame) => match frame.into_data() {
                    Ok(data) => data,
                    Err(_) => continue, // trailers: not kept
                },
                Err(e) => {
                    tracing::warn!(error = %e, "response body failed; not cached");
                    let resp = empty(StatusCode::BAD_GATEWAY);
                    return Err(Uncacheable::Pass(Mutex::new(Some(resp))));
                }
            };
            buf.extend_from_slice(&data);
            if buf.len() > self.max_body {
                // Longer than we keep: what was read, then the rest, streamed.
                let head = futures::stream::once(async move {
                    Ok::<_, axum::Error>(http_body_util::BodyExt::boxed_unsync(
                        http_body_util::Full::new(Bytes::from(buf)).map_err(axum::Error::new),
                    ))
                });
                let rest = futures::stream::once(async move { Ok(body.boxed_unsync()) });
                let joined = head.chain(rest).flat_map(|b| match b {
                    Ok(b) => http_body_util::BodyStream::new(b).left_stream(),
                    Err(e) => futures::stream::once(async move { Err(e) }).right_stream(),
                });
                let body = Body::new(http_body_util::StreamBody::new(joined));
                let resp = Response::from_parts(parts, body);
                return Err(Uncacheable::Stream(Mutex::new(Some(resp))));
            }
        }
        let said = CacheControl::of(&parts.headers);
        let fresh_for = said
            .s_maxage
            .or(said.max_age)
            .map_or(self.ttl, Duration::from_secs)
            .min(self.max_ttl);
        let vary_all = parts.headers.get_all(header::VARY).iter().any(|v| {
            v.as_bytes()
                .split(|b| *b == b',')
                .any(|t| t.trim_ascii() == b"*")
        });
        let storable = self.statuses.contains(&parts.status)
            && !said.no_store
            && !said.no_cache
            && !said.private
            && !vary_all
            && !fresh_for.is_zero()
            && !parts.headers.contains_key(header::SET_COOKIE);
        if !storable {
            let resp = Response::from_parts(parts, Body::from(buf));
            return Err(Uncacheable::Pass(Mutex::new(Some(resp))));
        }
        let etag = match parts
            .headers
            .get(header::ETAG)
            .and_then(|v| v.to_str().ok())
        {
            Some(tag) => tag.to_owned(),
            None => {
                let digest = Sha256::digest(&buf);
                let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
                format!("\"{hex}\"")
            }
        };
        let headers = parts
            .headers
            .iter()
            .filter(|(n, _)| *n != header::ETAG && *n != header::AGE && *n != CACHE_STATUS)
            .map(|(n, v)| Header {
                name: n.as_str().to_owned(),
                value: v.as_bytes().to_vec(),
            })
            .collect();
        Ok(Stored {
            status: parts.status.as_u16(),
            headers,
            body: buf,
            etag,
            stored_at_ms: now_ms(),
            fresh_for_ms: fresh_for.as_millis() as u64,
        })
    }
}

/// The HTTP response for a stored one: `304` when `If-None-Match` matches.
fn respond(stored: Stored, label: &'static str, if_none_match: Option<&HeaderValue>) -> Response {
    let not_modified = none_match(if_none_match, &stored.etag);
    let mut resp = Response::new(if not_modified {
        Body::empty()
    } else {
        Body::from(stored.body)
    });
    *resp.status_mut() = if not_modified {
        StatusCode::NOT_MODIFIED
    } else {
        StatusCode::from_u16(stored.status).unwrap_or(StatusCode::OK)
    };
    let h = resp.headers_mut();
    for Header { name, value } in stored.headers {
        if not_modified && name.eq_ignore_ascii_case(header::CONTENT_LENGTH.as_str()) {
            continue;
        }
        if let (Ok(n), Ok(v)) = (HeaderName::try_from(name), HeaderValue::from_bytes(&value)) {
            h.append(n, v);
        }
    }
    if let Ok(tag) = HeaderValue::from_str(&stored.etag) {
        h.insert(header::ETAG, tag);
    }
    if label == "HIT" {
        let age = now_ms().saturating_sub(stored.stored_at_ms) / 1000;
        h.insert(header::AGE, HeaderValue::from(age));
    }
    h.insert(CACHE_STATUS, HeaderValue::from_static(label));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_control_and_etags() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("public, Max-Age=30, s-maxage=\"5\""),
        );
        let cc = CacheControl::of(&h);
        assert_eq!(
            (cc.max_age, cc.s_maxage, cc.no_store),
            (Some(30), Some(5), false)
        );
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        assert!(CacheControl::of(&h).no_store);
        let tag = "\"abc\"";
        assert!(none_match(
            Some(&HeaderValue::from_static("\"x\", W/\"abc\"")),
            tag
        ));
        assert!(none_match(Some(&HeaderValue::from_static("*")), tag));
        assert!(!none_match(Some(&HeaderValue::from_static("\"abd\"")), tag));
        assert!(!none_match(None, tag));
    }
}
