//! Configuration and connection errors: each the right kind, at once, with a message
//! that says what to do; secrets never in Debug output; identifiers never pasted.

use crate::common;
use cache_core::{CacheBackend, ErrorKind, Expiry};
use cache_postgres::PostgresBuilder;
use std::time::{Duration, Instant};

fn with_password(url: &str, password: &str) -> String {
    // postgres://user:password@host... -> the same with another password.
    let (scheme, rest) = url.split_once("://").unwrap();
    let (userinfo, host) = rest.split_once('@').unwrap();
    let user = userinfo.split(':').next().unwrap();
    format!("{scheme}://{user}:{password}@{host}")
}

#[tokio::test]
async fn wrong_password_is_a_config_error_at_once() {
    let url = with_password(&common::url().await, "not-the-password");
    let started = Instant::now();
    let err = PostgresBuilder::new(url).build().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config, "{err}");
    assert!(err.to_string().contains("password"), "{err}");
    assert!(!err.to_string().contains("not-the-password"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(3), "no retry loop");
}

#[tokio::test]
async fn missing_database_is_a_config_error() {
    let url = common::url().await;
    let (base, _) = url.rsplit_once('/').unwrap();
    let query = url.split_once('?').map_or("", |(_, q)| q);
    let err = PostgresBuilder::new(format!("{base}/no_such_db_here?{query}"))
        .build()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config, "{err}");
    assert!(err.to_string().contains("database does not exist"), "{err}");
}

#[tokio::test]
async fn missing_schema_is_a_config_error() {
    let err = common::builder("ns")
        .await
        .schema("no_such_schema")
        .build()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config, "{err}");
}

#[tokio::test]
async fn unreachable_server_is_unavailable_within_the_connect_timeout() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let started = Instant::now();
    let err = PostgresBuilder::new(format!("postgres://postgres@127.0.0.1:{port}/db"))
        .connect_timeout(Duration::from_millis(500))
        .build()
        .await
        .unwrap_err();
    assert!(err.is_transient(), "{err}");
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn bad_settings_are_config_errors() {
    for b in [
        PostgresBuilder::new("not a dsn = = ="),
        PostgresBuilder::new("postgres://h/db").namespace("a b"),
        PostgresBuilder::new("postgres://h/db").table(""),
        PostgresBuilder::new("postgres://h/db").table("t".repeat(64)),
        PostgresBuilder::new("postgres://h/db").pool_size(0),
        PostgresBuilder::new("postgres://h/db").timeout(Duration::ZERO),
        PostgresBuilder::new("postgres://h/db").sweep_interval(Some(Duration::ZERO)),
    ] {
        let err = b.build().await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config, "{err}");
    }
}

#[tokio::test]
async fn debug_output_hides_the_password() {
    let url = common::url().await;
    let password = url
        .split_once("://")
        .unwrap()
        .1
        .split_once('@')
        .unwrap()
        .0
        .split_once(':')
        .unwrap()
        .1
        .to_owned();
    let backend = common::backend("dbg").await;
    let dbg = format!("{backend:?}");
    assert!(!dbg.contains(&password), "{dbg}");
}

#[tokio::test]
async fn hostile_table_and_schema_names_are_identifiers_not_sql() {
    let client = raw_client().await;
    client
        .batch_execute("CREATE SCHEMA IF NOT EXISTS \"we'ird; %_\\\"\"\"")
        .await
        .unwrap();
    let b = common::builder(&conformance_tests::random_namespace())
        .await
        .schema("we'ird; %_\\\"")
        .table("t'); DROP TABLE cache_entries; --")
        .build()
        .await
        .unwrap();
    b.set("k", "v".into(), Expiry::Never).await.unwrap();
    assert_eq!(b.get("k").await.unwrap().as_deref(), Some(&b"v"[..]));
    // The default table is still there (it exists once the harness ran; make sure).
    common::backend("check").await;
    let n: i64 = client
        .query_one(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = 'cache_entries'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(n >= 1);
}

#[tokio::test]
async fn tables_are_created_once_when_many_start_at_once() {
    let table = format!("race_{}", &conformance_tests::random_namespace()[3..]);
    let url = common::url().await;
    let builds: Vec<_> = (0..8)
        .map(|_| {
            let (url, table) = (url.clone(), table.clone());
            tokio::spawn(async move { PostgresBuilder::new(url).table(table).build().await })
        })
        .collect();
    for b in builds {
        b.await.unwrap().expect("a concurrent start succeeds");
    }
}

#[tokio::test]
async fn sweep_deletes_expired_rows_only() {
    let b = common::builder(&conformance_tests::random_namespace())
        .await
        .table("sweep_test")
        .sweep_interval(None)
        .build()
        .await
        .unwrap();
    b.set("short", "v".into(), Expiry::millis(1)).await.unwrap();
    b.set("long", "v".into(), Expiry::Never).await.unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(b.sweep().await.unwrap() >= 1);
    assert_eq!(b.get("long").await.unwrap().as_deref(), Some(&b"v"[..]));
    assert_eq!(b.sweep().await.unwrap(), 0);
}

pub async fn raw_client() -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(&common::url().await, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    client
}
