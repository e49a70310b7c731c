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

use serde::de::{self, DeserializeSeed, Visitor};
use serde::Deserialize;
use std::fmt;

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

struct Reader<'de> {
    input: &'de [u8],
    depth: u16,
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

/// The elements of an array, or the entries of a map (`left` counts entries).
struct Items<'a, 'de> {
    de: &'a mut Reader<'de>,
    left: usize,
}

impl<'de> de::SeqAccess<'de> for Items<'_, 'de> {
    type Error = GiveUp;

    #[inline]
    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Res<Option<T::Value>> {
        if self.left == 0 {
            return Ok(None);
        }
        self.left -= 1;
        seed.deserialize(&mut *self.de).map(Some)
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.left)
    }
}

impl<'de> de::MapAccess<'de> for Items<'_, 'de> {
    type Error = GiveUp;

    #[inline]
    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Res<Option<K::Value>> {
        if self.left == 0 {
            return Ok(None);
        }
        self.left -= 1;
        seed.deserialize(&mut *self.de).map(Some)
    }

    #[inline]
    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Res<V::Value> {
        seed.deserialize(&mut *self.de)
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.left)
    }
}

macro_rules! scalars {
    ($($method:ident)*) => {$(
        #[inline]
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Res<V::Value> {
            self.scalar(visitor)
        }
    )*};
}

macro_rules! anything {
    ($($method:ident)*) => {$(
        #[inline]
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Res<V::Value> {
            self.any(visitor, true)
        }
    )*};
}

impl<'de> de::Deserializer<'de> for &mut Reader<'de> {
    type Error = GiveUp;

    scalars!(deserialize_bool deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64
        deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64
        deserialize_f32 deserialize_f64);
    anything!(deserialize_any deserialize_char deserialize_str deserialize_string
        deserialize_bytes deserialize_byte_buf deserialize_unit deserialize_map
        deserialize_identifier deserialize_ignored_any);

    fn is_human_readable(&self) -> bool {
        false
    }

    fn deserialize_i128<V: Visitor<'de>>(self, _: V) -> Res<V::Value> {
        Err(GiveUp)
    }

    fn deserialize_u128<V: Visitor<'de>>(self, _: V) -> Res<V::Value> {
        Err(GiveUp)
    }

    #[inline]
    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Res<V::Value> {
        if self.peek()? == 0xc0 {
            self.input = &self.input[1..];
            visitor.visit_none()
        } else {
            visitor.visit_some(self)
        }
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        visitor: V,
    ) -> Res<V::Value> {
        // Written as an empty array; nil is read too.
        match self.peek()? {
            0xc0 | 0x90 => {
                self.input = &self.input[1..];
                visitor.visit_unit()
            }
            _ => self.any(visitor, true),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Res<V::Value> {
        if name == EXT_STRUCT {
            return Err(GiveUp);
        }
        visitor.visit_newtype_struct(self)
    }

    #[inline]
    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Res<V::Value> {
        self.any(visitor, false)
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, _: usize, visitor: V) -> Res<V::Value> {
        self.any(visitor, false)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: usize,
        visitor: V,
    ) -> Res<V::Value> {
        self.any(visitor, false)
    }

    #[inline]
    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: &'static [&'static str],
        visitor: V,
    ) -> Res<V::Value> {
        self.any(visitor, false)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: &'static [&'static str],
        visitor: V,
    ) -> Res<V::Value> {
        let marker = self.peek()?;
        let entries = match marker {
            0x80..=0x8f => {
                self.input = &self.input[1..];
                (marker & 0x0f) as usize
            }
            0xde | 0xdf => {
                self.input = &self.input[1..];
                self.len(2 << (marker - 0xde))?
            }
            // A unit variant, written as its name.
            _ => return visitor.visit_enum(UnitVariant(self)),
        };
        if entries != 1 {
            return Err(GiveUp);
        }
        // `{variant: data}`.
        visitor.visit_enum(Variant(self))
    }
}

/// A variant written as `{name: data}`.
struct Variant<'a, 'de>(&'a mut Reader<'de>);

impl<'de> de::EnumAccess<'de> for Variant<'_, 'de> {
    type Error = GiveUp;
    type Variant = Self;

    fn variant_seed<V: DeserializeSeed<'de>>(self, seed: V) -> Res<(V::Value, Self)> {
        Ok((seed.deserialize(&mut *self.0)?, self))
    }
}

