//! Batch get-or-compute: many keys, one read, one compute of the misses; each key
//! keeps get-or-compute's rules (single flight, lock, fenced write, fail-safe).

mod lead;

use super::call::ComputeCall;
use super::error::{ComputeError, Outcome};
use super::landing::{downcast, received};
use super::lock::LockHold;
use super::lookup::Found;
use super::options::call_setters;
use super::{Cacheable, IntoKey};
use crate::cache::Cache;
use crate::codec::Codec;
use crate::envelope::Meta;
use crate::flight::{follow, LeaderGuard, Role};
use crate::observe::{in_span, Op};
use crate::CacheBackend;
use std::any::TypeId;
use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// A batch get-or-compute call with its options; made by [`Cache::cached_many`].
///
/// 1. Every key is checked first (namespace and key as in
///    [`get_or_compute`](ComputeCall::get_or_compute)); a bad one fails the call
///    before any store call. A key asked twice is read and computed once, with the
///    argument given first.
/// 2. One read of every key (the store's native batch read); fresh values are
///    returned as they are.
/// 3. The others join this process's single flight per key, shared with single
///    get-or-compute calls and other batches: a key another caller computes is
///    waited for (beside this batch's own compute, never before it).
/// 4. With stampede protection, this batch's keys are locked (one try each), the
///    locked ones re-read at once, and computed by **one** call of the compute with
///    their arguments in request order (an argument shared by two keys once). Each
///    value is written fenced by its lock, as get-or-compute writes one. A key whose
///    lock another process holds is polled for that process's value beside the
///    compute, up to `lock_wait`; if the holder leaves without one, the key gets a
///    second call of the compute (after `lock_wait`, its value is returned unstored).
/// 5. A key the compute returns no value for is `None` in the result, and not
///    cached; of pairs the compute returns twice for one argument the last counts,
///    and pairs for arguments not asked for are ignored. A failed compute fails the
///    call, but for keys with a stale or kept value to serve (fail-safe); a panic
///    reaches the caller.
///
/// The compute is also called again, for the keys left, when another caller's compute
/// of a key went away without an answer for this batch (dropped, or written over
/// while computed): rare, and never for a key already answered. `soft_timeout` plays
/// no part in a batch (`hard_timeout` does). Lock and write calls run 32 at a time
/// at most; each is one store call per key for now (a native batch lock and fenced
/// write per store is to come).
#[must_use = "call .get_or_compute_many(...) to run it"]
pub struct ComputeMany<'a, C: Codec, A> {
    call: ComputeCall<'a, C>,
    items: Vec<(crate::Result<String>, A)>,
}

impl<C: Codec> Cache<C> {
    /// Start a batch get-or-compute: `items` pairs each key with the argument the
    /// compute gets for it (an id, a row's key, ...). See [`ComputeMany`].
    ///
    /// ```
    /// # async fn demo(cache: cache_core::Cache) {
    /// use cache_core::KeyBuilder;
    /// use std::time::Duration;
    /// let ids = [3u64, 1, 3, 7];
    /// let names: Vec<Option<String>> = cache
    ///     .cached_many(ids.iter().map(|id| (KeyBuilder::new("user").arg(id), *id)))
    ///     .namespace("users")
    ///     .expiry(Duration::from_secs(60))
    ///     .get_or_compute_many(|missing: Vec<u64>| async move {
    ///         // One query for every id not cached, e.g. `WHERE id = ANY($1)`.
    ///         Ok::<_, std::io::Error>(missing.into_iter().map(|id| (id, format!("user {id}"))))
    ///     })
    ///     .await
    ///     .unwrap();
    /// assert_eq!(names[0].as_deref(), Some("user 3"));
    /// # }
    /// ```
    pub fn cached_many<K: IntoKey, A>(
        &self,
        items: impl IntoIterator<Item = (K, A)>,
    ) -> ComputeMany<'_, C, A> {
        ComputeMany {
            call: self.cached(""),
            items: items.into_iter().map(|(k, a)| (k.into_key(), a)).collect(),
        }
    }
}

/// One key of the batch, once: its stored key, argument and what is known of it.
struct Slot<T, E, A> {
    key: String,
    arg: A,
    /// Stale or kept: served if the compute fails.
    fallback: Option<(T, Meta)>,
    answer: Option<Answer<T, E>>,
    missed: bool,
}

enum Answer<T, E> {
    /// The value, or the failure, this call returns for the key.
    Out(Outcome<T, E>, bool),
    /// The compute returned nothing for it: `None`, not cached.
    Nothing,
}

/// A key this batch leads, with its lock.
struct Lead<'f, C: Codec, T, A> {
    slot: usize,
    key: String,
    arg: A,
    fallback: Option<(T, Meta)>,
    guard: LeaderGuard<'f>,
    held: LockHold<C>,
    waited_out: bool,
}

