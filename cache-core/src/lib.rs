//! Core of the cache library: one async API over many stores.
//!
//! - [`CacheBackend`]: the object-safe trait every store implements (bytes in, bytes out).
//! - [`Cache`]: a cheap-to-clone typed handle over any backend, with a default expiry and
//!   [`get_or_compute`](Cache::get_or_compute) / [`cached`](Cache::cached) with
//!   single flight, distributed stampede protection and fail-open.
//! - [`Expiry`], [`Error`]/[`ErrorKind`], [`Codec`] ([`MessagePack`] default, [`Json`]),
//!   [`KeyBuilder`], and [`blocking::Cache`] for code without an async runtime.
//! - [`Checked`]: the contract's checks, once, around any backend; [`raw`]: the key
//!   layout, rules, digests and TTL helpers for backend authors.
//!
//! Backends live in their own crates (`cache-memory`, `cache-redis`, ...); the
//! `conformance-tests` crate checks any backend, yours included, against the contract.
//!
//! ```
//! use cache_core::{Cache, KeyBuilder};
//! use cache_memory::MemoryBackend; // any backend crate
//! use std::time::Duration;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> cache_core::Result<()> {
//! let cache = Cache::new(MemoryBackend::builder().build()?);
//! cache.set("user:1", &"Ada", Duration::from_secs(60)).await?;
//! assert_eq!(cache.get::<String>("user:1").await?.as_deref(), Some("Ada"));
//!
//! let user = 7;
//! let profile: String = cache
//!     .cached(KeyBuilder::new("profile").arg(&user))
//!     .expiry(Duration::from_secs(60))
//!     .get_or_compute(|| async move { Ok::<_, std::io::Error>(format!("user {user}")) })
//!     .await
//!     .expect("compute does not fail");
//! assert_eq!(profile, "user 7");
//! # Ok(()) }
//! ```
#![warn(missing_docs)]

mod backend;
pub mod blocking;
mod builder;
mod cache;
mod clock;
mod codec;
mod compute;
mod envelope;
mod error;
mod expiry;
mod flight;
mod key;
mod key_site;
mod layer;
pub mod observe;
pub mod raw;

pub use backend::{CacheBackend, Capabilities, LockToken};
pub use builder::CacheBuilder;
pub use bytes::Bytes;
pub use cache::Cache;
pub use clock::{Clock, ManualClock, SystemClock};
pub use codec::{Codec, Json, MessagePack};
pub use compute::{Cacheable, ComputeCall, ComputeError, ComputeMany, Computed, IntoKey};
pub use error::{BoxError, Error, ErrorKind, Origin, Result};
pub use expiry::Expiry;
pub use key::KeyBuilder;
#[doc(hidden)]
pub use key_site::KeySite;
pub use layer::breaker::{BreakerConfig, BreakerState, CircuitBreaker};
pub use layer::checked::Checked;
pub use layer::lazy::{BackendBuilder, LazyBackend};
pub use observe::CacheStats;

/// Re-exported so backend crates implement the trait with the same macro version.
pub use async_trait::async_trait;

/// Caches a function's result: the Rust face of the Python library's
/// `@cache.cached(...)` decorator.
///
/// The function returns `Result<T, E>`; the cached function returns
/// `Result<T, ComputeError<E>>` and runs the body only on a miss, with every rule of
/// [`ComputeCall::get_or_compute`] (single flight, stampede protection, fail-open).
/// On an `async fn` the cache is a [`Cache`]; on a plain `fn` it is a
/// [`blocking::Cache`].
///
/// Options (all but `cache` optional):
/// - `cache = <expr>`: the cache, evaluated on each call: a static, or an argument
///   of the function or a field of one (`cache = state.cache`), which is then left out
///   of the key;
/// - `key = <expr>`: the key (any [`IntoKey`]: a `String`, a `format!`, a
///   [`KeyBuilder`]); by default the crate's name, the function's name and every
///   argument as JSON (arguments must be `Serialize`); not the module path, so
///   moving the function within its crate keeps its keys. Two cached functions of
///   one name in one crate with one namespace would read each other's values: at
///   their first calls both refuse with a [`Config`](ErrorKind::Config) error naming
///   them, until one gets a `key_prefix` (or another namespace);
/// - `key_prefix = <&str expr>`: the default key's start instead of the crate's and
///   function's names (`key_prefix = "user-v2"` when the value's shape changes;
///   `key_prefix = concat!(module_path!(), "::f")` for keys that follow the module);
///   a literal one is checked against the crate's other functions as above;
/// - `exclude = [arg, ...]`: arguments left out of the default key (connections, ...);
/// - `expiry = <expr>`: an integer literal counts seconds, else anything `Into<Expiry>`;
/// - `namespace = "ns"`, `stampede_protection = bool`;
/// - `lock_ttl`, `lock_wait`, `store_timeout`: an integer literal counts seconds, else a
///   `Duration`;
/// - `skip = <bool expr>`, `refresh = <bool expr>`: per call, may use the arguments.
///
/// It also generates `<name>_invalidate(..) -> Result<bool, Error>` (async when the
/// function is), which removes the value cached for its arguments (see
/// [`ComputeCall::invalidate`]): call it after a write to what the value was computed
/// from. It takes the arguments the key, the cache and the namespace are built from
/// (every argument when `key` is given or the function is generic).
///
/// Free functions only (in a method, call [`Cache::cached`] directly). Arguments must
/// be plain names.
///
/// ```
/// use cache_core::{cached, Cache, ComputeError};
/// use std::convert::Infallible;
///
/// #[cached(cache = cache, expiry = 60, namespace = "users", skip = fresh)]
/// async fn user_name(cache: &Cache, id: u64, fresh: bool) -> Result<String, Infallible> {
///     Ok(format!("user {id}")) // runs only on a miss
/// }
///
/// # async fn demo(cache: Cache) -> Result<(), ComputeError<Infallible>> {
/// let name = user_name(&cache, 7, false).await?;
/// // After the user is written:
/// user_name_invalidate(&cache, 7).await?;
/// # Ok(()) }
/// ```
pub use cache_macros::cached;

/// This crate's README, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
