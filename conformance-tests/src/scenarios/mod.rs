//! Scenarios every networked backend's own tests run the same way: a server killed
//! and restarted during get-or-compute, every call bounded by the backend's timeout
//! with the server killed, a stampede across processes, lazy start, and the
//! blocking API from plain threads. Each is a public function here; [`ScenarioSpec`] says
//! what differs per store (how to make its builder, how to run a server of a test's
//! own), and [`scenarios!`](crate::scenarios!) expands the spec into one test per
//! scenario.

use cache_core::{blocking, Cache, CacheBackend};
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

mod spec;
pub use spec::*;

/// What [`fault_cycle`] saw.
#[derive(Debug, Clone, Copy)]
pub struct FaultReport {
    /// get-or-compute calls made while the server was down (every one returned).
    pub calls_while_down: u64,
    /// How long after the restart caching worked again.
    pub resumed_after: Duration,
}

/// Up, down, back: with the server up a second call is a hit; after `kill` every
/// get-or-compute call returns its computed value within 5 × `timeout` and a plain
/// `get` is a transient error within `plain_get_bound`; after `restart` caching
/// resumes within one second, plus the circuit breaker's `retry_after` if the cache
/// has one (while it is open only its probes try the store). Panics on any failure.
pub async fn fault_cycle(
    cache: &Cache,
    timeout: Duration,
    plain_get_bound: Duration,
    kill: impl FnOnce(),
    restart: impl FnOnce(),
) -> FaultReport {
    let computes = Arc::new(AtomicUsize::new(0));
    let call = |key: String, value: u64| {
        let (cache, computes) = (cache.clone(), computes.clone());
        async move {
            let started = Instant::now();
            let v = cache
                .get_or_compute(key, || async move {
                    computes.fetch_add(1, Ordering::SeqCst);
                    Ok::<_, std::io::Error>(value)
                })
                .await
                .expect("get-or-compute never fails because of the cache");
            (v, started.elapsed())
        }
    };

    assert_eq!(call("up".into(), 1).await.0, 1);
    assert_eq!(call("up".into(), 2).await.0, 1, "a hit while up");
    assert_eq!(computes.load(Ordering::SeqCst), 1);

    kill();
    let down_since = Instant::now();
    let mut i = 0u64;
    // At most 1000 keys: once the cache's circuit breaker opens, calls take
    // microseconds, and a process keeps the values it could not store for at most
    // 5000 keys (then it forgets them all, and asked again, computes again).
    while down_since.elapsed() < Duration::from_millis(1500) && i < 1000 {
        let (v, took) = call(format!("down-{i}"), i).await;
        assert_eq!(
            v, i,
            "the computed value is returned while the server is down"
        );
        assert!(took < timeout * 5, "call {i} took {took:?} while down");
        // Asked again while down: what this process computed, not a second compute.
        let before = computes.load(Ordering::SeqCst);
        let (again, _) = call(format!("down-{i}"), i + 1_000_000).await;
        assert_eq!(again, i, "one compute per key while the store is down");
        assert_eq!(computes.load(Ordering::SeqCst), before);
        i += 1;
    }
    assert!(i >= 3, "only {i} calls ran while the server was down");
    let started = Instant::now();
    let err = cache.get::<u64>("up").await.unwrap_err();
    assert!(err.is_transient(), "plain get while down: {err}");
    assert!(
        started.elapsed() < plain_get_bound,
        "plain get took {:?}",
        started.elapsed()
    );

    restart();
    let back_at = Instant::now();
    let mut resumed = None;
    let mut n = 1000;
    while back_at.elapsed() < Duration::from_secs(5) {
        let key = format!("after-{n}");
        call(key.clone(), n).await;
        // Cached again: the store itself has the value.
        if cache.get::<u64>(&key).await.ok().flatten() == Some(n) {
            resumed = Some(back_at.elapsed());
            break;
        }
        n += 1;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let resumed_after = resumed.expect("caching never resumed after the server came back");
    let probe = cache
        .circuit_breaker()
        .map_or(Duration::ZERO, |b| b.config().retry_after);
    assert!(
        resumed_after < Duration::from_secs(1) + probe,
        "caching resumed only after {resumed_after:?}"
    );
    FaultReport {
        calls_while_down: i,
        resumed_after,
    }
}

/// What [`bounded_while_down`] measured.
#[derive(Debug, Clone, Copy)]
pub struct BoundReport {
    /// Calls made while the server was down (every one within the bound).
    pub calls: u64,
    /// The slowest of them.
    pub slowest: Duration,
}

/// One call of [`bounded_while_down`]: its error, if any.
type OneCall<'a> = std::pin::Pin<Box<dyn Future<Output = Option<cache_core::Error>> + Send + 'a>>;

/// Scheduling slack allowed over a bound (a debug build on a small, busy machine):
/// with a 250 ms timeout, a call may take up to 250 + 25 + 125 = 400 ms.
pub const BOUND_SLACK: Duration = Duration::from_millis(125);

/// The server killed: for 1.5 s (and two rounds at least) every call returns within the backend's `timeout` +
/// 10 % (+ [`BOUND_SLACK`]), reconnect attempts included: `get`, `set`, `delete`,
/// `has`, `get_many`, `set_if_absent`, `acquire_lock` and `clear` with a transient
/// error, get-or-compute with its computed value. `cache` must have no circuit
/// breaker (an open one would answer for the store, at once) and a get-or-compute
/// `store_timeout` above `timeout`, so that the bound measured is the backend's own.
/// Panics, naming every call past the bound.
pub async fn bounded_while_down(
    cache: &Cache,
    timeout: Duration,
    kill: impl FnOnce(),
) -> BoundReport {
    assert!(
        cache.circuit_breaker().is_none(),
        "the bound of the backend is under test: build the cache without a circuit breaker"
    );
    // Up: the connection is made and used, as in a service the outage interrupts.
    let mut up = Err(None);
    for _ in 0..20 {
        match cache.set("up", &1u64, Duration::from_secs(60)).await {
            Ok(()) => {
                up = Ok(());
                break;
            }
            Err(e) => up = Err(Some(e)),
        }
    }
    up.unwrap_or_else(|e| panic!("the server does not answer before the kill: {e:?}"));
    assert_eq!(cache.get::<u64>("up").await.unwrap(), Some(1));

    let bound = timeout + timeout / 10 + BOUND_SLACK;
    let backend = cache.backend();
    let bytes = || cache_core::Bytes::from_static(b"v");
    let minute = Duration::from_secs(60);
    kill();
    let down_since = Instant::now();
    let (mut calls, mut slowest, mut late) = (0u64, Duration::ZERO, vec![]);
    let mut i = 0u64;
    // Two rounds at least: the first calls may find the lost connection at once.
    while down_since.elapsed() < Duration::from_millis(1500) || i < 2 {
        let k = format!("down-{i}");
        let ops: [(&str, OneCall<'_>); 9] = [
            ("get", Box::pin(async { cache.get::<u64>(&k).await.err() })),
            (
                "set",
                Box::pin(async { cache.set(&k, &i, minute).await.err() }),
            ),
            ("delete", Box::pin(async { cache.delete(&k).await.err() })),
            ("has", Box::pin(async { cache.has(&k).await.err() })),
            (
                "get_many",
                Box::pin(async { backend.get_many(&[&k, "up"]).await.err() }),
            ),
            (
                "set_if_absent",
                Box::pin(async {
                    backend
                        .set_if_absent(&k, bytes(), minute.into())
                        .await
                        .err()
                }),
            ),
            (
                "acquire_lock",
                Box::pin(async { backend.acquire_lock(&k, minute).await.err() }),
            ),
            ("clear", Box::pin(async { cache.clear().await.err() })),
            (
                "get_or_compute",
                Box::pin(async {
                    let v = cache
                        .get_or_compute(k.clone(), || async { Ok::<_, std::io::Error>(i) })
                        .await
                        .expect("get-or-compute never fails because of the cache");
                    assert_eq!(v, i, "the computed value while the server is down");
                    None
                }),
            ),
        ];
        for (op, call) in ops {
            let started = Instant::now();
            let err = call.await;
            let took = started.elapsed();
            if op != "get_or_compute" {
                let err = err.unwrap_or_else(|| panic!("{op} succeeded with the server down"));
                assert!(err.is_transient(), "{op} while down: {err}");
            }
            calls += 1;
            slowest = slowest.max(took);
            if took > bound {
                late.push(format!("{op} #{i} took {took:?}"));
            }
        }
        i += 1;
    }
    assert!(
        late.is_empty(),
        "{} of {calls} calls took longer than the timeout {timeout:?} + 10 % + {BOUND_SLACK:?} \
         with the server down: {}",
        late.len(),
        late.join(", ")
    );
    BoundReport { calls, slowest }
}

/// The blocking API from 4 plain threads: a round trip, and one compute for four
/// concurrent get-or-compute callers; then `clear` and `close`.
pub fn blocking_from_threads(cache: &blocking::Cache) {
    cache.set("k", &"v", Duration::from_secs(60)).unwrap();
    assert_eq!(cache.get::<String>("k").unwrap().as_deref(), Some("v"));
    let calls = Arc::new(AtomicUsize::new(0));
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let (cache, calls) = (cache.clone(), calls.clone());
            std::thread::spawn(move || {
                cache
                    .get_or_compute("slow", || {
                        calls.fetch_add(1, Ordering::SeqCst);
                        std::thread::sleep(Duration::from_millis(100));
                        Ok::<_, std::io::Error>(7u32)
                    })
                    .unwrap()
            })
        })
        .collect();
    for t in threads {
        assert_eq!(t.join().unwrap(), 7);
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    // Fail-safe from plain code: past its 50 ms freshness, a failing compute gets the
    // kept value back instead of the error.
    let kept: u32 = cache
        .cached("kept")
        .expiry(Duration::from_millis(50))
        .fail_safe(Duration::from_secs(60))
        .get_or_compute(|| Ok::<_, std::io::Error>(1))
        .unwrap();
    assert_eq!(kept, 1);
    std::thread::sleep(Duration::from_millis(80));
    let kept: u32 = cache
        .cached("kept")
        .expiry(Duration::from_millis(50))
        .fail_safe(Duration::from_secs(60))
        .get_or_compute(|| Err(std::io::Error::other("origin down")))
        .unwrap();
    assert_eq!(kept, 1, "the kept value, not the error");
    cache.clear().unwrap();
    cache.close().unwrap();
}

/// Processes and tasks of a stampede run.
pub const STAMPEDE_PROCESSES: usize = 4;
/// Tasks per process.
pub const STAMPEDE_TASKS: usize = 50;
const STAMPEDE_ENV: &str = "CACHE_STAMPEDE_CHILD";

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Parent side: run this test binary's test `child_test` in
/// [`STAMPEDE_PROCESSES`] processes, all starting their calls at the same instant,
/// with `args` (what the child reads back with [`stampede_child_args`]) and `env`.
/// Asserts that every caller of every child got the value, and returns how many
/// computes ran in all the children together (each child counts the computes that ran
/// in its process and prints the number).
pub async fn stampede_parent(child_test: &str, args: &str, env: &[(&str, &str)]) -> u64 {
    let start_at = unix_ms() + 2000;
    let exe = std::env::current_exe().expect("the test binary's path");
    let children: Vec<_> = (0..STAMPEDE_PROCESSES)
        .map(|_| {
            let mut cmd = std::process::Command::new(&exe);
            cmd.args(["--exact", child_test, "--nocapture", "--test-threads", "1"])
                .env(STAMPEDE_ENV, format!("{start_at},{args}"));
            for (k, v) in env {
                cmd.env(k, v);
            }
            tokio::task::spawn_blocking(move || cmd.output())
        })
        .collect();
    let (mut total, mut computes) = (0, 0);
    for child in children {
        let out = child
            .await
            .expect("child thread")
            .expect("child process runs");
        let stdout = String::from_utf8_lossy(&out.stdout);
        eprint!("{}", String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success(), "child failed:\n{stdout}");
        let printed = |label: &str| {
            stdout
                .lines()
                .find_map(|l| l.split_once(label).map(|(_, n)| n))
                .unwrap_or_else(|| panic!("child printed no {label}:\n{stdout}"))
                .trim()
                .parse::<u64>()
                .expect("a count")
        };
        total += printed("STAMPEDE-OK ");
        computes += printed("STAMPEDE-COMPUTES ");
    }
    assert_eq!(
        total,
        (STAMPEDE_PROCESSES * STAMPEDE_TASKS) as u64,
        "every caller got the value"
    );
    computes
}

/// The parent test's assertions: `computes(true)` (children with stampede protection)
/// counts exactly one compute, and `computes(false)` more than one, so the count is
/// what the lock changes. The runs go one after the other: eight debug-build
/// processes at once on a small machine would push calls past the fail-open timeout.
pub async fn assert_lock_decides<F, Fut>(computes: F)
where
    F: Fn(bool) -> Fut,
    Fut: Future<Output = u64>,
{
    assert_eq!(
        computes(true).await,
        1,
        "the compute ran exactly once across the processes"
    );
    let n = computes(false).await;
    assert!(
        n > 1,
        "without the lock {n} compute(s): the test could not tell"
    );
}

/// Child side: the `args` its parent passed, or `None` when the test runs on its own
/// (then it should do nothing).
pub fn stampede_child_args() -> Option<String> {
    std::env::var(STAMPEDE_ENV)
        .ok()
        .and_then(|v| v.split_once(',').map(|(_, args)| args.to_owned()))
}

/// Child side: wait for the common start, then [`STAMPEDE_TASKS`] concurrent
/// get-or-compute calls of one cold key whose 200 ms compute runs `count` (an atomic
/// increment on the store, say, or nothing); prints for [`stampede_parent`] how many
/// callers got the value and how many computes ran in this process.
pub async fn stampede_child<F, Fut>(cache: &Cache, count: F)
where
    F: Fn() -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send,
{
    let start_at: u64 = std::env::var(STAMPEDE_ENV)
        .ok()
        .and_then(|v| v.split(',').next().and_then(|s| s.parse().ok()))
        .expect("run by stampede_parent");
    tokio::time::sleep(Duration::from_millis(start_at.saturating_sub(unix_ms()))).await;
    let computes = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..STAMPEDE_TASKS)
        .map(|_| {
            let (cache, count, computes) = (cache.clone(), count.clone(), computes.clone());
            tokio::spawn(async move {
                cache
                    .get_or_compute("cold-key", || async move {
                        computes.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        count().await;
                        Ok::<_, std::io::Error>("the value".to_string())
                    })
                    .await
                    .expect("the compute does not fail")
            })
        })
        .collect();
    let mut ok = 0;
    for t in tasks {
        if t.await.expect("task") == "the value" {
            ok += 1;
        }
    }
    println!("STAMPEDE-OK {ok}");
    println!("STAMPEDE-COMPUTES {}", computes.load(Ordering::SeqCst));
}

