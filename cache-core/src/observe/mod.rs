//! What a [`Cache`](crate::Cache) tells about itself: a `tracing` span per call, the
//! `metrics` facade's counters and histograms, and [`CacheStats`] for users without a
//! recorder.
//!
//! - **Spans** (level DEBUG, name `cache`): `op`, `backend`, `namespace`, `hit` on
//!   reads, `error` on failures; the key only with
//!   [`CacheBuilder::trace_keys`](crate::CacheBuilder::trace_keys). Never a value.
//! - **Metrics** (labels `backend`, `namespace`): counters `cache_hits_total`,
//!   `cache_misses_total`, `cache_stale_served_total`, `cache_computes_total`,
//!   `cache_compute_errors_total`, `cache_errors_total{kind}`; histograms
//!   `cache_compute_seconds` and `cache_backend_seconds{op}`. Handles are registered
//!   when the cache is built, so install the recorder before building caches.
//! - **Stats**: [`Cache::stats`](crate::Cache::stats), counted in per-thread stripes
//!   (one per thread, up to 32 threads, counted without a locked instruction; threads
//!   beyond share one more stripe).
//!
//! A miss is a read that found no fresh value (absent, stale or undecodable): the value
//! had to be computed again, here or by another caller. The in-process read fast path
//! (memory) is counted but not timed: its latency is the read itself.

use crate::error::ErrorKind;
use metrics::{Counter, Histogram};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};
use tracing::Span;

mod stats;
pub use stats::CacheStats;
use stats::{add, stripe_index, Stripe, STRIPES};

/// Run `fut` inside `span`, without the instrumenting wrapper when the span is off.
pub(crate) async fn in_span<F: std::future::Future>(span: Span, fut: F) -> F::Output {
    if span.is_disabled() {
        fut.await
    } else {
        tracing::Instrument::instrument(fut, span).await
    }
}

/// The operations a span or a latency sample names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Get,
    GetMany,
    Set,
    SetMany,
    Delete,
    DeleteMany,
    Has,
    Clear,
    SetIfAbsent,
    AcquireLock,
    ReleaseLock,
    GetOrCompute,
}

impl Op {
    /// The backend calls, each with its latency histogram.
    const TIMED: [Op; 11] = [
        Op::Get,
        Op::GetMany,
        Op::Set,
        Op::SetMany,
        Op::Delete,
        Op::DeleteMany,
        Op::Has,
        Op::Clear,
        Op::SetIfAbsent,
        Op::AcquireLock,
        Op::ReleaseLock,
    ];

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Op::Get => "get",
            Op::GetMany => "get_many",
            Op::Set => "set",
            Op::SetMany => "set_many",
            Op::Delete => "delete",
            Op::DeleteMany => "delete_many",
            Op::Has => "has",
            Op::Clear => "clear",
            Op::SetIfAbsent => "set_if_absent",
            Op::AcquireLock => "acquire_lock",
            Op::ReleaseLock => "release_lock",
            Op::GetOrCompute => "get_or_compute",
        }
    }
}

const KINDS: [ErrorKind; 8] = [
    ErrorKind::Config,
    ErrorKind::Unavailable,
    ErrorKind::Timeout,
    ErrorKind::Serialization,
    ErrorKind::InvalidInput,
    ErrorKind::Unsupported,
    ErrorKind::Closed,
    ErrorKind::Backend,
];

fn kind_index(kind: ErrorKind) -> usize {
    KINDS
        .iter()
        .position(|k| *k == kind)
        .unwrap_or(KINDS.len() - 1)
}

/// Label value of an error kind in `cache_errors_total{kind}` and [`CacheStats`].
fn kind_label(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::Config => "config",
        ErrorKind::Unavailable => "unavailable",
        ErrorKind::Timeout => "timeout",
        ErrorKind::Serialization => "serialization",
        ErrorKind::InvalidInput => "invalid_input",
        ErrorKind::Unsupported => "unsupported",
        ErrorKind::Closed => "closed",
        _ => "backend",
    }
}

struct Handles {
    hits: Counter,
    misses: Counter,
    stale: Counter,
    computes: Counter,
    compute_errors: Counter,
    errors: [Counter; KINDS.len()],
    compute_seconds: Histogram,
    backend_seconds: [Histogram; Op::TIMED.len()],
}

