//! Lazy start: a backend that connects in the background, so a service can start
//! while its cache is down.

use crate::backend::{CacheBackend, Capabilities, LockToken};
use crate::error::{Error, ErrorKind, Result};
use crate::expiry::Expiry;
use async_trait::async_trait;
use bytes::Bytes;
use std::future::Future;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// A backend crate's builder: what its backend will be before it connects (the
/// checks, spans and metrics labels of a [`LazyBackend`] need that at once), and how
/// it connects. A backend writes the three required items; [`build_lazy`] comes with
/// them.
///
/// [`build_lazy`]: BackendBuilder::build_lazy
pub trait BackendBuilder: Clone + Send + Sync + Sized + 'static {
    /// The backend it builds.
    type Backend: CacheBackend;

    /// The capabilities the built backend will have.
    fn capabilities(&self) -> Capabilities;

    /// The namespace the built backend will use.
    fn namespace(&self) -> &str;

    /// Connect, and build the backend (the builder's own `build().await`).
    fn build(self) -> impl Future<Output = Result<Self::Backend>> + Send;

    /// Lazy start: a backend that connects in the background (see [`LazyBackend`]),
    /// so the application starts while the store is down; until it is reachable,
    /// calls fail fast with [`Unavailable`](ErrorKind::Unavailable) and get-or-compute
    /// computes without the cache. Settings are checked at once; errors only the
    /// server can tell (credentials, a missing database or table) show on the calls,
    /// as [`Config`](ErrorKind::Config) errors, once the server answers. Call it inside
    /// a tokio runtime.
    ///
    /// ```no_run
    /// use cache_core::BackendBuilder; // brings build_lazy into scope
    /// # fn demo(builder: impl BackendBuilder) -> cache_core::Result<()> {
    /// let backend = builder.build_lazy()?; // returns at once
    /// let cache = cache_core::Cache::new(backend);
    /// # Ok(()) }
    /// ```
    fn build_lazy(self) -> Result<LazyBackend> {
        let caps = self.capabilities();
        let namespace = self.namespace().to_owned();
        LazyBackend::spawn(caps, namespace, move || self.clone().build())
    }
}

/// First and longest pause between connection attempts.
const FIRST_RETRY: Duration = Duration::from_millis(50);
const LONGEST_RETRY: Duration = Duration::from_secs(1);

/// A backend that is still connecting, or connected: until the connection is up
/// every call fails at once with [`Unavailable`](ErrorKind::Unavailable) (so
/// get-or-compute computes without the store, as with an open
/// [`CircuitBreaker`](crate::CircuitBreaker)); then calls go to the connected backend.
///
/// A background task calls `connect` until it succeeds, pausing 50 ms, then twice as
/// long each time up to 1 s, on every error but a [`Config`](ErrorKind::Config) one
/// (the store unreachable, or answering that it is still loading its data or failing
/// over); a `Config` error (wrong credentials, a missing database) ends the attempts
/// and every call then returns it as a `Config` error. Backend
/// builders offer it as [`BackendBuilder::build_lazy`]; eager `build().await` stays the
/// default, where such errors surface at once.
pub struct LazyBackend {
    caps: Capabilities,
    namespace: String,
    state: Arc<State>,
    task: tokio::task::JoinHandle<()>,
}

struct State {
    backend: OnceLock<Arc<dyn CacheBackend>>,
    /// Why connecting stopped for good.
    failed: Mutex<Option<String>>,
    since: Instant,
    attempts: std::sync::atomic::AtomicU32,
}

impl std::fmt::Debug for LazyBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LazyBackend")
            .field("backend", &self.caps.name)
            .field("connected", &self.is_connected())
            .finish()
    }
}

impl LazyBackend {
    /// Start connecting with `connect` on the current tokio runtime; `capabilities`
    /// and `namespace` are those the connected backend will have (the checks, spans
    /// and metrics labels need them before). An invalid namespace, or no runtime, is
    /// a [`Config`](ErrorKind::Config) error at once.
    pub fn spawn<B, F, Fut>(
        capabilities: Capabilities,
        namespace: impl Into<String>,
        connect: F,
    ) -> Result<Self>
    where
        B: CacheBackend,
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<B>> + Send + 'static,
    {
        let namespace = namespace.into();
        crate::raw::validate_namespace(capabilities.name, &namespace)?;
        let handle = tokio::runtime::Handle::try_current().map_err(|_| {
            Error::new(
                ErrorKind::Config,
                capabilities.name,
                "build_lazy() needs a tokio runtime to connect in the background; call it from async code",
            )
        })?;
        let state = Arc::new(State {
            backend: OnceLock::new(),
            failed: Mutex::new(None),
            since: Instant::now(),
            attempts: Default::default(),
        });
        let task = handle.spawn(connect_loop(capabilities.name, state.clone(), connect));
        Ok(LazyBackend {
            caps: capabilities,
            namespace,
            state,
            task,
        })
    }

    /// Whether the connection is up.
    pub fn is_connected(&self) -> bool {
        self.state.backend.get().is_some()
    }

