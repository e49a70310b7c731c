//! One request through the layer: look up, decide (fresh, stale, revalidate, fetch),
//! store, answer.

use crate::flight::{follow, Landed, Role};
use crate::layer::LayerState;
use crate::policy::{self, Asked, Conditions, Directives, Storable};
use crate::stored::{Freshness, Slot, Stored};
use crate::CACHE_STATUS;
use axum::body::Body;
use axum::extract::Request;
use axum::response::Response;
use bytes::Bytes;
use cache_core::observe::ReadOutcome;
use futures::StreamExt;
use http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use http_body_util::BodyExt;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use tower::Service;

/// What a lookup found for a request.
struct Lookup {
    primary: String,
    /// The index of variants, when the URL has one: (names, generation).
    index: Option<(Vec<String>, u64)>,
    /// Where this request's response is (or would be) stored.
    key: String,
    /// The stored response, if one serves this request.
    stored: Option<Arc<Stored>>,
}

/// What the leader of a fetch answers its own client with, and what it tells others.
struct Fetched {
    resp: Response,
    landed: Landed,
}

/// Marks, in its extensions, a response served from another request's fetch (a
/// follower of the single flight): counted as coalesced, its label still `HIT`.
#[derive(Clone, Copy)]
struct Coalesced;

/// One request through the layer, in its span, counted once in the cache's stats and
/// metrics as its client sees it: by its `x-cache` label (see [`crate::CACHE_STATUS`]).
pub(crate) async fn serve<S>(shared: Arc<LayerState>, inner: S, req: Request) -> Response
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    use tracing::Instrument;
    let span = tracing::debug_span!(
        "cache",
        op = "http",
        backend = shared.cache.capabilities().name,
        namespace = %shared.settings.namespace,
        hit = tracing::field::Empty,
        coalesced = tracing::field::Empty,
        x_cache = tracing::field::Empty,
    );
    let mut resp = serve_request(shared.clone(), inner, req)
        .instrument(span.clone())
        .await;
    let coalesced = resp.extensions_mut().remove::<Coalesced>().is_some();
    let Some(label) = resp
        .headers()
        .get(CACHE_STATUS)
        .and_then(|v| v.to_str().ok())
    else {
        return resp;
    };
    let outcome = match label {
        "HIT" if coalesced => Some(ReadOutcome::Coalesced),
        "HIT" => Some(ReadOutcome::Hit),
        "STALE" => Some(ReadOutcome::Stale),
        "MISS" | "REVALIDATED" => Some(ReadOutcome::Miss),
        // Not answered from the cache, nor meant to be: not a read.
        _ => None,
    };
    if let Some(outcome) = outcome {
        shared
            .cache
            .record_read(&shared.settings.namespace, outcome);
    }
    span.record("x_cache", label);
    span.record("hit", label == "HIT");
    if coalesced {
        span.record("coalesced", true);
    }
    resp
}

