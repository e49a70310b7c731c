//! Reading, writing, deleting and clearing.

use super::*;

/// A value written is read back unchanged.
pub async fn set_get_roundtrip<H: Harness>(h: &H) {
    let c = fresh(h).await;
    c.set("k", b("value"), Expiry::Never).await.unwrap();
    assert_eq!(c.get("k").await.unwrap(), Some(b("value")));
}

/// `get_now` and `read_now`, where a backend answers them, say what `get` says: a
/// value, a missing key, an expired value, a key of another namespace; bad keys are
/// errors there too.
pub async fn get_now_agrees_with_get<H: Harness>(h: &H) {
    let c = fresh(h).await;
    let other = fresh(h).await;
    c.set("k", b("v"), Expiry::Never).await.unwrap();
    c.set("gone", b("v"), Expiry::After(Duration::from_millis(1)))
        .await
        .unwrap();
    other.set("theirs", b("v"), Expiry::Never).await.unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    for key in ["k", "missing", "gone", "theirs"] {
        if let Some(now) = c.get_now(key) {
            assert_eq!(now.unwrap(), c.get(key).await.unwrap(), "{key}");
        }
        let mut lent = None;
        if let Some(found) = c.read_now(key, &mut |v| lent = Some(Bytes::copy_from_slice(v))) {
            let got = c.get(key).await.unwrap();
            assert_eq!(found.unwrap(), got.is_some(), "{key}");
            assert_eq!(lent, got, "{key}");
        }
    }
    if let Some(answer) = c.get_now("") {
        assert_eq!(answer.unwrap_err().kind(), ErrorKind::InvalidInput);
    }
    if let Some(answer) = c.read_now("", &mut |_| panic!("no value for an empty key")) {
        assert_eq!(answer.unwrap_err().kind(), ErrorKind::InvalidInput);
    }
}

/// A second write replaces the first.
pub async fn overwrite<H: Harness>(h: &H) {
    let c = fresh(h).await;
    c.set("k", b("one"), Expiry::Never).await.unwrap();
    c.set("k", b("two"), Expiry::Never).await.unwrap();
    assert_eq!(c.get("k").await.unwrap(), Some(b("two")));
}

/// A key never written reads as `None`.
pub async fn missing_key<H: Harness>(h: &H) {
    let c = fresh(h).await;
    assert_eq!(c.get("never-written").await.unwrap(), None);
}

/// `delete` says whether it removed something.
pub async fn delete_reports_presence<H: Harness>(h: &H) {
    let c = fresh(h).await;
    c.set("k", b("v"), Expiry::Never).await.unwrap();
    assert!(
        c.delete("k").await.unwrap(),
        "delete of a present key returns true"
    );
    assert!(
        !c.delete("k").await.unwrap(),
        "delete of a missing key returns false"
    );
    assert_eq!(c.get("k").await.unwrap(), None);
}

/// `has` agrees with `get`.
pub async fn has_reports_presence<H: Harness>(h: &H) {
    let c = fresh(h).await;
    assert!(!c.has("k").await.unwrap());
    c.set("k", b("v"), Expiry::Never).await.unwrap();
    assert!(c.has("k").await.unwrap());
}

/// `clear` removes its own namespace's keys and no one else's.
pub async fn clear_only_own_namespace<H: Harness>(h: &H) {
    let base = random_namespace();
    let a = open(h, &base).await;
    // A namespace that extends the first one's name must not be touched either.
    let other = open(h, &format!("{base}x")).await;
    for i in 0..20 {
        let k = format!("k{i}");
        a.set(&k, b("a"), Expiry::Never).await.unwrap();
        other.set(&k, b("other"), Expiry::Never).await.unwrap();
    }
    a.clear().await.unwrap();
    for i in 0..20 {
        let k = format!("k{i}");
        assert_eq!(a.get(&k).await.unwrap(), None, "clear removed {k}");
        assert_eq!(
            other.get(&k).await.unwrap(),
            Some(b("other")),
            "clear touched another namespace"
        );
    }
    let again = open(h, &base).await;
    assert_eq!(again.get("k0").await.unwrap(), None);
}

/// Empty and arbitrary binary values round-trip.
pub async fn empty_and_binary_values<H: Harness>(h: &H) {
    let c = fresh(h).await;
    c.set("empty", Bytes::new(), Expiry::Never).await.unwrap();
    assert_eq!(
        c.get("empty").await.unwrap(),
        Some(Bytes::new()),
        "empty value is a hit"
    );
    let all: Vec<u8> = (0..=255u8).chain((0..=255u8).rev()).collect();
    c.set("bin", Bytes::from(all.clone()), Expiry::Never)
        .await
        .unwrap();
    assert_eq!(c.get("bin").await.unwrap().as_deref(), Some(&all[..]));
    let crlf = Bytes::from_static(b"\r\nEND\r\n\0\xff$-1\r\n");
    c.set("crlf", crlf.clone(), Expiry::Never).await.unwrap();
    assert_eq!(c.get("crlf").await.unwrap(), Some(crlf));
}

