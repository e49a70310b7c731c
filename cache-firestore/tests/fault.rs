//! Kill the server (an emulator of this test's own) during a loop of get-or-compute
//! calls and start it again: every call returns its computed value while it is down,
//! plain `get` fails within the timeout, and caching resumes within a second. (A file
//! of its own: the emulator's address is the process-wide `FIRESTORE_EMULATOR_HOST`.)

mod common;
use cache_core::Cache;
use cache_firestore::FirestoreBuilder;
use conformance_tests::servers::OwnProcess;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn firestore_killed_and_restarted_during_get_or_compute() {
    let launcher = common::env("CACHE_TEST_FIRESTORE_LAUNCHER");
    let port = OwnProcess::free_port();
    let server = std::cell::RefCell::new(OwnProcess::start(
        "node",
        &[&launcher, &port.to_string()],
        port,
    ));
    std::env::set_var("FIRESTORE_EMULATOR_HOST", format!("127.0.0.1:{port}"));
    let timeout = Duration::from_millis(300);
    let backend = FirestoreBuilder::default()
        .project_id(common::PROJECT)
        .namespace("fault")
        .timeout(timeout)
        .connect_timeout(Duration::from_secs(5))
        .build()
        .await
        .unwrap();
    let cache = Cache::builder(backend).timeout(timeout).build();
    let report = conformance_tests::scenarios::fault_cycle(
        &cache,
        timeout,
        timeout * 3,
        || server.borrow_mut().kill(),
        || server.borrow_mut().restart(),
    )
    .await;
    eprintln!("{report:?}");
}
