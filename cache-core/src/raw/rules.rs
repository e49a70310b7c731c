//! The contract's rules for keys and namespaces.

use crate::error::{Error, ErrorKind, Result};

/// Longest key accepted, in bytes. Longer keys are an [`InvalidInput`](ErrorKind::InvalidInput) error.
pub const MAX_KEY_LEN: usize = 64 * 1024;

/// Longest namespace accepted, in bytes.
pub const MAX_NAMESPACE_LEN: usize = 128;

/// The namespace used when none is configured.
pub const DEFAULT_NAMESPACE: &str = "default";

/// Check a key against the rules above ([`InvalidInput`](ErrorKind::InvalidInput) if bad).
#[inline]
pub fn validate_key(backend: &'static str, key: &str) -> Result<()> {
    if key.is_empty() {
        return Err(Error::invalid_input(
            backend,
            "empty key: give every cached value a non-empty key",
        ));
    }
    if key.len() > MAX_KEY_LEN {
        return Err(Error::invalid_input(
            backend,
            format!(
                "key of {} bytes is longer than the limit of {MAX_KEY_LEN} bytes; build shorter keys (KeyBuilder hashes long argument lists)",
                key.len()
            ),
        ));
    }
    Ok(())
}

/// Check a namespace against the rules above ([`Config`](ErrorKind::Config) if bad).
pub fn validate_namespace(backend: &'static str, namespace: &str) -> Result<()> {
    let bad = |why: &str| {
        Err(Error::new(
            ErrorKind::Config,
            backend,
            format!(
                "invalid namespace {namespace:?}: {why}; use 1 to {MAX_NAMESPACE_LEN} printable ASCII characters without spaces or ':'"
            ),
        ))
    };
    if namespace.is_empty() {
        return bad("it is empty");
    }
    if namespace.len() > MAX_NAMESPACE_LEN {
        return bad("it is too long");
    }
    if let Some(c) = namespace
        .chars()
        .find(|c| !c.is_ascii_graphic() || *c == ':')
    {
        return bad(&format!("it contains {c:?}"));
    }
    Ok(())
}
