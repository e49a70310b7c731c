//! `PostgresBackend` through the trait and the typed `Cache`, against raw
//! `tokio-postgres` through the same pool (bb8, 16 connections, no check on checkout)
//! running the same statements, prepared once per connection, on the same table and
//! server, in one run: `bash scripts/bench.sh postgres` (or, with the server
//! up, `cargo bench -p cache-postgres --bench postgres`).
//!
//! 100-byte values. p50/p99 latency of GET and SET at 1 task and throughput at 64
//! concurrent tasks, over interleaved rounds; the median of the per-round ratios to
//! raw. Targets: <= 1.05x raw p50 latency, >= 0.95x raw throughput.

use bb8::Pool;
use cache_core::{Bytes, Cache, CacheBackend, Expiry};
use cache_postgres::PostgresBuilder;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_postgres::types::Type;
use tokio_postgres::NoTls;

const LAT_OPS: usize = 2_000;
const TPUT_TASKS: usize = 64;
const TPUT_OPS: usize = 20_000;
const ROUNDS: usize = 5;
const KEYS: usize = 1_000;
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

#[derive(Clone, Copy, PartialEq)]
enum Op {
    Get,
    Set,
}

#[derive(Clone)]
enum Client {
    Raw(Pool<RawManager>),
    Trait(Arc<dyn CacheBackend>),
    Typed(Cache),
}

struct Ctx {
    keys: Vec<String>,
    raw_keys: Vec<String>,
    value: Bytes,
    text: String,
}

impl Client {
    async fn run(&self, op: Op, i: usize, ctx: &Ctx) {
        let k = i % KEYS;
        match (self, op) {
            (Client::Raw(p), Op::Get) => {
                let c = p.get().await.unwrap();
                let rows = c
                    .client
                    .query(&c.get, &[&NAMESPACE, &ctx.raw_keys[k]])
                    .await
                    .unwrap();
                let _ = rows.first().map(|r| Bytes::from(r.get::<_, Vec<u8>>(0)));
            }
            (Client::Raw(p), Op::Set) => {
                let c = p.get().await.unwrap();
                c.client
                    .query(
                        &c.set,
                        &[&NAMESPACE, &ctx.raw_keys[k], &&ctx.value[..], &None::<i64>],
                    )
                    .await
                    .unwrap();
            }
            (Client::Trait(b), Op::Get) => {
                b.get(&ctx.keys[k]).await.unwrap();
            }
            (Client::Trait(b), Op::Set) => {
                b.set(&ctx.keys[k], ctx.value.clone(), Expiry::Never)
                    .await
                    .unwrap();
            }
            (Client::Typed(c), Op::Get) => {
                let _: Option<String> = c.get(&ctx.keys[k]).await.unwrap();
            }
            (Client::Typed(c), Op::Set) => {
                c.set(&ctx.keys[k], &ctx.text, Expiry::Never).await.unwrap();
            }
        }
    }
}

/// (p50, p99) in microseconds at one task.
async fn latency(client: &Client, op: Op, ctx: &Ctx) -> (f64, f64) {
    let mut lat = Vec::with_capacity(LAT_OPS);
    for i in 0..LAT_OPS {
        let t = Instant::now();
        client.run(op, i, ctx).await;
        lat.push(t.elapsed());
    }
    lat.sort();
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    (us(lat[LAT_OPS / 2]), us(lat[LAT_OPS * 99 / 100]))
}

