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
use crate::Checked;
use std::sync::Arc;

/// Builder for [`Cache`].
#[must_use]
pub struct CacheBuilder<C: Codec = MessagePack> {
    backend: Arc<dyn CacheBackend>,
    codec: C,
    default_expiry: Expiry,
    compute: Options,
    clock: Arc<dyn Clock>,
    observe: bool,
    trace_keys: bool,
}

impl CacheBuilder<MessagePack> {
    /// Start from a shared backend.
    pub fn from_arc(backend: Arc<dyn CacheBackend>) -> Self {
        CacheBuilder {
            backend,
            codec: MessagePack,
            default_expiry: Expiry::Never,
            compute: Options::default(),
            clock: Arc::new(SystemClock),
            observe: true,
            trace_keys: false,
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
        }
    }
    /// Expiry used by [`Cache::insert`] and get-or-compute when none is given.
    pub fn default_expiry(mut self, expiry: impl Into<Expiry>) -> Self {
        self.default_expiry = expiry.into();
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
    /// Put a [`CircuitBreaker`](crate::CircuitBreaker) with `config` around the
    /// backend (default: none): after a run of failed calls the store is skipped at
    /// once — get-or-compute computes without waiting for it, plain calls return
    /// [`Unavailable`](crate::ErrorKind::Unavailable) — until a probe call succeeds.
    pub fn circuit_breaker(mut self, config: crate::BreakerConfig) -> Self {
        self.backend = Arc::new(crate::CircuitBreaker::new(self.backend, config));
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
        let backend = Checked::new(self.backend);
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
                codec: self.codec,
                default_expiry: self.default_expiry,
                compute: self.compute,
                flights: Flights::default(),
                clock: self.clock,
                throttles: Default::default(),
            }),
        }
    }
}
