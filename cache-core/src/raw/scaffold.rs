//! Backend scaffolding: what every backend crate's builder, handle and settings write
//! the same way, written once as (hidden) exported macros, so a backend crate writes
//! only what differs. This workspace's backends use them; so may yours.
//!
//! Each macro documents the fields it expects: a builder holds its settings at
//! `self.<path>`, a backend handle holds them at `self.config` (with a `namespace`
//! field) and its [`Capabilities`](crate::Capabilities) at `self.caps`.

/// The setters of a backend builder whose `self.<path>` is its settings, a `$cfg`:
/// one method a setting, documented "See [`$cfg::field`]." (rustdoc links it).
///
/// `builder_setters! { <path>: <Config>; item, item, ... }` inside `impl Builder`,
/// where an item is:
/// - `from_config`: `from_config(config)`, the builder's defaults with these settings;
/// - `field(arg: Type)` sets the field to `arg`, `field(arg: Type) = expr` to `expr`
///   (`expr` reads `arg`); doc comments before it follow the "See" line;
/// - a setting every backend spells alike, by its name alone: `namespace`
///   (`impl Into<String>`), `timeout`, `connect_timeout`, `max_clock_skew`
///   (`Duration`), `max_value_size` (`usize`, bytes), `pool_size` (`u32`);
/// - `test_clock_offset_ms => field`: the hidden tests-only shift of the backend's
///   clock, kept in `self.field` (an `i64` of milliseconds).
#[doc(hidden)]
#[macro_export]
macro_rules! builder_setters {
    (@value $arg:ident) => { $arg };
    (@value $arg:ident = $value:expr) => { $value };
    (@items [$($path:ident).+] $cfg:ident; $(,)?) => {};
    (@items [$($path:ident).+] $cfg:ident; from_config $(, $($rest:tt)*)?) => {
        /// Start from a full configuration.
        pub fn from_config(config: $cfg) -> Self {
            let mut builder = Self::default();
            builder.$($path).+ = config;
            builder
        }
        $crate::builder_setters!(@items [$($path).+] $cfg; $($($rest)*)?);
    };
    (@items [$($path:ident).+] $cfg:ident; test_clock_offset_ms => $field:ident
        $(, $($rest:tt)*)?) => {
        /// Tests only: run this backend's clock `offset_ms` milliseconds ahead (negative:
        /// behind) of the system's, to play a client whose clock is off.
        #[doc(hidden)]
        pub fn test_clock_offset_ms(mut self, offset_ms: i64) -> Self {
            self.$field = offset_ms;
            self
        }
        $crate::builder_setters!(@items [$($path).+] $cfg; $($($rest)*)?);
    };
    (@items [$($path:ident).+] $cfg:ident; namespace $(, $($rest:tt)*)?) => {
        $crate::builder_setters!(@items [$($path).+] $cfg;
            namespace(namespace: impl Into<String>) = namespace.into() $(, $($rest)*)?);
    };
    (@items [$($path:ident).+] $cfg:ident; timeout $(, $($rest:tt)*)?) => {
        $crate::builder_setters!(@items [$($path).+] $cfg;
            timeout(timeout: ::std::time::Duration) $(, $($rest)*)?);
    };
    (@items [$($path:ident).+] $cfg:ident; connect_timeout $(, $($rest:tt)*)?) => {
        $crate::builder_setters!(@items [$($path).+] $cfg;
            connect_timeout(timeout: ::std::time::Duration) $(, $($rest)*)?);
    };
    (@items [$($path:ident).+] $cfg:ident; max_clock_skew $(, $($rest:tt)*)?) => {
        $crate::builder_setters!(@items [$($path).+] $cfg;
            max_clock_skew(skew: ::std::time::Duration) $(, $($rest)*)?);
    };
    (@items [$($path:ident).+] $cfg:ident; max_value_size $(, $($rest:tt)*)?) => {
        $crate::builder_setters!(@items [$($path).+] $cfg;
            max_value_size(bytes: usize) $(, $($rest)*)?);
    };
    (@items [$($path:ident).+] $cfg:ident; pool_size $(, $($rest:tt)*)?) => {
        $crate::builder_setters!(@items [$($path).+] $cfg; pool_size(n: u32) $(, $($rest)*)?);
    };
    (@items [$($path:ident).+] $cfg:ident;
        $(#[$attr:meta])* $field:ident($arg:ident: $ty:ty) $(= $value:expr)?
        $(, $($rest:tt)*)?) => {
        #[doc = concat!("See [`", stringify!($cfg), "::", stringify!($field), "`].")]
        $(#[$attr])*
        pub fn $field(mut self, $arg: $ty) -> Self {
            self.$($path).+.$field = $crate::builder_setters!(@value $arg $(= $value)?);
            self
        }
        $crate::builder_setters!(@items [$($path).+] $cfg; $($($rest)*)?);
    };
    ($($path:ident).+ : $cfg:ident; $($items:tt)*) => {
        $crate::builder_setters!(@items [$($path).+] $cfg; $($items)*);
    };
}

/// `impl BackendBuilder for $builder` of a builder whose `self.<path>` is its
/// settings: the capabilities are `$caps(&self.<path>)` (the function the backend
/// builds its own with), the namespace is the settings' `namespace`, and `build` is
/// the builder's own `build()`.
///
/// `impl_backend_builder!(<path>: Builder => Backend, capabilities_fn);`
#[doc(hidden)]
#[macro_export]
macro_rules! impl_backend_builder {
    ($($path:ident).+ : $builder:ident => $backend:ident, $caps:path) => {
        impl $crate::BackendBuilder for $builder {
            type Backend = $backend;

            fn capabilities(&self) -> $crate::Capabilities {
                $caps(&self.$($path).+)
            }

            fn namespace(&self) -> &str {
                &self.$($path).+.namespace
            }

            fn build(
                self,
            ) -> impl ::std::future::Future<Output = $crate::Result<$backend>> + Send {
                $builder::build(self)
            }
        }
    };
}

/// The items every backend handle whose settings, a `$cfg` with a `namespace`, are at
/// `self.config` writes alike: `Debug` (the settings alone, whose own `Debug` hides
/// secrets), `builder()` (a `$builder` with the defaults), `namespace()` and, when
/// asked, `with_namespace`.
///
/// ```text
/// backend_handle! {
///     Backend: Builder, Config;
///     /// Another backend on the same client with its own namespace.
///     with_namespace: on_driver(driver.clone(), config, clock),
/// }
/// ```
///
/// `with_namespace(namespace)` checks the namespace, copies the settings with it and
/// returns `Self::on_driver(self.driver.clone(), config, self.clock)`: the named
/// constructor, with a clone of the shared field, the new settings, and copies of the
/// fields named after them.
#[doc(hidden)]
#[macro_export]
macro_rules! backend_handle {
    ($backend:ident: $builder:ident, $cfg:ident
        $(; $(#[$doc:meta])*
            with_namespace: $on:ident($shared:ident.clone(), config $(, $copied:ident)*) $(,)?)?
    ) => {
        impl ::std::fmt::Debug for $backend {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.debug_struct(stringify!($backend))
                    .field("config", &self.config)
                    .finish()
            }
        }

        impl $backend {
            #[doc = concat!("A builder with the defaults of [`", stringify!($cfg), "`].")]
            pub fn builder() -> $builder {
                <$builder>::default()
            }

            /// This backend's namespace.
            pub fn namespace(&self) -> &str {
                &self.config.namespace
            }

            $(
            $(#[$doc])*
            pub fn with_namespace(&self, namespace: &str) -> $crate::Result<$backend> {
                let name = $crate::CacheBackend::capabilities(self).name;
                $crate::raw::validate_namespace(name, namespace)?;
                let mut config = self.config.clone();
                config.namespace = namespace.to_owned();
                Ok(Self::$on(self.$shared.clone(), config $(, self.$copied)*))
            }
            )?
        }
    };
}

/// The two items of `impl CacheBackend` that every backend writes alike:
/// `capabilities()` returns `self.$caps` (built once, with the backend) and
/// `namespace()` the handle's own `namespace()`.
///
/// `backend_identity!(caps);` inside the `#[async_trait] impl CacheBackend` block.
#[doc(hidden)]
#[macro_export]
macro_rules! backend_identity {
    ($caps:ident) => {
        fn capabilities(&self) -> $crate::Capabilities {
            self.$caps
        }

        fn namespace(&self) -> &str {
            Self::namespace(self)
        }
    };
}

/// `impl Debug` for a backend's settings `$cfg`: its fields in the order given, each
/// as it is, or, written `field => show`, as `show(&self.field)` (for instance
/// [`redact_url`](crate::raw::redact_url), so that no password reaches a log).
///
/// `config_debug!(Config { url => redact_url, namespace, timeout });`
#[doc(hidden)]
#[macro_export]
macro_rules! config_debug {
    (@show $value:expr) => { $value };
    (@show $value:expr, $show:expr) => {{
        let show = $show;
        show($value)
    }};
    ($cfg:ident { $($field:ident $(=> $show:expr)?),* $(,)? }) => {
        impl ::std::fmt::Debug for $cfg {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.debug_struct(stringify!($cfg))
                    $(.field(
                        stringify!($field),
                        &$crate::config_debug!(@show &self.$field $(, $show)?),
                    ))*
                    .finish()
            }
        }
    };
}

#[cfg(test)]
mod tests {
    //! A backend crate's scaffolding, written with the macros, on a store that holds
    //! nothing.

    use crate::raw::{redact_url, validate_namespace};
    use crate::{
        async_trait, BackendBuilder, Bytes, CacheBackend, Capabilities, ErrorKind, Expiry,
        LockToken, Result,
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
                namespace: crate::raw::DEFAULT_NAMESPACE.into(),
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

    crate::config_debug!(DemoConfig {
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
        crate::builder_setters! { config: DemoConfig;
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

    crate::impl_backend_builder!(config: DemoBuilder => DemoBackend, DemoConfig::capabilities);

    struct DemoBackend {
        driver: Arc<()>,
        caps: Capabilities,
        config: DemoConfig,
        clock_offset_ms: i64,
    }

    crate::backend_handle! {
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
        crate::backend_identity!(caps);

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
}
