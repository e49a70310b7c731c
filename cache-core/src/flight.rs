//! In-process single flight: callers asking for the same key wait for one leader.

use parking_lot::Mutex;
use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::watch;

/// What a leader hands its followers: the type-erased outcome, or `None` when the
/// leader went away (future dropped, compute panicked) and a follower must take over.
pub(crate) type Outcome = Option<Arc<dyn Any + Send + Sync>>;

type Slot = watch::Sender<Option<Outcome>>;

/// Flights by the outcome's type, then by key: callers asking one key for two
/// different types never share a leader.
#[derive(Default)]
pub(crate) struct Flights {
    map: Mutex<HashMap<TypeId, HashMap<String, Arc<Slot>>>>,
}

pub(crate) enum Role<'a> {
    Leader(LeaderGuard<'a>),
    Follower(watch::Receiver<Option<Outcome>>),
}

impl Flights {
    /// Become the leader for `key` and outcome type `ty`, or follow the current one.
    pub(crate) fn join(&self, ty: TypeId, key: &str) -> Role<'_> {
        let mut map = self.map.lock();
        let by_key = map.entry(ty).or_default();
        if let Some(slot) = by_key.get(key) {
            return Role::Follower(slot.subscribe());
        }
        let slot = Arc::new(watch::Sender::new(None));
        by_key.insert(key.to_owned(), slot.clone());
        Role::Leader(LeaderGuard {
            flights: self,
            ty,
            key: key.to_owned(),
            slot,
            finished: false,
        })
    }

    #[cfg(test)]
    pub(crate) fn in_flight(&self) -> usize {
        self.map.lock().values().map(HashMap::len).sum()
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
    finished: bool,
}

impl LeaderGuard<'_> {
    pub(crate) fn finish(mut self, outcome: Arc<dyn Any + Send + Sync>) {
        self.publish(Some(outcome));
    }

    fn publish(&mut self, outcome: Outcome) {
        self.finished = true;
        {
            let mut map = self.flights.map.lock();
            if let Some(by_key) = map.get_mut(&self.ty) {
                if by_key
                    .get(&self.key)
                    .is_some_and(|s| Arc::ptr_eq(s, &self.slot))
                {
                    by_key.remove(&self.key);
                }
            }
        }
        self.slot.send_replace(Some(outcome));
    }
}

impl Drop for LeaderGuard<'_> {
    fn drop(&mut self) {
        if !self.finished {
            self.publish(None);
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
        let Role::Leader(g) = f.join(t, "k") else {
            panic!("first caller leads")
        };
        let Role::Follower(rx) = f.join(t, "k") else {
            panic!("second follows")
        };
        let Role::Leader(other) = f.join(TypeId::of::<String>(), "k") else {
            panic!("another type leads its own flight")
        };
        drop(other);
        g.finish(Arc::new(5u32));
        let out = follow(rx).await.unwrap();
        assert_eq!(out.downcast_ref::<u32>(), Some(&5));
        assert_eq!(f.in_flight(), 0);

        let Role::Leader(g) = f.join(t, "k") else {
            panic!()
        };
        let Role::Follower(rx) = f.join(t, "k") else {
            panic!()
        };
        drop(g);
        assert!(follow(rx).await.is_none());
        assert_eq!(f.in_flight(), 0);
    }
}
