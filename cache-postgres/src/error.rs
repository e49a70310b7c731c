//! PostgreSQL driver and pool errors, mapped into the core error.

use cache_core::{Error, ErrorKind};
use tokio_postgres::error::SqlState;

pub(crate) const BACKEND: &str = "postgres";

/// Map a driver error to what a caller can act on.
pub(crate) fn map(e: tokio_postgres::Error) -> Error {
    let (kind, message) = match e.code() {
        Some(c) if *c == SqlState::INVALID_PASSWORD
            || *c == SqlState::INVALID_AUTHORIZATION_SPECIFICATION =>
        {
            (
                ErrorKind::Config,
                "authentication failed; check the user and password in the DSN",
            )
        }
        Some(c) if *c == SqlState::INVALID_CATALOG_NAME => (
            ErrorKind::Config,
            "the database does not exist; create it or fix dbname in the DSN",
        ),
        Some(c) if *c == SqlState::INVALID_SCHEMA_NAME || *c == SqlState::UNDEFINED_TABLE => (
            ErrorKind::Config,
            "the schema or the cache table does not exist; create the schema, or let build() create the table",
        ),
        Some(c) if *c == SqlState::INSUFFICIENT_PRIVILEGE => (
            ErrorKind::Config,
            "permission denied; grant the user rights on the schema and the cache table",
        ),
        Some(c) if *c == SqlState::ADMIN_SHUTDOWN
            || *c == SqlState::CRASH_SHUTDOWN
            || *c == SqlState::CANNOT_CONNECT_NOW
            || *c == SqlState::TOO_MANY_CONNECTIONS =>
        {
            (
                ErrorKind::Unavailable,
                "PostgreSQL is shutting down, starting up or full; retry later",
            )
        }
        Some(c) if *c == SqlState::QUERY_CANCELED => (
            ErrorKind::Timeout,
            "PostgreSQL cancelled the statement (statement_timeout); raise it or the timeout",
        ),
        // tokio-postgres reports every TLS failure with this text (its error kinds are
        // private); the cause (unknown issuer, wrong name) is in the source.
        None if e.to_string().starts_with("error performing TLS handshake") => (
            ErrorKind::Config,
            "TLS handshake failed: give the CA that signed the server's certificate \
             (tls_ca_file) and a host name the certificate names",
        ),
        None if e.is_closed() || std::error::Error::source(&e).is_some() => (
            ErrorKind::Unavailable,
            "cannot reach PostgreSQL; is the server up and the DSN right?",
        ),
        _ => (ErrorKind::Backend, "PostgreSQL answered with an error"),
    };
    Error::new(kind, BACKEND, message).with_source(e)
}

/// Map a pool checkout error.
pub(crate) fn pool(e: bb8::RunError<tokio_postgres::Error>) -> Error {
    match e {
        bb8::RunError::User(e) => map(e),
        bb8::RunError::TimedOut => Error::new(
            ErrorKind::Timeout,
            BACKEND,
            "no pooled connection within the timeout; is PostgreSQL up, or is the pool too small?",
        ),
    }
}

pub(crate) fn config(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::Config, BACKEND, message.into())
}
