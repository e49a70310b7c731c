//! The rules of RFC 9111 (HTTP caching) and RFC 9110 §13 (conditional requests) as
//! pure functions: directives, age, freshness, what a shared cache may store and reuse.

use http::{header, HeaderMap, StatusCode};
use std::time::{Duration, UNIX_EPOCH};

/// Delta-seconds that overflow are read as this (RFC 9111 §1.2.2).
const DELTA_MAX: u64 = 2_147_483_648;

/// The `Cache-Control` directives of a request or a response that this cache reads.
/// A directive given twice keeps its first value (RFC 9111 §4.2.1).
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct Directives {
    pub no_store: bool,
    /// `no-cache`, with or without field names (both read as the unqualified form).
    pub no_cache: bool,
    /// `private`, with or without field names (both keep the response out of a shared cache).
    pub private: bool,
    pub public: bool,
    pub must_revalidate: bool,
    pub proxy_revalidate: bool,
    pub must_understand: bool,
    pub only_if_cached: bool,
    pub max_age: Option<u64>,
    pub s_maxage: Option<u64>,
    /// Request `max-stale`; without a value, any staleness (`u64::MAX`).
    pub max_stale: Option<u64>,
    pub min_fresh: Option<u64>,
    pub stale_while_revalidate: Option<u64>,
    pub stale_if_error: Option<u64>,
    /// Read from a valid `CDN-Cache-Control` (RFC 9213): `Cache-Control` and
    /// `Expires` do not count then.
    pub targeted: bool,
}

/// Delta-seconds (RFC 9111 §1.2.2), quoted or not; too large reads as 2^31, anything
/// that is not digits as `None`.
fn delta_seconds(arg: Option<&str>) -> Option<u64> {
    let a = arg?.trim();
    let a = a
        .strip_prefix('"')
        .and_then(|a| a.strip_suffix('"'))
        .unwrap_or(a);
    if a.is_empty() || !a.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(a.parse::<u64>().map_or(DELTA_MAX, |n| n.min(DELTA_MAX)))
}

