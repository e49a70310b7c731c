//! Fenced writes on DynamoDB: what they cost in round trips (an SDK interceptor counts
//! the requests), and what they leave in the table (read with a raw client).

use crate::common;
use aws_sdk_dynamodb::config::interceptors::BeforeSerializationInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept};
use aws_sdk_dynamodb::error::BoxError;
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use cache_core::{Bytes, CacheBackend, Expiry, LockToken};
use cache_dynamodb::DynamoBackend;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

const TTL: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Default)]
struct Requests(Arc<AtomicUsize>);

impl Intercept for Requests {
    fn name(&self) -> &'static str {
        "count-requests"
    }

    fn read_before_execution(
        &self,
        _: &BeforeSerializationInterceptorContextRef<'_>,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

impl Requests {
    fn take(&self) -> usize {
        self.0.swap(0, Ordering::SeqCst)
    }
}

async fn counted(ns: &str) -> (DynamoBackend, Requests) {
    common::backend(ns).await; // the table
    let requests = Requests::default();
    let conf = common::raw_client()
        .await
        .config()
        .to_builder()
        .interceptor(requests.clone())
        .build();
    let backend = common::builder(ns)
        .await
        .client_config(conf)
        .build()
        .await
        .unwrap();
    requests.take();
    (backend, requests)
}

async fn lock_item(
    ns: &str,
    key: &str,
) -> Option<std::collections::HashMap<String, AttributeValue>> {
    common::raw_client()
        .await
        .get_item()
        .table_name(common::table_for(ns))
        .key("pk", AttributeValue::S(format!("{ns}:#lock:{key}")))
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item
}

fn b(s: &'static str) -> Bytes {
    Bytes::from_static(s.as_bytes())
}

#[tokio::test]
async fn a_write_is_one_round_trip_while_no_lock_is_held_and_two_while_one_is() {
    let ns = conformance_tests::random_namespace();
    let (app, requests) = counted(&ns).await;
    let e = Expiry::After(TTL);
    app.set("k", b("1"), e).await.unwrap();
    assert_eq!(requests.take(), 1, "set");
    assert!(app.delete("k").await.unwrap());
    assert_eq!(requests.take(), 1, "delete of a live value");
    assert!(!app.delete("k").await.unwrap());
    assert_eq!(requests.take(), 1, "delete of nothing");
    assert!(app.set_if_absent("k", b("2"), e).await.unwrap());
    assert!(!app.set_if_absent("k", b("3"), e).await.unwrap());
    assert_eq!(requests.take(), 2, "set_if_absent, stored or not");
    app.set_many(&[("a", b("1")), ("b", b("2"))], e)
        .await
        .unwrap();
    assert_eq!(
        requests.take(),
        1,
        "set_many of a few keys: one transaction"
    );

    let holder = common::backend(&ns).await;
    let token = holder.acquire_lock("k", TTL).await.unwrap().unwrap();
    app.set("k", b("4"), e).await.unwrap();
    assert_eq!(
        requests.take(),
        2,
        "set over a held lock: found, then marked"
    );
    assert!(app.delete("k").await.unwrap());
    assert_eq!(requests.take(), 2, "delete over a marked lock");
    assert!(!holder
        .set_locked("k", b("computed"), e, &token)
        .await
        .unwrap());
    assert_eq!(holder.get("k").await.unwrap(), None);
}

#[tokio::test]
async fn an_app_write_stores_the_overtaken_token_and_keeps_the_expiry() {
    let ns = conformance_tests::random_namespace();
    let (holder, app) = (common::backend(&ns).await, common::backend(&ns).await);
    let token = holder.acquire_lock("k", TTL).await.unwrap().unwrap();
    let before = lock_item(&ns, "k").await.unwrap();
    assert_eq!(
        before.get("v"),
        Some(&AttributeValue::B(Blob::new(token.as_str())))
    );
    app.set("k", b("app"), Expiry::After(TTL)).await.unwrap();
    app.delete_many(&["k"]).await.unwrap();
    let after = lock_item(&ns, "k").await.unwrap();
    assert_eq!(
        after.get("v"),
        Some(&AttributeValue::B(Blob::new(cache_core::raw::overtaken(
            token.as_str()
        )))),
        "marked once, however many writes"
    );
    assert_eq!(
        after.get("exp_ms"),
        before.get("exp_ms"),
        "the expiry is kept"
    );
    assert_eq!(
        after.get("ns"),
        Some(&AttributeValue::S(format!("{ns}:#lock")))
    );
    assert!(holder.release_lock("k", &token).await.unwrap());
    assert!(lock_item(&ns, "k").await.is_none());
}

#[tokio::test]
async fn a_lock_abandoned_past_the_skew_is_removed_by_the_next_write() {
    let ns = conformance_tests::random_namespace();
    let store = common::backend(&ns).await;
    let token = LockToken::random();
    let long_ago = cache_core::raw::now_ms() - 5_000; // past the default skew of 1 s
    common::raw_client()
        .await
        .put_item()
        .table_name(common::table_for(&ns))
        .item("pk", AttributeValue::S(format!("{ns}:#lock:k")))
        .item("ns", AttributeValue::S(format!("{ns}:#lock")))
        .item("v", AttributeValue::B(Blob::new(token.as_str())))
        .item("exp_ms", AttributeValue::N(long_ago.to_string()))
        .item("exp", AttributeValue::N((long_ago / 1000).to_string()))
        .send()
        .await
        .unwrap();
    store.set("k", b("app"), Expiry::After(TTL)).await.unwrap();
    assert!(lock_item(&ns, "k").await.is_none(), "the dead lock is gone");
    assert!(
        !store
            .set_locked("k", b("late"), Expiry::After(TTL), &token)
            .await
            .unwrap(),
        "its late holder writes nothing"
    );
    assert_eq!(store.get("k").await.unwrap(), Some(b("app")));
    assert!(store.acquire_lock("k", TTL).await.unwrap().is_some());
}
