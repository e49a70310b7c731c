//! The driver side: pools per server, the hash ring, key, generation, value and TTL
//! encoding.

use crate::config::MemcachedConfig;
use crate::error::{config, map, pool, BACKEND};
use async_memcached::{Client, Error as McError, MetaProtocol};
use bb8::Pool;
use cache_core::raw::{within, KeyKind, KeyLayout, Ttl};
use cache_core::{Bytes, Error, Expiry, Result};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use xxhash_rust::xxh3::xxh3_64;

/// Memcached keys: at most 250 bytes of printable ASCII without spaces. The longest
/// namespace (128) with a generation (`@` + 20 digits), a lock marker and a digest
/// still fits (221 bytes).
pub(crate) const LAYOUT: KeyLayout = KeyLayout::ANY
    .max_len(MAX_KEY_LEN)
    .safe_chars(|c| c.is_ascii_graphic());

/// Memcached's key length limit.
pub(crate) const MAX_KEY_LEN: usize = 250;

/// Bytes in front of every stored value: the deadline in Unix milliseconds, big
/// endian, 0 for none.
pub(crate) const HEADER: usize = 8;

/// Memcached reads a TTL over 30 days as a Unix timestamp.
const RELATIVE_TTL_MAX: u64 = 30 * 86_400;

/// Points per server on the ring: enough for an even spread (±10 % at 3 servers).
const POINTS_PER_SERVER: usize = 160;

/// When a value written now with `expiry` stops being readable (Unix ms; `None`:
/// never), or `Err(())` if it is already expired.
pub(crate) fn deadline(expiry: Expiry, now: u64) -> std::result::Result<Option<u64>, ()> {
    match expiry.ttl() {
        Ttl::Forever => Ok(None),
        Ttl::Expired => Err(()),
        Ttl::For(d) => {
            let ms = d.as_nanos().div_ceil(1_000_000);
            Ok(Some(
                now.saturating_add(u64::try_from(ms).unwrap_or(u64::MAX)),
            ))
        }
    }
}

/// The server-side TTL flag (`T<n>`) for a deadline: whole seconds rounded up plus
/// one (memcached's clock ticks in seconds, so an item may otherwise go early); over
/// 30 days as a Unix timestamp, which memcached keeps in 32 bits (clamped). Reads
/// filter on the exact deadline, so the server's copy only has to outlive it.
pub(crate) fn ttl_flag(deadline: Option<u64>, now: u64) -> String {
    let Some(deadline) = deadline else {
        return "T0".into();
    };
    let secs = deadline.saturating_sub(now).div_ceil(1000) + 1;
    if secs <= RELATIVE_TTL_MAX {
        format!("T{secs}")
    } else {
        let at = (now / 1000).saturating_add(secs).min(i32::MAX as u64);
        format!("T{at}")
    }
}

/// A value as stored: the deadline header, then the bytes.
pub(crate) fn encode(value: &[u8], deadline: Option<u64>) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER + value.len());
    out.extend_from_slice(&deadline.unwrap_or(0).to_be_bytes());
    out.extend_from_slice(value);
    out
}

/// The bytes of a stored value, or `None` if it has expired (or is not ours: too
/// short for the header).
pub(crate) fn decode(stored: Vec<u8>, now: u64) -> Option<Bytes> {
    let deadline = u64::from_be_bytes(stored.get(..HEADER)?.try_into().ok()?);
    if deadline != 0 && deadline <= now {
        return None;
    }
    Some(Bytes::from(stored).slice(HEADER..))
}

/// Whether a stored value is still live.
pub(crate) fn is_live(stored: &[u8], now: u64) -> bool {
    match stored.get(..HEADER) {
        Some(h) => {
            let deadline = u64::from_be_bytes(h.try_into().unwrap_or_default());
            deadline == 0 || deadline > now
        }
        None => false,
    }
}

/// The key holding a namespace's generation on every server. Value bodies never
/// start with `#gen` (literal keys starting with `#` are hashed), so it is nobody's
/// value.
pub(crate) fn generation_key(namespace: &str) -> String {
    format!("{namespace}:#gen")
}

/// The store key of a value: the namespace with its generation (`ns@gen`), then the
/// core's layout. Bumping the generation orphans every value of the namespace at once.
pub(crate) fn value_key(namespace: &str, generation: u64, key: &str) -> String {
    let ns = format!("{namespace}@{generation}");
    LAYOUT.key(&ns, KeyKind::Value, key).to_string()
}

/// The store key of a lock: the core's layout, without a generation (a `clear` never
/// frees a held lock; locks end by release or TTL).
pub(crate) fn lock_key(namespace: &str, key: &str) -> String {
    LAYOUT.key(namespace, KeyKind::Lock, key).to_string()
}