impl<'de> de::VariantAccess<'de> for Variant<'_, 'de> {
    type Error = GiveUp;

    fn unit_variant(self) -> Res<()> {
        (self.0.byte()? == 0xc0).then_some(()).ok_or(GiveUp)
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Res<T::Value> {
        seed.deserialize(self.0)
    }

    fn tuple_variant<V: Visitor<'de>>(self, _: usize, visitor: V) -> Res<V::Value> {
        self.0.any(visitor, false)
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _: &'static [&'static str],
        visitor: V,
    ) -> Res<V::Value> {
        self.0.any(visitor, false)
    }
}

/// A variant written as its name alone: only a unit variant reads from it.
struct UnitVariant<'a, 'de>(&'a mut Reader<'de>);

impl<'de> de::EnumAccess<'de> for UnitVariant<'_, 'de> {
    type Error = GiveUp;
    type Variant = Self;

    fn variant_seed<V: DeserializeSeed<'de>>(self, seed: V) -> Res<(V::Value, Self)> {
        Ok((seed.deserialize(&mut *self.0)?, self))
    }
}

impl<'de> de::VariantAccess<'de> for UnitVariant<'_, 'de> {
    type Error = GiveUp;

    fn unit_variant(self) -> Res<()> {
        Ok(())
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, _: T) -> Res<T::Value> {
        Err(GiveUp)
    }

    fn tuple_variant<V: Visitor<'de>>(self, _: usize, _: V) -> Res<V::Value> {
        Err(GiveUp)
    }

    fn struct_variant<V: Visitor<'de>>(self, _: &'static [&'static str], _: V) -> Res<V::Value> {
        Err(GiveUp)
    }
}

