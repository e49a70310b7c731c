//! Readiness probes: one real request of each store's protocol, answered.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// Send `request` to 127.0.0.1:`port` until the answer satisfies `ok`, or `within`
/// has passed (then the last failure).
fn probe(port: u16, within: Duration, request: &[u8], ok: fn(&[u8]) -> bool) -> Result<(), String> {
    let deadline = Instant::now() + within;
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    loop {
        let answer = (|| -> std::io::Result<Vec<u8>> {
            let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(1))?;
            s.set_read_timeout(Some(Duration::from_secs(2)))?;
            s.write_all(request)?;
            let mut buf = vec![0u8; 512];
            let n = s.read(&mut buf)?;
            buf.truncate(n);
            Ok(buf)
        })();
        let why = match answer {
            Ok(a) if ok(&a) => return Ok(()),
            Ok(a) => format!("answered {:?}", String::from_utf8_lossy(&a)),
            Err(e) => e.to_string(),
        };
        if Instant::now() >= deadline {
            return Err(why);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Redis: `PING` answered `+PONG`.
pub fn redis(port: u16, within: Duration) -> Result<(), String> {
    probe(port, within, b"PING\r\n", |a| a.starts_with(b"+PONG"))
}

/// Memcached: `version` answered `VERSION ...`.
pub fn memcached(port: u16, within: Duration) -> Result<(), String> {
    probe(port, within, b"version\r\n", |a| a.starts_with(b"VERSION "))
}

/// PostgreSQL: a startup message (user and database `postgres`) answered with an
/// authentication request, not "the database system is starting up".
pub fn postgres(port: u16, within: Duration) -> Result<(), String> {
    const STARTUP: &[u8] = b"\0\0\0\x29\0\x03\0\0user\0postgres\0database\0postgres\0\0";
    probe(port, within, STARTUP, |a| a.first() == Some(&b'R'))
}

/// MongoDB: an OP_MSG `{hello: 1, $db: "admin"}` answered with an OP_MSG.
pub fn mongodb(port: u16, within: Duration) -> Result<(), String> {
    let mut doc = Vec::new();
    doc.extend_from_slice(b"\x10hello\0");
    doc.extend_from_slice(&1i32.to_le_bytes());
    doc.extend_from_slice(b"\x02$db\0");
    doc.extend_from_slice(&6i32.to_le_bytes());
    doc.extend_from_slice(b"admin\0\0");
    let doc_len = (doc.len() + 4) as i32;
    let mut msg = Vec::new();
    let total = 16 + 4 + 1 + doc_len;
    for v in [total, 1, 0, 2013, 0] {
        msg.extend_from_slice(&v.to_le_bytes());
    }
    msg.push(0);
    msg.extend_from_slice(&doc_len.to_le_bytes());
    msg.extend_from_slice(&doc);
    let msg: &'static [u8] = Box::leak(msg.into_boxed_slice());
    probe(port, within, msg, |a| {
        a.len() >= 16 && a[12..16] == 2013i32.to_le_bytes()
    })
}

/// A gRPC server (the Firestore emulators): the HTTP/2 preface and an empty
/// SETTINGS frame answered with a SETTINGS frame.
pub fn grpc(port: u16, within: Duration) -> Result<(), String> {
    const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0";
    probe(port, within, PREFACE, |a| a.len() >= 9 && a[3] == 4)
}

/// An HTTP server (DynamoDB): any HTTP answer to `GET /`.
pub fn http(port: u16, within: Duration) -> Result<(), String> {
    probe(
        port,
        within,
        b"GET / HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n",
        |a| a.starts_with(b"HTTP/1."),
    )
}