async fn serve_request<S>(shared: Arc<LayerState>, inner: S, req: Request) -> Response
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    let method = req.method().clone();
    if method != Method::GET && method != Method::HEAD {
        let unsafe_method = !matches!(method, Method::OPTIONS | Method::TRACE | Method::CONNECT);
        let host = host_of(&req);
        let uri = req.uri().clone();
        let resp = call(inner, req).await;
        if unsafe_method && (resp.status().is_success() || resp.status().is_redirection()) {
            if let Some(host) = host {
                shared.invalidate(&host, &uri, resp.headers()).await;
            }
        }
        return resp;
    }
    let asked = Directives::of(req.headers());
    if asked.no_store {
        return labelled(call(inner, req).await, "BYPASS");
    }
    let h = req.headers();
    if h.contains_key(header::RANGE)
        || h.contains_key(header::IF_MATCH)
        || h.contains_key(header::IF_UNMODIFIED_SINCE)
        || h.contains_key(header::IF_RANGE)
    {
        return labelled(call(inner, req).await, "PASS");
    }
    // No host, or two that disagree: nothing to key the response by safely.
    let Some(host) = host_of(&req) else {
        return labelled(call(inner, req).await, "PASS");
    };
    let primary = match shared.primary_key(&host, req.uri()) {
        Ok(k) => k,
        Err(_) => return labelled(call(inner, req).await, "PASS"),
    };
    let head = method == Method::HEAD;
    let conditions = Conditions::of(req.headers());
    let mut lookup = shared.lookup(primary, req.headers()).await;
    let f = shared.freshness();
    if let Some(stored) = lookup.stored.clone() {
        let headers = stored.header_map();
        let now = shared.now();
        let (age, life) = stored.age_and_lifetime(&headers, f, now);
        let said = Directives::of_response(&headers, f.targeted);
        let fresh = life > age;
        let just_validated =
            now.saturating_sub(stored.response_ms) < ms(shared.settings.revalidate_window);
        // The client's own limits (RFC 9111 §5.2.1); what was just validated serves
        // them all, so no client makes every request reach the service.
        let client_wants_new = (asked.no_cache
            || asked.max_age.is_some_and(|m| age > m.saturating_mul(1000)))
            && !just_validated;
        let too_old_for_client = asked
            .min_fresh
            .is_some_and(|m| life.saturating_sub(age) < m.saturating_mul(1000))
            && !just_validated;
        let reusable = !said.no_cache && !client_wants_new && !too_old_for_client;
        if fresh && reusable {
            let nm = conditions.not_modified(stored.status(), &headers);
            return stored.respond(headers, age, nm, head, "HIT");
        }
        let stale_by = age.saturating_sub(life);
        if !fresh && reusable && !said.forbids_stale() {
            let max_stale = asked.max_stale.map_or(0, |s| s.saturating_mul(1000));
            let swr = said
                .stale_while_revalidate
                .map_or(0, |s| s.saturating_mul(1000));
            if stale_by <= max_stale || stale_by <= swr {
                if stale_by > max_stale {
                    shared.revalidate_in_background(inner, &req, &lookup);
                }
                let nm = conditions.not_modified(stored.status(), &headers);
                return stored.respond(headers, age, nm, head, "STALE");
            }
        }
        if asked.only_if_cached {
            return gateway_timeout();
        }
        if head {
            // A HEAD does not revalidate the stored GET: it goes to the service as is.
            return labelled(call(inner, req).await, "PASS");
        }
    } else {
        if asked.only_if_cached {
            return gateway_timeout();
        }
        if head {
            return labelled(call(inner, req).await, "PASS");
        }
    }
    // Fetch or revalidate, one flight per key in this process.
    let mut req = Some(req);
    for _ in 0..8 {
        match shared.flights.join(&lookup.key) {
            Role::Leader(lead) => {
                let Some(req) = req.take() else { break };
                let fetched = shared.fetch(inner.clone(), req, &lookup, &conditions).await;
                lead.land(fetched.landed);
                return fetched.resp;
            }
            Role::Follower(rx) => match follow(rx).await {
                Some(Landed::Response(stored)) => {
                    let Some(req) = req.as_ref() else { break };
                    let headers = stored.header_map();
                    if stored.serves(req.headers(), &headers, f) {
                        let (age, _) = stored.age_and_lifetime(&headers, f, shared.now());
                        let nm = conditions.not_modified(stored.status(), &headers);
                        let mut resp = stored.respond(headers, age, nm, false, "HIT");
                        resp.extensions_mut().insert(Coalesced);
                        return resp;
                    }
                    break;
                }
                Some(Landed::Alone) => break,
                // The leader went away: look again, and lead if nobody does.
                None => {
                    if let Some(r) = req.as_ref() {
                        lookup = shared.lookup(lookup.primary, r.headers()).await;
                    }
                }
            },
        }
    }
    match req {
        Some(req) => shared.fetch(inner, req, &lookup, &conditions).await.resp,
        None => empty(StatusCode::INTERNAL_SERVER_ERROR),
    }
}

impl LayerState {
    pub(crate) fn now(&self) -> u64 {
        self.settings.clock.now_ms()
    }

    fn freshness(&self) -> Freshness {
        Freshness {
            heuristic: self.settings.heuristic,
            default_ttl: self.settings.default_ttl,
            targeted: self.settings.cdn_cache_control,
        }
    }

