//! The one key layout: (namespace, kind, key) to a store key.

use sha2::{Digest, Sha256};
use std::fmt;

/// Lowercase hex SHA-256 of `data` (64 characters).
pub fn sha256_hex(data: &[u8]) -> String {
    let mut out = String::with_capacity(64);
    push_hex(&mut out, &Sha256::digest(data));
    out
}

fn push_hex(out: &mut String, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for b in bytes {
        out.push(HEX[usize::from(b >> 4)] as char);
        out.push(HEX[usize::from(b & 15)] as char);
    }
}

/// What a store key holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyKind {
    /// A cached value.
    Value,
    /// A lock taken by [`acquire_lock`](crate::CacheBackend::acquire_lock).
    Lock,
}

impl KeyKind {
    fn marker(self) -> &'static str {
        match self {
            KeyKind::Value => "",
            KeyKind::Lock => LOCK_MARKER,
        }
    }
}

const LOCK_MARKER: &str = "#lock:";

/// How a backend's store limits keys: the one mapping from (namespace, kind, key) to a
/// store key (see the [module docs](crate::raw)).
///
/// ```
/// use cache_core::raw::{KeyKind, KeyLayout};
/// let any = KeyLayout::ANY;
/// assert_eq!(any.key("app", KeyKind::Value, "user:1").to_string(), "app:user:1");
/// assert_eq!(any.key("app", KeyKind::Lock, "user:1").to_string(), "app:#lock:user:1");
/// // Memcached: at most 250 bytes, no spaces or control characters.
/// let mc = KeyLayout::ANY.max_len(250).safe_chars(|c| c.is_ascii_graphic());
/// assert!(mc.key("app", KeyKind::Value, "a b").to_string().starts_with("app:#"));
/// ```
#[derive(Clone, Copy)]
pub struct KeyLayout {
    max_len: Option<usize>,
    safe: Option<fn(char) -> bool>,
}

impl fmt::Debug for KeyLayout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyLayout")
            .field("max_len", &self.max_len)
            .field("restricted_chars", &self.safe.is_some())
            .finish()
    }
}

impl KeyLayout {
    /// No limit on length or characters (binary-safe stores: memory, Redis, SQL text
    /// columns, ...): only keys starting with `#` are hashed.
    pub const ANY: KeyLayout = KeyLayout {
        max_len: None,
        safe: None,
    };

    /// Hash keys whose store key would exceed `max_len` bytes (at least 200, so a
    /// hashed key of the longest namespace fits).
    pub const fn max_len(mut self, max_len: usize) -> Self {
        self.max_len = Some(if max_len < 200 { 200 } else { max_len });
        self
    }

    /// Hash keys with a character that `safe` rejects.
    pub const fn safe_chars(mut self, safe: fn(char) -> bool) -> Self {
        self.safe = Some(safe);
        self
    }

    /// The store key of `key` of `kind` in `namespace`.
    #[inline]
    pub fn key<'a>(&self, namespace: &'a str, kind: KeyKind, key: &'a str) -> StoreKey<'a> {
        let marker = kind.marker();
        let fits = self
            .max_len
            .is_none_or(|max| namespace.len() + 1 + marker.len() + key.len() <= max);
        let literal =
            fits && !key.starts_with('#') && self.safe.is_none_or(|safe| key.chars().all(safe));
        let digest = (!literal).then(|| {
            let mut d = String::with_capacity(65);
            d.push('#');
            push_hex(&mut d, &Sha256::digest(key.as_bytes()));
            d
        });
        StoreKey {
            namespace,
            marker,
            key,
            digest,
        }
    }

    /// The namespace field, for stores that keep one beside the key (MongoDB,
    /// DynamoDB, Firestore), of the locks of `namespace`: `ns:#lock`, a name no valid
    /// namespace has (they never hold `:`). Locks kept apart so that `clear`, which
    /// removes a namespace by that field, leaves held locks alone.
    pub fn lock_namespace(namespace: &str) -> String {
        format!("{namespace}:#lock")
    }

    /// Whether the store key `store_key` of `namespace` is a lock's.
    pub fn is_lock_key(namespace: &str, store_key: &[u8]) -> bool {
        store_key
            .strip_prefix(namespace.as_bytes())
            .and_then(|rest| rest.strip_prefix(b":"))
            .is_some_and(|body| body.starts_with(LOCK_MARKER.as_bytes()))
    }

    /// The prefix every store key of `namespace` starts with (`ns:`), values and locks.
    pub fn namespace_prefix(namespace: &str) -> String {
        format!("{namespace}:")
    }
}

/// A store key made by [`KeyLayout::key`]: `namespace:` + [`body`](Self::body).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreKey<'a> {
    namespace: &'a str,
    marker: &'static str,
    key: &'a str,
    digest: Option<String>,
}

impl StoreKey<'_> {
    /// The pieces of the whole store key, in order: write them one after the other.
    #[inline]
    pub fn parts(&self) -> [&str; 4] {
        [self.namespace, ":", self.marker, self.inner()]
    }

    /// The key within its namespace (`user:1`, `#lock:user:1`, `#<digest>`), for
    /// stores that keep the namespace in a field of its own.
    pub fn body(&self) -> String {
        [self.marker, self.inner()].concat()
    }

    /// Whether the key was replaced by its digest.
    pub fn is_hashed(&self) -> bool {
        self.digest.is_some()
    }

    /// Length of the whole store key in bytes.
    pub fn len(&self) -> usize {
        self.parts().iter().map(|p| p.len()).sum()
    }

    /// Never true: a store key always holds its namespace.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Append the whole store key to `out`.
    pub fn write_into(&self, out: &mut String) {
        for p in self.parts() {
            out.push_str(p);
        }
    }

    fn inner(&self) -> &str {
        self.digest.as_deref().unwrap_or(self.key)
    }
}

impl fmt::Display for StoreKey<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for p in self.parts() {
            f.write_str(p)?;
        }
        Ok(())
    }
}
