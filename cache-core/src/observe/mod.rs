//! What a [`Cache`](crate::Cache) tells about itself: a `tracing` span per call, the
//! `metrics` facade's counters and histograms, and [`CacheStats`] for users without a
//! recorder.
//!
//! - **Spans** (level DEBUG, name `cache`): `op`, `backend`, `namespace`, `hit` on
//!   reads, `coalesced` on a get-or-compute that took another caller's compute,
//!   `error` on failures; the key only with
//!   [`CacheBuilder::trace_keys`](crate::CacheBuilder::trace_keys). Never a value.
//!   Seeing them needs a subscriber that shows DEBUG spans of the crate (with
//!   `tracing_subscriber::fmt`, `.with_span_events(FmtSpan::CLOSE)` prints each
//!   call's fields when it ends).
//! - **Metrics** (labels `backend`, `namespace`): counters `cache_hits_total`,
//!   `cache_misses_total`, `cache_coalesced_total`, `cache_stale_served_total`,
//!   `cache_computes_total`, `cache_compute_errors_total`, `cache_errors_total{kind}`;
//!   histograms `cache_compute_seconds` and `cache_backend_seconds{op}`.
//! - **Stats**: [`Cache::stats`](crate::Cache::stats), counted in per-thread stripes
//!   (one per thread, up to 32 threads, counted without a locked instruction; threads
//!   beyond share one more stripe); serde-serialisable for a JSON endpoint, and
//!   [`CacheStats::to_prometheus`] / [`prometheus_text`] for a Prometheus one.
//!
//! **Outcomes.** Each read counts one of: a *hit* (a fresh value found), a *miss* (none
//! found, and this call computed, or served a stale value, or failed), or, for
//! get-or-compute only, *coalesced* (none found, and the call took the outcome of
//! another caller's compute: it followed this process's single flight, or waited on
//! another process's lock and found its value). Fifty concurrent calls on one cold key
//! count 1 miss, 1 compute and 49 coalesced. The in-process read fast path (memory) is
//! counted but not timed: its latency is the read itself.
//!
//! **The `namespace` label** is the backend's namespace, or, for a get-or-compute call
//! with [`ComputeCall::namespace`](crate::ComputeCall::namespace), that call's
//! namespace (its span says the same), so `users` lookups and HTTP responses
//! ([`Cache::record_read`](crate::Cache::record_read)) are told apart. Each distinct
//! namespace is a set of series in the recorder (about 25: every counter, error kind and
//! latency histogram) that lives as long as the process: choose namespaces in code,
//! from a small fixed set, **never from request data** (a user id, a tenant, a path).
//! A cache labels at most 64 per-call namespaces apart; calls in further ones share the
//! label `_other`, and a warning is logged once.
//!
//! **Recorder installation.** Handles are registered when the cache is built (and a
//! per-call namespace's at its first call), with the recorder in force then. If there
//! was none yet (the no-op recorder), each thread looks again at its first count and
//! every 64th after, until a recorder is installed; the handles are then registered
//! with it, and count from there on. So a recorder installed after the cache was built
//! works, missing at most 64 counts per thread (and cache) after its installation; what
//! was counted before it is in [`Cache::stats`](crate::Cache::stats) only (which counts
//! everything). A cache built inside [`metrics::with_local_recorder`] keeps that
//! recorder's handles.

use crate::error::ErrorKind;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::Span;

mod layered;
mod prometheus;
mod series;
mod stats;
pub use layered::ReadOutcome;
pub use prometheus::prometheus_text;
use series::{Registry, Series};
pub use stats::CacheStats;
use stats::{add, stripe_index, tick, Stripe, STRIPES};

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

/// One cache's spans, metrics and stats (see the module docs).
pub(crate) struct Observer {
    // What every call reads first, together: one cache line.
    on: bool,
    trace_keys: bool,
    stripes: Box<[Stripe]>,
    metrics: Option<Box<Registry>>,
}

/// The labels of one get-or-compute call's metrics and span: the cache's own, or
/// those of the call's own namespace ([`ComputeCall::namespace`](crate::ComputeCall::namespace)).
#[derive(Clone, Default)]
pub(crate) struct Scope(Option<Arc<Series>>);

/// An [`Observer`] counting under one [`Scope`]'s labels.
#[derive(Clone, Copy)]
pub(crate) struct Scoped<'a> {
    obs: &'a Observer,
    series: Option<&'a Series>,
}

impl Observer {
    pub(crate) fn new(on: bool, trace_keys: bool, backend: &'static str, namespace: &str) -> Self {
        Observer {
            on,
            trace_keys,
            stripes: (0..if on { STRIPES } else { 0 })
                .map(|_| Stripe::default())
                .collect(),
            metrics: on.then(|| Box::new(Registry::new(backend, namespace))),
        }
    }

