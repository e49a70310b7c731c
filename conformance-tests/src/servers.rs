//! Where networked tests find their servers: one [`Server`] spec per store.
//!
//! First choice: the variable (`CACHE_TEST_*`) that `scripts/servers.sh` exports after
//! starting real servers on 127.0.0.1 (no Docker needed). With the `testcontainers`
//! feature and a Docker engine, a missing variable starts the server in a container
//! instead. Otherwise the test fails with a message that says how to start the server:
//! a networked test never passes without its server.
//!
//! A new store adds one constant here and one script, `scripts/servers/<store>.sh`.

/// How tests reach one store's server.
#[derive(Debug, Clone, Copy)]
pub struct Server {
    /// The store's name, as `scripts/servers.sh` knows it (`redis`, `postgres`, ...).
    pub store: &'static str,
    /// The variable holding the server's address (URL, DSN or host:port).
    pub var: &'static str,
    /// Container image and tag for the `testcontainers` path.
    pub image: (&'static str, &'static str),
    /// Environment of the container (`KEY`, `value`).
    pub container_env: &'static [(&'static str, &'static str)],
    /// The port the server listens on inside the container.
    pub port: u16,
    /// A line the server prints once it accepts connections.
    pub ready_line: &'static str,
    /// The address for a server reachable on 127.0.0.1 at `port`.
    pub address: fn(port: u16) -> String,
}

/// Redis (`CACHE_TEST_REDIS_URL`, `redis://127.0.0.1:PORT`).
pub const REDIS: Server = Server {
    store: "redis",
    var: "CACHE_TEST_REDIS_URL",
    image: ("redis", "7-alpine"),
    container_env: &[],
    port: 6379,
    ready_line: "Ready to accept connections",
    address: |port| format!("redis://127.0.0.1:{port}"),
};

/// PostgreSQL (`CACHE_TEST_POSTGRES_URL`, `postgres://user:password@127.0.0.1:PORT/db`).
pub const POSTGRES: Server = Server {
    store: "postgres",
    var: "CACHE_TEST_POSTGRES_URL",
    image: ("postgres", "16-alpine"),
    container_env: &[("POSTGRES_PASSWORD", "postgres")],
    port: 5432,
    ready_line: "database system is ready to accept connections",
    address: |port| format!("postgres://postgres:postgres@127.0.0.1:{port}/postgres"),
};

/// Memcached (`CACHE_TEST_MEMCACHED_URL`, `127.0.0.1:PORT`).
pub const MEMCACHED: Server = Server {
    store: "memcached",
    var: "CACHE_TEST_MEMCACHED_URL",
    image: ("memcached", "1.6-alpine"),
    container_env: &[],
    port: 11211,
    ready_line: "", // memcached prints nothing when ready
    address: |port| format!("127.0.0.1:{port}"),
};

/// MongoDB (`CACHE_TEST_MONGODB_URL`, `mongodb://127.0.0.1:PORT/db`).
pub const MONGODB: Server = Server {
    store: "mongodb",
    var: "CACHE_TEST_MONGODB_URL",
    image: ("mongo", "8"),
    container_env: &[],
    port: 27017,
    ready_line: "Waiting for connections",
    address: |port| format!("mongodb://127.0.0.1:{port}/cache_test"),
};

/// DynamoDB (`CACHE_TEST_DYNAMODB_URL`, the endpoint `http://127.0.0.1:PORT`).
pub const DYNAMODB: Server = Server {
    store: "dynamodb",
    var: "CACHE_TEST_DYNAMODB_URL",
    image: ("amazon/dynamodb-local", "latest"),
    container_env: &[],
    port: 8000,
    ready_line: "Initializing DynamoDB Local",
    address: |port| format!("http://127.0.0.1:{port}"),
};

/// Firestore's emulator (`CACHE_TEST_FIRESTORE_HOST`, `127.0.0.1:PORT`; the firestore
/// crate reads `FIRESTORE_EMULATOR_HOST`, which the scripts set to the same).
pub const FIRESTORE: Server = Server {
    store: "firestore",
    var: "CACHE_TEST_FIRESTORE_HOST",
    image: (
        "gcr.io/google.com/cloudsdktool/google-cloud-cli",
        "emulators",
    ),
    container_env: &[],
    port: 8080,
    ready_line: "Dev App Server is now running",
    address: |port| format!("127.0.0.1:{port}"),
};

/// A server process of a test's own (to kill and restart), on 127.0.0.1; killed
/// when dropped.
pub struct OwnProcess {
    /// The port it listens on.
    pub port: u16,
    program: String,
    args: Vec<String>,
    child: Option<std::process::Child>,
}

