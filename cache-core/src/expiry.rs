//! When a cached value stops being valid.

use std::time::{Duration, SystemTime};

/// How long a value lives.
///
/// A zero duration, or a point in time already past, stores nothing and removes
/// whatever was stored under the key: the call behaves like a delete.
///
/// ```
/// use std::time::Duration;
/// use cache_core::Expiry;
///
/// assert_eq!(Expiry::from(Duration::from_secs(5)), Expiry::After(Duration::from_secs(5)));
/// assert_eq!(Expiry::from(30u64), Expiry::After(Duration::from_secs(30))); // whole seconds
/// assert_eq!(Expiry::from(None::<Duration>), Expiry::Never);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Expiry {
    /// The value stays until it is deleted, evicted or the namespace is cleared.
    #[default]
    Never,
    /// The value expires this long after it is written.
    After(Duration),
    /// The value expires at this wall-clock time.
    At(SystemTime),
}

/// An [`Expiry`] resolved against the current time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ttl {
    /// No expiry.
    Forever,
    /// Expires after this (non-zero) duration from now.
    For(Duration),
    /// Already expired: store nothing and remove the old value.
    Expired,
}

impl Expiry {
    /// Expire after `secs` whole seconds.
    pub fn seconds(secs: u64) -> Self {
        Expiry::After(Duration::from_secs(secs))
    }

    /// Expire after `ms` milliseconds.
    pub fn millis(ms: u64) -> Self {
        Expiry::After(Duration::from_millis(ms))
    }

    /// Resolve against the current wall-clock time.
    pub fn ttl(&self) -> Ttl {
        match self {
            // Only a point in time needs the clock.
            Expiry::At(_) => self.ttl_at(SystemTime::now()),
            _ => self.ttl_at(SystemTime::UNIX_EPOCH),
        }
    }

    /// Resolve against `now`.
    pub fn ttl_at(&self, now: SystemTime) -> Ttl {
        match *self {
            Expiry::Never => Ttl::Forever,
            Expiry::After(d) if d.is_zero() => Ttl::Expired,
            Expiry::After(d) => Ttl::For(d),
            Expiry::At(t) => match t.duration_since(now) {
                Ok(d) if !d.is_zero() => Ttl::For(d),
                _ => Ttl::Expired,
            },
        }
    }
}

impl Ttl {
    /// The duration rounded up to whole milliseconds (at least 1), for stores that
    /// count milliseconds. `None` for [`Ttl::Forever`] and [`Ttl::Expired`].
    pub fn as_millis_ceil(&self) -> Option<u64> {
        match self {
            Ttl::For(d) => {
                let ms = d.as_nanos().div_ceil(1_000_000);
                Some(u64::try_from(ms).unwrap_or(u64::MAX).max(1))
            }
            _ => None,
        }
    }

    /// The duration rounded up to whole seconds (at least 1), for stores that count
    /// seconds: a value never lives shorter than asked, at most one second longer.
    pub fn as_secs_ceil(&self) -> Option<u64> {
        match self {
            Ttl::For(d) => {
                let s = d.as_nanos().div_ceil(1_000_000_000);
                Some(u64::try_from(s).unwrap_or(u64::MAX).max(1))
            }
            _ => None,
        }
    }
}

impl From<Duration> for Expiry {
    fn from(d: Duration) -> Self {
        Expiry::After(d)
    }
}

impl From<Option<Duration>> for Expiry {
    fn from(d: Option<Duration>) -> Self {
        d.map_or(Expiry::Never, Expiry::After)
    }
}

impl From<u64> for Expiry {
    fn from(secs: u64) -> Self {
        Expiry::seconds(secs)
    }
}

impl From<u32> for Expiry {
    fn from(secs: u32) -> Self {
        Expiry::seconds(secs.into())
    }
}

impl From<SystemTime> for Expiry {
    fn from(t: SystemTime) -> Self {
        Expiry::At(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_and_past_are_expired() {
        assert_eq!(Expiry::After(Duration::ZERO).ttl(), Ttl::Expired);
        let past = SystemTime::now() - Duration::from_secs(1);
        assert_eq!(Expiry::At(past).ttl(), Ttl::Expired);
        assert_eq!(Expiry::Never.ttl(), Ttl::Forever);
    }

    #[test]
    fn future_at_resolves_to_duration() {
        let now = SystemTime::now();
        let t = Expiry::At(now + Duration::from_secs(10)).ttl_at(now);
        assert_eq!(t, Ttl::For(Duration::from_secs(10)));
    }

    #[test]
    fn rounding_goes_up() {
        let t = Ttl::For(Duration::from_micros(1500));
        assert_eq!(t.as_millis_ceil(), Some(2));
        assert_eq!(t.as_secs_ceil(), Some(1));
        assert_eq!(
            Ttl::For(Duration::from_millis(2001)).as_secs_ceil(),
            Some(3)
        );
        assert_eq!(Ttl::Forever.as_secs_ceil(), None);
    }
}
