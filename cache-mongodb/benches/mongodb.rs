//! `MongoBackend` through the trait and the typed `Cache`, against the raw `mongodb`
//! driver (its own pool, the same settings) running the same calls on the same
//! collection and server, in one run: `bash scripts/bench.sh mongodb` (or, with the
//! server up, `cargo bench -p cache-mongodb --bench mongodb`). The loop is
//! `conformance_tests::bench`. The test server is SecantusDB, written in Python: the
//! ratios mean more than the absolute numbers.

use cache_core::{Cache, CacheBackend};
use cache_mongodb::MongoBuilder;
use conformance_tests::bench::{compare, raw_key, value, Op, Settings, Subject};
use mongodb::bson::{doc, spec::BinarySubtype, Binary, Bson, Document};
use std::sync::Arc;
use std::time::Duration;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let url = std::env::var("CACHE_TEST_MONGODB_URL").unwrap_or_else(|_| {
        panic!("CACHE_TEST_MONGODB_URL is not set: run `bash scripts/bench.sh mongodb`, or `bash scripts/servers.sh start mongodb` and `eval \"$(bash scripts/servers.sh env mongodb)\"`")
    });
    let backend = MongoBuilder::new(url.clone())
        .namespace("bench")
        .collection("bench_entries")
        .timeout(Duration::from_secs(10))
        .build()
        .await
        .unwrap();
    let backend: Arc<dyn CacheBackend> = Arc::new(backend);
    let mut options = mongodb::options::ClientOptions::parse(&url).await.unwrap();
    options.max_pool_size = Some(16);
    options.min_pool_size = Some(4);
    options.max_connecting = Some(8);
    let raw = mongodb::Client::with_options(options)
        .unwrap()
        .database("cache_test")
        .collection::<Document>("bench_entries");
    let v = value();
    let subjects = [
        Subject::new("raw mongodb driver", move |op, i| {
            let (raw, v) = (raw.clone(), v.clone());
            async move {
                let id = format!("bench:{}", raw_key(i));
                match op {
                    Op::Get => drop(raw.find_one(doc! { "_id": id }).await.unwrap()),
                    Op::Set => drop(
                        raw.replace_one(
                            doc! { "_id": &id },
                            doc! {
                                "ns": "bench",
                                "v": Binary { subtype: BinarySubtype::Generic, bytes: v.to_vec() },
                                "exp": Bson::Null,
                            },
                        )
                        .upsert(true)
                        .await
                        .unwrap(),
                    ),
                }
            }
        }),
        Subject::backend("MongoBackend via dyn trait", backend.clone()),
        Subject::typed("typed Cache<String>", Cache::from_arc(backend.clone())),
    ];
    let settings = Settings {
        lat_ops: 500,
        tput_ops: 5_000,
        rounds: 3,
        ..Settings::default()
    };
    compare(
        &format!("MongoDB (SecantusDB) at {url}"),
        settings,
        &subjects,
    )
    .await;
    backend.clear().await.unwrap();
}
