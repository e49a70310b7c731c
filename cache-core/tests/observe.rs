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

/// Fifty concurrent get-or-compute calls on one cold key: one leader computes, the
/// 49 that waited on it are coalesced, not misses.
#[tokio::test]
async fn callers_that_waited_on_a_compute_are_coalesced_not_misses() {
    let cache = Cache::new(memory("coalesced"));
    let calls = AtomicUsize::new(0);
    let answers = futures::future::join_all((0..50).map(|_| {
        cache.get_or_compute("cold", || async {
            calls.fetch_add(1, Ordering::SeqCst);
            // Long enough for every caller to join the flight first.
            tokio::time::sleep(Duration::from_millis(20)).await;
            Ok::<_, std::io::Error>(7u32)
        })
    }))
    .await;
    assert!(answers.iter().all(|a| matches!(a, Ok(7))));
    assert_eq!(calls.load(Ordering::SeqCst), 1, "one compute");
    let s = cache.stats();
    assert_eq!(
        (s.hits, s.misses, s.coalesced, s.computes),
        (0, 1, 49, 1),
        "{s:?}"
    );
    assert_eq!(
        s.hit_ratio(),
        Some(0.0),
        "coalesced calls are not reads of the store"
    );
    // Detached calls count the same way.
    let answers = futures::future::join_all((0..5).map(|_| {
        cache
            .cached("cold-detached")
            .get_or_compute_detached(|| async {
                tokio::time::sleep(Duration::from_millis(20)).await;
                Ok::<_, std::io::Error>(8u32)
            })
    }))
    .await;
    assert!(answers.iter().all(|a| matches!(a, Ok(8))));
    let s = cache.stats();
    assert_eq!(
        (s.hits, s.misses, s.coalesced, s.computes),
        (0, 2, 53, 2),
        "{s:?}"
    );
}

/// A caller that polls another process's lock and then finds its value is coalesced
/// (two caches over one store stand for two processes: they share no flight).
#[tokio::test]
async fn a_caller_that_found_another_processs_value_is_coalesced() {
    let store: Arc<dyn cache_core::CacheBackend> = Arc::new(memory("two-processes"));
    let (a, b) = (Cache::from_arc(store.clone()), Cache::from_arc(store));
    let (started_tx, started_rx) = tokio::sync::oneshot::channel();
    let first = a.get_or_compute("k", || async move {
        let _ = started_tx.send(());
        tokio::time::sleep(Duration::from_millis(30)).await;
        Ok::<_, std::io::Error>(1u32)
    });
    let second = async {
        started_rx.await.unwrap(); // a holds the lock now
        b.get_or_compute("k", || async {
            panic!("b must not compute: a holds the lock and writes the value")
        })
        .await
        .map_err(|e: cache_core::ComputeError<std::io::Error>| e.to_string())
    };
    let (x, y) = tokio::join!(first, second);
    assert_eq!((x.unwrap(), y.unwrap()), (1, 1));
    let (sa, sb) = (a.stats(), b.stats());
    assert_eq!((sa.misses, sa.coalesced, sa.computes), (1, 0, 1), "{sa:?}");
    assert_eq!((sb.misses, sb.coalesced, sb.computes), (0, 1, 0), "{sb:?}");
}

