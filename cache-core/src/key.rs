//! The [`KeyBuilder`]: stable keys from a function path and its arguments.

use crate::error::{Error, ErrorKind, Origin, Result};
use crate::raw::sha256_hex;
use serde::Serialize;

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
            return Err(Error::from_origin(
                ErrorKind::Serialization,
                Origin::Key,
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
