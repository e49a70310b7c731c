//! In-process single flight: callers asking for the same key wait for one leader.
//!
//! A flight's outcome stays readable for a while after it lands (its *linger*), for
//! callers that began their read before it landed: when the store is slow, their read
//! times out after the flight ended, and without this each would lead a new flight and
//! compute again. A leader whose write was not confirmed (the store failed or timed
//! out) lingers longer, until the value's freshness ends, for callers whose own read
//! failed too: while this process cannot reach the store it computes a key once per
//! flight window, not once per call. A caller whose read succeeded and found nothing
//! never takes a landed outcome that began before it (the store is the authority
//! then), and this process's own writes, deletes and clears drop what they touch.
//!
//! A refresh (`refresh(true)`: compute and overwrite) never takes a value computed
//! before it was called: it follows (or takes the landed outcome of) only a refresh
//! flight that took off after it, and waits out any other flight of its key, then
//! leads or follows a new one.

use parking_lot::Mutex;
use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use tokio::sync::watch;
use tokio::time::Instant;

/// What a leader hands its followers: the type-erased outcome, or `None` when the
/// leader went away (future dropped, compute panicked) and a follower must take over.
pub(crate) type Outcome = Option<Arc<dyn Any + Send + Sync>>;

type Slot = watch::Sender<Option<Outcome>>;

/// A key's flight: in the air, or landed and still readable.
enum Entry {
    /// In the air; the flag is set when this process writes, deletes or clears the
    /// key meanwhile (the leader's write is then skipped: that write wins).
    Flying(Arc<Slot>, Arc<AtomicBool>, Takeoff),
    Landed {
        /// The landing's number (see [`Flights::mark`]).
        at: u64,
        until: Instant,
        /// Also for callers whose read failed, whenever they began (the leader's write
        /// was not confirmed).
        open: bool,
        /// The flight's take-off: a refresh called before it takes its outcome.
        takeoff: Takeoff,
        outcome: Arc<dyn Any + Send + Sync>,
    },
}

/// When a flight took off (a number of [`Flights::starts`]) and whether it computes
/// whatever the store holds (a refresh).
#[derive(Clone, Copy)]
struct Takeoff {
    at: u64,
    refresh: bool,
}

/// Landed outcomes kept at most; past half of it the expired go, and if many are
/// still live, all (only deduplication is lost, never a value).
const MAX_LANDED: usize = 10_000;

/// Flights by the outcome's type, then by key: callers asking one key for two
/// different types never share a leader.
#[derive(Default)]
pub(crate) struct Flights {
    map: Mutex<Map>,
    /// Landings so far: a caller notes it before its read ([`Flights::mark`]) and
    /// takes a landed outcome only if it landed later (a number, not a clock: exact,
    /// and one atomic load on the hit path).
    landings: AtomicU64,
    /// Take-offs and refresh calls so far, in one order: a refresh follows only a
    /// flight numbered after it.
    starts: AtomicU64,
}

#[derive(Default)]
struct Map {
    by_type: HashMap<TypeId, HashMap<String, Entry>>,
    landed: usize,
}

pub(crate) enum Role<'a> {
    Leader(LeaderGuard<'a>),
    Follower(watch::Receiver<Option<Outcome>>),
    /// A flight that landed after the caller began: its outcome.
    Landed(Arc<dyn Any + Send + Sync>),
    /// A refresh found a flight that may have computed before it was called: wait
    /// for it to land, ignore its outcome and join again.
    Busy(watch::Receiver<Option<Outcome>>),
}

impl Flights {
    /// The mark to take before a read: outcomes landed after it are the caller's too.
    #[inline]
    pub(crate) fn mark(&self) -> u64 {
        self.landings.load(Ordering::Acquire)
    }

