use super::*;

/// A store that answers, or is down, as the test says.
struct Switch {
    down: AtomicBool,
    /// Answer a non-transient error (a value that does not decode).
    bad: AtomicBool,
    calls: AtomicU32,
}

#[async_trait]
impl CacheBackend for Switch {
    fn capabilities(&self) -> Capabilities {
        Capabilities::new("switch")
    }
    async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if key.is_empty() {
            return Err(Error::invalid_input("switch", "empty"));
        }
        if self.down.load(Ordering::SeqCst) {
            return Err(Error::new(ErrorKind::Unavailable, "switch", "down"));
        }
        if self.bad.load(Ordering::SeqCst) {
            return Err(Error::new(ErrorKind::Serialization, "switch", "bad value"));
        }
        Ok(None)
    }
    async fn set(&self, _: &str, _: Bytes, _: Expiry) -> Result<()> {
        Ok(())
    }
    async fn delete(&self, _: &str) -> Result<bool> {
        Ok(false)
    }
    async fn clear(&self) -> Result<()> {
        Ok(())
    }
    async fn set_if_absent(&self, _: &str, _: Bytes, _: Expiry) -> Result<bool> {
        Ok(true)
    }
    async fn acquire_lock(&self, _: &str, _: Duration) -> Result<Option<LockToken>> {
        Ok(None)
    }
    async fn release_lock(&self, _: &str, _: &LockToken) -> Result<bool> {
        Ok(false)
    }
    async fn close(&self) -> Result<()> {
        Ok(())
    }
}

fn breaker(threshold: u32, retry: Duration) -> (Arc<Switch>, CircuitBreaker) {
    let s = Arc::new(Switch {
        down: AtomicBool::new(false),
        bad: AtomicBool::new(false),
        calls: AtomicU32::new(0),
    });
    let b = CircuitBreaker::new(
        s.clone(),
        BreakerConfig::default()
            .failure_threshold(threshold)
            .retry_after(retry),
    );
    (s, b)
}

#[tokio::test]
async fn opens_after_the_threshold_fails_fast_then_one_probe_closes_it() {
    let (s, b) = breaker(3, Duration::from_millis(30));
    s.down.store(true, Ordering::SeqCst);
    for _ in 0..3 {
        assert_eq!(b.get("k").await.unwrap_err().kind(), ErrorKind::Unavailable);
    }
    assert_eq!(s.calls.load(Ordering::SeqCst), 3);
    assert!(matches!(b.state(), BreakerState::Open { .. }));
    // Open: no call reaches the store; the error says what is going on.
    for _ in 0..10 {
        let e = b.get("k").await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unavailable);
        assert!(e.message().contains("circuit breaker open"), "{e}");
    }
    assert_eq!(s.calls.load(Ordering::SeqCst), 3);
    // After retry_after one probe goes; it fails: open again, for another period.
    tokio::time::sleep(Duration::from_millis(35)).await;
    assert!(b.get("k").await.is_err());
    assert_eq!(s.calls.load(Ordering::SeqCst), 4);
    assert!(b.get("k").await.is_err());
    assert_eq!(
        s.calls.load(Ordering::SeqCst),
        4,
        "open again after a failed probe"
    );
    // The store is back: the next probe closes the breaker.
    s.down.store(false, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(35)).await;
    assert_eq!(b.get("k").await.unwrap(), None);
    assert_eq!(b.state(), BreakerState::Closed);
    assert_eq!(b.get("k").await.unwrap(), None);
    assert_eq!(s.calls.load(Ordering::SeqCst), 6);
}

#[tokio::test]
async fn a_success_resets_the_count_and_bad_input_does_not_count() {
    let (s, b) = breaker(3, Duration::from_secs(60));
    for round in 0..5 {
        s.down.store(true, Ordering::SeqCst);
        for _ in 0..2 {
            assert!(b.get("k").await.is_err());
        }
        assert_eq!(b.get("").await.unwrap_err().kind(), ErrorKind::InvalidInput);
        s.down.store(false, Ordering::SeqCst);
        assert!(b.get("k").await.is_ok(), "round {round}");
    }
    assert_eq!(b.state(), BreakerState::Closed);
}

#[tokio::test]
async fn errors_that_say_nothing_of_the_store_neither_reset_nor_close() {
    // Two transient failures, then a non-transient error, then one more failure:
    // three in a row open a breaker of threshold 3 (the middle error is neutral).
    let (s, b) = breaker(3, Duration::from_millis(10));
    s.down.store(true, Ordering::SeqCst);
    assert!(b.get("k").await.is_err());
    assert!(b.get("k").await.is_err());
    s.down.store(false, Ordering::SeqCst);
    s.bad.store(true, Ordering::SeqCst);
    assert_eq!(
        b.get("k").await.unwrap_err().kind(),
        ErrorKind::Serialization
    );
    s.bad.store(false, Ordering::SeqCst);
    s.down.store(true, Ordering::SeqCst);
    assert!(b.get("k").await.is_err());
    assert!(
        matches!(b.state(), BreakerState::Open { .. }),
        "{:?}",
        b.state()
    );
    // A probe that meets a non-transient error does not close it.
    tokio::time::sleep(Duration::from_millis(15)).await;
    s.down.store(false, Ordering::SeqCst);
    s.bad.store(true, Ordering::SeqCst);
    assert!(b.get("k").await.is_err());
    assert!(
        matches!(b.state(), BreakerState::Open { .. }),
        "{:?}",
        b.state()
    );
    s.bad.store(false, Ordering::SeqCst);
    assert!(b.get("k").await.is_ok(), "the next call probes at once");
    assert_eq!(b.state(), BreakerState::Closed);
}

#[tokio::test]
async fn only_one_probe_at_a_time_and_an_abandoned_call_counts_as_failed() {
    let (s, b) = breaker(1, Duration::from_millis(10));
    s.down.store(true, Ordering::SeqCst);
    assert!(b.get("k").await.is_err());
    tokio::time::sleep(Duration::from_millis(15)).await;
    // The probe is let through but abandoned (its future dropped unfinished).
    {
        let probe = b.get("k");
        drop(probe);
    }
    let mut probe = Box::pin(b.call(std::future::pending::<Result<()>>()));
    assert!(
        futures_poll_once(&mut probe).is_none(),
        "the probe is in flight"
    );
    let e = b.get("k").await.unwrap_err();
    assert!(e.message().contains("circuit breaker open"), "{e}");
    drop(probe);
    assert!(matches!(b.state(), BreakerState::Open { retry_in, .. } if retry_in > Duration::ZERO));
}

fn futures_poll_once<F: Future + Unpin>(f: &mut F) -> Option<F::Output> {
    use std::task::{Context, Poll, Waker};
    match std::pin::Pin::new(f).poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => Some(v),
        Poll::Pending => None,
    }
}
