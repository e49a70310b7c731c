//! Parsing cache URLs (no I/O); connecting is tested against real servers in
//! tests/from_url.rs.

use super::*;

/// Parse as a build with every feature would.
fn parse(url: &str) -> std::result::Result<CacheUrl, UrlError> {
    parse_with(url, |_| true)
}

fn store(url: &str) -> Store {
    parse(url).unwrap_or_else(|e| panic!("{url}: {e}")).store
}

fn malformed(url: &str) -> String {
    match parse(url) {
        Err(UrlError::Malformed { reason, .. }) => reason,
        other => panic!("{url}: expected Malformed, got {other:?}"),
    }
}

#[test]
fn memory_forms() {
    for url in ["memory:", "memory://", "MEMORY:", "memory:?namespace=app"] {
        assert_eq!(store(url), Store::Memory { max_entries: None }, "{url}");
    }
    assert_eq!(
        store("memory://?max_entries=500&namespace=a"),
        Store::Memory {
            max_entries: Some(500)
        }
    );
    assert!(malformed("memory://host").contains("no host or path"));
    assert!(malformed("memory:?max_entries=lots").contains("whole number"));
    assert!(malformed("memory:?max_entrie=5").contains("unknown parameter `max_entrie`"));
}

#[test]
fn the_namespace_comes_from_the_url_else_the_default() {
    let u = parse("redis://h:6379/0?namespace=orders").unwrap();
    assert_eq!(u.namespace(), Some("orders"));
    assert_eq!(
        u.clone().default_namespace("app").namespace(),
        Some("orders")
    );
    let u = parse("redis://h:6379/0").unwrap();
    assert_eq!(u.namespace(), None);
    assert_eq!(u.default_namespace("app").namespace(), Some("app"));
    // %-escapes are decoded.
    assert_eq!(
        parse("memory:?namespace=a%2Db").unwrap().namespace(),
        Some("a-b")
    );
    assert!(malformed("memory:?namespace=a&namespace=b").contains("twice"));
    assert!(malformed("memory:?namespace=").contains("needs a value"));
    assert!(malformed("memory:?namespace=%zz").contains("bad %-escape"));
}

#[test]
fn redis_forms_keep_the_drivers_parameters() {
    assert_eq!(
        store("redis://:pw@h:6379/2?namespace=app&protocol=resp3"),
        Store::Redis {
            url: "redis://:pw@h:6379/2?protocol=resp3".into()
        }
    );
    assert_eq!(
        store("rediss://h"),
        Store::Redis {
            url: "rediss://h".into()
        }
    );
    assert_eq!(
        store("redis+unix:///run/redis.sock?namespace=a"),
        Store::Redis {
            url: "redis+unix:///run/redis.sock".into()
        }
    );
    assert!(malformed("redis://").contains("no host"));
    assert!(malformed("redis://:pw@/0").contains("no host"));
    assert!(malformed("redis:h:6379").contains("must start with //"));
}

#[test]
fn redis_cluster_urls_become_seed_nodes() {
    assert_eq!(
        store("redis+cluster://:pw@10.0.0.1:7000,10.0.0.2:7001?namespace=a"),
        Store::RedisCluster {
            urls: vec![
                "redis://:pw@10.0.0.1:7000".into(),
                "redis://:pw@10.0.0.2:7001".into()
            ]
        }
    );
    assert_eq!(
        store("rediss+cluster://a:7000"),
        Store::RedisCluster {
            urls: vec!["rediss://a:7000".into()]
        }
    );
    assert!(malformed("redis+cluster://a:1,,b:2").contains("seed nodes"));
}

#[test]
fn postgres_and_mongodb_urls_go_to_their_drivers() {
    assert_eq!(
        store("postgresql://app:pw@db:5432/app?sslmode=require&namespace=n"),
        Store::Postgres {
            dsn: "postgresql://app:pw@db:5432/app?sslmode=require".into()
        }
    );
    // A socket directory instead of a host is the driver's to read.
    assert_eq!(
        store("postgres:///app?host=/run/postgresql"),
        Store::Postgres {
            dsn: "postgres:///app?host=/run/postgresql".into()
        }
    );
    assert_eq!(
        store("mongodb+srv://u:pw@cluster0.example.net/app?namespace=x&retryWrites=true"),
        Store::Mongo {
            uri: "mongodb+srv://u:pw@cluster0.example.net/app?retryWrites=true".into()
        }
    );
    assert!(malformed("mongodb:///app").contains("no host"));
    assert!(malformed("postgres:app").contains("must start with //"));
}

