//! Firestore backend for the cache library.
//!
//! One collection shared by every namespace: documents named by the SHA-256 of the
//! store key, holding `{ns, key, value: bytes, expires_at: timestamp | null}`. Built on
//! the three calls that scale on Firestore: Commit (writes, with preconditions for
//! create-if-absent and compare-and-set), BatchGetDocuments (reads) and RunQuery (the
//! namespace's documents, for `clear`). Reads filter expired documents (a TTL policy
//! deletes them only within a day or so). Writes are fenced (`fenced_writes`): each
//! application write commits a precondition on its key's lock document, marking a held
//! lock overtaken, and get-or-compute's `set_locked` writes in one commit with the
//! lock's release, only if the lock is unchanged since it read it (see the README).
//!
//! ```no_run
//! use cache_core::Cache;
//! use cache_firestore::FirestoreBackend;
//! use std::time::Duration;
//!
//! # async fn demo() -> cache_core::Result<()> {
//! let backend = FirestoreBackend::builder()
//!     .project_id("my-project") // credentials: Application Default Credentials
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

pub use backend::{FirestoreBackend, FirestoreBuilder};
pub use config::FirestoreConfig;
pub use firestore;

#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
