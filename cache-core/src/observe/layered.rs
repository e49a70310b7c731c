//! Counting for a layer that answers its own requests from a [`Cache`] (an HTTP
//! cache): what its client saw, once per request, not each read it made.

use super::Op;
use crate::cache::Cache;
use crate::codec::Codec;
use crate::error::Result;
use serde::de::DeserializeOwned;

/// How a layer over a [`Cache`] answered one request, for [`Cache::record_read`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReadOutcome {
    /// Served fresh from the cache: a hit.
    Hit,
    /// Not served from the cache (fetched, or revalidated with its origin): a miss.
    Miss,
    /// Served what a concurrent request's fetch got, after waiting for it:
    /// [`coalesced`](crate::CacheStats::coalesced).
    Coalesced,
    /// Served past its freshness: a miss, and a stale value served.
    Stale,
}

impl<C: Codec> Cache<C> {
    /// [`get`](Self::get), counted as neither a hit nor a miss (its span has no
    /// `hit`; errors and latency are counted as usual): for a layer that reads
    /// several entries, or entries past their freshness, to answer one request, and
    /// counts that request's outcome with [`record_read`](Self::record_read).
    pub async fn get_uncounted<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
        let backend = &self.inner.backend;
        if let Some(answer) = backend.decode_now(key, |b| self.decode_entry(b)) {
            self.inner
                .observe
                .outcome_now(Op::Get, key, &answer, |_| (0, 0));
            return answer;
        }
        let read = async {
            match backend.get_awaited_valid(key).await? {
                Some(bytes) => self.decode_entry(&bytes),
                None => Ok(None),
            }
        };
        self.call(Op::Get, key, read, |_| (0, 0)).await
    }

    /// Count one request answered by a layer over this cache (reading with
    /// [`get_uncounted`](Self::get_uncounted)), in [`stats`](Self::stats) and in the
    /// metrics under the `namespace` label, as a per-call namespace of get-or-compute
    /// is (a name chosen by code, never by request data: see [the module
    /// docs](crate::observe) on label cardinality). The layer traces the request in a
    /// span of its own.
    ///
    /// ```
    /// # async fn demo(cache: cache_core::Cache) {
    /// use cache_core::observe::ReadOutcome;
    /// cache.record_read("http", ReadOutcome::Stale);
    /// let s = cache.stats();
    /// assert_eq!((s.misses, s.stale_served), (1, 1));
    /// # }
    /// ```
    pub fn record_read(&self, namespace: &str, outcome: ReadOutcome) {
        let obs = &self.inner.observe;
        let scope = obs.scope(Some(namespace));
        let s = obs.scoped(&scope);
        match outcome {
            ReadOutcome::Hit => s.reads(1, 0),
            ReadOutcome::Miss => s.reads(0, 1),
            ReadOutcome::Coalesced => s.coalesced(),
            ReadOutcome::Stale => {
                s.reads(0, 1);
                s.stale_served();
            }
        }
    }
}
