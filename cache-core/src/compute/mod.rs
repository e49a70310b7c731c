//! Get-or-compute: the cache as a decorator, with stampede protection; the rules are
//! on [`ComputeCall`].
//!
//! One file per job:
//! - `options`: the options, written once for the [`CacheBuilder`](crate::CacheBuilder)
//!   and both call builders;
//! - `call`: the call builder and a call's road (key, read, single flight);
//! - `batch`: get-or-compute of many keys at once;
//! - `computed`: a compute's value with its own expiry, or not to store;
//! - `lookup`: reading a value and placing it (fresh, stale, kept, a miss);
//! - `lead`: the leader's work (lock, compute, fenced write) and `lock` its held lock;
//! - `landing`: what a flight's leader hands to its followers;
//! - `detached`: the compute on a task of its own (background refresh);
//! - `invalidate`: removing the value a call would read;
//! - `error`: how a call fails.

mod batch;
mod call;
mod computed;
mod detached;
mod error;
mod invalidate;
mod landing;
mod lead;
mod lock;
mod lookup;
pub(crate) mod options;
#[cfg(test)]
mod tests;

pub use batch::ComputeMany;
pub use call::ComputeCall;
pub use computed::Computed;
pub use error::ComputeError;
pub(crate) use options::Options;

use crate::error::Result;
use crate::key::KeyBuilder;
use serde::{de::DeserializeOwned, Serialize};

/// What get-or-compute can cache and hand to every waiter: a serde value that is
/// `Clone + Send + Sync + 'static`. Implemented for every such type.
pub trait Cacheable: Serialize + DeserializeOwned + Clone + Send + Sync + 'static {}

impl<T: Serialize + DeserializeOwned + Clone + Send + Sync + 'static> Cacheable for T {}

/// Anything that names a cache entry: a `&str`, a `String` or a [`KeyBuilder`].
pub trait IntoKey {
    /// The key, or why it cannot be built.
    fn into_key(self) -> Result<String>;
}

impl IntoKey for &str {
    fn into_key(self) -> Result<String> {
        Ok(self.to_owned())
    }
}
impl IntoKey for String {
    fn into_key(self) -> Result<String> {
        Ok(self)
    }
}
impl IntoKey for &String {
    fn into_key(self) -> Result<String> {
        Ok(self.clone())
    }
}
impl IntoKey for KeyBuilder {
    fn into_key(self) -> Result<String> {
        self.build()
    }
}