    async fn read(&self, key: &str) -> Option<Slot> {
        // Counted once per request, as its client sees it (see `serve`).
        match self.cache.get_uncounted::<Slot>(key).await {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!(error = %e, "http cache read failed; asking the service");
                None
            }
        }
    }

    /// The request headers a response's variants are selected by: its `Vary`, and the
    /// layer's own [`vary`](crate::HttpCacheLayer::vary) names; `None` for `Vary: *`.
    fn vary_of(&self, headers: &HeaderMap) -> Option<Vec<String>> {
        let mut names = policy::vary_names(headers)?;
        names.extend(self.settings.vary.iter().map(|n| n.as_str().to_owned()));
        names.sort();
        names.dedup();
        Some(names)
    }

    /// Find the stored response for a request: the URL's slot, then its variant.
    async fn lookup(&self, primary: String, req_headers: &HeaderMap) -> Lookup {
        let mut lookup = Lookup {
            key: primary.clone(),
            primary,
            index: None,
            stored: None,
        };
        let found = match self.read(&lookup.primary).await {
            Some(Slot::Response(s)) => Some(s),
            Some(Slot::Variants { names, generation }) => {
                let selecting = selecting(&names, req_headers);
                match self.variant_key(&lookup.primary, generation, &selecting) {
                    Ok(key) => {
                        lookup.key = key;
                        lookup.index = Some((names, generation));
                        match self.read(&lookup.key).await {
                            Some(Slot::Response(s)) => Some(s),
                            _ => None,
                        }
                    }
                    Err(_) => None,
                }
            }
            None => None,
        };
        lookup.stored = found
            .filter(|s| s.serves(req_headers, &s.header_map(), self.freshness()))
            .map(Arc::new);
        lookup
    }

    /// Send the request to the service (conditionally, when a stored response has
    /// validators), then store and answer.
    async fn fetch<S>(
        &self,
        inner: S,
        req: Request,
        lookup: &Lookup,
        conditions: &Conditions,
    ) -> Fetched
    where
        S: Service<Request, Response = Response, Error = Infallible> + Clone,
    {
        let (mut parts, body) = req.into_parts();
        let req_headers = parts.headers.clone();
        // Our own conditions replace the client's: the answer to the client is
        // decided here, from the full (or confirmed) response.
        parts.headers.remove(header::IF_NONE_MATCH);
        parts.headers.remove(header::IF_MODIFIED_SINCE);
        let base = lookup.stored.clone();
        if let Some(stored) = &base {
            let h = stored.header_map();
            if let Some(etag) = h.get(header::ETAG) {
                parts.headers.insert(header::IF_NONE_MATCH, etag.clone());
            }
            if let Some(lm) = h.get(header::LAST_MODIFIED) {
                parts.headers.insert(header::IF_MODIFIED_SINCE, lm.clone());
            }
        }
        // Kept to ask again unconditionally, should a 304 not fit what is stored.
        let again = base.as_ref().map(|_| {
            let mut r = Request::new(Body::empty());
            *r.method_mut() = parts.method.clone();
            *r.uri_mut() = parts.uri.clone();
            *r.version_mut() = parts.version;
            *r.headers_mut() = parts.headers.clone();
            r.headers_mut().remove(header::IF_NONE_MATCH);
            r.headers_mut().remove(header::IF_MODIFIED_SINCE);
            *r.extensions_mut() = parts.extensions.clone();
            r
        });
        let mut request_ms = self.now();
        let mut resp = call(inner.clone(), Request::from_parts(parts, body)).await;
        let mut response_ms = self.now().max(request_ms);
        if let Some(stored) = base {
            if resp.status() == StatusCode::NOT_MODIFIED {
                let fresh = Arc::new(stored.freshened(resp.headers(), (request_ms, response_ms)));
                let headers = fresh.header_map();
                let said = Directives::of_response(&headers, self.settings.cdn_cache_control);
                let names = self.vary_of(&headers);
                let same_variant = names.as_ref().is_some_and(|n| {
                    n.len() == stored.selecting.len()
                        && n.iter().zip(&stored.selecting).all(|(a, (b, _))| a == b)
                });
                let storable = policy::storable(
                    &Asked::of(&req_headers),
                    fresh.status(),
                    &headers,
                    &said,
                    self.settings.default_ttl.is_some(),
                );
                if same_variant && storable == Storable::Yes {
                    let stored_ok = self.write(lookup, &fresh, &req_headers, None).await;
                    return self.answer(fresh, stored_ok, conditions, "REVALIDATED");
                }
                // The confirmation changed what the response is (private now, or
                // other variants): the stored one goes, and the service is asked in
                // full.
                let _ = self.cache.delete(&lookup.key).await;
                self.budget.forget(&lookup.key);
                if let Some(again) = again {
                    request_ms = self.now();
                    resp = call(inner, again).await;
                    response_ms = self.now().max(request_ms);
                }
            } else if matches!(resp.status().as_u16(), 500 | 502 | 503 | 504) {
                if let Some(kept) = self.stale_on_error(&stored) {
                    return kept.answer(conditions);
                }
            }
        }
        let times = (request_ms, response_ms);
        let (parts, body) = resp.into_parts();
        let buf = match self.buffer(parts, body).await {
            Ok(x) => x,
            Err(streamed) => {
                return Fetched {
                    resp: labelled(streamed, "PASS"),
                    landed: Landed::Alone,
                }
            }
        };
        let (parts, body) = buf;
        let said = Directives::of_response(&parts.headers, self.settings.cdn_cache_control);
        let asked = Asked::of(&req_headers);
        let storable = policy::storable(
            &asked,
            parts.status,
            &parts.headers,
            &said,
            self.settings.default_ttl.is_some(),
        );
        if let Storable::No(why) = storable {
            tracing::debug!(why, "http response not stored");
            // Whole, as the service gave it (its own fields, cookies included).
            let mut resp = Response::from_parts(parts, Body::from(body));
            resp.headers_mut()
                .insert(CACHE_STATUS, HeaderValue::from_static("PASS"));
            return Fetched {
                resp,
                landed: Landed::Alone,
            };
        }
        let mut parts = parts;
        if self.settings.weak_etags && !Stored::has_validator(&parts.headers) {
            parts.headers.insert(header::ETAG, weak_etag(&body));
        }
        let names = self.vary_of(&parts.headers).unwrap_or_default();
        let sel = selecting(&names, &req_headers);
        let stored = Arc::new(Stored::new(
            parts.status,
            &parts.headers,
            Bytes::from(body),
            times,
            sel,
        ));
        let ok = self.write(lookup, &stored, &req_headers, Some(names)).await;
        self.answer(stored, ok, conditions, "MISS")
    }

    /// The answer to the leader's client, and what its followers are told.
    fn answer(
        &self,
        stored: Arc<Stored>,
        shareable: bool,
        conditions: &Conditions,
        label: &'static str,
    ) -> Fetched {
        let headers = stored.header_map();
        let (age, _) = stored.age_and_lifetime(&headers, self.freshness(), self.now());
        let nm = conditions.not_modified(stored.status(), &headers);
        let label = if shareable { label } else { "PASS" };
        Fetched {
            resp: stored.respond(headers, age, nm, false, label),
            landed: if shareable {
                Landed::Response(stored)
            } else {
                Landed::Alone
            },
        }
    }

    /// The stored response to serve when the service failed, if its
    /// `stale-if-error` (or the layer's) still covers it.
    fn stale_on_error(&self, stored: &Arc<Stored>) -> Option<KeptOnError> {
        let headers = stored.header_map();
        let said = Directives::of_response(&headers, self.settings.cdn_cache_control);
        if said.forbids_stale() {
            return None;
        }
        let (age, life) = stored.age_and_lifetime(&headers, self.freshness(), self.now());
        let window = self.stale_if_error_ms(&said)?;
        (age.saturating_sub(life) <= window).then(|| KeptOnError {
            stored: stored.clone(),
            headers,
            age,
        })
    }

    /// How long past its freshness a response may stand in for a failing service, in
    /// ms: its own `stale-if-error`, else the layer's.
    fn stale_if_error_ms(&self, said: &Directives) -> Option<u64> {
        said.stale_if_error
            .map(|s| s.saturating_mul(1000))
            .or(self.settings.stale_if_error.map(ms))
    }

    /// Read the body up to the size limit: `Err` with the response streamed through
    /// when it is longer.
    async fn buffer(
        &self,
        parts: http::response::Parts,
        body: Body,
    ) -> Result<(http::response::Parts, Vec<u8>), Response> {
        let max = self.settings.max_body;
        let too_long = parts
            .headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok())
            .is_some_and(|n| n > max);
        if too_long {
            return Err(Response::from_parts(parts, body));
        }
        let mut body = body;
        let mut buf: Vec<u8> = Vec::new();
        while let Some(frame) = body.frame().await {
            let data = match frame {
                Ok(frame) => match frame.into_data() {
                    Ok(data) => data,
                    Err(_) => continue, // trailers: not kept
                },
                Err(e) => {
                    tracing::warn!(error = %e, "response body failed; not cached");
                    return Err(empty(StatusCode::BAD_GATEWAY));
                }
            };
            buf.extend_from_slice(&data);
            if buf.len() > max {
                // Longer than we keep: what was read, then the rest, streamed.
                let head = futures::stream::iter([Ok::<_, axum::Error>(http_body::Frame::data(
                    Bytes::from(buf),
                ))]);
                let rest = http_body_util::BodyStream::new(body);
                let joined = head.chain(rest);
                let body = Body::new(http_body_util::StreamBody::new(joined));
                return Err(Response::from_parts(parts, body));
            }
        }
        Ok((parts, buf))
    }

    /// Store a response where `lookup` says (its variant when it varies), for as long
    /// as it may still be used; `false` if it was not stored.
    async fn write(
        &self,
        lookup: &Lookup,
        stored: &Arc<Stored>,
        req_headers: &HeaderMap,
        names: Option<Vec<String>>,
    ) -> bool {
        let headers = stored.header_map();
        let said = Directives::of_response(&headers, self.settings.cdn_cache_control);
        let now = self.now();
        let (age, life) = stored.age_and_lifetime(&headers, self.freshness(), now);
        let s = &self.settings;
        let mut extra = 0u64;
        if !said.forbids_stale() {
            let sie = self.stale_if_error_ms(&said).unwrap_or(0);
            let swr = said
                .stale_while_revalidate
                .map_or(0, |x| x.saturating_mul(1000));
            extra = sie.max(swr);
        }
        if Stored::has_validator(&headers) {
            extra = extra.max(ms(s.keep_stale));
        }
        let keep = life
            .saturating_sub(age)
            .saturating_add(extra)
            .min(ms(s.max_ttl));
        if keep == 0 {
            return false;
        }
        let expiry = Duration::from_millis(keep);
        // Where it goes: revalidated in place, or by the URL's (new) Vary.
        let key = match names {
            None => lookup.key.clone(),
            Some(names) if names.is_empty() => lookup.primary.clone(),
            Some(names) => {
                let current = match &lookup.index {
                    Some((n, g)) if *n == names => Some(*g),
                    // Another request may have made the index since this one looked.
                    _ => match self.read(&lookup.primary).await {
                        Some(Slot::Variants {
                            names: n,
                            generation,
                        }) if n == names => Some(generation),
                        _ => None,
                    },
                };
                let generation = match current {
                    Some(g) => g,
                    None => {
                        let generation = fastrand::u64(..);
                        let index = Slot::Variants {
                            names: names.clone(),
                            generation,
                        };
                        if let Err(e) = self.cache.set(&lookup.primary, &index, s.max_ttl).await {
                            tracing::warn!(error = %e, "http cache write failed; not cached");
                            return false;
                        }
                        generation
                    }
                };
                match self.variant_key(&lookup.primary, generation, &selecting(&names, req_headers))
                {
                    Ok(k) => k,
                    Err(_) => return false,
                }
            }
        };
        let slot = Slot::Response((**stored).clone());
        if let Err(e) = self.cache.set(&key, &slot, expiry).await {
            tracing::warn!(error = %e, "http cache write failed; not cached");
            return false;
        }
        let evict = self.budget.record(
            &key,
            stored.weight(),
            now.saturating_add(keep),
            now,
            s.max_bytes,
        );
        for k in evict {
            let _ = self.cache.delete(&k).await;
        }
        true
    }

    /// After a successful unsafe request: drop the stored responses of its URL and of
    /// its `Location` and `Content-Location` on the same host (RFC 9111 §4.4).
    async fn invalidate(&self, host: &str, uri: &http::Uri, resp_headers: &HeaderMap) {
        let mut targets = vec![uri.clone()];
        for name in [header::LOCATION, header::CONTENT_LOCATION] {
            let Some(v) = resp_headers.get(&name).and_then(|v| v.to_str().ok()) else {
                continue;
            };
            let Ok(u) = v.parse::<http::Uri>() else {
                continue;
            };
            match u.authority() {
                Some(a) if !a.as_str().eq_ignore_ascii_case(host) => continue,
                _ => {}
            }
            if let Ok(pq) = u
                .path_and_query()
                .map_or("/", |p| p.as_str())
                .parse::<http::Uri>()
            {
                targets.push(pq);
            }
        }
        for target in targets {
            if let Ok(key) = self.primary_key(host, &target) {
                self.budget.forget(&key);
                if let Err(e) = self.cache.delete(&key).await {
                    tracing::warn!(error = %e, "http cache invalidation failed");
                }
            }
        }
    }

    /// Revalidate in the background (`stale-while-revalidate`), unless a flight for the
    /// key is already on its way.
    fn revalidate_in_background<S>(self: &Arc<Self>, inner: S, req: &Request, lookup: &Lookup)
    where
        S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
        S::Future: Send + 'static,
    {
        let Role::Leader(lead) = self.flights.join(&lookup.key) else {
            return;
        };
        let mut copy = Request::new(Body::empty());
        *copy.method_mut() = Method::GET;
        *copy.uri_mut() = req.uri().clone();
        *copy.version_mut() = req.version();
        *copy.headers_mut() = req.headers().clone();
        *copy.extensions_mut() = req.extensions().clone();
        let lookup = Lookup {
            primary: lookup.primary.clone(),
            index: lookup.index.clone(),
            key: lookup.key.clone(),
            stored: lookup.stored.clone(),
        };
        let shared = self.clone();
        tokio::spawn(async move {
            let fetched = shared
                .fetch(inner, copy, &lookup, &Conditions::default())
                .await;
            lead.land(fetched.landed);
        });
    }
}