impl Handles {
    fn register(backend: &'static str, namespace: &str) -> Self {
        let labels = |extra: Option<(&'static str, &'static str)>| {
            let mut l = vec![
                metrics::Label::new("backend", backend),
                metrics::Label::new("namespace", namespace.to_owned()),
            ];
            l.extend(extra.map(|(k, v)| metrics::Label::new(k, v)));
            l
        };
        let counter = |name: &'static str| metrics::counter!(name, labels(None));
        Handles {
            hits: counter("cache_hits_total"),
            misses: counter("cache_misses_total"),
            stale: counter("cache_stale_served_total"),
            computes: counter("cache_computes_total"),
            compute_errors: counter("cache_compute_errors_total"),
            errors: KINDS.map(|k| {
                metrics::counter!("cache_errors_total", labels(Some(("kind", kind_label(k)))))
            }),
            compute_seconds: metrics::histogram!("cache_compute_seconds", labels(None)),
            backend_seconds: Op::TIMED.map(|op| {
                metrics::histogram!("cache_backend_seconds", labels(Some(("op", op.as_str()))))
            }),
        }
    }
}

/// One cache's spans, metrics and stats (see the module docs).
pub(crate) struct Observer {
    // What every call reads first, together: one cache line.
    on: bool,
    trace_keys: bool,
    stripes: Box<[Stripe]>,
    handles: Option<Box<Handles>>,
    backend: &'static str,
    namespace: String,
}

impl Observer {
    pub(crate) fn new(on: bool, trace_keys: bool, backend: &'static str, namespace: &str) -> Self {
        Observer {
            on,
            trace_keys,
            backend,
            namespace: namespace.to_owned(),
            stripes: (0..if on { STRIPES } else { 0 })
                .map(|_| Stripe::default())
                .collect(),
            handles: on.then(|| Box::new(Handles::register(backend, namespace))),
        }
    }

    #[inline]
    fn stripe(&self) -> Option<(usize, &Stripe)> {
        if self.on {
            let i = stripe_index();
            self.stripes.get(i).map(|s| (i, s))
        } else {
            None
        }
    }

    /// `hits` and `misses` reads.
    #[inline]
    pub(crate) fn reads(&self, hits: u64, misses: u64) {
        let (Some((i, s)), Some(h)) = (self.stripe(), &self.handles) else {
            return;
        };
        if hits > 0 {
            add(i, &s.hits, hits);
            h.hits.increment(hits);
        }
        if misses > 0 {
            add(i, &s.misses, misses);
            h.misses.increment(misses);
        }
    }

    /// A stale or fail-safe value served.
    pub(crate) fn stale_served(&self) {
        if let (Some((i, s)), Some(h)) = (self.stripe(), &self.handles) {
            add(i, &s.stale, 1);
            h.stale.increment(1);
        }
    }

    /// A failed cache call.
    pub(crate) fn error(&self, kind: ErrorKind) {
        if let (Some((i, s)), Some(h)) = (self.stripe(), &self.handles) {
            let k = kind_index(kind);
            add(i, &s.errors[k], 1);
            h.errors[k].increment(1);
        }
    }

    /// A compute that ran for `took`, and whether it failed.
    pub(crate) fn computed(&self, took: Duration, failed: bool) {
        if let (Some((i, s)), Some(h)) = (self.stripe(), &self.handles) {
            add(i, &s.computes, 1);
            add(
                i,
                &s.compute_ns,
                took.as_nanos().min(u64::MAX as u128) as u64,
            );
            h.computes.increment(1);
            if failed {
                add(i, &s.compute_errors, 1);
                h.compute_errors.increment(1);
            }
            h.compute_seconds.record(took.as_secs_f64());
        }
    }

    /// The clock, when this cache times its calls.
    #[inline]
    pub(crate) fn start(&self) -> Option<Instant> {
        self.on.then(Instant::now)
    }

    /// A backend call of `op` that began at `started`.
    #[inline]
    pub(crate) fn latency(&self, op: Op, started: Option<Instant>) {
        if let (Some(t), Some(h)) = (started, &self.handles) {
            if let Some(i) = Op::TIMED.iter().position(|o| *o == op) {
                h.backend_seconds[i].record(t.elapsed().as_secs_f64());
            }
        }
    }

