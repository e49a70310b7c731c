//! How typed values become bytes.

use crate::error::{Error, ErrorKind, Origin, Result};
use serde::{de::DeserializeOwned, Serialize};

mod msgpack;

/// Turns values into bytes and back. [`MessagePack`] is the default; [`Json`] is
/// readable by other languages; implement this trait to plug in another format.
pub trait Codec: Clone + Send + Sync + 'static {
    /// A short name used in error messages.
    fn name(&self) -> &'static str;
    /// Encode a value.
    fn encode<T: Serialize + ?Sized>(&self, value: &T) -> Result<Vec<u8>>;
    /// Decode a value; undecodable bytes are an [`ErrorKind::Serialization`] error.
    fn decode<T: DeserializeOwned>(&self, bytes: &[u8]) -> Result<T>;
    /// Encode a value at the end of `out` (the typed cache writes a small header
    /// first). The default appends [`encode`](Self::encode)'s bytes.
    fn encode_into<T: Serialize + ?Sized>(&self, value: &T, out: &mut Vec<u8>) -> Result<()> {
        out.extend_from_slice(&self.encode(value)?);
        Ok(())
    }
    /// Whether no encoding of this codec ever starts with the byte `0xC1`, the mark of
    /// the header get-or-compute puts in front of its values. When it is so (MessagePack
    /// never uses `0xC1`; no JSON text starts with it), [`Cache::set`](crate::Cache::set)
    /// stores the codec's bytes alone, readable by other programs; otherwise (the
    /// default, for codecs that cannot promise it) `set` writes the header too, so a
    /// value is never mistaken for one.
    fn never_starts_with_header_mark(&self) -> bool {
        false
    }
}

fn codec_error(
    codec: &'static str,
    what: &str,
    e: impl std::error::Error + Send + Sync + 'static,
) -> Error {
    Error::from_origin(
        ErrorKind::Serialization,
        Origin::Codec(codec),
        format!("{what} failed; the stored bytes do not match the requested type (was it written by another version or codec?)"),
    )
    .with_source(e)
}

/// MessagePack through `rmp-serde`, with structs written as maps (field names
/// included), so adding or reordering fields never silently misreads old values.
/// Decoding first tries a faster reader of the same format, which reads a value only
/// as `rmp-serde` would and leaves everything else (and every error) to it.
#[derive(Debug, Clone, Copy, Default)]
pub struct MessagePack;

impl Codec for MessagePack {
    fn name(&self) -> &'static str {
        "msgpack"
    }
    fn never_starts_with_header_mark(&self) -> bool {
        true // 0xC1 is the one byte MessagePack never uses
    }
    fn encode<T: Serialize + ?Sized>(&self, value: &T) -> Result<Vec<u8>> {
        rmp_serde::to_vec_named(value).map_err(|e| codec_error("msgpack", "encoding", e))
    }
    fn decode<T: DeserializeOwned>(&self, bytes: &[u8]) -> Result<T> {
        // The fast reader takes what it reads exactly as rmp-serde would; the rest,
        // errors included, is rmp-serde's to decide (see the msgpack module).
        if let Some(value) = msgpack::from_slice(bytes) {
            return Ok(value);
        }
        rmp_serde::from_slice(bytes).map_err(|e| codec_error("msgpack", "decoding", e))
    }
    fn encode_into<T: Serialize + ?Sized>(&self, value: &T, out: &mut Vec<u8>) -> Result<()> {
        rmp_serde::encode::write_named(out, value)
            .map_err(|e| codec_error("msgpack", "encoding", e))
    }
}

/// JSON through `serde_json`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Json;

impl Codec for Json {
    fn name(&self) -> &'static str {
        "json"
    }
    fn never_starts_with_header_mark(&self) -> bool {
        true // JSON text is UTF-8, and 0xC1 never appears in UTF-8
    }
    fn encode<T: Serialize + ?Sized>(&self, value: &T) -> Result<Vec<u8>> {
        serde_json::to_vec(value).map_err(|e| codec_error("json", "encoding", e))
    }
    fn decode<T: DeserializeOwned>(&self, bytes: &[u8]) -> Result<T> {
        serde_json::from_slice(bytes).map_err(|e| codec_error("json", "decoding", e))
    }
    fn encode_into<T: Serialize + ?Sized>(&self, value: &T, out: &mut Vec<u8>) -> Result<()> {
        serde_json::to_writer(out, value).map_err(|e| codec_error("json", "encoding", e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct User {
        id: u32,
        name: String,
        tags: Option<Vec<String>>,
    }

    fn roundtrip<C: Codec>(c: C) {
        let u = User {
            id: 7,
            name: "ada".into(),
            tags: None,
        };
        let bytes = c.encode(&u).unwrap();
        assert_eq!(c.decode::<User>(&bytes).unwrap(), u);
        let none: Option<u8> = None;
        assert_eq!(
            c.decode::<Option<u8>>(&c.encode(&none).unwrap()).unwrap(),
            None
        );
        let e = c.decode::<User>(b"\xc1\xff not a value").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Serialization);
    }

    #[test]
    fn msgpack_roundtrip() {
        roundtrip(MessagePack);
    }

    #[test]
    fn json_roundtrip() {
        roundtrip(Json);
    }
}
