//! `cache::from_url` against the real servers: each scheme connects to its store, in the
//! URL's namespace. Run through `bash scripts/test.sh redis postgres memcached mongodb
//! -p cache` (it adds `--all-features`), which starts the servers and sets
//! `CACHE_TEST_*`; a test whose variable is missing fails and says so.
//!
//! The parsing (every form and error case) is unit-tested in src/url/tests.rs.

use cache::{Cache, CacheBackend, CacheUrl, ErrorKind, UrlError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A namespace no other run or test uses.
#[allow(dead_code)] // unused when no networked feature is on
fn fresh_namespace(tag: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("url-{tag}-{}-{nanos}", std::process::id())
}

/// `url` with `name=value` added to its query.
#[allow(dead_code)] // unused when no networked feature is on
fn with_param(url: &str, name: &str, value: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}{name}={value}")
}

#[allow(dead_code)]
fn server_var(name: &str, store: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "{name} is not set: run `bash scripts/test.sh {store} -p cache` \
             (it starts the {store} servers and sets it)"
        )
    })
}

/// The cache works, is on `backend` in `namespace`, and a second cache from the same
/// URL reads what the first wrote: the value went through the store.
async fn round_trip(url: &str, backend: &str, namespace: &str) {
    let a = cache::from_url(url).await.unwrap_or_else(|e| panic!("{e}"));
    let b = cache::from_url(url).await.unwrap();
    assert_eq!(a.capabilities().name, backend);
    assert_eq!(a.backend().namespace(), namespace);
    a.set("k", &42u32, Duration::from_secs(60)).await.unwrap();
    if backend != "memory" {
        assert_eq!(b.get::<u32>("k").await.unwrap(), Some(42), "{backend}");
    }
    assert_eq!(a.get::<u32>("k").await.unwrap(), Some(42));
    a.clear().await.unwrap();
    a.close().await.unwrap();
    b.close().await.unwrap();
}

#[tokio::test]
async fn memory() {
    round_trip("memory:?namespace=app", "memory", "app").await;
    round_trip("memory://?max_entries=100", "memory", "default").await;
    // A namespace for URLs without one; the URL's wins.
    let c = CacheUrl::parse("memory:")
        .unwrap()
        .default_namespace("orders")
        .connect()
        .await
        .unwrap();
    assert_eq!(c.backend().namespace(), "orders");
    let c = CacheUrl::parse("memory:?namespace=ops")
        .unwrap()
        .default_namespace("orders")
        .connect()
        .await
        .unwrap();
    assert_eq!(c.backend().namespace(), "ops");
}

#[tokio::test]
async fn builder_takes_the_caches_settings() {
    let cache: Cache = CacheUrl::parse("memory:")
        .unwrap()
        .builder()
        .await
        .unwrap()
        .default_expiry(Duration::from_secs(5))
        .build();
    assert_eq!(
        cache.default_expiry(),
        cache::Expiry::After(Duration::from_secs(5))
    );
}

#[tokio::test]
async fn an_invalid_namespace_is_the_backends_config_error() {
    let err = cache::from_url("memory:?namespace=a%20b")
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config, "{err}");
}

#[tokio::test]
async fn errors_of_from_url_carry_the_url_error() {
    let err = cache::from_url("mysql://h/db").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    let why = std::error::Error::source(&err)
        .and_then(|s| s.downcast_ref::<UrlError>())
        .expect("the UrlError as source");
    assert_eq!(
        why,
        &UrlError::UnknownScheme {
            scheme: "mysql".into()
        }
    );
    let err = cache::from_url("memory://u:hunter2@h").await.unwrap_err();
    let shown = err.to_string();
    assert!(
        shown.contains("no host or path") && !shown.contains("hunter2"),
        "{shown}"
    );
}

/// Whatever the features of this build, each scheme either parses or says which
/// feature of the `cache` crate to enable.
#[test]
fn each_scheme_needs_its_feature() {
    for (url, feature, on) in [
        ("memory:", "memory", cfg!(feature = "memory")),
        ("redis://h", "redis", cfg!(feature = "redis")),
        ("postgres://h/db", "postgres", cfg!(feature = "postgres")),
        ("memcached://h", "memcached", cfg!(feature = "memcached")),
        ("mongodb://h", "mongodb", cfg!(feature = "mongodb")),
        ("dynamodb://t", "dynamodb", cfg!(feature = "dynamodb")),
        ("firestore://p", "firestore", cfg!(feature = "firestore")),
    ] {
        match CacheUrl::parse(url) {
            Ok(u) => {
                assert!(on, "{url} parsed without the {feature} feature");
                assert_eq!(u.backend_name(), feature);
            }
            Err(UrlError::FeatureDisabled { feature: f, .. }) => {
                assert!(!on, "{url}: refused with the {feature} feature on");
                assert_eq!(f, feature);
            }
            Err(e) => panic!("{url}: {e}"),
        }
    }
}

