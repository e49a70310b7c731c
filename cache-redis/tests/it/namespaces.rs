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
