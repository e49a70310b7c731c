//! Lock deadlines and clock skew. DynamoDB has no clock a condition can read: a lock's
//! deadline is written with its holder's clock and judged with a contender's, so a
//! takeover waits `max_clock_skew` past the deadline. Clocks are shifted by an injected
//! offset (no sleeps): with a skew margin of 10 s and a lock live for 5 s more, a
//! client 9 s ahead sees the deadline passed, and must still leave the lock alone.

use crate::common;
use cache_core::{Bytes, CacheBackend, Expiry};
use cache_dynamodb::DynamoBackend;
use std::time::Duration;

const SKEW: Duration = Duration::from_secs(10);
const TTL: Duration = Duration::from_secs(5);

async fn with_clock(ns: &str, offset_ms: i64) -> DynamoBackend {
    common::backend(ns).await; // the table
    common::builder(ns)
        .await
        .max_clock_skew(SKEW)
        .test_clock_offset_ms(offset_ms)
        .build()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_contender_ahead_by_less_than_max_clock_skew_never_takes_a_live_lock() {
    let ns = conformance_tests::random_namespace();
    let holder = with_clock(&ns, 0).await;
    let ahead = with_clock(&ns, 9_000).await;
    let token = holder.acquire_lock("k", TTL).await.unwrap().expect("free");
    assert!(
        ahead.acquire_lock("k", TTL).await.unwrap().is_none(),
        "a client 9 s ahead took a lock live for 5 s more"
    );
    // Past the margin, the lock counts as abandoned: a client 16 s ahead takes it
    // (the margin is a bound on the skew, not a way to keep locks forever).
    let far = with_clock(&ns, 16_000).await;
    assert!(far.acquire_lock("k", TTL).await.unwrap().is_some());
    assert!(!holder.release_lock("k", &token).await.unwrap());
}

#[tokio::test]
async fn an_app_write_ahead_by_less_than_max_clock_skew_keeps_the_lock_held_and_fences_it() {
    for delete in [false, true] {
        let ns = conformance_tests::random_namespace();
        let holder = with_clock(&ns, 0).await;
        let app = with_clock(&ns, 9_000).await;
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
    }
}

/// DynamoDB's TTL reaper deletes an item once its `exp` (epoch seconds) passed on
/// AWS's clock. A lock's `exp` is its deadline plus `max_clock_skew`, rounded up, so
/// the reaper never deletes a live lock of a holder whose clock runs behind (within
/// the margin): the same margin a contender waits before it takes the lock over.
#[tokio::test]
async fn a_lock_outlives_its_deadline_in_the_ttl_attribute_by_max_clock_skew() {
    let ns = conformance_tests::random_namespace();
    let holder = with_clock(&ns, -3_000).await;
    holder.acquire_lock("k", TTL).await.unwrap().expect("free");
    let lock = common::raw_client()
        .await
        .get_item()
        .table_name(common::table_for(&ns))
        .key(
            "pk",
            aws_sdk_dynamodb::types::AttributeValue::S(format!("{ns}:#lock:k")),
        )
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item
        .expect("the lock item");
    let number = |name: &str| -> u64 { lock[name].as_n().unwrap().parse().unwrap() };
    let (exp, exp_ms) = (number("exp"), number("exp_ms"));
    let skew_ms = u64::try_from(SKEW.as_millis()).unwrap();
    assert_eq!(
        exp,
        (exp_ms + skew_ms).div_ceil(1000),
        "exp {exp}, exp_ms {exp_ms}"
    );

    // A value's `exp` is its expiry, rounded up: no margin there.
    holder
        .set("v", Bytes::from_static(b"x"), Expiry::After(TTL))
        .await
        .unwrap();
    let value = common::raw_client()
        .await
        .get_item()
        .table_name(common::table_for(&ns))
        .key(
            "pk",
            aws_sdk_dynamodb::types::AttributeValue::S(format!("{ns}:v")),
        )
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item
        .expect("the value item");
    let number = |name: &str| -> u64 { value[name].as_n().unwrap().parse().unwrap() };
    assert_eq!(number("exp"), number("exp_ms").div_ceil(1000));
}
