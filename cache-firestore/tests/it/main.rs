//! The integration tests of cache-firestore, in one test binary (one link instead of one
//! per file): each module is what was a test file of its own; `common` is shared;
//! `scenarios` (blocking API, lazy start, stampede, fault) comes from [`FirestoreSpec`].

mod clock;
mod common;
mod config;
mod conformance;
mod race;
mod unreachable;

use cache_firestore::FirestoreBuilder;
use conformance_tests::servers::OwnProcess;
use std::time::Duration;

/// What the shared scenarios need from Firestore (its emulator in the tests).
struct FirestoreSpec;

impl conformance_tests::scenarios::ScenarioSpec for FirestoreSpec {
    type Builder = FirestoreBuilder;
    type Server = common::Emulator;

    async fn builder(&self, namespace: &str) -> FirestoreBuilder {
        common::builder(namespace).await
    }

    /// The emulator's address is the process-wide `FIRESTORE_EMULATOR_HOST`, not a
    /// builder's: lazy start while it is unreachable is `unreachable.rs`'s, in a process
    /// of its own.
    fn unreachable(&self, _port: u16) -> Option<FirestoreBuilder> {
        None
    }

    async fn child_env(&self) -> Vec<(&'static str, String)> {
        let host = common::host().await;
        vec![
            ("CACHE_TEST_FIRESTORE_HOST", host.clone()),
            ("FIRESTORE_EMULATOR_HOST", host),
        ]
    }

    /// Points `FIRESTORE_EMULATOR_HOST` at it: the fault test runs alone in a process
    /// ([`fault_alone`](Self::fault_alone)).
    fn own_server(&self) -> common::Emulator {
        let launcher = common::env("CACHE_TEST_FIRESTORE_LAUNCHER");
        let port = OwnProcess::free_port();
        std::env::set_var("FIRESTORE_EMULATOR_HOST", format!("127.0.0.1:{port}"));
        common::Emulator::start(launcher, port)
    }

    async fn on_own_server(&self, _port: u16, timeout: Duration) -> FirestoreBuilder {
        FirestoreBuilder::default()
            .project_id(common::PROJECT)
            .namespace("fault")
            .timeout(timeout)
            .connect_timeout(Duration::from_secs(5))
    }

    fn fault_alone(&self) -> bool {
        true
    }
}

conformance_tests::scenarios!(FirestoreSpec);
