//! async-memcached and pool errors, mapped into the core error.

use async_memcached::{Error as McError, ErrorKind as McKind, Status};
use cache_core::{Error, ErrorKind};

pub(crate) const BACKEND: &str = "memcached";

/// Map a driver error to what a caller can act on; `server` names the server.
pub(crate) fn map(e: McError, server: &str) -> Error {
    let (kind, message) = match &e {
        McError::Connect(io) if io.kind() == std::io::ErrorKind::InvalidInput => (
            ErrorKind::Config,
            format!(
                "bad memcached address {server:?}: use host:port, tcp://host:port or unix:///path"
            ),
        ),
        McError::Connect(_) => (
            ErrorKind::Unavailable,
            format!("cannot connect to memcached at {server}; is it up and the address right?"),
        ),
        McError::Io(_) | McError::ConnectionClosed => (
            ErrorKind::Unavailable,
            format!(
                "the connection to memcached at {server} failed; it is replaced on the next call"
            ),
        ),
        McError::Protocol(Status::Error(McKind::Server(m))) if m.contains("too large") => (
            ErrorKind::InvalidInput,
            format!(
                "memcached at {server} refused the value as over its item size limit (-I); \
                 lower max_value_size or raise -I"
            ),
        ),
        McError::Protocol(Status::Error(McKind::Server(m))) => (
            ErrorKind::Backend,
            format!("memcached at {server} answered SERVER_ERROR {m}"),
        ),
        _ => (
            ErrorKind::Backend,
            format!("memcached at {server} answered unexpectedly"),
        ),
    };
    Error::new(kind, BACKEND, message).with_source(e)
}

/// Map a pool checkout error.
pub(crate) fn pool(e: bb8::RunError<McError>, server: &str) -> Error {
    match e {
        bb8::RunError::User(e) => map(e, server),
        bb8::RunError::TimedOut => Error::new(
            ErrorKind::Unavailable,
            BACKEND,
            format!("no connection to memcached at {server} within the timeout; is it up?"),
        ),
    }
}

pub(crate) fn config(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::Config, BACKEND, message.into())
}
