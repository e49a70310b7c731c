//! End to end: the example app on 127.0.0.1 and a real HTTP client (reqwest), on the
//! in-memory backend and on a real Redis (started by the project's script, or the
//! test's own for the outage).

#[path = "../examples/web/app.rs"]
#[allow(dead_code)]
mod app;

use app::{AppState, Calls};
use cache_core::{BreakerConfig, Cache, ErrorKind};
use conformance_tests::servers::{self, OwnProcess};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

struct Running {
    base: String,
    calls: Arc<Calls>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    served: tokio::task::JoinHandle<std::io::Result<()>>,
}

async fn start(cache: Cache) -> Running {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let calls = Arc::new(Calls::default());
    let state = AppState {
        cache: cache.clone(),
        calls: calls.clone(),
    };
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let served = tokio::spawn(cache_axum::serve(listener, app::app(state), cache, async {
        let _ = rx.await;
    }));
    Running {
        base,
        calls,
        stop: Some(tx),
        served,
    }
}

fn memory() -> Cache {
    Cache::new(cache_memory::MemoryBackend::builder().build().unwrap())
}

fn x_cache(r: &reqwest::Response) -> String {
    r.headers()
        .get("x-cache")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned()
}

/// 100 concurrent requests for one cold URL: one handler call, every answer right.
async fn hundred_at_once_compute_once(app: &Running, id: u32) {
    let client = reqwest::Client::new();
    let url = format!("{}/report?id={id}", app.base);
    let before = app.calls.report.load(Ordering::SeqCst);
    let answers = futures::future::join_all((0..100).map(|_| {
        let (client, url) = (client.clone(), url.clone());
        async move {
            let r = client.get(&url).send().await.unwrap();
            assert_eq!(r.status(), 200);
            let label = x_cache(&r);
            (label, r.text().await.unwrap())
        }
    }))
    .await;
    assert!(answers
        .iter()
        .all(|(_, body)| *body == format!("report {id}")));
    assert_eq!(answers.iter().filter(|(l, _)| l == "MISS").count(), 1);
    assert_eq!(
        app.calls.report.load(Ordering::SeqCst) - before,
        1,
        "one handler call for 100 requests"
    );
    let again = client.get(&url).send().await.unwrap();
    assert_eq!(x_cache(&again), "HIT");
    assert!(again.headers().contains_key("age"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_compute_once_on_memory() {
    let app = start(memory()).await;
    hundred_at_once_compute_once(&app, 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_cache_control_is_honoured() {
    let app = start(memory()).await;
    let client = reqwest::Client::new();
    let url = format!("{}/report?id=2", app.base);
    for _ in 0..2 {
        let r = client
            .get(&url)
            .header("cache-control", "no-store")
            .send()
            .await
            .unwrap();
        assert_eq!(x_cache(&r), "BYPASS");
        assert_eq!(r.text().await.unwrap(), "report 2");
    }
    assert_eq!(
        app.calls.report.load(Ordering::SeqCst),
        2,
        "no-store never reads nor stores"
    );
    assert_eq!(x_cache(&client.get(&url).send().await.unwrap()), "MISS");
    assert_eq!(x_cache(&client.get(&url).send().await.unwrap()), "HIT");
    let r = client
        .get(&url)
        .header("cache-control", "no-cache")
        .send()
        .await
        .unwrap();
    assert_eq!(
        x_cache(&r),
        "HIT",
        "no-cache within a second of the fetch: what was just fetched (revalidate_window)"
    );
    assert_eq!(app.calls.report.load(Ordering::SeqCst), 3);
    assert_eq!(x_cache(&client.get(&url).send().await.unwrap()), "HIT");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_matching_etag_gets_304_without_a_body() {
    let app = start(memory()).await;
    let client = reqwest::Client::new();
    let url = format!("{}/report?id=3", app.base);
    let first = client.get(&url).send().await.unwrap();
    let etag = first.headers()["etag"].to_str().unwrap().to_owned();
    assert!(
        etag.starts_with("W/\""),
        "a weak ETag, made for the body: {etag}"
    );
    let r = client
        .get(&url)
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 304);
    assert_eq!(r.headers()["etag"].to_str().unwrap(), etag);
    assert!(r.bytes().await.unwrap().is_empty());
    let r = client
        .get(&url)
        .header("if-none-match", "\"other\"")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(app.calls.report.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_and_oversized_responses_pass_uncached_and_404_is_cached() {
    let app = start(memory()).await;
    let client = reqwest::Client::new();
    for _ in 0..2 {
        let r = client
            .get(format!("{}/private", app.base))
            .send()
            .await
            .unwrap();
        assert_eq!(x_cache(&r), "PASS");
        assert_eq!(r.text().await.unwrap(), "yours only");
        let r = client
            .get(format!("{}/missing", app.base))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 404);
        assert_ne!(x_cache(&r), "PASS");
        let r = client
            .get(format!("{}/big", app.base))
            .send()
            .await
            .unwrap();
        assert_eq!(x_cache(&r), "PASS");
        assert_eq!(
            r.bytes().await.unwrap().len(),
            2 * 1024 * 1024,
            "the whole body"
        );
    }
    assert_eq!(app.calls.private.load(Ordering::SeqCst), 2);
    assert_eq!(
        app.calls.missing.load(Ordering::SeqCst),
        1,
        "negative caching"
    );
    assert_eq!(app.calls.big.load(Ordering::SeqCst), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_extractor_reaches_the_cache_and_shutdown_closes_it() {
    let cache = memory();
    let mut app = start(cache.clone()).await;
    let client = reqwest::Client::new();
    for want in ["1", "2"] {
        let r = client
            .get(format!("{}/visits", app.base))
            .send()
            .await
            .unwrap();
        assert_eq!(r.text().await.unwrap(), want);
    }
    let _ = app.stop.take().unwrap().send(());
    app.served.await.unwrap().unwrap();
    let err = cache.get::<u64>("visits").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Closed, "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_redis_concurrent_requests_compute_once() {
    let url = servers::address(&servers::REDIS).await;
    let backend = cache_redis::RedisBackend::builder()
        .url(url)
        .namespace(conformance_tests::random_namespace())
        .build()
        .await
        .unwrap();
    let app = start(Cache::new(backend)).await;
    hundred_at_once_compute_once(&app, 10).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_redis_makes_endpoints_uncached_never_failing() {
    let port = OwnProcess::free_port();
    let mut redis = OwnProcess::redis(port, &[]);
    let backend = cache_redis::RedisBackend::builder()
        .url(format!("redis://127.0.0.1:{port}"))
        .timeout(Duration::from_millis(200))
        .build()
        .await
        .unwrap();
    let cache = Cache::builder(backend)
        .store_timeout(Duration::from_millis(200))
        .circuit_breaker(BreakerConfig::default())
        .build();
    let app = start(cache).await;
    let client = reqwest::Client::new();
    let url = format!("{}/report?id=20", app.base);
    client.get(&url).send().await.unwrap();
    assert_eq!(x_cache(&client.get(&url).send().await.unwrap()), "HIT");
    redis.kill();
    let started = Instant::now();
    for _ in 0..10 {
        let r = client.get(&url).send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.text().await.unwrap(), "report 20");
    }
    let took = started.elapsed();
    eprintln!("10 requests with Redis down took {took:?} (100 ms handler each)");
    assert!(
        app.calls.report.load(Ordering::SeqCst) >= 10,
        "computed while Redis is down"
    );
    redis.restart();
}
