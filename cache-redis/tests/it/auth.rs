//! TLS with a password: a wrong or missing password is a clear `Config` error at
//! once, not a retry loop; secrets never show in Debug output or errors.

use crate::common::env;
use cache_core::ErrorKind;
use cache_redis::RedisBuilder;
use std::time::{Duration, Instant};

fn tls_url_with_password(password: &str) -> String {
    let url = env("CACHE_TEST_REDIS_TLS_URL");
    let at = url.find('@').expect("the TLS URL carries a password");
    format!("rediss://:{password}{}", &url[at..])
}

#[tokio::test]
async fn wrong_password_is_a_config_error_without_retrying() {
    let started = Instant::now();
    let err = RedisBuilder::new(tls_url_with_password("not-the-password"))
        .tls_ca_file(env("CACHE_TEST_REDIS_TLS_CA"))
        .connect_timeout(Duration::from_secs(30))
        .build()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config, "{err}");
    assert!(!err.to_string().contains("not-the-password"), "{err}");
    // A retry loop would run into the 30 s connect timeout; one attempt takes milliseconds.
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn missing_password_is_a_config_error() {
    let url = env("CACHE_TEST_REDIS_TLS_URL");
    let at = url.find('@').unwrap();
    let err = RedisBuilder::new(format!("rediss://{}", &url[at + 1..]))
        .tls_ca_file(env("CACHE_TEST_REDIS_TLS_CA"))
        .build()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config, "{err}");
}

#[tokio::test]
async fn untrusted_certificate_is_refused() {
    // Without our CA the server's certificate cannot be verified.
    let err = RedisBuilder::new(env("CACHE_TEST_REDIS_TLS_URL"))
        .build()
        .await
        .unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::Unavailable | ErrorKind::Config),
        "{err}"
    );
}

#[tokio::test]
async fn debug_output_hides_the_password() {
    let url = env("CACHE_TEST_REDIS_TLS_URL");
    let password = &url["rediss://:".len()..url.find('@').unwrap()];
    let backend = RedisBuilder::new(url.clone())
        .tls_ca_file(env("CACHE_TEST_REDIS_TLS_CA"))
        .namespace("auth-debug")
        .build()
        .await
        .expect("the TLS server accepts the right password");
    let dbg = format!("{backend:?}");
    assert!(!dbg.contains(password), "{dbg}");
    assert!(dbg.contains("rediss://:***@127.0.0.1"), "{dbg}");
}

#[tokio::test]
async fn bad_urls_and_namespaces_are_config_errors() {
    let url = conformance_tests::servers::address(&conformance_tests::servers::REDIS).await;
    for b in [
        RedisBuilder::new("http://127.0.0.1:1"),
        RedisBuilder::new(url.clone()).namespace("has space"),
        RedisBuilder::new(url.clone()).namespace("a:b"),
        RedisBuilder::new(url.clone()).timeout(Duration::ZERO),
        RedisBuilder::new(url.clone()).tls_ca_file("/nonexistent/ca.pem"),
    ] {
        let err = b.build().await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config, "{err}");
    }
}

#[tokio::test]
async fn unreachable_server_is_unavailable() {
    // Port 1 on loopback: nothing listens there.
    let err = RedisBuilder::new("redis://127.0.0.1:1")
        .build()
        .await
        .unwrap_err();
    assert!(err.is_transient(), "{err}");
}
