//! Observability: `Cache::stats()`, the `metrics` facade and `tracing` spans, on the
//! in-process store (they live in the core, the same for every backend).

use cache_core::{Cache, CacheBuilder, ErrorKind, ManualClock};
use cache_memory::MemoryBackend;
use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use parking_lot::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tracing::field::{Field, Visit};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

fn memory(namespace: &str) -> MemoryBackend {
    MemoryBackend::builder()
        .namespace(namespace)
        .build()
        .unwrap()
}

#[tokio::test]
async fn stats_count_hits_misses_computes_and_errors() {
    let cache = Cache::new(memory("stats"));
    assert_eq!(cache.stats().hit_ratio(), None);
    assert_eq!(cache.get::<u32>("a").await.unwrap(), None);
    cache
        .set("a", &1u32, Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(cache.get::<u32>("a").await.unwrap(), Some(1));
    let got = cache.get_many::<u32>(&["a", "b", "c"]).await.unwrap();
    assert_eq!(got, vec![Some(1), None, None]);

    let calls = AtomicUsize::new(0);
    for _ in 0..3 {
        let v: u32 = cache
            .get_or_compute("g", || async {
                calls.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(2)).await;
                Ok::<_, std::io::Error>(7)
            })
            .await
            .unwrap();
        assert_eq!(v, 7);
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1, "a hit must not recompute");
    let failed = cache
        .get_or_compute::<u32, _, _>("bad", || async {
            Err(std::io::Error::other("origin down"))
        })
        .await;
    assert!(failed.is_err());
    // Bad input is an error of its kind, counted.
    assert!(cache.get::<u32>("").await.is_err());
    assert!(cache.set("", &1u32, Duration::from_secs(1)).await.is_err());

    let s = cache.stats();
    // Reads: get a (miss), get a (hit), get_many (1 hit, 2 misses), g (miss, then 2 hits), bad (miss).
    assert_eq!((s.hits, s.misses), (4, 5), "{s:?}");
    assert_eq!((s.computes, s.compute_errors), (2, 1), "{s:?}");
    assert!(s.compute_time >= Duration::from_millis(2), "{s:?}");
    assert_eq!(s.errors_of(ErrorKind::InvalidInput), 2, "{s:?}");
    assert_eq!(s.errors_of(ErrorKind::Timeout), 0);
    assert_eq!(s.hit_ratio(), Some(4.0 / 9.0));
    // Clones share the counters.
    let _ = cache.clone().get::<u32>("a").await.unwrap();
    assert_eq!(cache.stats().hits, 5);
}

#[tokio::test]
async fn stale_and_fail_safe_values_served_are_counted() {
    let clock = Arc::new(ManualClock::new());
    let cache = Cache::builder(memory("stale"))
        .clock(clock.clone())
        .stale_while_revalidate(Duration::from_secs(60))
        .fail_safe(Duration::from_secs(600))
        .build();
    let ok = |v: u32| move || async move { Ok::<_, std::io::Error>(v) };
    let v: u32 = cache
        .cached("k")
        .expiry(Duration::from_secs(10))
        .get_or_compute(ok(1))
        .await
        .unwrap();
    assert_eq!(v, 1);
    clock.advance(Duration::from_secs(20)); // stale
    let v: u32 = cache
        .cached("k")
        .expiry(Duration::from_secs(10))
        .get_or_compute_detached(ok(2))
        .await
        .unwrap();
    assert_eq!(v, 1, "the stale value is served at once");
    assert_eq!(cache.stats().stale_served, 1);

    clock.advance(Duration::from_secs(200)); // past stale, within fail-safe
    let v: u32 = cache
        .cached("f")
        .expiry(Duration::from_secs(10))
        .get_or_compute(ok(3))
        .await
        .unwrap();
    assert_eq!(v, 3);
    clock.advance(Duration::from_secs(200));
    let v: u32 = cache
        .cached("f")
        .expiry(Duration::from_secs(10))
        .get_or_compute(|| async { Err::<u32, _>(std::io::Error::other("down")) })
        .await
        .unwrap();
    assert_eq!(v, 3, "fail-safe serves the kept value");
    assert_eq!(cache.stats().stale_served, 2);
}

