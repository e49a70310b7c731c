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
