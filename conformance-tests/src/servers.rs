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
    /// Container image and tag for the `testcontainers` path (the official image;
    /// `CACHE_TEST_<STORE>_IMAGE=name:tag` picks another, e.g. the ones
    /// `scripts/containers.sh` builds).
    pub image: (&'static str, &'static str),
    /// The official image's command, when its default does not serve (the other
    /// images bring their own).
    pub container_cmd: &'static [&'static str],
    /// Environment of the container (`KEY`, `value`).
    pub container_env: &'static [(&'static str, &'static str)],
    /// The port the server listens on inside the container.
    pub port: u16,
    /// For a client that finds its server through a variable of its own (the firestore
    /// crate's `FIRESTORE_EMULATOR_HOST`): the container is published on that
    /// variable's port, when it is set.
    pub host_port_var: Option<&'static str>,
    /// Readiness: a real protocol call to 127.0.0.1:`port` that must be answered
    /// within the time given (the container path waits on it).
    pub ready: fn(port: u16, within: std::time::Duration) -> Result<(), String>,
    /// The address for a server reachable on 127.0.0.1 at `port`.
    pub address: fn(port: u16) -> String,
}

/// Redis (`CACHE_TEST_REDIS_URL`, `redis://127.0.0.1:PORT`).
pub const REDIS: Server = Server {
    store: "redis",
    var: "CACHE_TEST_REDIS_URL",
    image: ("redis", "7-alpine"),
    container_env: &[],
    container_cmd: &[],
    port: 6379,
    host_port_var: None,
    ready: ready::redis,
    address: |port| format!("redis://127.0.0.1:{port}"),
};

/// PostgreSQL (`CACHE_TEST_POSTGRES_URL`, `postgres://user:password@127.0.0.1:PORT/db`).
pub const POSTGRES: Server = Server {
    store: "postgres",
    var: "CACHE_TEST_POSTGRES_URL",
    image: ("postgres", "16-alpine"),
    container_env: &[("POSTGRES_PASSWORD", "postgres")],
    container_cmd: &[],
    port: 5432,
    host_port_var: None,
    ready: ready::postgres,
    address: |port| format!("postgres://postgres:postgres@127.0.0.1:{port}/postgres"),
};

/// Memcached (`CACHE_TEST_MEMCACHED_URL`, `127.0.0.1:PORT`).
pub const MEMCACHED: Server = Server {
    store: "memcached",
    var: "CACHE_TEST_MEMCACHED_URL",
    image: ("memcached", "1.6-alpine"),
    container_env: &[],
    container_cmd: &[],
    port: 11211,
    host_port_var: None,
    ready: ready::memcached,
    address: |port| format!("127.0.0.1:{port}"),
};

/// MongoDB (`CACHE_TEST_MONGODB_URL`, `mongodb://127.0.0.1:PORT/db`).
pub const MONGODB: Server = Server {
    store: "mongodb",
    var: "CACHE_TEST_MONGODB_URL",
    image: ("mongo", "8"),
    container_env: &[],
    container_cmd: &[],
    port: 27017,
    host_port_var: None,
    ready: ready::mongodb,
    address: |port| format!("mongodb://127.0.0.1:{port}/cache_test"),
};

/// DynamoDB (`CACHE_TEST_DYNAMODB_URL`, the endpoint `http://127.0.0.1:PORT`).
pub const DYNAMODB: Server = Server {
    store: "dynamodb",
    var: "CACHE_TEST_DYNAMODB_URL",
    image: ("amazon/dynamodb-local", "latest"),
    container_env: &[],
    container_cmd: &[],
    port: 8000,
    host_port_var: None,
    ready: ready::http,
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
    container_cmd: &[
        "gcloud",
        "emulators",
        "firestore",
        "start",
        "--host-port=0.0.0.0:8080",
    ],
    port: 8080,
    host_port_var: Some("FIRESTORE_EMULATOR_HOST"),
    ready: ready::grpc,
    address: |port| format!("127.0.0.1:{port}"),
};

/// Readiness probes: one real request of each store's protocol, answered.
pub mod ready {
    use std::io::{Read, Write};
    use std::net::TcpStream;
    use std::time::{Duration, Instant};

