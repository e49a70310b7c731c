//! One [`Server`] spec per store.

use super::{ready, Server};

/// Redis (`CACHE_TEST_REDIS_URL`, `redis://127.0.0.1:PORT`).
pub const REDIS: Server = Server {
    store: "redis",
    var: "CACHE_TEST_REDIS_URL",
    image: ("redis", "7-alpine"),
    container_env: &[],
    container_cmd: &[],
    port: 6379,
    host_port_var: None,
    ready: ready::redis,
    address: |port| format!("redis://127.0.0.1:{port}"),
};

/// PostgreSQL (`CACHE_TEST_POSTGRES_URL`, `postgres://user:password@127.0.0.1:PORT/db`).
pub const POSTGRES: Server = Server {
    store: "postgres",
    var: "CACHE_TEST_POSTGRES_URL",
    image: ("postgres", "16-alpine"),
    container_env: &[("POSTGRES_PASSWORD", "postgres")],
    container_cmd: &[],
    port: 5432,
    host_port_var: None,
    ready: ready::postgres,
    address: |port| format!("postgres://postgres:postgres@127.0.0.1:{port}/postgres"),
};

/// Memcached (`CACHE_TEST_MEMCACHED_URL`, `127.0.0.1:PORT`).
pub const MEMCACHED: Server = Server {
    store: "memcached",
    var: "CACHE_TEST_MEMCACHED_URL",
    image: ("memcached", "1.6-alpine"),
    container_env: &[],
    container_cmd: &[],
    port: 11211,
    host_port_var: None,
    ready: ready::memcached,
    address: |port| format!("127.0.0.1:{port}"),
};

/// MongoDB (`CACHE_TEST_MONGODB_URL`, `mongodb://127.0.0.1:PORT/db`).
pub const MONGODB: Server = Server {
    store: "mongodb",
    var: "CACHE_TEST_MONGODB_URL",
    image: ("mongo", "8"),
    container_env: &[],
    container_cmd: &[],
    port: 27017,
    host_port_var: None,
    ready: ready::mongodb,
    address: |port| format!("mongodb://127.0.0.1:{port}/cache_test"),
};

/// DynamoDB (`CACHE_TEST_DYNAMODB_URL`, the endpoint `http://127.0.0.1:PORT`).
pub const DYNAMODB: Server = Server {
    store: "dynamodb",
    var: "CACHE_TEST_DYNAMODB_URL",
    image: ("amazon/dynamodb-local", "latest"),
    container_env: &[],
    container_cmd: &[],
    port: 8000,
    host_port_var: None,
    ready: ready::http,
    address: |port| format!("http://127.0.0.1:{port}"),
};

/// Firestore's emulator (`CACHE_TEST_FIRESTORE_HOST`, `127.0.0.1:PORT`; the firestore
/// crate reads `FIRESTORE_EMULATOR_HOST`, which the scripts set to the same).
pub const FIRESTORE: Server = Server {
    store: "firestore",
    var: "CACHE_TEST_FIRESTORE_HOST",
    image: (
        "gcr.io/google.com/cloudsdktool/google-cloud-cli",
        "emulators",
    ),
    container_env: &[],
    container_cmd: &[
        "gcloud",
        "emulators",
        "firestore",
        "start",
        "--host-port=0.0.0.0:8080",
    ],
    port: 8080,
    host_port_var: Some("FIRESTORE_EMULATOR_HOST"),
    ready: ready::grpc,
    address: |port| format!("127.0.0.1:{port}"),
};
