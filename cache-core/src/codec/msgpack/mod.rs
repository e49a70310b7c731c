//! A fast reader for the MessagePack that `rmp-serde` writes, used by the
//! [`MessagePack`](crate::MessagePack) codec before `rmp_serde::from_slice`.
//!
//! Why: on a hit from the in-memory store, decoding took longer than the store's
//! whole read. `rmp-serde`'s reader is general (any `io::Read`, a config type, an
//! error enum of several words carried through every call); this one reads a byte
//! slice only and its error is empty, so each step's `Result` is as small as its value.
//!
//! How it stays right: it reads only what it can read exactly as `rmp-serde` 1.3
//! does (the same visitor call for every marker, the same handling of options,
//! enums, unit structs and newtypes) and gives up, with no value, on everything else:
//! extension types, `i128`/`u128`, binary data where a sequence is wanted, invalid
//! UTF-8, nesting deeper than [`MAX_DEPTH`], and any error at all. The codec then
//! decodes the same bytes with `rmp-serde`, whose value or error is the answer. So a
//! value read here is one `rmp-serde` would have read; the tests check that on every
//! kind of value and on corrupted bytes.

use serde::de::{self, Visitor};
use serde::Deserialize;
use std::fmt;

mod access;
use access::Items;

/// Deeper values are left to `rmp-serde` (which allows 1 024 levels).
const MAX_DEPTH: u16 = 128;

/// The name `rmp-serde` gives the newtype struct that carries an extension type.
const EXT_STRUCT: &str = "_ExtStruct";

/// `bytes` decoded as `T`, or `None` when `rmp-serde` must decide.
#[inline]
pub(crate) fn from_slice<'de, T: Deserialize<'de>>(bytes: &'de [u8]) -> Option<T> {
    let mut de = Reader {
        input: bytes,
        depth: MAX_DEPTH,
    };
    T::deserialize(&mut de).ok()
}

/// "Not read here": carries nothing, so results stay small.
#[derive(Debug)]
pub(crate) struct GiveUp;

impl fmt::Display for GiveUp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("not read by the fast MessagePack reader")
    }
}

impl std::error::Error for GiveUp {}

impl de::Error for GiveUp {
    #[cold]
    fn custom<T: fmt::Display>(_: T) -> Self {
        GiveUp
    }
}

type Res<T> = std::result::Result<T, GiveUp>;

pub(crate) struct Reader<'de> {
    pub(crate) input: &'de [u8],
    pub(crate) depth: u16,
}

impl<'de> Reader<'de> {
    #[inline]
    fn peek(&self) -> Res<u8> {
        self.input.first().copied().ok_or(GiveUp)
    }

    #[inline]
    fn byte(&mut self) -> Res<u8> {
        let (&b, rest) = self.input.split_first().ok_or(GiveUp)?;
        self.input = rest;
        Ok(b)
    }

