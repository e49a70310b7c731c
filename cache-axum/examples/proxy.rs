//! A caching reverse proxy: every request goes to one origin through
//! [`HttpCacheLayer`]. Useful to watch the layer against a real site, and to run an HTTP
//! caching test suite against it.
//!
//! ```sh
//! CACHE_PROXY_ORIGIN=http://127.0.0.1:8000 CACHE_PROXY_ADDR=127.0.0.1:8001 \
//!     cargo run -p cache-axum --example proxy
//! ```
//! `CACHE_REDIS_URL=redis://...` stores in Redis instead of memory;
//! `CACHE_PROXY_STALE_IF_ERROR=60` serves a stored response up to 60 s stale when the
//! origin fails (the recommended configuration of the layer's README).

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use axum::Router;
use cache_axum::HttpCacheLayer;
use cache_core::Cache;
use http::{HeaderMap, HeaderName, StatusCode};

/// Fields that belong to one connection, not to the message (RFC 9110 §7.6.1).
fn hop_by_hop(name: &HeaderName, headers: &HeaderMap) -> bool {
    let listed = headers
        .get_all(http::header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|n| n.trim().eq_ignore_ascii_case(name.as_str()));
    listed
        || matches!(
            name.as_str(),
            "connection"
                | "keep-alive"
                | "te"
                | "trailer"
                | "transfer-encoding"
                | "upgrade"
                | "proxy-connection"
                | "host"
                | "content-length"
        )
}

#[derive(Clone)]
struct Origin {
    base: String,
    client: reqwest::Client,
}

async fn forward(State(origin): State<Origin>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let pq = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let body = match axum::body::to_bytes(body, usize::MAX).await {
        Ok(b) => b,
        Err(_) => return status(StatusCode::BAD_REQUEST),
    };
    let request = || {
        let mut out = origin
            .client
            .request(parts.method.clone(), format!("{}{pq}", origin.base))
            .body(body.clone());
        for (n, v) in &parts.headers {
            if !hop_by_hop(n, &parts.headers) {
                out = out.header(n, v);
            }
        }
        out
    };
    // A pooled connection the origin closed fails at once: one more try on a new one.
    let got = match request().send().await {
        Ok(got) => got,
        Err(e) if e.is_connect() || e.is_request() => match request().send().await {
            Ok(got) => got,
            Err(_) => return status(StatusCode::BAD_GATEWAY),
        },
        Err(_) => return status(StatusCode::BAD_GATEWAY),
    };
    let (code, headers) = (got.status(), got.headers().clone());
    let Ok(bytes) = got.bytes().await else {
        return status(StatusCode::BAD_GATEWAY);
    };
    let mut resp = Response::new(Body::from(bytes));
    *resp.status_mut() = code;
    for (n, v) in &headers {
        if !hop_by_hop(n, &headers) {
            resp.headers_mut().append(n, v.clone());
        }
    }
    resp
}

fn status(code: StatusCode) -> Response {
    let mut resp = Response::new(Body::empty());
    *resp.status_mut() = code;
    resp
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let base =
        std::env::var("CACHE_PROXY_ORIGIN").unwrap_or_else(|_| "http://127.0.0.1:8000".into());
    let addr = std::env::var("CACHE_PROXY_ADDR").unwrap_or_else(|_| "127.0.0.1:8001".into());
    let cache = match std::env::var("CACHE_REDIS_URL") {
        Ok(url) => Cache::new(
            cache_redis::RedisBackend::builder()
                .url(url)
                .build()
                .await?,
        ),
        Err(_) => Cache::new(cache_memory::MemoryBackend::builder().build()?),
    };
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let mut layer = HttpCacheLayer::new(cache.clone());
    if let Some(secs) = std::env::var("CACHE_PROXY_STALE_IF_ERROR")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        layer = layer.stale_if_error(std::time::Duration::from_secs(secs));
    }
    let app = Router::new()
        .fallback(forward)
        .with_state(Origin { base, client })
        .layer(layer);
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!(
        "caching {} on http://{}",
        std::env::var("CACHE_PROXY_ORIGIN").unwrap_or_default(),
        listener.local_addr()?
    );
    cache_axum::serve(listener, app, cache, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    Ok(())
}
