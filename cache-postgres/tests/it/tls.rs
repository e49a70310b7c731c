//! TLS: the test server offers TLS with a throwaway CA, and its role `cache_tls` may
//! log in over TLS only, so a working backend as `cache_tls` is a TLS connection.

// Most of this file needs the `tls` feature; without it the imports are unused.
#![cfg_attr(not(feature = "tls"), allow(unused_imports))]

use crate::common;
use cache_core::{CacheBackend, ErrorKind, Expiry};
use cache_postgres::PostgresBuilder;
use std::time::Duration;

#[cfg(feature = "tls")]
fn tls_url() -> String {
    common::env("CACHE_TEST_POSTGRES_TLS_URL")
}

#[cfg(feature = "tls")]
#[tokio::test]
async fn a_tls_only_role_works_with_the_servers_ca() {
    let backend = PostgresBuilder::new(tls_url())
        .tls_ca_file(common::env("CACHE_TEST_POSTGRES_TLS_CA"))
        .table("cache_tls_entries")
        .namespace("tls")
        .build()
        .await
        .expect("a TLS connection verified against the test CA");
    let ttl = Expiry::After(Duration::from_secs(60));
    backend
        .set("k", b"over tls".to_vec().into(), ttl)
        .await
        .unwrap();
    assert_eq!(
        backend.get("k").await.unwrap().as_deref(),
        Some(&b"over tls"[..])
    );
    assert!(backend.delete("k").await.unwrap());
}

#[cfg(feature = "tls")]
#[tokio::test]
async fn the_same_role_without_tls_is_refused() {
    let plain = tls_url().replace("sslmode=require", "sslmode=disable");
    let err = PostgresBuilder::new(plain).build().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config, "{err}");
}

#[cfg(feature = "tls")]
#[tokio::test]
async fn a_certificate_from_an_unknown_ca_is_refused_with_a_clear_error() {
    // No tls_ca_file: the system's roots, which never signed the test CA.
    let err = PostgresBuilder::new(tls_url()).build().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config, "{err}");
    assert!(err.to_string().contains("TLS handshake"), "{err}");
    assert!(err.to_string().contains("tls_ca_file"), "{err}");
}

#[cfg(feature = "tls")]
#[tokio::test]
async fn a_host_name_the_certificate_does_not_name_is_refused() {
    // The certificate names 127.0.0.1 and localhost; `hostaddr` reaches the server
    // while TLS checks the certificate against the name in `host`.
    let url = tls_url().replace("127.0.0.1", "not-in-the-cert.invalid") + "&hostaddr=127.0.0.1";
    let err = PostgresBuilder::new(url)
        .tls_ca_file(common::env("CACHE_TEST_POSTGRES_TLS_CA"))
        .build()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config, "{err}");
    assert!(err.to_string().contains("TLS handshake"), "{err}");
}

#[cfg(feature = "tls")]
#[tokio::test]
async fn a_ca_file_that_is_missing_or_not_pem_is_a_config_error() {
    let dir = std::env::temp_dir().join(format!("cache-pg-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let not_pem = dir.join("not.pem");
    std::fs::write(&not_pem, "hello").unwrap();
    for path in [dir.join("missing.pem"), not_pem] {
        let err = PostgresBuilder::new(tls_url())
            .tls_ca_file(&path)
            .build()
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config, "{err}");
        assert!(err.to_string().contains("tls_ca_file"), "{err}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Without the feature, asking for TLS is an error, never a silent plain connection.
#[cfg(not(feature = "tls"))]
#[tokio::test]
async fn without_the_feature_asking_for_tls_is_a_config_error() {
    for builder in [
        PostgresBuilder::new("postgres://u@127.0.0.1:1/db?sslmode=require"),
        PostgresBuilder::new("postgres://u@127.0.0.1:1/db").tls_ca_file("/ca.pem"),
    ] {
        let err = builder.build().await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config, "{err}");
        assert!(err.to_string().contains("`tls` feature"), "{err}");
    }
}
