//! `PostgresBackend` through the trait and the typed `Cache`, against raw
//! `tokio-postgres` through the same pool (bb8, 16 connections, no check on checkout)
//! running the same statements, prepared once per connection, on the same table and
//! server, in one run: `bash scripts/bench.sh postgres` (or, with the server
//! up, `cargo bench -p cache-postgres --bench postgres`).
//!
//! The loop is `conformance_tests::bench` (p50/p99 at 1 task, throughput at 64,
//! interleaved rounds, per-round ratios). Last: GET on one connection, an unnamed
//! `query_typed` statement against one prepared once, which is why every pooled
//! connection prepares its statements.

use bb8::Pool;
use cache_core::{Cache, CacheBackend};
use cache_postgres::PostgresBuilder;
use conformance_tests::bench::{compare, compare_ops, raw_key, value, Op, Settings, Subject};
use std::sync::Arc;
use std::time::Duration;
use tokio_postgres::types::Type;
use tokio_postgres::NoTls;

const NAMESPACE: &str = "bench";

const GET: &str =
    "SELECT value FROM \"public\".\"cache_entries\" WHERE namespace = $1 AND key = $2 \
                   AND (expires_at IS NULL OR expires_at > now())";
const SET: &str = "INSERT INTO \"public\".\"cache_entries\" (namespace, key, value, expires_at) \
                   VALUES ($1, $2, $3, now() + $4::int8 * interval '1 millisecond') \
                   ON CONFLICT (namespace, key) DO UPDATE SET value = EXCLUDED.value, expires_at = EXCLUDED.expires_at";

/// The reference pool: connections with GET and SET prepared on each.
struct RawManager(tokio_postgres::Config);

struct RawConn {
    client: tokio_postgres::Client,
    get: tokio_postgres::Statement,
    set: tokio_postgres::Statement,
}

impl bb8::ManageConnection for RawManager {
    type Connection = RawConn;
    type Error = tokio_postgres::Error;

    async fn connect(&self) -> Result<RawConn, tokio_postgres::Error> {
        let (client, conn) = self.0.connect(NoTls).await?;
        tokio::spawn(conn);
        let get = client.prepare_typed(GET, &[Type::TEXT, Type::TEXT]).await?;
        let set = client
            .prepare_typed(SET, &[Type::TEXT, Type::TEXT, Type::BYTEA, Type::INT8])
            .await?;
        Ok(RawConn { client, get, set })
    }

    async fn is_valid(&self, _: &mut RawConn) -> Result<(), tokio_postgres::Error> {
        Ok(())
    }

    fn has_broken(&self, c: &mut RawConn) -> bool {
        c.client.is_closed()
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let url = std::env::var("CACHE_TEST_POSTGRES_URL").unwrap_or_else(|_| {
        panic!("CACHE_TEST_POSTGRES_URL is not set: run `bash scripts/bench.sh postgres`, or `bash scripts/servers.sh start postgres` and `eval \"$(bash scripts/servers.sh env postgres)\"`")
    });
    let backend = PostgresBuilder::new(url.clone())
        .namespace(NAMESPACE)
        .pool_size(16)
        .timeout(Duration::from_secs(5))
        .build()
        .await
        .unwrap();
    let backend: Arc<dyn CacheBackend> = Arc::new(backend);
    let raw = Pool::builder()
        .max_size(16)
        .min_idle(Some(1))
        .test_on_check_out(false)
        .build(RawManager(url.parse().unwrap()))
        .await
        .unwrap();
    let v = value();
    let subjects = [
        Subject::new("raw tokio-postgres (bb8, 16)", move |op, i| {
            let (raw, v) = (raw.clone(), v.clone());
            async move {
                let c = raw.get().await.unwrap();
                let k = raw_key(i);
                match op {
                    Op::Get => drop(c.client.query(&c.get, &[&NAMESPACE, &k]).await.unwrap()),
                    Op::Set => drop(
                        c.client
                            .query(&c.set, &[&NAMESPACE, &k, &&v[..], &None::<i64>])
                            .await
                            .unwrap(),
                    ),
                }
            }
        }),
        Subject::backend("PostgresBackend via dyn trait", backend.clone()),
        Subject::typed("typed Cache<String>", Cache::from_arc(backend.clone())),
    ];
    compare("PostgreSQL", Settings::default(), &subjects).await;
    statement_styles(&url).await;
    backend.clear().await.unwrap();
}

/// Why every pooled connection prepares the statements: GET on one connection, an
/// unnamed statement with typed parameters (`query_typed`: parse + bind + execute in
/// one round trip, planned every time) against a statement prepared once.
async fn statement_styles(url: &str) {
    let (client, conn) = tokio_postgres::connect(url, NoTls).await.unwrap();
    tokio::spawn(conn);
    let client = Arc::new(client);
    let prepared = client
        .prepare_typed(GET, &[Type::TEXT, Type::TEXT])
        .await
        .unwrap();
    let typed = client.clone();
    let subjects = [
        Subject::new("query_typed (unnamed), 1 conn", move |_, i| {
            let c = typed.clone();
            async move {
                let k = raw_key(i);
                c.query_typed(GET, &[(&NAMESPACE, Type::TEXT), (&k, Type::TEXT)])
                    .await
                    .unwrap();
            }
        }),
        Subject::new("prepared once, 1 conn", move |_, i| {
            let (c, p) = (client.clone(), prepared.clone());
            async move {
                c.query(&p, &[&NAMESPACE, &raw_key(i)]).await.unwrap();
            }
        }),
    ];
    compare_ops(
        "GET by statement style",
        Settings::default(),
        &subjects,
        &[Op::Get],
    )
    .await;
}
