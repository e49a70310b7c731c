//! Shared by the Firestore integration tests: the emulator comes from
//! `scripts/servers.sh`, which exports `FIRESTORE_EMULATOR_HOST` (where the firestore
//! crate finds it, sending no credentials).

use cache_core::{async_trait, Bytes, CacheBackend, Expiry};
use cache_firestore::{FirestoreBackend, FirestoreBuilder};
use conformance_tests::{servers, Harness};
pub use servers::env;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

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

/// An emulator of a test's own, in a process group of its own: the one
/// `scripts/servers.sh` runs (`CACHE_TEST_FIRESTORE_LAUNCHER`, `launch.sh PORT`), Google's
/// (whose launcher is a shell script with a `java` child) or the npm one. Killing it
/// kills the whole group, so no `java` outlives the test. The firestore crate finds it
/// through the process-wide `FIRESTORE_EMULATOR_HOST` only: a test that starts one
/// runs alone in a process (`conformance_tests::scenarios::alone_in_a_process`).
pub struct Emulator {
    launcher: String,
    port: u16,
    child: Option<Child>,
}

impl Emulator {
    pub fn start(launcher: String, port: u16) -> Self {
        let mut e = Emulator {
            launcher,
            port,
            child: None,
        };
        e.restart();
        e
    }

    /// Start it, and wait until it serves: it accepts connections (Google's emulator
    /// takes a second or two: Java), then answers calls at its usual speed (a fresh
    /// JVM takes most of a second over its first calls, which would time out: that
    /// is the emulator warming up, not the backend reconnecting).
    fn restart(&mut self) {
        let child = Command::new(&self.launcher)
            .arg(self.port.to_string())
            .process_group(0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", self.launcher));
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "{} did not start on {}",
                self.launcher,
                self.port
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        warm_up();
    }

    /// SIGKILL the whole group (the launcher and its java or node), and reap the
    /// launcher.
    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let group = c.id();
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{group}")])
                .status();
            let _ = c.wait();
            // Until nothing of the group is left (its port free for the restart).
            let deadline = Instant::now() + Duration::from_secs(10);
            while Command::new("kill")
                .args(["-0", "--", &format!("-{group}")])
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
                && Instant::now() < deadline
            {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
}

/// A client of its own (on its own runtime, in a thread: `restart` is called from
/// synchronous code) makes a few rounds of the calls get-or-compute makes, until a
/// round is fast.
fn warm_up() {
    std::thread::spawn(|| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let backend = FirestoreBuilder::default()
                .project_id(PROJECT)
                .namespace("warm-up")
                .timeout(Duration::from_secs(30))
                .connect_timeout(Duration::from_secs(30))
                .build()
                .await
                .expect("the restarted emulator serves");
            for round in 0..50 {
                let started = Instant::now();
                let key = format!("k{round}");
                let v = Bytes::from_static(b"v");
                let e = Expiry::After(Duration::from_secs(60));
                backend.get(&key).await.unwrap();
                let token = backend
                    .acquire_lock(&key, Duration::from_secs(5))
                    .await
                    .unwrap();
                if let Some(t) = token {
                    backend.set_locked(&key, v.clone(), e, &t).await.unwrap();
                }
                backend.set(&key, v, e).await.unwrap();
                if started.elapsed() < Duration::from_millis(60) {
                    break;
                }
            }
        });
    })
    .join()
    .expect("warm-up");
}

impl Drop for Emulator {
    fn drop(&mut self) {
        self.kill();
    }
}

impl conformance_tests::servers::OwnServer for Emulator {
    fn port(&self) -> u16 {
        self.port
    }

    fn kill(&mut self) {
        Emulator::kill(self);
    }

    fn restart(&mut self) {
        Emulator::restart(self);
    }
}
