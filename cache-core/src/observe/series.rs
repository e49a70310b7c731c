//! The `metrics` facade's handles of one cache, one set per `namespace` label: the
//! cache's own (its backend's namespace) and each per-call namespace's, registered
//! once with the recorder in force then, and once more if a recorder is installed
//! after they were registered.

use super::{kind_label, Op, KINDS};
use metrics::{Counter, Histogram};
use parking_lot::RwLock;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

/// Per-call namespaces given labels of their own, per cache; calls in further
/// namespaces share the label [`OTHER`].
pub(crate) const MAX_NAMESPACES: usize = 64;

/// The `namespace` label of the per-call namespaces past [`MAX_NAMESPACES`].
pub(crate) const OTHER: &str = "_other";

/// While no recorder is installed, a thread looks for one at its first count and
/// every this many counts after (one thread-local and one atomic load each time):
/// cheaper than on every count, and a recorder installed late misses at most this
/// many counts per thread and cache.
pub(crate) const LOOK_EVERY: u64 = 64;

pub(super) struct Handles {
    pub(super) hits: Counter,
    pub(super) misses: Counter,
    pub(super) coalesced: Counter,
    pub(super) stale: Counter,
    pub(super) computes: Counter,
    pub(super) compute_errors: Counter,
    pub(super) errors: [Counter; KINDS.len()],
    pub(super) compute_seconds: Histogram,
    pub(super) backend_seconds: [Histogram; Op::TIMED.len()],
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
            coalesced: counter("cache_coalesced_total"),
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

/// The recorder that [`metrics::with_recorder`] gives on this thread now: its
/// address, size and alignment (compared, never dereferenced). The no-op recorder
/// (none installed) is zero-sized.
#[derive(Clone, Copy, PartialEq, Eq)]
struct RecorderId {
    addr: usize,
    size: usize,
    align: usize,
}

impl RecorderId {
    fn current() -> Self {
        metrics::with_recorder(|r| RecorderId {
            addr: std::ptr::from_ref(r).cast::<()>() as usize,
            size: std::mem::size_of_val(r),
            align: std::mem::align_of_val(r),
        })
    }
}

/// One `namespace` label's handles.
pub(crate) struct Series {
    pub(super) namespace: Box<str>,
    pub(super) backend: &'static str,
    early: Handles,
    /// `early` came from a zero-sized recorder: the no-op one, when none was installed
    /// yet (or a zero-sized one of the application's). Every [`LOOK_EVERY`]th count of
    /// a thread looks again, until a recorder other than `seen` is in force: the
    /// handles are then registered with it, once (a global recorder can be installed
    /// only once).
    provisional: bool,
    seen: RecorderId,
    late: OnceLock<Handles>,
}

impl Series {
    fn new(backend: &'static str, namespace: &str) -> Self {
        let seen = RecorderId::current();
        Series {
            namespace: namespace.into(),
            backend,
            early: Handles::register(backend, namespace),
            provisional: seen.size == 0,
            seen,
            late: OnceLock::new(),
        }
    }

    /// The handles to count with; `look` says whether this count is one that looks
    /// for a recorder installed since (asked only while there is none).
    #[inline]
    pub(super) fn handles(&self, look: impl FnOnce() -> bool) -> &Handles {
        if !self.provisional {
            return &self.early;
        }
        match self.late.get() {
            Some(h) => h,
            None if look() => self.look_again(),
            None => &self.early,
        }
    }

    /// The handles, when those registered first came from a zero-sized recorder: the
    /// recorder in force now, if it is another.
    #[cold]
    #[inline(never)]
    fn look_again(&self) -> &Handles {
        if RecorderId::current() == self.seen {
            return &self.early;
        }
        self.late
            .get_or_init(|| Handles::register(self.backend, &self.namespace))
    }
}

/// A cache's series: its own, and those of the per-call namespaces seen so far.
pub(super) struct Registry {
    pub(super) main: Series,
    scoped: RwLock<HashMap<Box<str>, Arc<Series>>>,
    warned: AtomicBool,
}

impl Registry {
    pub(super) fn new(backend: &'static str, namespace: &str) -> Self {
        Registry {
            main: Series::new(backend, namespace),
            scoped: RwLock::default(),
            warned: AtomicBool::new(false),
        }
    }

    /// The series of a per-call namespace: registered at its first call, up to
    /// [`MAX_NAMESPACES`]; the namespaces past them share the label [`OTHER`].
    pub(super) fn scoped(&self, namespace: &str) -> Arc<Series> {
        {
            let map = self.scoped.read();
            if let Some(s) = map.get(namespace) {
                return s.clone();
            }
            if map.len() > MAX_NAMESPACES {
                if let Some(s) = map.get(OTHER) {
                    return s.clone();
                }
            }
        }
        let mut map = self.scoped.write();
        if let Some(s) = map.get(namespace) {
            return s.clone();
        }
        let label = if map.len() < MAX_NAMESPACES {
            namespace
        } else {
            if !self.warned.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    limit = MAX_NAMESPACES,
                    "more per-call namespaces than this cache labels apart; the further ones share the namespace label \"{OTHER}\" (namespaces should be chosen by code, not by request data)"
                );
            }
            OTHER
        };
        if let Some(s) = map.get(label) {
            return s.clone();
        }
        let series = Arc::new(Series::new(self.main.backend, label));
        map.insert(label.into(), series.clone());
        series
    }
}
