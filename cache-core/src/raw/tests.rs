use crate::error::ErrorKind;

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
    // A password written unencoded with `#`, `?` or `/` in it never shows.
    for (url, shown) in [
        ("redis://:pa#ss@host:6379", "redis://***@host:6379"),
        ("redis://:pa?ss@host", "redis://***@host"),
        ("postgres://app:p?ss@db/x", "postgres://***@db/x"),
        ("redis+cluster://u:p/ss@h1,h2", "redis+cluster://***@h1,h2"),
    ] {
        assert_eq!(redact_url(url), shown);
    }
    // Parameters that may carry a secret.
    assert_eq!(
        redact_url("postgres://h/db?sslpassword=a&Client_Secret=b&x=1&AWS_SESSION_TOKEN=c"),
        "postgres://h/db?sslpassword=***&Client_Secret=***&x=1&AWS_SESSION_TOKEN=***"
    );
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
