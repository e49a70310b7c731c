//! Lock deadlines are written on the holder's clock and a takeover reads them on the
//! contender's: `max_clock_skew` (default 1 s) is the margin a contender waits past a
//! deadline, so one whose clock runs ahead by less never takes a live lock. Clocks are
//! shifted with the hidden `clock_offset_ms` builder option, no sleeps.

use crate::common;
use cache_core::CacheBackend;
use std::time::Duration;

const TTL: Duration = Duration::from_millis(500);

/// A holder on a true clock, and a contender on the same namespace whose clock runs
/// `ahead_ms` ahead.
async fn holder_and_contender(
    ahead_ms: i64,
    skew: Option<Duration>,
) -> (
    cache_memcached::MemcachedBackend,
    cache_memcached::MemcachedBackend,
) {
    let ns = conformance_tests::random_namespace();
    let holder = common::backend(&ns).await;
    let mut b = common::builder(&ns).await.test_clock_offset_ms(ahead_ms);
    if let Some(skew) = skew {
        b = b.max_clock_skew(skew);
    }
    (holder, b.build().await.unwrap())
}

#[tokio::test]
async fn a_contender_ahead_by_less_than_the_skew_never_takes_a_live_lock() {
    let (holder, contender) = holder_and_contender(900, None).await;
    let token = holder.acquire_lock("k", TTL).await.unwrap().expect("free");
    // 900 ms ahead, the contender reads the 500 ms lock as 400 ms past its deadline.
    assert!(
        contender.acquire_lock("k", TTL).await.unwrap().is_none(),
        "a live lock was taken by a clock 900 ms ahead"
    );
    assert!(holder.release_lock("k", &token).await.unwrap());
}

#[tokio::test]
async fn a_contender_ahead_by_more_than_the_skew_does() {
    // The margin is the skew, no more: 1.6 s ahead, the 500 ms lock is past its
    // deadline plus 1 s (memcached still holds the item: its own TTL is 2 s).
    let (holder, contender) = holder_and_contender(1600, None).await;
    holder.acquire_lock("k", TTL).await.unwrap().expect("free");
    assert!(contender.acquire_lock("k", TTL).await.unwrap().is_some());
}

#[tokio::test]
async fn no_margin_with_a_zero_skew() {
    let (holder, contender) = holder_and_contender(900, Some(Duration::ZERO)).await;
    holder.acquire_lock("k", TTL).await.unwrap().expect("free");
    assert!(contender.acquire_lock("k", TTL).await.unwrap().is_some());
}

#[tokio::test]
async fn values_are_not_held_back_by_the_skew() {
    // set_if_absent over an expired value takes it at once: the margin is for locks.
    let (a, ahead) = holder_and_contender(900, None).await;
    a.set(
        "v",
        cache_core::Bytes::from_static(b"old"),
        cache_core::Expiry::After(TTL),
    )
    .await
    .unwrap();
    assert!(ahead
        .set_if_absent(
            "v",
            cache_core::Bytes::from_static(b"new"),
            cache_core::Expiry::After(TTL)
        )
        .await
        .unwrap());
}
