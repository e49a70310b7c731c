//! Key and namespace rules, and the [`KeyBuilder`].
//!
//! Rules every backend applies (and the conformance suite checks):
//! - a key is 1 to [`MAX_KEY_LEN`] bytes of UTF-8; any character is allowed,
//!   including spaces and control characters, and round-trips as a distinct key;
//! - a namespace is 1 to [`MAX_NAMESPACE_LEN`] printable ASCII characters without
//!   spaces and without `:` (the separator between namespace and key in stores
//!   with a flat key space, so one namespace can never be a prefix of another's keys).
//!
//! Stores that limit key length or characters (Memcached, ...) map a key that does
//! not fit to a SHA-256 digest with [`store_key`]; keys are never truncated.

use crate::error::{Error, Result};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::fmt::Write as _;

/// Longest key accepted, in bytes. Longer keys are an [`InvalidInput`](crate::ErrorKind::InvalidInput) error.
pub const MAX_KEY_LEN: usize = 64 * 1024;

/// Longest namespace accepted, in bytes.
pub const MAX_NAMESPACE_LEN: usize = 128;

/// The namespace used when none is configured.
pub const DEFAULT_NAMESPACE: &str = "default";

/// Check a key against the rules above.
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

/// Check a namespace against the rules above.
pub fn validate_namespace(backend: &'static str, namespace: &str) -> Result<()> {
    let bad = |why: &str| {
        Err(Error::new(
            crate::ErrorKind::Config,
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

/// Lowercase hex SHA-256 of `data` (64 characters).
pub fn sha256_hex(data: &[u8]) -> String {
    let digest = Sha256::digest(data);
    let mut out = String::with_capacity(64);
    for b in digest {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// Map `key` into a flat store key space as `namespace:key`.
///
/// When `namespace:key` would be longer than `max_len` bytes, when `is_safe` rejects a
/// character of the key, or when the key starts with `#`, the key part is replaced by
/// `#` and the SHA-256 of the key. Safe keys never start with `#` and hashed ones
/// always do, so the two forms cannot collide; distinct long keys get distinct digests.
pub fn store_key(
    namespace: &str,
    key: &str,
    max_len: usize,
    is_safe: impl Fn(char) -> bool,
) -> String {
    let fits = namespace.len() + 1 + key.len() <= max_len;
    if fits && !key.starts_with('#') && key.chars().all(is_safe) {
        let mut s = String::with_capacity(namespace.len() + 1 + key.len());
        s.push_str(namespace);
        s.push(':');
        s.push_str(key);
        s
    } else {
        format!("{namespace}:#{}", sha256_hex(key.as_bytes()))
    }
}

/// Builds stable keys from a function path and its arguments.
///
/// Arguments are encoded as JSON, so the key is readable and stable across runs and
/// builds (no `Hash`-based randomness). Keys longer than [`KeyBuilder::max_len`] keep the
/// function path and replace the arguments by their SHA-256, so they never collide
/// through truncation.
///
/// ```
/// use cache_core::KeyBuilder;
/// let key = KeyBuilder::new("users::get_user").arg(&42).arg(&"eu").build().unwrap();
/// assert_eq!(key, r#"users::get_user(42,"eu")"#);
/// ```
#[derive(Debug, Clone)]
pub struct KeyBuilder {
    path: String,
    args: String,
    error: Option<String>,
    max_len: usize,
}

impl KeyBuilder {
    /// Default length above which the argument part is hashed.
    pub const DEFAULT_MAX_LEN: usize = 200;

    /// Start a key for the function at `path` (for example `module_path!()` and the fn name).
    pub fn new(path: impl Into<String>) -> Self {
        KeyBuilder {
            path: path.into(),
            args: String::new(),
            error: None,
            max_len: Self::DEFAULT_MAX_LEN,
        }
    }

    /// Add one argument.
    pub fn arg<T: Serialize + ?Sized>(mut self, value: &T) -> Self {
        if self.error.is_some() {
            return self;
        }
        match serde_json::to_string(value) {
            Ok(s) => {
                if !self.args.is_empty() {
                    self.args.push(',');
                }
                self.args.push_str(&s);
            }
            Err(e) => self.error = Some(e.to_string()),
        }
        self
    }

    /// Keys longer than this get their argument part hashed.
    pub fn max_len(mut self, max_len: usize) -> Self {
        self.max_len = max_len;
        self
    }

    /// The finished key, or a [`Serialization`](crate::ErrorKind::Serialization)
    /// error if an argument could not be encoded.
    pub fn build(self) -> Result<String> {
        if let Some(e) = self.error {
            return Err(Error::new(
                crate::ErrorKind::Serialization,
                "key-builder",
                format!(
                    "an argument of {} cannot be encoded into a key: {e}",
                    self.path
                ),
            ));
        }
        let full = format!("{}({})", self.path, self.args);
        if full.len() <= self.max_len && !full.is_empty() {
            Ok(full)
        } else {
            Ok(format!(
                "{}(#{})",
                self.path,
                sha256_hex(self.args.as_bytes())
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_rules() {
        assert!(validate_key("t", "").is_err());
        assert!(validate_key("t", "a b\r\n\0").is_ok());
        assert!(validate_key("t", &"x".repeat(MAX_KEY_LEN)).is_ok());
        let e = validate_key("t", &"x".repeat(MAX_KEY_LEN + 1)).unwrap_err();
        assert_eq!(e.kind(), crate::ErrorKind::InvalidInput);
    }

    #[test]
    fn namespace_rules() {
        assert!(validate_namespace("t", "app-1.users_v2*").is_ok());
        for bad in ["", "a b", "a:b", "a\nb", "é", &"n".repeat(129)] {
            let e = validate_namespace("t", bad).unwrap_err();
            assert_eq!(e.kind(), crate::ErrorKind::Config, "{bad:?}");
        }
    }

    #[test]
    fn store_key_hashes_long_or_unsafe_keys() {
        let safe = |c: char| c.is_ascii_graphic();
        assert_eq!(store_key("ns", "k", 250, safe), "ns:k");
        let a = store_key("ns", &format!("{}a", "x".repeat(300)), 250, safe);
        let b = store_key("ns", &format!("{}b", "x".repeat(300)), 250, safe);
        assert_ne!(a, b);
        assert!(a.len() <= 250);
        assert!(store_key("ns", "a b", 250, safe).starts_with("ns:#"));
        // a user key that looks like a digest is hashed too, so it cannot collide
        let digest_like = store_key("ns", "a b", 250, safe)[3..].to_string();
        assert_ne!(
            store_key("ns", &digest_like, 250, safe),
            store_key("ns", "a b", 250, safe)
        );
    }

    #[test]
    fn key_builder_is_stable_and_hashes_long_args() {
        let k1 = KeyBuilder::new("f").arg(&1).arg("x").build().unwrap();
        let k2 = KeyBuilder::new("f").arg(&1).arg("x").build().unwrap();
        assert_eq!(k1, k2);
        assert_eq!(k1, r#"f(1,"x")"#);
        let long_a = KeyBuilder::new("f").arg(&"a".repeat(500)).build().unwrap();
        let long_b = KeyBuilder::new("f")
            .arg(&format!("{}b", "a".repeat(499)))
            .build()
            .unwrap();
        assert_ne!(long_a, long_b);
        assert!(long_a.starts_with("f(#") && long_a.len() < 80);
    }
}
