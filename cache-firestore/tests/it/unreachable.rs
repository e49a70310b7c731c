//! An emulator address where nothing listens: `build()` fails `Unavailable` or
//! `Timeout` within the connect timeout. (Each test in a process of its own: the
//! address is the process-wide `FIRESTORE_EMULATOR_HOST`; see
//! `conformance_tests::scenarios::alone_in_a_process`.)

use cache_core::BackendBuilder;
use cache_core::ErrorKind;
use cache_firestore::FirestoreBuilder;
use conformance_tests::scenarios::alone_in_a_process;
use std::time::{Duration, Instant};

#[tokio::test]
async fn unreachable_emulator_is_unavailable_within_the_connect_timeout() {
    if !alone_in_a_process(
        "unreachable::unreachable_emulator_is_unavailable_within_the_connect_timeout",
    ) {
        return;
    }
    let port = conformance_tests::servers::OwnProcess::free_port();
    std::env::set_var("FIRESTORE_EMULATOR_HOST", format!("127.0.0.1:{port}"));
    let started = Instant::now();
    let err = FirestoreBuilder::default()
        .project_id("p")
        .connect_timeout(Duration::from_millis(500))
        .build()
        .await
        .unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::Unavailable | ErrorKind::Timeout),
        "{err}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lazy_start_fails_fast_while_the_emulator_is_unreachable() {
    if !alone_in_a_process("unreachable::lazy_start_fails_fast_while_the_emulator_is_unreachable") {
        return;
    }
    let port = conformance_tests::servers::OwnProcess::free_port();
    std::env::set_var("FIRESTORE_EMULATOR_HOST", format!("127.0.0.1:{port}"));
    let down = FirestoreBuilder::default()
        .project_id("p")
        .connect_timeout(Duration::from_millis(300))
        .build_lazy()
        .unwrap();
    conformance_tests::scenarios::lazy_while_down(down).await;
}
