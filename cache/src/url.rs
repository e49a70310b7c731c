//! Choosing the store by configuration: a [`Cache`] from a URL (see [`CacheUrl`]).

use cache_core::{BackendBuilder, Cache, CacheBackend, CacheBuilder, Error, ErrorKind, Result};
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

/// The environment variable [`from_env`] and [`CacheUrl::from_env`] read.
pub const CACHE_URL_VAR: &str = "CACHE_URL";

/// The URL [`from_env`] uses when [`CACHE_URL_VAR`] is unset or empty.
pub const DEFAULT_CACHE_URL: &str = "memory:";

/// Connect to the store `url` names and return a [`Cache`] over it (MessagePack
/// values, the builder's defaults). See [`CacheUrl`] for the URL forms, and
/// [`CacheUrl::builder`] to set a default expiry, a circuit breaker and the rest.
///
/// Errors: a URL that is not usable is a [`Config`](ErrorKind::Config) error whose
/// [`source`](std::error::Error::source) is the [`UrlError`] saying why (unknown
/// scheme, feature not enabled, malformed); the store's own errors as its backend's
/// `build()` returns them. No message carries the URL's password.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> cache::Result<()> {
/// use cache::CacheBackend; // for namespace()
/// let cache = cache::from_url("memory:?namespace=app").await?;
/// assert_eq!(cache.backend().namespace(), "app");
/// # Ok(()) }
/// ```
pub async fn from_url(url: &str) -> Result<Cache> {
    CacheUrl::parse(url)?.connect().await
}

/// [`from_url`] of the environment variable `CACHE_URL` ([`CACHE_URL_VAR`]), or of
/// `memory:` when it is unset or empty: the store chosen at deployment, the in-process
/// one in development and tests.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> cache::Result<()> {
/// // CACHE_URL=redis://cache.internal:6379/0?namespace=orders in production.
/// let cache = cache::from_env().await?;
/// # Ok(()) }
/// ```
pub async fn from_env() -> Result<Cache> {
    CacheUrl::from_env()?.connect().await
}

/// A parsed cache URL: which store, where, and in which namespace; nothing is
/// connected until [`connect`](Self::connect), [`builder`](Self::builder) or
/// [`backend`](Self::backend).
///
/// | URL | store | feature of `cache` |
/// |---|---|---|
/// | `memory:` or `memory://` (`?max_entries=N`) | `MemoryBackend`, in this process | `memory` (default) |
/// | `redis://[user][:password@]host[:port][/db]`, `rediss://` (TLS), `redis+unix:///path/to.sock` | one Redis server | `redis` |
/// | `redis+cluster://[user][:password@]host:port,host:port`, `rediss+cluster://` | a Redis Cluster, from its seed nodes | `redis` |
/// | `postgres://` or `postgresql://` (any DSN tokio-postgres reads as a URL) | one PostgreSQL table | `postgres` |
/// | `memcached://host[:port][,host[:port]...]` (port 11211 by default) | one or many memcached servers | `memcached` |
/// | `mongodb://`, `mongodb+srv://` (the driver's connection string) | one MongoDB collection | `mongodb` |
/// | `dynamodb://[table]` (`?region=..&endpoint=..`; table `cache_entries` by default) | one DynamoDB table; credentials from the AWS chain | `dynamodb` |
/// | `firestore://project-id` (`?database=..&collection=..`) | one Firestore collection; Application Default Credentials or `FIRESTORE_EMULATOR_HOST` | `firestore` |
///
/// Every scheme takes `?namespace=name` (removed before the URL reaches the driver);
/// [`CacheUrl::default_namespace`] gives one for URLs without it. The other query
/// parameters of `redis`, `postgres` and `mongodb` URLs go to their drivers as given;
/// the other schemes refuse parameters they do not know.
///
/// Its `Debug` and `Display` show the URL with its passwords replaced by `***`.
///
/// ```
/// use cache::CacheUrl;
/// use std::time::Duration;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> cache::Result<()> {
/// let url = CacheUrl::from_env()? // CACHE_URL, else memory:
///     .default_namespace("orders") // unless the URL says ?namespace=...
///     .lazy(true); // start while the store is down (networked stores)
/// let cache = url
///     .builder()
///     .await?
///     .default_expiry(Duration::from_secs(300))
///     .build();
/// # let _ = cache;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct CacheUrl {
    /// As given, password included: never shown (see [`CacheUrl::redacted`]).
    url: String,
    scheme: String,
    store: Store,
    namespace: Option<String>,
    default_namespace: Option<String>,
    lazy: bool,
}

