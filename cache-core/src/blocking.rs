//! The same calls for code without an async runtime, like the Python library's
//! synchronous methods.
//!
//! A [`blocking::Cache`](Cache) drives each call to completion on the calling thread,
//! on a small Tokio runtime of its own ([`Cache::new`], [`Cache::connect`]) or on the
//! runtime of an async cache it wraps ([`Cache::from_async`]). Where it may block:
//!
//! - any thread outside an async runtime;
//! - inside [`tokio::task::spawn_blocking`] of a multi-thread runtime (how axum runs
//!   blocking code, the counterpart of FastAPI's thread pool for sync endpoints), and
//!   on a multi-thread runtime's worker too: the call goes through
//!   [`tokio::task::block_in_place`], which hands the worker's other tasks to another
//!   thread first, so nothing else stalls;
//! - not on a current-thread runtime (`#[tokio::test]`'s default, `flavor =
//!   "current_thread"`): blocking its only thread would stall every task, and Tokio
//!   offers no way to tell that thread from a `spawn_blocking` one, so calls there, in
//!   `spawn_blocking` too, return an [`ErrorKind::Unsupported`] error that says so.
//!
//! ```
//! # fn demo(backend: impl cache_core::CacheBackend) -> cache_core::Result<()> {
//! let cache = cache_core::blocking::Cache::new(backend)?;
//! cache.set("k", &1u32, std::time::Duration::from_secs(60))?;
//! assert_eq!(cache.get::<u32>("k")?, Some(1));
//! let v: u32 = cache.cached("slow").get_or_compute(|| Ok::<_, std::io::Error>(2)).unwrap();
//! # Ok(()) }
//! ```

use crate::backend::CacheBackend;
use crate::codec::{Codec, MessagePack};
use crate::compute::{Cacheable, ComputeError, IntoKey};
use crate::error::{Error, ErrorKind, Origin, Result};
use crate::expiry::Expiry;
use serde::{de::DeserializeOwned, Serialize};
use std::future::Future;
use std::sync::Arc;
use tokio::runtime::{Handle, RuntimeFlavor};

struct Runtime(Option<tokio::runtime::Runtime>);

impl Drop for Runtime {
    fn drop(&mut self) {
        // Never blocks, so dropping the last handle inside an async context is safe.
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

/// The runtime a blocking call is driven on.
#[derive(Clone)]
enum Driver {
    /// The handle's own runtime.
    Own(Arc<Runtime>),
    /// The runtime of the async cache it wraps.
    Borrowed(Handle),
}

impl Driver {
    fn block_on<F: Future>(&self, fut: F) -> Result<F::Output> {
        match self {
            Driver::Own(rt) => {
                let rt = rt.0.as_ref().expect("runtime present until drop");
                block_here(|| rt.block_on(fut))
            }
            Driver::Borrowed(handle) => block_here(|| handle.block_on(fut)),
        }
    }
}

/// A blocking handle: every call of [`crate::Cache`], without `async`.
#[derive(Clone)]
pub struct Cache<C: Codec = MessagePack> {
    cache: crate::Cache<C>,
    driver: Driver,
}

fn new_runtime() -> Result<Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("cache-blocking")
        .enable_all()
        .build()
        .map(|rt| Runtime(Some(rt)))
        .map_err(|e| {
            Error::from_origin(
                ErrorKind::Backend,
                Origin::Runtime,
                "cannot start the blocking cache's runtime",
            )
            .with_source(e)
        })
}

/// Run `f`, which blocks, where that is safe (see the module docs), or refuse.
fn block_here<R>(f: impl FnOnce() -> R) -> Result<R> {
    match Handle::try_current() {
        Err(_) => Ok(f()),
        Ok(h) if h.runtime_flavor() == RuntimeFlavor::MultiThread => {
            Ok(tokio::task::block_in_place(f))
        }
        Ok(_) => Err(Error::from_origin(
            ErrorKind::Unsupported,
            Origin::Runtime,
            "blocking::Cache was called on a current-thread Tokio runtime, where blocking would stall its only thread (and a spawn_blocking thread cannot be told from it); use the async cache_core::Cache there (blocking::Cache::as_async gives one), or a multi-thread runtime",
        )),
    }
}

impl<C: Codec> std::fmt::Debug for Cache<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("blocking::Cache").field(&self.cache).finish()
    }
}

impl Cache<MessagePack> {
    /// A blocking cache over a backend that needs no runtime to be built (memory).
    pub fn new(backend: impl CacheBackend) -> Result<Self> {
        Self::connect(|| async move { Ok(crate::Cache::new(backend)) })
    }

    /// Build the async cache inside this handle's runtime, for backends whose
    /// connections belong to the runtime that opened them (Redis, PostgreSQL, ...).
    pub fn connect<C, F, Fut>(make: F) -> Result<Cache<C>>
    where
        C: Codec,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<crate::Cache<C>>>,
    {
        let driver = Driver::Own(Arc::new(new_runtime()?));
        let cache = driver.block_on(make())??;
        Ok(Cache { cache, driver })
    }
}

