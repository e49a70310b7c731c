//! Lock deadlines are decided on the server's clock (`$$NOW`), never on a client's:
//! clients whose clocks run an hour ahead or behind (an injected offset, no sleeps)
//! neither take a live lock nor write one that is dead at birth.

use crate::common;
use cache_core::CacheBackend;
use std::time::Duration;

const HOUR_MS: i64 = 3_600_000;
const TTL: Duration = Duration::from_secs(30);

#[tokio::test]
async fn a_contender_whose_clock_runs_ahead_never_takes_a_live_lock() {
    let ns = conformance_tests::random_namespace();
    let holder = common::backend(&ns).await;
    let ahead = common::builder(&ns)
        .await
        .test_clock_offset_ms(HOUR_MS)
        .build()
        .await
        .unwrap();
    let token = holder
        .acquire_lock("k", TTL)
        .await
        .unwrap()
        .expect("a free lock is taken");
    assert!(
        ahead.acquire_lock("k", TTL).await.unwrap().is_none(),
        "a client an hour ahead took a lock that is live for 30 s"
    );
    assert!(holder.release_lock("k", &token).await.unwrap());
    assert!(ahead.acquire_lock("k", TTL).await.unwrap().is_some());
}

#[tokio::test]
async fn a_lock_taken_by_a_client_whose_clock_runs_behind_is_live_for_its_ttl() {
    let ns = conformance_tests::random_namespace();
    let behind = common::builder(&ns)
        .await
        .test_clock_offset_ms(-HOUR_MS)
        .build()
        .await
        .unwrap();
    let other = common::backend(&ns).await;
    let token = behind
        .acquire_lock("k", TTL)
        .await
        .unwrap()
        .expect("a free lock is taken");
    assert!(
        other.acquire_lock("k", TTL).await.unwrap().is_none(),
        "a lock written by a client an hour behind was dead at birth"
    );
    assert!(behind.release_lock("k", &token).await.unwrap());
}