/// What a URL names, with the `cache`-level parameters taken out.
#[derive(Clone, PartialEq, Eq)]
#[cfg_attr(test, derive(Debug))]
enum Store {
    Memory {
        max_entries: Option<usize>,
    },
    Redis {
        url: String,
    },
    RedisCluster {
        urls: Vec<String>,
    },
    Postgres {
        dsn: String,
    },
    Memcached {
        servers: Vec<String>,
    },
    Mongo {
        uri: String,
    },
    Dynamo {
        table: Option<String>,
        region: Option<String>,
        endpoint: Option<String>,
    },
    Firestore {
        project: String,
        database: Option<String>,
        collection: Option<String>,
    },
}

/// Why a cache URL cannot be used. Messages show the URL with its passwords replaced
/// by `***`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum UrlError {
    /// The scheme is none this crate knows.
    UnknownScheme {
        /// The scheme, lowercased.
        scheme: String,
    },
    /// The scheme's backend is behind a feature of the `cache` crate that is off.
    FeatureDisabled {
        /// The scheme, lowercased.
        scheme: String,
        /// The feature to enable.
        feature: &'static str,
    },
    /// The URL does not have the shape its scheme needs.
    Malformed {
        /// The URL, passwords redacted.
        url: String,
        /// What is wrong, and how to write it.
        reason: String,
    },
    /// The environment variable holds bytes that are not UTF-8.
    NotUnicode {
        /// The variable.
        var: String,
    },
}

/// Every scheme: its backend's name (the feature that enables it).
const SCHEMES: &[(&str, &str)] = &[
    ("memory", "memory"),
    ("redis", "redis"),
    ("rediss", "redis"),
    ("redis+unix", "redis"),
    ("redis+cluster", "redis"),
    ("rediss+cluster", "redis"),
    ("postgres", "postgres"),
    ("postgresql", "postgres"),
    ("memcached", "memcached"),
    ("mongodb", "mongodb"),
    ("mongodb+srv", "mongodb"),
    ("dynamodb", "dynamodb"),
    ("firestore", "firestore"),
];

const SCHEME_LIST: &str = "memory:, redis://, rediss://, redis+unix://, redis+cluster://, \
     postgres://, memcached://, mongodb://, mongodb+srv://, dynamodb://, firestore://";

/// Whether this build of the crate has the feature.
#[allow(clippy::match_like_matches_macro)] // one arm per feature reads better
fn enabled(feature: &str) -> bool {
    match feature {
        "memory" => cfg!(feature = "memory"),
        "redis" => cfg!(feature = "redis"),
        "postgres" => cfg!(feature = "postgres"),
        "memcached" => cfg!(feature = "memcached"),
        "mongodb" => cfg!(feature = "mongodb"),
        "dynamodb" => cfg!(feature = "dynamodb"),
        "firestore" => cfg!(feature = "firestore"),
        _ => false,
    }
}

impl CacheUrl {
    /// Parse `url` (no I/O). See [`CacheUrl`] for the forms;
    /// errors say what is wrong: an unknown scheme, a scheme whose feature of the
    /// `cache` crate is off, or a URL of the wrong shape.
    pub fn parse(url: &str) -> std::result::Result<CacheUrl, UrlError> {
        parse_with(url, enabled)
    }

