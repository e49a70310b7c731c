//! The layers a [`Cache`](crate::Cache) puts around a backend: [`Checked`](checked::Checked)
//! (the contract's checks, always), [`CircuitBreaker`](breaker::CircuitBreaker) (by
//! default on networked stores) and [`LazyBackend`](lazy::LazyBackend) (a backend that
//! connects on first use).
//! Each is itself a [`CacheBackend`](crate::CacheBackend).

pub(crate) mod breaker;
pub(crate) mod checked;
pub(crate) mod lazy;