/// A stored response served because the service failed.
struct KeptOnError {
    stored: Arc<Stored>,
    headers: HeaderMap,
    age: u64,
}

impl KeptOnError {
    fn answer(self, conditions: &Conditions) -> Fetched {
        let nm = conditions.not_modified(self.stored.status(), &self.headers);
        Fetched {
            resp: self
                .stored
                .respond(self.headers, self.age, nm, false, "STALE"),
            landed: Landed::Response(self.stored),
        }
    }
}

/// A weak entity tag from a digest of the body.
fn weak_etag(body: &[u8]) -> HeaderValue {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(body);
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    HeaderValue::from_str(&format!("W/\"{hex}\"")).unwrap_or(HeaderValue::from_static("W/\"0\""))
}

/// The request header values a response varies by.
fn selecting(names: &[String], req_headers: &HeaderMap) -> Vec<(String, Option<String>)> {
    names
        .iter()
        .map(|n| (n.clone(), policy::selecting_value(req_headers, n)))
        .collect()
}

/// The request's host (and port), lower-case: the URI's authority (HTTP/2, or an
/// absolute-form request line) and `Host` when both are given must agree, as an
/// application may read either; `None` when there is none, they disagree, or `Host`
/// is not one (the request is then not cached).
fn host_of(req: &Request) -> Option<String> {
    let from_uri = req.uri().authority().map(|a| match a.port() {
        Some(p) => format!("{}:{p}", a.host()),
        None => a.host().to_owned(),
    });
    let from_header = match req.headers().get(header::HOST) {
        Some(v) => {
            let a: http::uri::Authority = v.to_str().ok()?.parse().ok()?;
            if a.as_str().contains('@') {
                return None;
            }
            Some(a.as_str().to_owned())
        }
        None => None,
    };
    let host = match (from_uri, from_header) {
        (Some(u), Some(h)) if !u.eq_ignore_ascii_case(&h) => return None,
        (Some(u), _) => u,
        (None, Some(h)) => h,
        (None, None) => return None,
    };
    (!host.is_empty()).then(|| host.to_ascii_lowercase())
}

