//! Glob characters in a namespace cannot widen `clear`: on a single server and on
//! the cluster, clearing `p*`, `p?`, `p[x]` or `p\` leaves the namespaces they would
//! match as patterns untouched.

use crate::common::{backend, Target};
use cache_core::{Bytes, CacheBackend, Expiry};

async fn clear_is_exact(target: Target) {
    let p = conformance_tests::random_namespace();
    let globs = [
        format!("{p}*"),
        format!("{p}?"),
        format!("{p}[x]"),
        format!("{p}\\"),
        format!("{p}^-"),
    ];
    // Names each glob above would match if it were not escaped.
    let victims = [
        p.clone(),
        format!("{p}x"),
        format!("{p}abc"),
        format!("{p}-"),
    ];
    let mut glob_backends = Vec::new();
    for ns in &globs {
        let b = backend(&target, ns).await;
        b.set("k", Bytes::from_static(b"glob"), Expiry::Never)
            .await
            .unwrap();
        glob_backends.push(b);
    }
    let mut victim_backends = Vec::new();
    for ns in &victims {
        let b = backend(&target, ns).await;
        for i in 0..5 {
            b.set(&format!("k{i}"), Bytes::from_static(b"keep"), Expiry::Never)
                .await
                .unwrap();
        }
        victim_backends.push(b);
    }
    for b in &glob_backends {
        b.clear().await.unwrap();
        assert_eq!(b.get("k").await.unwrap(), None, "clear removed its own key");
    }
    for (ns, b) in victims.iter().zip(&victim_backends) {
        for i in 0..5 {
            assert_eq!(
                b.get(&format!("k{i}")).await.unwrap().as_deref(),
                Some(&b"keep"[..]),
                "clearing a glob namespace removed {ns}:k{i}"
            );
        }
    }
}

#[tokio::test]
async fn glob_namespaces_clear_exactly_on_a_single_server() {
    clear_is_exact(Target::Single).await;
}

#[tokio::test]
async fn glob_namespaces_clear_exactly_on_the_cluster() {
    clear_is_exact(Target::Cluster).await;
}

/// `with_namespace` gives a backend on the same connection with its own namespace:
/// values and `clear` stay apart, a bad namespace is refused, a closed handle says so.
#[tokio::test]
async fn with_namespace_shares_the_connection_not_the_keys() {
    let a = backend(&Target::Single, &conformance_tests::random_namespace()).await;
    let b = a
        .with_namespace(&conformance_tests::random_namespace())
        .unwrap();
    a.set("k", Bytes::from_static(b"a"), Expiry::Never)
        .await
        .unwrap();
    b.set("k", Bytes::from_static(b"b"), Expiry::Never)
        .await
        .unwrap();
    b.clear().await.unwrap();
    assert_eq!(a.get("k").await.unwrap(), Some(Bytes::from_static(b"a")));
    assert_eq!(b.get("k").await.unwrap(), None);
    let bad = a.with_namespace("has space").unwrap_err();
    assert_eq!(bad.kind(), cache_core::ErrorKind::Config);
    b.close().await.unwrap();
    assert_eq!(
        a.get("k").await.unwrap(),
        Some(Bytes::from_static(b"a")),
        "a stays open"
    );
    a.clear().await.unwrap();
    a.close().await.unwrap();
    let closed = a.with_namespace("other").unwrap_err();
    assert_eq!(closed.kind(), cache_core::ErrorKind::Closed);
}
