//! The leader's lock: taking it (or waiting for another holder's value), and holding
//! it until the fenced write, an explicit release, or the leader's drop releases it.

use super::call::ComputeCall;
use super::landing::later;
use crate::backend::LockToken;
use crate::cache::Cache;
use crate::codec::Codec;
use crate::envelope::Meta;
use crate::observe::Op;
use serde::de::DeserializeOwned;
use std::time::Duration;
use tokio::time::Instant;

/// How the lock step ended.
pub(super) enum Locked<T, C: Codec> {
    /// Compute: with the lock (`held`), or without it (stampede protection off, the
    /// store not answering, or `waited_out`: another holder outlasted the wait).
    Compute { held: LockHold<C>, waited_out: bool },
    /// A fresh value was there, or appeared while another process held the lock.
    Found(T),
}

impl<C: Codec> ComputeCall<'_, C> {
    /// One try of the store's lock on `key`: `None` while another process holds it;
    /// a hold of nothing without stampede protection, or when the store did not
    /// answer (the value is then computed without the lock, as by [`lock`](Self::lock)).
    pub(super) async fn try_lock(&self, key: &str) -> Option<LockHold<C>> {
        let o = self.options();
        if !o.stampede_protection {
            return Some(LockHold::default());
        }
        let acquire = self.backend().acquire_lock_valid(key, o.lock_ttl);
        match self.guarded(Op::AcquireLock, key, acquire).await {
            Some(Some(token)) => Some(LockHold::new(self.cache, key, token)),
            Some(None) => None,
            None => Some(LockHold::default()),
        }
    }

    /// Take the store's lock on `key` (with stampede protection), polling for the
    /// value while another process holds it, then re-read: the value may have landed
    /// between this caller's read and its lock. `fallback` is the stale value this
    /// call was picked to refresh: still there, it is refreshed.
    pub(super) async fn lock<T: DeserializeOwned>(
        &self,
        key: &str,
        fallback: Option<&Meta>,
    ) -> Locked<T, C> {
        let mut held = LockHold::default();
        let mut waited_out = false;
        let o = *self.options();
        if !o.stampede_protection {
            return Locked::Compute { held, waited_out };
        }
        let deadline = later(o.lock_wait);
        let mut pause = Duration::from_millis(5);
        loop {
            let acquire = self.backend().acquire_lock_valid(key, o.lock_ttl);
            match self.guarded(Op::AcquireLock, key, acquire).await {
                Some(Some(token)) => {
                    held = LockHold::new(self.cache, key, token);
                    break;
                }
                Some(None) => {
                    // Another process computes: watch for its value.
                    if !self.settings.refresh {
                        if let Some((v, _)) = self.read(key).await {
                            return Locked::Found(v);
                        }
                    }
                    let now = Instant::now();
                    if now >= deadline {
                        waited_out = true;
                        tracing::warn!(key = %self.cache.inner.observe.log_key(key), wait = ?o.lock_wait, "lock wait elapsed; computing without the lock (the value is returned, not stored)");
                        break;
                    }
                    tokio::time::sleep(pause.min(deadline - now)).await;
                    pause = (pause * 2).min(Duration::from_millis(100));
                }
                None => break,
            }
        }
        if held.is_held() && !self.settings.refresh {
            if let Some((v, meta)) = self.read(key).await {
                // The value this leader was picked to refresh early is still the
                // one stored: refresh it. Anything else was written meanwhile.
                let same =
                    matches!((fallback, meta), (Some(f), Some(m)) if f.written_at == m.written_at);
                if !same {
                    held.release(o.store_timeout).await;
                    return Locked::Found(v);
                }
            }
        }
        Locked::Compute { held, waited_out }
    }
}

/// A held lock; released explicitly, by the fenced write, or in the background if the
/// leader is dropped (through the cache's checking layer, even after the cache closed).
pub(super) struct LockHold<C: Codec> {
    inner: Option<(Cache<C>, String, LockToken)>,
}

impl<C: Codec> Default for LockHold<C> {
    fn default() -> Self {
        LockHold { inner: None }
    }
}

impl<C: Codec> LockHold<C> {
    fn new(cache: &Cache<C>, key: &str, token: LockToken) -> Self {
        LockHold {
            inner: Some((cache.clone(), key.to_owned(), token)),
        }
    }
    pub(super) fn is_held(&self) -> bool {
        self.inner.is_some()
    }
    pub(super) fn token(&self) -> Option<&LockToken> {
        self.inner.as_ref().map(|(_, _, t)| t)
    }
    /// The lock was released by the fenced write: nothing left to do.
    pub(super) fn disarm(&mut self) {
        self.inner = None;
    }
    /// Release the lock, bounded by `timeout`. Always attempted, even after a failed
    /// call: others wait on this lock.
    pub(super) async fn release(&mut self, timeout: Duration) {
        if let Some((cache, key, token)) = self.inner.take() {
            let release = cache.inner.backend.release_held_lock(&key, &token);
            match tokio::time::timeout(timeout, release).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "releasing the lock failed; it expires by itself")
                }
                Err(_) => tracing::warn!("releasing the lock timed out; it expires by itself"),
            }
        }
    }
}

impl<C: Codec> Drop for LockHold<C> {
    fn drop(&mut self) {
        if let Some((cache, key, token)) = self.inner.take() {
            if let Ok(handle) = tokio::runtime::Handle::try_current() {
                handle.spawn(async move {
                    if let Err(e) = cache.inner.backend.release_held_lock(&key, &token).await {
                        tracing::warn!(error = %e, "releasing an abandoned lock failed; it expires by itself");
                    }
                });
            }
        }
    }
}
