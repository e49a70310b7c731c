//! End to end, as a newcomer builds it from `cache-axum/GUIDE.md`: the guide's service
//! (examples/axum_service) with PostgreSQL as the origin and Redis as the cache chosen
//! by its URL, served on 127.0.0.1 and driven over real HTTP; origin queries counted.
//! Run: `bash scripts/test.sh redis postgres -p cache --test axum_service` (it starts
//! the servers and sets CACHE_TEST_REDIS_URL and CACHE_TEST_POSTGRES_URL; without them
//! the test fails and says so).
//!
//! Alone in its binary: it sends SIGTERM to its own process.
#![cfg(all(feature = "axum", feature = "redis"))]

#[path = "../examples/axum_service/app.rs"]
#[allow(dead_code)] // create_table is main's
mod app;

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

fn server_var(name: &str, store: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "{name} is not set: run `bash scripts/test.sh redis postgres -p cache --test \
             axum_service` (it starts the {store} server and sets it)"
        )
    })
}

/// The samples of a Prometheus text page, by series.
fn samples(text: &str) -> HashMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (series, value) = l.rsplit_once(' ').expect("series value");
            (series.to_owned(), value.parse().expect("a number"))
        })
        .collect()
}

/// The service on 127.0.0.1 until SIGTERM: its base URL and the server's task.
async fn serve(state: app::AppState) -> (String, tokio::task::JoinHandle<std::io::Result<()>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let cache = state.cache.clone();
    let shutdown = app::shutdown_signal().unwrap();
    let server = tokio::spawn(cache::axum::serve(
        listener,
        app::router(state),
        cache,
        shutdown,
    ));
    (base, server)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_cached_in_redis_invalidated_on_put_stats_over_http() {
    let redis = server_var("CACHE_TEST_REDIS_URL", "redis");
    let postgres = server_var("CACHE_TEST_POSTGRES_URL", "postgres");
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let namespace = format!("e2e-{}-{nanos}", std::process::id());

    // The cache, as the guide makes it: by URL (CACHE_URL in the guide's main).
    let cache = cache::from_url(&format!("{redis}?namespace={namespace}"))
        .await
        .unwrap();
    assert_eq!(cache.capabilities().name, "redis");

    // The origin: a users table of this session only (a temporary table shadows any
    // `users` of the database for the service's connection).
    let db = app::Db::connect(&postgres).await.unwrap();
    db.client
        .batch_execute(
            "CREATE TEMPORARY TABLE users (id bigint PRIMARY KEY, name text NOT NULL);
             INSERT INTO users VALUES (1, 'ada'), (2, 'grace');",
        )
        .await
        .unwrap();
    let queries = db.queries.clone();
    let db_client = db.client.clone();
    let state = app::AppState {
        cache: cache.clone(),
        db,
    };

    let (a, server) = serve(state).await;
    // A second instance of the service: its own process state, the same Redis and
    // database (its own count of queries).
    let db_b = app::Db {
        client: db_client,
        queries: Arc::default(),
    };
    let queries_b = db_b.queries.clone();
    let cache_b = cache::from_url(&format!("{redis}?namespace={namespace}"))
        .await
        .unwrap();
    let (b, server_b) = serve(app::AppState {
        cache: cache_b.clone(),
        db: db_b,
    })
    .await;
    let http = reqwest::Client::new();
    let get = |base: &str, path: &str| {
        let req = http.get(format!("{base}{path}"));
        async move {
            let resp = req.send().await.unwrap();
            let status = resp.status().as_u16();
            let x_cache = resp
                .headers()
                .get("x-cache")
                .map(|v| v.to_str().unwrap().to_owned());
            (status, x_cache, resp.text().await.unwrap())
        }
    };
    let put = |base: &str, path: &str, body: &'static str| {
        let req = http
            .put(format!("{base}{path}"))
            .header("content-type", "application/json")
            .body(body);
        async move { req.send().await.unwrap().status().as_u16() }
    };
    let q = || queries.load(Ordering::SeqCst);
    let q_b = || queries_b.load(Ordering::SeqCst);
    let ada = r#"{"id":1,"name":"ada"}"#;
    let lovelace = r#"{"id":1,"name":"Ada Lovelace"}"#;

    // A miss queries the database; a hit does not.
    assert_eq!(get(&a, "/users/1").await, (200, None, ada.into()));
    assert_eq!(q(), 1);
    assert_eq!(get(&a, "/users/1").await, (200, None, ada.into()));
    assert_eq!(q(), 1, "a hit queried the database");
    // The value is in Redis: the other instance reads it without a query.
    assert_eq!(get(&b, "/users/1").await.2, ada);
    assert_eq!(q_b(), 0, "the other instance queried the database");

    // PUT writes the row and invalidates, for every instance: the next GET anywhere
    // reads the new row, once.
    assert_eq!(put(&a, "/users/1", r#"{"name":"Ada Lovelace"}"#).await, 200);
    assert_eq!(q(), 2);
    assert_eq!(get(&b, "/users/1").await.2, lovelace);
    assert_eq!(q_b(), 1);
    assert_eq!(get(&a, "/users/1").await.2, lovelace);
    assert_eq!(q(), 2, "a hit after the invalidation queried the database");

    // A missing user is a 404, and not cached: each asks the database.
    assert_eq!(get(&a, "/users/99").await.0, 404);
    assert_eq!(get(&a, "/users/99").await.0, 404);
    assert_eq!(q(), 4);
    assert_eq!(put(&a, "/users/99", r#"{"name":"nobody"}"#).await, 404);
    assert_eq!(q(), 5);

    // The slow report, behind the HTTP layer: the second request is a HIT.
    let (status, x_cache, first) = get(&a, "/report").await;
    assert_eq!((status, x_cache.as_deref()), (200, Some("MISS")));
    assert_eq!(first, "2 users, longest name 12 characters");
    let (_, x_cache, second) = get(&a, "/report").await;
    assert_eq!((x_cache.as_deref(), second), (Some("HIT"), first));
    assert_eq!(q(), 6);
    // Routes added after the layer are not behind it.
    assert_eq!(get(&a, "/users/2").await.1, None);
    assert_eq!(q(), 7);

    // This instance's stats, read back over HTTP. Its reads of get-or-compute:
    // users/1 miss, hit, hit (after the PUT: the other instance had stored it);
    // users/99 miss twice; users/2 miss. The layer: /report MISS, then HIT.
    let (status, _, metrics) = get(&a, "/metrics").await;
    assert_eq!(status, 200);
    let m = samples(&metrics);
    let labels = format!(r#"backend="redis",namespace="{namespace}""#);
    let at = |name: &str| m.get(&format!("{name}{{{labels}}}")).copied();
    assert_eq!(at("cache_hits_total"), Some(3.0), "{metrics}");
    assert_eq!(at("cache_misses_total"), Some(5.0), "{metrics}");
    assert_eq!(at("cache_computes_total"), Some(4.0), "{metrics}");
    assert_eq!(at("cache_compute_errors_total"), Some(2.0), "{metrics}");
    let (status, _, stats) = get(&a, "/stats").await;
    assert_eq!(status, 200);
    assert!(
        stats.contains(r#""hits":3"#) && stats.contains(r#""misses":5"#),
        "{stats}"
    );

    // SIGTERM: the servers finish and close their caches.
    cache.clear().await.unwrap();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &std::process::id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    server.await.unwrap().unwrap();
    server_b.await.unwrap().unwrap();
    for c in [cache, cache_b] {
        let err = c.get::<String>("anything").await.unwrap_err();
        assert_eq!(err.kind(), cache::ErrorKind::Closed, "{err}");
    }
}