    /// Become the leader for `key` and outcome type `ty`, follow the current one, or
    /// take the outcome of one that landed after `since` (a [`mark`](Self::mark)), or
    /// of an open one when the caller's read failed. A refresh called at `refresh` (a
    /// [`refresh_mark`](Self::refresh_mark)) follows or takes the outcome of only a
    /// refresh flight that took off after it, and waits out any other flight.
    pub(crate) fn join(
        &self,
        ty: TypeId,
        key: &str,
        since: u64,
        read_failed: bool,
        refresh: Option<u64>,
    ) -> Role<'_> {
        let mut map = self.map.lock();
        let now = Instant::now();
        let Map { by_type, landed } = &mut *map;
        let by_key = by_type.entry(ty).or_default();
        match (by_key.get(key), refresh) {
            (Some(Entry::Flying(slot, _, t)), Some(after)) if !(t.refresh && t.at > after) => {
                return Role::Busy(slot.subscribe())
            }
            (Some(Entry::Flying(slot, ..)), _) => return Role::Follower(slot.subscribe()),
            (
                Some(Entry::Landed {
                    until,
                    takeoff,
                    outcome,
                    ..
                }),
                Some(after),
            ) if now < *until && takeoff.refresh && takeoff.at > after => {
                return Role::Landed(outcome.clone());
            }
            (
                Some(Entry::Landed {
                    at,
                    until,
                    open,
                    outcome,
                    ..
                }),
                None,
            ) if now < *until && (*at > since || (*open && read_failed)) => {
                return Role::Landed(outcome.clone());
            }
            (Some(Entry::Landed { .. }), _) => *landed -= 1,
            (None, _) => {}
        }
        self.take_off(by_key, ty, key, refresh.is_some())
    }

    /// The mark a refresh takes when it is called (see [`Flights::join`]).
    pub(crate) fn refresh_mark(&self) -> u64 {
        self.starts.fetch_add(1, Ordering::AcqRel)
    }

    fn take_off<'f>(
        &'f self,
        by_key: &mut HashMap<String, Entry>,
        ty: TypeId,
        key: &str,
        refresh: bool,
    ) -> Role<'f> {
        let slot = Arc::new(watch::Sender::new(None));
        let overtaken = Arc::new(AtomicBool::new(false));
        let at = self.starts.fetch_add(1, Ordering::AcqRel);
        let takeoff = Takeoff { at, refresh };
        by_key.insert(
            key.to_owned(),
            Entry::Flying(slot.clone(), overtaken.clone(), takeoff),
        );
        Role::Leader(LeaderGuard {
            flights: self,
            ty,
            key: key.to_owned(),
            slot,
            overtaken,
            finished: false,
        })
    }

    /// `key` was written or deleted by this process: drop its landed outcomes and
    /// mark its flights in the air as overtaken (of every type).
    pub(crate) fn forget(&self, key: &str) {
        let mut map = self.map.lock();
        let mut dropped = 0;
        for by_key in map.by_type.values_mut() {
            match by_key.get(key) {
                Some(Entry::Landed { .. }) => {
                    by_key.remove(key);
                    dropped += 1;
                }
                Some(Entry::Flying(_, overtaken, _)) => overtaken.store(true, Ordering::Release),
                None => {}
            }
        }
        map.landed -= dropped;
    }

    /// The namespace was cleared: drop every landed outcome, overtake every flight.
    pub(crate) fn forget_all(&self) {
        let mut map = self.map.lock();
        for by_key in map.by_type.values_mut() {
            by_key.retain(|_, e| match e {
                Entry::Flying(_, overtaken, _) => {
                    overtaken.store(true, Ordering::Release);
                    true
                }
                Entry::Landed { .. } => false,
            });
        }
        map.landed = 0;
    }

    #[cfg(test)]
    pub(crate) fn in_flight(&self) -> usize {
        self.map
            .lock()
            .by_type
            .values()
            .flat_map(HashMap::values)
            .filter(|e| matches!(e, Entry::Flying(..)))
            .count()
    }
}

impl Map {
    /// Drop landed outcomes past their linger; if still too many, all of them.
    fn sweep(&mut self, now: Instant) {
        for by_key in self.by_type.values_mut() {
            by_key.retain(|_, e| !matches!(e, Entry::Landed { until, .. } if *until <= now));
        }
        if self.count_landed() > MAX_LANDED {
            for by_key in self.by_type.values_mut() {
                by_key.retain(|_, e| matches!(e, Entry::Flying(..)));
            }
        }
        self.landed = self.count_landed();
    }
    fn count_landed(&self) -> usize {
        self.by_type
            .values()
            .flat_map(HashMap::values)
            .filter(|e| matches!(e, Entry::Landed { .. }))
            .count()
    }
}

/// Wait for the leader's outcome; `None` when it went away without one.
pub(crate) async fn follow(mut rx: watch::Receiver<Option<Outcome>>) -> Outcome {
    match rx.wait_for(Option::is_some).await {
        Ok(v) => v.clone().flatten(),
        Err(_) => None,
    }
}