/// A batch's compute: the arguments of the keys to compute in, `(argument, value)`
/// pairs out (the bounds of [`ComputeMany::get_or_compute_many`], named once).
pub(super) trait BatchFn<A, T, E> {
    type Fut: Future<Output = std::result::Result<Self::Values, E>>;
    type Values: IntoIterator<Item = (A, T)>;
    fn call(&self, args: Vec<A>) -> Self::Fut;
}

impl<A, T, E, F, Fut, I> BatchFn<A, T, E> for F
where
    F: Fn(Vec<A>) -> Fut,
    Fut: Future<Output = std::result::Result<I, E>>,
    I: IntoIterator<Item = (A, T)>,
{
    type Fut = Fut;
    type Values = I;
    fn call(&self, args: Vec<A>) -> Fut {
        self(args)
    }
}

impl<'f, C: Codec, T, A> Lead<'f, C, T, A> {
    fn new(
        (slot, key, arg, fallback, guard): Led0<'f, T, A>,
        held: LockHold<C>,
        waited_out: bool,
    ) -> Self {
        Lead {
            slot,
            key,
            arg,
            fallback,
            guard,
            held,
            waited_out,
        }
    }
}

/// The most store calls (locks, writes) a batch has under way at once: a large batch
/// must not take every connection of a pool.
pub(super) const IN_FLIGHT: usize = 32;

/// A key this batch leads, before its lock.
type Led0<'f, T, A> = (usize, String, A, Option<(T, Meta)>, LeaderGuard<'f>);

impl<'a, C: Codec, A> ComputeMany<'a, C, A> {
    call_setters!(call);

    /// Look up every key; compute the missing ones with one call of `compute`, which
    /// gets their arguments and returns `(argument, value)` pairs; store them and
    /// return a value (or `None`: see [`ComputeMany`]) for each key, in order.
    pub async fn get_or_compute_many<T, E, F, Fut, I>(
        mut self,
        compute: F,
    ) -> Result<Vec<Option<T>>, ComputeError<E>>
    where
        T: Cacheable,
        E: Send + Sync + 'static,
        A: Eq + Hash + Clone,
        F: Fn(Vec<A>) -> Fut,
        Fut: Future<Output = std::result::Result<I, E>>,
        I: IntoIterator<Item = (A, T)>,
    {
        let (slots, order) = self.slots()?;
        let mut slots: Vec<Slot<T, E, A>> = slots;
        if self.call.skip {
            let args = slots.iter().map(|s| s.arg.clone()).collect();
            let found = run_compute(&compute, args).await?;
            return Ok(order
                .iter()
                .map(|&i| found.get(&slots[i].arg).cloned())
                .collect());
        }
        self.call.scope = self
            .call
            .cache
            .inner
            .observe
            .scope(self.call.namespace.as_deref());
        let span = self.call.observe().span(Op::GetOrCompute, "");
        let body = async {
            let flights = &self.call.cache.inner.flights;
            let since = flights.mark();
            let refresh = self.call.settings.refresh.then(|| flights.refresh_mark());
            self.read(&mut slots).await;
            let mut rounds = 0;
            while slots.iter().any(|s| s.answer.is_none()) {
                rounds += 1;
                if let Some(payload) = self
                    .round(&mut slots, &compute, rounds, since, refresh)
                    .await
                {
                    std::panic::resume_unwind(payload);
                }
            }
            let call = &self.call;
            for s in &slots {
                if s.missed {
                    let coalesced = matches!(s.answer, Some(Answer::Out(_, true)));
                    call.settle(true, coalesced);
                }
            }
            let mut out = Vec::with_capacity(order.len());
            for i in order {
                out.push(match &slots[i].answer {
                    Some(Answer::Out(Ok(v), _)) => Some(v.clone()),
                    Some(Answer::Out(Err(f), _)) => return Err(f.clone().into()),
                    Some(Answer::Nothing) | None => None,
                });
            }
            Ok(out)
        };
        in_span(span, body).await
    }

    /// Every key checked before any store call, and a key asked twice made one slot
    /// (with the argument given first): the slots, and each position's slot.
    #[allow(clippy::type_complexity)]
    fn slots<T, E>(&mut self) -> crate::Result<(Vec<Slot<T, E, A>>, Vec<usize>)> {
        let n = self.items.len();
        let mut keys = Vec::with_capacity(n);
        let mut args = Vec::with_capacity(n);
        for (key, arg) in std::mem::take(&mut self.items) {
            self.call.key = key;
            keys.push(self.call.full_key()?);
            args.push(Some(arg));
        }
        let mut index = hashbrown::HashMap::with_capacity(n);
        let (mut order, mut first) = (Vec::with_capacity(n), Vec::with_capacity(n));
        for (i, key) in keys.iter().enumerate() {
            let next = first.len();
            let at = *index.entry(key.as_str()).or_insert(next);
            if at == next {
                first.push(i);
            }
            order.push(at);
        }
        drop(index);
        let mut keys: Vec<Option<String>> = keys.into_iter().map(Some).collect();
        let slots = first
            .into_iter()
            .map(|i| Slot {
                key: keys[i].take().unwrap_or_default(),
                arg: args[i].take().expect("one slot per first position"),
                fallback: None,
                answer: None,
                missed: false,
            })
            .collect();
        Ok((slots, order))
    }