/// Milliseconds of a duration, saturating.
fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

async fn call<S>(mut inner: S, req: Request) -> Response
where
    S: Service<Request, Response = Response, Error = Infallible>,
{
    match inner.call(req).await {
        Ok(resp) => resp,
        Err(never) => match never {},
    }
}

fn labelled(mut resp: Response, label: &'static str) -> Response {
    resp.headers_mut()
        .insert(CACHE_STATUS, HeaderValue::from_static(label));
    resp
}

/// A response with `status` and no body.
fn empty(status: StatusCode) -> Response {
    let mut resp = Response::new(Body::empty());
    *resp.status_mut() = status;
    resp
}

/// `only-if-cached` with nothing to serve (RFC 9111 §5.2.1.7).
fn gateway_timeout() -> Response {
    labelled(empty(StatusCode::GATEWAY_TIMEOUT), "MISS")
}

#[cfg(test)]
mod tests {
    use crate::HttpCacheLayer;
    use axum::body::Body;
    use axum::extract::Request;
    use axum::routing::get;
    use axum::Router;
    use cache_core::{Cache, ManualClock};
    use std::sync::Arc;
    use std::time::Duration;
    use tower::Service;

    fn app(cache: &Cache, clock: &Arc<ManualClock>) -> Router {
        Router::new()
            .route(
                "/fresh-for-1s",
                get(|| async { ([("cache-control", "max-age=1")], "body") }),
            )
            .route(
                "/swr",
                get(|| async {
                    (
                        [("cache-control", "max-age=1, stale-while-revalidate=60")],
                        "body",
                    )
                }),
            )
            .route(
                "/slow",
                get(|| async {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    ([("cache-control", "max-age=60")], "slow")
                }),
            )
            .layer(HttpCacheLayer::new(cache.clone()).clock(clock.clone()))
    }

