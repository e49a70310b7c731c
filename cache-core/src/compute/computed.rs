//! [`Computed`]: a compute's value with its own expiry, or a value not to store.

use crate::expiry::Expiry;

/// What a compute given to
/// [`get_or_compute_with`](crate::ComputeCall::get_or_compute_with) returns: its
/// value, and whether and for how long to store it (moka's per-entry `Expiry`,
/// FusionCache's adaptive caching).
///
/// ```
/// # async fn demo(cache: cache_core::Cache) {
/// use cache_core::Computed;
/// use std::time::Duration;
/// let rate: f64 = cache
///     .cached("rate:eur")
///     .get_or_compute_with(|| async {
///         let (rate, live) = (1.08, true); // from the origin
///         Ok::<_, std::io::Error>(if live {
///             // The origin says how long this holds.
///             Computed::store(rate).expiry(Duration::from_secs(30))
///         } else {
///             // A fallback answer: returned, never cached.
///             Computed::pass(rate)
///         })
///     })
///     .await
///     .unwrap();
/// # }
/// ```
#[derive(Debug, Clone, PartialEq)]
#[must_use]
pub struct Computed<T> {
    pub(crate) value: T,
    pub(crate) store: bool,
    pub(crate) expiry: Option<Expiry>,
}

impl<T> Computed<T> {
    /// Store `value`, with the call's expiry unless [`expiry`](Self::expiry) says
    /// otherwise.
    pub fn store(value: T) -> Self {
        Computed {
            value,
            store: true,
            expiry: None,
        }
    }

    /// Return `value` without storing it: the callers waiting on this compute in
    /// this process get it too (unless this process wrote, deleted or cleared the key
    /// meanwhile: then only those who asked before the compute began), later callers
    /// compute again. Nothing is written, so a write by another process meanwhile is
    /// not seen: the value reaches this flight's callers only.
    pub fn pass(value: T) -> Self {
        Computed {
            value,
            store: false,
            expiry: None,
        }
    }

    /// Store the value with `expiry` instead of the call's (a zero or past expiry
    /// removes the stored value, as a `set` with one does).
    pub fn expiry(mut self, expiry: impl Into<Expiry>) -> Self {
        self.expiry = Some(expiry.into());
        self
    }

    /// Whether the value is to be stored.
    pub fn is_stored(&self) -> bool {
        self.store
    }

    /// The value.
    pub fn into_value(self) -> T {
        self.value
    }
}
