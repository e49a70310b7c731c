//! Reading a value for get-or-compute and placing it: fresh, stale, kept for
//! fail-safe, or a miss.

use super::call::ComputeCall;
use crate::codec::Codec;
use crate::envelope::{self, Age, Opened};
use crate::observe::Op;
use serde::de::DeserializeOwned;

/// What a read found.
pub(super) enum Found<T> {
    /// Fresh: return it (its header, if it has one).
    Fresh(T, Option<envelope::Meta>),
    /// Within its stale-while-revalidate window (or chosen for early refresh):
    /// servable, to be refreshed.
    Stale(T, envelope::Meta),
    /// Past that, kept for fail-safe: returned only if the compute fails.
    Kept(T, envelope::Meta),
    Miss,
}

impl<C: Codec> ComputeCall<'_, C> {
    /// A fresh value only (what lock holders wait for), with its header if it has
    /// one.
    pub(super) async fn read<T: DeserializeOwned>(
        &self,
        key: &str,
    ) -> Option<(T, Option<envelope::Meta>)> {
        match self.lookup(key, false).await {
            Found::Fresh(v, meta) => Some((v, meta)),
            _ => None,
        }
    }

    /// Read and place the value: fresh, stale, kept for fail-safe, or a miss, by
    /// [`Meta::age`](envelope::Meta::age) on the cache's clock (plain reads apply the
    /// same classification to values kept past their expiry only). A value with no header
    /// (written by [`Cache::set`](crate::Cache::set), or before headers existed) is
    /// fresh until the store expires it; a header of another version, or a value
    /// that no longer decodes, is a miss. `early`: a fresh value may be picked for
    /// early refresh.
    pub(super) async fn lookup<T: DeserializeOwned>(&self, key: &str, early: bool) -> Found<T> {
        let read = self.backend().get_valid(key);
        match self.guarded(Op::Get, key, read).await {
            Some(Some(bytes)) => self.place(key, &bytes, early),
            _ => Found::Miss,
        }
    }

    /// Place the stored bytes of `key`: see [`lookup`](Self::lookup).
    pub(super) fn place<T: DeserializeOwned>(
        &self,
        key: &str,
        bytes: &[u8],
        early: bool,
    ) -> Found<T> {
        self.place_at(key, bytes, early, || self.cache.inner.clock.now_ms())
    }

    /// [`place`](Self::place) with the time read from `now` (only if the value has a
    /// header): a batch reads the clock once for all its values.
    pub(super) fn place_at<T: DeserializeOwned>(
        &self,
        key: &str,
        bytes: &[u8],
        early: bool,
        now: impl FnOnce() -> u64,
    ) -> Found<T> {
        let inner = &self.cache.inner;
        let (meta, payload) = match envelope::open(bytes) {
            Opened::Enveloped(meta, payload) => (Some(meta), payload),
            Opened::Bare(payload) => (None, payload),
            Opened::Unknown => {
                tracing::debug!(
                    key = %inner.observe.log_key(key),
                    "cached value has a header of another version; treating it as a miss"
                );
                return Found::Miss;
            }
        };
        let v = match inner.codec.decode(payload) {
            Ok(v) => v,
            Err(e) => {
                tracing::debug!(key = %inner.observe.log_key(key), error = %e, "cached value no longer decodes; treating it as a miss");
                return Found::Miss;
            }
        };
        let Some(meta) = meta else {
            return Found::Fresh(v, None);
        };
        let now = now();
        match meta.age(now) {
            Age::Fresh if early && refresh_early(now, &meta, self.options().early_refresh) => {
                Found::Stale(v, meta)
            }
            Age::Fresh => Found::Fresh(v, Some(meta)),
            Age::Stale => Found::Stale(v, meta),
            Age::Kept => Found::Kept(v, meta),
            Age::Gone => Found::Miss,
        }
    }
}

/// XFetch: refresh a fresh value early with a probability that rises as its expiry
/// nears, scaled by its compute's duration and `beta`.
pub(super) fn refresh_early(now: u64, meta: &envelope::Meta, beta: f64) -> bool {
    if beta <= 0.0 || meta.fresh_until == envelope::NEVER || meta.compute_ms == 0 {
        return false;
    }
    let u = 1.0 - fastrand::f64(); // (0, 1]
    now as f64 - f64::from(meta.compute_ms) * beta * u.ln() >= meta.fresh_until as f64
}
