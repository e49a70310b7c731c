//! MongoDB backend for the cache library.
//!
//! One collection shared by every namespace: documents `{_id: "ns:key", ns, v, exp, w}`
//! with an index on `ns` (so `clear` is `delete_many({ns})`, never a regex) and a TTL
//! index on `exp`; reads filter expired documents (MongoDB's TTL monitor runs only
//! every 60 s). `set_if_absent` is one upsert that a live document turns into a
//! duplicate-key error: one winner. Locks are taken and timed on the server's clock
//! (`$$NOW`). Writes are fenced without multi-document transactions: app writes mark a
//! held lock before they write, and `set_locked` writes only over the document whose
//! write stamp `w` it read before it took its lock (see the README).
//!
//! ```no_run
//! use cache_core::Cache;
//! use cache_mongodb::MongoBackend;
//! use std::time::Duration;
//!
//! # async fn demo() -> cache_core::Result<()> {
//! let backend = MongoBackend::builder()
//!     .uri("mongodb://127.0.0.1:27017/app")
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

pub use backend::{MongoBackend, MongoBuilder};
pub use config::MongoConfig;

#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
