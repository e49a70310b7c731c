//! What fencing leaves in the collection: the overtaken token in place of the token
//! (expiry kept), tombstones for deletes, and locks of the older binary format
//! respected. Read with a raw client.

use crate::common;
use cache_core::{Bytes, CacheBackend, Expiry};
use mongodb::bson::{doc, spec::BinarySubtype, Binary, DateTime, Document};
use std::time::Duration;

async fn raw() -> mongodb::Collection<Document> {
    mongodb::Client::with_uri_str(common::url().await)
        .await
        .unwrap()
        .database("cache_test")
        .collection("cache_entries")
}

const TTL: Duration = Duration::from_secs(30);

#[tokio::test]
async fn an_app_write_stores_the_overtaken_token_and_keeps_the_expiry() {
    let ns = conformance_tests::random_namespace();
    let (holder, app) = (common::backend(&ns).await, common::backend(&ns).await);
    let token = holder.acquire_lock("k", TTL).await.unwrap().unwrap();
    let coll = raw().await;
    let lock_id = format!("{ns}:#lock:k");
    let before = coll
        .find_one(doc! { "_id": &lock_id })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(before.get_str("v").unwrap(), token.as_str());
    assert_eq!(before.get_str("ns").unwrap(), format!("{ns}:#lock"));
    app.set("k", Bytes::from_static(b"app"), Expiry::After(TTL))
        .await
        .unwrap();
    app.delete("k").await.unwrap();
    let after = coll
        .find_one(doc! { "_id": &lock_id })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        after.get_str("v").unwrap(),
        cache_core::raw::overtaken(token.as_str()),
        "marked once, however many writes"
    );
    assert_eq!(after.get("exp"), before.get("exp"), "the expiry is kept");
    assert!(!holder
        .set_locked("k", Bytes::from_static(b"c"), Expiry::After(TTL), &token)
        .await
        .unwrap());
    assert!(coll
        .find_one(doc! { "_id": &lock_id })
        .await
        .unwrap()
        .is_none());
}

#[tokio::test]
async fn a_delete_leaves_a_tombstone_that_reads_as_nothing() {
    let ns = conformance_tests::random_namespace();
    let store = common::backend(&ns).await;
    let coll = raw().await;
    let id = format!("{ns}:k");
    let ms = |t: DateTime| t.timestamp_millis();
    let before = DateTime::now();
    assert!(!store.delete("k").await.unwrap(), "nothing was there");
    let after = DateTime::now();
    let t = coll.find_one(doc! { "_id": &id }).await.unwrap().unwrap();
    // It lives twice the timeout (30 s in the tests), 10 s at least: longer than a
    // set_locked between its read and its write, so the TTL monitor leaves it.
    let exp = ms(*t.get_datetime("exp").unwrap());
    assert!(
        (ms(before) + 60_000..=ms(after) + 60_000).contains(&exp),
        "{t:?}"
    );
    assert!(
        t.get("v").is_none() && t.get_object_id("w").is_ok(),
        "{t:?}"
    );
    let stamp = t.get_object_id("w").unwrap();
    assert!(!store.delete("k").await.unwrap());
    let again = coll.find_one(doc! { "_id": &id }).await.unwrap().unwrap();
    assert_ne!(
        again.get_object_id("w").unwrap(),
        stamp,
        "every delete stamps anew"
    );
    assert_eq!(store.get("k").await.unwrap(), None);
    assert!(!store.has("k").await.unwrap());
    assert_eq!(store.get_many(&["k"]).await.unwrap(), vec![None]);
    assert!(store
        .set_if_absent("k", Bytes::from_static(b"v"), Expiry::After(TTL))
        .await
        .unwrap());
    assert!(store.delete("k").await.unwrap(), "a live value was there");
    assert_eq!(store.delete_many(&["k", "j"]).await.unwrap(), 0);
    let tombstones = doc! { "_id": { "$in": [&id, format!("{ns}:j")] }, "v": { "$exists": false } };
    assert_eq!(
        coll.count_documents(tombstones.clone()).await.unwrap(),
        2,
        "delete_many leaves tombstones too"
    );
    store
        .set("v", Bytes::from_static(b"v"), Expiry::After(TTL))
        .await
        .unwrap();
    store.clear().await.unwrap();
    assert_eq!(
        coll.count_documents(doc! { "ns": &ns, "v": { "$exists": true } })
            .await
            .unwrap(),
        0,
        "clear removes the values"
    );
    assert_eq!(
        coll.count_documents(tombstones).await.unwrap(),
        2,
        "and leaves the tombstones to the TTL monitor"
    );
    assert_eq!(
        store.get_many(&["k", "j", "v"]).await.unwrap(),
        vec![None; 3]
    );
}

#[tokio::test]
async fn a_lock_of_the_older_binary_format_is_respected() {
    let ns = conformance_tests::random_namespace();
    let store = common::backend(&ns).await;
    let coll = raw().await;
    let lock_id = format!("{ns}:#lock:k");
    let live = DateTime::from_millis(DateTime::now().timestamp_millis() + 30_000);
    coll.insert_one(doc! {
        "_id": &lock_id,
        "ns": format!("{ns}:#lock"),
        "v": Binary { subtype: BinarySubtype::Generic, bytes: b"0123456789abcdef".to_vec() },
        "exp": live,
    })
    .await
    .unwrap();
    assert!(store.acquire_lock("k", TTL).await.unwrap().is_none());
    store
        .set("k", Bytes::from_static(b"v"), Expiry::After(TTL))
        .await
        .expect("an app write passes an old lock");
    store.delete("k").await.unwrap();
    store.clear().await.unwrap();
    coll.update_one(
        doc! { "_id": &lock_id },
        doc! { "$set": { "exp": DateTime::from_millis(0) } },
    )
    .await
    .unwrap();
    assert!(
        store.acquire_lock("k", TTL).await.unwrap().is_some(),
        "taken once expired"
    );
}