    async fn label(app: &Router, path: &str) -> String {
        let req = Request::get(format!("http://a.example{path}"))
            .body(Body::empty())
            .unwrap();
        let resp = app.clone().call(req).await.unwrap();
        resp.headers()["x-cache"].to_str().unwrap().to_owned()
    }

    /// The stats count what the client was told: a response past its freshness is
    /// a `MISS` (or `STALE`), never a hit, though the store still holds it.
    #[tokio::test]
    async fn the_counted_outcome_is_the_x_cache_label() {
        let cache = Cache::new(cache_memory::MemoryBackend::builder().build().unwrap());
        let clock = Arc::new(ManualClock::new());
        let app = app(&cache, &clock);
        assert_eq!(label(&app, "/fresh-for-1s").await, "MISS");
        assert_eq!(label(&app, "/fresh-for-1s").await, "HIT");
        assert_eq!(label(&app, "/swr").await, "MISS");
        clock.advance(Duration::from_secs(2));
        assert_eq!(label(&app, "/fresh-for-1s").await, "MISS");
        assert_eq!(label(&app, "/swr").await, "STALE");
        let s = cache.stats();
        assert_eq!((s.hits, s.misses, s.stale_served), (1, 4, 1), "{s:?}");
    }

    /// Requests that waited for a concurrent fetch of their URL are coalesced.
    #[tokio::test]
    async fn requests_that_waited_for_a_fetch_are_coalesced() {
        let cache = Cache::new(cache_memory::MemoryBackend::builder().build().unwrap());
        let app = app(&cache, &Arc::new(ManualClock::new()));
        let labels = futures::future::join_all((0..10).map(|_| label(&app, "/slow"))).await;
        assert_eq!(
            labels.iter().filter(|l| *l == "MISS").count(),
            1,
            "{labels:?}"
        );
        assert_eq!(
            labels.iter().filter(|l| *l == "HIT").count(),
            9,
            "{labels:?}"
        );
        let s = cache.stats();
        assert_eq!((s.hits, s.misses, s.coalesced), (0, 1, 9), "{s:?}");
    }
}