    /// Parse the environment variable `CACHE_URL` ([`CACHE_URL_VAR`]); `memory:` when
    /// it is unset or empty.
    pub fn from_env() -> std::result::Result<CacheUrl, UrlError> {
        Self::from_var(CACHE_URL_VAR)
    }

    /// Parse the environment variable `var`; `memory:` when it is unset or empty.
    pub fn from_var(var: &str) -> std::result::Result<CacheUrl, UrlError> {
        match std::env::var(var) {
            Ok(url) if !url.trim().is_empty() => Self::parse(url.trim()),
            Ok(_) | Err(std::env::VarError::NotPresent) => Self::parse(DEFAULT_CACHE_URL),
            Err(std::env::VarError::NotUnicode(_)) => Err(UrlError::NotUnicode {
                var: var.to_owned(),
            }),
        }
    }

    /// The namespace to use when the URL has no `?namespace=` (without either, the
    /// backend's default, `"default"`). The URL wins, so that a deployment can move
    /// an application to a namespace of its own without a code change.
    pub fn default_namespace(mut self, namespace: impl Into<String>) -> Self {
        self.default_namespace = Some(namespace.into());
        self
    }

    /// Lazy start for networked stores (default off): [`backend`](Self::backend)
    /// returns at once and connects in the background
    /// ([`BackendBuilder::build_lazy`]), so the application starts while the store is
    /// down and get-or-compute computes without it until it is up. Off, connecting
    /// fails at start-up when the store cannot be reached. No effect on `memory:`.
    pub fn lazy(mut self, lazy: bool) -> Self {
        self.lazy = lazy;
        self
    }

    /// The scheme, lowercased (`"redis"`, `"postgresql"`, ...).
    pub fn scheme(&self) -> &str {
        &self.scheme
    }

    /// The backend it names: `"memory"`, `"redis"`, `"postgres"`, `"memcached"`,
    /// `"mongodb"`, `"dynamodb"` or `"firestore"` (also the feature it needs).
    pub fn backend_name(&self) -> &'static str {
        backend_of(&self.scheme).unwrap_or("unknown")
    }

    /// The namespace the backend will use, if the URL or
    /// [`default_namespace`](Self::default_namespace) gives one.
    pub fn namespace(&self) -> Option<&str> {
        self.namespace
            .as_deref()
            .or(self.default_namespace.as_deref())
    }

    /// The URL with its passwords replaced by `***`, for logs.
    pub fn redacted(&self) -> String {
        shown(&self.url)
    }

    /// Connect (or, with [`lazy`](Self::lazy), start connecting) and return the
    /// backend, to wrap in your own layers or [`CacheBuilder::from_arc`].
    pub async fn backend(&self) -> Result<Arc<dyn CacheBackend>> {
        connect_store(&self.store, self.namespace(), self.lazy).await
    }

    /// [`backend`](Self::backend) in a [`CacheBuilder`]: set a default expiry, a
    /// circuit breaker or get-or-compute's defaults, then `build()`.
    pub async fn builder(&self) -> Result<CacheBuilder> {
        Ok(CacheBuilder::from_arc(self.backend().await?))
    }

    /// [`builder`](Self::builder) with its defaults, built.
    pub async fn connect(&self) -> Result<Cache> {
        Ok(self.builder().await?.build())
    }
}

impl FromStr for CacheUrl {
    type Err = UrlError;

    fn from_str(s: &str) -> std::result::Result<Self, UrlError> {
        Self::parse(s)
    }
}

impl fmt::Debug for CacheUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CacheUrl")
            .field("url", &self.redacted())
            .field("backend", &self.backend_name())
            .field("namespace", &self.namespace())
            .field("lazy", &self.lazy)
            .finish()
    }
}