#[cfg(test)]
mod tests {
    //! Whatever the fast reader reads, `rmp-serde` reads the same: on every kind of
    //! value, on values read as other types, and on corrupted bytes.
    use super::*;
    use serde::{de::DeserializeOwned, Serialize};
    use std::collections::BTreeMap;

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    enum Shape {
        Unit,
        Newtype(u32),
        Tuple(i8, String),
        Struct { w: f32, h: f64 },
    }

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(tag = "kind")]
    enum Tagged {
        Circle { r: f64 },
        Square { side: u16, label: Option<String> },
    }

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(untagged)]
    enum Loose {
        Num(i64),
        Text(String),
        List(Vec<u8>),
    }

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct UnitS;

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct New(u64);

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct Tup(u8, i16, bool);

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct Extra {
        note: String,
        #[serde(flatten)]
        rest: BTreeMap<String, u32>,
    }

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct Everything {
        b: bool,
        small: (u8, u16, u32, u64),
        signed: (i8, i16, i32, i64),
        floats: (f32, f64),
        c: char,
        s: String,
        bytes: serde_bytes::ByteBuf,
        raw: Vec<u8>,
        opt: Option<u32>,
        none: Option<String>,
        nested_opt: Option<Option<u8>>,
        unit: (),
        unit_s: UnitS,
        new: New,
        tup: Tup,
        shapes: Vec<Shape>,
        tagged: Vec<Tagged>,
        loose: Vec<Loose>,
        map: BTreeMap<String, i64>,
        int_map: BTreeMap<u32, Vec<String>>,
        extra: Extra,
        #[serde(default)]
        added_later: Option<u8>,
        inner: Option<Box<Everything>>,
    }

    fn everything(depth: u8) -> Everything {
        Everything {
            b: depth.is_multiple_of(2),
            small: (255, 65_535, u32::MAX, u64::MAX),
            signed: (-128, i16::MIN, -70_000, i64::MIN),
            floats: (1.5, -0.1),
            c: 'é',
            s: "x".repeat(40 * depth as usize),
            bytes: serde_bytes::ByteBuf::from(vec![0, 1, 0xc1, 0xff]),
            raw: vec![1, 2, 200],
            opt: Some(3),
            none: None,
            nested_opt: Some(Some(9)),
            unit: (),
            unit_s: UnitS,
            new: New(42),
            tup: Tup(7, -300, true),
            shapes: vec![
                Shape::Unit,
                Shape::Newtype(1 << 20),
                Shape::Tuple(-1, "t".into()),
                Shape::Struct { w: 2.0, h: 1e300 },
            ],
            tagged: vec![
                Tagged::Circle { r: 0.5 },
                Tagged::Square {
                    side: 300,
                    label: Some("sq".into()),
                },
            ],
            loose: vec![
                Loose::Num(-5),
                Loose::Text("hi".into()),
                Loose::List(vec![1]),
            ],
            map: (0..20).map(|i| (format!("k{i}"), i * -1_000)).collect(),
            int_map: BTreeMap::from([(1, vec!["a".into()]), (70_000, vec![])]),
            extra: Extra {
                note: "n".into(),
                rest: BTreeMap::from([("x".into(), 1), ("y".into(), 100_000)]),
            },
            added_later: None,
            inner: (depth > 0).then(|| Box::new(everything(depth - 1))),
        }
    }

    /// The same bytes, whichever reader decoded (floats compared bit for bit).
    fn same_value<T: Serialize>(a: &T, b: &T) -> bool {
        rmp_serde::to_vec_named(a).unwrap() == rmp_serde::to_vec_named(b).unwrap()
    }

    /// Read `bytes` as `T` both ways: a fast answer must be rmp-serde's. True if the
    /// fast reader answered.
    fn agrees<T: DeserializeOwned + Serialize>(bytes: &[u8]) -> bool {
        let Some(fast) = from_slice::<T>(bytes) else {
            return false;
        };
        match rmp_serde::from_slice::<T>(bytes) {
            Ok(slow) => assert!(
                same_value(&fast, &slow),
                "different values from {bytes:02x?}"
            ),
            Err(e) => panic!("the fast reader read {bytes:02x?}, rmp-serde did not: {e}"),
        }
        true
    }

    /// `value`, written named and positional, is read by the fast reader as itself.
    fn reads_back<T: DeserializeOwned + Serialize + PartialEq + fmt::Debug>(value: T) {
        for bytes in [
            rmp_serde::to_vec_named(&value).unwrap(),
            rmp_serde::to_vec(&value).unwrap(),
        ] {
            assert!(agrees::<T>(&bytes), "not read fast: {value:?}");
            assert_eq!(from_slice::<T>(&bytes).unwrap(), value);
        }
    }

    #[test]
    fn ascii_check_sees_every_byte() {
        for n in 0..=40usize {
            let text = vec![b'a'; n];
            assert!(ascii(&text), "{n} ASCII bytes");
            for at in 0..n {
                for high in [0x80u8, 0xc3, 0xff] {
                    let mut t = text.clone();
                    t[at] = high;
                    assert!(!ascii(&t), "byte {at} of {n} is {high:#x}");
                }
            }
        }
    }

    #[test]
    fn reads_every_kind_of_value_as_rmp_serde_does() {
        reads_back(everything(3));
        for n in [
            0u64,
            127,
            128,
            255,
            256,
            65_535,
            65_536,
            u32::MAX as u64,
            u32::MAX as u64 + 1,
            u64::MAX,
        ] {
            reads_back(n);
        }
        for n in [
            0i64,
            -1,
            -32,
            -33,
            -128,
            -129,
            -32_768,
            -32_769,
            i32::MIN as i64,
            i32::MIN as i64 - 1,
            i64::MIN,
            i64::MAX,
        ] {
            reads_back(n);
        }
        // Every length form of strings, arrays, maps and binary data.
        for n in [0usize, 31, 32, 255, 256, 65_535, 65_536] {
            reads_back("s".repeat(n));
            reads_back(vec![7u8; n]);
            reads_back(serde_bytes::ByteBuf::from(vec![7u8; n]));
            reads_back(
                (0..n as u32)
                    .map(|i| (i, i.is_multiple_of(3)))
                    .collect::<BTreeMap<_, _>>(),
            );
        }
        reads_back(Shape::Unit);
        reads_back(Some(Shape::Newtype(3)));
        reads_back(UnitS);
        reads_back(((), None::<u8>, Some(1u8)));
        reads_back(serde_json::json!({"a": [1, -2, 3.5, null, true, "x"], "b": {}}));
    }

    #[test]
    fn leaves_to_rmp_serde_what_it_does_not_read() {
        let cases: Vec<Vec<u8>> = vec![
            rmp_serde::to_vec(&(1u128 << 100)).unwrap(),
            // An extension type (fixext 1), and the byte MessagePack never uses.
            vec![0xd4, 0x05, 0x01],
            vec![0xc1],
            // A string that is not UTF-8, and an empty input.
            vec![0xa2, 0xff, 0xfe],
            vec![],
        ];
        for bytes in &cases {
            assert!(from_slice::<u128>(bytes).is_none());
            assert!(from_slice::<serde_json::Value>(bytes).is_none());
        }
        // rmp-serde reads binary data as a sequence: left to it, and the codec still
        // answers.
        let bin = rmp_serde::to_vec(&serde_bytes::ByteBuf::from(vec![1, 2])).unwrap();
        assert!(from_slice::<Vec<u8>>(&bin).is_none());
        let codec = crate::MessagePack;
        use crate::Codec;
        assert_eq!(codec.decode::<Vec<u8>>(&bin).unwrap(), vec![1, 2]);
        assert_eq!(codec.decode::<u128>(&cases[0]).unwrap(), 1u128 << 100);
        // Deeper than the fast reader goes, still read.
        let mut deep = serde_json::json!(1);
        for _ in 0..200 {
            deep = serde_json::json!([deep]);
        }
        let bytes = rmp_serde::to_vec(&deep).unwrap();
        assert!(from_slice::<serde_json::Value>(&bytes).is_none());
        assert_eq!(codec.decode::<serde_json::Value>(&bytes).unwrap(), deep);
    }

    #[test]
    fn values_read_as_other_types_agree() {
        let samples: Vec<Vec<u8>> = vec![
            rmp_serde::to_vec_named(&everything(1)).unwrap(),
            rmp_serde::to_vec(&everything(1)).unwrap(),
            rmp_serde::to_vec(&300u16).unwrap(),
            rmp_serde::to_vec(&-3i8).unwrap(),
            rmp_serde::to_vec(&1.5f64).unwrap(),
            rmp_serde::to_vec("Unit").unwrap(),
            rmp_serde::to_vec(&Shape::Tuple(1, "a".into())).unwrap(),
            rmp_serde::to_vec(&(1u8, "a", [2u8])).unwrap(),
            rmp_serde::to_vec(&UnitS).unwrap(),
            rmp_serde::to_vec(&()).unwrap(),
        ];
        for bytes in &samples {
            agrees::<u8>(bytes);
            agrees::<i64>(bytes);
            agrees::<f32>(bytes);
            agrees::<bool>(bytes);
            agrees::<char>(bytes);
            agrees::<String>(bytes);
            agrees::<Option<u16>>(bytes);
            agrees::<UnitS>(bytes);
            agrees::<New>(bytes);
            agrees::<Tup>(bytes);
            agrees::<Shape>(bytes);
            agrees::<Vec<Shape>>(bytes);
            agrees::<Everything>(bytes);
            agrees::<serde_json::Value>(bytes);
        }
    }

    /// Random damage to real values: whatever the fast reader still reads, rmp-serde
    /// reads the same (and the fast reader does read some of it, or this proves little).
    #[test]
    fn corrupted_bytes_agree() {
        let originals = [
            rmp_serde::to_vec_named(&everything(2)).unwrap(),
            rmp_serde::to_vec(&everything(1)).unwrap(),
            rmp_serde::to_vec_named(&vec![Shape::Unit, Shape::Struct { w: 1.0, h: 2.0 }]).unwrap(),
        ];
        let mut rng = fastrand::Rng::with_seed(0x5eed);
        let (mut tried, mut read) = (0u32, 0u32);
        for _ in 0..6_000 {
            let mut bytes = originals[rng.usize(..originals.len())].clone();
            for _ in 0..rng.usize(1..4) {
                let i = rng.usize(..bytes.len());
                match rng.u8(..4) {
                    0 => bytes[i] ^= 1 << rng.u8(..8),
                    1 => bytes[i] = rng.u8(..),
                    2 => bytes.truncate(i.max(1)),
                    _ => bytes.insert(i, rng.u8(..)),
                }
            }
            tried += 1;
            let hits = [
                agrees::<Everything>(&bytes),
                agrees::<Vec<Shape>>(&bytes),
                agrees::<serde_json::Value>(&bytes),
            ];
            read += hits.iter().filter(|h| **h).count() as u32;
        }
        assert!(read > tried / 10, "the fast reader read {read} of {tried}");
    }
}