    #[inline]
    fn take(&mut self, n: usize) -> Res<&'de [u8]> {
        if self.input.len() < n {
            return Err(GiveUp);
        }
        let (taken, rest) = self.input.split_at(n);
        self.input = rest;
        Ok(taken)
    }

    #[inline]
    fn array<const N: usize>(&mut self) -> Res<[u8; N]> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    /// A length of 1, 2 or 4 big-endian bytes.
    #[inline]
    fn len(&mut self, width: u8) -> Res<usize> {
        Ok(match width {
            1 => self.byte()? as usize,
            2 => u16::from_be_bytes(self.array()?) as usize,
            _ => u32::from_be_bytes(self.array()?) as usize,
        })
    }

    /// Any value, as `rmp-serde`'s `deserialize_any`; binary data is offered as bytes
    /// only if `bytes` (otherwise `rmp-serde` offers it as a sequence: not done here).
    #[inline]
    fn any<V: Visitor<'de>>(&mut self, visitor: V, bytes: bool) -> Res<V::Value> {
        let marker = self.byte()?;
        match marker {
            0x80..=0x8f => self.map((marker & 0x0f) as usize, visitor),
            0x90..=0x9f => self.seq((marker & 0x0f) as usize, visitor),
            0xa0..=0xbf => self.str((marker & 0x1f) as usize, visitor),
            // str8/16/32, bin8/16/32: lengths of 1, 2 and 4 bytes.
            0xd9..=0xdb => {
                let n = self.len(1 << (marker - 0xd9))?;
                self.str(n, visitor)
            }
            0xc4..=0xc6 if bytes => {
                let n = self.len(1 << (marker - 0xc4))?;
                visitor.visit_borrowed_bytes(self.take(n)?)
            }
            // array16/32, map16/32: lengths of 2 and 4 bytes.
            0xdc | 0xdd => {
                let n = self.len(2 << (marker - 0xdc))?;
                self.seq(n, visitor)
            }
            0xde | 0xdf => {
                let n = self.len(2 << (marker - 0xde))?;
                self.map(n, visitor)
            }
            _ => self.scalar_after(marker, visitor),
        }
    }

    /// A nil, boolean, integer or float (what `rmp-serde` accepts for `u8`, `f64` …).
    #[inline]
    fn scalar<V: Visitor<'de>>(&mut self, visitor: V) -> Res<V::Value> {
        let marker = self.byte()?;
        self.scalar_after(marker, visitor)
    }

    #[inline]
    fn scalar_after<V: Visitor<'de>>(&mut self, marker: u8, visitor: V) -> Res<V::Value> {
        match marker {
            0x00..=0x7f => visitor.visit_u8(marker),
            0xe0..=0xff => visitor.visit_i8(marker as i8),
            0xc0 => visitor.visit_unit(),
            0xc2 => visitor.visit_bool(false),
            0xc3 => visitor.visit_bool(true),
            0xca => visitor.visit_f32(f32::from_be_bytes(self.array()?)),
            0xcb => visitor.visit_f64(f64::from_be_bytes(self.array()?)),
            0xcc => visitor.visit_u8(self.byte()?),
            0xcd => visitor.visit_u16(u16::from_be_bytes(self.array()?)),
            0xce => visitor.visit_u32(u32::from_be_bytes(self.array()?)),
            0xcf => visitor.visit_u64(u64::from_be_bytes(self.array()?)),
            0xd0 => visitor.visit_i8(self.byte()? as i8),
            0xd1 => visitor.visit_i16(i16::from_be_bytes(self.array()?)),
            0xd2 => visitor.visit_i32(i32::from_be_bytes(self.array()?)),
            0xd3 => visitor.visit_i64(i64::from_be_bytes(self.array()?)),
            // 0xc1 (never used), extension types, and anything not a scalar.
            _ => Err(GiveUp),
        }
    }

    #[inline]
    fn str<V: Visitor<'de>>(&mut self, n: usize, visitor: V) -> Res<V::Value> {
        visitor.visit_borrowed_str(utf8(self.take(n)?)?)
    }

    #[inline]
    fn seq<V: Visitor<'de>>(&mut self, n: usize, visitor: V) -> Res<V::Value> {
        self.nested(|de| {
            let mut access = Items { de, left: n };
            let value = visitor.visit_seq(&mut access)?;
            (access.left == 0).then_some(value).ok_or(GiveUp)
        })
    }

    #[inline]
    fn map<V: Visitor<'de>>(&mut self, n: usize, visitor: V) -> Res<V::Value> {
        self.nested(|de| {
            let mut access = Items { de, left: n };
            let value = visitor.visit_map(&mut access)?;
            (access.left == 0).then_some(value).ok_or(GiveUp)
        })
    }

    #[inline]
    fn nested<T>(&mut self, f: impl FnOnce(&mut Self) -> Res<T>) -> Res<T> {
        self.depth = self.depth.checked_sub(1).ok_or(GiveUp)?;
        let out = f(self);
        self.depth += 1;
        out
    }
}

/// `bytes` as text. Field names and most strings are ASCII, which an inlined check
/// confirms in a few instructions ([`ascii`]); `from_utf8` (an out-of-line call, ~5 ns
/// a short string here) checks the rest. Invalid UTF-8, which rmp-serde offers as
/// bytes, is left to it.
#[inline]
fn utf8(bytes: &[u8]) -> Res<&str> {
    if ascii(bytes) {
        // SAFETY: every byte is ASCII, and ASCII text is valid UTF-8.
        return Ok(unsafe { std::str::from_utf8_unchecked(bytes) });
    }
    std::str::from_utf8(bytes).map_err(|_| GiveUp)
}

/// Whether every byte is below 0x80. Up to 16 bytes, two loads that overlap cover
/// them all (`is_ascii` walks short slices a byte at a time); longer ones go to it.
#[inline]
fn ascii(b: &[u8]) -> bool {
    let n = b.len();
    let u32_at = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
    let u64_at = |i: usize| {
        let mut w = [0u8; 8];
        w.copy_from_slice(&b[i..i + 8]);
        u64::from_le_bytes(w)
    };
    match n {
        0 => true,
        // The first, middle and last byte are all of them.
        1..=3 => (b[0] | b[n / 2] | b[n - 1]) < 0x80,
        4..=7 => (u32_at(0) | u32_at(n - 4)) & 0x8080_8080 == 0,
        8..=16 => (u64_at(0) | u64_at(n - 8)) & 0x8080_8080_8080_8080 == 0,
        _ => b.is_ascii(),
    }
}

#[cfg(test)]
mod tests;
