//! Namespaces and generations on a memcached shared with other applications: `clear`
//! is one bump per server, leaves everyone else's keys, never resurrects old values,
//! and reaches other processes' reads at once and their writes within
//! `generation_check`.

use crate::common;
use async_memcached::{AsciiProtocol, MetaProtocol};
use cache_core::{Bytes, CacheBackend, Expiry};
use std::time::Duration;

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

#[tokio::test]
async fn clear_leaves_other_namespaces_and_foreign_keys() {
    let ns = conformance_tests::random_namespace();
    let a = common::backend(&ns).await;
    let b_ns = a.with_namespace(&format!("{ns}-b")).unwrap();
    let url = common::url().await;
    let mut other_app = common::raw(&url).await;
    let foreign = format!("{ns}:foreign");
    other_app.set(&foreign, "theirs", None, None).await.unwrap();
    // A key shaped like ours, written by someone else.
    let lookalike = format!("{ns}@1:k");
    other_app
        .set(&lookalike, "theirs", None, None)
        .await
        .unwrap();
    a.set("k", b("a"), Expiry::Never).await.unwrap();
    b_ns.set("k", b("b"), Expiry::Never).await.unwrap();
    a.clear().await.unwrap();
    assert_eq!(a.get("k").await.unwrap(), None);
    assert_eq!(b_ns.get("k").await.unwrap(), Some(b("b")));
    for k in [&foreign, &lookalike] {
        let v = other_app
            .get(k)
            .await
            .unwrap()
            .expect("a foreign key survives clear");
        assert_eq!(v.data.as_deref(), Some(&b"theirs"[..]));
    }
}

#[tokio::test]
async fn an_evicted_generation_never_resurrects_old_values() {
    let ns = conformance_tests::random_namespace();
    let a = common::backend(&ns).await;
    a.set("k", b("old"), Expiry::Never).await.unwrap();
    assert_eq!(a.get("k").await.unwrap(), Some(b("old")));
    // Memcached evicts the generation key (here: someone deletes it).
    let mut raw = common::raw(&common::url().await).await;
    raw.delete(format!("{ns}:#gen")).await.unwrap();
    assert_eq!(
        a.get("k").await.unwrap(),
        None,
        "this process, which knew the old generation"
    );
    let fresh = common::backend(&ns).await;
    assert_eq!(fresh.get("k").await.unwrap(), None, "a new process");
    fresh.set("k", b("new"), Expiry::Never).await.unwrap();
    assert_eq!(a.get("k").await.unwrap(), Some(b("new")));
}

#[tokio::test]
async fn another_process_clear_reaches_reads_at_once_and_writes_within_the_bound() {
    let ns = conformance_tests::random_namespace();
    let trust = Duration::from_millis(300);
    // Two backends with their own generation copies: two processes.
    let p1 = common::builder(&ns)
        .await
        .generation_check(trust)
        .build()
        .await
        .unwrap();
    let p2 = common::builder(&ns)
        .await
        .generation_check(trust)
        .build()
        .await
        .unwrap();
    p1.set("k", b("v"), Expiry::Never).await.unwrap();
    assert_eq!(p2.get("k").await.unwrap(), Some(b("v")));
    p2.clear().await.unwrap();
    // Reads check the generation in the same round trip.
    assert_eq!(p1.get("k").await.unwrap(), None);
    assert!(!p1.has("k").await.unwrap());
    assert_eq!(p1.get_many(&["k"]).await.unwrap(), vec![None]);
    // That read refreshed p1's copy, so this write lands in the new generation.
    p1.set("k2", b("v2"), Expiry::Never).await.unwrap();
    assert_eq!(p2.get("k2").await.unwrap(), Some(b("v2")));
    // A write with nothing read since the other process's clear, once the copy is
    // older than the bound, also lands in the new generation.
    p1.set("k3", b("v3"), Expiry::Never).await.unwrap();
    p2.clear().await.unwrap();
    tokio::time::sleep(trust + Duration::from_millis(50)).await;
    p1.set("k4", b("v4"), Expiry::Never).await.unwrap();
    assert_eq!(p2.get("k4").await.unwrap(), Some(b("v4")));
    assert_eq!(p2.get("k3").await.unwrap(), None);
}

#[tokio::test]
async fn a_ttl_over_30_days_is_kept_not_read_as_a_past_timestamp() {
    let a = common::backend(&conformance_tests::random_namespace()).await;
    a.set(
        "month",
        b("v"),
        Expiry::After(Duration::from_secs(31 * 86_400)),
    )
    .await
    .unwrap();
    assert_eq!(a.get("month").await.unwrap(), Some(b("v")));
    // The server's own TTL: about 31 days, not "already past". The deadline is sent as a
    // Unix timestamp, which memcached converts on its own second-granularity clock: allow
    // a few seconds either way.
    let mut raw = common::raw(&common::url().await).await;
    let g = raw
        .meta_get(format!("{}:#gen", a.namespace()), false, None, Some(&["v"]))
        .await
        .unwrap()
        .and_then(|v| v.data)
        .map(|d| String::from_utf8(d).unwrap())
        .unwrap();
    let item = raw
        .meta_get(
            format!("{}@{g}:month", a.namespace()),
            false,
            None,
            Some(&["t"]),
        )
        .await
        .unwrap()
        .expect("stored");
    let ttl = item.ttl_remaining.unwrap();
    assert!(
        (31 * 86_400 - 5..=31 * 86_400 + 5).contains(&ttl),
        "server TTL {ttl} s"
    );
}

#[tokio::test]
async fn subsecond_ttls_are_exact_although_memcached_counts_seconds() {
    let a = common::backend(&conformance_tests::random_namespace()).await;
    a.set("k", b("v"), Expiry::After(Duration::from_millis(150)))
        .await
        .unwrap();
    assert_eq!(a.get("k").await.unwrap(), Some(b("v")));
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(a.get("k").await.unwrap(), None);
    assert!(
        !a.delete("k").await.unwrap(),
        "an expired value is not live"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delete_is_done_before_it_returns_whatever_connection_reads_next() {
    // Deletes go out as `noreply`; the next read may run on another pooled connection.
    let a = std::sync::Arc::new(common::backend(&conformance_tests::random_namespace()).await);
    let tasks: Vec<_> = (0..8)
        .map(|t| {
            let a = a.clone();
            tokio::spawn(async move {
                for i in 0..50 {
                    let k = format!("k{t}-{i}");
                    a.set(&k, b("v"), Expiry::Never).await.unwrap();
                    assert!(a.delete(&k).await.unwrap());
                    assert_eq!(a.get(&k).await.unwrap(), None, "{k} read after its delete");
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
}
