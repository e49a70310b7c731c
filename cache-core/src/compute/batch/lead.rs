//! A batch's own keys: their locks, one compute, fenced writes, their flights landed.

use super::{Answer, BatchFn, ComputeMany, Lead, Led0};
use crate::codec::Codec;
use crate::compute::error::Failure;
use crate::compute::landing::{later, panic_message, Led, LINGER_MARGIN};
use crate::compute::lead::Ran;
use crate::compute::lock::Locked;
use crate::compute::lookup::Found;
use crate::compute::Cacheable;
use crate::observe::Op;
use crate::CacheBackend;
use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::Arc;
use std::time::Duration;

/// What leading ends with: an answer per key, and a panic to resume.
type Answers<T, E> = (
    Vec<(usize, Answer<T, E>)>,
    Option<Box<dyn std::any::Any + Send>>,
);

/// A round's leading: the batch, its compute and the round's number.
pub(super) struct Leader<'s, 'a, C: Codec, A, T, E, F> {
    pub(super) many: &'s ComputeMany<'a, C, A>,
    pub(super) compute: &'s F,
    pub(super) round: usize,
    /// The value and error types the compute answers with.
    pub(super) answers: std::marker::PhantomData<fn() -> (T, E)>,
}

impl<C, A, T, E, F> Leader<'_, '_, C, A, T, E, F>
where
    C: Codec,
    A: Eq + Hash + Clone,
    T: Cacheable,
    E: Send + Sync + 'static,
    F: BatchFn<A, T, E>,
{
    /// Lock this batch's keys (one try each), re-read the locked ones at once (a
    /// value may have landed since the read), compute the rest with one call, write
    /// each fenced, and land each key's flight. Keys whose lock another process holds
    /// are polled meanwhile, never waited for before the compute (two batches holding
    /// each other's keys would wait for each other); those its holder leaves get a
    /// compute of their own.
    pub(super) async fn lead_all<'f>(&self, leads: Vec<Led0<'f, T, A>>) -> Answers<T, E> {
        let call = &self.many.call;
        let mut answers = Vec::new();
        if leads.is_empty() {
            return (answers, None);
        }
        let tries = in_order(leads.iter().map(|l| call.try_lock(&l.1)).collect()).await;
        let (mut mine, mut contended) = (Vec::new(), Vec::new());
        for (lead, held) in leads.into_iter().zip(tries) {
            match held {
                Some(held) => mine.push(Lead::new(lead, held, false)),
                None => contended.push(lead),
            }
        }
        let mine = self.reread(mine, &mut answers).await;
        // Each value found is landed at once: held until the compute ends, a write or
        // delete made meanwhile would not stop it reaching later followers.
        let polled = contended.into_iter().map(|lead| async move {
            match call.lock::<T>(&lead.1, lead.3.as_ref().map(|f| &f.1)).await {
                Locked::Found(v) => {
                    let led = Led {
                        coalesced: true,
                        ..Led::value(v, later(call.options().store_timeout + LINGER_MARGIN))
                    };
                    Ok((lead.0, Answer::Out(led.land(lead.4), true)))
                }
                Locked::Compute { held, waited_out } => Err(Lead::new(lead, held, waited_out)),
            }
        });
        let polled = in_order(polled.collect());
        let ((mut led, panic), polled) = futures::join!(self.compute_and_store(mine), polled);
        answers.append(&mut led);
        let mut left = Vec::new();
        for p in polled {
            match p {
                Ok(a) => answers.push(a),
                Err(l) => left.push(l),
            }
        }
        if panic.is_some() {
            // Not computed again after a panic: the waiters of these keys take over.
            return (answers, panic);
        }
        let (mut rest, panic) = self.compute_and_store(left).await;
        answers.append(&mut rest);
        (answers, panic)
    }

    /// One read of the keys just locked: a fresh value found is this call's (and its
    /// lock released), unless it is the very value a fallback was picked to refresh.
    async fn reread<'f>(
        &self,
        mine: Vec<Lead<'f, C, T, A>>,
        answers: &mut Vec<(usize, Answer<T, E>)>,
    ) -> Vec<Lead<'f, C, T, A>> {
        let call = &self.many.call;
        let held: Vec<String> = mine
            .iter()
            .filter(|l| l.held.is_held())
            .map(|l| l.key.clone())
            .collect();
        if held.is_empty() || call.settings.refresh {
            return mine;
        }
        let keys: Vec<&str> = held.iter().map(String::as_str).collect();
        let read = call.backend().get_many(&keys);
        let Some(found) = call.guarded(Op::GetMany, "", read).await else {
            return mine;
        };
        let mut found: HashMap<String, _> = held.into_iter().zip(found).collect();
        let read_linger = later(call.options().store_timeout + LINGER_MARGIN);
        let mut left = Vec::new();
        for mut l in mine {
            let placed = match found.remove(&l.key).flatten() {
                Some(bytes) => call.place::<T>(&l.key, &bytes, false),
                None => Found::Miss,
            };
            let refreshing = |m: &Option<crate::envelope::Meta>| matches!((&l.fallback, m), (Some(f), Some(m)) if f.1.written_at == m.written_at);
            match placed {
                Found::Fresh(v, meta) if !refreshing(&meta) => {
                    l.held.release(call.options().store_timeout).await;
                    let led = Led {
                        coalesced: true,
                        ..Led::value(v, read_linger)
                    };
                    answers.push((l.slot, Answer::Out(led.land(l.guard), true)));
                }
                _ => left.push(l),
            }
        }
        left
    }

    /// One call of the compute for `leads`, each value written fenced by its lock
    /// (or, when the compute fails, each key's fail-safe value or the failure).
    async fn compute_and_store(&self, leads: Vec<Lead<'_, C, T, A>>) -> Answers<T, E> {
        let (call, round) = (&self.many.call, self.round);
        let mut answers = Vec::new();
        if leads.is_empty() {
            return (answers, None);
        }
        if round > 1 {
            tracing::debug!(
                keys = leads.len(),
                round,
                "computing the keys another caller's compute left"
            );
        }
        let clock = &call.cache.inner.clock;
        let started = clock.now_ms();
        let began = call.cache.inner.flights.mark();
        let timer = std::time::Instant::now();
        let mut asked = std::collections::HashSet::new();
        let wanted: Vec<A> = leads
            .iter()
            .filter(|l| asked.insert(&l.arg))
            .map(|l| l.arg.clone())
            .collect();
        let ran = call
            .run(async { self.compute.call(wanted).await }, false)
            .await;
        let took = Duration::from_millis(clock.now_ms().saturating_sub(started));
        call.observe()
            .computed(timer.elapsed(), !matches!(ran, Ran::Done(Ok(_))));
        let (failure, panic) = match ran {
            Ran::Done(Ok(values)) => {
                let values: HashMap<A, T> = values.into_iter().collect();
                let expiry = call.settings.expiry;
                let timeout = call.options().store_timeout;
                let stores = leads.into_iter().map(|mut l| {
                    // Cloned: two keys may share an argument.
                    let value = values.get(&l.arg).cloned();
                    async move {
                        let led = match value {
                            None => {
                                l.held.release(timeout).await;
                                // Nothing to hand over: a waiter computes its own.
                                drop(l.guard);
                                return (l.slot, Answer::Nothing);
                            }
                            Some(v) if l.guard.overtaken() => {
                                l.held.release(timeout).await;
                                Led::superseded(v, began)
                            }
                            Some(v) => {
                                let stored = (l.held, l.waited_out, took, began);
                                call.store(&l.key, v, expiry, stored).await
                            }
                        };
                        (l.slot, Answer::Out(led.land(l.guard), false))
                    }
                });
                answers.extend(in_order(stores.collect()).await);
                return (answers, None);
            }
            Ran::Done(Err(e)) => (Failure::Compute(Arc::new(e)), None),
            Ran::Hard(d) => (Failure::TimedOut(d), None),
            Ran::Soft => (Failure::TimedOut(Duration::ZERO), None),
            Ran::Panicked(payload) => (
                Failure::Panicked(panic_message(payload.as_ref())),
                Some(payload),
            ),
        };
        for mut l in leads {
            l.held.release(call.options().store_timeout).await;
            // A panic serves no fail-safe value (as in get-or-compute).
            let fallback = l.fallback.take().filter(|_| panic.is_none());
            let mut led = call.failed(&l.key, failure.clone(), None, fallback);
            if panic.is_some() {
                // Not kept for later callers, as a single compute's panic is not.
                led.linger = later(Duration::ZERO);
            }
            answers.push((l.slot, Answer::Out(led.land(l.guard), false)));
        }
        (answers, panic)
    }
}

/// Run `futs` in chunks of [`IN_FLIGHT`](super::IN_FLIGHT); their outputs in order.
/// (Futures made first, then awaited: an iterator of closures held across an await
/// would keep the batch's future from being `Send`.)
async fn in_order<F: Future>(futs: Vec<F>) -> Vec<F::Output> {
    let mut futs = futs.into_iter();
    let mut out = Vec::new();
    loop {
        let chunk: Vec<F> = futs.by_ref().take(super::IN_FLIGHT).collect();
        if chunk.is_empty() {
            return out;
        }
        out.extend(futures::future::join_all(chunk).await);
    }
}