#[test]
fn memcached_lists_servers_with_the_default_port() {
    assert_eq!(
        store("memcached://a:11211,b,[::1],[::1]:21211/?namespace=n"),
        Store::Memcached {
            servers: vec![
                "a:11211".into(),
                "b:11211".into(),
                "[::1]:11211".into(),
                "[::1]:21211".into()
            ]
        }
    );
    assert!(malformed("memcached://a:port").contains("not host[:port]"));
    assert!(malformed("memcached://a:0").contains("not host[:port]"));
    assert!(malformed("memcached://a,").contains("not host[:port]"));
    assert!(malformed("memcached://u:pw@a").contains("no authentication"));
    assert!(malformed("memcached://a/0").contains("no databases"));
    assert!(malformed("memcached://a?timeout=5").contains("unknown parameter `timeout`"));
}

#[test]
fn dynamodb_and_firestore_forms() {
    assert_eq!(
        store("dynamodb://"),
        Store::Dynamo {
            table: None,
            region: None,
            endpoint: None
        }
    );
    assert_eq!(
        store("dynamodb://cache?region=eu-west-1&endpoint=http://127.0.0.1:8000&namespace=a"),
        Store::Dynamo {
            table: Some("cache".into()),
            region: Some("eu-west-1".into()),
            endpoint: Some("http://127.0.0.1:8000".into())
        }
    );
    assert!(malformed("dynamodb://key:secret@cache").contains("credential chain"));
    assert!(malformed("dynamodb://cache?secret=x").contains("unknown parameter `secret`"));
    assert_eq!(
        store("firestore://my-project?database=cache&collection=entries"),
        Store::Firestore {
            project: "my-project".into(),
            database: Some("cache".into()),
            collection: Some("entries".into())
        }
    );
    assert!(malformed("firestore://").contains("firestore://project-id"));
}

#[test]
fn unknown_schemes_and_urls_without_one() {
    assert_eq!(
        parse("mysql://h/db").unwrap_err(),
        UrlError::UnknownScheme {
            scheme: "mysql".into()
        }
    );
    let msg = parse("mysql://h/db").unwrap_err().to_string();
    assert!(msg.contains("redis://") && msg.contains("memory:"), "{msg}");
    assert!(malformed("localhost").contains("no scheme"));
    assert!(malformed("127.0.0.1:6379").contains("no scheme"));
}

#[test]
fn a_scheme_whose_feature_is_off_names_the_feature() {
    let only_memory = |f: &str| f == "memory";
    for (url, feature) in [
        ("redis://h", "redis"),
        ("rediss+cluster://h:1", "redis"),
        ("postgresql://h/db", "postgres"),
        ("memcached://h", "memcached"),
        ("mongodb://h", "mongodb"),
        ("dynamodb://t", "dynamodb"),
        ("firestore://p", "firestore"),
    ] {
        let err = parse_with(url, only_memory).unwrap_err();
        assert!(
            matches!(err, UrlError::FeatureDisabled { feature: f, .. } if f == feature),
            "{url}: {err:?}"
        );
        let msg = err.to_string();
        assert!(
            msg.contains(&format!(
                "enable it (cache = {{ features = [\"{feature}\"] }}"
            )),
            "{msg}"
        );
    }
    assert!(parse_with("memory:", only_memory).is_ok());
}

#[test]
fn messages_never_show_a_password() {
    let bad = [
        "redis://:hunter2@h:6379/0?namespace=a&namespace=b",
        "rediss://app:hunter2@h?namespace=",
        "postgres://app:hunter2@h/db?password=hunter2&namespace=%z",
        "memcached://app:hunter2@h",
        "dynamodb://key:hunter2@table",
        "redis:app:hunter2@h",
    ];
    for url in bad {
        let err = parse(url).unwrap_err();
        for shown in [
            err.to_string(),
            format!("{err:?}"),
            Error::from(err).to_string(),
        ] {
            assert!(!shown.contains("hunter2"), "{url}: {shown}");
        }
    }
    let u = parse("redis://app:hunter2@h:6379/0?namespace=a").unwrap();
    for shown in [u.to_string(), format!("{u:?}"), u.redacted()] {
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("h:6379"), "{shown}");
    }
}

#[test]
fn url_errors_become_config_errors_with_the_url_error_as_source() {
    let err = Error::from(parse("mysql://h").unwrap_err());
    assert_eq!(err.kind(), ErrorKind::Config);
    let source = std::error::Error::source(&err).expect("a source");
    assert!(matches!(
        source.downcast_ref::<UrlError>(),
        Some(UrlError::UnknownScheme { .. })
    ));
    let err = Error::from(parse_with("redis://h", |f| f == "memory").unwrap_err());
    assert_eq!(err.backend(), Some("redis"));
    let err = Error::from(parse("memcached://h:x").unwrap_err());
    assert_eq!(err.backend(), Some("memcached"));
}

#[test]
fn backend_name_and_scheme() {
    let u: CacheUrl = "PostgreSQL://h/db".parse().unwrap();
    assert_eq!(u.scheme(), "postgresql");
    assert_eq!(u.backend_name(), "postgres");
    assert_eq!(parse("mongodb+srv://h").unwrap().backend_name(), "mongodb");
}
