//! The layer as a shared cache, end to end: a real HTTP client against an app on
//! 127.0.0.1, on memory and on a real Redis. Each security rule is a case run on
//! both stores; the handler's calls are counted, and the clock is a manual one.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use cache_axum::HttpCacheLayer;
use cache_core::{Cache, ManualClock};
use conformance_tests::servers;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

#[derive(Default)]
struct Calls(AtomicUsize);

impl Calls {
    fn bump(&self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
    fn get(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

type S = Arc<Calls>;

fn header<'a>(h: &'a HeaderMap, name: &str) -> &'a str {
    h.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
}

/// Who the request is from, by its credentials: a page for that user, cacheable
/// for a minute (but not `public`).
async fn me(State(c): State<S>, h: HeaderMap) -> Response {
    c.bump();
    let who = match (header(&h, "authorization"), header(&h, "cookie")) {
        ("", "") => "anonymous".to_owned(),
        (a, "") => a.to_owned(),
        (_, c) => c.to_owned(),
    };
    ([("cache-control", "max-age=60")], format!("me: {who}")).into_response()
}

/// Greeting in the client's language, `Vary: Accept-Language`.
async fn hello(State(c): State<S>, h: HeaderMap) -> Response {
    c.bump();
    let text = if header(&h, "accept-language").starts_with("fr") {
        "bonjour"
    } else {
        "hello"
    };
    (
        [("cache-control", "max-age=60"), ("vary", "Accept-Language")],
        text,
    )
        .into_response()
}

/// "Compressed" when the client accepts the (made-up) `x-squeeze` coding, `Vary:
/// Accept-Encoding`. A made-up coding, so no client decodes it on its own.
async fn zipped(State(c): State<S>, h: HeaderMap) -> Response {
    c.bump();
    if header(&h, "accept-encoding").contains("x-squeeze") {
        (
            [
                ("cache-control", "max-age=60"),
                ("vary", "Accept-Encoding"),
                ("content-encoding", "x-squeeze"),
            ],
            "GZIPPED",
        )
            .into_response()
    } else {
        (
            [("cache-control", "max-age=60"), ("vary", "Accept-Encoding")],
            "plain",
        )
            .into_response()
    }
}

/// The host it was asked for.
async fn site(State(c): State<S>, h: HeaderMap) -> Response {
    c.bump();
    (
        [("cache-control", "max-age=60")],
        format!("site {}", header(&h, "host")),
    )
        .into_response()
}

async fn not_found(State(c): State<S>) -> Response {
    c.bump();
    (
        StatusCode::NOT_FOUND,
        [("cache-control", "max-age=60")],
        "no such page",
    )
        .into_response()
}

async fn login(State(c): State<S>) -> Response {
    c.bump();
    (
        [
            ("cache-control", "max-age=60"),
            ("set-cookie", "session=secret"),
        ],
        "welcome",
    )
        .into_response()
}

/// Already two hours old by its `Age`, fresh for one.
async fn old(State(c): State<S>) -> Response {
    c.bump();
    ([("cache-control", "max-age=3600"), ("age", "7200")], "old").into_response()
}

/// Fresh for 10 s, with an ETag; answers a matching `If-None-Match` with 304.
async fn tagged(State(c): State<S>, h: HeaderMap) -> Response {
    c.bump();
    if header(&h, "if-none-match") == "\"v1\"" {
        return (
            StatusCode::NOT_MODIFIED,
            [("cache-control", "max-age=10"), ("etag", "\"v1\"")],
        )
            .into_response();
    }
    (
        [("cache-control", "max-age=10"), ("etag", "\"v1\"")],
        "tagged body",
    )
        .into_response()
}

/// Like `tagged`, but its 304 also sets a session cookie (as session middleware does).
async fn tagged_cookie(State(c): State<S>, h: HeaderMap) -> Response {
    c.bump();
    if header(&h, "if-none-match") == "\"v1\"" {
        return (
            StatusCode::NOT_MODIFIED,
            [
                ("cache-control", "max-age=10"),
                ("etag", "\"v1\""),
                ("set-cookie", "session=for-whoever-asked"),
            ],
        )
            .into_response();
    }
    (
        [("cache-control", "max-age=10"), ("etag", "\"v1\"")],
        "tagged body",
    )
        .into_response()
}

/// The item, and a POST that changes it.
async fn item(State(c): State<S>) -> Response {
    c.bump();
    (
        [("cache-control", "max-age=60")],
        format!("item v{}", c.get()),
    )
        .into_response()
}

/// Fresh 10 s, then served stale up to 60 s while it is fetched again.
async fn swr(State(c): State<S>) -> Response {
    c.bump();
    (
        [("cache-control", "max-age=10, stale-while-revalidate=60")],
        format!("swr {}", c.get()),
    )
        .into_response()
}

/// Fresh 10 s, `stale-if-error=60`; every call after the first fails with a 503.
async fn flaky(State(c): State<S>) -> Response {
    c.bump();
    if c.get() > 1 {
        return (StatusCode::SERVICE_UNAVAILABLE, "down").into_response();
    }
    (
        [("cache-control", "max-age=10, stale-if-error=60")],
        "flaky v1",
    )
        .into_response()
}

/// 1 000 bytes, fresh a minute.
async fn blob(State(c): State<S>) -> Response {
    c.bump();
    ([("cache-control", "max-age=60")], vec![b'b'; 1000]).into_response()
}

/// A POST that says where the changed resource is.
async fn moved(h: HeaderMap) -> Response {
    let to = if header(&h, "x-elsewhere").is_empty() {
        "/site"
    } else {
        "http://elsewhere.example/site"
    };
    (StatusCode::CREATED, [("location", to)]).into_response()
}

struct App {
    base: String,
    calls: S,
    clock: Arc<ManualClock>,
    client: reqwest::Client,
}

async fn start(cache: Cache) -> App {
    start_with(cache, |l| l).await
}

async fn start_with(cache: Cache, options: impl FnOnce(HttpCacheLayer) -> HttpCacheLayer) -> App {
    let calls = S::default();
    let clock = Arc::new(ManualClock::new());
    let layer = options(
        HttpCacheLayer::new(cache)
            .namespace(conformance_tests::random_namespace())
            .clock(clock.clone()),
    );
    let app = Router::new()
        .route("/me", get(me))
        .route("/hello", get(hello))
        .route("/zipped", get(zipped))
        .route("/site", get(site))
        .route("/nope", get(not_found))
        .route("/login", get(login))
        .route("/old", get(old))
        .route("/tagged", get(tagged))
        .route("/item", get(item).post(item))
        .route("/swr", get(swr))
        .route("/flaky", get(flaky))
        .route("/blob", get(blob))
        .route("/moved", axum::routing::post(moved))
        .route("/tagged-cookie", get(tagged_cookie))
        .layer(layer)
        .with_state(calls.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    App {
        base,
        calls,
        clock,
        client: reqwest::Client::new(),
    }
}

impl App {
    async fn get(&self, path: &str, headers: &[(&str, &str)]) -> (StatusCode, String, String) {
        let mut r = self.client.get(format!("{}{path}", self.base));
        for (n, v) in headers {
            r = r.header(*n, *v);
        }
        let r = r.send().await.unwrap();
        let status = StatusCode::from_u16(r.status().as_u16()).unwrap();
        let label = r
            .headers()
            .get("x-cache")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        (status, label, r.text().await.unwrap())
    }
    fn calls(&self) -> usize {
        self.calls.get()
    }
}

/// Alice's page is never served to Bob nor to an anonymous client, by
/// `Authorization` or by `Cookie`.
async fn credentials_are_never_shared(app: App) {
    for (name, alice, bob) in [
        ("authorization", "Bearer alice", "Bearer bob"),
        ("cookie", "session=alice", "session=bob"),
    ] {
        let before = app.calls();
        let (_, label, body) = app.get("/me", &[(name, alice)]).await;
        assert_eq!(
            (label.as_str(), body.as_str()),
            ("PASS", format!("me: {alice}").as_str())
        );
        let (_, _, body) = app.get("/me", &[(name, bob)]).await;
        assert_eq!(body, format!("me: {bob}"), "{name}");
        assert_eq!(app.calls() - before, 2, "each asked the service");
        let (_, _, body) = app.get("/me", &[]).await;
        assert_eq!(body, "me: anonymous", "{name}");
    }
    // The anonymous page is cached, and a request with credentials does not get it.
    let (_, label, _) = app.get("/me", &[]).await;
    assert_eq!(label, "HIT");
    let (_, _, body) = app.get("/me", &[("authorization", "Bearer carol")]).await;
    assert_eq!(body, "me: Bearer carol");
}

/// `Vary` selects variants: nobody plants one for everybody.
async fn vary_is_honoured(app: App) {
    let (_, _, fr) = app.get("/hello", &[("accept-language", "fr-FR")]).await;
    assert_eq!(fr, "bonjour");
    let (_, label, en) = app.get("/hello", &[("accept-language", "en-US")]).await;
    assert_eq!((label.as_str(), en.as_str()), ("MISS", "hello"));
    let (_, label, fr) = app.get("/hello", &[("accept-language", "fr-FR")]).await;
    assert_eq!((label.as_str(), fr.as_str()), ("HIT", "bonjour"));
    let (_, label, none) = app.get("/hello", &[]).await;
    assert_eq!((label.as_str(), none.as_str()), ("MISS", "hello"));
    assert_eq!(app.calls(), 3);
    let (_, _, z) = app
        .get("/zipped", &[("accept-encoding", "x-squeeze")])
        .await;
    assert_eq!(z, "GZIPPED");
    let (_, _, z) = app.get("/zipped", &[]).await;
    assert_eq!(
        z, "plain",
        "a gzip body never goes to a client that did not ask"
    );
    let (_, label, z) = app
        .get("/zipped", &[("accept-encoding", "x-squeeze")])
        .await;
    assert_eq!((label.as_str(), z.as_str()), ("HIT", "GZIPPED"));
}

/// The host is part of the key.
async fn hosts_are_apart(app: App) {
    let (_, _, a) = app.get("/site", &[("host", "a.example")]).await;
    let (_, _, b) = app.get("/site", &[("host", "b.example")]).await;
    assert_eq!(
        (a.as_str(), b.as_str()),
        ("site a.example", "site b.example")
    );
    let (_, label, a) = app.get("/site", &[("host", "A.example")]).await;
    assert_eq!((label.as_str(), a.as_str()), ("HIT", "site a.example"));
}

/// `If-None-Match: *` against a stored 404 is the 404, never a 304; Set-Cookie
/// responses are not stored; `Age` counts.
async fn conditions_cookies_and_age(app: App) {
    app.get("/nope", &[]).await;
    let (status, label, _) = app.get("/nope", &[("if-none-match", "*")]).await;
    assert_eq!((status, label.as_str()), (StatusCode::NOT_FOUND, "HIT"));
    let before = app.calls();
    for _ in 0..2 {
        let (_, label, body) = app.get("/login", &[]).await;
        assert_eq!((label.as_str(), body.as_str()), ("PASS", "welcome"));
    }
    assert_eq!(
        app.calls() - before,
        2,
        "a response that sets a cookie is not stored"
    );
    let before = app.calls();
    app.get("/old", &[]).await;
    let (_, label, _) = app.get("/old", &[]).await;
    assert_ne!(label, "HIT", "Age 7200 > max-age 3600: stale on arrival");
    assert_eq!(app.calls() - before, 2);
}

/// A stale response is revalidated: the 304 refreshes it and the stored body is served.
/// A client's `no-cache` revalidates at most once per window. HEAD is served from GET.
async fn revalidation_and_client_no_cache(app: App) {
    let (_, label, body) = app.get("/tagged", &[]).await;
    assert_eq!((label.as_str(), body.as_str()), ("MISS", "tagged body"));
    app.clock.advance(Duration::from_secs(11));
    let (_, label, body) = app.get("/tagged", &[]).await;
    assert_eq!(
        (label.as_str(), body.as_str()),
        ("REVALIDATED", "tagged body")
    );
    assert_eq!(app.calls(), 2);
    let (_, label, _) = app.get("/tagged", &[]).await;
    assert_eq!(label, "HIT", "the 304 made it fresh again");
    let (status, _, body) = app.get("/tagged", &[("if-none-match", "\"v1\"")]).await;
    assert_eq!((status, body.as_str()), (StatusCode::NOT_MODIFIED, ""));
    app.clock.advance(Duration::from_secs(2));
    for _ in 0..6 {
        let (_, _, body) = app.get("/tagged", &[("cache-control", "no-cache")]).await;
        assert_eq!(body, "tagged body");
    }
    assert_eq!(app.calls(), 3, "six no-cache requests, one revalidation");
    let r = app
        .client
        .head(format!("{}/tagged", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-cache"], "HIT");
    assert_eq!(app.calls(), 3);
}

/// A 304 that sets a cookie does not put it in the stored response.
async fn a_304_never_stores_a_cookie(app: App) {
    app.get("/tagged-cookie", &[]).await;
    app.clock.advance(Duration::from_secs(11));
    let r = app
        .client
        .get(format!("{}/tagged-cookie", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-cache"], "REVALIDATED");
    let r = app
        .client
        .get(format!("{}/tagged-cookie", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-cache"], "HIT");
    assert!(
        r.headers().get("set-cookie").is_none(),
        "a cookie was shared"
    );
}

/// A request whose absolute-form target and `Host` disagree is not cached (an app
/// reading `Host` would render one host's page under the other's key).
async fn hosts_that_disagree_are_not_cached(app: App) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = app.base.trim_start_matches("http://").to_owned();
    let ask = |line: String| {
        let addr = addr.clone();
        async move {
            let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
            s.write_all(line.as_bytes()).await.unwrap();
            let mut out = Vec::new();
            s.read_to_end(&mut out).await.unwrap();
            String::from_utf8_lossy(&out).to_lowercase()
        }
    };
    let answer = ask("GET http://victim.example/site HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n".into()).await;
    assert!(answer.contains("x-cache: pass"), "{answer}");
    let (_, label, body) = app.get("/site", &[("host", "victim.example")]).await;
    assert_eq!(
        (label.as_str(), body.as_str()),
        ("MISS", "site victim.example")
    );
}

/// A successful POST invalidates the URL; `purge` does too.
async fn unsafe_methods_invalidate(app: App) {
    let (_, _, v1) = app.get("/item", &[]).await;
    let (_, label, _) = app.get("/item", &[]).await;
    assert_eq!(label, "HIT");
    app.client
        .post(format!("{}/item", app.base))
        .send()
        .await
        .unwrap();
    let (_, label, v2) = app.get("/item", &[]).await;
    assert_eq!(label, "MISS");
    assert_ne!(v1, v2);
}

/// `stale-while-revalidate`: the stale response at once, and one fetch behind it.
async fn stale_while_revalidate(app: App) {
    let (_, label, body) = app.get("/swr", &[]).await;
    assert_eq!((label.as_str(), body.as_str()), ("MISS", "swr 1"));
    app.clock.advance(Duration::from_secs(15));
    for _ in 0..5 {
        let (_, label, body) = app.get("/swr", &[]).await;
        assert!(
            (label == "STALE" && body == "swr 1") || (label == "HIT" && body == "swr 2"),
            "{label} {body}"
        );
    }
    // The fetch behind it lands; then the new response is a hit.
    let mut waited = 0;
    while app.get("/swr", &[]).await.2 != "swr 2" {
        assert!(waited < 200, "the background fetch never landed");
        tokio::time::sleep(Duration::from_millis(10)).await;
        waited += 1;
    }
    assert_eq!(app.calls(), 2, "five stale answers, one fetch");
    app.clock.advance(Duration::from_secs(100));
    let (_, label, _) = app.get("/swr", &[]).await;
    assert_eq!(label, "MISS", "past the window: fetched before answering");
}

/// `stale-if-error`: the stored response stands in for a 503 within the window only.
async fn stale_if_error(app: App) {
    app.get("/flaky", &[]).await;
    app.clock.advance(Duration::from_secs(15));
    let (status, label, body) = app.get("/flaky", &[]).await;
    assert_eq!(
        (status, label.as_str(), body.as_str()),
        (StatusCode::OK, "STALE", "flaky v1")
    );
    app.clock.advance(Duration::from_secs(100));
    let (status, label, _) = app.get("/flaky", &[]).await;
    assert_eq!(
        (status, label.as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, "PASS")
    );
}

/// `Location` on the same host is invalidated with the POST's URL; on another host not.
async fn location_is_invalidated_on_the_same_host_only(app: App) {
    app.get("/site", &[]).await;
    let post = |elsewhere: bool| {
        let mut r = app.client.post(format!("{}/moved", app.base));
        if elsewhere {
            r = r.header("x-elsewhere", "1");
        }
        r.send()
    };
    post(true).await.unwrap();
    assert_eq!(app.get("/site", &[]).await.1, "HIT");
    post(false).await.unwrap();
    assert_eq!(app.get("/site", &[]).await.1, "MISS");
}

/// The byte budget deletes what this process stored first; the query allow-list keys
/// by the chosen parameters only.
async fn byte_budget_and_query_allow_list(cache: Cache) {
    let app = start_with(cache, |l| l.max_bytes(5_000).query_params(["id"])).await;
    for id in 0..10 {
        let (_, label, _) = app.get(&format!("/blob?id={id}&utm=a"), &[]).await;
        assert_eq!(label, "MISS");
    }
    let (_, label, _) = app.get("/blob?id=9&utm=other", &[]).await;
    assert_eq!(label, "HIT", "utm is not in the key");
    let (_, label, _) = app.get("/blob?%69d=9", &[]).await;
    assert_eq!(label, "HIT", "the name as the application decodes it");
    let (_, label, _) = app.get("/blob?id=0", &[]).await;
    assert_eq!(label, "MISS", "the oldest went past the budget");
    assert_eq!(app.calls(), 11);
}

macro_rules! on_both {
    ($($case:ident),*) => {
        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let cache = cache_core::Cache::new(cache_memory::MemoryBackend::builder().build().unwrap());
                    super::$case(super::start(cache).await).await;
                }
            )*
        }
        mod redis {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let url = super::servers::address(&super::servers::REDIS).await;
                    let backend = cache_redis::RedisBackend::builder().url(url).build().await.unwrap();
                    super::$case(super::start(cache_core::Cache::new(backend)).await).await;
                }
            )*
        }
    };
}

on_both!(
    credentials_are_never_shared,
    vary_is_honoured,
    hosts_are_apart,
    conditions_cookies_and_age,
    revalidation_and_client_no_cache,
    unsafe_methods_invalidate,
    stale_while_revalidate,
    stale_if_error,
    location_is_invalidated_on_the_same_host_only,
    a_304_never_stores_a_cookie,
    hosts_that_disagree_are_not_cached
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn byte_budget_and_query_allow_list_on_memory() {
    byte_budget_and_query_allow_list(Cache::new(
        cache_memory::MemoryBackend::builder().build().unwrap(),
    ))
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn byte_budget_and_query_allow_list_on_redis() {
    let url = servers::address(&servers::REDIS).await;
    let backend = cache_redis::RedisBackend::builder()
        .url(url)
        .build()
        .await
        .unwrap();
    byte_budget_and_query_allow_list(Cache::new(backend)).await;
}