/// Split a list-valued field on commas that are outside quoted strings.
fn list_items(v: &str) -> Vec<&str> {
    let (mut items, mut start, mut quoted, mut escaped) = (Vec::new(), 0, false, false);
    for (i, c) in v.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            ',' if !quoted => {
                items.push(&v[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    items.push(&v[start..]);
    items
        .into_iter()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect()
}

impl Directives {
    /// The directives of every `Cache-Control` field line of `headers`.
    pub fn of(headers: &HeaderMap) -> Self {
        let mut d = Directives::default();
        for v in headers.get_all(header::CACHE_CONTROL) {
            let Ok(v) = v.to_str() else { continue };
            for item in list_items(v) {
                let (name, arg) = match item.split_once('=') {
                    Some((n, a)) => (n.trim(), Some(a)),
                    None => (item, None),
                };
                let first = |slot: &mut Option<u64>, invalid: Option<u64>| {
                    if slot.is_none() {
                        *slot = delta_seconds(arg).or(invalid);
                    }
                };
                match name.to_ascii_lowercase().as_str() {
                    "no-store" => d.no_store = true,
                    "no-cache" => d.no_cache = true,
                    "private" => d.private = true,
                    "public" => d.public = true,
                    "must-revalidate" => d.must_revalidate = true,
                    "proxy-revalidate" => d.proxy_revalidate = true,
                    "must-understand" => d.must_understand = true,
                    "only-if-cached" => d.only_if_cached = true,
                    // An invalid max-age or s-maxage makes the response stale.
                    "max-age" => first(&mut d.max_age, Some(0)),
                    "s-maxage" => first(&mut d.s_maxage, Some(0)),
                    "max-stale" if d.max_stale.is_none() => {
                        d.max_stale = match arg {
                            None => Some(u64::MAX),
                            Some(_) => delta_seconds(arg),
                        };
                    }
                    "min-fresh" => first(&mut d.min_fresh, None),
                    "stale-while-revalidate" => first(&mut d.stale_while_revalidate, None),
                    "stale-if-error" => first(&mut d.stale_if_error, None),
                    _ => {}
                }
            }
        }
        d
    }

    /// The directives of a response: those of a valid `CDN-Cache-Control` when
    /// `targeted` and the response has one (RFC 9213: then `Cache-Control` and
    /// `Expires` are ignored), else those of `Cache-Control`.
    pub fn of_response(headers: &HeaderMap, targeted: bool) -> Self {
        let cc = Directives::of(headers);
        if targeted {
            if let Some(mut d) = cdn_cache_control(headers) {
                // `private` in Cache-Control still keeps it out of a shared cache:
                // a targeted field added by a layer further out must not share what
                // a handler marked as one user's.
                d.private |= cc.private;
                return d;
            }
        }
        cc
    }

    /// Whether a shared cache may serve the response stale at all (RFC 9111 §4.2.4):
    /// not with `must-revalidate`, `proxy-revalidate`, `s-maxage` or `no-cache`.
    pub fn forbids_stale(&self) -> bool {
        self.must_revalidate || self.proxy_revalidate || self.s_maxage.is_some() || self.no_cache
    }
}

/// An HTTP-date in milliseconds since the epoch; `None` if absent or invalid.
pub(crate) fn date_ms(headers: &HeaderMap, name: &header::HeaderName) -> Option<u64> {
    let v = headers.get(name)?.to_str().ok()?.trim();
    match httpdate::parse_http_date(v) {
        Ok(t) => t
            .duration_since(UNIX_EPOCH)
            .ok()
            .map(|d| d.as_millis() as u64),
        Err(_) => lenient_date(v).map(|s| s.saturating_mul(1000)),
    }
}

/// IMF-fixdate (`Thu, 18 Aug 2050 02:01:18 GMT`) and asctime (`Thu Aug  8 02:01:18
/// 2050`) exactly as laid out, but with names in any case and the weekday not
/// checked, as senders get them wrong. Seconds since the epoch.
fn lenient_date(v: &str) -> Option<u64> {
    const MONTHS: [&str; 12] = [
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ];
    let b = v.as_bytes();
    let digits = |r: std::ops::Range<usize>| -> Option<u64> {
        let part = b.get(r)?;
        part.iter()
            .all(u8::is_ascii_digit)
            .then(|| part.iter().fold(0, |n, d| n * 10 + u64::from(d - b'0')))
    };
    let month = |r: std::ops::Range<usize>| {
        let m = v.get(r)?;
        MONTHS
            .iter()
            .position(|x| x.eq_ignore_ascii_case(m))
            .map(|i| i as u64 + 1)
    };
    let weekday = b
        .get(..3)
        .is_some_and(|w| w.iter().all(u8::is_ascii_alphabetic));
    let time = |at: usize| -> Option<(u64, u64, u64)> {
        (b.get(at + 2) == Some(&b':') && b.get(at + 5) == Some(&b':')).then_some(())?;
        Some((
            digits(at..at + 2)?,
            digits(at + 3..at + 5)?,
            digits(at + 6..at + 8)?,
        ))
    };
    let (day, mon, year, (h, mi, se)) = if b.len() == 29
        && weekday
        && &b[3..5] == b", "
        && b[7] == b' '
        && b[11] == b' '
        && b[16] == b' '
        && b[25] == b' '
        && v[26..].eq_ignore_ascii_case("gmt")
    {
        (digits(5..7)?, month(8..11)?, digits(12..16)?, time(17)?)
    } else if b.len() == 24
        && weekday
        && b[3] == b' '
        && b[7] == b' '
        && b[10] == b' '
        && b[19] == b' '
    {
        let day = if b[8] == b' ' {
            digits(9..10)?
        } else {
            digits(8..10)?
        };
        (day, month(4..7)?, digits(20..24)?, time(11)?)
    } else {
        return None;
    };
    if !(1..=31).contains(&day) || h > 23 || mi > 59 || se > 60 || year < 1970 {
        return None;
    }
    // Days from the civil date (Howard Hinnant's algorithm).
    let (y, m) = if mon <= 2 {
        (year - 1, mon + 9)
    } else {
        (year, mon - 3)
    };
    let era = y / 400;
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + h * 3600 + mi * 60 + se)
}

/// `CDN-Cache-Control` (RFC 9213) as directives: a Structured Field dictionary
/// (RFC 8941); `None` when absent or not a valid dictionary.
fn cdn_cache_control(headers: &HeaderMap) -> Option<Directives> {
    let mut lines = headers.get_all("cdn-cache-control").iter().peekable();
    lines.peek()?;
    let joined: Vec<&str> = lines.map(|v| v.to_str().ok()).collect::<Option<_>>()?;
    let members = sf_dictionary(&joined.join(","))?;
    let mut d = Directives {
        targeted: true,
        ..Directives::default()
    };
    for (key, value) in members {
        let int = match value {
            SfValue::Integer(n) => Some(n.clamp(0, DELTA_MAX as i64) as u64),
            _ => None,
        };
        // Any value but `?0` sets a flag (`private="set-cookie"` keeps it private).
        let flag = !matches!(value, SfValue::False);
        match key.as_str() {
            "no-store" => d.no_store = flag,
            "no-cache" => d.no_cache = flag || d.no_cache,
            "private" => d.private = flag || d.private,
            "public" => d.public = flag,
            "must-revalidate" => d.must_revalidate = flag,
            "proxy-revalidate" => d.proxy_revalidate = flag,
            "max-age" => d.max_age = int,
            "s-maxage" => d.s_maxage = int,
            "stale-while-revalidate" => d.stale_while_revalidate = int,
            "stale-if-error" => d.stale_if_error = int,
            _ => {}
        }
    }
    Some(d)
}

/// A dictionary member's value, as far as cache directives need it.
enum SfValue {
    True,
    False,
    Integer(i64),
    Other,
}

/// Parse a Structured Field dictionary (RFC 8941 §4.2.2), parameters skipped; the
/// last of a repeated key wins. `None` if it is not valid.
fn sf_dictionary(input: &str) -> Option<Vec<(String, SfValue)>> {
    let b = input.as_bytes();
    let mut i = 0;
    let mut out: Vec<(String, SfValue)> = Vec::new();
    let skip_ows = |i: &mut usize| {
        while *i < b.len() && (b[*i] == b' ' || b[*i] == b'\t') {
            *i += 1;
        }
    };
    let key = |i: &mut usize| -> Option<String> {
        let start = *i;
        if *i >= b.len() || !(b[*i].is_ascii_lowercase() || b[*i] == b'*') {
            return None;
        }
        while *i < b.len()
            && (b[*i].is_ascii_lowercase()
                || b[*i].is_ascii_digit()
                || matches!(b[*i], b'_' | b'-' | b'.' | b'*'))
        {
            *i += 1;
        }
        Some(input[start..*i].to_owned())
    };
    let bare = |i: &mut usize| -> Option<SfValue> {
        let c = *b.get(*i)?;
        if c == b'-' || c.is_ascii_digit() {
            let start = *i;
            *i += 1;
            while *i < b.len() && (b[*i].is_ascii_digit() || b[*i] == b'.') {
                *i += 1;
            }
            let text = &input[start..*i];
            if text.contains('.') {
                return text.parse::<f64>().ok().map(|_| SfValue::Other);
            }
            if text.trim_start_matches('-').len() > 15 {
                return None;
            }
            return text.parse::<i64>().ok().map(SfValue::Integer);
        }
        if c == b'"' {
            *i += 1;
            while *i < b.len() {
                match b[*i] {
                    b'\\' => *i += 2,
                    b'"' => {
                        *i += 1;
                        return Some(SfValue::Other);
                    }
                    0x20..=0x7e => *i += 1,
                    _ => return None,
                }
            }
            return None;
        }
        if c == b'?' {
            let v = *b.get(*i + 1)?;
            *i += 2;
            return match v {
                b'0' => Some(SfValue::False),
                b'1' => Some(SfValue::True),
                _ => None,
            };
        }
        if c == b':' {
            *i += 1;
            while *i < b.len() && b[*i] != b':' {
                if !(b[*i].is_ascii_alphanumeric() || matches!(b[*i], b'+' | b'/' | b'=')) {
                    return None;
                }
                *i += 1;
            }
            *i += 1;
            return (*i <= b.len()).then_some(SfValue::Other);
        }
        if c.is_ascii_alphabetic() || c == b'*' {
            while *i < b.len()
                && (b[*i].is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~:/".contains(&b[*i]))
            {
                *i += 1;
            }
            return Some(SfValue::Other);
        }
        None
    };
    skip_ows(&mut i);
    if i == b.len() {
        return Some(out);
    }
    loop {
        let k = key(&mut i)?;
        let v = if b.get(i) == Some(&b'=') {
            i += 1;
            bare(&mut i)?
        } else {
            SfValue::True
        };
        // Parameters: ;key[=bare-item], skipped.
        while b.get(i) == Some(&b';') {
            i += 1;
            while b.get(i) == Some(&b' ') {
                i += 1;
            }
            key(&mut i)?;
            if b.get(i) == Some(&b'=') {
                i += 1;
                bare(&mut i)?;
            }
        }
        out.retain(|(x, _)| *x != k);
        out.push((k, v));
        skip_ows(&mut i);
        if i == b.len() {
            return Some(out);
        }
        if b[i] != b',' {
            return None;
        }
        i += 1;
        skip_ows(&mut i);
        if i == b.len() {
            return None; // a trailing comma
        }
    }
}

/// The received `Age` in seconds: the first member, ignored when invalid (RFC 9111 §5.1).
pub(crate) fn age_field(headers: &HeaderMap) -> u64 {
    headers
        .get(header::AGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| delta_seconds(v.split(',').next()))
        .unwrap_or(0)
}

/// Statuses a cache may store without explicit freshness (RFC 9110 §15.1), minus 206
/// (partial content is not cached here).
pub(crate) fn heuristically_cacheable(status: StatusCode) -> bool {
    matches!(
        status.as_u16(),
        200 | 203 | 204 | 300 | 301 | 308 | 404 | 405 | 410 | 414 | 501
    )
}

/// Statuses this cache understands, for `must-understand` (RFC 9111 §5.2.2.3).
fn understood(status: StatusCode) -> bool {
    matches!(
        status.as_u16(),
        200 | 203 | 204 | 300 | 301 | 302 | 303 | 307 | 308 | 404 | 405 | 410 | 414 | 501
    )
}

/// What a response is to the cache, decided once when it arrives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Storable {
    /// May be stored.
    Yes,
    /// Must not be stored (the reason is for tests and traces).
    No(&'static str),
}

/// The request facts that storing depends on.
pub(crate) struct Asked {
    pub authorization: bool,
    pub cookie: bool,
    pub no_store: bool,
}

impl Asked {
    pub fn of(headers: &HeaderMap) -> Self {
        Asked {
            authorization: headers.contains_key(header::AUTHORIZATION),
            cookie: headers.contains_key(header::COOKIE),
            no_store: Directives::of(headers).no_store,
        }
    }
}

/// Whether a shared cache may store the response to a GET (RFC 9111 §3, §3.5), with
/// this cache's own rules for cookies: a response to a request with `Cookie` is stored
/// only when it says it is shared (`public` or `s-maxage`), and a response that sets a
/// cookie is never stored.
pub(crate) fn storable(
    asked: &Asked,
    status: StatusCode,
    headers: &HeaderMap,
    cc: &Directives,
    allow_default_ttl: bool,
) -> Storable {
    use Storable::No;
    if asked.no_store {
        return No("the request said no-store");
    }
    if !(200..600).contains(&status.as_u16()) || status == StatusCode::PARTIAL_CONTENT {
        return No("status not stored");
    }
    if status == StatusCode::NOT_MODIFIED {
        return No("304 without a stored response");
    }
    if cc.must_understand {
        if !understood(status) {
            return No("must-understand with a status not understood");
        }
    } else if cc.no_store {
        return No("no-store");
    }
    if cc.private {
        return No("private");
    }
    if asked.authorization && !(cc.public || cc.s_maxage.is_some() || cc.must_revalidate) {
        return No("request with Authorization, and the response does not allow sharing");
    }
    if asked.cookie && !(cc.public || cc.s_maxage.is_some()) {
        return No("request with Cookie, and the response is not public");
    }
    if headers.contains_key(header::SET_COOKIE) {
        return No("Set-Cookie");
    }
    if vary_names(headers).is_none() {
        return No("Vary: *");
    }
    let explicit = cc.max_age.is_some()
        || cc.s_maxage.is_some()
        || (!cc.targeted && headers.contains_key(header::EXPIRES))
        || cc.public;
    if explicit || heuristically_cacheable(status) || allow_default_ttl {
        Storable::Yes
    } else {
        No("no freshness information and a status not cacheable by default")
    }
}

/// The request header names a response varies on, lower-case, sorted, deduplicated;
/// `None` for `Vary: *`.
pub(crate) fn vary_names(headers: &HeaderMap) -> Option<Vec<String>> {
    let mut names = Vec::new();
    for v in headers.get_all(header::VARY) {
        let Ok(v) = v.to_str() else { return None };
        for n in v.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            if n == "*" {
                return None;
            }
            names.push(n.to_ascii_lowercase());
        }
    }
    names.sort();
    names.dedup();
    Some(names)
}

/// The normalised values of a request's header `name` (field lines joined, list
/// members trimmed), `None` when absent: what a variant is selected by.
pub(crate) fn selecting_value(headers: &HeaderMap, name: &str) -> Option<String> {
    let mut members: Vec<String> = Vec::new();
    let mut any = false;
    for v in headers.get_all(name) {
        any = true;
        let v = String::from_utf8_lossy(v.as_bytes());
        members.extend(
            v.split(',')
                .map(|m| m.split_whitespace().collect::<Vec<_>>().join(" "))
                .filter(|m| !m.is_empty()),
        );
    }
    any.then(|| members.join(","))
}

/// How long a stored response is fresh, in milliseconds (RFC 9111 §4.2.1): `s-maxage`,
/// then `max-age`, then `Expires` − `Date`; else a heuristic share of the time since
/// `Last-Modified` (when `heuristic` > 0 and the status allows it), else `default`.
pub(crate) fn freshness_ms(
    status: StatusCode,
    headers: &HeaderMap,
    cc: &Directives,
    response_ms: u64,
    heuristic: f64,
    default: Option<Duration>,
) -> u64 {
    if let Some(s) = cc.s_maxage.or(cc.max_age) {
        return s.saturating_mul(1000);
    }
    let date = date_ms(headers, &header::DATE).unwrap_or(response_ms);
    if !cc.targeted && headers.contains_key(header::EXPIRES) {
        // An invalid Expires (such as "0") means already expired.
        return date_ms(headers, &header::EXPIRES).map_or(0, |e| e.saturating_sub(date));
    }
    if heuristically_cacheable(status) || cc.public {
        if heuristic > 0.0 {
            if let Some(lm) = date_ms(headers, &header::LAST_MODIFIED) {
                if lm < date {
                    return ((date - lm) as f64 * heuristic) as u64;
                }
            }
        }
        if let Some(d) = default {
            return d.as_millis() as u64;
        }
    }
    0
}

/// The current age of a stored response in milliseconds (RFC 9111 §4.2.3).
pub(crate) fn current_age_ms(
    date_ms: Option<u64>,
    age_s: u64,
    request_ms: u64,
    response_ms: u64,
    now_ms: u64,
) -> u64 {
    let apparent = date_ms.map_or(0, |d| response_ms.saturating_sub(d));
    let delay = response_ms.saturating_sub(request_ms);
    let corrected = age_s.saturating_mul(1000).saturating_add(delay);
    apparent
        .max(corrected)
        .saturating_add(now_ms.saturating_sub(response_ms))
}

/// The client's conditional headers, kept to be answered from the response it gets.
#[derive(Debug, Default, Clone)]
pub(crate) struct Conditions {
    pub if_none_match: Option<String>,
    pub if_modified_since: Option<u64>,
}

impl Conditions {
    pub fn of(headers: &HeaderMap) -> Self {
        let inm: Vec<&str> = headers
            .get_all(header::IF_NONE_MATCH)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        Conditions {
            if_none_match: (!inm.is_empty()).then(|| inm.join(",")),
            if_modified_since: date_ms(headers, &header::IF_MODIFIED_SINCE),
        }
    }

    /// Whether the answer to a GET or HEAD is `304 Not Modified` (RFC 9110 §13.2.2):
    /// only for a 2xx response; `If-None-Match` (weak comparison, `*` matches any)
    /// decides when present, else `If-Modified-Since` against `Last-Modified` (or,
    /// without one, `Date`).
    pub fn not_modified(&self, status: StatusCode, headers: &HeaderMap) -> bool {
        if !status.is_success() {
            return false;
        }
        if let Some(inm) = &self.if_none_match {
            let Some(etag) = headers.get(header::ETAG).and_then(|v| v.to_str().ok()) else {
                return inm.trim() == "*";
            };
            return list_items(inm)
                .into_iter()
                .any(|t| t == "*" || weak_eq(t, etag));
        }
        match self.if_modified_since {
            Some(since) => date_ms(headers, &header::LAST_MODIFIED)
                .or_else(|| date_ms(headers, &header::DATE))
                .is_some_and(|lm| lm / 1000 <= since / 1000),
            None => false,
        }
    }
}

/// Weak comparison of two entity tags (RFC 9110 §8.8.3.2).
pub(crate) fn weak_eq(a: &str, b: &str) -> bool {
    let opaque = |t: &str| {
        let t = t.trim();
        let t = t.strip_prefix("W/").unwrap_or(t);
        (t.len() >= 2 && t.starts_with('"') && t.ends_with('"')).then(|| t.to_owned())
    };
    matches!((opaque(a), opaque(b)), (Some(x), Some(y)) if x == y)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (n, v) in pairs {
            h.append(*n, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn directives_parse_quoted_duplicated_invalid_and_huge() {
        let cc = Directives::of(&headers(&[
            ("cache-control", "public, Max-Age=30, s-maxage=\"5\""),
            (
                "cache-control",
                "max-age=99, no-cache=\"set-cookie, x\", private",
            ),
        ]));
        assert_eq!((cc.max_age, cc.s_maxage), (Some(30), Some(5)));
        assert!(cc.public && cc.no_cache && cc.private && !cc.no_store);
        let cc = Directives::of(&headers(&[("cache-control", "max-age=-1")]));
        assert_eq!(cc.max_age, Some(0), "invalid reads as stale");
        let cc = Directives::of(&headers(&[(
            "cache-control",
            "max-age=99999999999999999999",
        )]));
        assert_eq!(cc.max_age, Some(DELTA_MAX));
        let cc = Directives::of(&headers(&[(
            "cache-control",
            "max-stale, stale-while-revalidate=10, stale-if-error=x",
        )]));
        assert_eq!(cc.max_stale, Some(u64::MAX));
        assert_eq!(cc.stale_while_revalidate, Some(10));
        assert_eq!(cc.stale_if_error, None);
    }

    #[test]
    fn storing_follows_the_shared_cache_rules() {
        let ask = |auth, cookie| Asked {
            authorization: auth,
            cookie,
            no_store: false,
        };
        let check = |a: &Asked, h: &HeaderMap| {
            storable(a, StatusCode::OK, h, &Directives::of(h), false) == Storable::Yes
        };
        let ma = headers(&[("cache-control", "max-age=60")]);
        assert!(check(&ask(false, false), &ma));
        assert!(!check(&ask(true, false), &ma), "§3.5");
        assert!(!check(&ask(false, true), &ma), "cookie rule");
        let public = headers(&[("cache-control", "public, max-age=60")]);
        assert!(check(&ask(true, false), &public) && check(&ask(false, true), &public));
        let mr = headers(&[("cache-control", "max-age=60, must-revalidate")]);
        assert!(check(&ask(true, false), &mr) && !check(&ask(false, true), &mr));
        for bad in [
            headers(&[("cache-control", "max-age=60, private")]),
            headers(&[("cache-control", "max-age=60, no-store")]),
            headers(&[("cache-control", "max-age=60"), ("vary", "a, *")]),
            headers(&[("cache-control", "max-age=60"), ("set-cookie", "s=1")]),
        ] {
            assert!(!check(&ask(false, false), &bad), "{bad:?}");
        }
        let none = HeaderMap::new();
        let cc = Directives::default();
        assert_eq!(
            storable(&ask(false, false), StatusCode::CREATED, &none, &cc, false),
            Storable::No("no freshness information and a status not cacheable by default")
        );
        assert_eq!(
            storable(&ask(false, false), StatusCode::NOT_FOUND, &none, &cc, false),
            Storable::Yes
        );
    }

    #[test]
    fn freshness_and_age() {
        let h = headers(&[
            ("date", "Thu, 01 Jan 2026 00:00:00 GMT"),
            ("expires", "Thu, 01 Jan 2026 00:10:00 GMT"),
        ]);
        let cc = Directives::of(&h);
        assert_eq!(freshness_ms(StatusCode::OK, &h, &cc, 0, 0.1, None), 600_000);
        let h = headers(&[("expires", "0")]);
        assert_eq!(
            freshness_ms(StatusCode::OK, &h, &Directives::default(), 5, 0.1, None),
            0
        );
        let h = headers(&[
            ("date", "Thu, 01 Jan 2026 00:00:00 GMT"),
            ("last-modified", "Wed, 31 Dec 2025 23:00:00 GMT"),
        ]);
        let cc = Directives::default();
        assert_eq!(freshness_ms(StatusCode::OK, &h, &cc, 0, 0.1, None), 360_000);
        assert_eq!(freshness_ms(StatusCode::CREATED, &h, &cc, 0, 0.1, None), 0);
        let none = HeaderMap::new();
        let ten = Some(Duration::from_secs(10));
        assert_eq!(
            freshness_ms(StatusCode::OK, &none, &cc, 0, 0.1, ten),
            10_000
        );
        // Age 100 s received, 2 s in transit, 3 s resident.
        assert_eq!(current_age_ms(None, 100, 1_000, 3_000, 6_000), 105_000);
        // A Date 50 s before the response arrived counts when larger.
        assert_eq!(current_age_ms(Some(0), 10, 50_000, 50_000, 50_000), 50_000);
    }

    #[test]
    fn conditions_only_for_success_and_weakly_compared() {
        let stored = headers(&[
            ("etag", "W/\"abc\""),
            ("last-modified", "Thu, 01 Jan 2026 00:00:00 GMT"),
        ]);
        let c = Conditions::of(&headers(&[("if-none-match", "\"x\", \"abc\"")]));
        assert!(c.not_modified(StatusCode::OK, &stored));
        assert!(!c.not_modified(StatusCode::NOT_FOUND, &stored));
        let star = Conditions::of(&headers(&[("if-none-match", "*")]));
        assert!(star.not_modified(StatusCode::OK, &stored));
        assert!(!star.not_modified(StatusCode::NOT_FOUND, &stored));
        let c = Conditions::of(&headers(&[("if-none-match", "\"abd\"")]));
        assert!(!c.not_modified(StatusCode::OK, &stored));
        let later = Conditions::of(&headers(&[(
            "if-modified-since",
            "Fri, 02 Jan 2026 00:00:00 GMT",
        )]));
        assert!(later.not_modified(StatusCode::OK, &stored));
        let earlier = Conditions::of(&headers(&[(
            "if-modified-since",
            "Wed, 31 Dec 2025 00:00:00 GMT",
        )]));
        assert!(!earlier.not_modified(StatusCode::OK, &stored));
        assert!(!weak_eq("abc", "abc"), "unquoted is not an entity tag");
    }

    #[test]
    fn lenient_dates_and_the_cdn_field() {
        let at = |v: &'static str| date_ms(&headers(&[("expires", v)]), &header::EXPIRES);
        let want = at("Thu, 18 Aug 2050 02:01:18 GMT");
        assert!(want.is_some());
        assert_eq!(at("THU, 18 AUG 2050 02:01:18 gMT"), want);
        assert_eq!(
            at("Mon Aug 18 02:01:18 2050"),
            want,
            "asctime, weekday not checked"
        );
        assert_eq!(at("Thursday, 18-Aug-50 02:01:18 GMT"), want);
        assert!(at("Thu Aug  8 02:01:18 2050").is_some());
        for bad in [
            "0",
            "Thu, 18 Aug 50 02:01:18 GMT",
            "Thu 18 Aug 2050 02:01:18 GMT",
            "Thu, 18  Aug  2050 02:01:18 GMT",
            "Thu, 18-Aug-2050 02:01:18 GMT",
            "Thu, 18 Aug 2050 02.01.18 GMT",
            "Thu, 18 Aug 2050 2:01:18 GMT",
            "Thu, 18 Aug 2050 02:01:18 UTC",
        ] {
            assert_eq!(at(bad), None, "{bad}");
        }
        let cdn = |v: &'static str| {
            Directives::of_response(
                &headers(&[("cdn-cache-control", v), ("cache-control", "no-store")]),
                true,
            )
        };
        let d = cdn("foobar, max-age=3600");
        assert!(d.targeted && !d.no_store && d.max_age == Some(3600));
        assert!(
            cdn("max-age=10000, &&&&&").no_store,
            "invalid: Cache-Control counts"
        );
        assert!(cdn("max-age =100").no_store);
        assert_eq!(
            cdn("max-age=\"10\"").max_age,
            None,
            "a string is not an integer"
        );
        assert!(cdn("no-store").no_store);
        assert!(cdn("private=?1, max-age=60").private);
        assert!(cdn("private=\"set-cookie\", max-age=60").private);
        assert!(!cdn("private=?0, max-age=60").private);
        let both = headers(&[
            ("cdn-cache-control", "max-age=60"),
            ("cache-control", "private"),
        ]);
        assert!(
            Directives::of_response(&both, true).private,
            "private always counts"
        );
        assert!(
            !Directives::of_response(&headers(&[("cdn-cache-control", "max-age=1")]), false)
                .targeted
        );
    }

    #[test]
    fn vary_and_selecting_values() {
        assert_eq!(
            vary_names(&headers(&[
                ("vary", "Accept-Language, accept-encoding"),
                ("vary", "Accept-Language")
            ])),
            Some(vec!["accept-encoding".into(), "accept-language".into()])
        );
        assert_eq!(vary_names(&headers(&[("vary", "a, *")])), None);
        let h = headers(&[
            ("accept-encoding", "gzip,  deflate"),
            ("accept-encoding", "br"),
        ]);
        assert_eq!(
            selecting_value(&h, "accept-encoding"),
            Some("gzip,deflate,br".into())
        );
        assert_eq!(selecting_value(&h, "accept-language"), None);
    }
}
