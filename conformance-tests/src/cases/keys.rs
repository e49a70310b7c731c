//! Key rules: limits, Unicode, control characters, long keys.

use super::*;

/// Empty and over-long keys are `InvalidInput` on every call; the longest allowed key works.
pub async fn key_limits<H: Harness>(h: &H) {
    let c = fresh(h).await;
    let huge = "k".repeat(MAX_KEY_LEN + 1);
    for key in ["", huge.as_str()] {
        let what = if key.is_empty() {
            "empty key"
        } else {
            "oversized key"
        };
        invalid(c.get(key).await, what);
        invalid(c.set(key, b("v"), Expiry::Never).await, what);
        invalid(c.delete(key).await, what);
        invalid(c.has(key).await, what);
        invalid(c.set_if_absent(key, b("v"), Expiry::Never).await, what);
        invalid(c.get_many(&["ok", key]).await, what);
        invalid(
            c.set_many(&[("ok", b("v")), (key, b("v"))], Expiry::Never)
                .await,
            what,
        );
        invalid(c.delete_many(&["ok", key]).await, what);
        invalid(c.acquire_lock(key, Duration::from_secs(1)).await, what);
        assert_eq!(
            c.get("ok").await.unwrap(),
            None,
            "a batch with a bad key stored nothing"
        );
    }
    let longest = "k".repeat(MAX_KEY_LEN);
    c.set(&longest, b("v"), Expiry::Never).await.unwrap();
    assert_eq!(c.get(&longest).await.unwrap(), Some(b("v")));
    let cache = cache_of(c.clone());
    // get-or-compute caches under the longest key too (its lock key must fit as well).
    let calls = counter();
    let long2 = format!("{}2", "k".repeat(MAX_KEY_LEN - 1));
    for _ in 0..2 {
        let calls = calls.clone();
        let v: u8 = cache
            .get_or_compute(long2.as_str(), || async move {
                calls.fetch_add(1, Ordering::SeqCst);
                Ok::<_, std::io::Error>(1)
            })
            .await
            .unwrap();
        assert_eq!(v, 1);
    }
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "the longest key is cached by get-or-compute"
    );
    let err = cache
        .get_or_compute("", || async { Ok::<_, std::io::Error>(1u8) })
        .await
        .unwrap_err();
    assert!(matches!(err, ComputeError::Cache(ref e) if e.kind() == ErrorKind::InvalidInput));
}

/// Unicode keys work and stay distinct (no normalisation).
pub async fn unicode_keys<H: Harness>(h: &H) {
    let c = fresh(h).await;
    let keys = ["ключ", "键", "🔑", "caf\u{e9}", "cafe\u{301}"];
    for (i, k) in keys.iter().enumerate() {
        c.set(k, b(&i.to_string()), Expiry::Never).await.unwrap();
    }
    for (i, k) in keys.iter().enumerate() {
        assert_eq!(
            c.get(k).await.unwrap(),
            Some(b(&i.to_string())),
            "key {k:?}"
        );
    }
}

/// Spaces, CR/LF, control characters and quote/glob characters round-trip as
/// distinct keys, with no protocol or query injection.
pub async fn control_character_keys_are_distinct<H: Harness>(h: &H) {
    let c = fresh(h).await;
    let keys = [
        "a b",
        "a\tb",
        "a\r\nb",
        "a\nb",
        "a\0b",
        "a\u{1}b",
        "a\u{7f}b",
        "ab",
        "a:b",
        "a*",
        "a?b",
        "a[b]",
        "x'; DROP TABLE cache; --",
        "k\"v",
        "set x 0 0 1\r\nx",
        "\r\n",
        " ",
        "#hash",
    ];
    for (i, k) in keys.iter().enumerate() {
        c.set(k, b(&format!("v{i}")), Expiry::Never).await.unwrap();
    }
    for (i, k) in keys.iter().enumerate() {
        assert_eq!(
            c.get(k).await.unwrap(),
            Some(b(&format!("v{i}"))),
            "key {k:?}"
        );
    }
    assert_eq!(
        c.get("x").await.unwrap(),
        None,
        "an injected command stored nothing"
    );
    assert_eq!(
        c.get("a").await.unwrap(),
        None,
        "a glob key did not match others"
    );
    assert!(c.delete("a*").await.unwrap());
    assert_eq!(
        c.get("a:b").await.unwrap(),
        Some(b("v8")),
        "deleting \"a*\" touched only itself"
    );
}

/// Keys longer than the store's own limit work, and two that differ only at the
/// end do not collide.
pub async fn long_keys_do_not_collide<H: Harness>(h: &H) {
    let c = fresh(h).await;
    let len = c.capabilities().max_key_len.unwrap_or(250).max(250) + 100;
    let stem = "x".repeat(len);
    let (k1, k2) = (format!("{stem}1"), format!("{stem}2"));
    c.set(&k1, b("one"), Expiry::Never).await.unwrap();
    c.set(&k2, b("two"), Expiry::Never).await.unwrap();
    assert_eq!(c.get(&k1).await.unwrap(), Some(b("one")));
    assert_eq!(c.get(&k2).await.unwrap(), Some(b("two")));
    assert!(c.delete(&k1).await.unwrap());
    assert_eq!(c.get(&k2).await.unwrap(), Some(b("two")));
}
