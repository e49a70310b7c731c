//! Redis driver errors and their mapping into the core error.

use cache_core::{Error, ErrorKind};
use redis::RedisError;

pub(crate) const BACKEND: &str = "redis";

/// Map a driver error to what a caller can act on.
pub(crate) fn map(e: RedisError) -> Error {
    use redis::ErrorKind as R;
    let (kind, message) = if e.kind() == R::AuthenticationFailed
        || e.code().is_some_and(|c| c == "WRONGPASS" || c == "NOAUTH")
    {
        (
            ErrorKind::Config,
            "authentication failed; check the user and password in the URL",
        )
    } else if e.kind() == R::InvalidClientConfig {
        (
            ErrorKind::Config,
            "invalid Redis client configuration; check the URL",
        )
    } else if e.code().is_some_and(|c| {
        matches!(
            c,
            "LOADING" | "MASTERDOWN" | "TRYAGAIN" | "CLUSTERDOWN" | "BUSY" | "READONLY"
        )
    }) {
        (
            ErrorKind::Unavailable,
            "Redis is not ready (loading its data, failing over, read-only after a failover, or busy running a script); it passes by itself, calls fail open meanwhile",
        )
    } else if e.is_timeout() {
        (
            ErrorKind::Timeout,
            "Redis did not answer in time; check the server or raise the timeout",
        )
    } else if e.is_io_error()
        || e.is_connection_refusal()
        || e.is_connection_dropped()
        || e.is_cluster_error()
        || e.kind() == R::ClusterConnectionNotFound
    {
        (
            ErrorKind::Unavailable,
            "cannot reach Redis; is the server up and the URL right?",
        )
    } else {
        (ErrorKind::Backend, "Redis answered with an error")
    };
    Error::new(kind, BACKEND, message).with_source(e)
}

pub(crate) fn config(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::Config, BACKEND, message.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_that_pass_are_transient() {
        for code in [
            "LOADING",
            "MASTERDOWN",
            "TRYAGAIN",
            "CLUSTERDOWN",
            "BUSY",
            "READONLY",
        ] {
            let reply = format!("-{code} not now\r\n");
            let err = redis::parse_redis_value(reply.as_bytes())
                .and_then(|v| v.extract_error())
                .unwrap_err();
            assert_eq!(err.code(), Some(code));
            let mapped = map(err);
            assert!(mapped.is_transient(), "{code}: {mapped}");
        }
        let other = redis::parse_redis_value(b"-ERR wrong\r\n")
            .and_then(|v| v.extract_error())
            .unwrap_err();
        assert_eq!(map(other).kind(), ErrorKind::Backend);
    }
}