#[test]
fn counts_are_exact_across_threads() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let cache = Cache::new(memory("threads"));
    rt.block_on(cache.set("k", &1u8, Duration::from_secs(3600)))
        .unwrap();
    // More threads than owned stripes, so the shared stripe counts too.
    std::thread::scope(|s| {
        for _ in 0..40 {
            let (cache, rt) = (&cache, &rt);
            s.spawn(move || {
                for _ in 0..2_000 {
                    rt.block_on(cache.get::<u8>("k")).unwrap();
                    rt.block_on(cache.get::<u8>("none")).unwrap();
                }
            });
        }
    });
    let s = cache.stats();
    assert_eq!((s.hits, s.misses), (80_000, 80_000));
}

#[tokio::test]
async fn observe_off_counts_nothing() {
    let cache = Cache::builder(memory("quiet")).observe(false).build();
    cache.set("a", &1u8, Duration::from_secs(60)).await.unwrap();
    let _ = cache.get::<u8>("a").await.unwrap();
    let _ = cache.get::<u8>("").await;
    assert_eq!(cache.stats(), Default::default());
}

#[tokio::test]
async fn metrics_facade_counters_and_histograms() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    // Handles are registered when the cache is built.
    let cache = metrics::with_local_recorder(&recorder, || {
        CacheBuilder::from_arc(Arc::new(memory("metered"))).build()
    });
    let _ = cache.get::<u8>("a").await.unwrap();
    cache.set("a", &1u8, Duration::from_secs(60)).await.unwrap();
    let _ = cache.get::<u8>("a").await.unwrap();
    let _ = cache.get::<u8>("").await;
    let _: u8 = cache
        .get_or_compute("c", || async { Ok::<_, std::io::Error>(5) })
        .await
        .unwrap();

    let mut seen = std::collections::HashMap::new();
    for (key, _, _, value) in snapshotter.snapshot().into_vec() {
        let k = key.key();
        let labels: Vec<String> = k
            .labels()
            .map(|l| format!("{}={}", l.key(), l.value()))
            .collect();
        assert!(labels.contains(&"backend=memory".to_owned()), "{labels:?}");
        assert!(
            labels.contains(&"namespace=metered".to_owned()),
            "{labels:?}"
        );
        let extra = labels
            .iter()
            .find(|l| l.starts_with("kind=") || l.starts_with("op="))
            .cloned()
            .unwrap_or_default();
        let n = match value {
            DebugValue::Counter(n) => n as usize,
            DebugValue::Histogram(v) => v.len(),
            DebugValue::Gauge(_) => 0,
        };
        seen.insert(format!("{}{{{extra}}}", k.name()), n);
    }
    let get = |name: &str| seen.get(name).copied().unwrap_or(usize::MAX);
    assert_eq!(get("cache_hits_total{}"), 1, "{seen:?}");
    assert_eq!(get("cache_misses_total{}"), 2, "{seen:?}");
    assert_eq!(get("cache_computes_total{}"), 1, "{seen:?}");
    assert_eq!(get("cache_compute_seconds{}"), 1, "{seen:?}");
    assert_eq!(get("cache_errors_total{kind=invalid_input}"), 1, "{seen:?}");
    assert_eq!(get("cache_errors_total{kind=timeout}"), 0, "{seen:?}");
    // Backend calls on the async path are timed (the set, and get-or-compute's read,
    // lock and write); plain in-process reads are not.
    assert_eq!(get("cache_backend_seconds{op=set}"), 2, "{seen:?}");
    assert_eq!(get("cache_backend_seconds{op=acquire_lock}"), 1, "{seen:?}");
    assert_eq!(
        get("cache_backend_seconds{op=get_or_compute}"),
        usize::MAX,
        "not a backend call"
    );
}

/// Every span's name and fields, as `name{field=value ...}`.
#[derive(Clone, Default)]
struct Spans(Arc<Mutex<Vec<(tracing::span::Id, String)>>>);

