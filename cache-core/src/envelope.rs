//! The small versioned header in front of every value the typed [`Cache`](crate::Cache)
//! writes: when the value stops being fresh, how long it may be served stale, how long
//! it is kept for fail-safe, when it was written and how long its compute took.
//!
//! Layout (little-endian): `0xC1`, version `1`, `fresh_until`, `stale_until`,
//! `keep_until`, `written_at` (u64 milliseconds since the Unix epoch; `u64::MAX` =
//! never), `compute_ms` (u32), then the codec's bytes. `0xC1` is a byte MessagePack
//! never uses and no UTF-8 text starts with, so values written without a header (by
//! older versions, or through the raw backend) are told apart: plain reads and
//! get-or-compute decode them as fresh until the store expires them.

use crate::expiry::Expiry;
use std::time::Duration;

const MAGIC: u8 = 0xC1;
const VERSION: u8 = 1;
/// Bytes of the header.
pub(crate) const HEADER: usize = 2 + 8 * 4 + 4;
/// `fresh_until` etc. of a value that never expires.
pub(crate) const NEVER: u64 = u64::MAX;

/// What the header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Meta {
    pub(crate) fresh_until: u64,
    pub(crate) stale_until: u64,
    pub(crate) keep_until: u64,
    pub(crate) written_at: u64,
    pub(crate) compute_ms: u32,
}

/// Where a value stands, by its header and the clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Age {
    /// Before its expiry.
    Fresh,
    /// Past it, within stale-while-revalidate: servable while it is refreshed.
    Stale,
    /// Past that, kept for fail-safe: served only if the compute fails.
    Kept,
    /// Past everything (the store has not removed it yet): a miss.
    Gone,
}

/// What a stored value is.
pub(crate) enum Opened<'a> {
    /// A value with a header of this version.
    Enveloped(Meta, &'a [u8]),
    /// Codec bytes with no header.
    Bare(&'a [u8]),
    /// A header of another version (a newer writer): unreadable here, a miss.
    Unknown,
}

#[inline]
pub(crate) fn open(bytes: &[u8]) -> Opened<'_> {
    if bytes.first() != Some(&MAGIC) {
        return Opened::Bare(bytes);
    }
    if bytes.len() < HEADER || bytes[1] != VERSION {
        return Opened::Unknown;
    }
    let u64_at = |i: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&bytes[i..i + 8]);
        u64::from_le_bytes(b)
    };
    let mut c = [0u8; 4];
    c.copy_from_slice(&bytes[34..38]);
    Opened::Enveloped(
        Meta {
            fresh_until: u64_at(2),
            stale_until: u64_at(10),
            keep_until: u64_at(18),
            written_at: u64_at(26),
            compute_ms: u32::from_le_bytes(c),
        },
        &bytes[HEADER..],
    )
}