/// The key of a lock's *held mark*: `ns@gen:#held:key`, under the namespace's
/// generation like a value (so a `clear` orphans every mark of the namespace at
/// once). `acquire_lock` writes it with the token; every application write of the key
/// deletes it (the lock is then *overtaken*); `set_locked` writes only while it is
/// still there. Its marker is as long as the lock marker, so it fits wherever the
/// lock key's layout fits; no value, lock or generation key has this form.
pub(crate) fn held_key(namespace: &str, generation: u64, key: &str) -> String {
    const _: () = assert!(HELD_MARKER.len() == "#lock:".len());
    let ns = format!("{namespace}@{generation}");
    let k = LAYOUT.key(&ns, KeyKind::Lock, key);
    let [ns, colon, _lock_marker, inner] = k.parts();
    [ns, colon, HELD_MARKER, inner].concat()
}

const HELD_MARKER: &str = "#held:";

/// What a delete leaves in place of a value whose lock has a held mark: a value
/// whose deadline passed long ago (every read is a miss), so that the holder's
/// `add` of a value it found absent fails. See the crate README.
pub(crate) fn tombstone() -> Vec<u8> {
    encode(b"", Some(1))
}

/// How long a tombstone stays: longer than any fenced write that checked the key
/// before it can take (one call, bounded by its timeout), with margin.
pub(crate) fn tombstone_lifetime(timeout: Duration) -> Duration {
    (timeout * 2).max(Duration::from_secs(10))
}