struct Fields<'a>(&'a mut String);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.push_str(&format!(" {}={:?}", field.name(), value));
    }
}

impl<S: tracing::Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Spans {
    fn on_new_span(
        &self,
        attrs: &tracing::span::Attributes<'_>,
        id: &tracing::span::Id,
        _: Context<'_, S>,
    ) {
        let mut s = attrs.metadata().name().to_owned();
        attrs.record(&mut Fields(&mut s));
        // Only the spans tests look at (every test of this binary makes spans).
        if s.contains("namespace=traced") {
            self.0.lock().push((id.clone(), s));
        }
    }
    fn on_record(
        &self,
        id: &tracing::span::Id,
        values: &tracing::span::Record<'_>,
        _: Context<'_, S>,
    ) {
        let mut spans = self.0.lock();
        if let Some((_, s)) = spans.iter_mut().find(|(i, _)| i == id) {
            values.record(&mut Fields(s));
        }
    }
}

/// The spans of this test binary, from a global subscriber (a scoped one can miss
/// callsites that other tests' threads registered first).
fn spans() -> &'static Spans {
    static SPANS: std::sync::OnceLock<Spans> = std::sync::OnceLock::new();
    SPANS.get_or_init(|| {
        let spans = Spans::default();
        tracing::subscriber::set_global_default(tracing_subscriber::registry().with(spans.clone()))
            .expect("no other global subscriber in this test binary");
        spans
    })
}

async fn traced_calls(trace_keys: bool) -> Vec<String> {
    let spans = spans();
    let namespace = if trace_keys {
        "tracedkeys"
    } else {
        "tracedplain"
    };
    let cache = Cache::builder(memory(namespace))
        .trace_keys(trace_keys)
        .build();
    cache
        .set("user:42", &"secret-value", Duration::from_secs(60))
        .await
        .unwrap();
    let _ = cache.get::<String>("user:42").await.unwrap();
    let _ = cache.get::<String>("user:43").await.unwrap();
    let _: u8 = cache
        .get_or_compute("gc", || async { Ok::<_, std::io::Error>(1) })
        .await
        .unwrap();
    let _: u8 = cache
        .get_or_compute("gc", || async { Ok::<_, std::io::Error>(1) })
        .await
        .unwrap();
    let _: u8 = cache
        .cached("gd")
        .get_or_compute_detached(|| async { Ok::<_, std::io::Error>(2) })
        .await
        .unwrap();
    let mine = format!("namespace={namespace}");
    let out = spans
        .0
        .lock()
        .iter()
        .map(|(_, s)| s.clone())
        .filter(|s| s.contains(&mine))
        .collect();
    out
}

#[tokio::test]
async fn spans_name_the_call_and_never_the_value() {
    let spans = traced_calls(false).await;
    assert_eq!(spans.len(), 6, "{spans:#?}");
    let all = spans.join("\n");
    assert!(!all.contains("secret-value"), "{all}");
    assert!(
        !all.contains("user:4"),
        "keys only when trace_keys is on: {all}"
    );
    assert!(
        spans[0].starts_with("cache op=\"set\" backend=\"memory\" namespace=tracedplain"),
        "{all}"
    );
    assert!(
        spans[1].contains("op=\"get\"") && spans[1].ends_with("hit=true"),
        "{all}"
    );
    assert!(
        spans[2].contains("op=\"get\"") && spans[2].ends_with("hit=false"),
        "{all}"
    );
    assert!(
        spans[3].contains("op=\"get_or_compute\"") && spans[3].ends_with("hit=false"),
        "{all}"
    );
    assert!(
        spans[4].contains("op=\"get_or_compute\"") && spans[4].ends_with("hit=true"),
        "{all}"
    );
    assert!(
        spans[5].contains("op=\"get_or_compute\"") && spans[5].ends_with("hit=false"),
        "detached calls have their span too: {all}"
    );

    let with_keys = traced_calls(true).await.join("\n");
    assert!(with_keys.contains("key=\"user:42\""), "{with_keys}");
    assert!(!with_keys.contains("secret-value"), "{with_keys}");
}
