//! The integration tests of cache-dynamodb, in one test binary (one link instead of one
//! per file): each module is what was a test file of its own; `common` is shared.

mod auth;
mod blocking;
mod clock;
mod common;
mod config;
mod conformance;
mod fault;
mod fence;
mod lazy;
mod stampede;
mod unprocessed;
