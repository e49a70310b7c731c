//! What a flight's leader hands to its followers, and how long it stays readable in
//! process (see [`crate::flight`]).

use super::error::Outcome;
use crate::expiry::Expiry;
use crate::flight::LeaderGuard;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// What a leader ends with: the outcome for every waiter, how long it stays readable
/// in process (see [`crate::flight`]), and a panic to resume in the leader's caller.
pub(super) struct Led<T, E> {
    pub(super) out: Outcome<T, E>,
    pub(super) linger: Instant,
    pub(super) open: bool,
    pub(super) panic: Option<Box<dyn std::any::Any + Send>>,
    /// The value may be older than a write made while it was computed: the leader's
    /// own caller (who asked before that write) gets it; followers who asked before
    /// the compute began ([`Flights::mark`](crate::flight::Flights::mark) taken then)
    /// get it too, the others (who may have asked after the write) look again.
    pub(super) superseded: Option<u64>,
    /// What followers get when it differs from `out`.
    pub(super) shared: Option<Outcome<T, E>>,
    /// The value is another caller's: another process's lock holder wrote it.
    pub(super) coalesced: bool,
}

impl<T, E> Led<T, E> {
    pub(super) fn value(v: T, linger: Instant) -> Self {
        Led {
            out: Ok(v),
            linger,
            open: false,
            panic: None,
            superseded: None,
            shared: None,
            coalesced: false,
        }
    }
    pub(super) fn failed(out: Outcome<T, E>, panic: Option<Box<dyn std::any::Any + Send>>) -> Self {
        Led {
            out,
            linger: Instant::now(),
            open: false,
            panic,
            superseded: None,
            shared: None,
            coalesced: false,
        }
    }
    pub(super) fn superseded(v: T, began: u64) -> Self {
        Led {
            superseded: Some(began),
            ..Led::failed(Ok(v), None)
        }
    }
}

impl<T: Clone + Send + Sync + 'static, E: Send + Sync + 'static> Led<T, E> {
    /// Hand the outcome to the flight's followers; the leader's own caller gets it
    /// too, or the compute's panic.
    pub(super) fn land(self, guard: LeaderGuard<'_>) -> Outcome<T, E> {
        if let Some(began) = self.superseded {
            guard.supersede(Arc::new(Later {
                began,
                out: self.out.clone(),
            }));
        } else {
            let shared = self.shared.unwrap_or_else(|| self.out.clone());
            guard.finish(Arc::new(shared), self.linger, self.open);
        }
        if let Some(payload) = self.panic {
            std::panic::resume_unwind(payload);
        }
        self.out
    }
}

/// `d` from now, saturating far in the future (a `Duration::MAX` timeout must not
/// overflow the clock).
pub(super) fn later(d: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(d)
        .unwrap_or_else(|| now + Duration::from_secs(100 * 365 * 86_400))
}

/// Added to the call timeout for how long a landed flight stays readable.
pub(super) const LINGER_MARGIN: Duration = Duration::from_millis(50);

/// How long an outcome that could not be stored stays readable in process for
/// callers that cannot read the store either: the value's freshness, at most a
/// minute.
pub(super) fn unconfirmed_linger(expiry: Expiry) -> Duration {
    const MOST: Duration = Duration::from_secs(60);
    match expiry.ttl() {
        crate::expiry::Ttl::For(d) => d.min(MOST),
        crate::expiry::Ttl::Forever => MOST,
        crate::expiry::Ttl::Expired => Duration::ZERO,
    }
}

/// The text of a panic's payload.
pub(super) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_owned())
}

/// A superseded flight's outcome (see [`Led::superseded`]): followers take it only if
/// its compute began after they asked.
pub(super) struct Later<T, E> {
    pub(super) began: u64,
    pub(super) out: Outcome<T, E>,
}

/// A leader's outcome as a follower that asked at `since` (a [`Flights::mark`])
/// receives it; `None` if the leader went away, or if its value was superseded and
/// its compute began before this follower asked.
///
/// [`Flights::mark`]: crate::flight::Flights::mark
pub(super) fn received<T: Clone + 'static, E: 'static>(
    outcome: Option<Arc<dyn std::any::Any + Send + Sync>>,
    since: u64,
) -> Option<Outcome<T, E>> {
    let outcome = outcome?;
    if let Some(later) = outcome.downcast_ref::<Later<T, E>>() {
        return (later.began > since).then(|| later.out.clone());
    }
    outcome.downcast_ref::<Outcome<T, E>>().cloned()
}

/// A leader's outcome as a follower receives it; `None` if the leader went away.
pub(super) fn downcast<T: Clone + 'static, E: 'static>(
    outcome: Option<Arc<dyn std::any::Any + Send + Sync>>,
) -> Option<Outcome<T, E>> {
    outcome?.downcast_ref::<Outcome<T, E>>().cloned()
}