/// Held by the leader. Finishing it wakes every follower with the outcome;
/// dropping it unfinished (cancellation, panic) wakes them to take over.
pub(crate) struct LeaderGuard<'a> {
    flights: &'a Flights,
    ty: TypeId,
    key: String,
    slot: Arc<Slot>,
    overtaken: Arc<AtomicBool>,
    finished: bool,
}

impl LeaderGuard<'_> {
    /// Whether this process wrote, deleted or cleared the key since the flight took
    /// off: its result is then returned but neither stored nor kept.
    pub(crate) fn overtaken(&self) -> bool {
        self.overtaken.load(Ordering::Acquire)
    }

    /// Land with `outcome`, readable until `linger` by callers that began before now,
    /// and when `open` by callers whose read failed (see the module docs).
    pub(crate) fn finish(
        mut self,
        outcome: Arc<dyn Any + Send + Sync>,
        linger: Instant,
        open: bool,
    ) {
        self.publish(Some(outcome), linger, open);
    }

    /// Land with an outcome that followers take only if it began after them (see
    /// `compute/lead.rs`), kept for nobody else; counts as a landing, so that a flight
    /// that takes off after this one began after every caller waiting on it.
    pub(crate) fn supersede(mut self, outcome: Arc<dyn Any + Send + Sync>) {
        self.flights.landings.fetch_add(1, Ordering::AcqRel);
        self.publish(Some(outcome), Instant::now(), false);
    }

    fn publish(&mut self, outcome: Outcome, linger: Instant, open: bool) {
        self.finished = true;
        {
            let mut guard = self.flights.map.lock();
            let map = &mut *guard;
            let now = Instant::now();
            if let Some(by_key) = map.by_type.get_mut(&self.ty) {
                let mine = match by_key.get(&self.key) {
                    Some(Entry::Flying(s, _, t)) if Arc::ptr_eq(s, &self.slot) => Some(*t),
                    _ => None,
                };
                if let Some(takeoff) = mine {
                    match &outcome {
                        Some(o) if linger > now && !self.overtaken() => {
                            let at = self.flights.landings.fetch_add(1, Ordering::AcqRel) + 1;
                            let landed = Entry::Landed {
                                at,
                                until: linger,
                                open,
                                takeoff,
                                outcome: o.clone(),
                            };
                            by_key.insert(self.key.clone(), landed);
                            map.landed += 1;
                        }
                        _ => {
                            by_key.remove(&self.key);
                        }
                    }
                }
            }
            if map.landed > MAX_LANDED / 2 {
                map.sweep(now);
                if map.landed > MAX_LANDED / 4 {
                    // Still many live: drop them all, so sweeps stay rare.
                    for by_key in map.by_type.values_mut() {
                        by_key.retain(|_, e| matches!(e, Entry::Flying(..)));
                    }
                    map.landed = 0;
                }
            }
        }
        self.slot.send_replace(Some(outcome));
    }
}

impl Drop for LeaderGuard<'_> {
    fn drop(&mut self) {
        if !self.finished {
            self.publish(None, Instant::now(), false);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn followers_get_the_outcome_and_abandon_wakes_them() {
        let f = Flights::default();
        let t = TypeId::of::<u32>();
        let now = || f.mark();
        let before = now();
        let Role::Leader(g) = f.join(t, "k", now(), false, None) else {
            panic!("first caller leads")
        };
        let Role::Follower(rx) = f.join(t, "k", now(), false, None) else {
            panic!("second follows")
        };
        let Role::Leader(other) = f.join(TypeId::of::<String>(), "k", now(), false, None) else {
            panic!("another type leads its own flight")
        };
        drop(other);
        g.finish(
            Arc::new(5u32),
            Instant::now() + std::time::Duration::from_secs(60),
            false,
        );
        let out = follow(rx).await.unwrap();
        assert_eq!(out.downcast_ref::<u32>(), Some(&5));
        assert_eq!(f.in_flight(), 0);
        // A caller that began before the landing takes its outcome; a later one leads.
        let Role::Landed(out) = f.join(t, "k", before, false, None) else {
            panic!("began before it landed")
        };
        assert_eq!(out.downcast_ref::<u32>(), Some(&5));
        let Role::Leader(g) = f.join(t, "k", now(), false, None) else {
            panic!()
        };
        let Role::Follower(rx) = f.join(t, "k", now(), false, None) else {
            panic!()
        };
        drop(g);
        assert!(follow(rx).await.is_none());
        assert_eq!(f.in_flight(), 0);
    }
}
