//! The HTTP layer's throughput, in-process: servers on 127.0.0.1, a hyper-based client
//! (reqwest) with 64 concurrent connections, interleaved rounds, ratios within a round.
//!
//! - cached: a handler that takes 1 ms of CPU, behind the layer, every request a hit,
//!   against the same handler with no layer (target ≥ 5×);
//! - miss-only: the same handler, every request a new URL (looked up, fetched, stored),
//!   against no layer (target: the layer costs ≤ 10 %, i.e. a ratio ≥ 0.90);
//! - the same two with a handler that waits 1 ms instead (a timer, no CPU): there the
//!   reference is bound by this machine's two cores, shared by client and server, so
//!   it shows what the layer costs per request rather than what it saves.
//!
//! `cargo bench -p cache-axum --bench http`

use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use cache_axum::HttpCacheLayer;
use cache_core::Cache;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const TASKS: usize = 64;
const ROUND: Duration = Duration::from_millis(1500);
const ROUNDS: usize = 5;

const BODY: &str = "a response of some length, 1 ms to make";

/// 1 ms of CPU.
async fn busy() -> impl IntoResponse {
    let t = Instant::now();
    while t.elapsed() < Duration::from_millis(1) {
        std::hint::spin_loop();
    }
    ([("cache-control", "max-age=600")], BODY)
}

/// 1 ms of waiting.
async fn waits() -> impl IntoResponse {
    tokio::time::sleep(Duration::from_millis(1)).await;
    ([("cache-control", "max-age=600")], BODY)
}

async fn serve(layer: Option<HttpCacheLayer>) -> String {
    let mut app = Router::new()
        .route("/busy", get(busy))
        .route("/waits", get(waits));
    if let Some(layer) = layer {
        app = app.layer(layer);
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    base
}

/// Requests per second from `TASKS` tasks for one round; `unique` gives each request
/// its own URL.
async fn load(base: &str, unique: bool, salt: &AtomicU64) -> f64 {
    let base = base.to_owned();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(TASKS)
        .build()
        .unwrap();
    let done = Arc::new(AtomicU64::new(0));
    let until = Instant::now() + ROUND;
    let tasks: Vec<_> = (0..TASKS)
        .map(|_| {
            let (client, done) = (client.clone(), done.clone());
            let base = base.to_owned();
            let first = salt.fetch_add(1_000_000, Ordering::Relaxed);
            tokio::spawn(async move {
                let mut n = first;
                while Instant::now() < until {
                    let url = if unique {
                        n += 1;
                        format!("{base}?n={n}")
                    } else {
                        base.clone()
                    };
                    let r = client.get(&url).send().await.unwrap();
                    assert_eq!(r.status(), 200);
                    r.bytes().await.unwrap();
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    done.load(Ordering::Relaxed) as f64 / ROUND.as_secs_f64()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let cache = Cache::new(
            cache_memory::MemoryBackend::builder()
                .max_entries(1 << 22)
                .build()
                .unwrap(),
        );
        let bare = serve(None).await;
        let layered = serve(Some(HttpCacheLayer::new(cache))).await;
        let salt = AtomicU64::new(0);
        println!("HTTP layer, {TASKS} connections, {ROUNDS} rounds of {ROUND:?} (requests/s)");
        for path in ["/busy", "/waits"] {
            let (bare, layered) = (format!("{bare}{path}"), format!("{layered}{path}"));
            load(&layered, false, &salt).await; // the one cached URL, warm
            let (mut hit, mut miss) = (Vec::new(), Vec::new());
            for round in 0..ROUNDS {
                let reference = load(&bare, false, &salt).await;
                let cached = load(&layered, false, &salt).await;
                let missed = load(&layered, true, &salt).await;
                let reference2 = load(&bare, true, &salt).await;
                hit.push(cached / reference);
                miss.push(missed / reference2);
                println!(
                    "{path} round {round}: no layer {reference:.0} | cached {cached:.0} ({:.2}x) | miss-only {missed:.0} vs no layer {reference2:.0} ({:.3}x)",
                    cached / reference,
                    missed / reference2
                );
            }
            println!(
                "{path} median: cached response {:.2}x the handler alone (target >= 5x); miss-only {:.3}x no layer (target >= 0.90x)",
                median(hit),
                median(miss)
            );
        }
    });
}
