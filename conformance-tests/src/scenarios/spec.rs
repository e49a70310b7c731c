//! [`ScenarioSpec`]: what the scenarios need from one store, and the runners the
//! [`scenarios!`](crate::scenarios!) macro calls.

use crate::servers::{OwnProcess, OwnServer};
use cache_core::{blocking, BackendBuilder, Cache};
use std::future::Future;
use std::time::Duration;

/// What the [scenarios](super) need from one store; [`scenarios!`](crate::scenarios!)
/// turns it into the tests. A spec is made for each test (keep it cheap: a unit struct,
/// say).
///
/// ```ignore
/// struct RedisSpec;
///
/// impl conformance_tests::scenarios::ScenarioSpec for RedisSpec {
///     type Builder = RedisBuilder;
///     type Server = OwnProcess;
///     async fn builder(&self, namespace: &str) -> RedisBuilder { /* the test server */ }
///     fn unreachable(&self, port: u16) -> Option<RedisBuilder> { /* 127.0.0.1:port */ }
///     fn own_server(&self) -> OwnProcess { OwnProcess::redis(OwnProcess::free_port(), &[]) }
///     async fn on_own_server(&self, port: u16, timeout: Duration) -> RedisBuilder { /* ... */ }
/// }
///
/// conformance_tests::scenarios!(RedisSpec);
/// ```
pub trait ScenarioSpec: Sized + 'static {
    /// The store's builder.
    type Builder: BackendBuilder;
    /// A server process of the test's own (see [`own_server`](Self::own_server)).
    type Server: OwnServer;

    /// A builder on the shared test server for `namespace`, the store ready to use (its
    /// table made, say), with per-call timeouts of 5 s or more: the scenarios test
    /// behaviour (a stampede's lock, say), not speed. Panics with a message that says
    /// how to start the server when there is none.
    fn builder(&self, namespace: &str) -> impl Future<Output = Self::Builder>;

    /// A builder pointed at 127.0.0.1:`port`, where nothing listens, with a connect
    /// timeout of about 300 ms: lazy start's `down` half. `None` for a store whose
    /// address one builder cannot choose (Firestore's emulator is found through a
    /// process-wide variable): the lazy-start test then runs its `up` half only, and the
    /// crate tests the other half itself.
    fn unreachable(&self, port: u16) -> Option<Self::Builder>;

    /// The variables a stampede child process needs to reach the parent's test server
    /// (its `CACHE_TEST_*` variable, set to the address the parent uses, which may be
    /// a container the parent started). Children inherit the parent's environment
    /// besides. Default: none.
    fn child_env(&self) -> impl Future<Output = Vec<(&'static str, String)>> {
        async { Vec::new() }
    }

    /// A server process of the test's own, started on a free port of 127.0.0.1, that
    /// the fault scenario kills and restarts (disturbing no other test). Its restart
    /// leaves it ready for the builder of [`on_own_server`](Self::on_own_server) (a
    /// store that keeps its tables in memory makes them again, say).
    fn own_server(&self) -> Self::Server;

    /// A builder on the own server at 127.0.0.1:`port`, with per-call timeout
    /// `timeout`.
    fn on_own_server(&self, port: u16, timeout: Duration) -> impl Future<Output = Self::Builder>;

    /// The fault scenario's per-call timeout (the builder's and the cache's
    /// `store_timeout`). Default 300 ms.
    fn fault_timeout(&self) -> Duration {
        Duration::from_millis(300)
    }

    /// How long a plain `get` may take while the own server is down. Default three
    /// times the timeout.
    fn fault_plain_get_bound(&self, timeout: Duration) -> Duration {
        timeout * 3
    }

    /// Whether the fault scenario runs in a process of its own ([`alone_in_a_process`]):
    /// for a store whose own server is found through a process-wide variable
    /// ([`own_server`](Self::own_server) sets it), which would send the binary's other
    /// tests there. Default false.
    fn fault_alone(&self) -> bool {
        false
    }
}

/// Tells a process started by [`alone_in_a_process`] which test it runs.
const ALONE: &str = "CACHE_TEST_ALONE";

