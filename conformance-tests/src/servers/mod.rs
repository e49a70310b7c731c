//! Where networked tests find their servers: one [`Server`] spec per store.
//!
//! First choice: the variable (`CACHE_TEST_*`) that `scripts/servers.sh` exports after
//! starting real servers on 127.0.0.1 (no Docker needed). With the `testcontainers`
//! feature and a Docker engine, a missing variable starts the server in a container
//! instead. Otherwise the test fails with a message that says how to start the server:
//! a networked test never passes without its server.
//!
//! A new store adds one constant in `specs.rs` and one script,
//! `scripts/servers/<store>.sh`. Files: `specs.rs` (the stores), `ready.rs` (protocol
//! probes), `own.rs` (server processes of a test's own), `containers.rs` (the
//! `testcontainers` path).

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

#[cfg(feature = "testcontainers")]
mod containers;
mod own;
pub mod ready;
mod specs;

pub use own::{OwnProcess, OwnServer};
pub use specs::*;

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