    /// Send `request` to 127.0.0.1:`port` until the answer satisfies `ok`, or `within`
    /// has passed (then the last failure).
    fn probe(
        port: u16,
        within: Duration,
        request: &[u8],
        ok: fn(&[u8]) -> bool,
    ) -> Result<(), String> {
        let deadline = Instant::now() + within;
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        loop {
            let answer = (|| -> std::io::Result<Vec<u8>> {
                let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(1))?;
                s.set_read_timeout(Some(Duration::from_secs(2)))?;
                s.write_all(request)?;
                let mut buf = vec![0u8; 512];
                let n = s.read(&mut buf)?;
                buf.truncate(n);
                Ok(buf)
            })();
            let why = match answer {
                Ok(a) if ok(&a) => return Ok(()),
                Ok(a) => format!("answered {:?}", String::from_utf8_lossy(&a)),
                Err(e) => e.to_string(),
            };
            if Instant::now() >= deadline {
                return Err(why);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Redis: `PING` answered `+PONG`.
    pub fn redis(port: u16, within: Duration) -> Result<(), String> {
        probe(port, within, b"PING\r\n", |a| a.starts_with(b"+PONG"))
    }

    /// Memcached: `version` answered `VERSION ...`.
    pub fn memcached(port: u16, within: Duration) -> Result<(), String> {
        probe(port, within, b"version\r\n", |a| a.starts_with(b"VERSION "))
    }

    /// PostgreSQL: a startup message (user and database `postgres`) answered with an
    /// authentication request, not "the database system is starting up".
    pub fn postgres(port: u16, within: Duration) -> Result<(), String> {
        const STARTUP: &[u8] = b"\0\0\0\x29\0\x03\0\0user\0postgres\0database\0postgres\0\0";
        probe(port, within, STARTUP, |a| a.first() == Some(&b'R'))
    }

    /// MongoDB: an OP_MSG `{hello: 1, $db: "admin"}` answered with an OP_MSG.
    pub fn mongodb(port: u16, within: Duration) -> Result<(), String> {
        let mut doc = Vec::new();
        doc.extend_from_slice(b"\x10hello\0");
        doc.extend_from_slice(&1i32.to_le_bytes());
        doc.extend_from_slice(b"\x02$db\0");
        doc.extend_from_slice(&6i32.to_le_bytes());
        doc.extend_from_slice(b"admin\0\0");
        let doc_len = (doc.len() + 4) as i32;
        let mut msg = Vec::new();
        let total = 16 + 4 + 1 + doc_len;
        for v in [total, 1, 0, 2013, 0] {
            msg.extend_from_slice(&v.to_le_bytes());
        }
        msg.push(0);
        msg.extend_from_slice(&doc_len.to_le_bytes());
        msg.extend_from_slice(&doc);
        let msg: &'static [u8] = Box::leak(msg.into_boxed_slice());
        probe(port, within, msg, |a| {
            a.len() >= 16 && a[12..16] == 2013i32.to_le_bytes()
        })
    }

    /// A gRPC server (the Firestore emulators): the HTTP/2 preface and an empty
    /// SETTINGS frame answered with a SETTINGS frame.
    pub fn grpc(port: u16, within: Duration) -> Result<(), String> {
        const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0";
        probe(port, within, PREFACE, |a| a.len() >= 9 && a[3] == 4)
    }

    /// An HTTP server (DynamoDB): any HTTP answer to `GET /`.
    pub fn http(port: u16, within: Duration) -> Result<(), String> {
        probe(
            port,
            within,
            b"GET / HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n",
            |a| a.starts_with(b"HTTP/1."),
        )
    }
}

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
    //! One container per store per test process: the image from
    //! `CACHE_TEST_<STORE>_IMAGE` (`name:tag`, the official image by default), the
    //! port published on 127.0.0.1 only, ready once a real protocol call is answered,
    //! labelled with this process, and removed when the process exits (an `atexit`
    //! hook) or, after a crash, by the next test process that starts containers.

    use super::{OwnProcess, Server};
    use parking_lot::Mutex;
    use std::collections::HashMap;
    use std::sync::mpsc;
    use std::time::{Duration, Instant};
    use testcontainers::bollard::models::PortBinding;
    use testcontainers::bollard::query_parameters::{
        ListContainersOptions, RemoveContainerOptions,
    };
    use testcontainers::bollard::Docker;
    use testcontainers::core::IntoContainerPort;
    use testcontainers::runners::AsyncRunner;
    use testcontainers::{ContainerRequest, GenericImage, ImageExt};

    /// The label every container of the test suites carries; its value is the pid of
    /// the test process that started it.
    pub const LABEL: &str = "cachekit.test.owner";

    struct Started {
        address: String,
        /// Tells the keeper thread to remove the container; it answers when done.
        stop: Option<(tokio::sync::oneshot::Sender<()>, mpsc::Receiver<()>)>,
    }

    static STARTED: Mutex<Option<HashMap<&'static str, Started>>> = Mutex::new(None);

    /// The address of `server` in this process's container, started on first use.
    pub(super) async fn start(server: Server) -> String {
        tokio::task::spawn_blocking(move || {
            let mut started = STARTED.lock();
            let map = started.get_or_insert_with(|| {
                remove_orphans();
                // SAFETY: registers a plain `extern "C" fn` with no arguments.
                unsafe { libc::atexit(remove_at_exit) };
                HashMap::new()
            });
            map.entry(server.store)
                .or_insert_with(|| start_blocking(server))
                .address
                .clone()
        })
        .await
        .expect("container start-up thread")
    }

    /// The image for `server`, `CACHE_TEST_<STORE>_IMAGE` or its default, and whether
    /// it is the official one.
    fn image(server: &Server) -> (String, String, bool) {
        let var = format!("CACHE_TEST_{}_IMAGE", server.store.to_uppercase());
        match super::from_env(&var) {
            Some(image) => match image.rsplit_once(':').filter(|(_, t)| !t.contains('/')) {
                Some((name, tag)) => (name.to_owned(), tag.to_owned(), false),
                None => (image, "latest".to_owned(), false),
            },
            None => (server.image.0.to_owned(), server.image.1.to_owned(), true),
        }
    }

    fn start_blocking(server: Server) -> Started {
        let (tx, rx) = mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let (done_tx, done_rx) = mpsc::channel();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime for the container thread");
            rt.block_on(async move {
                let (name, tag, official) = image(&server);
                let host_port = server
                    .host_port_var
                    .and_then(super::from_env)
                    .and_then(|a| a.rsplit_once(':').and_then(|(_, p)| p.parse().ok()))
                    .unwrap_or_else(OwnProcess::free_port);
                let port = server.port;
                let mut request: ContainerRequest<GenericImage> = GenericImage::new(name, tag)
                    .with_mapped_port(host_port, port.tcp())
                    .with_label(LABEL, std::process::id().to_string())
                    // Published on 127.0.0.1 only (podman reports an empty host IP
                    // for ports published on every interface).
                    .with_host_config_modifier(move |hc| {
                        let binding = PortBinding {
                            host_ip: Some("127.0.0.1".to_owned()),
                            host_port: Some(host_port.to_string()),
                        };
                        hc.port_bindings = Some(HashMap::from([(
                            format!("{port}/tcp"),
                            Some(vec![binding]),
                        )]));
                        hc.publish_all_ports = Some(false);
                    });
                for (k, v) in server.container_env {
                    request = request.with_env_var(*k, *v);
                }
                if official && !server.container_cmd.is_empty() {
                    request = request.with_cmd(server.container_cmd.iter().copied());
                }
                let container = match request.start().await {
                    Ok(c) => c,
                    Err(e) => {
                        let _ = tx.send(Err(e.to_string()));
                        return;
                    }
                };
                match (server.ready)(host_port, Duration::from_secs(60)) {
                    Ok(()) => {
                        let _ = tx.send(Ok((server.address)(host_port)));
                    }
                    Err(e) => {
                        let _ = tx.send(Err(format!("not ready on 127.0.0.1:{host_port}: {e}")));
                    }
                }
                // Kept until the process exits (or the start failed): then removed.
                let _ = stop_rx.await;
                let _ = container.rm().await;
                let _ = done_tx.send(());
            });
        });
        match rx.recv() {
            Ok(Ok(address)) => Started {
                address,
                stop: Some((stop_tx, done_rx)),
            },
            Ok(Err(e)) => {
                let _ = stop_tx.send(());
                let _ = done_rx.recv_timeout(Duration::from_secs(10));
                panic!(
                    "cannot start a {} container ({e}); is a Docker engine running (DOCKER_HOST)?",
                    server.store
                )
            }
            Err(_) => panic!(
                "the {} container thread ended before it started",
                server.store
            ),
        }
    }

    /// At exit: remove this process's containers (each keeper thread removes its own).
    extern "C" fn remove_at_exit() {
        let Some(mut started) = STARTED.try_lock() else {
            return;
        };
        let stops: Vec<_> = started
            .iter_mut()
            .flat_map(|m| m.values_mut())
            .filter_map(|s| s.stop.take())
            .collect();
        let mut done = Vec::new();
        for (stop, finished) in stops {
            if stop.send(()).is_ok() {
                done.push(finished);
            }
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        for finished in done {
            let _ = finished.recv_timeout(deadline.saturating_duration_since(Instant::now()));
        }
    }

    /// Whether process `pid` runs (a zombie, killed but not yet reaped, does not).
    fn running(pid: u32) -> bool {
        std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
            // `pid (name) state ...`: the state follows the last parenthesis.
            stat.rsplit_once(')')
                .is_some_and(|(_, rest)| !rest.trim_start().starts_with(['Z', 'X']))
        })
    }

    /// Remove containers left by test processes that ended without their exit hook
    /// (killed, aborted).
    fn remove_orphans() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime for the clean-up");
        rt.block_on(async {
            let docker = match Docker::connect_with_defaults() {
                Ok(d) => d,
                Err(e) => {
                    eprintln!("containers: cannot look for orphans ({e})");
                    return;
                }
            };
            let options = ListContainersOptions {
                all: true,
                filters: Some(HashMap::from([(
                    "label".to_owned(),
                    vec![LABEL.to_owned()],
                )])),
                ..Default::default()
            };
            let list = match docker.list_containers(Some(options)).await {
                Ok(l) => l,
                Err(e) => {
                    eprintln!("containers: cannot list orphans ({e})");
                    return;
                }
            };
            for c in list {
                let owner = c
                    .labels
                    .as_ref()
                    .and_then(|l| l.get(LABEL))
                    .and_then(|p| p.parse::<u32>().ok());
                let alive = owner.is_some_and(running);
                if let (false, Some(id)) = (alive, c.id) {
                    let options = RemoveContainerOptions {
                        force: true,
                        v: true,
                        ..Default::default()
                    };
                    if let Err(e) = docker.remove_container(&id, Some(options)).await {
                        eprintln!("containers: cannot remove the orphan {id} ({e})");
                    }
                }
            }
        });
    }
}
