//! Errors of the in-memory backend. It has no driver, so every error is one of the
//! core's input or configuration errors, made here so messages stay alike.

use cache_core::{Error, ErrorKind};

pub(crate) const BACKEND: &str = "memory";

pub(crate) fn config(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::Config, BACKEND, message.into())
}
