//! Unprocessed batch items. DynamoDB may do only part of a BatchGetItem or
//! BatchWriteItem (throttling, size) and return the rest as unprocessed; moto never
//! does. An SDK interceptor injects that fault into the real calls on the real server:
//! it holds back part of each batch request before it is sent, and hands the held-back
//! part to the backend as the answer's unprocessed items. The backend must retry them
//! (with backoff) until all are done, and stay bounded by its timeout when the store
//! never finishes. Batch writes are `clear`'s (writes of values are fenced
//! transactions); batch reads are `get_many`'s and `delete_many`'s.

use crate::common;
use aws_sdk_dynamodb::config::interceptors::{
    BeforeSerializationInterceptorContextMut, FinalizerInterceptorContextMut,
};
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::error::BoxError;
use aws_sdk_dynamodb::operation::batch_get_item::{BatchGetItemInput, BatchGetItemOutput};
use aws_sdk_dynamodb::operation::batch_write_item::{BatchWriteItemInput, BatchWriteItemOutput};
use aws_sdk_dynamodb::types::{KeysAndAttributes, WriteRequest};
use cache_core::{Bytes, CacheBackend, ErrorKind, Expiry};
use cache_dynamodb::DynamoBackend;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What one in-flight batch call held back (the tests make one batch call at a time).
#[derive(Debug, Default)]
struct Held {
    writes: HashMap<String, Vec<WriteRequest>>,
    keys: HashMap<String, KeysAndAttributes>,
}

#[derive(Debug, Clone)]
struct HoldBack {
    /// How many of `n` requests of a batch to send.
    keep: fn(usize) -> usize,
    held: Arc<Mutex<Held>>,
    /// Batch calls seen, and how many of them had requests held back.
    calls: Arc<AtomicUsize>,
    faults: Arc<AtomicUsize>,
}

impl HoldBack {
    fn new(keep: fn(usize) -> usize) -> Self {
        HoldBack {
            keep,
            held: Arc::default(),
            calls: Arc::default(),
            faults: Arc::default(),
        }
    }
}

impl Intercept for HoldBack {
    fn name(&self) -> &'static str {
        "hold-back-batch-items"
    }

    fn modify_before_serialization(
        &self,
        ctx: &mut BeforeSerializationInterceptorContextMut<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let mut held = self.held.lock().unwrap();
        let input = ctx.input_mut();
        if let Some(w) = input.downcast_mut::<BatchWriteItemInput>() {
            self.calls.fetch_add(1, Ordering::SeqCst);
            for (table, requests) in w.request_items.iter_mut().flatten() {
                let keep = (self.keep)(requests.len());
                if keep < requests.len() {
                    self.faults.fetch_add(1, Ordering::SeqCst);
                    held.writes.insert(table.clone(), requests.split_off(keep));
                }
            }
        } else if let Some(g) = input.downcast_mut::<BatchGetItemInput>() {
            self.calls.fetch_add(1, Ordering::SeqCst);
            for (table, ka) in g.request_items.iter_mut().flatten() {
                let keep = (self.keep)(ka.keys.len());
                if keep < ka.keys.len() {
                    self.faults.fetch_add(1, Ordering::SeqCst);
                    let mut rest = ka.clone();
                    rest.keys = ka.keys.split_off(keep);
                    held.keys.insert(table.clone(), rest);
                }
            }
        }
        Ok(())
    }

    fn modify_before_attempt_completion(
        &self,
        ctx: &mut FinalizerInterceptorContextMut<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let mut held = self.held.lock().unwrap();
        if let Some(Ok(out)) = ctx.output_or_error_mut() {
            if let Some(w) = out.downcast_mut::<BatchWriteItemOutput>() {
                w.unprocessed_items = Some(std::mem::take(&mut held.writes));
            } else if let Some(g) = out.downcast_mut::<BatchGetItemOutput>() {
                g.unprocessed_keys = Some(std::mem::take(&mut held.keys));
            }
        }
        Ok(())
    }
}

async fn backend_with(fault: &HoldBack, timeout: Duration) -> DynamoBackend {
    let conf = common::raw_client()
        .await
        .config()
        .to_builder()
        .interceptor(fault.clone())
        .build();
    let ns = conformance_tests::random_namespace();
    common::backend(&ns).await; // the table
    common::builder(&ns)
        .await
        .client_config(conf)
        .timeout(timeout)
        .build()
        .await
        .unwrap()
}

fn items(n: usize) -> Vec<(String, Bytes)> {
    (0..n)
        .map(|i| (format!("k{i}"), Bytes::from(format!("v{i}"))))
        .collect()
}

#[tokio::test]
async fn unprocessed_writes_and_keys_are_retried_until_done() {
    // Half of every batch is left unprocessed: 20 -> 10 -> 5 -> 3 -> 2 -> 1.
    let fault = HoldBack::new(|n| n.div_ceil(2));
    let backend = backend_with(&fault, Duration::from_secs(10)).await;
    let items = items(20);
    let refs: Vec<(&str, Bytes)> = items.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
    backend.set_many(&refs, Expiry::Never).await.unwrap();
    assert_eq!(
        fault.calls.swap(0, Ordering::SeqCst),
        0,
        "writes of values are transactions, not batches"
    );

    let keys: Vec<&str> = items.iter().map(|(k, _)| k.as_str()).collect();
    let got = backend.get_many(&keys).await.unwrap();
    let want: Vec<Option<Bytes>> = items.iter().map(|(_, v)| Some(v.clone())).collect();
    assert_eq!(got, want, "every value written and read back");
    assert!(
        fault.calls.swap(0, Ordering::SeqCst) >= 5,
        "BatchGetItem retried"
    );
    fault.faults.store(0, Ordering::SeqCst);

    backend.clear().await.unwrap();
    let write_calls = fault.calls.swap(0, Ordering::SeqCst);
    assert!(write_calls >= 5, "{write_calls} BatchWriteItem calls");
    assert!(fault.faults.load(Ordering::SeqCst) >= 4);
    assert!(backend
        .get_many(&keys)
        .await
        .unwrap()
        .iter()
        .all(Option::is_none));
}

#[tokio::test]
async fn a_batch_the_store_never_finishes_is_bounded_by_the_timeout() {
    // One request of each batch done per call: 20 deletes would need 19 retries,
    // and the backoff grows to 1 s.
    let fault = HoldBack::new(|_| 1);
    let timeout = Duration::from_millis(800);
    let backend = backend_with(&fault, timeout).await;
    let items = items(20);
    let refs: Vec<(&str, Bytes)> = items.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
    backend.set_many(&refs, Expiry::Never).await.unwrap();
    let started = Instant::now();
    let err = backend.clear().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    assert!(
        started.elapsed() < timeout + Duration::from_millis(500),
        "{:?}",
        started.elapsed()
    );
    let done = fault.calls.load(Ordering::SeqCst);
    assert!((3..20).contains(&done), "{done} calls before the timeout");
}