/// Operations per second with 64 concurrent tasks.
async fn throughput(client: &Client, op: Op, ctx: &Arc<Ctx>) -> f64 {
    let start = Instant::now();
    let tasks: Vec<_> = (0..TPUT_TASKS)
        .map(|t| {
            let (c, ctx) = (client.clone(), ctx.clone());
            tokio::spawn(async move {
                for i in 0..TPUT_OPS / TPUT_TASKS {
                    c.run(op, t * 7919 + i, &ctx).await;
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    (TPUT_OPS / TPUT_TASKS * TPUT_TASKS) as f64 / start.elapsed().as_secs_f64()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
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
    let typed = Cache::from_arc(backend.clone());
    let raw = Pool::builder()
        .max_size(16)
        .min_idle(Some(1))
        .test_on_check_out(false)
        .build(RawManager(url.parse().unwrap()))
        .await
        .unwrap();
    let ctx = Arc::new(Ctx {
        keys: (0..KEYS).map(|i| format!("key:{i}")).collect(),
        raw_keys: (0..KEYS).map(|i| format!("raw:{i}")).collect(),
        value: Bytes::from(vec![b'x'; 100]),
        text: "x".repeat(98),
    });
    let clients = [
        ("raw tokio-postgres (bb8, 16)", Client::Raw(raw)),
        (
            "PostgresBackend via dyn trait",
            Client::Trait(backend.clone()),
        ),
        ("typed Cache<String>", Client::Typed(typed)),
    ];
    for (_, c) in &clients {
        for i in 0..KEYS {
            c.run(Op::Set, i, &ctx).await;
        }
        // Open every pooled connection before measuring.
        throughput(c, Op::Get, &ctx).await;
    }
    println!("PostgreSQL: 100-byte values, medians of {ROUNDS} interleaved rounds");
    for op in [Op::Get, Op::Set] {
        let name = if op == Op::Get { "GET" } else { "SET" };
        let mut p50 = vec![vec![]; clients.len()];
        let mut p99 = vec![vec![]; clients.len()];
        let mut tput = vec![vec![]; clients.len()];
        for round in 0..ROUNDS {
            for j in 0..clients.len() {
                let i = (round + j) % clients.len();
                let (a, b) = latency(&clients[i].1, op, &ctx).await;
                p50[i].push(a);
                p99[i].push(b);
                tput[i].push(throughput(&clients[i].1, op, &ctx).await);
            }
        }
        println!("{name}");
        for (i, (label, _)) in clients.iter().enumerate() {
            let ratio = if i == 0 {
                String::new()
            } else {
                let lat = median((0..ROUNDS).map(|r| p50[i][r] / p50[0][r]).collect());
                let tp = median((0..ROUNDS).map(|r| tput[i][r] / tput[0][r]).collect());
                format!("  p50 {lat:.3}x raw (target <= 1.05x), throughput {tp:.3}x raw (target >= 0.95x)")
            };
            println!(
                "  {label:<30} p50 {:>6.1} us  p99 {:>6.1} us  64 tasks {:>7.0} ops/s{ratio}",
                median(p50[i].clone()),
                median(p99[i].clone()),
                median(tput[i].clone())
            );
        }
    }
    statement_styles(&url, &ctx).await;
    backend.clear().await.unwrap();
}

/// Why every pooled connection prepares the statements: GET on one connection, an
/// unnamed statement with typed parameters (`query_typed`: parse + bind + execute in
/// one round trip, planned every time) against a statement prepared once.
async fn statement_styles(url: &str, ctx: &Arc<Ctx>) {
    let (client, conn) = tokio_postgres::connect(url, NoTls).await.unwrap();
    tokio::spawn(conn);
    let client = Arc::new(client);
    let prepared = client
        .prepare_typed(GET, &[Type::TEXT, Type::TEXT])
        .await
        .unwrap();
    let ctx = ctx.clone();
    let run = move |typed: bool, i: usize| {
        let (client, prepared, ctx) = (client.clone(), prepared.clone(), ctx.clone());
        async move {
            let key = &ctx.raw_keys[i % KEYS];
            let rows = if typed {
                client
                    .query_typed(GET, &[(&NAMESPACE, Type::TEXT), (key, Type::TEXT)])
                    .await
            } else {
                client.query(&prepared, &[&NAMESPACE, key]).await
            };
            assert_eq!(rows.unwrap().len(), 1);
        }
    };
    let mut p50 = [vec![], vec![]];
    let mut tput = [vec![], vec![]];
    for round in 0..ROUNDS {
        for j in 0..2 {
            let style = (round + j) % 2;
            let mut lat = Vec::with_capacity(LAT_OPS);
            for i in 0..LAT_OPS {
                let t = Instant::now();
                run(style == 0, i).await;
                lat.push(t.elapsed().as_secs_f64() * 1e6);
            }
            p50[style].push(median(lat));
            let start = Instant::now();
            let tasks: Vec<_> = (0..TPUT_TASKS)
                .map(|t| {
                    let run = run.clone();
                    tokio::spawn(async move {
                        for i in 0..TPUT_OPS / TPUT_TASKS {
                            run(style == 0, t * 7919 + i).await;
                        }
                    })
                })
                .collect();
            for t in tasks {
                t.await.unwrap();
            }
            tput[style]
                .push((TPUT_OPS / TPUT_TASKS * TPUT_TASKS) as f64 / start.elapsed().as_secs_f64());
        }
    }
    println!("GET on one connection, by statement style");
    for (style, label) in ["query_typed (unnamed)", "prepared once"]
        .iter()
        .enumerate()
    {
        let ratio = (0..ROUNDS).map(|r| p50[style][r] / p50[0][r]).collect();
        let tp = (0..ROUNDS).map(|r| tput[style][r] / tput[0][r]).collect();
        println!(
            "  {label:<30} p50 {:>6.1} us  64 tasks {:>7.0} ops/s  p50 {:.3}x, throughput {:.3}x query_typed",
            median(p50[style].clone()),
            median(tput[style].clone()),
            median(ratio),
            median(tp)
        );
    }
}
