//! In-memory backend for the cache library: a sharded LRU (`lru` + `parking_lot`)
//! with millisecond TTLs checked on every read, a maximum entry count, a background
//! sweep of expired entries, and namespaces that share one store.
//!
//! ```
//! use cache_core::Cache;
//! use cache_memory::MemoryBackend;
//! use std::time::Duration;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> cache_core::Result<()> {
//! let backend = MemoryBackend::builder().max_entries(10_000).namespace("app").build()?;
//! let cache = Cache::new(backend);
//! cache.set("greeting", &"hello", Duration::from_secs(60)).await?;
//! assert_eq!(cache.get::<String>("greeting").await?.as_deref(), Some("hello"));
//! # Ok(()) }
//! ```
#![warn(missing_docs)]

mod backend;
mod config;
mod error;
mod store;

pub use backend::{MemoryBackend, MemoryBuilder};
pub use config::MemoryConfig;

/// This crate's README, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
