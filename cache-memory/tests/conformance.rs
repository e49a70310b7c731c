//! The whole conformance suite on the in-memory backend.

use cache_core::{async_trait, CacheBackend};
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