impl fmt::Display for CacheUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl fmt::Display for UrlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UrlError::UnknownScheme { scheme } => write!(
                f,
                "unknown cache URL scheme `{scheme}:`; use one of {SCHEME_LIST}"
            ),
            UrlError::FeatureDisabled { scheme, feature } => write!(
                f,
                "the cache URL scheme `{scheme}:` needs the `{feature}` feature of the `cache` \
                 crate: enable it (cache = {{ features = [\"{feature}\"] }} in Cargo.toml)"
            ),
            UrlError::Malformed { url, reason } => {
                write!(f, "malformed cache URL `{url}`: {reason}")
            }
            UrlError::NotUnicode { var } => write!(
                f,
                "the environment variable {var} is not valid UTF-8; set it to a cache URL \
                 such as memory: or redis://host:6379"
            ),
        }
    }
}

impl std::error::Error for UrlError {}

impl From<UrlError> for Error {
    /// A [`Config`](ErrorKind::Config) error (from the scheme's backend, or `"url"`)
    /// whose source is the `UrlError`.
    fn from(e: UrlError) -> Self {
        let backend: &'static str = match &e {
            UrlError::FeatureDisabled { feature, .. } => feature,
            UrlError::Malformed { url, .. } => url
                .split_once(':')
                .and_then(|(s, _)| backend_of(&s.to_ascii_lowercase()))
                .unwrap_or("url"),
            _ => "url",
        };
        Error::new(ErrorKind::Config, backend, "the cache URL cannot be used").with_source(e)
    }
}

fn backend_of(scheme: &str) -> Option<&'static str> {
    SCHEMES.iter().find(|(s, _)| *s == scheme).map(|(_, b)| *b)
}

/// `url` as messages may show it: passwords redacted; a URL without `//` (which
/// [`redact_url`](cache_core::raw::redact_url) cannot read) shows its scheme only,
/// but for `memory:`, which holds no secret.
fn shown(url: &str) -> String {
    if url.contains("://") {
        return cache_core::raw::redact_url(url);
    }
    match url.split_once(':') {
        Some((scheme, _)) if scheme.eq_ignore_ascii_case("memory") => url.to_owned(),
        Some((scheme, "")) => format!("{scheme}:"),
        Some((scheme, _)) => format!("{scheme}:..."),
        None => "<no scheme>".to_owned(),
    }
}

/// One query parameter: as written (kept for the driver), and its name decoded.
struct Param<'a> {
    raw: &'a str,
    name: String,
    value: Option<String>,
}

