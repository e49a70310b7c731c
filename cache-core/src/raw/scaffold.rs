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
