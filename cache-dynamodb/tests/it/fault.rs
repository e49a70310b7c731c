//! Kill the server (a moto of this test's own) during a loop of get-or-compute calls
//! and start it again: every call returns its computed value while it is down, plain
//! `get` fails within the timeout, and caching resumes within a second. moto keeps its
//! tables in memory, so the restart makes the table again (as a real outage would not
//! need).

use crate::common;
use cache_core::Cache;
use conformance_tests::servers::OwnProcess;
use std::time::Duration;

/// Create the table from a thread of its own (the restart hook is synchronous).
fn create_table(builder: &cache_dynamodb::DynamoBuilder) {
    let builder = builder.clone();
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(builder.create_table())
    })
    .join()
    .unwrap()
    .expect("the table is made again after the restart");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamodb_killed_and_restarted_during_get_or_compute() {
    let moto = common::env("CACHE_TEST_DYNAMODB_SERVER");
    let port = OwnProcess::free_port();
    let server = std::cell::RefCell::new(OwnProcess::start(
        &moto,
        &["-H", "127.0.0.1", "-p", &port.to_string()],
        port,
    ));
    let timeout = Duration::from_millis(300);
    let builder = common::builder_at(&format!("http://127.0.0.1:{port}"))
        .table("fault")
        .namespace("fault")
        .timeout(timeout)
        .connect_timeout(Duration::from_secs(5));
    create_table(&builder);
    let cache = Cache::builder(builder.clone().build().await.unwrap())
        .store_timeout(timeout)
        .build();
    let report = conformance_tests::scenarios::fault_cycle(
        &cache,
        timeout,
        timeout * 3,
        || server.borrow_mut().kill(),
        || {
            server.borrow_mut().restart();
            create_table(&builder);
        },
    )
    .await;
    eprintln!("{report:?}");
}