/// Lazy start, both ways: `down` (built lazily against an address where nothing
/// listens) returns at once, fails plain calls fast with `Unavailable` and lets
/// get-or-compute compute; `up` (built lazily against the test server) connects in the
/// background, after which values are cached. Returns how long `up` took to connect.
pub async fn lazy_start(down: cache_core::LazyBackend, up: cache_core::LazyBackend) -> Duration {
    lazy_while_down(down).await;
    lazy_connects(up).await
}

/// The `down` half of [`lazy_start`].
pub async fn lazy_while_down(down: cache_core::LazyBackend) {
    let down = Cache::new(down);
    for i in 0..3u32 {
        let started = Instant::now();
        let v: u32 = down
            .get_or_compute(
                format!("k{i}"),
                || async move { Ok::<_, std::io::Error>(i) },
            )
            .await
            .expect("get-or-compute computes while the store is unreachable");
        assert_eq!(v, i);
        assert!(
            started.elapsed() < Duration::from_millis(100),
            "took {:?}",
            started.elapsed()
        );
    }
    let err = down.get::<u32>("k").await.unwrap_err();
    assert_eq!(err.kind(), cache_core::ErrorKind::Unavailable, "{err}");
    assert!(err.message().contains("still connecting"), "{err}");
}

/// The `up` half of [`lazy_start`]: how long it took to connect.
pub async fn lazy_connects(up: cache_core::LazyBackend) -> Duration {
    let started = Instant::now();
    while !up.is_connected() {
        if started.elapsed() > Duration::from_secs(20) {
            let why = cache_core::CacheBackend::get(&up, "k").await.err();
            panic!("the lazy backend never connected to the test server: {why:?}");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let took = started.elapsed();
    let up = Cache::new(up);
    let calls = Arc::new(AtomicUsize::new(0));
    for _ in 0..2 {
        let calls = calls.clone();
        let v: u32 = up
            .get_or_compute("lazy", || async move {
                calls.fetch_add(1, Ordering::SeqCst);
                Ok::<_, std::io::Error>(7)
            })
            .await
            .unwrap();
        assert_eq!(v, 7);
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1, "the second call is a hit");
    up.clear().await.unwrap();
    took
}
