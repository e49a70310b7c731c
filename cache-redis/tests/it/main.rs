//! The integration tests of cache-redis, in one test binary (one link instead of one
//! per file): each module is what was a test file of its own; `common` is shared.

mod auth;
mod blocking;
mod breaker;
mod chaos;
mod common;
mod conformance;
mod fault;
mod lazy;
mod namespaces;
mod stampede;
mod trust;
