//! The networked backends' benchmark loop, shared so every store is measured alike:
//! subjects (the raw driver first, as the reference; the backend through the trait;
//! the typed `Cache`) run GET and SET over interleaved rounds; each round measures
//! p50/p99 at one task and throughput at many, and ratios are taken within a round
//! (so drift of a shared machine cancels) and their median printed.
//!
//! ```no_run
//! use conformance_tests::bench::{compare, Settings, Subject};
//! # async fn demo(backend: std::sync::Arc<dyn cache_core::CacheBackend>) {
//! let subjects = [
//!     Subject::new("raw driver", |_op, _i| async { /* the same call, raw */ }),
//!     Subject::backend("backend via dyn trait", backend.clone()),
//!     Subject::typed("typed Cache<String>", cache_core::Cache::from_arc(backend)),
//! ];
//! compare("My store", Settings::default(), &subjects).await;
//! # }
//! ```

use cache_core::{Bytes, Cache, CacheBackend, Expiry};
use futures::future::BoxFuture;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Keys cycled through: `key(i % KEYS)`.
pub const KEYS: usize = 1_000;

/// The value size of every SET, in bytes.
pub const VALUE_LEN: usize = 100;

/// What a call does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Read a key that is there.
    Get,
    /// Write a [`VALUE_LEN`]-byte value.
    Set,
}

/// The key of call `i` for the backend subjects (`key:N`).
pub fn key(i: usize) -> String {
    format!("key:{}", i % KEYS)
}

/// The key of call `i` for a raw subject (`raw:N`), apart from the backend's.
pub fn raw_key(i: usize) -> String {
    format!("raw:{}", i % KEYS)
}

/// The value every SET writes.
pub fn value() -> Bytes {
    Bytes::from(vec![b'x'; VALUE_LEN])
}

/// How much to measure.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// Calls timed one by one at one task, per round.
    pub lat_ops: usize,
    /// Concurrent tasks for throughput.
    pub tput_tasks: usize,
    /// Calls per throughput run, spread over the tasks.
    pub tput_ops: usize,
    /// Interleaved rounds.
    pub rounds: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            lat_ops: 2_000,
            tput_tasks: 64,
            tput_ops: 20_000,
            rounds: 5,
        }
    }
}

type RunFn = Arc<dyn Fn(Op, usize) -> BoxFuture<'static, ()> + Send + Sync>;

/// One thing measured: a label and how it runs call number `i` of an [`Op`].
#[derive(Clone)]
pub struct Subject {
    label: String,
    run: RunFn,
    ranked: bool,
}

impl Subject {
    /// A subject from a function running one call (it panics on error).
    pub fn new<F, Fut>(label: impl Into<String>, run: F) -> Self
    where
        F: Fn(Op, usize) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        Subject {
            label: label.into(),
            run: Arc::new(move |op, i| Box::pin(run(op, i))),
            ranked: true,
        }
    }

    /// A backend through the object-safe trait: `get`/`set` of [`key`] and [`value`].
    pub fn backend(label: impl Into<String>, backend: Arc<dyn CacheBackend>) -> Self {
        let keys: Arc<Vec<String>> = Arc::new((0..KEYS).map(key).collect());
        let v = value();
        Subject::new(label, move |op, i| {
            let (b, keys, v) = (backend.clone(), keys.clone(), v.clone());
            async move {
                let k = &keys[i % KEYS];
                match op {
                    Op::Get => drop(b.get(k).await.unwrap()),
                    Op::Set => b.set(k, v, Expiry::Never).await.unwrap(),
                }
            }
        })
    }

    /// The typed `Cache` with a `String` as long as [`value`] once encoded, on keys
    /// of its own (`typed:N`: the trait subjects write raw bytes).
    pub fn typed(label: impl Into<String>, cache: Cache) -> Self {
        let keys: Arc<Vec<String>> = Arc::new((0..KEYS).map(|i| format!("typed:{i}")).collect());
        let text: Arc<str> = "x".repeat(VALUE_LEN - 2).into();
        Subject::new(label, move |op, i| {
            let (c, keys, text) = (cache.clone(), keys.clone(), text.clone());
            async move {
                let k = &keys[i % KEYS];
                match op {
                    Op::Get => drop(c.get::<String>(k).await.unwrap()),
                    Op::Set => c.set(k, &*text, Expiry::Never).await.unwrap(),
                }
            }
        })
    }

    /// Printed without ratios: an alternative shown for scale, not a target.
    pub fn unranked(mut self) -> Self {
        self.ranked = false;
        self
    }

    async fn call(&self, op: Op, i: usize) {
        (self.run)(op, i).await
    }
}