#[cfg(feature = "redis")]
mod redis {
    use super::*;

    #[tokio::test]
    async fn single_server() {
        let ns = fresh_namespace("redis");
        let url = with_param(
            &server_var("CACHE_TEST_REDIS_URL", "redis"),
            "namespace",
            &ns,
        );
        round_trip(&url, "redis", &ns).await;
    }

    #[tokio::test]
    async fn cluster_from_its_seed_nodes() {
        // redis://127.0.0.1:17000,redis://127.0.0.1:17001,... as one cluster URL
        let seeds = server_var("CACHE_TEST_REDIS_CLUSTER_URLS", "redis");
        let hosts: Vec<&str> = seeds
            .split(',')
            .map(|u| u.trim_start_matches("redis://"))
            .collect();
        let ns = fresh_namespace("cluster");
        let url = format!("redis+cluster://{}?namespace={ns}", hosts.join(","));
        round_trip(&url, "redis", &ns).await;
    }

    /// A closed port: the eager connect fails at once as a transient error; the lazy
    /// one returns a cache whose calls fail fast until the store is up.
    #[tokio::test]
    async fn eager_and_lazy_connect_to_a_store_that_is_down() {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let url = format!("redis://127.0.0.1:{port}");
        let err = cache::from_url(&url).await.unwrap_err();
        assert!(err.is_transient(), "{err}");
        let cache = CacheUrl::parse(&url)
            .unwrap()
            .lazy(true)
            .connect()
            .await
            .unwrap();
        let err = cache.get::<u32>("k").await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
        cache.close().await.unwrap();
    }
}

#[cfg(feature = "postgres")]
mod postgres {
    use super::*;

    #[tokio::test]
    async fn one_table() {
        let ns = fresh_namespace("pg");
        let url = with_param(
            &server_var("CACHE_TEST_POSTGRES_URL", "postgres"),
            "namespace",
            &ns,
        );
        round_trip(&url, "postgres", &ns).await;
        // postgresql:// is the same store.
        let url = url.replacen("postgres://", "postgresql://", 1);
        round_trip(&url, "postgres", &ns).await;
    }

    /// A refused login is a Config error at once, and no message shows the password.
    #[tokio::test]
    async fn a_wrong_password_is_a_config_error_that_does_not_show_it() {
        let url = server_var("CACHE_TEST_POSTGRES_URL", "postgres");
        // postgres://postgres:<password>@127.0.0.1:port/...
        let (head, tail) = url.split_once('@').expect("a URL with a password");
        let user = head.rsplit_once(':').expect("user:password").0;
        let wrong = format!("{user}:not-the-Pa55word@{tail}");
        let err = cache::from_url(&wrong).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config, "{err}");
        for shown in [err.to_string(), format!("{err:?}")] {
            assert!(!shown.contains("not-the-Pa55word"), "{shown}");
        }
    }
}

#[cfg(feature = "memcached")]
mod memcached {
    use super::*;

    #[tokio::test]
    async fn one_server_and_a_ring() {
        let ns = fresh_namespace("mc");
        // 127.0.0.1:21211
        let one = server_var("CACHE_TEST_MEMCACHED_URL", "memcached");
        round_trip(
            &format!("memcached://{one}?namespace={ns}"),
            "memcached",
            &ns,
        )
        .await;
        // 127.0.0.1:21211,127.0.0.1:21212,127.0.0.1:21213
        let ring = server_var("CACHE_TEST_MEMCACHED_SERVERS", "memcached");
        let url = format!("memcached://{ring}?namespace={ns}");
        let cache = cache::from_url(&url).await.unwrap();
        for i in 0..20u32 {
            cache
                .set(&format!("k{i}"), &i, Duration::from_secs(60))
                .await
                .unwrap();
        }
        // One server alone holds only its share of the keys: the URL made a ring.
        let single = cache::from_url(&format!("memcached://{one}?namespace={ns}"))
            .await
            .unwrap();
        let mut on_first = 0;
        for i in 0..20u32 {
            assert_eq!(cache.get::<u32>(&format!("k{i}")).await.unwrap(), Some(i));
            if single.get::<u32>(&format!("k{i}")).await.unwrap().is_some() {
                on_first += 1;
            }
        }
        assert!(on_first < 20, "every key on the first server: not a ring");
        cache.clear().await.unwrap();
    }
}

#[cfg(feature = "mongodb")]
mod mongodb {
    use super::*;

    #[tokio::test]
    async fn one_collection() {
        let ns = fresh_namespace("mongo");
        let url = with_param(
            &server_var("CACHE_TEST_MONGODB_URL", "mongodb"),
            "namespace",
            &ns,
        );
        round_trip(&url, "mongodb", &ns).await;
    }
}
