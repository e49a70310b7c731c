//! Single flight for the layer: concurrent misses of one URL (in this process) send one
//! request to the service; the others wait and take its response if it may serve them.

use crate::stored::Stored;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::watch;

/// How a flight ended, as its followers see it.
#[derive(Clone)]
pub(crate) enum Landed {
    /// A stored (or freshened, or kept-on-error) response: a follower serves it if it
    /// was made for a request like its own.
    Response(Arc<Stored>),
    /// Not shareable (not storable, too long, or a store that refused it): each
    /// follower asks the service itself.
    Alone,
}

type Slot = watch::Sender<Option<Landed>>;

/// The flights in progress, by key.
#[derive(Default)]
pub(crate) struct Flights {
    map: Mutex<HashMap<String, Arc<Slot>>>,
}

/// A caller's part in a flight.
pub(crate) enum Role {
    Leader(Lead),
    Follower(watch::Receiver<Option<Landed>>),
}

/// The leader's hold on a flight: [`Lead::land`] tells the followers; dropped without
/// it (cancelled, or panicked), the followers are woken to try again.
pub(crate) struct Lead {
    flights: Arc<Flights>,
    key: String,
    slot: Arc<Slot>,
}

impl Flights {
    pub fn join(self: &Arc<Self>, key: &str) -> Role {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(slot) = map.get(key) {
            return Role::Follower(slot.subscribe());
        }
        let slot = Arc::new(watch::channel(None).0);
        map.insert(key.to_owned(), slot.clone());
        Role::Leader(Lead {
            flights: self.clone(),
            key: key.to_owned(),
            slot,
        })
    }
}

impl Lead {
    pub fn land(self, landed: Landed) {
        self.slot.send_replace(Some(landed));
    }
}

impl Drop for Lead {
    fn drop(&mut self) {
        let mut map = self.flights.map.lock().unwrap_or_else(|p| p.into_inner());
        if map
            .get(&self.key)
            .is_some_and(|s| Arc::ptr_eq(s, &self.slot))
        {
            map.remove(&self.key);
        }
        // Dropping the last sender wakes the followers with no value: they retry.
    }
}

/// Wait for the flight: `None` if its leader went away without landing.
pub(crate) async fn follow(mut rx: watch::Receiver<Option<Landed>>) -> Option<Landed> {
    match rx.wait_for(Option::is_some).await {
        Ok(v) => v.clone(),
        Err(_) => None,
    }
}
