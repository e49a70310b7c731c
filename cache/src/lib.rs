//! One async cache API over many stores.
//!
//! This umbrella crate re-exports [`cache_core`] (always) and each backend behind a
//! feature, so an application depends on one crate and compiles only the stores it
//! enables:
//!
//! | feature | backend | crate |
//! |---|---|---|
//! | `memory` (default) | `MemoryBackend` | `cache-memory` |
//! | `redis` | `RedisBackend` (single server, cluster, TLS) | `cache-redis` |
//! | `postgres` (+ `postgres-tls`) | `PostgresBackend` (one UNLOGGED table, bb8 pool, TLS) | `cache-postgres` |
//! | `memcached` | `MemcachedBackend` (one or many servers, O(1) clear) | `cache-memcached` |
//! | `mongodb` | `MongoBackend` (one collection, TTL index) | `cache-mongodb` |
//! | `dynamodb` | `DynamoBackend` (one table, DynamoDB's TTL, conditional-write locks) | `cache-dynamodb` |
//! | `firestore` | `FirestoreBackend` (one collection, commit preconditions) | `cache-firestore` |
//! | `axum` | module `axum`: `HttpCacheLayer`, the `AppCache` extractor, `serve`, `prometheus_stats` | `cache-axum` |
//!
//! To choose the store by configuration, [`from_env`] connects to the one the
//! `CACHE_URL` variable names (`redis://...`, `postgres://...`, `memcached://...`,
//! `mongodb://...`; `memory:` when unset), and [`from_url`] to the one a URL names;
//! [`CacheUrl`] lists the forms and takes a default namespace, lazy start and the
//! [`CacheBuilder`]'s settings.
//!
//! ```
//! use cache::{Cache, MemoryBackend};
//! use std::time::Duration;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> cache::Result<()> {
//! let cache = Cache::new(MemoryBackend::builder().build()?);
//! let n: u64 = cache
//!     .cached("expensive")
//!     .expiry(Duration::from_secs(60))
//!     .get_or_compute(|| async { Ok::<_, std::io::Error>(6 * 7) })
//!     .await
//!     .expect("compute does not fail");
//! assert_eq!(n, 42);
//! # Ok(()) }
//! ```
#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub use cache_core::*;

mod url;
pub use url::{from_env, from_url, CacheUrl, UrlError, CACHE_URL_VAR, DEFAULT_CACHE_URL};

#[cfg(feature = "memory")]
#[cfg_attr(docsrs, doc(cfg(feature = "memory")))]
pub use cache_memory::{self as memory, MemoryBackend, MemoryBuilder, MemoryConfig};

#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use cache_redis::{self as redis, RedisBackend, RedisBuilder, RedisConfig};

#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub use cache_postgres::{self as postgres, PostgresBackend, PostgresBuilder, PostgresConfig};

#[cfg(feature = "memcached")]
#[cfg_attr(docsrs, doc(cfg(feature = "memcached")))]
pub use cache_memcached::{self as memcached, MemcachedBackend, MemcachedBuilder, MemcachedConfig};

#[cfg(feature = "mongodb")]
#[cfg_attr(docsrs, doc(cfg(feature = "mongodb")))]
pub use cache_mongodb::{self as mongodb, MongoBackend, MongoBuilder, MongoConfig};

#[cfg(feature = "dynamodb")]
#[cfg_attr(docsrs, doc(cfg(feature = "dynamodb")))]
pub use cache_dynamodb::{self as dynamodb, DynamoBackend, DynamoBuilder, DynamoConfig};

#[cfg(feature = "firestore")]
#[cfg_attr(docsrs, doc(cfg(feature = "firestore")))]
pub use cache_firestore::{self as firestore, FirestoreBackend, FirestoreBuilder, FirestoreConfig};

/// axum and tower wiring (`cache-axum`): `HttpCacheLayer`, the `AppCache` extractor,
/// `serve`.
#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
pub use cache_axum as axum;

/// The repository README's examples, compiled and run as doc tests (they use every store).
#[cfg(all(
    doctest,
    feature = "redis",
    feature = "postgres",
    feature = "memcached",
    feature = "mongodb",
    feature = "dynamodb",
    feature = "firestore",
    feature = "axum"
))]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;

/// The axum guide (`cache-axum/GUIDE.md`), compiled and run as doc tests: it uses the
/// `cache` crate, as an application does.
#[cfg(all(doctest, feature = "axum", feature = "redis"))]
#[doc = include_str!("../../cache-axum/GUIDE.md")]
pub struct AxumGuideDoctests;

/// This crate's README, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct CrateReadmeDoctests;
