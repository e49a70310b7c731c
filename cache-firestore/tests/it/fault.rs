//! Kill the server (an emulator of this test's own) during a loop of get-or-compute
//! calls and start it again: every call returns its computed value while it is down,
//! plain `get` fails within the timeout, and caching resumes within a second. (In a
//! process of its own: the emulator's address is the process-wide
//! `FIRESTORE_EMULATOR_HOST`; see [`common::alone_in_a_process`].)
//!
//! The emulator is the one `scripts/servers.sh` runs (`CACHE_TEST_FIRESTORE_LAUNCHER`,
//! `launch.sh PORT`): Google's, whose launcher is a shell script with a `java` child,
//! or the npm one. It runs in a process group of its own, and killing it kills the
//! whole group, so no `java` outlives the test.

use crate::common;
use cache_core::{Bytes, Cache, CacheBackend, Expiry};
use cache_firestore::FirestoreBuilder;
use conformance_tests::servers::OwnProcess;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The emulator in a process group of its own.
struct Emulator {
    launcher: String,
    port: u16,
    child: Option<Child>,
}

impl Emulator {
    fn start(launcher: String, port: u16) -> Self {
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
                .project_id(common::PROJECT)
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn firestore_killed_and_restarted_during_get_or_compute() {
    if !common::alone_in_a_process("fault::firestore_killed_and_restarted_during_get_or_compute") {
        return;
    }
    let launcher = common::env("CACHE_TEST_FIRESTORE_LAUNCHER");
    let port = OwnProcess::free_port();
    std::env::set_var("FIRESTORE_EMULATOR_HOST", format!("127.0.0.1:{port}"));
    let server = std::cell::RefCell::new(Emulator::start(launcher, port));
    let timeout = Duration::from_millis(300);
    let backend = FirestoreBuilder::default()
        .project_id(common::PROJECT)
        .namespace("fault")
        .timeout(timeout)
        .connect_timeout(Duration::from_secs(5))
        .build()
        .await
        .unwrap();
    let cache = Cache::builder(backend).store_timeout(timeout).build();
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
