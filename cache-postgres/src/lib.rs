//! PostgreSQL backend for the cache library.
//!
//! One table (`UNLOGGED` by default) shared by every namespace: primary key
//! `(namespace, key)`, a `bytea` value and a `timestamptz` expiry, created if absent.
//! A `bb8` pool of `tokio-postgres` connections; every call is one parameterised
//! statement (batches included: `unnest` arrays), reads filter expired rows, locks and
//! `set_if_absent` are one `INSERT … ON CONFLICT … WHERE expired` each, and a background
//! task deletes expired rows in bounded batches.
//!
//! ```no_run
//! use cache_core::Cache;
//! use cache_postgres::PostgresBackend;
//! use std::time::Duration;
//!
//! # async fn demo() -> cache_core::Result<()> {
//! let backend = PostgresBackend::builder()
//!     .dsn("postgres://app:secret@127.0.0.1:5432/app")
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

pub use backend::{PostgresBackend, PostgresBuilder};
pub use config::PostgresConfig;
/// The driver, for [`PostgresBuilder::from_pg_config`].
pub use tokio_postgres;

#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