/// (p50, p99) in microseconds at one task.
async fn latency(s: &Subject, op: Op, n: usize) -> (f64, f64) {
    let mut lat = Vec::with_capacity(n);
    for i in 0..n {
        let t = Instant::now();
        s.call(op, i).await;
        lat.push(t.elapsed());
    }
    lat.sort();
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    (us(lat[n / 2]), us(lat[n * 99 / 100]))
}

/// Calls per second from `tasks` concurrent tasks.
async fn throughput(s: &Subject, op: Op, tasks: usize, ops: usize) -> f64 {
    let per = ops / tasks;
    let start = Instant::now();
    let handles: Vec<_> = (0..tasks)
        .map(|t| {
            let s = s.clone();
            tokio::spawn(async move {
                for i in 0..per {
                    s.call(op, t * 7919 + i).await;
                }
            })
        })
        .collect();
    for h in handles {
        h.await.expect("a benchmark task panicked");
    }
    (per * tasks) as f64 / start.elapsed().as_secs_f64()
}

/// The median (upper median for an even count).
pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Fill the keys (a SET of each), warm every subject up, then measure GET and SET
/// for each subject over interleaved rounds and print a table; the first subject is
/// the reference of the ratios. Targets: p50 ≤ 1.05× and throughput ≥ 0.95× the
/// reference.
pub async fn compare(title: &str, settings: Settings, subjects: &[Subject]) {
    compare_ops(title, settings, subjects, &[Op::Get, Op::Set]).await
}

/// [`compare`] for the given operations only.
pub async fn compare_ops(title: &str, settings: Settings, subjects: &[Subject], ops: &[Op]) {
    let Settings {
        lat_ops,
        tput_tasks,
        tput_ops,
        rounds,
    } = settings;
    for s in subjects {
        for i in 0..KEYS {
            s.call(Op::Set, i).await;
        }
        // Opens every pooled connection before anything is timed.
        throughput(s, Op::Get, tput_tasks, tput_ops / 4).await;
    }
    println!("{title}: {VALUE_LEN}-byte values, medians of {rounds} interleaved rounds");
    let n = subjects.len();
    for &op in ops {
        let mut p50 = vec![vec![]; n];
        let mut p99 = vec![vec![]; n];
        let mut tput = vec![vec![]; n];
        for round in 0..rounds {
            for j in 0..n {
                let i = (round + j) % n;
                let (a, b) = latency(&subjects[i], op, lat_ops).await;
                p50[i].push(a);
                p99[i].push(b);
                tput[i].push(throughput(&subjects[i], op, tput_tasks, tput_ops).await);
            }
        }
        println!("{}", if op == Op::Get { "GET" } else { "SET" });
        for (i, s) in subjects.iter().enumerate() {
            let ratio = if i == 0 || !s.ranked {
                String::new()
            } else {
                let lat = median((0..rounds).map(|r| p50[i][r] / p50[0][r]).collect());
                let tp = median((0..rounds).map(|r| tput[i][r] / tput[0][r]).collect());
                format!(
                    "  p50 {lat:.3}x (target <= 1.05x), throughput {tp:.3}x (target >= 0.95x) of the first"
                )
            };
            println!(
                "  {:<32} p50 {:>6.1} us  p99 {:>6.1} us  {tput_tasks} tasks {:>8.0} ops/s{ratio}",
                s.label,
                median(p50[i].clone()),
                median(p99[i].clone()),
                median(tput[i].clone())
            );
        }
    }
}
