//! axum and tower wiring for the cache library.
//!
//! - [`HttpCacheLayer`]: a shared HTTP cache (RFC 9111) as a tower layer: host, path
//!   and query as the key, `Vary` variants, freshness from the response's headers,
//!   revalidation, stale-while-revalidate and stale-if-error, invalidation by unsafe
//!   requests, nothing private shared, single flight for concurrent misses.
//! - [`AppCache`]: the application's [`Cache`](cache_core::Cache) as an extractor
//!   from the router's state, [`serve`]: serve until a shutdown signal, then close
//!   the cache, and [`prometheus_stats`]: its stats as a Prometheus `/metrics` page.
//! - `#[cached]` on handlers' helper functions works as it does anywhere (see the
//!   workspace README).
//!
//! Needs axum 0.8 (re-exported as [`axum`](mod@axum)). `GUIDE.md` beside this crate's
//! README builds a whole service step by step: Cargo.toml, state, layer order, tracing,
//! `/metrics`, SIGTERM.
//!
//! ```
//! use axum::{routing::get, Router};
//! use cache_axum::{AppCache, HttpCacheLayer};
//! use std::time::Duration;
//!
//! let cache = cache_core::Cache::new(cache_memory::MemoryBackend::builder().build().unwrap());
//! let app: Router = Router::new()
//!     .route("/report", get(|| async { "slow report" }))
//!     .layer(HttpCacheLayer::new(cache.clone()).ttl(Duration::from_secs(30)))
//!     .route("/me", get(|AppCache(c): AppCache| async move { format!("{c:?}") }))
//!     .with_state(cache);
//! ```
#![warn(missing_docs)]

mod budget;
mod flight;
mod layer;
mod policy;
mod serve;
mod state;
mod stored;

pub use layer::{HttpCache, HttpCacheLayer, CACHE_STATUS};
pub use state::{prometheus_stats, serve, AppCache};

/// The axum this crate is built with (0.8). Its `Router`, layers and extractors are
/// the only ones that fit this crate's: another major version's are other types, and
/// the compiler's error (`expected Router, found Router`) does not say why. Depend on
/// `axum = "0.8"` yourself (`cargo tree -i axum` shows one version), or name this one.
pub use axum;

/// This crate's README, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
