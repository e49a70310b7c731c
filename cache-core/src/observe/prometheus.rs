//! [`CacheStats`] in the Prometheus text exposition format (version 0.0.4), for a
//! `/metrics` endpoint without a `metrics` recorder.

use super::{kind_label, CacheStats, KINDS};
use std::fmt::Write;

impl CacheStats {
    /// These counters in the Prometheus text format, each sample with `labels`
    /// (`&[("cache", "users")]`, or none); see [`prometheus_text`] for several
    /// caches in one answer, and for the names.
    ///
    /// ```
    /// # async fn demo(cache: cache_core::Cache) {
    /// let text = cache.stats().to_prometheus(&[("cache", "users")]);
    /// assert!(text.contains("cache_hits_total{cache=\"users\"} "));
    /// # }
    /// ```
    pub fn to_prometheus(&self, labels: &[(&str, &str)]) -> String {
        prometheus_text([(self, labels)])
    }
}

/// Several caches' [`CacheStats`] in one Prometheus text answer: each metric's `HELP`
/// and `TYPE` once, then one sample per cache with its labels (two caches must
/// differ in at least one label).
///
/// The names are those of the `metrics` facade's series (see [the module
/// docs](crate::observe)), so dashboards read either; serve one or the other, not
/// both: `cache_hits_total`, `cache_misses_total`, `cache_coalesced_total`,
/// `cache_stale_served_total`, `cache_computes_total`, `cache_compute_errors_total`,
/// `cache_compute_seconds_total` (the facade's histogram `cache_compute_seconds` has
/// it as `_sum`) and `cache_errors_total{kind}` (every kind, zeros included). A
/// label name that is not one (`[a-zA-Z_][a-zA-Z0-9_]*`) has its other characters
/// replaced by `_`; values are escaped.
///
/// ```
/// # async fn demo(users: cache_core::Cache, http: cache_core::Cache) {
/// let (u, h) = (users.stats(), http.stats());
/// let text = cache_core::observe::prometheus_text([
///     (&u, &[("cache", "users")][..]),
///     (&h, &[("cache", "http")][..]),
/// ]);
/// assert_eq!(text.matches("# TYPE cache_hits_total counter").count(), 1);
/// # }
/// ```
pub fn prometheus_text<'a, I>(caches: I) -> String
where
    I: IntoIterator<Item = (&'a CacheStats, &'a [(&'a str, &'a str)])>,
{
    let caches: Vec<(&CacheStats, String)> = caches
        .into_iter()
        .map(|(stats, labels)| (stats, label_text(labels)))
        .collect();
    let counters: [Family; 7] = [
        ("cache_hits_total", "Reads that found a fresh value.", |s| {
            s.hits.to_string()
        }),
        (
            "cache_misses_total",
            "Reads that found no fresh value and took no other caller's compute.",
            |s| s.misses.to_string(),
        ),
        (
            "cache_coalesced_total",
            "Get-or-compute calls that took another caller's compute instead of computing.",
            |s| s.coalesced.to_string(),
        ),
        (
            "cache_stale_served_total",
            "Stale or fail-safe values served instead of a fresh one.",
            |s| s.stale_served.to_string(),
        ),
        (
            "cache_computes_total",
            "Computes run by get-or-compute.",
            |s| s.computes.to_string(),
        ),
        (
            "cache_compute_errors_total",
            "Computes that failed or timed out.",
            |s| s.compute_errors.to_string(),
        ),
        (
            "cache_compute_seconds_total",
            "Time spent in computes, in seconds.",
            |s| s.compute_time.as_secs_f64().to_string(),
        ),
    ];
    let mut out = String::new();
    for (name, help, value) in counters {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
        for (stats, labels) in &caches {
            let _ = writeln!(out, "{name}{} {}", braced(labels), value(stats));
        }
    }
    let name = "cache_errors_total";
    let _ = writeln!(
        out,
        "# HELP {name} Failed cache calls by kind.\n# TYPE {name} counter"
    );
    for (stats, labels) in &caches {
        for kind in KINDS {
            let kind = kind_label(kind);
            let n = stats
                .errors
                .iter()
                .find(|(k, _)| *k == kind)
                .map_or(0, |(_, n)| *n);
            let sep = if labels.is_empty() { "" } else { "," };
            let _ = writeln!(out, "{name}{{{labels}{sep}kind=\"{kind}\"}} {n}");
        }
    }
    out
}

/// A counter's name, help text and value.
type Family = (&'static str, &'static str, fn(&CacheStats) -> String);

/// `name="value",...` with names made valid and values escaped.
fn label_text(labels: &[(&str, &str)]) -> String {
    let mut out = String::new();
    for (i, (name, value)) in labels.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        for (j, c) in name.chars().enumerate() {
            let ok = c.is_ascii_alphabetic() || c == '_' || (j > 0 && c.is_ascii_digit());
            out.push(if ok { c } else { '_' });
        }
        if name.is_empty() {
            out.push('_');
        }
        out.push_str("=\"");
        for c in value.chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '"' => out.push_str("\\\""),
                '\n' => out.push_str("\\n"),
                c => out.push(c),
            }
        }
        out.push('"');
    }
    out
}

fn braced(labels: &str) -> String {
    if labels.is_empty() {
        String::new()
    } else {
        format!("{{{labels}}}")
    }
}