impl Meta {
    /// A value written at `now` with `expiry`, served stale for `stale_for` more and
    /// kept `keep_for` past its freshness (fail-safe); `None` if the expiry has passed.
    ///
    /// The one place an expiry is resolved for get-or-compute: on `now` (the cache's
    /// clock, milliseconds since the epoch), rounded up to whole milliseconds, so a
    /// value is never fresh for less than asked. An `Expiry::At` is its own deadline.
    pub(crate) fn new(
        now: u64,
        expiry: Expiry,
        stale_for: Duration,
        keep_for: Duration,
        compute: Duration,
    ) -> Option<Meta> {
        let fresh_until = match expiry {
            Expiry::Never => NEVER,
            Expiry::After(d) if d.is_zero() => return None,
            Expiry::After(d) => now.saturating_add(ceil_ms(d)).min(NEVER - 1),
            Expiry::At(t) => {
                let at = t
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, ceil_ms)
                    .min(NEVER - 1);
                if at <= now {
                    return None;
                }
                at
            }
        };
        let past = |d: Duration| {
            if fresh_until == NEVER {
                NEVER
            } else {
                fresh_until.saturating_add(ceil_ms(d)).min(NEVER - 1)
            }
        };
        let stale_until = past(stale_for);
        Some(Meta {
            fresh_until,
            stale_until,
            keep_until: past(keep_for).max(stale_until),
            written_at: now,
            compute_ms: compute.as_millis().min(u32::MAX as u128) as u32,
        })
    }

    /// The store's expiry for this value, written at `now` with `expiry`: until
    /// `keep_until`. An absolute expiry stays absolute (stores that take a deadline,
    /// like Redis's `PXAT`, get one), moved by what the value is kept past it; a
    /// relative one stays relative, since the store's TTLs run on real time, not on the
    /// cache's (possibly manual) clock.
    pub(crate) fn store_expiry(&self, now: u64, expiry: Expiry) -> Expiry {
        if self.keep_until == NEVER {
            return Expiry::Never;
        }
        let kept = Duration::from_millis(self.keep_until - self.fresh_until);
        match expiry {
            Expiry::At(t) => t.checked_add(kept).map_or(Expiry::Never, Expiry::At),
            _ => Expiry::After(Duration::from_millis(self.keep_until.saturating_sub(now))),
        }
    }

    /// True when the value is kept past its freshness (stale-while-revalidate,
    /// fail-safe): a plain read places it by [`age`](Self::age) on the cache's clock;
    /// otherwise the store's own expiry is the value's, and the clock is not read (a
    /// read of the clock costs a tenth of an in-process typed get).
    #[inline]
    pub(crate) fn outlives_freshness(&self) -> bool {
        self.keep_until != self.fresh_until
    }

    /// Where the value stands at `now`, by its header alone: the one classification.
    #[inline]
    pub(crate) fn age(&self, now: u64) -> Age {
        if now < self.fresh_until {
            Age::Fresh
        } else if now < self.stale_until {
            Age::Stale
        } else if now < self.keep_until {
            Age::Kept
        } else {
            Age::Gone
        }
    }

    /// Header followed by `payload`'s room: write the codec's bytes after it.
    pub(crate) fn write_header(&self, out: &mut Vec<u8>) {
        out.push(MAGIC);
        out.push(VERSION);
        for v in [
            self.fresh_until,
            self.stale_until,
            self.keep_until,
            self.written_at,
        ] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(&self.compute_ms.to_le_bytes());
    }
}

/// `d` in whole milliseconds, rounded up.
fn ceil_ms(d: Duration) -> u64 {
    u64::try_from(d.as_nanos().div_ceil(1_000_000)).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_roundtrip_and_bare_values() {
        let m = Meta::new(
            1_000,
            Expiry::After(Duration::from_secs(10)),
            Duration::from_secs(5),
            Duration::from_secs(60),
            Duration::from_millis(250),
        )
        .unwrap();
        assert_eq!(
            (m.fresh_until, m.stale_until, m.keep_until, m.compute_ms),
            (11_000, 16_000, 71_000, 250)
        );
        let mut buf = vec![];
        m.write_header(&mut buf);
        assert_eq!(buf.len(), HEADER);
        buf.extend_from_slice(b"payload");
        match open(&buf) {
            Opened::Enveloped(got, payload) => {
                assert_eq!(got, m);
                assert_eq!(payload, b"payload");
            }
            _ => panic!("not read back"),
        }
        // MessagePack and JSON bytes never start with the magic byte.
        let bare = rmp_serde::to_vec(&42u32).unwrap();
        assert!(matches!(open(&bare), Opened::Bare(b) if b == bare));
        assert!(matches!(open(b"\"json\""), Opened::Bare(_)));
        assert!(matches!(open(&[MAGIC, 9, 0, 0]), Opened::Unknown));
        assert!(matches!(open(&[MAGIC]), Opened::Unknown));
        assert!(Meta::new(
            0,
            Expiry::After(Duration::ZERO),
            Duration::ZERO,
            Duration::ZERO,
            Duration::ZERO
        )
        .is_none());
        let never = Meta::new(
            5,
            Expiry::Never,
            Duration::from_secs(1),
            Duration::ZERO,
            Duration::ZERO,
        )
        .unwrap();
        assert_eq!((never.fresh_until, never.keep_until), (NEVER, NEVER));
        assert_eq!(never.age(u64::MAX - 1), Age::Fresh);
        let unkept = Meta::new(
            0,
            Expiry::After(Duration::from_secs(1)),
            Duration::ZERO,
            Duration::ZERO,
            Duration::ZERO,
        )
        .unwrap();
        assert!(!unkept.outlives_freshness() && m.outlives_freshness());
        assert_eq!(
            (m.age(10_999), m.age(11_000), m.age(16_000), m.age(71_000)),
            (Age::Fresh, Age::Stale, Age::Kept, Age::Gone)
        );
        assert_eq!(never.store_expiry(5, Expiry::Never), Expiry::Never);
    }
}
