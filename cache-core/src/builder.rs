//! [`CacheBuilder`]: a [`Cache`]'s backend, codec, defaults and layers.

use crate::backend::CacheBackend;
use crate::cache::{Cache, Inner};
use crate::clock::{Clock, SystemClock};
use crate::codec::{Codec, MessagePack};
use crate::compute::options::option_setters;
use crate::compute::Options;
use crate::expiry::Expiry;
use crate::flight::Flights;
use crate::observe::Observer;
use crate::{BreakerConfig, Checked, CircuitBreaker};
use std::sync::Arc;
use std::time::Duration;

/// Whether the cache gets a [`CircuitBreaker`].
#[derive(Debug, Clone, Copy)]
enum Breaker {
    /// `BreakerConfig::default()` for a networked store, none for an in-process one.
    Default,
    On(BreakerConfig),
    Off,
}

/// Builder for [`Cache`].
///
/// Its defaults depend on where the store lives. A *networked* store (one whose
/// [`Capabilities::distributed_locks`](crate::Capabilities::distributed_locks) is true,
/// as for every networked backend of this workspace: Redis, PostgreSQL, Memcached,
/// MongoDB, DynamoDB, Firestore) gets a [`CircuitBreaker`] with
/// [`BreakerConfig::default()`] and a default expiry of
/// [`NETWORKED_DEFAULT_EXPIRY`](CacheBuilder::NETWORKED_DEFAULT_EXPIRY) (1 hour); an
/// in-process store (the memory backend) gets neither: no breaker (it cannot be
/// unreachable) and [`Expiry::Never`] (its size bound evicts). Each can be set:
///
/// | setting | networked store | in-process store |
/// |---|---|---|
/// | [`default_expiry`](Self::default_expiry) | 1 hour | `Expiry::Never` |
/// | [`circuit_breaker`](Self::circuit_breaker) / [`without_circuit_breaker`](Self::without_circuit_breaker) | on, `BreakerConfig::default()` | off |
#[must_use]
pub struct CacheBuilder<C: Codec = MessagePack> {
    backend: Arc<dyn CacheBackend>,
    codec: C,
    /// `None`: the default for the store (see the type's docs).
    default_expiry: Option<Expiry>,
    compute: Options,
    clock: Arc<dyn Clock>,
    observe: bool,
    trace_keys: bool,
    breaker: Breaker,
}

impl CacheBuilder<MessagePack> {
    /// The default expiry of a cache over a networked store when
    /// [`default_expiry`](Self::default_expiry) is not set: 1 hour, so that values
    /// written without an expiry (get-or-compute without `.expiry`, [`Cache::insert`])
    /// do not stay in a shared store forever.
    pub const NETWORKED_DEFAULT_EXPIRY: Duration = Duration::from_secs(3600);

    /// Start from a shared backend.
    pub fn from_arc(backend: Arc<dyn CacheBackend>) -> Self {
        CacheBuilder {
            backend,
            codec: MessagePack,
            default_expiry: None,
            compute: Options::default(),
            clock: Arc::new(SystemClock),
            observe: true,
            trace_keys: false,
            breaker: Breaker::Default,
        }
    }
}

impl<C: Codec> CacheBuilder<C> {
    /// Use another codec.
    pub fn codec<C2: Codec>(self, codec: C2) -> CacheBuilder<C2> {
        CacheBuilder {
            backend: self.backend,
            codec,
            default_expiry: self.default_expiry,
            compute: self.compute,
            clock: self.clock,
            observe: self.observe,
            trace_keys: self.trace_keys,
            breaker: self.breaker,
        }
    }
    /// Expiry used by [`Cache::insert`] and get-or-compute when none is given.
    ///
    /// Default: [`NETWORKED_DEFAULT_EXPIRY`](CacheBuilder::NETWORKED_DEFAULT_EXPIRY)
    /// (1 hour) on a networked store, [`Expiry::Never`] on an in-process one (see
    /// [`CacheBuilder`]). Set `Expiry::Never` here to keep values in a networked
    /// store until they are deleted or evicted.
    pub fn default_expiry(mut self, expiry: impl Into<Expiry>) -> Self {
        self.default_expiry = Some(expiry.into());
        self
    }
    // store_timeout, stampede_protection, lock_ttl, lock_wait, stale_while_revalidate,
    // fail_safe, fail_safe_throttle, soft_timeout, hard_timeout, early_refresh: the
    // cache's defaults for get-or-compute (each call may set its own).
    option_setters!(compute);
    /// The clock read for freshness (default [`SystemClock`]); tests pass a
    /// [`ManualClock`](crate::ManualClock).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }
    /// Put a [`CircuitBreaker`] with `config` around the backend: after a run of
    /// failed calls the store is skipped at once — get-or-compute computes without
    /// waiting for it, plain calls return [`Unavailable`](crate::ErrorKind::Unavailable)
    /// — until a probe call succeeds.
    ///
    /// Default: a breaker with [`BreakerConfig::default()`] on a networked store, none
    /// on an in-process one (see [`CacheBuilder`]); turn it off with
    /// [`without_circuit_breaker`](Self::without_circuit_breaker). The last call of
    /// the two wins. A backend that is a `CircuitBreaker` already gets a second one
    /// unless it is turned off here. [`Cache::circuit_breaker`] reads its state.
    pub fn circuit_breaker(mut self, config: BreakerConfig) -> Self {
        self.breaker = Breaker::On(config);
        self
    }
    /// No [`CircuitBreaker`], even on a networked store: every call goes to the store,
    /// each bounded by the backend's own timeout.
    pub fn without_circuit_breaker(mut self) -> Self {
        self.breaker = Breaker::Off;
        self
    }
    /// Spans, `metrics` facade counters and histograms, and [`Cache::stats`] (default
    /// on; see the [`observe`](crate::observe) module). Off, calls record nothing and
    /// `stats()` stays zero.
    pub fn observe(mut self, on: bool) -> Self {
        self.observe = on;
        self
    }
    /// Record keys on the calls' spans (default off: keys can carry user data).
    pub fn trace_keys(mut self, on: bool) -> Self {
        self.trace_keys = on;
        self
    }
    /// Finish.
    pub fn build(self) -> Cache<C> {
        let networked = self.backend.capabilities().distributed_locks;
        let breaker = match self.breaker {
            Breaker::On(config) => Some(config),
            Breaker::Default if networked => Some(BreakerConfig::default()),
            Breaker::Default | Breaker::Off => None,
        }
        .map(|config| Arc::new(CircuitBreaker::new(self.backend.clone(), config)));
        let default_expiry = self.default_expiry.unwrap_or(if networked {
            Expiry::After(CacheBuilder::NETWORKED_DEFAULT_EXPIRY)
        } else {
            Expiry::Never
        });
        let backend = Checked::new(match &breaker {
            Some(b) => b.clone(),
            None => self.backend,
        });
        let observe = Observer::new(
            self.observe,
            self.trace_keys,
            backend.name(),
            backend.namespace(),
        );
        Cache {
            inner: Arc::new(Inner {
                observe,
                backend,
                breaker,
                codec: self.codec,
                default_expiry,
                compute: self.compute,
                flights: Flights::default(),
                clock: self.clock,
                throttles: Default::default(),
            }),
        }
    }
}