/// For a test that changes what the whole process shares (a process-wide variable
/// that the other tests of the binary, running alongside, would read): `test` is the
/// caller's full name in the test binary (`module::function`). In the test run this
/// re-runs the binary for that test alone (`--exact`) in a process of its own, fails
/// if it fails (or did not run), and returns false: the caller returns. In that process
/// it returns true: the caller goes on, free to change the process.
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

/// A test's full name in its test binary, `module::function`, from the
/// `module_path!()` of its module (which starts with the binary's crate name, left out
/// of test names).
#[doc(hidden)]
pub fn test_name(module_path: &str, function: &str) -> String {
    match module_path.split_once("::") {
        Some((_, module)) => format!("{module}::{function}"),
        None => function.to_owned(),
    }
}

/// The runners behind the tests of [`scenarios!`](crate::scenarios!), one per test.
pub mod run {
    use super::*;
    use crate::scenarios;

    /// [`blocking_from_threads`](scenarios::blocking_from_threads) on a blocking cache
    /// that makes its backend inside its own runtime.
    pub fn blocking<S: ScenarioSpec>(spec: S) {
        let namespace = crate::random_namespace();
        let cache = blocking::Cache::connect(|| async move {
            Ok(Cache::new(spec.builder(&namespace).await.build().await?))
        })
        .expect("connects to the test server");
        scenarios::blocking_from_threads(&cache);
    }

    /// [`lazy_start`](scenarios::lazy_start): `down` on
    /// [`unreachable`](ScenarioSpec::unreachable), `up` on the test server.
    pub async fn lazy<S: ScenarioSpec>(spec: &S) {
        let up = spec.builder(&crate::random_namespace()).await;
        let took = match spec.unreachable(OwnProcess::free_port()) {
            Some(down) => {
                let down = down.build_lazy().expect("lazy build returns at once");
                scenarios::lazy_start(down, up.build_lazy().unwrap()).await
            }
            None => scenarios::lazy_connects(up.build_lazy().unwrap()).await,
        };
        eprintln!("connected lazily after {took:?}");
    }

    /// The parent of a stampede across [`STAMPEDE_PROCESSES`](scenarios::STAMPEDE_PROCESSES)
    /// processes (this binary's test `child_test`, which calls [`stampede_child`]):
    /// with stampede protection exactly one compute across them, without it more than
    /// one ([`assert_lock_decides`](scenarios::assert_lock_decides)). Each child counts
    /// the computes that run in its process and prints the number: the total is the
    /// count of computes across the processes.
    pub async fn stampede<S: ScenarioSpec>(spec: &S, child_test: &str) {
        let env = spec.child_env().await;
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        scenarios::assert_lock_decides(|protection| {
            let env = &env;
            async move {
                let namespace = crate::random_namespace();
                scenarios::stampede_parent(child_test, &format!("{namespace},{protection}"), env)
                    .await
            }
        })
        .await;
    }

    /// One child of [`stampede`]; does nothing when run as an ordinary test.
    pub async fn stampede_child<S: ScenarioSpec>(spec: &S) {
        let Some(args) = scenarios::stampede_child_args() else {
            return;
        };
        let (namespace, protection) = args.split_once(',').expect("namespace,protection");
        // Fail-open warnings (a lock call that timed out, say) go to stderr, which the
        // parent prints.
        let _ = tracing_subscriber::fmt()
            .with_writer(std::io::stderr)
            .with_env_filter("warn")
            .try_init();
        let backend = spec
            .builder(namespace)
            .await
            .build()
            .await
            .expect("connects to the test server");
        // The lock is under test, not fail-open: a generous per-call timeout.
        let cache = Cache::builder(backend)
            .stampede_protection(protection.parse().expect("true or false"))
            .store_timeout(Duration::from_secs(5))
            .build();
        scenarios::stampede_child(&cache, || async {}).await;
    }

    /// The timeout of [`bounded`]: 250 ms.
    pub const BOUNDED_TIMEOUT: Duration = Duration::from_millis(250);

