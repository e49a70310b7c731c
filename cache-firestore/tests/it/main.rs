//! The integration tests of cache-firestore, in one test binary (one link instead of one
//! per file): each module is what was a test file of its own; `common` is shared.

mod blocking;
mod clock;
mod common;
mod config;
mod conformance;
mod fault;
mod lazy;
mod race;
mod stampede;
mod unreachable;
