//! What the layer keeps in the store: a response with the times it was fetched, or an
//! index saying that a URL's responses vary by some request headers.

use crate::policy::{self, Directives};
use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// What is stored under a URL's key.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) enum Slot {
    /// The response, for every request of this URL.
    Response(Stored),
    /// The URL's responses vary by these request headers: each variant is stored
    /// under a key made of the URL, `generation` and the request's values of them. A
    /// new index (other headers, or after an invalidation) has a new generation, so
    /// variants of an older one are never found again.
    Variants { names: Vec<String>, generation: u64 },
}

/// A stored response.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct Stored {
    pub status: u16,
    pub headers: Vec<Field>,
    pub body: Bytes,
    /// When the request that fetched (or last revalidated) it was sent, ms since the epoch.
    pub request_ms: u64,
    /// When its response arrived.
    pub response_ms: u64,
    /// The `Age` it arrived with, in seconds.
    pub age_s: u64,
    /// The values of the request headers named by its `Vary`, as the request that
    /// fetched it sent them (`None`: absent).
    pub selecting: Vec<(String, Option<String>)>,
}

/// One header field line.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct Field {
    pub name: String,
    #[serde(with = "serde_bytes")]
    pub value: Vec<u8>,
}

/// Header fields never stored or copied from a response (RFC 9111 §3.1: hop-by-hop
/// fields), plus the ones this layer writes itself.
fn kept(name: &HeaderName) -> bool {
    !matches!(
        name.as_str(),
        "connection"
            | "keep-alive"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
            | "proxy-connection"
            | "proxy-authenticate"
            | "proxy-authentication-info"
            | "proxy-authorization"
            | "age"
            | "x-cache"
    )
}

/// The fields named in `Connection`, also hop-by-hop.
fn connection_listed(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|n| n.trim().to_ascii_lowercase())
        .collect()
}

fn fields_of(headers: &HeaderMap) -> Vec<Field> {
    let listed = connection_listed(headers);
    headers
        .iter()
        .filter(|(n, _)| kept(n) && !listed.iter().any(|l| l == n.as_str()))
        .map(|(n, v)| Field {
            name: n.as_str().to_owned(),
            value: v.as_bytes().to_vec(),
        })
        .collect()
}

/// The inputs of freshness that are the layer's settings.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Freshness {
    pub heuristic: f64,
    pub default_ttl: Option<Duration>,
    /// Whether `CDN-Cache-Control` counts (RFC 9213).
    pub targeted: bool,
}

impl Stored {
    pub fn new(
        status: StatusCode,
        headers: &HeaderMap,
        body: Bytes,
        times: (u64, u64),
        selecting: Vec<(String, Option<String>)>,
    ) -> Self {
        Stored {
            status: status.as_u16(),
            headers: fields_of(headers),
            body,
            request_ms: times.0,
            response_ms: times.1,
            age_s: policy::age_field(headers),
            selecting,
        }
    }

