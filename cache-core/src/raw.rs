//! For backend authors: the contract's rules, the one key layout, digests and TTLs.
//!
//! Applications never need this module: [`Cache`](crate::Cache) applies the rules
//! through [`Checked`](crate::Checked). A backend reads it to lay out its store keys
//! the same way as every other backend.
//!
//! # Rules (enforced once, by [`Checked`](crate::Checked))
//! - a key is 1 to [`MAX_KEY_LEN`] bytes of UTF-8; any character is allowed,
//!   spaces and control characters included, and round-trips as a distinct key;
//! - a namespace is 1 to [`MAX_NAMESPACE_LEN`] printable ASCII characters without
//!   spaces and without `:`, checked by the backend's builder with
//!   [`validate_namespace`].
//!
//! # Key layout
//! Every backend maps (namespace, kind, key) to a store key with a [`KeyLayout`]:
//!
//! | what | store key | example |
//! |---|---|---|
//! | value | `ns:key` | `app:user:1` |
//! | lock | `ns:#lock:key` | `app:#lock:user:1` |
//! | value, hashed | `ns:#<sha256 hex>` | `app:#9f86d0…` |
//! | lock, hashed | `ns:#lock:#<sha256 hex>` | |
//!
//! A key is replaced by `#` and its SHA-256 when it starts with `#`, when the layout's
//! character test rejects one of its characters, or when the store key would be longer
//! than the layout's limit; keys are never truncated. A namespace has no `:`, so
//! everything of namespace `ns` (values and locks) starts with `ns:` and nothing of
//! another namespace does; a literal key never starts with `#`, a digest is
//! `#` + 64 hex digits and a lock is `#lock:`, so the three forms never collide.
//! Stores with a namespace column of their own store [`StoreKey::body`] beside it.

use crate::error::{Error, ErrorKind, Result};
use sha2::{Digest, Sha256};
use std::fmt;

pub use crate::expiry::Ttl;

/// What a lock's stored text says to the caller holding `token`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockState {
    /// Held by `token`, not overtaken: its holder may write.
    Held,
    /// Held by `token`, but the key was written, deleted or cleared since: its holder
    /// releases it and writes nothing.
    Overtaken,
    /// Not `token`'s lock (another caller's, or none).
    Other,
}

/// The text a fenced backend stores in place of a held lock's token when the key is
/// written, deleted or cleared: the token with `!` in front (a random token never
/// starts with one). See [`CacheBackend::set_locked`](crate::CacheBackend::set_locked).
pub fn overtaken(token: &str) -> String {
    if token.starts_with('!') {
        token.to_owned()
    } else {
        format!("!{token}")
    }
}

/// What `stored`, a lock's stored text, says to the holder of `token`.
pub fn lock_state(stored: &[u8], token: &crate::LockToken) -> LockState {
    let t = token.as_str().as_bytes();
    if stored == t {
        LockState::Held
    } else if stored.strip_prefix(b"!") == Some(t) {
        LockState::Overtaken
    } else {
        LockState::Other
    }
}

/// `call`, or a [`Timeout`](ErrorKind::Timeout) error of `backend` once `limit`
/// has passed (the call is dropped). Backends bound each call with it.
pub async fn within<T>(
    backend: &'static str,
    limit: std::time::Duration,
    call: impl std::future::Future<Output = Result<T>>,
) -> Result<T> {
    match tokio::time::timeout(limit, call).await {
        Ok(r) => r,
        Err(_) => Err(Error::timeout(backend, limit)),
    }
}

/// Milliseconds since the Unix epoch, now (0 if the clock is before 1970).
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The longest TTL sent to any store, locks included (100 years): the checking
/// layer clamps every relative expiry and lock TTL to it, in one place, so a
/// `Duration::MAX` never overflows a store's counter (Redis `PX`, SQL intervals,
/// memcached's relative seconds). Absolute expiries are clamped by the stores that
/// keep them to [`MAX_EPOCH_MS`].
pub const MAX_TTL: std::time::Duration = std::time::Duration::from_secs(100 * 365 * 86_400);

/// `expiry` with a relative duration clamped to [`MAX_TTL`].
pub fn clamp_expiry(expiry: crate::Expiry) -> crate::Expiry {
    match expiry {
        crate::Expiry::After(d) if d > MAX_TTL => crate::Expiry::After(MAX_TTL),
        other => other,
    }
}