    /// [`bounded_while_down`](scenarios::bounded_while_down) on the spec's own server,
    /// built with a timeout of [`BOUNDED_TIMEOUT`], killed; `test` is the test's full
    /// name (for [`fault_alone`](ScenarioSpec::fault_alone)).
    pub async fn bounded<S: ScenarioSpec>(spec: &S, test: &str) {
        if spec.fault_alone() && !alone_in_a_process(test) {
            return;
        }
        let mut server = spec.own_server();
        let backend = spec
            .on_own_server(server.port(), BOUNDED_TIMEOUT)
            .await
            .build()
            .await
            .expect("connects to the test's own server");
        // The backend's own bound is measured: no breaker (an open one answers for the
        // store at once), and get-or-compute's store_timeout far above it.
        let cache = Cache::builder(backend)
            .without_circuit_breaker()
            .store_timeout(Duration::from_secs(5))
            .build();
        let report = scenarios::bounded_while_down(&cache, BOUNDED_TIMEOUT, || server.kill()).await;
        eprintln!("{report:?}");
    }

    /// [`fault_cycle`](scenarios::fault_cycle) on the spec's own server, killed and
    /// restarted; `test` is the test's full name (for
    /// [`fault_alone`](ScenarioSpec::fault_alone)).
    pub async fn fault<S: ScenarioSpec>(spec: &S, test: &str) {
        if spec.fault_alone() && !alone_in_a_process(test) {
            return;
        }
        let server = std::cell::RefCell::new(spec.own_server());
        let port = server.borrow().port();
        let timeout = spec.fault_timeout();
        let backend = spec
            .on_own_server(port, timeout)
            .await
            .build()
            .await
            .expect("connects to the test's own server");
        let cache = Cache::builder(backend).store_timeout(timeout).build();
        let report = scenarios::fault_cycle(
            &cache,
            timeout,
            spec.fault_plain_get_bound(timeout),
            || server.borrow_mut().kill(),
            || server.borrow_mut().restart(),
        )
        .await;
        eprintln!("{report:?}");
    }
}

/// Expands a [`ScenarioSpec`] into the scenarios' tests, in a module named
/// `scenarios` (`scenarios!(mod name, spec)` names it), evaluating the spec expression
/// once per test:
///
/// - `blocking_from_threads`: the blocking API from plain threads, on a blocking cache
///   that makes its backend in its own runtime;
/// - `lazy_start`: lazy start against an unreachable address and the test server;
/// - `stampede_across_processes` (and `stampede_child_process`, which the parent runs
///   in 4 processes, doing nothing as an ordinary test): one compute across the
///   processes with stampede protection, more without;
/// - `bounded_while_down`: the spec's own server killed, every call bounded by the
///   backend's timeout (+ 10 % and scheduling slack);
/// - `fault_killed_and_restarted`: the spec's own server killed and restarted during
///   get-or-compute calls.
///
/// The test crate needs `tokio` with the `macros` and `rt-multi-thread` features.
#[macro_export]
macro_rules! scenarios {
    ($spec:expr) => {
        $crate::scenarios!(mod scenarios, $spec);
    };
    (mod $module:ident, $spec:expr) => {
        mod $module {
            #[allow(unused_imports)]
            use super::*;

            #[test]
            fn blocking_from_threads() {
                $crate::scenarios::run::blocking($spec);
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn lazy_start() {
                $crate::scenarios::run::lazy(&$spec).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn stampede_across_processes() {
                let child = $crate::scenarios::test_name(module_path!(), "stampede_child_process");
                $crate::scenarios::run::stampede(&$spec, &child).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn stampede_child_process() {
                $crate::scenarios::run::stampede_child(&$spec).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn bounded_while_down() {
                let test = $crate::scenarios::test_name(module_path!(), "bounded_while_down");
                $crate::scenarios::run::bounded(&$spec, &test).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn fault_killed_and_restarted() {
                let test = $crate::scenarios::test_name(module_path!(), "fault_killed_and_restarted");
                $crate::scenarios::run::fault(&$spec, &test).await;
            }
        }
    };
}
