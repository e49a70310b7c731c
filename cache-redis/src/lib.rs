//! Redis backend for the cache library.
//!
//! One auto-reconnecting multiplexed connection (the `redis` crate's
//! `ConnectionManager`) pipelines every concurrent call on one socket; Redis Cluster
//! goes through the crate's async cluster client. Millisecond TTLs (`PX`/`PXAT`),
//! `MGET`/pipelined batches (split by hash slot on a cluster), `SET NX PX` for
//! `set_if_absent` and locks, a token-checked Lua delete to release a lock, and
//! `clear` by `SCAN` + `UNLINK` of this namespace only (never `KEYS` or `FLUSHDB`).
//!
//! ```no_run
//! use cache_core::Cache;
//! use cache_redis::RedisBackend;
//! use std::time::Duration;
//!
//! # async fn demo() -> cache_core::Result<()> {
//! let backend = RedisBackend::builder()
//!     .url("redis://127.0.0.1:6379")
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

pub use backend::{RedisBackend, RedisBuilder};
pub use config::RedisConfig;

/// This crate's README, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
