//! Lazy start against the real server: fails fast while the store is unreachable,
//! connects in the background when it is there.

use crate::common;
use cache_core::BackendBuilder;
use conformance_tests::{random_namespace, scenarios, servers::OwnProcess};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lazy_start_fails_fast_while_down_and_connects_when_up() {
    let port = OwnProcess::free_port();
    let down = common::builder_at(&format!("http://127.0.0.1:{port}"))
        .connect_timeout(Duration::from_millis(300))
        .build_lazy()
        .unwrap();
    let up = common::builder(&random_namespace()).await;
    // A missing table is a Config error, for good: make it first.
    up.create_table().await.unwrap();
    let up = up.build_lazy().unwrap();
    let took = scenarios::lazy_start(down, up).await;
    eprintln!("connected lazily after {took:?}");
}
