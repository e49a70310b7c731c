//! Fenced writes: what a held lock's stored text says.

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
