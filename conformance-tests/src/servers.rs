//! Where networked tests find their servers.
//!
//! First choice: the `CACHE_TEST_*` variables that `scripts/servers.sh` exports after
//! starting real servers on 127.0.0.1 (no Docker needed). With the `testcontainers`
//! feature and a Docker engine, a missing variable starts the server in a container
//! instead. Otherwise the test fails with a message that says how to start the server:
//! a networked test never passes without its server.

/// The variable's value, or `None`.
pub fn from_env(var: &str) -> Option<String> {
    std::env::var(var).ok().filter(|v| !v.is_empty())
}

/// Panic with the message that tells how to start the test servers.
pub fn missing(var: &str) -> ! {
    panic!(
        "{var} is not set: this test needs a real server. Run `bash scripts/test.sh`, or \
         `bash scripts/servers.sh start && eval \"$(bash scripts/servers.sh env)\"` first{}.",
        if cfg!(feature = "testcontainers") {
            ""
        } else {
            " (or enable the `testcontainers` feature where a Docker engine runs)"
        }
    )
}

/// URL of a Redis server for tests: `CACHE_TEST_REDIS_URL`, or a container.
pub async fn redis_url() -> String {
    if let Some(url) = from_env("CACHE_TEST_REDIS_URL") {
        return url;
    }
    #[cfg(feature = "testcontainers")]
    {
        containers::redis().await
    }
    #[cfg(not(feature = "testcontainers"))]
    missing("CACHE_TEST_REDIS_URL")
}

#[cfg(feature = "testcontainers")]
mod containers {
    use std::sync::OnceLock;
    use testcontainers::core::{IntoContainerPort, WaitFor};
    use testcontainers::runners::AsyncRunner;
    use testcontainers::GenericImage;

    static REDIS: OnceLock<String> = OnceLock::new();

    /// One Redis container per test process, kept alive by a thread of its own
    /// (each `#[tokio::test]` has its own runtime, which would end the container).
    pub(super) async fn redis() -> String {
        tokio::task::spawn_blocking(|| REDIS.get_or_init(start_redis).clone())
            .await
            .expect("container start-up thread")
    }

    fn start_redis() -> String {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let started = GenericImage::new("redis", "7-alpine")
                    .with_exposed_port(6379.tcp())
                    .with_wait_for(WaitFor::message_on_stdout("Ready to accept connections"))
                    .start()
                    .await;
                match started {
                    Ok(container) => {
                        let port = container
                            .get_host_port_ipv4(6379)
                            .await
                            .expect("mapped port");
                        let _ = tx.send(Ok(format!("redis://127.0.0.1:{port}")));
                        // Keep the container for the life of the test process.
                        std::future::pending::<()>().await;
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e.to_string()));
                    }
                }
            });
        });
        match rx.recv() {
            Ok(Ok(url)) => url,
            Ok(Err(e)) => {
                panic!("cannot start a Redis container ({e}); is a Docker engine running?")
            }
            Err(_) => panic!("the Redis container thread ended before it started"),
        }
    }
}
