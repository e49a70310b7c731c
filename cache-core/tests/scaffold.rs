//! cache-core's backend scaffolding macros, used as a backend crate uses them, on a
//! store that holds nothing.

use cache_core::raw::{redact_url, validate_namespace};
use cache_core::{
    async_trait, BackendBuilder, Bytes, CacheBackend, Capabilities, ErrorKind, Expiry, LockToken,
    Result,
};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

const BACKEND: &str = "demo";

#[derive(Clone, PartialEq)]
struct DemoConfig {
    url: String,
    mirrors: Vec<String>,
    namespace: String,
    timeout: Duration,
    connect_timeout: Duration,
    max_value_size: usize,
    pool_size: u32,
    max_clock_skew: Duration,
    ca_file: Option<PathBuf>,
}

impl Default for DemoConfig {
    fn default() -> Self {
        DemoConfig {
            url: "demo://127.0.0.1".into(),
            mirrors: Vec::new(),
            namespace: cache_core::raw::DEFAULT_NAMESPACE.into(),
            timeout: Duration::from_secs(1),
            connect_timeout: Duration::from_secs(5),
            max_value_size: 1024,
            pool_size: 4,
            max_clock_skew: Duration::from_secs(1),
            ca_file: None,
        }
    }
}

impl DemoConfig {
    fn capabilities(&self) -> Capabilities {
        Capabilities::networked(BACKEND, Some(250), self.max_value_size)
    }
}

cache_core::config_debug!(DemoConfig {
    url => redact_url,
    mirrors => |urls: &Vec<String>| urls.iter().map(|u| redact_url(u)).collect::<Vec<_>>(),
    namespace, timeout,
});

#[derive(Debug, Clone, Default)]
struct DemoBuilder {
    config: DemoConfig,
    clock_offset_ms: i64,
}

impl DemoBuilder {
    cache_core::builder_setters! { config: DemoConfig;
        from_config,
        url(url: impl Into<String>) = url.into(),
        namespace, timeout, connect_timeout, max_value_size, pool_size, max_clock_skew,
        /// A second line of doc.
        ca_file(path: impl Into<PathBuf>) = Some(path.into()),
        test_clock_offset_ms => clock_offset_ms,
    }

    async fn build(self) -> Result<DemoBackend> {
        validate_namespace(BACKEND, &self.config.namespace)?;
        Ok(DemoBackend::on_driver(
            Arc::new(()),
            self.config,
            self.clock_offset_ms,
        ))
    }
}

cache_core::impl_backend_builder!(config: DemoBuilder => DemoBackend, DemoConfig::capabilities);

struct DemoBackend {
    driver: Arc<()>,
    caps: Capabilities,
    config: DemoConfig,
    clock_offset_ms: i64,
}

cache_core::backend_handle! {
    DemoBackend: DemoBuilder, DemoConfig;
    /// Another backend on the same driver.
    with_namespace: on_driver(driver.clone(), config, clock_offset_ms),
}

impl DemoBackend {
    fn on_driver(driver: Arc<()>, config: DemoConfig, clock_offset_ms: i64) -> Self {
        DemoBackend {
            driver,
            caps: config.capabilities(),
            config,
            clock_offset_ms,
        }
    }
}

#[async_trait]
impl CacheBackend for DemoBackend {
    cache_core::backend_identity!(caps);

    async fn get(&self, _: &str) -> Result<Option<Bytes>> {
        Ok(None)
    }
    async fn set(&self, _: &str, _: Bytes, _: Expiry) -> Result<()> {
        Ok(())
    }
    async fn delete(&self, _: &str) -> Result<bool> {
        Ok(false)
    }
    async fn clear(&self) -> Result<()> {
        Ok(())
    }
    async fn set_if_absent(&self, _: &str, _: Bytes, _: Expiry) -> Result<bool> {
        Ok(false)
    }
    async fn acquire_lock(&self, _: &str, _: Duration) -> Result<Option<LockToken>> {
        Ok(None)
    }
    async fn release_lock(&self, _: &str, _: &LockToken) -> Result<bool> {
        Ok(false)
    }
    async fn close(&self) -> Result<()> {
        Ok(())
    }
}

#[test]
fn setters_set_their_field() {
    let b = DemoBuilder::default()
        .url("demo://h")
        .namespace("ns")
        .timeout(Duration::from_millis(7))
        .connect_timeout(Duration::from_millis(8))
        .max_value_size(9)
        .pool_size(10)
        .max_clock_skew(Duration::from_millis(11))
        .ca_file("/ca.pem")
        .test_clock_offset_ms(-12);
    let want = DemoConfig {
        url: "demo://h".into(),
        namespace: "ns".into(),
        timeout: Duration::from_millis(7),
        connect_timeout: Duration::from_millis(8),
        max_value_size: 9,
        pool_size: 10,
        max_clock_skew: Duration::from_millis(11),
        ca_file: Some("/ca.pem".into()),
        ..DemoConfig::default()
    };
    assert!(b.config == want, "{:?}", b.config);
    assert_eq!(b.clock_offset_ms, -12);
    let from = DemoBuilder::from_config(want.clone());
    assert!(from.config == want);
    assert_eq!(from.clock_offset_ms, 0);
}

#[tokio::test]
async fn builder_and_handle() {
    let b = DemoBuilder::default().namespace("app").max_value_size(99);
    assert_eq!(BackendBuilder::namespace(&b), "app");
    assert_eq!(BackendBuilder::capabilities(&b), b.config.capabilities());
    let backend = BackendBuilder::build(b.test_clock_offset_ms(5))
        .await
        .unwrap();
    assert_eq!(backend.namespace(), "app");
    assert_eq!(CacheBackend::namespace(&backend), "app");
    assert_eq!(
        CacheBackend::capabilities(&backend).max_value_size,
        Some(99)
    );
    assert!(DemoBackend::builder().config == DemoConfig::default());

    let other = backend.with_namespace("other").unwrap();
    assert_eq!(other.namespace(), "other");
    assert_eq!(backend.namespace(), "app");
    assert!(Arc::ptr_eq(&other.driver, &backend.driver));
    assert_eq!(other.clock_offset_ms, 5);
    assert_eq!(other.caps, backend.caps);
    let bad = backend.with_namespace("a:b").unwrap_err();
    assert_eq!(bad.kind(), ErrorKind::Config);
    assert_eq!(bad.backend(), Some(BACKEND));
}

#[test]
fn debug_shows_the_fields_given_and_hides_passwords() {
    let config = DemoConfig {
        url: "demo://app:s3cret@h".into(),
        mirrors: vec!["demo://:hunter2@m".into()],
        ..DemoConfig::default()
    };
    let shown = format!("{config:?}");
    assert_eq!(
        shown,
        r#"DemoConfig { url: "demo://app:***@h", mirrors: ["demo://:***@m"], namespace: "default", timeout: 1s }"#
    );
    let backend = DemoBackend::on_driver(Arc::new(()), config, 0);
    assert_eq!(
        format!("{backend:?}"),
        format!("DemoBackend {{ config: {shown} }}")
    );
}