fn parse_with(
    url: &str,
    enabled: impl Fn(&str) -> bool,
) -> std::result::Result<CacheUrl, UrlError> {
    let malformed = |reason: String| UrlError::Malformed {
        url: shown(url),
        reason,
    };
    let Some((raw_scheme, rest)) = url.split_once(':') else {
        return Err(malformed(format!(
            "no scheme; a cache URL starts with one of {SCHEME_LIST}"
        )));
    };
    let scheme = raw_scheme.to_ascii_lowercase();
    let scheme_ok = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
    if !scheme_ok {
        return Err(malformed(format!(
            "no scheme; a cache URL starts with one of {SCHEME_LIST}"
        )));
    }
    let Some(feature) = backend_of(&scheme) else {
        return Err(UrlError::UnknownScheme { scheme });
    };
    if !enabled(feature) {
        return Err(UrlError::FeatureDisabled { scheme, feature });
    }
    let (base, query) = match rest.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (rest, None),
    };
    let mut params = Vec::new();
    for raw in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (name, value) = match raw.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (raw, None),
        };
        let decode = |s: &str| {
            percent_decode(s).ok_or_else(|| {
                malformed(format!(
                    "the query parameter `{}` has a bad %-escape",
                    shown_param(raw)
                ))
            })
        };
        params.push(Param {
            raw,
            name: decode(name)?,
            value: value.map(decode).transpose()?,
        });
    }
    // The `cache` crate's own parameters leave the list; the rest stays for drivers.
    let mut take = |name: &str| -> std::result::Result<Option<String>, UrlError> {
        let mut found = None;
        let mut err = None;
        params.retain(|p| {
            if p.name != name {
                return true;
            }
            match (&found, &p.value) {
                (None, Some(v)) if !v.is_empty() => found = Some(v.clone()),
                (Some(_), _) => err = Some(format!("`{name}` is given twice")),
                (None, _) => err = Some(format!("`{name}` needs a value: {name}=...")),
            }
            false
        });
        match err {
            Some(reason) => Err(malformed(reason)),
            None => Ok(found),
        }
    };
    let namespace = take("namespace")?;
    let authority = base.strip_prefix("//");
    let needs_slashes = |form: &str| {
        malformed(format!(
            "expected `{scheme}://...` ({form}); the part after `{scheme}:` must start with //"
        ))
    };
    let store = match feature {
        "memory" => {
            if !matches!(base, "" | "//") {
                return Err(malformed(
                    "memory: takes no host or path: write memory: or memory://, with \
                     ?namespace=..&max_entries=.. if needed"
                        .into(),
                ));
            }
            let max_entries = take("max_entries")?
                .map(|n| {
                    n.parse::<usize>().map_err(|_| {
                        malformed(format!("max_entries must be a whole number, not `{n}`"))
                    })
                })
                .transpose()?;
            refuse_unknown(&params, "namespace, max_entries", &malformed)?;
            Store::Memory { max_entries }
        }
        "redis" => {
            let Some(authority) = authority else {
                return Err(needs_slashes("redis://host:port"));
            };
            let (hosts, path) = split_path(authority);
            let kept = kept_query(&params);
            if scheme.ends_with("+cluster") {
                let (userinfo, hosts) = match hosts.rsplit_once('@') {
                    Some((u, h)) => (format!("{u}@"), h),
                    None => (String::new(), hosts),
                };
                let node_scheme = scheme.trim_end_matches("+cluster");
                let mut urls = Vec::new();
                for host in hosts.split(',') {
                    if host.is_empty() {
                        return Err(malformed(format!(
                            "a cluster URL lists its seed nodes: {scheme}://host:port,host:port"
                        )));
                    }
                    urls.push(format!("{node_scheme}://{userinfo}{host}{path}{kept}"));
                }
                Store::RedisCluster { urls }
            } else {
                if scheme != "redis+unix" && hosts.rsplit('@').next().unwrap_or("").is_empty() {
                    return Err(malformed(format!(
                        "no host: write {scheme}://host[:port][/db]"
                    )));
                }
                Store::Redis {
                    url: format!("{scheme}:{base}{kept}"),
                }
            }
        }
        "postgres" => {
            if authority.is_none() {
                return Err(needs_slashes("postgres://user:password@host:port/database"));
            }
            Store::Postgres {
                dsn: format!("{scheme}:{base}{}", kept_query(&params)),
            }
        }
        "mongodb" => {
            let Some(authority) = authority else {
                return Err(needs_slashes("mongodb://host:port/database"));
            };
            if split_path(authority)
                .0
                .rsplit('@')
                .next()
                .unwrap_or("")
                .is_empty()
            {
                return Err(malformed(format!(
                    "no host: write {scheme}://host[:port][/database]"
                )));
            }
            Store::Mongo {
                uri: format!("{scheme}:{base}{}", kept_query(&params)),
            }
        }
        "memcached" => {
            let Some(authority) = authority else {
                return Err(needs_slashes("memcached://host:port,host:port"));
            };
            let (hosts, path) = split_path(authority);
            if !matches!(path, "" | "/") {
                return Err(malformed(
                    "memcached has no databases: remove the path after the servers".into(),
                ));
            }
            if hosts.contains('@') {
                return Err(malformed(
                    "memcached's text protocol has no authentication: remove user:password@".into(),
                ));
            }
            refuse_unknown(&params, "namespace", &malformed)?;
            let mut servers = Vec::new();
            for host in hosts.split(',') {
                servers.push(memcached_server(host).map_err(&malformed)?);
            }
            Store::Memcached { servers }
        }
        "dynamodb" => {
            let Some(authority) = authority else {
                return Err(needs_slashes("dynamodb://table?region=.."));
            };
            let (table, path) = split_path(authority);
            if !matches!(path, "" | "/") || table.contains(['@', ':', ',']) {
                return Err(malformed(
                    "write dynamodb://table (or dynamodb:// for the table cache_entries), \
                     with ?region=..&endpoint=.. if needed; credentials come from the AWS \
                     credential chain, never from the URL"
                        .into(),
                ));
            }
            let region = take("region")?;
            let endpoint = take("endpoint")?;
            refuse_unknown(&params, "namespace, region, endpoint", &malformed)?;
            Store::Dynamo {
                table: (!table.is_empty()).then(|| table.to_owned()),
                region,
                endpoint,
            }
        }
        "firestore" => {
            let Some(authority) = authority else {
                return Err(needs_slashes("firestore://project-id"));
            };
            let (project, path) = split_path(authority);
            if project.is_empty() || !matches!(path, "" | "/") || project.contains(['@', ':']) {
                return Err(malformed(
                    "write firestore://project-id, with ?database=..&collection=.. if \
                     needed; credentials come from Application Default Credentials (or \
                     FIRESTORE_EMULATOR_HOST), never from the URL"
                        .into(),
                ));
            }
            let database = take("database")?;
            let collection = take("collection")?;
            refuse_unknown(&params, "namespace, database, collection", &malformed)?;
            Store::Firestore {
                project: project.to_owned(),
                database,
                collection,
            }
        }
        _ => unreachable!("every scheme of SCHEMES is handled"),
    };
    Ok(CacheUrl {
        url: url.to_owned(),
        scheme,
        store,
        namespace,
        default_namespace: None,
        lazy: false,
    })
}

