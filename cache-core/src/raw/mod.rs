//! For backend authors: the contract's rules, the one key layout, digests and TTLs.
//!
//! Applications never need this module: [`Cache`](crate::Cache) applies the rules
//! through [`Checked`](crate::Checked). A backend reads it to lay out its store keys
//! the same way as every other backend.
//!
//! # Rules (enforced once, by [`Checked`](crate::Checked))
//! - a key is 1 to [`MAX_KEY_LEN`] bytes of UTF-8; any character is allowed,
//!   spaces and control characters included, and round-trips as a distinct key;
//! - a namespace is 1 to [`MAX_NAMESPACE_LEN`] printable ASCII characters without
//!   spaces and without `:`, checked by the backend's builder with
//!   [`validate_namespace`].
//!
//! # Key layout
//! Every backend maps (namespace, kind, key) to a store key with a [`KeyLayout`]:
//!
//! | what | store key | example |
//! |---|---|---|
//! | value | `ns:key` | `app:user:1` |
//! | lock | `ns:#lock:key` | `app:#lock:user:1` |
//! | value, hashed | `ns:#<sha256 hex>` | `app:#9f86d0…` |
//! | lock, hashed | `ns:#lock:#<sha256 hex>` | |
//!
//! A key is replaced by `#` and its SHA-256 when it starts with `#`, when the layout's
//! character test rejects one of its characters, or when the store key would be longer
//! than the layout's limit; keys are never truncated. A namespace has no `:`, so
//! everything of namespace `ns` (values and locks) starts with `ns:` and nothing of
//! another namespace does; a literal key never starts with `#`, a digest is
//! `#` + 64 hex digits and a lock is `#lock:`, so the three forms never collide.
//! Stores with a namespace column of their own store [`StoreKey::body`] beside it.

mod batch;
mod durations;
mod layout;
mod locks;
mod redact;
mod rules;
mod scaffold;
#[cfg(test)]
mod tests;
mod time;

pub use crate::expiry::Ttl;
pub use batch::*;
pub use durations::{millis, opt_millis};
pub use layout::*;
pub use locks::*;
pub use redact::*;
pub use rules::*;
pub use time::*;
