//! Memcached backend for the cache library.
//!
//! One or many memcached servers (consistent hashing over them), a `bb8` pool of
//! `async-memcached` connections per server, meta commands for reads with metadata,
//! adds and compare-and-swap. Each namespace has a generation number on every server,
//! folded into its keys: `clear` bumps it in one command per server, never
//! `flush_all`. Values carry their deadline, so TTLs are exact to the millisecond
//! even though memcached counts whole seconds.
//!
//! ```no_run
//! use cache_core::Cache;
//! use cache_memcached::MemcachedBackend;
//! use std::time::Duration;
//!
//! # async fn demo() -> cache_core::Result<()> {
//! let backend = MemcachedBackend::builder()
//!     .servers(["127.0.0.1:11211"])
//!     .namespace("app")
//!     .build()
//!     .await?;
//! let cache = Cache::new(backend);
//! cache.set("greeting", &"hello", Duration::from_secs(60)).await?;
//! assert_eq!(cache.get::<String>("greeting").await?.as_deref(), Some("hello"));
//! # Ok(()) }
//! ```
#![warn(missing_docs)]

mod backend;
mod config;
mod driver;
mod error;

pub use backend::{MemcachedBackend, MemcachedBuilder};
pub use config::MemcachedConfig;

#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