    fn backend(&self) -> Result<&Arc<dyn CacheBackend>> {
        if let Some(b) = self.state.backend.get() {
            return Ok(b);
        }
        let failed = self
            .state
            .failed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        Err(match failed {
            Some(why) => Error::new(
                ErrorKind::Config,
                self.caps.name,
                format!("the lazy connection gave up: {why}"),
            ),
            None => Error::new(
                ErrorKind::Unavailable,
                self.caps.name,
                format!(
                    "still connecting (lazy start, {} ms and {} attempts so far); calls fail fast until the store is reachable",
                    self.state.since.elapsed().as_millis(),
                    self.state.attempts.load(std::sync::atomic::Ordering::Relaxed)
                ),
            ),
        })
    }
}

async fn connect_loop<B, F, Fut>(name: &'static str, state: Arc<State>, connect: F)
where
    B: CacheBackend,
    F: Fn() -> Fut,
    Fut: Future<Output = Result<B>>,
{
    let mut pause = FIRST_RETRY;
    loop {
        state
            .attempts
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        match connect().await {
            Ok(b) => {
                let _ = state.backend.set(Arc::new(b));
                tracing::info!(backend = name, "lazy start: connected");
                return;
            }
            // Every error but a configuration one may pass (a store still loading its
            // data answers with errors of its own): keep trying.
            Err(e) if e.kind() != ErrorKind::Config => {
                let n = state.attempts.load(std::sync::atomic::Ordering::Relaxed);
                if !e.is_transient() && n.is_multiple_of(10) {
                    // Retried, but said: it may be a misconfiguration that never passes.
                    tracing::warn!(backend = name, error = %e, attempts = n, "lazy start: the store answers with an error; still retrying");
                } else {
                    tracing::debug!(backend = name, error = %e, retry_in = ?pause, "lazy start: not reachable yet");
                }
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(LONGEST_RETRY);
            }
            Err(e) => {
                tracing::error!(backend = name, error = %e, "lazy start: giving up");
                *state
                    .failed
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(e.to_string());
                return;
            }
        }
    }
}

impl Drop for LazyBackend {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[async_trait]
impl CacheBackend for LazyBackend {
    fn capabilities(&self) -> Capabilities {
        self.caps
    }

    fn namespace(&self) -> &str {
        &self.namespace
    }
    fn get_now(&self, key: &str) -> Option<Result<Option<Bytes>>> {
        match self.backend() {
            Ok(b) => b.get_now(key),
            Err(e) => Some(Err(e)),
        }
    }
    fn read_now(&self, key: &str, read: &mut dyn FnMut(&[u8])) -> Option<Result<bool>> {
        match self.backend() {
            Ok(b) => b.read_now(key, read),
            Err(e) => Some(Err(e)),
        }
    }
    async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        self.backend()?.get(key).await
    }
    async fn set(&self, key: &str, value: Bytes, expiry: Expiry) -> Result<()> {
        self.backend()?.set(key, value, expiry).await
    }
    async fn set_locked(
        &self,
        key: &str,
        value: Bytes,
        expiry: Expiry,
        token: &LockToken,
    ) -> Result<bool> {
        self.backend()?.set_locked(key, value, expiry, token).await
    }
    async fn delete(&self, key: &str) -> Result<bool> {
        self.backend()?.delete(key).await
    }
    async fn has(&self, key: &str) -> Result<bool> {
        self.backend()?.has(key).await
    }
    async fn clear(&self) -> Result<()> {
        self.backend()?.clear().await
    }
    async fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<Bytes>>> {
        self.backend()?.get_many(keys).await
    }
    async fn set_many(&self, items: &[(&str, Bytes)], expiry: Expiry) -> Result<()> {
        self.backend()?.set_many(items, expiry).await
    }
    async fn delete_many(&self, keys: &[&str]) -> Result<usize> {
        self.backend()?.delete_many(keys).await
    }
    async fn set_if_absent(&self, key: &str, value: Bytes, expiry: Expiry) -> Result<bool> {
        self.backend()?.set_if_absent(key, value, expiry).await
    }
    async fn acquire_lock(&self, key: &str, ttl: Duration) -> Result<Option<LockToken>> {
        self.backend()?.acquire_lock(key, ttl).await
    }
    async fn release_lock(&self, key: &str, token: &LockToken) -> Result<bool> {
        self.backend()?.release_lock(key, token).await
    }
    async fn close(&self) -> Result<()> {
        self.task.abort();
        match self.state.backend.get() {
            Some(b) => b.close().await,
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outside_a_runtime_is_a_config_error() {
        let err = LazyBackend::spawn(Capabilities::new("x"), "ns", || async {
            Err::<crate::Checked, _>(Error::new(ErrorKind::Unavailable, "x", "down"))
        })
        .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config);
    }

    #[tokio::test]
    async fn the_namespace_is_checked_at_once_and_known_before_connecting() {
        let down =
            || async { Err::<crate::Checked, _>(Error::new(ErrorKind::Unavailable, "x", "down")) };
        let err = LazyBackend::spawn(Capabilities::new("x"), "bad ns", down).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config);
        let lazy = LazyBackend::spawn(Capabilities::new("x"), "users", down).unwrap();
        assert!(!lazy.is_connected());
        assert_eq!(lazy.namespace(), "users");
    }
}
