//! Core of the cache library: one async API over many stores.
//!
//! - [`CacheBackend`]: the object-safe trait every store implements (bytes in, bytes out).
//! - [`Cache`]: a cheap-to-clone typed handle over any backend, with a default expiry and
//!   [`get_or_compute`](Cache::get_or_compute) / [`cached`](Cache::cached) with
//!   single flight, distributed stampede protection and fail-open.
//! - [`Expiry`], [`Error`]/[`ErrorKind`], [`Codec`] ([`MessagePack`] default, [`Json`]),
//!   [`KeyBuilder`], and [`blocking::Cache`] for code without an async runtime.
//!
//! Backends live in their own crates (`cache-memory`, `cache-redis`, ...); the
//! `conformance-tests` crate checks any backend, yours included, against the contract.
//!
//! ```
//! use cache_core::{Cache, CacheBackend};
//! use std::time::Duration;
//!
//! async fn profile(cache: &Cache, user: u32) -> String {
//!     cache
//!         .cached(cache_core::KeyBuilder::new("profile").arg(&user))
//!         .expiry(Duration::from_secs(60))
//!         .get_or_compute(|| async move { Ok::<_, std::io::Error>(format!("user {user}")) })
//!         .await
//!         .expect("compute does not fail")
//! }
//! ```
#![warn(missing_docs)]

mod backend;
pub mod blocking;
mod cache;
mod codec;
pub mod compute;
mod error;
mod expiry;
mod flight;
pub mod key;

pub use backend::{CacheBackend, Capabilities, LockToken};
pub use bytes::Bytes;
pub use cache::{Cache, CacheBuilder};
pub use codec::{Codec, Json, MessagePack};
pub use compute::{Cached, ComputeError, IntoKey};
pub use error::{BoxError, Error, ErrorKind, Result};
pub use expiry::{Expiry, Ttl};
pub use key::KeyBuilder;

/// Re-exported so backend crates implement the trait with the same macro version.
pub use async_trait::async_trait;
