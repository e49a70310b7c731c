//! The behavioural suite every cache backend must pass: ours and yours.
//!
//! Each behaviour is a public async function in [`cases`] that takes a [`Harness`].
//! The [`suite!`] macro expands all of them into one `#[tokio::test]` each, so a
//! failure names its case. For your own backend, implement [`Harness`] and write,
//! in `tests/conformance.rs` (with `tokio` as a dev-dependency):
//!
//! ```ignore
//! conformance_tests::suite!(MyHarness::new());
//! ```
//!
//! Each case is also an ordinary async function, to call on its own:
//!
//! ```
//! use cache_core::{async_trait, CacheBackend};
//! use cache_memory::MemoryBackend;
//! use std::sync::Arc;
//!
//! struct MemoryHarness(MemoryBackend);
//!
//! #[async_trait]
//! impl conformance_tests::Harness for MemoryHarness {
//!     async fn backend(&self, namespace: &str) -> Arc<dyn CacheBackend> {
//!         Arc::new(self.0.with_namespace(namespace).unwrap())
//!     }
//! }
//!
//! # #[tokio::main(flavor = "multi_thread", worker_threads = 2)]
//! # async fn main() {
//! let harness = MemoryHarness(MemoryBackend::builder().build().unwrap());
//! conformance_tests::cases::set_get_roundtrip(&harness).await;
//! conformance_tests::cases::clear_only_own_namespace(&harness).await;
//! # }
//! ```
//!
//! A harness hands out backends on one shared store: each case asks for fresh random
//! namespaces, so cases run in parallel against one server, and two namespaces on one
//! store prove that `clear` touches only its own. Cases adapt to the backend's declared
//! [`Capabilities`](cache_core::Capabilities) (TTL precision, key and value limits) but
//! never skip a behaviour.
//!
//! Beside the suite, [`scenarios!`] expands a networked backend's
//! [`scenarios::ScenarioSpec`] into the scenario tests every such backend runs the same
//! way (the blocking API, lazy start, a stampede across processes, a server killed
//! during get-or-compute).
#![warn(missing_docs)]

pub mod bench;
pub mod cases;
pub mod faulty;
pub mod scenarios;
pub mod servers;

use cache_core::{async_trait, CacheBackend};
use std::sync::Arc;

pub use faulty::FaultyBackend;

/// Makes backends for the suite.
#[async_trait]
pub trait Harness: Send + Sync + 'static {
    /// A backend on the harness's store using `namespace`. Two calls with different
    /// namespaces must share the same store; a call with the same namespace must see
    /// the same data (as a second process would). Panic with a message that says how
    /// to start the server when it cannot be reached.
    async fn backend(&self, namespace: &str) -> Arc<dyn CacheBackend>;

    /// How many times longer than usual the expiry cases make their short TTLs and
    /// their grace periods (usually 500 ms and 1.5 s). The suite runs its cases in
    /// parallel; a test server that serves each call slowly under that load (a
    /// single-process emulator) can take longer than a short TTL between two calls of
    /// one case, which would then see its value expire. Default 1.
    fn ttl_scale(&self) -> u32 {
        1
    }
}

/// A fresh random namespace such as `ct-3f2a9c1b0d4e`.
pub fn random_namespace() -> String {
    let id = uuid::Uuid::new_v4().simple().to_string();
    format!("ct-{}", &id[..12])
}

include!(concat!(env!("OUT_DIR"), "/cases.rs"));

/// Expands every case of [`cases`] into a `#[tokio::test]` inside a module named
/// `conformance`, evaluating the harness expression once per test. The test is named
/// after its case (`conformance::set_get_roundtrip`).
///
/// `suite!(mod name, harness)` names the module, to run the suite more than once in
/// one file (for example on a single server and on a cluster).
///
/// The tests run on a multi-thread runtime: the test crate needs `tokio` with the
/// `macros` and `rt-multi-thread` features.
#[macro_export]
macro_rules! suite {
    ($harness:expr) => {
        $crate::suite!(mod conformance, $harness);
    };
    (mod $module:ident, $harness:expr) => {
        $crate::__suite_cases!($module, $harness);
    };
    (@cases $module:ident, $harness:expr; $($theme:ident :: $case:ident),* $(,)?) => {
        mod $module {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let harness = $harness;
                    $crate::cases::$theme::$case(&harness).await;
                }
            )*
        }
    };
}

/// The store-agnostic cases (their docs say "Store-agnostic:"): get-or-compute's own
/// rules (single flight, errors, panics, skip, fail-open, compute timeouts, early
/// refresh), which hold whatever the store. `cache-core` runs them once, on the memory
/// backend; [`suite!`] leaves them out. Run them on your backend if its answers could
/// change them (a slow or failing store is covered by [`FaultyBackend`]).
#[macro_export]
macro_rules! suite_once {
    ($harness:expr) => {
        $crate::suite_once!(mod once, $harness);
    };
    (mod $module:ident, $harness:expr) => {
        $crate::__once_cases!($module, $harness);
    };
}

/// This crate's README, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
