//! Configuration and connection errors: each the right kind, at once, with a message
//! that says what to do.

use crate::common;
use cache_core::{Bytes, CacheBackend, ErrorKind, Expiry};
use cache_memcached::{MemcachedBuilder, MemcachedConfig};
use std::time::{Duration, Instant};

#[tokio::test]
async fn unreachable_server_is_unavailable_within_the_connect_timeout_and_named() {
    let port = conformance_tests::servers::OwnProcess::free_port();
    let addr = format!("127.0.0.1:{port}");
    let started = Instant::now();
    let err = MemcachedBuilder::new(addr.clone())
        .connect_timeout(Duration::from_millis(500))
        .build()
        .await
        .unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::Unavailable | ErrorKind::Timeout),
        "{err}"
    );
    assert!(err.to_string().contains(&addr), "{err}");
    assert!(started.elapsed() < Duration::from_secs(2));
    // One bad server of several is enough to refuse: the ring would be wrong.
    let mut servers = common::servers();
    servers.push(addr.clone());
    let err = MemcachedBuilder::default()
        .servers(servers)
        .build()
        .await
        .unwrap_err();
    assert!(err.to_string().contains(&addr), "{err}");
}

#[tokio::test]
async fn bad_settings_are_config_errors() {
    let url = common::url().await;
    let cases: Vec<(&str, MemcachedBuilder)> = vec![
        (
            "no servers",
            MemcachedBuilder::default().servers(Vec::<String>::new()),
        ),
        (
            "a server twice",
            MemcachedBuilder::default().servers([url.clone(), url.clone()]),
        ),
        ("an empty address", MemcachedBuilder::new("")),
        ("a bad address", MemcachedBuilder::new("tcp://")),
        (
            "a zero timeout",
            MemcachedBuilder::new(url.clone()).timeout(Duration::ZERO),
        ),
        ("no pool", MemcachedBuilder::new(url.clone()).pool_size(0)),
        (
            "a namespace with ':'",
            MemcachedBuilder::new(url.clone()).namespace("a:b"),
        ),
        (
            "a namespace with a space",
            MemcachedBuilder::new(url.clone()).namespace("a b"),
        ),
    ];
    for (what, builder) in cases {
        let err = builder.build().await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config, "{what}: {err}");
    }
}

#[tokio::test]
async fn a_value_over_the_servers_item_limit_is_invalid_input_and_the_backend_goes_on() {
    // max_value_size set above the server's 1 MiB item limit: the server refuses.
    let backend = common::builder(&conformance_tests::random_namespace())
        .await
        .max_value_size(4 * 1024 * 1024)
        .build()
        .await
        .unwrap();
    let big = Bytes::from(vec![1u8; 2 * 1024 * 1024]);
    let err = backend.set("big", big, Expiry::Never).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    assert!(err.to_string().contains("-I"), "{err}");
    backend
        .set("small", Bytes::from_static(b"ok"), Expiry::Never)
        .await
        .unwrap();
    assert_eq!(
        backend.get("small").await.unwrap().as_deref(),
        Some(&b"ok"[..])
    );
}

#[test]
fn config_defaults_and_a_debug_that_names_the_servers() {
    let cfg = MemcachedConfig::default();
    assert_eq!(cfg.servers, vec!["127.0.0.1:11211".to_string()]);
    assert_eq!(cfg.max_value_size, 1024 * 1024 - 512);
    let dbg = format!("{cfg:?}");
    assert!(dbg.contains("127.0.0.1:11211"), "{dbg}");
    let builder = MemcachedBuilder::from_config(cfg);
    assert!(format!("{builder:?}").contains("generation_check"));
}