/// The value a missing generation starts from: the clock in microseconds, so a
/// generation key that was evicted and made again never comes back to a number
/// whose values may still be stored.
fn fresh_generation_seed() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(1, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

/// Consistent hashing: each server owns [`POINTS_PER_SERVER`] points on a 64-bit
/// ring (xxh3 of `address#i`, stable across processes and builds); a key belongs to
/// the first point at or after its hash. Adding a server moves only the keys it takes
/// (≈ 1/n of them).
#[derive(Debug)]
pub(crate) struct Ring {
    points: Vec<(u64, usize)>,
}

impl Ring {
    pub(crate) fn new(servers: &[String]) -> Ring {
        let mut points: Vec<(u64, usize)> = servers
            .iter()
            .enumerate()
            .flat_map(|(s, addr)| {
                (0..POINTS_PER_SERVER).map(move |i| (xxh3_64(format!("{addr}#{i}").as_bytes()), s))
            })
            .collect();
        points.sort_unstable();
        Ring { points }
    }

    /// The server of `key` (the namespace-qualified key, without its generation).
    pub(crate) fn server(&self, namespace: &str, key: &str) -> usize {
        if self.points.len() <= POINTS_PER_SERVER {
            return 0;
        }
        let h = xxh3_64(&[namespace.as_bytes(), b":", key.as_bytes()].concat());
        let i = self.points.partition_point(|(p, _)| *p < h);
        self.points[i % self.points.len()].1
    }
}

/// The address as async-memcached wants it: a URL (`tcp://host:port`, `unix:///path`).
pub(crate) fn dial_address(addr: &str) -> String {
    if addr.contains("://") {
        addr.to_owned()
    } else {
        format!("tcp://{addr}")
    }
}

/// Opens connections to one server; the pool drops a connection an interrupted call
/// left closed (async-memcached closes it for good).
pub(crate) struct Manager {
    pub(crate) addr: String,
}

impl bb8::ManageConnection for Manager {
    type Connection = Client;
    type Error = McError;

    async fn connect(&self) -> std::result::Result<Client, McError> {
        Client::new(dial_address(&self.addr)).await
    }

    async fn is_valid(&self, conn: &mut Client) -> std::result::Result<(), McError> {
        conn.version().await.map(drop)
    }

    fn has_broken(&self, conn: &mut Client) -> bool {
        conn.is_closed()
    }
}

/// One server: its address and its pool.
pub(crate) struct Server {
    pub(crate) addr: String,
    pub(crate) pool: Pool<Manager>,
}

/// What every namespace's handle shares: the servers and the ring.
pub(crate) struct Driver {
    pub(crate) servers: Vec<Server>,
    pub(crate) ring: Ring,
    pub(crate) timeout: Duration,
}

impl Driver {
    /// Connect once to every server (so a wrong address is an error now), then make
    /// the pools.
    pub(crate) async fn connect(cfg: &MemcachedConfig) -> Result<Driver> {
        if cfg.timeout.is_zero() || cfg.connect_timeout.is_zero() || cfg.pool_size == 0 {
            return Err(config(
                "timeout, connect_timeout and pool_size must be positive",
            ));
        }
        if cfg.servers.is_empty() {
            return Err(config("no servers: give at least one host:port"));
        }
        let mut seen = std::collections::HashSet::new();
        for addr in &cfg.servers {
            if addr.trim().is_empty() || !seen.insert(addr) {
                return Err(config(format!(
                    "server {addr:?} is empty or given twice; give each host:port once"
                )));
            }
        }
        let opened = futures::future::join_all(cfg.servers.iter().map(|addr| async move {
            let manager = Manager { addr: addr.clone() };
            let first =
                match tokio::time::timeout(cfg.connect_timeout, Client::new(dial_address(addr)))
                    .await
                {
                    Ok(c) => c.map_err(|e| map(e, addr))?,
                    Err(_) => {
                        return Err(Error::timeout(BACKEND, cfg.connect_timeout).with_source(
                            std::io::Error::other(format!("connecting to memcached at {addr}")),
                        ))
                    }
                };
            let pool = Pool::builder()
                .max_size(cfg.pool_size)
                .min_idle(Some(1))
                .connection_timeout(cfg.timeout)
                // A round trip per checkout would double a call's cost; a connection an
                // interrupted call closed is dropped when it comes back (has_broken).
                .test_on_check_out(false)
                .build_unchecked(manager);
            let _ = pool.add(first);
            Ok(Server {
                addr: addr.clone(),
                pool,
            })
        }))
        .await;
        let servers = opened.into_iter().collect::<Result<Vec<_>>>()?;
        Ok(Driver {
            ring: Ring::new(&cfg.servers),
            servers,
            timeout: cfg.timeout,
        })
    }

    /// Run `op` on a pooled connection to server `s`, the whole call (waiting for a
    /// connection included) bounded by the timeout.
    pub(crate) async fn on<T, F>(&self, s: usize, op: F) -> Result<T>
    where
        F: AsyncFnOnce(&mut Client) -> std::result::Result<T, McError>,
    {
        let server = &self.servers[s];
        let call = async {
            let mut conn = server.pool.get().await.map_err(|e| pool(e, &server.addr))?;
            op(&mut conn).await.map_err(|e| map(e, &server.addr))
        };
        within(BACKEND, self.timeout, call).await
    }
}

/// This process's copy of one namespace's generation on one server, and when it was
/// last read from the server.
#[derive(Default)]
pub(crate) struct Generation {
    value: AtomicU64,
    /// Nanoseconds after `Generations::epoch` of the last check; 0: never.
    checked: AtomicU64,
}

/// A namespace's generations, one per server.
pub(crate) struct Generations {
    slots: Vec<Generation>,
    epoch: Instant,
    trust: Duration,
}

impl Generations {
    pub(crate) fn new(servers: usize, trust: Duration) -> Self {
        Generations {
            slots: (0..servers).map(|_| Generation::default()).collect(),
            epoch: Instant::now(),
            trust,
        }
    }

    fn stamp(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_nanos())
            .unwrap_or(u64::MAX)
            .max(1)
    }

    /// The known generation on server `s` (0: unknown).
    pub(crate) fn known(&self, s: usize) -> u64 {
        self.slots[s].value.load(Ordering::Acquire)
    }

    /// The generation on server `s` if it was checked within the trust window.
    pub(crate) fn trusted(&self, s: usize) -> Option<u64> {
        let slot = &self.slots[s];
        let checked = slot.checked.load(Ordering::Acquire);
        let fresh =
            checked != 0 && self.stamp().saturating_sub(checked) < self.trust.as_nanos() as u64;
        let g = slot.value.load(Ordering::Acquire);
        (fresh && g != 0).then_some(g)
    }

    /// Record `g` as just read from server `s`.
    pub(crate) fn record(&self, s: usize, g: u64) {
        let slot = &self.slots[s];
        slot.value.store(g, Ordering::Release);
        slot.checked.store(self.stamp(), Ordering::Release);
    }
}

/// Parse a generation as memcached returns it (ASCII digits).
pub(crate) fn parse_generation(data: Option<&[u8]>) -> Option<u64> {
    std::str::from_utf8(data?).ok()?.trim().parse().ok()
}

