//! How get-or-compute fails: [`ComputeError`] for the caller, [`Failure`] shared by a
//! flight's waiters.

use crate::error::Error;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// Error of get-or-compute: the compute's own error (shared by every waiter), or a
/// cache error that no fail-open can skip (an invalid key or namespace), or a compute
/// given up after its hard timeout.
#[non_exhaustive]
pub enum ComputeError<E> {
    /// The compute function failed; every caller waiting on it gets the same error.
    Compute(Arc<E>),
    /// The call itself was invalid.
    Cache(Error),
    /// The compute ran past the hard timeout
    /// ([`ComputeCall::hard_timeout`](crate::ComputeCall::hard_timeout)) and no fail-safe value was there.
    TimedOut(Duration),
    /// The compute panicked (in another caller's flight: the panic itself went to the
    /// caller whose compute ran); it runs once per flight, not once per waiter.
    Panicked(String),
}

impl<E> ComputeError<E> {
    /// The compute function's error, if that is what this is.
    pub fn compute_error(&self) -> Option<&E> {
        match self {
            ComputeError::Compute(e) => Some(e),
            ComputeError::Cache(_) | ComputeError::TimedOut(_) | ComputeError::Panicked(_) => None,
        }
    }
}

impl<E: fmt::Debug> fmt::Debug for ComputeError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ComputeError::Compute(e) => f.debug_tuple("Compute").field(e).finish(),
            ComputeError::Cache(e) => f.debug_tuple("Cache").field(e).finish(),
            ComputeError::TimedOut(d) => f.debug_tuple("TimedOut").field(d).finish(),
            ComputeError::Panicked(m) => f.debug_tuple("Panicked").field(m).finish(),
        }
    }
}

impl<E: fmt::Display> fmt::Display for ComputeError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ComputeError::Compute(e) => write!(f, "compute failed: {e}"),
            ComputeError::Cache(e) => e.fmt(f),
            ComputeError::TimedOut(d) => write!(
                f,
                "compute gave up after its hard timeout of {d:?} (raise it, or keep a fail-safe value)"
            ),
            ComputeError::Panicked(m) => write!(
                f,
                "the compute panicked in the flight this call waited on: {m} (fix the compute; the next call runs it again)"
            ),
        }
    }
}

impl<E: std::error::Error + 'static> std::error::Error for ComputeError<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ComputeError::Compute(e) => Some(e.as_ref()),
            ComputeError::Cache(e) => Some(e),
            ComputeError::TimedOut(_) | ComputeError::Panicked(_) => None,
        }
    }
}

impl<E> From<Error> for ComputeError<E> {
    fn from(e: Error) -> Self {
        ComputeError::Cache(e)
    }
}

/// How a leader's compute ended badly; shared with its followers.
pub(crate) enum Failure<E> {
    Compute(Arc<E>),
    TimedOut(Duration),
    Panicked(String),
}

impl<E> Clone for Failure<E> {
    fn clone(&self) -> Self {
        match self {
            Failure::Compute(e) => Failure::Compute(e.clone()),
            Failure::TimedOut(d) => Failure::TimedOut(*d),
            Failure::Panicked(m) => Failure::Panicked(m.clone()),
        }
    }
}

impl<E> From<Failure<E>> for ComputeError<E> {
    fn from(f: Failure<E>) -> Self {
        match f {
            Failure::Compute(e) => ComputeError::Compute(e),
            Failure::TimedOut(d) => ComputeError::TimedOut(d),
            Failure::Panicked(m) => ComputeError::Panicked(m),
        }
    }
}

pub(crate) type Outcome<T, E> = std::result::Result<T, Failure<E>>;
