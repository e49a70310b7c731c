//! DynamoDB backend for the cache library.
//!
//! One table shared by every namespace: items `{pk: "ns:key", ns, v, exp, exp_ms}`
//! with a keys-only global secondary index on `ns` (so `clear` is a query of the
//! namespace's keys and batch deletes, never a scan) and DynamoDB's TTL on `exp`;
//! reads filter expired items (DynamoDB deletes them only eventually). Locks are
//! conditional puts (one winner), taken over only once their deadline has passed by
//! more than `max_clock_skew`. Every write of a value is one `TransactWriteItems` with a
//! guard on the key's lock item, so that a held lock is marked overtaken in the same
//! atomic step (see the README, "Fenced writes").
//!
//! ```no_run
//! use cache_core::Cache;
//! use cache_dynamodb::DynamoBackend;
//! use std::time::Duration;
//!
//! # async fn demo() -> cache_core::Result<()> {
//! let builder = DynamoBackend::builder()
//!     .table("cache_entries")
//!     .namespace("app");
//! builder.create_table().await?; // once per table; a no-op when it exists
//! let cache = Cache::new(builder.build().await?);
//! cache.set("greeting", &"hello", Duration::from_secs(60)).await?;
//! assert_eq!(cache.get::<String>("greeting").await?.as_deref(), Some("hello"));
//! # Ok(()) }
//! ```
#![warn(missing_docs)]

mod backend;
mod config;
mod driver;
mod error;
mod fence;

pub use aws_sdk_dynamodb;
pub use backend::{DynamoBackend, DynamoBuilder};
pub use config::DynamoConfig;

#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
