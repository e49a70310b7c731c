//! Settings of the PostgreSQL backend.

use crate::driver::MAX_KEY_LEN;
use crate::error::BACKEND;
use cache_core::Capabilities;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Duration;

/// Settings of [`PostgresBackend`](crate::PostgresBackend), loadable with serde.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct PostgresConfig {
    /// Connection string: a URL (`postgres://user:password@host:port/db`) or
    /// `key=value` pairs (`host=... user=... password=... dbname=...`).
    /// Default `postgres://postgres@127.0.0.1:5432/postgres`.
    pub dsn: String,
    /// Namespace of this backend's rows (the `namespace` column). Default `"default"`.
    pub namespace: String,
    /// Schema of the table. Default `public`. Any name works: it is quoted, never pasted.
    pub schema: String,
    /// Table holding every namespace's entries; created if absent. Default `cache_entries`.
    pub table: String,
    /// Create the table `UNLOGGED` (default): faster writes, but emptied after a crash
    /// and not replicated. `false` makes an ordinary, logged table.
    pub unlogged: bool,
    /// Most connections in the pool. Default 16.
    pub pool_size: u32,
    /// Bound on each call (waiting for a connection included); past it the call fails
    /// with a `Timeout` error. Default 1 s.
    #[serde(with = "cache_core::raw::millis")]
    pub timeout: Duration,
    /// Bound on opening a connection. Default 5 s.
    #[serde(with = "cache_core::raw::millis")]
    pub connect_timeout: Duration,
    /// How often expired rows are deleted in the background (bounded batches);
    /// `None` turns the sweep off (expired rows are never returned either way).
    /// Default 60 s.
    #[serde(with = "cache_core::raw::opt_millis")]
    pub sweep_interval: Option<Duration>,
    /// Largest value accepted, in bytes; larger is `InvalidInput`. Default 16 MiB
    /// (PostgreSQL's `bytea` takes up to 1 GiB).
    pub max_value_size: usize,
    /// PEM file of the CA certificates that sign the server's certificate, for a
    /// private CA. Default: the system's trusted roots. Needs the `tls` feature; when
    /// TLS is used (`sslmode=prefer`, the default, and the server offers it, or
    /// `sslmode=require`), the certificate and the host name are always verified.
    pub tls_ca_file: Option<PathBuf>,
}

impl Default for PostgresConfig {
    fn default() -> Self {
        PostgresConfig {
            dsn: "postgres://postgres@127.0.0.1:5432/postgres".into(),
            namespace: cache_core::raw::DEFAULT_NAMESPACE.into(),
            schema: "public".into(),
            table: "cache_entries".into(),
            unlogged: true,
            pool_size: 16,
            timeout: Duration::from_secs(1),
            connect_timeout: Duration::from_secs(5),
            sweep_interval: Some(Duration::from_secs(60)),
            max_value_size: 16 * 1024 * 1024,
            tls_ca_file: None,
        }
    }
}

impl PostgresConfig {
    /// What a backend of these settings can do (known before it connects).
    pub(crate) fn capabilities(&self) -> Capabilities {
        Capabilities::networked(BACKEND, Some(MAX_KEY_LEN), self.max_value_size)
    }
}

/// The DSN with its password replaced by `***`, for Debug and logs. Handles both
/// the URL form and the `key=value` form.
pub(crate) fn redact_dsn(dsn: &str) -> String {
    if dsn.contains("://") {
        return cache_core::raw::redact_url(dsn);
    }
    // key=value pairs; a quoted value may hold spaces.
    let mut out = String::new();
    let mut rest = dsn.trim_start();
    while !rest.is_empty() {
        let Some(eq) = rest.find('=') else {
            out.push_str(rest);
            break;
        };
        let key = rest[..eq].trim();
        let after = rest[eq + 1..].trim_start();
        let (value, next) = if let Some(quoted) = after.strip_prefix('\'') {
            let mut end = quoted.len();
            let mut escaped = false;
            for (i, c) in quoted.char_indices() {
                match c {
                    '\\' if !escaped => escaped = true,
                    '\'' if !escaped => {
                        end = i;
                        break;
                    }
                    _ => escaped = false,
                }
            }
            (
                &after[..(end + 2).min(after.len())],
                &quoted[(end + 1).min(quoted.len())..],
            )
        } else {
            let end = after.find(char::is_whitespace).unwrap_or(after.len());
            (&after[..end], &after[end..])
        };
        if !out.is_empty() {
            out.push(' ');
        }
        if key.eq_ignore_ascii_case("password") {
            out.push_str(&format!("{key}=***"));
        } else {
            out.push_str(&format!("{key}={value}"));
        }
        rest = next.trim_start();
    }
    out
}

cache_core::config_debug!(PostgresConfig {
    dsn => redact_dsn,
    namespace, schema, table, unlogged, pool_size, timeout, connect_timeout, sweep_interval,
    max_value_size, tls_ca_file,
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_passwords() {
        for (dsn, secret) in [
            ("postgres://app:s3cret@db.internal:5432/cache", "s3cret"),
            (
                "postgresql://app:p%40ss@h/db?sslmode=require&password=hunter2",
                "hunter2",
            ),
            ("host=db user=app password=s3cret dbname=cache", "s3cret"),
            ("host=db password='with space' dbname=cache", "with space"),
        ] {
            let cfg = PostgresConfig {
                dsn: dsn.into(),
                ..PostgresConfig::default()
            };
            let dbg = format!("{cfg:?}");
            assert!(!dbg.contains(secret), "{dbg}");
            assert!(dbg.contains("***"), "{dbg}");
        }
        assert_eq!(
            redact_dsn("postgres://app:x@h:5432/db"),
            "postgres://app:***@h:5432/db"
        );
        assert_eq!(
            redact_dsn("host=h password='a b' dbname=d"),
            "host=h password=*** dbname=d"
        );
        assert_eq!(redact_dsn("postgres://h/db"), "postgres://h/db");
    }
}