/// The last millisecond of the year 9999 (UTC): where stores with calendar
/// timestamps (BSON, Firestore) end; expiries past it are clamped to it.
pub const MAX_EPOCH_MS: u64 = 253_402_300_799_000;

/// When a value written now with `expiry` expires, in epoch milliseconds rounded up
/// and clamped to [`MAX_EPOCH_MS`]: `Ok(None)` for never, `Err(())` if it already has
/// (store nothing; remove the old value). For stores that keep an absolute expiry and
/// check it on every read.
///
/// ```
/// use cache_core::{raw, Expiry};
/// use std::time::Duration;
/// assert_eq!(raw::expires_at_ms(Expiry::Never), Ok(None));
/// assert_eq!(raw::expires_at_ms(Expiry::After(Duration::ZERO)), Err(()));
/// assert_eq!(raw::expires_at_ms(Expiry::After(Duration::MAX)), Ok(Some(raw::MAX_EPOCH_MS)));
/// ```
#[allow(clippy::result_unit_err)]
pub fn expires_at_ms(expiry: crate::Expiry) -> std::result::Result<Option<u64>, ()> {
    expires_at_ms_from(now_ms(), expiry)
}

/// [`expires_at_ms`] for a value written at `now` (epoch milliseconds, on a clock of
/// the caller's, e.g. one shifted by [`shifted_now_ms`] in tests of clock skew).
#[allow(clippy::result_unit_err)]
pub fn expires_at_ms_from(now: u64, expiry: crate::Expiry) -> std::result::Result<Option<u64>, ()> {
    match expiry.ttl() {
        Ttl::Forever => Ok(None),
        Ttl::Expired => Err(()),
        Ttl::For(d) => {
            let ms = u64::try_from(d.as_nanos().div_ceil(1_000_000)).unwrap_or(u64::MAX);
            Ok(Some(now.saturating_add(ms).min(MAX_EPOCH_MS)))
        }
    }
}

/// [`now_ms`] shifted by `offset_ms` (saturating): backends whose lock deadlines are
/// on the client's clock take an offset from tests, to play a client whose clock runs
/// ahead or behind.
pub fn shifted_now_ms(offset_ms: i64) -> u64 {
    now_ms().saturating_add_signed(offset_ms)
}

/// The items of a batch write to send: the index of the last item given for each
/// distinct key, in increasing order (the last value given for a key wins; stores
/// refuse, or apply in no set order, one key twice in one batch).
///
/// ```
/// use cache_core::{raw, Bytes};
/// let items = [("a", Bytes::from("1")), ("b", Bytes::from("2")), ("a", Bytes::from("3"))];
/// assert_eq!(raw::last_of_each(&items), vec![1, 2]);
/// ```
pub fn last_of_each(items: &[(&str, bytes::Bytes)]) -> Vec<usize> {
    let mut last: std::collections::HashMap<&str, usize> =
        std::collections::HashMap::with_capacity(items.len());
    for (i, (k, _)) in items.iter().enumerate() {
        last.insert(k, i);
    }
    let mut order: Vec<usize> = last.into_values().collect();
    order.sort_unstable();
    order
}

/// The distinct items of `list`, each at its first place, in order.
///
/// ```
/// assert_eq!(cache_core::raw::distinct(["a", "b", "a"]), vec!["a", "b"]);
/// ```
pub fn distinct<T: Eq + std::hash::Hash + Clone>(list: impl IntoIterator<Item = T>) -> Vec<T> {
    let mut seen = std::collections::HashSet::new();
    list.into_iter()
        .filter(|x| seen.insert(x.clone()))
        .collect()
}

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
/// store key (see the [module docs](self)).
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

/// `scheme://user:password@host/...?password=...` with every password replaced by
/// `***`, for Debug output and logs of backend configs. A user-info without `:` is
/// masked whole (some schemes read it as the password).
pub fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
        return "<unparsable url>".into();
    };
    let rest = &url[scheme_end..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let mut out = url[..scheme_end].to_owned();
    match rest[..authority_end].rfind('@') {
        Some(at) => {
            match rest[..at].split_once(':') {
                Some((user, _)) => {
                    out.push_str(user);
                    out.push_str(":***");
                }
                None => out.push_str("***"),
            }
            out.push_str(&rest[at..authority_end]);
        }
        None => out.push_str(&rest[..authority_end]),
    }
    let tail = &rest[authority_end..];
    match tail.split_once('?') {
        Some((path, query)) => {
            out.push_str(path);
            out.push('?');
            let params: Vec<String> = query
                .split('&')
                .map(|p| match p.split_once('=') {
                    Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                    _ => p.to_owned(),
                })
                .collect();
            out.push_str(&params.join("&"));
        }
        None => out.push_str(tail),
    }
    out
}

