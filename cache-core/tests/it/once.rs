//! Get-or-compute's store-agnostic rules (`conformance_tests::suite_once!`: single
//! flight, errors, panics, skip, fail-open, compute timeouts, early refresh), run once
//! here on the memory backend instead of by every backend's suite.

use cache_core::{async_trait, CacheBackend};
use cache_memory::MemoryBackend;
use conformance_tests::Harness;
use std::sync::Arc;

/// One store per test; every namespace asked for shares it.
struct Memory(MemoryBackend);

#[async_trait]
impl Harness for Memory {
    async fn backend(&self, namespace: &str) -> Arc<dyn CacheBackend> {
        Arc::new(self.0.with_namespace(namespace).expect("valid namespace"))
    }
}

fn memory() -> Memory {
    Memory(MemoryBackend::builder().build().expect("default config"))
}

conformance_tests::suite_once!(memory());
