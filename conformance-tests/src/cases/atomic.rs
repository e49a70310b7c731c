//! `set_if_absent` and locks: atomic, owner-checked, expiring.

use super::*;

/// `set_if_absent` from 50 concurrent tasks has exactly one winner.
pub async fn set_if_absent_has_one_winner<H: Harness>(h: &H) {
    let c = fresh(h).await;
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let c = c.clone();
            tokio::spawn(async move {
                (
                    i,
                    c.set_if_absent("race", b(&format!("t{i}")), Expiry::Never)
                        .await
                        .unwrap(),
                )
            })
        })
        .collect();
    let mut winners = vec![];
    for t in tasks {
        let (i, won) = t.await.unwrap();
        if won {
            winners.push(i);
        }
    }
    assert_eq!(winners.len(), 1, "winners: {winners:?}");
    assert_eq!(
        c.get("race").await.unwrap(),
        Some(b(&format!("t{}", winners[0])))
    );
    assert!(!c
        .set_if_absent("race", b("late"), Expiry::Never)
        .await
        .unwrap());
    c.delete("race").await.unwrap();
    assert!(
        c.set_if_absent("race", b("again"), Expiry::Never)
            .await
            .unwrap(),
        "absent again after delete"
    );
}

/// An expired value counts as absent for `set_if_absent`.
pub async fn set_if_absent_after_expiry<H: Harness>(h: &H) {
    let c = fresh(h).await;
    let (ttl, grace) = short_ttl(h, c.as_ref());
    assert!(c
        .set_if_absent("k", b("first"), Expiry::After(ttl))
        .await
        .unwrap());
    assert!(!c
        .set_if_absent("k", b("second"), Expiry::Never)
        .await
        .unwrap());
    let took_over = eventually(ttl + grace, || async {
        c.set_if_absent("k", b("third"), Expiry::Never)
            .await
            .unwrap()
    })
    .await;
    assert!(
        took_over,
        "set_if_absent never succeeded after the value expired"
    );
    assert_eq!(c.get("k").await.unwrap(), Some(b("third")));
}

/// A lock has exactly one holder among 50 tasks; release frees it for the next.
pub async fn lock_has_one_holder<H: Harness>(h: &H) {
    let c = fresh(h).await;
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let c = c.clone();
            tokio::spawn(async move {
                c.acquire_lock("lock", Duration::from_secs(30))
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut tokens = vec![];
    for t in tasks {
        if let Some(tok) = t.await.unwrap() {
            tokens.push(tok);
        }
    }
    assert_eq!(tokens.len(), 1, "exactly one holder");
    assert!(c
        .acquire_lock("lock", Duration::from_secs(30))
        .await
        .unwrap()
        .is_none());
    assert_eq!(
        c.get("lock").await.unwrap(),
        None,
        "locks do not show up as values"
    );
    assert!(c.release_lock("lock", &tokens[0]).await.unwrap());
    assert!(
        !c.release_lock("lock", &tokens[0]).await.unwrap(),
        "second release is a no-op"
    );
    assert!(c
        .acquire_lock("lock", Duration::from_secs(30))
        .await
        .unwrap()
        .is_some());
}

/// A lock cannot be released with someone else's token.
pub async fn lock_rejects_wrong_token<H: Harness>(h: &H) {
    let c = fresh(h).await;
    let mine = c
        .acquire_lock("lock", Duration::from_secs(30))
        .await
        .unwrap()
        .unwrap();
    let forged = LockToken::random();
    assert!(!c.release_lock("lock", &forged).await.unwrap());
    assert!(
        c.acquire_lock("lock", Duration::from_secs(30))
            .await
            .unwrap()
            .is_none(),
        "still held"
    );
    let other = c
        .acquire_lock("other", Duration::from_secs(30))
        .await
        .unwrap()
        .unwrap();
    assert!(
        !c.release_lock("lock", &other).await.unwrap(),
        "a token of another lock does not fit"
    );
    assert!(c.release_lock("lock", &mine).await.unwrap());
}

/// A lock frees itself after its ttl.
pub async fn lock_expires<H: Harness>(h: &H) {
    let c = fresh(h).await;
    let (ttl, grace) = short_ttl(h, c.as_ref());
    let first = c.acquire_lock("lock", ttl).await.unwrap().unwrap();
    assert!(c.acquire_lock("lock", ttl).await.unwrap().is_none());
    let freed = eventually(ttl + grace, || async {
        c.acquire_lock("lock", Duration::from_secs(30))
            .await
            .unwrap()
            .is_some()
    })
    .await;
    assert!(freed, "lock never expired");
    assert!(
        !c.release_lock("lock", &first).await.unwrap(),
        "an expired holder cannot release the new holder's lock"
    );
}
