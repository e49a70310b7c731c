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

impl<E: Clone> ComputeError<E> {
    /// The compute function's own error, owned: `Ok(e)` when this is
    /// [`Compute`](ComputeError::Compute), else `Err(self)` (a cache error, a timeout or
    /// a panic, for the caller to map). The error is moved out of its `Arc` when this
    /// caller holds the last reference, and cloned when other waiters of the same
    /// flight still hold theirs.
    ///
    /// With a `From` impl on the application's error type, handlers use `?`:
    ///
    /// ```
    /// use cache_core::ComputeError;
    ///
    /// #[derive(Debug, Clone, PartialEq)]
    /// enum AppError {
    ///     NotFound,
    ///     Unavailable(String),
    /// }
    /// # impl std::fmt::Display for AppError {
    /// #     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
    /// #         write!(f, "{self:?}")
    /// #     }
    /// # }
    ///
    /// impl From<ComputeError<AppError>> for AppError {
    ///     fn from(e: ComputeError<AppError>) -> Self {
    ///         // The compute's own error as it was returned; anything else (an
    ///         // invalid key, a hard timeout, a panic in another caller) as a 503.
    ///         e.into_compute()
    ///             .unwrap_or_else(|other| AppError::Unavailable(other.to_string()))
    ///     }
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let cache = cache_core::Cache::new(cache_memory::MemoryBackend::builder().build().unwrap());
    /// async fn user(cache: &cache_core::Cache, id: u64) -> Result<String, AppError> {
    ///     let name = cache
    ///         .cached(format!("user:{id}"))
    ///         .get_or_compute(|| async move {
    ///             if id == 7 { Ok("ada".to_string()) } else { Err(AppError::NotFound) }
    ///         })
    ///         .await?; // ComputeError<AppError> -> AppError
    ///     Ok(name)
    /// }
    /// assert_eq!(user(&cache, 7).await, Ok("ada".to_string()));
    /// assert_eq!(user(&cache, 8).await, Err(AppError::NotFound));
    /// # }
    /// ```
    pub fn into_compute(self) -> Result<E, Self> {
        match self {
            ComputeError::Compute(e) => Ok(Arc::unwrap_or_clone(e)),
            other => Err(other),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    #[derive(Debug, Clone, PartialEq)]
    struct Db(&'static str);

    #[test]
    fn into_compute_gives_the_compute_error_itself() {
        let e = ComputeError::Compute(Arc::new(Db("down")));
        assert_eq!(e.into_compute().unwrap(), Db("down"));
    }

    #[test]
    fn into_compute_clones_while_other_waiters_hold_the_error() {
        let shared = Arc::new(Db("down"));
        let waiter = ComputeError::Compute(shared.clone());
        assert_eq!(waiter.into_compute().unwrap(), Db("down"));
        // The other waiter's reference is untouched.
        assert_eq!(*shared, Db("down"));
        assert_eq!(Arc::strong_count(&shared), 1);
    }

    #[test]
    fn into_compute_hands_back_what_is_not_the_computes() {
        let cache = ComputeError::<Db>::Cache(Error::new(ErrorKind::Config, "t", "bad namespace"));
        let back = cache.into_compute().unwrap_err();
        assert!(matches!(back, ComputeError::Cache(ref e) if e.kind() == ErrorKind::Config));
        let timed_out = ComputeError::<Db>::TimedOut(Duration::from_millis(5));
        assert!(matches!(
            timed_out.into_compute(),
            Err(ComputeError::TimedOut(d)) if d == Duration::from_millis(5)
        ));
        let panicked = ComputeError::<Db>::Panicked("boom".into());
        assert!(matches!(panicked.into_compute(), Err(ComputeError::Panicked(m)) if m == "boom"));
    }
}