/// Read the generation on a connection, creating it if missing (`ma` by 0 with
/// auto-create); `bump` adds one instead (a `clear`).
pub(crate) async fn read_generation(
    conn: &mut Client,
    namespace: &str,
    bump: bool,
) -> std::result::Result<u64, McError> {
    let seed = format!("J{}", fresh_generation_seed());
    let delta = if bump { 1 } else { 0 };
    let v = conn
        .meta_increment(
            generation_key(namespace),
            false,
            None,
            Some(delta),
            Some(&["N0", &seed, "v"]),
        )
        .await?;
    parse_generation(v.as_ref().and_then(|v| v.data.as_deref())).ok_or_else(|| {
        McError::Protocol(async_memcached::Status::Error(
            async_memcached::ErrorKind::Protocol(Some("a generation that is not a number".into())),
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttls_round_up_and_switch_to_timestamps_past_30_days() {
        let now = 1_700_000_000_000;
        assert_eq!(ttl_flag(None, now), "T0");
        assert_eq!(ttl_flag(Some(now + 1), now), "T2");
        assert_eq!(ttl_flag(Some(now + 1000), now), "T2");
        assert_eq!(ttl_flag(Some(now + 1001), now), "T3");
        let thirty = RELATIVE_TTL_MAX * 1000;
        assert_eq!(
            ttl_flag(Some(now + thirty - 1000), now),
            format!("T{RELATIVE_TTL_MAX}")
        );
        // 31 days: a timestamp 31 days + 1 s from now, not a relative 2 678 401 s.
        let at = ttl_flag(Some(now + 31 * 86_400_000), now);
        assert_eq!(at, format!("T{}", now / 1000 + 31 * 86_400 + 1));
        assert_eq!(ttl_flag(Some(u64::MAX), now), format!("T{}", i32::MAX));
    }

    #[test]
    fn deadlines_round_up_to_the_millisecond() {
        let now = 1000;
        assert_eq!(deadline(Expiry::Never, now), Ok(None));
        assert_eq!(
            deadline(Expiry::After(Duration::from_micros(1)), now),
            Ok(Some(1001))
        );
        assert_eq!(deadline(Expiry::After(Duration::ZERO), now), Err(()));
        assert_eq!(
            deadline(Expiry::After(Duration::MAX), now),
            Ok(Some(u64::MAX))
        );
    }

    #[test]
    fn values_carry_their_deadline() {
        let now = 5000;
        assert_eq!(decode(encode(b"v", None), now).as_deref(), Some(&b"v"[..]));
        assert_eq!(
            decode(encode(b"v", Some(5001)), now).as_deref(),
            Some(&b"v"[..])
        );
        assert_eq!(decode(encode(b"v", Some(5000)), now), None);
        assert_eq!(decode(b"short".to_vec(), now), None);
        assert!(is_live(&encode(b"", None), now));
        assert!(!is_live(&encode(b"", Some(1)), now));
    }

    #[test]
    fn keys_fit_memcached_and_never_collide_across_generations_or_kinds() {
        let ns = "n".repeat(cache_core::raw::MAX_NAMESPACE_LEN);
        for key in ["k", "a b", "\r\n", &"x".repeat(70_000), "#gen", "#lock:k"] {
            for k in [
                value_key(&ns, u64::MAX, key),
                lock_key(&ns, key),
                held_key(&ns, u64::MAX, key),
            ] {
                assert!(k.len() <= MAX_KEY_LEN, "{} bytes", k.len());
                assert!(k.bytes().all(|b| b.is_ascii_graphic()), "{k}");
            }
        }
        assert_ne!(value_key("a", 1, "k"), value_key("a", 2, "k"));
        assert_ne!(value_key("a", 1, "#gen"), generation_key("a@1"));
        assert_ne!(value_key("a", 1, "#lock:k"), lock_key("a@1", "k"));
        assert_eq!(held_key("a", 7, "user:1"), "a@7:#held:user:1");
        for key in ["k", "#held:k", "#lock:k", "a b"] {
            let held = held_key("a", 1, "k");
            assert_ne!(value_key("a", 1, key), held);
            assert_ne!(lock_key("a@1", key), held);
            assert_ne!(lock_key("a", key), held);
        }
        assert!(decode(tombstone(), 2).is_none());
        assert!(!is_live(&tombstone(), 2));
    }

    #[test]
    fn the_ring_spreads_keys_and_moves_about_a_quarter_when_a_fourth_server_joins() {
        let three: Vec<String> = (1..=3).map(|i| format!("10.0.0.{i}:11211")).collect();
        let mut four = three.clone();
        four.push("10.0.0.4:11211".into());
        let (r3, r4) = (Ring::new(&three), Ring::new(&four));
        let n = 30_000;
        let mut per = [0usize; 3];
        let mut moved = 0;
        for i in 0..n {
            let k = format!("key:{i}");
            let (a, b) = (r3.server("ns", &k), r4.server("ns", &k));
            per[a] += 1;
            if a != b {
                assert_eq!(b, 3, "a key moved between two old servers");
                moved += 1;
            }
        }
        for c in per {
            let share = c as f64 / n as f64;
            assert!((0.25..0.42).contains(&share), "uneven spread: {per:?}");
        }
        let fraction = moved as f64 / n as f64;
        assert!((0.15..0.35).contains(&fraction), "moved {fraction}");
        assert_eq!(Ring::new(&three[..1]).server("ns", "k"), 0);
    }
}