    /// The span of one call (disabled, and free, without a subscriber that wants it).
    #[inline]
    /// A key as logs may show it: the key with
    /// [`trace_keys`](crate::CacheBuilder::trace_keys), else a short digest salted
    /// with a random value of this process, that correlates the process's log lines
    /// without saying what the key holds (unsalted, a short key could be guessed back
    /// from its digest).
    pub(crate) fn log_key(&self, key: &str) -> String {
        static SALT: std::sync::OnceLock<[u8; 16]> = std::sync::OnceLock::new();
        if self.trace_keys {
            return key.to_owned();
        }
        let salt = SALT.get_or_init(|| fastrand::u128(..).to_le_bytes());
        let mut salted = Vec::with_capacity(16 + key.len());
        salted.extend_from_slice(salt);
        salted.extend_from_slice(key.as_bytes());
        let digest = crate::raw::sha256_hex(&salted);
        format!("#{}", &digest[..12])
    }

    pub(crate) fn span(&self, op: Op, key: &str) -> Span {
        if !self.on {
            return Span::none();
        }
        let span = tracing::debug_span!(
            "cache",
            op = op.as_str(),
            backend = self.backend,
            namespace = %self.namespace,
            key = tracing::field::Empty,
            hit = tracing::field::Empty,
            error = tracing::field::Empty,
        );
        if self.trace_keys && !span.is_disabled() {
            span.record("key", key);
        }
        span
    }

    /// [`outcome`](Self::outcome) of a call that made no span yet: the span is made
    /// only if a subscriber may want DEBUG spans (one atomic load says), so an
    /// in-process read with tracing off pays for the stats alone.
    #[inline]
    pub(crate) fn outcome_now<T>(
        &self,
        op: Op,
        key: &str,
        result: &crate::Result<T>,
        reads: impl FnOnce(&T) -> (u64, u64),
    ) {
        if !self.on {
            return;
        }
        if tracing::level_enabled!(tracing::Level::DEBUG) {
            self.outcome(&self.span(op, key), result, reads);
        } else {
            self.count(None, result, reads);
        }
    }

    /// Count a call's result on its span and in the stats: reads as hits and misses,
    /// failures by kind.
    #[inline]
    pub(crate) fn outcome<T>(
        &self,
        span: &Span,
        result: &crate::Result<T>,
        reads: impl FnOnce(&T) -> (u64, u64),
    ) {
        if self.on {
            self.count(Some(span).filter(|s| !s.is_disabled()), result, reads);
        }
    }

    /// The counting of [`outcome`](Self::outcome), recorded on `span` if there is one.
    #[inline]
    fn count<T>(
        &self,
        span: Option<&Span>,
        result: &crate::Result<T>,
        reads: impl FnOnce(&T) -> (u64, u64),
    ) {
        match result {
            Ok(v) => {
                let (hits, misses) = reads(v);
                self.reads(hits, misses);
                if let Some(span) = span.filter(|_| hits + misses > 0) {
                    span.record("hit", misses == 0);
                }
            }
            Err(e) => {
                self.error(e.kind());
                if let Some(span) = span {
                    span.record("error", kind_label(e.kind()));
                }
            }
        }
    }

    /// The counters summed over the stripes.
    pub(crate) fn stats(&self) -> CacheStats {
        let sum = |f: &dyn Fn(&Stripe) -> &AtomicU64| -> u64 {
            self.stripes.iter().map(|s| f(s).load(Relaxed)).sum()
        };
        CacheStats {
            hits: sum(&|s| &s.hits),
            misses: sum(&|s| &s.misses),
            stale_served: sum(&|s| &s.stale),
            computes: sum(&|s| &s.computes),
            compute_errors: sum(&|s| &s.compute_errors),
            compute_time: Duration::from_nanos(sum(&|s| &s.compute_ns)),
            errors: KINDS
                .iter()
                .enumerate()
                .map(|(i, k)| (kind_label(*k), sum(&|s| &s.errors[i])))
                .filter(|(_, n)| *n > 0)
                .collect(),
        }
    }
}
