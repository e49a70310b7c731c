//! Kill the server (a SecantusDB of this test's own) during a loop of get-or-compute
//! calls and start it again: every call returns its computed value while it is down,
//! plain `get` fails within the timeout, and caching resumes within a second.

use crate::common;
use cache_core::Cache;
use cache_mongodb::MongoBuilder;
use conformance_tests::servers::OwnProcess;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mongodb_killed_and_restarted_during_get_or_compute() {
    let server = std::cell::RefCell::new(common::own_server(OwnProcess::free_port()));
    let port = server.borrow().port;
    let timeout = Duration::from_millis(300);
    let backend = MongoBuilder::new(format!("mongodb://127.0.0.1:{port}/fault"))
        .namespace("fault")
        .timeout(timeout)
        .connect_timeout(Duration::from_secs(5))
        .build()
        .await
        .unwrap();
    let cache = Cache::builder(backend).store_timeout(timeout).build();
    let report = conformance_tests::scenarios::fault_cycle(
        &cache,
        timeout,
        timeout * 3,
        || server.borrow_mut().kill(),
        || server.borrow_mut().restart(),
    )
    .await;
    eprintln!("{report:?}");
}