/// Serde for a `Duration` as whole milliseconds: `#[serde(with = "cache_core::raw::millis")]`.
pub mod millis {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    /// Write the duration as milliseconds.
    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    /// Read milliseconds.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_millis(u64::deserialize(d)?))
    }
}

/// Serde for an `Option<Duration>` as milliseconds or null:
/// `#[serde(with = "cache_core::raw::opt_millis")]`.
pub mod opt_millis {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    /// Write the duration as milliseconds, or null.
    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_some(&u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
            None => s.serialize_none(),
        }
    }

    /// Read milliseconds or null.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        Ok(Option::<u64>::deserialize(d)?.map(Duration::from_millis))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_redacted() {
        assert_eq!(
            redact_url("redis://127.0.0.1:6379"),
            "redis://127.0.0.1:6379"
        );
        assert_eq!(redact_url("redis://tok@h/0?x=@"), "redis://***@h/0?x=@");
        assert_eq!(
            redact_url("rediss://app:s3cret@cache:6380/2"),
            "rediss://app:***@cache:6380/2"
        );
        assert_eq!(
            redact_url("postgres://a@h/db?sslmode=require&password=hunter2"),
            "postgres://***@h/db?sslmode=require&password=***"
        );
        assert_eq!(redact_url("no scheme"), "<unparsable url>");
    }

    #[test]
    fn key_rules() {
        assert!(validate_key("t", "").is_err());
        assert!(validate_key("t", "a b\r\n\0").is_ok());
        assert!(validate_key("t", &"x".repeat(MAX_KEY_LEN)).is_ok());
        let e = validate_key("t", &"x".repeat(MAX_KEY_LEN + 1)).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
    }

    #[test]
    fn namespace_rules() {
        assert!(validate_namespace("t", "app-1.users_v2*").is_ok());
        for bad in ["", "a b", "a:b", "a\nb", "é", &"n".repeat(129)] {
            let e = validate_namespace("t", bad).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Config, "{bad:?}");
        }
    }

    #[test]
    fn digest_matches_known_vector() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn layout_is_readable_and_unambiguous() {
        let l = KeyLayout::ANY;
        let s = |kind, k| l.key("ns", kind, k).to_string();
        assert_eq!(s(KeyKind::Value, "k"), "ns:k");
        assert_eq!(s(KeyKind::Lock, "k"), "ns:#lock:k");
        // A value key that looks like a lock or a digest is hashed, so it cannot
        // collide with either.
        assert_ne!(s(KeyKind::Value, "#lock:k"), s(KeyKind::Lock, "k"));
        let hashed = s(KeyKind::Value, "#x");
        assert!(hashed.starts_with("ns:#") && hashed.len() == 3 + 65);
        assert_ne!(s(KeyKind::Value, &hashed[3..]), hashed);
        assert_eq!(l.key("ns", KeyKind::Lock, "k").body(), "#lock:k");
        // No limit: the longest key stays readable, for locks too.
        let longest = "k".repeat(MAX_KEY_LEN);
        assert!(!l.key("ns", KeyKind::Lock, &longest).is_hashed());
    }

    #[test]
    fn limited_layout_hashes_long_or_unsafe_keys_without_collisions() {
        let l = KeyLayout::ANY
            .max_len(250)
            .safe_chars(|c| c.is_ascii_graphic());
        let ns = "n".repeat(MAX_NAMESPACE_LEN);
        let (ka, kb) = (
            format!("{}a", "x".repeat(300)),
            format!("{}b", "x".repeat(300)),
        );
        let a = l.key(&ns, KeyKind::Lock, &ka);
        let b = l.key(&ns, KeyKind::Lock, &kb);
        assert_ne!(a, b);
        assert!(a.len() <= 250, "{}", a.len());
        assert!(l.key("ns", KeyKind::Value, "a b").is_hashed());
        assert!(!l.key("ns", KeyKind::Value, "a-b").is_hashed());
        let k = "y".repeat(250 - 3);
        assert!(
            !l.key("ns", KeyKind::Value, &k).is_hashed(),
            "exactly at the limit"
        );
        assert!(
            l.key("ns", KeyKind::Lock, &k).is_hashed(),
            "the lock marker pushes it over"
        );
    }
}
