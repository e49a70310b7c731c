//! The one error type every backend returns.

use std::borrow::Cow;
use std::fmt;

/// Boxed source error carried inside [`Error`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Result alias used across the library.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong, in terms a caller can act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The backend is misconfigured (bad URL, wrong password, invalid namespace).
    /// Fix the configuration; retrying will not help.
    Config,
    /// The store cannot be reached right now (connection refused or lost).
    /// Transient: retry later, or let get-or-compute fail open.
    Unavailable,
    /// The store did not answer within the configured timeout. Transient.
    Timeout,
    /// A value could not be encoded or decoded by the codec.
    Serialization,
    /// The caller passed something the cache cannot take (empty or huge key,
    /// oversized value, invalid namespace). Change the input.
    InvalidInput,
    /// The backend cannot do this operation.
    Unsupported,
    /// The backend was closed with `close()`; create a new one.
    Closed,
    /// The store answered with an error not covered above.
    Backend,
}

impl ErrorKind {
    /// A short lowercase name for the kind.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Config => "configuration error",
            ErrorKind::Unavailable => "backend unavailable",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Serialization => "serialization error",
            ErrorKind::InvalidInput => "invalid input",
            ErrorKind::Unsupported => "unsupported operation",
            ErrorKind::Closed => "backend closed",
            ErrorKind::Backend => "backend error",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where an error came from.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Origin {
    /// A backend, by its short name (`"memory"`, `"redis"`, ...).
    Backend(Cow<'static, str>),
    /// A codec, by its name (`"msgpack"`, `"json"`).
    Codec(&'static str),
    /// Building a key ([`KeyBuilder`](crate::KeyBuilder)).
    Key,
    /// The blocking API's own runtime.
    Runtime,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Backend(name) => f.write_str(name),
            Origin::Codec(name) => write!(f, "codec {name}"),
            Origin::Key => f.write_str("key builder"),
            Origin::Runtime => f.write_str("blocking runtime"),
        }
    }
}

/// A cache error: its [`ErrorKind`], where it came from (a backend, a codec, ...), the
/// operation that failed, a message that says what to do, and the underlying cause.
///
/// One pointer wide (the details are boxed), so a `Result` of a small value stays
/// small on the hot paths that never fail.
pub struct Error {
    inner: Box<Repr>,
}

struct Repr {
    kind: ErrorKind,
    origin: Origin,
    operation: Option<&'static str>,
    message: Cow<'static, str>,
    source: Option<BoxError>,
}

impl Error {
    /// A new error of `kind` raised by the backend named `backend`.
    pub fn new(
        kind: ErrorKind,
        backend: impl Into<Cow<'static, str>>,
        message: impl Into<Cow<'static, str>>,
    ) -> Self {
        Self::from_origin(kind, Origin::Backend(backend.into()), message)
    }

    /// A new error of `kind` from anywhere else than a backend.
    pub fn from_origin(
        kind: ErrorKind,
        origin: Origin,
        message: impl Into<Cow<'static, str>>,
    ) -> Self {
        Error {
            inner: Box::new(Repr {
                kind,
                origin,
                operation: None,
                message: message.into(),
                source: None,
            }),
        }
    }

    /// Name the operation that failed (`"get"`, `"set_many"`, ...), unless one is set.
    pub fn in_operation(mut self, operation: &'static str) -> Self {
        self.inner.operation.get_or_insert(operation);
        self
    }

    /// Attach the underlying cause.
    pub fn with_source(mut self, source: impl Into<BoxError>) -> Self {
        self.inner.source = Some(source.into());
        self
    }

    /// Shorthand for an [`ErrorKind::InvalidInput`] error.
    pub fn invalid_input(
        backend: impl Into<Cow<'static, str>>,
        message: impl Into<Cow<'static, str>>,
    ) -> Self {
        Self::new(ErrorKind::InvalidInput, backend, message)
    }

    /// Shorthand for the [`ErrorKind::InvalidInput`] error of a value over `max` bytes.
    pub fn value_too_large(backend: impl Into<Cow<'static, str>>, len: usize, max: usize) -> Self {
        Self::invalid_input(
            backend,
            format!(
                "value of {len} bytes is larger than the limit of {max} bytes; store smaller values or raise max_value_size"
            ),
        )
    }

    /// Shorthand for the error every backend returns after `close()`.
    pub fn closed(backend: impl Into<Cow<'static, str>>) -> Self {
        Self::new(
            ErrorKind::Closed,
            backend,
            "the backend was closed; build a new one to keep using the cache",
        )
    }

    /// Shorthand for an [`ErrorKind::Timeout`] error after `after`.
    pub fn timeout(backend: impl Into<Cow<'static, str>>, after: std::time::Duration) -> Self {
        Self::new(
            ErrorKind::Timeout,
            backend,
            format!(
                "no answer within {after:?}; check that the server is up and reachable, or raise the timeout"
            ),
        )
    }

    /// What went wrong.
    pub fn kind(&self) -> ErrorKind {
        self.inner.kind
    }

    /// The backend that raised the error (`"memory"`, `"redis"`, ...), if a backend did.
    pub fn backend(&self) -> Option<&str> {
        match &self.inner.origin {
            Origin::Backend(name) => Some(name),
            _ => None,
        }
    }

    /// Where the error came from.
    pub fn origin(&self) -> &Origin {
        &self.inner.origin
    }

    /// The operation that failed, when known (`"get"`, `"set_many"`, ...).
    pub fn operation(&self) -> Option<&str> {
        self.inner.operation
    }

    /// The human-readable message.
    pub fn message(&self) -> &str {
        &self.inner.message
    }

    /// True for errors that may go away by themselves (unreachable store,
    /// timeout): what a retry or a fail-open path may skip over.
    pub fn is_transient(&self) -> bool {
        matches!(self.inner.kind, ErrorKind::Unavailable | ErrorKind::Timeout)
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Error")
            .field("kind", &self.inner.kind)
            .field("origin", &self.inner.origin)
            .field("operation", &self.inner.operation)
            .field("message", &self.inner.message)
            .field("source", &self.inner.source.as_ref().map(|s| s.to_string()))
            .finish()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.inner.operation {
            Some(op) => write!(
                f,
                "{} ({}, {op}): {}",
                self.inner.kind, self.inner.origin, self.inner.message
            )?,
            None => write!(
                f,
                "{} ({}): {}",
                self.inner.kind, self.inner.origin, self.inner.message
            )?,
        }
        if let Some(source) = &self.inner.source {
            write!(f, ": {source}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.inner
            .source
            .as_ref()
            .map(|s| s.as_ref() as &(dyn std::error::Error + 'static))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transient_kinds() {
        assert!(Error::new(ErrorKind::Unavailable, "x", "m").is_transient());
        assert!(Error::timeout("x", std::time::Duration::from_millis(5)).is_transient());
        assert!(!Error::invalid_input("x", "m").is_transient());
        assert!(!Error::closed("x").is_transient());
    }

    #[test]
    fn display_names_backend_kind_and_source() {
        let e = Error::new(ErrorKind::Backend, "redis", "boom")
            .with_source(std::io::Error::other("io"));
        let s = e.to_string();
        assert!(
            s.contains("redis") && s.contains("boom") && s.contains("io"),
            "{s}"
        );
        assert!(std::error::Error::source(&e).is_some());
    }
}
