//! Time: call bounds, the clock, TTL clamps and absolute expiries.

use crate::error::{Error, Result};
use crate::expiry::Ttl;

/// `call`, or a [`Timeout`](crate::ErrorKind::Timeout) error of `backend` once `limit`
/// has passed (the call is dropped). Backends bound each call with it.
pub async fn within<T>(
    backend: &'static str,
    limit: std::time::Duration,
    call: impl std::future::Future<Output = Result<T>>,
) -> Result<T> {
    match tokio::time::timeout(limit, call).await {
        Ok(r) => r,
        Err(_) => Err(Error::timeout(backend, limit)),
    }
}

/// Milliseconds since the Unix epoch, now (0 if the clock is before 1970).
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The longest TTL sent to any store, locks included (100 years): the checking
/// layer clamps every relative expiry and lock TTL to it, in one place, so a
/// `Duration::MAX` never overflows a store's counter (Redis `PX`, SQL intervals,
/// memcached's relative seconds). Absolute expiries are clamped by the stores that
/// keep them to [`MAX_EPOCH_MS`].
pub const MAX_TTL: std::time::Duration = std::time::Duration::from_secs(100 * 365 * 86_400);

/// `expiry` with a relative duration clamped to [`MAX_TTL`].
pub fn clamp_expiry(expiry: crate::Expiry) -> crate::Expiry {
    match expiry {
        crate::Expiry::After(d) if d > MAX_TTL => crate::Expiry::After(MAX_TTL),
        other => other,
    }
}

/// The last millisecond of the year 9999 (UTC): where stores with calendar
/// timestamps (BSON, Firestore) end; expiries past it are clamped to it.
pub const MAX_EPOCH_MS: u64 = 253_402_300_799_000;

/// When a value written now with `expiry` expires, in epoch milliseconds rounded up
/// and clamped to [`MAX_EPOCH_MS`]: `Ok(None)` for never, `Err(())` if it already has
/// (store nothing; remove the old value). For stores that keep an absolute expiry and
/// check it on every read.
///
/// ```
/// use cache_core::{raw, Expiry};
/// use std::time::Duration;
/// assert_eq!(raw::expires_at_ms(Expiry::Never), Ok(None));
/// assert_eq!(raw::expires_at_ms(Expiry::After(Duration::ZERO)), Err(()));
/// assert_eq!(raw::expires_at_ms(Expiry::After(Duration::MAX)), Ok(Some(raw::MAX_EPOCH_MS)));
/// ```
#[allow(clippy::result_unit_err)]
pub fn expires_at_ms(expiry: crate::Expiry) -> std::result::Result<Option<u64>, ()> {
    expires_at_ms_from(now_ms(), expiry)
}

/// [`expires_at_ms`] for a value written at `now` (epoch milliseconds, on a clock of
/// the caller's, e.g. one shifted by [`shifted_now_ms`] in tests of clock skew).
#[allow(clippy::result_unit_err)]
pub fn expires_at_ms_from(now: u64, expiry: crate::Expiry) -> std::result::Result<Option<u64>, ()> {
    match expiry.ttl() {
        Ttl::Forever => Ok(None),
        Ttl::Expired => Err(()),
        Ttl::For(d) => {
            let ms = u64::try_from(d.as_nanos().div_ceil(1_000_000)).unwrap_or(u64::MAX);
            Ok(Some(now.saturating_add(ms).min(MAX_EPOCH_MS)))
        }
    }
}

/// [`now_ms`] shifted by `offset_ms` (saturating): backends whose lock deadlines are
/// on the client's clock take an offset from tests, to play a client whose clock runs
/// ahead or behind.
pub fn shifted_now_ms(offset_ms: i64) -> u64 {
    now_ms().saturating_add_signed(offset_ms)
}
