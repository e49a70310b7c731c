//! Invalidation: remove the value a get-or-compute call would read, its key built and
//! checked by the same rules.

use super::ComputeCall;
use crate::codec::Codec;
use crate::error::Result;

impl<C: Codec> ComputeCall<'_, C> {
    /// Remove the value this call would read (its namespace and key, built and
    /// checked as [`get_or_compute`](Self::get_or_compute) does): what to call after a
    /// write to the data the value was computed from. True if a value was stored.
    ///
    /// With stampede protection on and a backend with
    /// [`fenced_writes`](crate::Capabilities::fenced_writes) (every backend of this
    /// workspace), a compute of this key in flight when it is called, in this
    /// process or another, does not store its value over the invalidation (its
    /// callers still get it). Without them, a write already on its way when
    /// `invalidate` is called may land after it. The options other than the
    /// namespace play no part.
    ///
    /// ```
    /// # async fn demo(cache: cache_core::Cache) -> cache_core::Result<()> {
    /// use cache_core::KeyBuilder;
    /// let user_id = 7;
    /// // ... the user is written to the database, then:
    /// cache
    ///     .cached(KeyBuilder::new("users::name").arg(&user_id))
    ///     .namespace("users")
    ///     .invalidate()
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub async fn invalidate(mut self) -> Result<bool> {
        let key = self.key_only()?;
        self.cache.delete(&key).await
    }
}
