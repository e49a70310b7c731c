//! Batch calls.

use super::*;

/// `get_many`, `set_many` and `delete_many` agree with the single calls.
pub async fn batch_agrees_with_single<H: Harness>(h: &H) {
    let c = fresh(h).await;
    let keys: Vec<String> = (0..25).map(|i| format!("key {i}")).collect();
    let items: Vec<(&str, Bytes)> = keys
        .iter()
        .map(|k| (k.as_str(), b(&format!("v-{k}"))))
        .collect();
    c.set_many(&items, Expiry::Never).await.unwrap();
    for (k, v) in &items {
        assert_eq!(c.get(k).await.unwrap().as_ref(), Some(v));
    }
    let mut asked: Vec<&str> = keys.iter().map(String::as_str).collect();
    asked.insert(3, "missing");
    let got = c.get_many(&asked).await.unwrap();
    assert_eq!(got.len(), asked.len());
    for (k, v) in asked.iter().zip(&got) {
        assert_eq!(v, &c.get(k).await.unwrap(), "get_many disagrees for {k}");
    }
    assert_eq!(got[3], None);
    assert_eq!(c.get_many(&[]).await.unwrap(), Vec::<Option<Bytes>>::new());
    let n = c
        .delete_many(&[&keys[0], &keys[1], "missing"])
        .await
        .unwrap();
    assert_eq!(n, 2, "delete_many counts what was there");
    assert_eq!(c.get(&keys[0]).await.unwrap(), None);
    assert_eq!(
        c.get(&keys[2]).await.unwrap(),
        Some(b(&format!("v-{}", keys[2])))
    );
    let (ttl, grace) = short_ttl(h, c.as_ref());
    c.set_many(&[("t1", b("x")), ("t2", b("y"))], Expiry::After(ttl))
        .await
        .unwrap();
    let gone = eventually(ttl + grace, || async {
        c.get_many(&["t1", "t2"]).await.unwrap() == vec![None, None]
    })
    .await;
    assert!(gone, "set_many honours the expiry");
}

/// Batches keep request order and handle a key asked twice: `get_many` answers each
/// position, `set_many` keeps the last value given for a key, `delete_many` counts a
/// removed key once.
pub async fn batch_duplicates_keep_request_order<H: Harness>(h: &H) {
    let c = fresh(h).await;
    c.set_many(
        &[("a", b("1")), ("b", b("2")), ("a", b("3"))],
        Expiry::Never,
    )
    .await
    .unwrap();
    assert_eq!(
        c.get("a").await.unwrap(),
        Some(b("3")),
        "the last value wins"
    );
    let got = c.get_many(&["b", "a", "missing", "b", "a"]).await.unwrap();
    assert_eq!(
        got,
        vec![Some(b("2")), Some(b("3")), None, Some(b("2")), Some(b("3"))]
    );
    let n = c.delete_many(&["a", "a", "b", "missing"]).await.unwrap();
    assert_eq!(n, 2, "each removed key counts once");
    assert_eq!(c.get_many(&["a", "b"]).await.unwrap(), vec![None, None]);
}
