//! The leader's work: lock, compute, fenced write, release; and what a failed or
//! timed-out compute leaves.

use super::call::ComputeCall;
use super::computed::Computed;
use super::error::Failure;
use super::landing::{later, panic_message, unconfirmed_linger, Led, LINGER_MARGIN};
use super::lock::{LockHold, Locked};
use crate::codec::Codec;
use crate::envelope::Meta;
use crate::expiry::Expiry;
use crate::flight::LeaderGuard;
use crate::observe::Op;
use serde::{de::DeserializeOwned, Serialize};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// How a compute ran.
pub(super) enum Ran<T, E> {
    Done(std::result::Result<T, E>),
    /// It panicked: the payload, to hand to the followers as an error and to resume
    /// in the leader's caller.
    Panicked(Box<dyn std::any::Any + Send>),
    /// Past the soft timeout with a value to serve instead.
    Soft,
    /// Past the hard timeout.
    Hard(Duration),
}

impl<C: Codec> ComputeCall<'_, C> {
    /// Lock, re-read, compute, write, release. `fallback` is a stale or kept value
    /// (or a fresh one picked for early refresh): returned if the compute fails or
    /// times out (and, when `soft` allows, past the soft timeout).
    pub(super) async fn lead<T, E, F, Fut>(
        &self,
        key: &str,
        compute: F,
        fallback: Option<(T, Meta)>,
        soft: bool,
        flight: &LeaderGuard<'_>,
    ) -> Led<T, E>
    where
        T: Serialize + DeserializeOwned,
        F: FnOnce() -> Fut,
        Fut: Future<Output = std::result::Result<Computed<T>, E>>,
    {
        // A value read from the store is there: callers that began before it was
        // found may take it for the length of one store call.
        let read_linger = later(self.options().store_timeout + LINGER_MARGIN);
        let (mut held, waited_out) = match self.lock(key, fallback.as_ref().map(|f| &f.1)).await {
            Locked::Found(v) => {
                return Led {
                    coalesced: true,
                    ..Led::value(v, read_linger)
                }
            }
            Locked::Compute { held, waited_out } => (held, waited_out),
        };
        let clock = &self.cache.inner.clock;
        let started = clock.now_ms();
        // Callers that asked before this are not sure to be served by this compute's
        // value if it is superseded (see `received`).
        let began = self.cache.inner.flights.mark();
        let timer = std::time::Instant::now();
        // The closure is called inside the caught future: a panic before it returns
        // its future is caught too.
        let ran = self
            .run(async move { compute().await }, soft && fallback.is_some())
            .await;
        let took = Duration::from_millis(clock.now_ms().saturating_sub(started));
        let obs = self.observe();
        match &ran {
            Ran::Done(r) => obs.computed(timer.elapsed(), r.is_err()),
            Ran::Hard(_) | Ran::Panicked(_) => obs.computed(timer.elapsed(), true),
            Ran::Soft => {}
        }
        let (failure, panic) = match ran {
            Ran::Done(Ok(c)) if !c.store => {
                // The compute chose not to store it: the callers of this flight get
                // it (unless it was superseded, as a stored value would be), later
                // ones compute again.
                held.release(self.options().store_timeout).await;
                if flight.overtaken() || waited_out {
                    return Led::superseded(c.value, began);
                }
                return Led::failed(Ok(c.value), None);
            }
            Ran::Done(Ok(Computed { value: v, .. })) if flight.overtaken() => {
                // This process wrote, deleted or cleared the key meanwhile: that
                // write wins; the value is returned, neither stored nor kept.
                tracing::debug!(key = %obs.log_key(key), "the key was written meanwhile; the computed value is not stored");
                held.release(self.options().store_timeout).await;
                return Led::superseded(v, began);
            }
            Ran::Done(Ok(Computed {
                value: v, expiry, ..
            })) => {
                let expiry = expiry.unwrap_or(self.settings.expiry);
                let stored = (held, waited_out, took, began);
                return self.store(key, v, expiry, stored).await;
            }
            Ran::Done(Err(e)) => (Failure::Compute(Arc::new(e)), None),
            Ran::Hard(d) => (Failure::TimedOut(d), None),
            Ran::Panicked(payload) => (
                Failure::Panicked(panic_message(payload.as_ref())),
                Some(payload),
            ),
            Ran::Soft => {
                held.release(self.options().store_timeout).await;
                if fallback.is_some() {
                    obs.stale_served();
                }
                let timed_out = Failure::TimedOut(self.options().soft_timeout.unwrap_or_default());
                let out = fallback.map(|(v, _)| v).ok_or(timed_out.clone());
                // Followers serve their own stale values (see `or_own`).
                return Led {
                    shared: Some(Err(timed_out)),
                    ..Led::failed(out, None)
                };
            }
        };
        held.release(self.options().store_timeout).await;
        self.failed(key, failure, panic, fallback)
    }

    /// Store a computed value: fenced by the lock when this leader holds it. Only a
    /// lock holder writes with stampede protection on.
    pub(super) async fn store<T, E>(
        &self,
        key: &str,
        v: T,
        expiry: Expiry,
        (mut held, waited_out, took, began): (LockHold<C>, bool, Duration, u64),
    ) -> Led<T, E>
    where
        T: Serialize,
    {
        let timeout = self.options().store_timeout;
        let log_key = || self.cache.inner.observe.log_key(key);
        let mut written = None;
        match self.cache.encode_entry(&v, expiry, self.options(), took) {
            Ok((bytes, expiry)) => {
                let backend = self.backend();
                written = match held.token() {
                    // Fenced: stored only while the lock is this leader's and
                    // nobody wrote, deleted or cleared the key meanwhile; the
                    // write releases the lock.
                    Some(token) => {
                        let write = backend.set_locked_valid(key, bytes, expiry, token);
                        match self.guarded(Op::Set, key, write).await {
                            Some(stored) => {
                                held.disarm();
                                if !stored {
                                    tracing::debug!(key = %log_key(), "the lock expired or the key was written meanwhile; the computed value is not stored");
                                    return Led::superseded(v, began);
                                }
                                Some(())
                            }
                            None => None,
                        }
                    }
                    // With stampede protection, only the lock holder writes: a
                    // caller that computed without the lock (the wait elapsed, or
                    // the store did not answer) returns its value unstored, so it
                    // can never land over a newer write.
                    None if self.options().stampede_protection => {
                        tracing::debug!(key = %log_key(), "computed without the lock; the value is not stored");
                        None
                    }
                    None => {
                        let write = backend.set_valid(key, bytes, expiry);
                        self.guarded(Op::Set, key, write).await
                    }
                };
            }
            Err(e) => {
                tracing::warn!(key = %log_key(), error = %e, "computed value cannot be encoded; not cached")
            }
        }
        held.release(timeout).await;
        // Readable in process by the callers whose reads were already in flight:
        // with a slow store they end after this lands, and must not compute again.
        // Not stored: also by callers that cannot read the store either, while the
        // value is fresh.
        match written {
            Some(()) => Led::value(v, later(timeout + LINGER_MARGIN)),
            // Computed beside another process's compute: a write made meanwhile is
            // not seen here, so followers look again.
            None if waited_out => Led::superseded(v, began),
            None => Led {
                linger: later(unconfirmed_linger(expiry)),
                open: true,
                ..Led::value(v, later(Duration::ZERO))
            },
        }
    }

    /// A failed, timed-out or panicked compute: the fail-safe value if there is one
    /// (throttled), else the failure. Followers get the failure, and serve their own
    /// fail-safe values (see `or_own`): this one was read before they asked.
    pub(super) fn failed<T, E>(
        &self,
        key: &str,
        failure: Failure<E>,
        panic: Option<Box<dyn std::any::Any + Send>>,
        fallback: Option<(T, Meta)>,
    ) -> Led<T, E> {
        let shared = Some(Err(failure.clone()));
        let out = match fallback {
            Some((v, _)) if panic.is_none() => {
                let why = match &failure {
                    Failure::Compute(_) => "the compute failed",
                    _ => "the compute timed out",
                };
                let obs = self.observe();
                tracing::warn!(key = %obs.log_key(key), "{why}; serving the stale value kept for fail-safe");
                obs.stale_served();
                // Asked again once per throttle, not on every call; the throttle is
                // this process's own, so nothing is written over the store's value.
                self.cache.throttle(key, self.options().fail_safe_throttle);
                Ok(v)
            }
            _ => Err(failure),
        };
        // The fail-safe answer, or the error, also reaches the callers whose reads
        // were under way when this landed: they are of this flight, and must not ask
        // the failing origin again (a panic is not kept).
        let linger = match panic {
            None => later(self.options().store_timeout + LINGER_MARGIN),
            Some(_) => later(Duration::ZERO),
        };
        Led {
            shared: out.is_ok().then_some(shared).flatten(),
            out,
            linger,
            open: false,
            panic,
            superseded: None,
            coalesced: false,
        }
    }

    /// Run the compute within the hard timeout, and the soft one when `soft`; a
    /// panic is caught, to reach the followers as an error.
    pub(super) async fn run<T, E>(
        &self,
        fut: impl Future<Output = std::result::Result<T, E>>,
        soft: bool,
    ) -> Ran<T, E> {
        use futures::FutureExt;
        let mut fut = std::pin::pin!(std::panic::AssertUnwindSafe(fut).catch_unwind());
        let done = |r: std::thread::Result<std::result::Result<T, E>>| match r {
            Ok(r) => Ran::Done(r),
            Err(payload) => Ran::Panicked(payload),
        };
        let hard = self.options().hard_timeout;
        if let Some(s) = self
            .options()
            .soft_timeout
            .filter(|s| soft && hard.is_none_or(|h| *s < h))
        {
            match tokio::time::timeout(s, &mut fut).await {
                Ok(r) => return done(r),
                Err(_) => return Ran::Soft,
            }
        }
        match hard {
            Some(h) => match tokio::time::timeout(h, fut).await {
                Ok(r) => done(r),
                Err(_) => Ran::Hard(h),
            },
            None => done(fut.await),
        }
    }
}
