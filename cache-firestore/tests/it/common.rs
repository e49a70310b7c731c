//! Shared by the Firestore integration tests: the emulator comes from
//! `scripts/servers.sh`, which exports `FIRESTORE_EMULATOR_HOST` (where the firestore
//! crate finds it, sending no credentials).

use cache_core::{async_trait, CacheBackend};
use cache_firestore::{FirestoreBackend, FirestoreBuilder};
use conformance_tests::{servers, Harness};
pub use servers::env;
use std::sync::Arc;
use std::time::Duration;

pub const PROJECT: &str = "cache-test";

pub async fn host() -> String {
    let host = servers::address(&servers::FIRESTORE).await;
    // The firestore crate reads the emulator's address from this variable only.
    if std::env::var("FIRESTORE_EMULATOR_HOST").ok().as_deref() != Some(&*host) {
        panic!("FIRESTORE_EMULATOR_HOST must be {host}: run the tests through `bash scripts/test.sh`, or `eval \"$(bash scripts/servers.sh env firestore)\"`");
    }
    host
}

pub async fn builder(namespace: &str) -> FirestoreBuilder {
    host().await;
    FirestoreBuilder::default()
        .project_id(PROJECT)
        .namespace(namespace)
        // The emulator is one Node process: under the suite's parallel load a call can
        // wait behind many others.
        .timeout(Duration::from_secs(30))
}

pub async fn backend(namespace: &str) -> FirestoreBackend {
    builder(namespace).await.build().await.unwrap_or_else(|e| {
        panic!("cannot reach the Firestore emulator ({e}); start it with `bash scripts/servers.sh start firestore`")
    })
}

/// One client per test; every namespace asked for shares it.
pub struct FirestoreHarness {
    store: tokio::sync::OnceCell<FirestoreBackend>,
}

impl FirestoreHarness {
    pub fn new() -> Self {
        FirestoreHarness {
            store: tokio::sync::OnceCell::new(),
        }
    }
}

#[async_trait]
impl Harness for FirestoreHarness {
    async fn backend(&self, namespace: &str) -> Arc<dyn CacheBackend> {
        let store = self.store.get_or_init(|| backend("harness")).await;
        Arc::new(store.with_namespace(namespace).expect("valid namespace"))
    }

    /// The npm emulator is one Node process: under the suite's parallel load, two calls
    /// of an expiry case were more than 500 ms apart in a fresh-clone CI run (a
    /// 500 ms value had expired before the second `set_if_absent`).
    fn ttl_scale(&self) -> u32 {
        3
    }
}

/// Tells a process started by [`alone_in_a_process`] which test it runs.
const ALONE: &str = "CACHE_FIRESTORE_TEST_ALONE";

/// For a test that points `FIRESTORE_EMULATOR_HOST` elsewhere: the firestore crate
/// reads the emulator's address from that process-wide variable only, so setting it
/// would send the other tests of this binary, running alongside, to the wrong place.
/// `test` is the caller's full name in the binary (`module::function`). In the test
/// run this re-runs the binary for that test alone (`--exact`) in a process of its own,
/// fails if it fails (or did not run), and returns false: the caller returns. In that
/// process it returns true: the caller goes on, free to set the variable.
pub fn alone_in_a_process(test: &str) -> bool {
    if std::env::var(ALONE).ok().as_deref() == Some(test) {
        return true;
    }
    let exe = std::env::current_exe().expect("the test binary's path");
    let out = std::process::Command::new(exe)
        .args(["--exact", test, "--nocapture", "--test-threads", "1"])
        .env(ALONE, test)
        .output()
        .expect("the test's own process runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    eprint!("{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        out.status.success(),
        "{test} failed in its own process:\n{stdout}"
    );
    assert!(
        stdout.contains("test result: ok. 1 passed"),
        "{test} did not run in its own process:\n{stdout}"
    );
    false
}
