//! Lock deadlines and clock skew (item 10 of issue 22). Firestore has no clock a
//! precondition can compare with: a lock's deadline is written with its holder's clock
//! and judged with a contender's, so a takeover (and an application write, which
//! deletes a lock it finds abandoned rather than marking it) waits `max_clock_skew`
//! past the deadline. Clocks are shifted by an injected offset (no sleeps): with a
//! skew margin of 10 s and a lock live for 5 s more, a client 9 s ahead sees the
//! deadline passed, and must still leave the lock alone.

use crate::common;
use cache_core::{Bytes, CacheBackend, Expiry};
use cache_firestore::FirestoreBackend;
use std::time::Duration;

const SKEW: Duration = Duration::from_secs(10);
const TTL: Duration = Duration::from_secs(5);

async fn with_clock(ns: &str, skew: Duration, offset_ms: i64) -> FirestoreBackend {
    common::builder(ns)
        .await
        .max_clock_skew(skew)
        .test_clock_offset_ms(offset_ms)
        .build()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_contender_ahead_by_less_than_max_clock_skew_never_takes_a_live_lock() {
    let ns = conformance_tests::random_namespace();
    let holder = with_clock(&ns, SKEW, 0).await;
    let ahead = with_clock(&ns, SKEW, 9_000).await;
    let token = holder.acquire_lock("k", TTL).await.unwrap().expect("free");
    assert!(
        ahead.acquire_lock("k", TTL).await.unwrap().is_none(),
        "a client 9 s ahead took a lock live for 5 s more"
    );
    assert!(holder.release_lock("k", &token).await.unwrap());

    // What happened without the margin (the code before it): the same client takes
    // the live lock, and its holder's write is refused.
    let token = holder.acquire_lock("k", TTL).await.unwrap().expect("free");
    let unguarded = with_clock(&ns, Duration::ZERO, 9_000).await;
    assert!(unguarded.acquire_lock("k", TTL).await.unwrap().is_some());
    assert!(!holder
        .set_locked("k", Bytes::from_static(b"v"), Expiry::After(TTL), &token)
        .await
        .unwrap());

    // Past the margin, the lock counts as abandoned: a client 16 s ahead takes it
    // (the margin is a bound on the skew, not a way to keep locks forever).
    let ns = conformance_tests::random_namespace();
    let holder = with_clock(&ns, SKEW, 0).await;
    let token = holder.acquire_lock("k", TTL).await.unwrap().expect("free");
    let far = with_clock(&ns, SKEW, 16_000).await;
    assert!(far.acquire_lock("k", TTL).await.unwrap().is_some());
    assert!(!holder.release_lock("k", &token).await.unwrap());
}

#[tokio::test]
async fn an_app_write_ahead_by_less_than_max_clock_skew_keeps_the_lock_held_and_fences_it() {
    for delete in [false, true] {
        let ns = conformance_tests::random_namespace();
        let holder = with_clock(&ns, SKEW, 0).await;
        let app = with_clock(&ns, SKEW, 9_000).await;
        let token = holder.acquire_lock("k", TTL).await.unwrap().expect("free");
        if delete {
            app.delete("k").await.unwrap();
        } else {
            app.set("k", Bytes::from_static(b"app"), Expiry::After(TTL * 12))
                .await
                .unwrap();
        }
        assert!(
            holder.acquire_lock("k", TTL).await.unwrap().is_none(),
            "delete {delete}: the app's write freed a live lock"
        );
        assert!(
            !holder
                .set_locked(
                    "k",
                    Bytes::from_static(b"computed"),
                    Expiry::After(TTL),
                    &token
                )
                .await
                .unwrap(),
            "delete {delete}: the holder's write is refused"
        );
        let want = (!delete).then(|| Bytes::from_static(b"app"));
        assert_eq!(holder.get("k").await.unwrap(), want, "delete {delete}");
        assert!(
            holder.acquire_lock("k", TTL).await.unwrap().is_some(),
            "delete {delete}: the holder's write freed the lock"
        );
    }
}

/// `clear` by a client ahead by less than the margin marks the lock too.
#[tokio::test]
async fn a_clear_ahead_by_less_than_max_clock_skew_fences_the_lock() {
    let ns = conformance_tests::random_namespace();
    let holder = with_clock(&ns, SKEW, 0).await;
    let app = with_clock(&ns, SKEW, 9_000).await;
    let token = holder.acquire_lock("k", TTL).await.unwrap().expect("free");
    app.clear().await.unwrap();
    assert!(app.acquire_lock("k", TTL).await.unwrap().is_none());
    assert!(!holder
        .set_locked(
            "k",
            Bytes::from_static(b"computed"),
            Expiry::After(TTL),
            &token
        )
        .await
        .unwrap());
    assert_eq!(holder.get("k").await.unwrap(), None);
}