    pub fn status(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::OK)
    }

    pub fn header_map(&self) -> HeaderMap {
        let mut h = HeaderMap::new();
        for f in &self.headers {
            if let (Ok(n), Ok(v)) = (
                HeaderName::from_bytes(f.name.as_bytes()),
                HeaderValue::from_bytes(&f.value),
            ) {
                h.append(n, v);
            }
        }
        h
    }

    /// Its age now and how long it is fresh, in ms.
    pub fn age_and_lifetime(&self, headers: &HeaderMap, f: Freshness, now_ms: u64) -> (u64, u64) {
        let cc = Directives::of_response(headers, f.targeted);
        let age = policy::current_age_ms(
            policy::date_ms(headers, &header::DATE),
            self.age_s,
            self.request_ms,
            self.response_ms,
            now_ms,
        );
        let life = policy::freshness_ms(
            self.status(),
            headers,
            &cc,
            self.response_ms,
            f.heuristic,
            f.default_ttl,
        );
        (age, life)
    }

    /// Whether it has a validator to revalidate with.
    pub fn has_validator(headers: &HeaderMap) -> bool {
        headers.contains_key(header::ETAG) || headers.contains_key(header::LAST_MODIFIED)
    }

    /// Whether this response was stored for a request like `req_headers`: the same
    /// values of the headers it varies by, and, for a request with credentials, a
    /// response that said it may be shared with them.
    pub fn serves(&self, req_headers: &HeaderMap, headers: &HeaderMap, f: Freshness) -> bool {
        let same_variant = self
            .selecting
            .iter()
            .all(|(n, v)| policy::selecting_value(req_headers, n) == *v);
        if !same_variant {
            return false;
        }
        let cc = Directives::of_response(headers, f.targeted);
        let shared = cc.public || cc.s_maxage.is_some();
        if req_headers.contains_key(header::AUTHORIZATION) && !(shared || cc.must_revalidate) {
            return false;
        }
        !req_headers.contains_key(header::COOKIE) || shared
    }

    /// Freshen it with a `304 Not Modified` (RFC 9111 §3.2, §4.3.4): the 304's fields
    /// replace the stored ones of the same name (but `Content-Length`), and its times
    /// and `Age` become the stored response's.
    pub fn freshened(&self, not_modified: &HeaderMap, times: (u64, u64)) -> Stored {
        // A 304 never adds a cookie to what is shared.
        let new: Vec<Field> = fields_of(not_modified)
            .into_iter()
            .filter(|f| f.name != "set-cookie")
            .collect();
        let mut headers: Vec<Field> = self
            .headers
            .iter()
            .filter(|f| f.name == "content-length" || !new.iter().any(|n| n.name == f.name))
            .cloned()
            .collect();
        headers.extend(new.into_iter().filter(|f| f.name != "content-length"));
        Stored {
            headers,
            request_ms: times.0,
            response_ms: times.1,
            age_s: policy::age_field(not_modified),
            ..self.clone()
        }
    }

    /// The response to send: the stored one with its current `Age`, or, when the
    /// client's conditions hold, a `304` with the fields RFC 9110 §15.4.5 lists. A
    /// HEAD gets the headers without the body.
    pub fn respond(
        &self,
        headers: HeaderMap,
        age_ms: u64,
        not_modified: bool,
        head: bool,
        label: &'static str,
    ) -> Response {
        let mut resp;
        if not_modified {
            resp = Response::new(Body::empty());
            *resp.status_mut() = StatusCode::NOT_MODIFIED;
            let h = resp.headers_mut();
            for name in [
                header::CACHE_CONTROL,
                header::CONTENT_LOCATION,
                header::DATE,
                header::ETAG,
                header::EXPIRES,
                header::VARY,
                header::LAST_MODIFIED,
            ] {
                for v in headers.get_all(&name) {
                    h.append(name.clone(), v.clone());
                }
            }
        } else {
            let body = if head {
                Body::empty()
            } else {
                Body::from(self.body.clone()) // a reference count, not a copy
            };
            resp = Response::new(body);
            *resp.status_mut() = self.status();
            *resp.headers_mut() = headers;
            if head && !resp.headers().contains_key(header::CONTENT_LENGTH) {
                // The GET's length, not the empty body's.
                resp.headers_mut()
                    .insert(header::CONTENT_LENGTH, HeaderValue::from(self.body.len()));
            }
        }
        let h = resp.headers_mut();
        h.insert(header::AGE, HeaderValue::from(age_ms / 1000));
        h.insert(crate::CACHE_STATUS, HeaderValue::from_static(label));
        resp
    }

    /// Bytes it holds (for the byte budget).
    pub fn weight(&self) -> usize {
        self.body.len()
            + self
                .headers
                .iter()
                .map(|f| f.name.len() + f.value.len() + 16)
                .sum::<usize>()
            + 64
    }
}