impl<C: Codec> Cache<C> {
    /// A blocking view of `cache`, an async cache of the current Tokio runtime (its
    /// connections belong to it): for the sync handlers of an async service, run
    /// through [`tokio::task::spawn_blocking`]. Clones share the backend, the single
    /// flight and the stats with `cache`. Outside a runtime this is an
    /// [`ErrorKind::Config`] error.
    ///
    /// ```
    /// # async fn demo(cache: cache_core::Cache) -> cache_core::Result<()> {
    /// let sync_cache = cache_core::blocking::Cache::from_async(cache)?;
    /// let n = tokio::task::spawn_blocking(move || sync_cache.get::<u32>("hits"))
    ///     .await
    ///     .expect("the blocking task ran")?;
    /// # Ok(()) }
    /// ```
    pub fn from_async(cache: crate::Cache<C>) -> Result<Self> {
        let handle = Handle::try_current().map_err(|_| {
            Error::from_origin(
                ErrorKind::Config,
                Origin::Runtime,
                "blocking::Cache::from_async needs the Tokio runtime the cache belongs to; call it from async code (or build the blocking cache with blocking::Cache::connect)",
            )
        })?;
        Ok(Cache {
            cache,
            driver: Driver::Borrowed(handle),
        })
    }

    fn run<F: Future>(&self, fut: F) -> Result<F::Output> {
        self.driver.block_on(fut)
    }

    /// The async handle over the same backend (for code that has both worlds).
    pub fn as_async(&self) -> &crate::Cache<C> {
        &self.cache
    }

    /// See [`crate::Cache::get`].
    pub fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
        self.run(self.cache.get(key))?
    }
    /// See [`crate::Cache::set`].
    pub fn set<T: Serialize + ?Sized>(
        &self,
        key: &str,
        value: &T,
        expiry: impl Into<Expiry>,
    ) -> Result<()> {
        self.run(self.cache.set(key, value, expiry))?
    }
    /// See [`crate::Cache::insert`].
    pub fn insert<T: Serialize + ?Sized>(&self, key: &str, value: &T) -> Result<()> {
        self.run(self.cache.insert(key, value))?
    }
    /// See [`crate::Cache::delete`].
    pub fn delete(&self, key: &str) -> Result<bool> {
        self.run(self.cache.delete(key))?
    }
    /// See [`crate::Cache::has`].
    pub fn has(&self, key: &str) -> Result<bool> {
        self.run(self.cache.has(key))?
    }
    /// See [`crate::Cache::clear`].
    pub fn clear(&self) -> Result<()> {
        self.run(self.cache.clear())?
    }
    /// See [`crate::Cache::get_many`].
    pub fn get_many<T: DeserializeOwned>(&self, keys: &[&str]) -> Result<Vec<Option<T>>> {
        self.run(self.cache.get_many(keys))?
    }
    /// See [`crate::Cache::set_many`].
    pub fn set_many<T: Serialize>(
        &self,
        items: &[(&str, T)],
        expiry: impl Into<Expiry>,
    ) -> Result<()> {
        self.run(self.cache.set_many(items, expiry))?
    }
    /// See [`crate::Cache::delete_many`].
    pub fn delete_many(&self, keys: &[&str]) -> Result<usize> {
        self.run(self.cache.delete_many(keys))?
    }
    /// See [`crate::Cache::set_if_absent`].
    pub fn set_if_absent<T: Serialize + ?Sized>(
        &self,
        key: &str,
        value: &T,
        expiry: impl Into<Expiry>,
    ) -> Result<bool> {
        self.run(self.cache.set_if_absent(key, value, expiry))?
    }
    /// See [`crate::Cache::close`].
    pub fn close(&self) -> Result<()> {
        self.run(self.cache.close())?
    }

    /// Get-or-compute with a plain closure; see [`crate::Cache::get_or_compute`].
    pub fn get_or_compute<T, E, F>(
        &self,
        key: impl IntoKey,
        compute: F,
    ) -> Result<T, ComputeError<E>>
    where
        T: Cacheable,
        E: Send + Sync + 'static,
        F: FnOnce() -> std::result::Result<T, E>,
    {
        self.cached(key).get_or_compute(compute)
    }

    /// Start a get-or-compute call with options; see [`crate::Cache::cached`].
    pub fn cached(&self, key: impl IntoKey) -> ComputeCall<'_, C> {
        ComputeCall {
            handle: self,
            inner: self.cache.cached(key),
        }
    }
}

/// One blocking get-or-compute call with its options; see [`crate::ComputeCall`].
#[must_use = "call .get_or_compute(...) to run it"]
pub struct ComputeCall<'a, C: Codec> {
    handle: &'a Cache<C>,
    inner: crate::ComputeCall<'a, C>,
}

impl<C: Codec> ComputeCall<'_, C> {
    crate::compute::options::call_setters!(inner);

    /// Look up the key, computing and storing the value on a miss.
    pub fn get_or_compute<T, E, F>(self, compute: F) -> Result<T, ComputeError<E>>
    where
        T: Cacheable,
        E: Send + Sync + 'static,
        F: FnOnce() -> std::result::Result<T, E>,
    {
        let ComputeCall { handle, inner } = self;
        handle.run(inner.get_or_compute(|| async move { compute() }))?
    }

    /// [`get_or_compute`](Self::get_or_compute) for a compute that decides, with its
    /// value, whether to store it and for how long (see [`crate::Computed`]).
    pub fn get_or_compute_with<T, E, F>(self, compute: F) -> Result<T, ComputeError<E>>
    where
        T: Cacheable,
        E: Send + Sync + 'static,
        F: FnOnce() -> std::result::Result<crate::Computed<T>, E>,
    {
        let ComputeCall { handle, inner } = self;
        handle.run(inner.get_or_compute_with(|| async move { compute() }))?
    }

    /// Remove the value this call would read: see [`crate::ComputeCall::invalidate`].
    pub fn invalidate(self) -> Result<bool> {
        let ComputeCall { handle, inner } = self;
        handle.run(inner.invalidate())?
    }
}
