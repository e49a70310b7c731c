//! Credentials the service refuses are a `Config` error at `build()`. moto checks
//! credentials only with its IAM emulation on (`INITIAL_NO_AUTH_ACTION_COUNT=0`), so
//! this test runs a moto of its own with it. The variable is given to that server
//! alone (through `env`), never set on this test process: the other tests of the
//! binary start motos of their own too, which must not check credentials.

use crate::common;
use cache_core::ErrorKind;
use conformance_tests::servers::OwnProcess;
use std::time::Duration;

#[tokio::test]
async fn refused_credentials_are_a_config_error() {
    let moto = common::env("CACHE_TEST_DYNAMODB_SERVER");
    let port = OwnProcess::free_port();
    let _server = OwnProcess::start(
        "env",
        &[
            "INITIAL_NO_AUTH_ACTION_COUNT=0",
            &moto,
            "-H",
            "127.0.0.1",
            "-p",
            &port.to_string(),
        ],
        port,
    );
    let err = common::builder_at(&format!("http://127.0.0.1:{port}"))
        .static_credentials("AKIDNOSUCHKEY", "wrong-secret")
        .table("t_auth")
        .connect_timeout(Duration::from_secs(5))
        .build()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config, "{err}");
    assert!(err.to_string().contains("credentials"), "{err}");
    assert!(!err.to_string().contains("wrong-secret"), "{err}");
}