/// `authority[/path]` split at the path (the path keeps its `/`).
fn split_path(s: &str) -> (&str, &str) {
    match s.find('/') {
        Some(i) => s.split_at(i),
        None => (s, ""),
    }
}

/// The parameters left for the driver, as written: `?a=1&b=2`, or nothing.
fn kept_query(params: &[Param<'_>]) -> String {
    if params.is_empty() {
        return String::new();
    }
    let raw: Vec<&str> = params.iter().map(|p| p.raw).collect();
    format!("?{}", raw.join("&"))
}

fn refuse_unknown(
    params: &[Param<'_>],
    known: &str,
    malformed: &impl Fn(String) -> UrlError,
) -> std::result::Result<(), UrlError> {
    match params.first() {
        None => Ok(()),
        Some(p) => Err(malformed(format!(
            "unknown parameter `{}`; this scheme takes {known}",
            shown_param(p.raw)
        ))),
    }
}

/// A parameter's name as messages may show it (never its value: it may be secret).
fn shown_param(raw: &str) -> &str {
    raw.split_once('=').map_or(raw, |(n, _)| n)
}

/// `host[:port]` of a memcached URL, as the backend takes it (`host:port`).
fn memcached_server(host: &str) -> std::result::Result<String, String> {
    let bad = || format!("`{host}` is not host[:port]; write memcached://host:port,host:port");
    if host.is_empty() {
        return Err(bad());
    }
    let port = if let Some(v6) = host.strip_prefix('[') {
        // [::1] or [::1]:11211
        let (_, after) = v6.split_once(']').ok_or_else(bad)?;
        match after {
            "" => None,
            p => Some(p.strip_prefix(':').ok_or_else(bad)?),
        }
    } else {
        host.split_once(':').map(|(_, p)| p)
    };
    match port {
        None => Ok(format!("{host}:11211")),
        Some(p) if p.parse::<u16>().is_ok_and(|p| p > 0) => Ok(host.to_owned()),
        Some(_) => Err(bad()),
    }
}

/// `%XX` escapes decoded; `None` for a bad escape or bytes that are not UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The backend for `store`, in `namespace` (the backend's default without one).
async fn connect_store(
    store: &Store,
    namespace: Option<&str>,
    lazy: bool,
) -> Result<Arc<dyn CacheBackend>> {
    /// Build `builder` eagerly, or lazily when asked.
    #[allow(dead_code)] // unused when no networked feature is on
    async fn build<B: BackendBuilder>(b: B, lazy: bool) -> Result<Arc<dyn CacheBackend>> {
        Ok(if lazy {
            Arc::new(b.build_lazy()?)
        } else {
            Arc::new(b.build().await?)
        })
    }
    let _ = (namespace, lazy); // unread when no feature is on, or memory alone
    match store {
        #[cfg(feature = "memory")]
        Store::Memory { max_entries } => {
            let mut b = cache_memory::MemoryBackend::builder();
            if let Some(ns) = namespace {
                b = b.namespace(ns);
            }
            if let Some(n) = max_entries {
                b = b.max_entries(*n);
            }
            Ok(Arc::new(b.build()?))
        }
        #[cfg(feature = "redis")]
        Store::Redis { url } => {
            let mut b = cache_redis::RedisBuilder::new(url.clone());
            if let Some(ns) = namespace {
                b = b.namespace(ns);
            }
            build(b, lazy).await
        }
        #[cfg(feature = "redis")]
        Store::RedisCluster { urls } => {
            let mut b = cache_redis::RedisBuilder::cluster(urls.iter().cloned());
            if let Some(ns) = namespace {
                b = b.namespace(ns);
            }
            build(b, lazy).await
        }
        #[cfg(feature = "postgres")]
        Store::Postgres { dsn } => {
            let mut b = cache_postgres::PostgresBuilder::new(dsn.clone());
            if let Some(ns) = namespace {
                b = b.namespace(ns);
            }
            build(b, lazy).await
        }
        #[cfg(feature = "memcached")]
        Store::Memcached { servers } => {
            let mut b =
                cache_memcached::MemcachedBackend::builder().servers(servers.iter().cloned());
            if let Some(ns) = namespace {
                b = b.namespace(ns);
            }
            build(b, lazy).await
        }
        #[cfg(feature = "mongodb")]
        Store::Mongo { uri } => {
            let mut b = cache_mongodb::MongoBuilder::new(uri.clone());
            if let Some(ns) = namespace {
                b = b.namespace(ns);
            }
            build(b, lazy).await
        }
        #[cfg(feature = "dynamodb")]
        Store::Dynamo {
            table,
            region,
            endpoint,
        } => {
            let mut b = cache_dynamodb::DynamoBackend::builder();
            if let Some(ns) = namespace {
                b = b.namespace(ns);
            }
            if let Some(t) = table {
                b = b.table(t.clone());
            }
            if let Some(r) = region {
                b = b.region(r.clone());
            }
            if let Some(e) = endpoint {
                b = b.endpoint(e.clone());
            }
            build(b, lazy).await
        }
        #[cfg(feature = "firestore")]
        Store::Firestore {
            project,
            database,
            collection,
        } => {
            let mut b = cache_firestore::FirestoreBackend::builder().project_id(project.clone());
            if let Some(ns) = namespace {
                b = b.namespace(ns);
            }
            if let Some(d) = database {
                b = b.database_id(d.clone());
            }
            if let Some(c) = collection {
                b = b.collection(c.clone());
            }
            build(b, lazy).await
        }
        #[allow(unreachable_patterns)]
        other => {
            // Parsing refused schemes whose feature is off; a CacheUrl cannot get here.
            let name = other.backend();
            Err(UrlError::FeatureDisabled {
                scheme: name.to_owned(),
                feature: name,
            }
            .into())
        }
    }
}

impl Store {
    fn backend(&self) -> &'static str {
        match self {
            Store::Memory { .. } => "memory",
            Store::Redis { .. } | Store::RedisCluster { .. } => "redis",
            Store::Postgres { .. } => "postgres",
            Store::Memcached { .. } => "memcached",
            Store::Mongo { .. } => "mongodb",
            Store::Dynamo { .. } => "dynamodb",
            Store::Firestore { .. } => "firestore",
        }
    }
}

#[cfg(test)]
mod tests;