impl OwnProcess {
    /// A redis-server of the test's own on `port` (`CACHE_TEST_REDIS_SERVER_BIN`, no
    /// persistence), with `extra` arguments, so killing it disturbs no one.
    pub fn redis(port: u16, extra: &[&str]) -> Self {
        let port_s = port.to_string();
        let mut args = vec![
            "--bind",
            "127.0.0.1",
            "--port",
            &port_s,
            "--save",
            "",
            "--appendonly",
            "no",
        ];
        args.extend_from_slice(extra);
        Self::start(&env("CACHE_TEST_REDIS_SERVER_BIN"), &args, port)
    }

    /// A port free right now on 127.0.0.1.
    pub fn free_port() -> u16 {
        std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port()
    }

    /// Start `program args` (which must listen on 127.0.0.1:`port`) and wait until it
    /// accepts connections.
    pub fn start(program: &str, args: &[&str], port: u16) -> Self {
        let mut p = OwnProcess {
            port,
            program: program.to_owned(),
            args: args.iter().map(|a| (*a).to_owned()).collect(),
            child: None,
        };
        p.restart();
        p
    }

    /// Start it again after [`kill`](Self::kill), same port and arguments.
    pub fn restart(&mut self) {
        let child = std::process::Command::new(&self.program)
            .args(&self.args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", self.program));
        self.child = Some(child);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "{} did not start on {}",
                self.program,
                self.port
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }

    /// Kill it (SIGKILL) and wait for it to end.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for OwnProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The variable's value, or `None`.
pub fn from_env(var: &str) -> Option<String> {
    std::env::var(var).ok().filter(|v| !v.is_empty())
}

/// The variable's value, or a panic that says how to start the servers.
pub fn env(var: &str) -> String {
    from_env(var).unwrap_or_else(|| missing(var))
}

/// Panic with the message that tells how to start the test servers.
pub fn missing(var: &str) -> ! {
    panic!(
        "{var} is not set: this test needs a real server. Run `bash scripts/test.sh`, or \
         `bash scripts/servers.sh start && eval \"$(bash scripts/servers.sh env)\"` first{}.",
        if cfg!(feature = "testcontainers") {
            ""
        } else {
            " (or enable the `testcontainers` feature where a Docker engine runs)"
        }
    )
}

/// The address of `server`: its variable, or (with the `testcontainers` feature) a
/// container started for this test process.
pub async fn address(server: &Server) -> String {
    if let Some(address) = from_env(server.var) {
        return address;
    }
    #[cfg(feature = "testcontainers")]
    {
        containers::start(*server).await
    }
    #[cfg(not(feature = "testcontainers"))]
    missing(server.var)
}

#[cfg(feature = "testcontainers")]
mod containers {
    use super::Server;
    use parking_lot::Mutex;
    use std::collections::HashMap;
    use testcontainers::core::{IntoContainerPort, WaitFor};
    use testcontainers::runners::AsyncRunner;
    use testcontainers::{ContainerRequest, GenericImage, ImageExt};

    static STARTED: Mutex<Option<HashMap<&'static str, String>>> = Mutex::new(None);

    /// One container per store per test process, kept alive by a thread of its own
    /// (each `#[tokio::test]` has its own runtime, which would end the container).
    pub(super) async fn start(server: Server) -> String {
        tokio::task::spawn_blocking(move || {
            let mut started = STARTED.lock();
            let map = started.get_or_insert_with(HashMap::new);
            map.entry(server.store)
                .or_insert_with(|| start_blocking(server))
                .clone()
        })
        .await
        .expect("container start-up thread")
    }

    fn start_blocking(server: Server) -> String {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime for the container thread");
            rt.block_on(async move {
                let (name, tag) = server.image;
                let mut image: ContainerRequest<GenericImage> = GenericImage::new(name, tag)
                    .with_exposed_port(server.port.tcp())
                    .with_wait_for(if server.ready_line.is_empty() {
                        // A server that prints nothing (memcached): give it a moment.
                        WaitFor::millis(500)
                    } else {
                        WaitFor::message_on_either_std(server.ready_line)
                    })
                    .into();
                for (k, v) in server.container_env {
                    image = image.with_env_var(*k, *v);
                }
                let started = image.start().await;
                match started {
                    Ok(container) => {
                        match container.get_host_port_ipv4(server.port).await {
                            Ok(port) => {
                                let _ = tx.send(Ok((server.address)(port)));
                            }
                            Err(e) => {
                                let _ = tx.send(Err(e.to_string()));
                                return;
                            }
                        }
                        // Keep the container for the life of the test process.
                        std::future::pending::<()>().await;
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e.to_string()));
                    }
                }
            });
        });
        match rx.recv() {
            Ok(Ok(address)) => address,
            Ok(Err(e)) => panic!(
                "cannot start a {} container ({e}); is a Docker engine running?",
                server.store
            ),
            Err(_) => panic!(
                "the {} container thread ended before it started",
                server.store
            ),
        }
    }
}