#[tokio::test]
async fn stats_serialise_as_one_json_object() {
    let cache = Cache::new(memory("json"));
    assert_eq!(
        serde_json::to_value(cache.stats()).unwrap(),
        serde_json::json!({
            "hits": 0, "misses": 0, "coalesced": 0, "stale_served": 0, "computes": 0,
            "compute_errors": 0, "compute_seconds": 0.0, "hit_ratio": null, "errors": {}
        })
    );
    cache.set("a", &1u8, Duration::from_secs(60)).await.unwrap();
    let _ = cache.get::<u8>("a").await.unwrap();
    let _ = cache.get::<u8>("b").await.unwrap();
    let _ = cache.get::<u8>("").await;
    let v = serde_json::to_value(cache.stats()).unwrap();
    assert_eq!(
        (v["hits"].as_u64(), v["misses"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(v["hit_ratio"].as_f64(), Some(0.5));
    assert_eq!(v["errors"], serde_json::json!({"invalid_input": 1}));
    assert_eq!(v.as_object().unwrap().len(), 9, "{v}");
}

/// The Prometheus text parses line by line: HELP and TYPE once per metric, then one
/// sample per cache with its labels, escaped.
#[tokio::test]
async fn stats_render_as_prometheus_text() {
    let cache = Cache::new(memory("prom"));
    let _ = cache.get::<u8>("a").await.unwrap();
    let _: u8 = cache
        .get_or_compute("c", || async { Ok::<_, std::io::Error>(1) })
        .await
        .unwrap();
    let _ = cache.get::<u8>("").await;
    let (s, empty) = (cache.stats(), cache_core::CacheStats::default());
    let text = cache_core::observe::prometheus_text([
        (&s, &[("cache", "users"), ("bad-name", "a\"b\\c\nd")][..]),
        (&empty, &[("cache", "http")][..]),
    ]);
    let mut types = std::collections::HashMap::new();
    let mut samples = std::collections::HashMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            assert_eq!(kind, "counter");
            assert!(
                types.insert(name.to_owned(), ()).is_none(),
                "one TYPE: {name}"
            );
        } else if line.starts_with("# HELP ") {
        } else {
            // name{labels} value
            let (series, value) = line.rsplit_once(' ').unwrap();
            let value: f64 = value.parse().unwrap_or_else(|_| panic!("{line}"));
            let name = series.split('{').next().unwrap();
            assert!(types.contains_key(name), "sample after its TYPE: {line}");
            assert!(samples.insert(series.to_owned(), value).is_none(), "{line}");
        }
    }
    let users = r#"cache="users",bad_name="a\"b\\c\nd""#;
    let at = |name: &str, labels: &str| samples[&format!("{name}{{{labels}}}")];
    assert_eq!(at("cache_hits_total", users), 0.0);
    assert_eq!(at("cache_misses_total", users), 2.0);
    assert_eq!(at("cache_computes_total", users), 1.0);
    assert_eq!(at("cache_coalesced_total", r#"cache="http""#), 0.0);
    assert!(at("cache_compute_seconds_total", users) >= 0.0);
    assert_eq!(
        at(
            "cache_errors_total",
            &format!(r#"{users},kind="invalid_input""#)
        ),
        1.0
    );
    assert_eq!(
        at("cache_errors_total", r#"cache="http",kind="timeout""#),
        0.0
    );
    assert_eq!(types.len(), 8);
    assert_eq!(samples.len(), 2 * (7 + 8), "{text}");
    assert_eq!(
        s.to_prometheus(&[])
            .lines()
            .find(|l| l.starts_with("cache_hits_total")),
        Some("cache_hits_total 0")
    );
}

/// Each metric's value by `name{label=value,...}` (labels in the order given).
fn snapshot(snapshotter: &metrics_util::debugging::Snapshotter) -> Vec<(String, usize)> {
    snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .map(|(key, _, _, value)| {
            let k = key.key();
            let labels: Vec<String> = k
                .labels()
                .map(|l| format!("{}={}", l.key(), l.value()))
                .collect();
            let n = match value {
                DebugValue::Counter(n) => n as usize,
                DebugValue::Histogram(v) => v.len(),
                DebugValue::Gauge(_) => 0,
            };
            (format!("{}{{{}}}", k.name(), labels.join(",")), n)
        })
        .collect()
}

/// A get-or-compute with `.namespace("users")` is labelled `users`, in its metrics
/// and its span; the cache's other calls keep the backend's namespace.
#[tokio::test]
async fn per_call_namespaces_label_metrics_and_spans() {
    let spans = spans();
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    // This test's thread (a current-thread runtime) records into `recorder`.
    let _guard = metrics::set_default_local_recorder(&recorder);
    let cache = Cache::new(memory("traced-backend-ns"));
    for _ in 0..2 {
        let _: u8 = cache
            .cached("u1")
            .namespace("traced-users")
            .get_or_compute(|| async { Ok::<_, std::io::Error>(1) })
            .await
            .unwrap();
    }
    let _ = cache.get::<u8>("x").await.unwrap();
    let seen = snapshot(&snapshotter);
    let value = |name: &str, ns: &str| {
        let key = format!("{name}{{backend=memory,namespace={ns}}}");
        seen.iter()
            .find(|(k, _)| *k == key)
            .map(|(_, n)| *n)
            .unwrap_or_else(|| panic!("{key} in {seen:#?}"))
    };
    assert_eq!(value("cache_hits_total", "traced-users"), 1);
    assert_eq!(value("cache_misses_total", "traced-users"), 1);
    assert_eq!(value("cache_computes_total", "traced-users"), 1);
    assert_eq!(
        value("cache_misses_total", "traced-backend-ns"),
        1,
        "the plain get"
    );
    assert_eq!(value("cache_hits_total", "traced-backend-ns"), 0);
    let ours: Vec<String> = spans
        .0
        .lock()
        .iter()
        .map(|(_, s)| s.clone())
        .filter(|s| s.contains("namespace=traced-users") || s.contains("traced-backend-ns"))
        .collect();
    let gc: Vec<&String> = ours
        .iter()
        .filter(|s| s.contains("get_or_compute"))
        .collect();
    assert_eq!(gc.len(), 2, "{ours:#?}");
    assert!(
        gc.iter().all(|s| s.contains("namespace=traced-users")),
        "{ours:#?}"
    );
    assert!(
        ours.iter()
            .any(|s| s.contains("op=\"get\"") && s.contains("namespace=traced-backend-ns")),
        "{ours:#?}"
    );
}

/// Per-call namespaces past the limit share one label: the series stay bounded.
#[tokio::test]
async fn per_call_namespace_labels_are_bounded() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let _guard = metrics::set_default_local_recorder(&recorder);
    let cache = Cache::new(memory("bounded"));
    for i in 0..100 {
        let _: u8 = cache
            .cached("k")
            .namespace(format!("ns{i}"))
            .get_or_compute(|| async { Ok::<_, std::io::Error>(1) })
            .await
            .unwrap();
    }
    let seen = snapshot(&snapshotter);
    let misses: Vec<&(String, usize)> = seen
        .iter()
        .filter(|(k, _)| k.starts_with("cache_misses_total{"))
        .collect();
    // The backend's own, 64 per-call namespaces, and `_other`.
    assert_eq!(misses.len(), 1 + 64 + 1, "{misses:#?}");
    let other = misses
        .iter()
        .find(|(k, _)| k.ends_with("namespace=_other}"))
        .unwrap();
    assert_eq!(other.1, 100 - 64);
    assert_eq!(cache.stats().misses, 100);
}

/// A recorder installed after the cache was built gets its counts from then on
/// (each thread looks for one every 64 counts while there is none).
/// (The only test of this binary that installs a global recorder.)
#[tokio::test]
async fn a_recorder_installed_after_the_cache_was_built_works() {
    let cache = Cache::new(memory("late-recorder"));
    cache.set("a", &1u8, Duration::from_secs(60)).await.unwrap();
    let _ = cache.get::<u8>("a").await.unwrap(); // before: in stats only
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    recorder
        .install()
        .expect("no other global recorder in this binary");
    for _ in 0..100 {
        let _ = cache.get::<u8>("a").await.unwrap();
    }
    let _ = cache.get::<u8>("b").await.unwrap();
    let _: u8 = cache
        .cached("c")
        .namespace("late-users")
        .get_or_compute(|| async { Ok::<_, std::io::Error>(1) })
        .await
        .unwrap();
    let seen = snapshot(&snapshotter);
    let value = |key: &str| {
        seen.iter()
            .find(|(k, _)| k == key)
            .map(|(_, n)| *n)
            .unwrap_or_else(|| panic!("{key} in {seen:#?}"))
    };
    let hits = value("cache_hits_total{backend=memory,namespace=late-recorder}");
    assert!(
        (100 - 64..=100).contains(&hits),
        "{hits}: at most 64 missed"
    );
    assert_eq!(
        value("cache_misses_total{backend=memory,namespace=late-recorder}"),
        1
    );
    assert_eq!(
        value("cache_misses_total{backend=memory,namespace=late-users}"),
        1,
        "a namespace first seen after the installation"
    );
    assert_eq!(cache.stats().hits, 101, "stats count from the start");
}
