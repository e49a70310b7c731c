//! The whole conformance suite on the in-memory backend, and again with a circuit
//! breaker in front of it (the breaker must change nothing while the store answers).

use cache_core::{async_trait, BreakerConfig, CacheBackend, CircuitBreaker};
use cache_memory::MemoryBackend;
use conformance_tests::Harness;
use std::sync::Arc;

/// One store per test; every namespace asked for shares it.
struct MemoryHarness {
    store: MemoryBackend,
}

impl MemoryHarness {
    fn new() -> Self {
        let store = MemoryBackend::builder()
            .max_value_size(4 * 1024 * 1024)
            .build()
            .expect("default memory config is valid");
        MemoryHarness { store }
    }
}

#[async_trait]
impl Harness for MemoryHarness {
    async fn backend(&self, namespace: &str) -> Arc<dyn CacheBackend> {
        Arc::new(
            self.store
                .with_namespace(namespace)
                .expect("valid namespace"),
        )
    }
}

conformance_tests::suite!(MemoryHarness::new());

/// The same store behind a [`CircuitBreaker`].
struct BreakerHarness(MemoryHarness);

#[async_trait]
impl Harness for BreakerHarness {
    async fn backend(&self, namespace: &str) -> Arc<dyn CacheBackend> {
        Arc::new(CircuitBreaker::new(
            self.0.backend(namespace).await,
            BreakerConfig::default(),
        ))
    }
}

conformance_tests::suite!(mod behind_breaker, BreakerHarness(MemoryHarness::new()));
