//! MongoDB driver errors, mapped into the core error.

use cache_core::{Error, ErrorKind};
use mongodb::error::{Error as MongoError, ErrorKind as MongoKind, WriteFailure};

pub(crate) const BACKEND: &str = "mongodb";

/// Duplicate key.
pub(crate) const DUPLICATE_KEY: i32 = 11000;
/// An index of that name exists with other options / other keys.
const INDEX_OPTIONS_CONFLICT: i32 = 85;
const INDEX_KEY_SPECS_CONFLICT: i32 = 86;
/// Unauthorized.
const UNAUTHORIZED: i32 = 13;
/// A database or collection name the server refuses.
const INVALID_NAMESPACE: i32 = 73;

/// The server's error codes in `e`, whatever shape the driver gave it (a write, a
/// command, an insert-many or a bulk-write error).
fn codes(e: &MongoError) -> Vec<i32> {
    match e.kind.as_ref() {
        MongoKind::Command(c) => vec![c.code],
        MongoKind::Write(WriteFailure::WriteError(w)) => vec![w.code],
        MongoKind::Write(WriteFailure::WriteConcernError(w)) => vec![w.code],
        MongoKind::InsertMany(m) => m
            .write_errors
            .iter()
            .flatten()
            .map(|w| w.code)
            .chain(m.write_concern_error.iter().map(|w| w.code))
            .collect(),
        MongoKind::BulkWrite(b) => b
            .write_errors
            .values()
            .map(|w| w.code)
            .chain(b.write_concern_errors.iter().map(|w| w.code))
            .collect(),
        _ => vec![],
    }
}

/// Whether `e` is a duplicate-key error (E11000), in any of its shapes.
pub(crate) fn is_duplicate_key(e: &MongoError) -> bool {
    codes(e).contains(&DUPLICATE_KEY)
}

/// Map a driver error to what a caller can act on.
pub(crate) fn map(e: MongoError) -> Error {
    let codes = codes(&e);
    let (kind, message) = match e.kind.as_ref() {
        MongoKind::Authentication { .. } => (
            ErrorKind::Config,
            "authentication failed; check the user, password and authSource in the URI",
        ),
        MongoKind::InvalidArgument { .. } | MongoKind::InvalidTlsConfig { .. } => (
            ErrorKind::Config,
            "the driver refused a setting; check the URI and the options",
        ),
        MongoKind::ServerSelection { .. } | MongoKind::Io(_) | MongoKind::ConnectionPoolCleared { .. } => (
            ErrorKind::Unavailable,
            "cannot reach MongoDB; is the server up and the URI right?",
        ),
        _ if codes.iter().any(|c| *c == INDEX_OPTIONS_CONFLICT || *c == INDEX_KEY_SPECS_CONFLICT) => (
            ErrorKind::Config,
            "the collection has an index of the same name with other options; drop it or use another collection",
        ),
        _ if codes.contains(&INVALID_NAMESPACE) => (
            ErrorKind::Config,
            "MongoDB refused the database or collection name; pick another",
        ),
        _ if codes.contains(&UNAUTHORIZED) => (
            ErrorKind::Config,
            "not authorized; grant the user readWrite on the database",
        ),
        _ if e.contains_label(mongodb::error::RETRYABLE_WRITE_ERROR) => (
            ErrorKind::Unavailable,
            "MongoDB could not take the write now (failover?); retry",
        ),
        _ => (ErrorKind::Backend, "MongoDB answered with an error"),
    };
    Error::new(kind, BACKEND, message).with_source(e)
}

pub(crate) fn config(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::Config, BACKEND, message.into())
}
