//! `MemcachedBackend` through the trait and the typed `Cache`, against raw
//! `async-memcached` through the same pool type (bb8, 8 connections, no check on
//! checkout) on the same server, in one run: `bash scripts/bench.sh memcached` (or,
//! with the servers up, `cargo bench -p cache-memcached --bench memcached`).
//!
//! The raw reference sends plain `get`/`set`; the backend reads its namespace's
//! generation in the same round trip as the value (`mg` pipeline) and writes with its
//! trusted copy, a held mark's `delete … noreply` in front (fenced writes), so the
//! ratios are the cost of namespaces, clear in O(1), exact TTLs and fencing. An unranked subject shows the alternative: a generation read per write
//! (`generation_check(0)`).

use async_memcached::{AsciiProtocol, Client, Error};
use cache_core::{Cache, CacheBackend};
use cache_memcached::MemcachedBuilder;
use conformance_tests::bench::{compare, raw_key, value, Op, Settings, Subject};
use std::sync::Arc;
use std::time::Duration;

struct RawManager(String);

impl bb8::ManageConnection for RawManager {
    type Connection = Client;
    type Error = Error;

    async fn connect(&self) -> Result<Client, Error> {
        Client::new(&self.0).await
    }

    async fn is_valid(&self, _: &mut Client) -> Result<(), Error> {
        Ok(())
    }

    fn has_broken(&self, c: &mut Client) -> bool {
        c.is_closed()
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let url = std::env::var("CACHE_TEST_MEMCACHED_URL").unwrap_or_else(|_| {
        panic!("CACHE_TEST_MEMCACHED_URL is not set: run `bash scripts/bench.sh memcached`, or `bash scripts/servers.sh start memcached` and `eval \"$(bash scripts/servers.sh env memcached)\"`")
    });
    let build = |check: Duration| {
        MemcachedBuilder::new(url.clone())
            .namespace("bench")
            .pool_size(8)
            .generation_check(check)
            .build()
    };
    let backend: Arc<dyn CacheBackend> = Arc::new(build(Duration::from_secs(1)).await.unwrap());
    let strict: Arc<dyn CacheBackend> = Arc::new(build(Duration::ZERO).await.unwrap());
    let raw = bb8::Pool::builder()
        .max_size(8)
        .min_idle(Some(1))
        .test_on_check_out(false)
        .build(RawManager(format!("tcp://{url}")))
        .await
        .unwrap();
    let v = value();
    let subjects = [
        Subject::new("raw async-memcached (bb8, 8)", move |op, i| {
            let (raw, v) = (raw.clone(), v.clone());
            async move {
                let mut c = raw.get().await.unwrap();
                match op {
                    Op::Get => drop(c.get(raw_key(i)).await.unwrap()),
                    Op::Set => c.set(raw_key(i), &v[..], None, None).await.unwrap(),
                }
            }
        }),
        Subject::backend("MemcachedBackend via dyn trait", backend.clone()),
        Subject::typed("typed Cache<String>", Cache::from_arc(backend.clone())),
        Subject::backend("generation read on every write", strict).unranked(),
    ];
    compare(
        &format!("Memcached at {url}"),
        Settings::default(),
        &subjects,
    )
    .await;
    backend.clear().await.unwrap();
}
