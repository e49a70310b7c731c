//! Lazy start against the emulator: connects in the background (the unreachable half
//! is in `unreachable.rs`, which points FIRESTORE_EMULATOR_HOST elsewhere).

use crate::common;
use cache_core::BackendBuilder;
use conformance_tests::{random_namespace, scenarios};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lazy_start_connects_when_the_emulator_is_up() {
    let up = common::builder(&random_namespace())
        .await
        .build_lazy()
        .unwrap();
    let took = scenarios::lazy_connects(up).await;
    eprintln!("connected lazily after {took:?}");
}
