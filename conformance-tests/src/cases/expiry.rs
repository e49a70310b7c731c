//! Expiry: TTLs, never, past and far-future expiries.

use super::*;

/// `Expiry::After` keeps the value for its TTL, then it is gone.
pub async fn expiry_after<H: Harness>(h: &H) {
    let c = fresh(h).await;
    let (ttl, grace) = short_ttl(h, c.as_ref());
    c.set("k", b("v"), Expiry::After(ttl)).await.unwrap();
    c.set("long", b("v"), Expiry::After(Duration::from_secs(3600)))
        .await
        .unwrap();
    assert_eq!(
        c.get("k").await.unwrap(),
        Some(b("v")),
        "value present before its TTL"
    );
    assert!(c.has("k").await.unwrap());
    let gone = eventually(ttl + grace, || async {
        c.get("k").await.unwrap().is_none()
    })
    .await;
    assert!(
        gone,
        "value still present {:?} after a TTL of {ttl:?}",
        ttl + grace
    );
    assert!(
        !c.has("k").await.unwrap(),
        "has() must not report an expired value"
    );
    assert_eq!(
        c.get("long").await.unwrap(),
        Some(b("v")),
        "a long TTL keeps its value"
    );
}

/// `Expiry::Never` keeps the value past a short TTL's lifetime.
pub async fn expiry_never<H: Harness>(h: &H) {
    let c = fresh(h).await;
    let (ttl, _) = short_ttl(h, c.as_ref());
    c.set("k", b("v"), Expiry::Never).await.unwrap();
    c.set("short", b("v"), Expiry::After(ttl)).await.unwrap();
    let gone = eventually(ttl * 2 + Duration::from_secs(2), || async {
        c.get("short").await.unwrap().is_none()
    })
    .await;
    assert!(gone, "the short-lived value expired");
    assert_eq!(c.get("k").await.unwrap(), Some(b("v")));
}

/// A zero or past expiry stores nothing and removes what was there.
pub async fn expiry_past_or_zero_removes<H: Harness>(h: &H) {
    let c = fresh(h).await;
    c.set("k", b("v"), Expiry::Never).await.unwrap();
    c.set("k", b("new"), Expiry::After(Duration::ZERO))
        .await
        .unwrap();
    assert_eq!(
        c.get("k").await.unwrap(),
        None,
        "zero expiry removes the old value"
    );
    c.set("k2", b("v"), Expiry::Never).await.unwrap();
    let past = SystemTime::now() - Duration::from_secs(10);
    c.set("k2", b("new"), Expiry::At(past)).await.unwrap();
    assert_eq!(
        c.get("k2").await.unwrap(),
        None,
        "past expiry removes the old value"
    );
    c.set("k3", b("v"), Expiry::At(past)).await.unwrap();
    assert_eq!(
        c.get("k3").await.unwrap(),
        None,
        "past expiry stores nothing"
    );
    let future = SystemTime::now() + Duration::from_secs(3600);
    c.set("k4", b("v"), Expiry::At(future)).await.unwrap();
    assert_eq!(
        c.get("k4").await.unwrap(),
        Some(b("v")),
        "a future At keeps the value"
    );
}

/// Expiries too far out for the store's clock are kept as (practically) forever,
/// never an error and never an instant expiry.
pub async fn expiry_far_future_is_kept<H: Harness>(h: &H) {
    let c = fresh(h).await;
    c.set("max", b("v"), Expiry::After(Duration::MAX))
        .await
        .unwrap();
    c.set(
        "years",
        b("v"),
        Expiry::After(Duration::from_secs(200 * 365 * 86_400)),
    )
    .await
    .unwrap();
    let far = SystemTime::UNIX_EPOCH + Duration::from_secs(1 << 40);
    c.set("at", b("v"), Expiry::At(far)).await.unwrap();
    assert!(c
        .set_if_absent("nx", b("v"), Expiry::After(Duration::MAX))
        .await
        .unwrap());
    for k in ["max", "years", "at", "nx"] {
        assert_eq!(c.get(k).await.unwrap(), Some(b("v")), "{k}");
    }
}