    /// One native read of every slot (none on a refresh): fresh values answer.
    async fn read<T: Cacheable, E>(&self, slots: &mut [Slot<T, E, A>]) {
        if self.call.settings.refresh {
            return;
        }
        let call = &self.call;
        let keys: Vec<&str> = slots.iter().map(|s| s.key.as_str()).collect();
        let read = call.backend().get_many(&keys);
        let found = call.guarded(Op::GetMany, "", read).await;
        let now = call.cache.inner.clock.now_ms();
        let mut hits = 0;
        for (i, slot) in slots.iter_mut().enumerate() {
            let bytes = found
                .as_ref()
                .and_then(|f| f.get(i))
                .and_then(Option::as_ref);
            let placed = match bytes {
                Some(b) => call.place_at::<T>(&slot.key, b, true, || now),
                None => Found::Miss,
            };
            match placed {
                Found::Fresh(v, _) => {
                    hits += 1;
                    slot.answer = Some(Answer::Out(Ok(v), false));
                }
                // After a fail-safe answer, not computed again within the throttle.
                Found::Stale(v, _) | Found::Kept(v, _) if call.cache.throttled(&slot.key) => {
                    slot.missed = true;
                    call.observe().stale_served();
                    slot.answer = Some(Answer::Out(Ok(v), false));
                }
                Found::Stale(v, m) | Found::Kept(v, m) => {
                    slot.missed = true;
                    slot.fallback = Some((v, m));
                }
                Found::Miss => slot.missed = true,
            }
        }
        if hits > 0 {
            call.observe().reads(hits, 0);
        }
    }

    /// Answer the slots left: follow the flights of other callers, lead the others
    /// (lock, one compute, fenced writes). `Some`: the compute panicked.
    async fn round<T, E, F: BatchFn<A, T, E>>(
        &self,
        slots: &mut [Slot<T, E, A>],
        compute: &F,
        round: usize,
        since: u64,
        refresh: Option<u64>,
    ) -> Option<Box<dyn std::any::Any + Send>>
    where
        T: Cacheable,
        E: Send + Sync + 'static,
        A: Eq + Hash + Clone,
    {
        let call = &self.call;
        let flights = &call.cache.inner.flights;
        let ty = TypeId::of::<Outcome<T, E>>();
        let read_failed = call.degraded.load(Ordering::Relaxed);
        let (mut leads, mut follows, mut waits) = (Vec::new(), Vec::new(), Vec::new());
        for (i, slot) in slots.iter_mut().enumerate() {
            if slot.answer.is_some() {
                continue;
            }
            match flights.join(ty, &slot.key, since, read_failed, refresh) {
                Role::Landed(out) => {
                    if let Some(out) = downcast::<T, E>(Some(out)) {
                        let out = call.or_own(out, slot.fallback.take());
                        slot.answer = Some(Answer::Out(out, true));
                    }
                }
                Role::Follower(rx) => follows.push((i, rx)),
                // A refresh waits out a flight that may have computed before it,
                // then looks again next round.
                Role::Busy(rx) => waits.push(rx),
                Role::Leader(guard) => {
                    let (key, arg) = (slot.key.clone(), slot.arg.clone());
                    leads.push((i, key, arg, slot.fallback.take(), guard));
                }
            }
        }
        let leader = lead::Leader {
            many: self,
            compute,
            round,
            answers: std::marker::PhantomData,
        };
        let led = leader.lead_all(leads);
        let followed = futures::future::join_all(
            follows
                .into_iter()
                .map(|(i, rx)| async move { (i, received::<T, E>(follow(rx).await, since)) }),
        );
        let waited = futures::future::join_all(waits.into_iter().map(follow));
        let ((answers, panic), followed, _) = futures::join!(led, followed, waited);
        for (i, answer) in answers {
            slots[i].answer = Some(answer);
        }
        for (i, out) in followed {
            // `None`: the leader went away, or its value may be older than this
            // call: the key stays for the next round.
            if let Some(out) = out {
                let out = call.or_own(out, slots[i].fallback.take());
                slots[i].answer = Some(Answer::Out(out, true));
            }
        }
        panic
    }
}

/// The compute, for a skipped batch: its error as every key would get it.
async fn run_compute<A, T, E, F: BatchFn<A, T, E>>(
    compute: &F,
    args: Vec<A>,
) -> Result<HashMap<A, T>, ComputeError<E>>
where
    A: Eq + Hash,
{
    match compute.call(args).await {
        Ok(values) => Ok(values.into_iter().collect()),
        Err(e) => Err(ComputeError::Compute(Arc::new(e))),
    }
}