/// A value at the declared size limit works; one byte over is `InvalidInput`.
pub async fn value_size_limit<H: Harness>(h: &H) {
    let c = fresh(h).await;
    match c.capabilities().max_value_size {
        Some(max) => {
            let v = Bytes::from(vec![7u8; max]);
            c.set("max", v.clone(), Expiry::Never).await.unwrap();
            assert_eq!(c.get("max").await.unwrap().map(|b| b.len()), Some(max));
            let err = c
                .set("over", Bytes::from(vec![7u8; max + 1]), Expiry::Never)
                .await
                .unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
            assert_eq!(c.get("over").await.unwrap(), None);
            let err = c
                .set_many(
                    &[("small", b("ok")), ("big", Bytes::from(vec![7u8; max + 1]))],
                    Expiry::Never,
                )
                .await
                .unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
            assert_eq!(
                c.get("small").await.unwrap(),
                None,
                "a batch with an oversized value stored nothing"
            );
            // The backend stays usable after refusing a value.
            c.set("after", b("ok"), Expiry::Never).await.unwrap();
            assert_eq!(c.get("after").await.unwrap(), Some(b("ok")));
        }
        None => {
            let v = Bytes::from(vec![7u8; 1 << 20]);
            c.set("big", v.clone(), Expiry::Never).await.unwrap();
            assert_eq!(c.get("big").await.unwrap(), Some(v));
        }
    }
}

/// 1 000 parallel set/get on distinct keys lose nothing.
pub async fn parallel_set_get_lose_nothing<H: Harness>(h: &H) {
    let c = fresh(h).await;
    let tasks: Vec<_> = (0..1000)
        .map(|i| {
            let c = c.clone();
            tokio::spawn(async move {
                let k = format!("p{i}");
                c.set(&k, b(&format!("v{i}")), Expiry::Never).await.unwrap();
                assert_eq!(c.get(&k).await.unwrap(), Some(b(&format!("v{i}"))));
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let keys: Vec<String> = (0..1000).map(|i| format!("p{i}")).collect();
    let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
    let got = c.get_many(&refs).await.unwrap();
    let lost = got.iter().filter(|v| v.is_none()).count();
    assert_eq!(lost, 0, "{lost} of 1000 values lost");
}

/// Namespaces full of quote, glob, regex, LIKE and shell characters stay apart:
/// clearing one touches no other, whatever the store builds from the name.
pub async fn hostile_namespaces_stay_apart<H: Harness>(h: &H) {
    let base = random_namespace();
    let suffixes = [
        "", "*", "?", "[a-z]", "%", "_", ".", ".*", "$", "'", "\"", ";", "\\", "'--", "{}", "^",
    ];
    let mut backends = Vec::new();
    for s in suffixes {
        let ns = format!("{base}{s}");
        let c = open(h, &ns).await;
        c.set("k", b(&ns), Expiry::Never).await.unwrap();
        backends.push((ns, c));
    }
    // Clear the wildcard-looking ones: a pattern built from them would match the rest.
    for (ns, c) in &backends {
        if ["*", "%", "_", ".*", "[a-z]", "?"]
            .iter()
            .any(|s| ns.ends_with(s))
        {
            c.clear().await.unwrap();
        }
    }
    for (ns, c) in &backends {
        let cleared = ["*", "%", "_", ".*", "[a-z]", "?"]
            .iter()
            .any(|s| ns.ends_with(s));
        let got = c.get("k").await.unwrap();
        if cleared {
            assert_eq!(got, None, "clear of {ns:?} left its own key");
        } else {
            assert_eq!(
                got,
                Some(b(ns)),
                "clearing another namespace removed {ns:?}'s key"
            );
        }
    }
}

/// `clear` of one namespace leaves another namespace's locks held.
pub async fn clear_leaves_other_namespaces_locks<H: Harness>(h: &H) {
    let base = random_namespace();
    let a = open(h, &base).await;
    let other = open(h, &format!("{base}-other")).await;
    let token = other
        .acquire_lock("k", Duration::from_secs(30))
        .await
        .unwrap()
        .expect("a free lock");
    a.set("k", b("v"), Expiry::Never).await.unwrap();
    a.clear().await.unwrap();
    assert!(
        other
            .acquire_lock("k", Duration::from_secs(30))
            .await
            .unwrap()
            .is_none(),
        "clear of another namespace freed this lock"
    );
    assert!(other.release_lock("k", &token).await.unwrap());
}