    /// Counting under the cache's own labels.
    #[inline]
    pub(crate) fn main(&self) -> Scoped<'_> {
        Scoped {
            obs: self,
            series: self.metrics.as_deref().map(|r| &r.main),
        }
    }

    /// The scope of a call in `namespace` (`None`: the cache's own).
    pub(crate) fn scope(&self, namespace: Option<&str>) -> Scope {
        match (namespace, &self.metrics) {
            (Some(ns), Some(r)) => Scope(Some(r.scoped(ns))),
            _ => Scope(None),
        }
    }

    /// Counting under `scope`'s labels.
    #[inline]
    pub(crate) fn scoped<'a>(&'a self, scope: &'a Scope) -> Scoped<'a> {
        match &scope.0 {
            Some(series) => Scoped {
                obs: self,
                series: Some(series),
            },
            None => self.main(),
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

    /// `hits` and `misses` reads, under the cache's own labels.
    #[inline]
    pub(crate) fn reads(&self, hits: u64, misses: u64) {
        self.main().reads(hits, misses)
    }

    /// A failed cache call.
    pub(crate) fn error(&self, kind: ErrorKind) {
        self.main().error(kind)
    }

    /// The clock, when this cache times its calls.
    #[inline]
    pub(crate) fn start(&self) -> Option<Instant> {
        self.on.then(Instant::now)
    }

    /// A backend call of `op` that began at `started`.
    #[inline]
    pub(crate) fn latency(&self, op: Op, started: Option<Instant>) {
        self.main().latency(op, started)
    }

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

    /// The span of one call (disabled, and free, without a subscriber that wants it).
    #[inline]
    pub(crate) fn span(&self, op: Op, key: &str) -> Span {
        self.main().span(op, key)
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
            coalesced: sum(&|s| &s.coalesced),
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

impl Scoped<'_> {
    /// The stripe and the handles to count with; `None` when observing is off.
    #[inline]
    fn counters(&self) -> Option<(usize, &Stripe, &series::Handles)> {
        let (i, s) = self.obs.stripe()?;
        let look = || tick(i, &s.ticks) % series::LOOK_EVERY == 1;
        Some((i, s, self.series?.handles(look)))
    }

    /// `hits` and `misses` reads.
    #[inline]
    pub(crate) fn reads(&self, hits: u64, misses: u64) {
        let Some((i, s, h)) = self.counters() else {
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

    /// A read that found no fresh value, settled: a miss, or `coalesced` when the
    /// caller took the outcome of another caller's compute instead of computing
    /// (recorded on the current span too).
    pub(crate) fn missed(&self, coalesced: bool) {
        let span = Span::current();
        span.record("hit", false);
        if coalesced {
            span.record("coalesced", true);
            self.coalesced();
        } else {
            self.reads(0, 1);
        }
    }

    /// A call that took another caller's compute (see [`CacheStats::coalesced`]).
    pub(crate) fn coalesced(&self) {
        if let Some((i, s, h)) = self.counters() {
            add(i, &s.coalesced, 1);
            h.coalesced.increment(1);
        }
    }

    /// A stale or fail-safe value served.
    pub(crate) fn stale_served(&self) {
        if let Some((i, s, h)) = self.counters() {
            add(i, &s.stale, 1);
            h.stale.increment(1);
        }
    }

    /// A failed cache call.
    pub(crate) fn error(&self, kind: ErrorKind) {
        if let Some((i, s, h)) = self.counters() {
            let k = kind_index(kind);
            add(i, &s.errors[k], 1);
            h.errors[k].increment(1);
        }
    }

    /// A compute that ran for `took`, and whether it failed.
    pub(crate) fn computed(&self, took: Duration, failed: bool) {
        if let Some((i, s, h)) = self.counters() {
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
        self.obs.start()
    }

    /// A backend call of `op` that began at `started`.
    #[inline]
    pub(crate) fn latency(&self, op: Op, started: Option<Instant>) {
        if let (Some(t), Some(series)) = (started, self.series) {
            if let Some(i) = Op::TIMED.iter().position(|o| *o == op) {
                series.handles(|| false).backend_seconds[i].record(t.elapsed().as_secs_f64());
            }
        }
    }

    /// A key as logs may show it (see [`Observer::log_key`]).
    pub(crate) fn log_key(&self, key: &str) -> String {
        self.obs.log_key(key)
    }

    /// The span of one call (disabled, and free, without a subscriber that wants it).
    #[inline]
    pub(crate) fn span(&self, op: Op, key: &str) -> Span {
        let Some(series) = self.series.filter(|_| self.obs.on) else {
            return Span::none();
        };
        let span = tracing::debug_span!(
            "cache",
            op = op.as_str(),
            backend = series.backend,
            namespace = %series.namespace,
            key = tracing::field::Empty,
            hit = tracing::field::Empty,
            coalesced = tracing::field::Empty,
            error = tracing::field::Empty,
        );
        if self.obs.trace_keys && !span.is_disabled() {
            span.record("key", key);
        }
        span
    }
}
