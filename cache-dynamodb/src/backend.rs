//! `DynamoBuilder` and `DynamoBackend`: a thin `CacheBackend` over the SDK side.

use crate::config::DynamoConfig;
use crate::core::{
    self, delete_request, expires_at, is_live, item, key_of, n, now_ms, pk, pk_of, put_request,
    value_of, Item, Shared, ABSENT_OR_EXPIRED, BATCH_GET, BATCH_WRITE, EXPIRES_MS, MAX_KEY_LEN, NS,
    NS_INDEX, PK, VALUE,
};
use crate::error::{config, BACKEND};
use aws_sdk_dynamodb::config::{Credentials, Region};
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, WriteRequest};
use aws_sdk_dynamodb::Client;
use cache_core::raw::{distinct, last_of_each, KeyKind, KeyLayout};
use cache_core::{async_trait, Bytes, CacheBackend, Capabilities, Expiry, LockToken, Result};
use futures::future::try_join_all;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// Builder for [`DynamoBackend`].
///
/// Where the AWS settings come from, first match wins: a full client configuration
/// ([`client_config`](Self::client_config)); an [`aws_config::SdkConfig`]
/// ([`sdk_config`](Self::sdk_config): your credential chain, region, retry settings);
/// else the environment, as `aws_config::defaults` loads it. [`region`](Self::region),
/// [`endpoint`](Self::endpoint) and [`static_credentials`](Self::static_credentials)
/// then override.
///
/// ```no_run
/// # async fn demo() -> cache_core::Result<()> {
/// use cache_dynamodb::DynamoBackend;
/// use std::time::Duration;
/// let sdk = aws_config::load_from_env().await;
/// let builder = DynamoBackend::builder()
///     .sdk_config(&sdk)
///     .table("cache_entries")
///     .namespace("sessions")
///     .timeout(Duration::from_millis(500));
/// builder.create_table().await?; // once; a no-op when the table exists
/// let backend = builder.build().await?;
/// # Ok(()) }
/// ```
#[derive(Clone, Default)]
#[must_use]
pub struct DynamoBuilder {
    config: DynamoConfig,
    sdk: Option<aws_config::SdkConfig>,
    client_config: Option<aws_sdk_dynamodb::Config>,
    credentials: Option<Credentials>,
}

impl std::fmt::Debug for DynamoBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The AWS configurations hold credentials providers: named, never printed.
        f.debug_struct("DynamoBuilder")
            .field("config", &self.config)
            .field("sdk_config", &self.sdk.as_ref().map(|_| "given"))
            .field(
                "client_config",
                &self.client_config.as_ref().map(|_| "given"),
            )
            .field(
                "static_credentials",
                &self
                    .credentials
                    .as_ref()
                    .map(|c| c.access_key_id().to_owned()),
            )
            .finish()
    }
}

/// An HTTPS client on rustls with ring, the one crypto provider of the workspace (the
/// SDK's default client would compile aws-lc-rs beside it).
fn https_client() -> aws_sdk_dynamodb::config::SharedHttpClient {
    use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};
    aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https()
}

impl DynamoBuilder {
    /// Start from a full configuration.
    pub fn from_config(config: DynamoConfig) -> Self {
        DynamoBuilder {
            config,
            ..Self::default()
        }
    }
    /// AWS settings (credentials, region, retries) from your own `SdkConfig`.
    pub fn sdk_config(mut self, sdk: &aws_config::SdkConfig) -> Self {
        self.sdk = Some(sdk.clone());
        self
    }
    /// A whole DynamoDB client configuration (interceptors, retry and timeout
    /// settings, HTTP client): used as given, but for the settings below.
    pub fn client_config(mut self, config: aws_sdk_dynamodb::Config) -> Self {
        self.client_config = Some(config);
        self
    }
    /// Fixed credentials (DynamoDB Local, tests); prefer the credential chain.
    pub fn static_credentials(
        mut self,
        access_key_id: impl Into<String>,
        secret_access_key: impl Into<String>,
    ) -> Self {
        self.credentials = Some(Credentials::new(
            access_key_id,
            secret_access_key,
            None,
            None,
            "cache-dynamodb",
        ));
        self
    }
    /// See [`DynamoConfig::table`].
    pub fn table(mut self, table: impl Into<String>) -> Self {
        self.config.table = table.into();
        self
    }
    /// See [`DynamoConfig::namespace`].
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.config.namespace = namespace.into();
        self
    }
    /// See [`DynamoConfig::endpoint`].
    pub fn endpoint(mut self, url: impl Into<String>) -> Self {
        self.config.endpoint = Some(url.into());
        self
    }
    /// See [`DynamoConfig::region`].
    pub fn region(mut self, region: impl Into<String>) -> Self {
        self.config.region = Some(region.into());
        self
    }
    /// See [`DynamoConfig::timeout`].
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.config.timeout = timeout;
        self
    }
    /// See [`DynamoConfig::connect_timeout`].
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.config.connect_timeout = timeout;
        self
    }
    /// See [`DynamoConfig::consistent_reads`].
    pub fn consistent_reads(mut self, on: bool) -> Self {
        self.config.consistent_reads = on;
        self
    }
    /// See [`DynamoConfig::max_value_size`].
    pub fn max_value_size(mut self, bytes: usize) -> Self {
        self.config.max_value_size = bytes;
        self
    }

    /// The SDK client these settings describe.
    async fn client(&self) -> Result<Client> {
        let cfg = &self.config;
        let mut conf = match (&self.client_config, &self.sdk) {
            (Some(c), _) => c.to_builder(),
            (None, Some(sdk)) => aws_sdk_dynamodb::config::Builder::from(sdk),
            (None, None) => {
                let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
                    .http_client(https_client())
                    .load()
                    .await;
                aws_sdk_dynamodb::config::Builder::from(&sdk)
            }
        };
        if let Some(region) = &cfg.region {
            conf = conf.region(Region::new(region.clone()));
        }
        if let Some(url) = &cfg.endpoint {
            conf = conf.endpoint_url(url);
        }
        if let Some(c) = &self.credentials {
            conf = conf.credentials_provider(c.clone());
        }
        let conf = conf.build();
        let timeouts = conf
            .timeout_config()
            .cloned()
            .unwrap_or_else(|| aws_config::timeout::TimeoutConfig::builder().build())
            .to_builder()
            .connect_timeout(cfg.connect_timeout)
            .build();
        let mut conf = conf.to_builder().timeout_config(timeouts);
        if conf.clone().build().http_client().is_none() {
            conf = conf.http_client(https_client());
        }
        let conf = conf.build();
        if conf.region().is_none() {
            return Err(config(
                "no AWS region: set AWS_REGION, a profile's region, or DynamoBuilder::region",
            ));
        }
        Ok(Client::from_conf(conf))
    }

    /// Create the table if it does not exist: on-demand billing, partition key `pk`,
    /// the keys-only index `cache_ns` on `ns` (for `clear`), and DynamoDB's TTL on
    /// `exp`; waits until the table is ACTIVE (at most 2 minutes). A no-op on a table
    /// that exists. Needs `dynamodb:CreateTable`, `DescribeTable`,
    /// `DescribeTimeToLive` and `UpdateTimeToLive`.
    pub async fn create_table(&self) -> Result<()> {
        core::validate_table(&self.config.table)?;
        let client = self.client().await?;
        let limit = self.config.connect_timeout.max(Duration::from_secs(120));
        core::create_table(&client, &self.config.table, limit).await
    }

    /// Check the settings, make the client and check the table once: a missing table,
    /// a table of another layout, refused credentials or a missing region are a
    /// [`Config`](cache_core::ErrorKind::Config) error; an unreachable endpoint is
    /// `Unavailable` or `Timeout` within the connect timeout.
    pub async fn build(self) -> Result<DynamoBackend> {
        core::validate(&self.config)?;
        let client = self.client().await?;
        core::check_table(&client, &self.config.table, self.config.connect_timeout).await?;
        let cfg = self.config;
        let shared = Arc::new(Shared {
            client,
            table: cfg.table.clone(),
            timeout: cfg.timeout,
            consistent: cfg.consistent_reads,
        });
        tracing::debug!(namespace = %cfg.namespace, table = %cfg.table, "dynamodb backend ready");
        Ok(DynamoBackend::on_shared(shared, cfg))
    }
}

/// A cache backend on one DynamoDB table, shared by every namespace.
///
/// Items are `{pk: "ns:key", ns, v: binary, exp: seconds, exp_ms}`, with a keys-only
/// index on `ns` (for `clear`) and DynamoDB's TTL on `exp`; reads filter expired items.
pub struct DynamoBackend {
    shared: Arc<Shared>,
    caps: Capabilities,
    config: DynamoConfig,
}

impl std::fmt::Debug for DynamoBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DynamoBackend")
            .field("config", &self.config)
            .finish()
    }
}

fn names(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

impl DynamoBackend {
    /// A builder with the defaults of [`DynamoConfig`].
    pub fn builder() -> DynamoBuilder {
        DynamoBuilder::default()
    }

    fn on_shared(shared: Arc<Shared>, config: DynamoConfig) -> Self {
        DynamoBackend {
            shared,
            caps: capabilities(&config),
            config,
        }
    }

    /// Another backend on the same client and table with its own namespace.
    pub fn with_namespace(&self, namespace: &str) -> Result<DynamoBackend> {
        cache_core::raw::validate_namespace(BACKEND, namespace)?;
        let mut config = self.config.clone();
        config.namespace = namespace.to_owned();
        Ok(DynamoBackend::on_shared(self.shared.clone(), config))
    }

    /// This backend's namespace.
    pub fn namespace(&self) -> &str {
        &self.config.namespace
    }

    /// The SDK client, for calls this crate does not make.
    pub fn client(&self) -> &Client {
        &self.shared.client
    }

    fn ns(&self) -> &str {
        &self.config.namespace
    }

    fn value_pk(&self, key: &str) -> String {
        pk(self.ns(), KeyKind::Value, key)
    }

    /// The live item under `pk`, with the attributes of `projection` (`None`: all).
    async fn get_item(&self, pk: String, projection: Option<&str>) -> Result<Option<Item>> {
        let s = &self.shared;
        let out = s
            .call(
                s.client
                    .get_item()
                    .table_name(&s.table)
                    .set_key(Some(key_of(pk)))
                    .consistent_read(s.consistent)
                    .set_projection_expression(projection.map(str::to_owned))
                    .set_expression_attribute_names(
                        projection.map(|_| names(&[("#pk", PK), ("#exp_ms", EXPIRES_MS)])),
                    )
                    .send(),
            )
            .await?;
        Ok(out.item.filter(|i| is_live(i, now_ms())))
    }

    /// The live items of `pks` (any number, duplicates allowed), by partition key.
    async fn live_items(
        &self,
        pks: &[String],
        projection: Option<&str>,
    ) -> Result<HashMap<String, Item>> {
        let unique = distinct(pks.iter().cloned());
        let pages = try_join_all(
            unique
                .chunks(BATCH_GET)
                .map(|chunk| self.shared.batch_get(chunk.to_vec(), projection)),
        )
        .await?;
        let now = now_ms();
        Ok(pages
            .into_iter()
            .flatten()
            .filter(|i| is_live(i, now))
            .filter_map(|i| Some((pk_of(&i)?.to_owned(), i)))
            .collect())
    }

    /// Put `item` only if nothing live is under its key: a conditional put, so one
    /// racer wins even when the old entry has expired.
    async fn put_if_absent(&self, item: Item) -> Result<bool> {
        let s = &self.shared;
        s.conditional(
            s.client
                .put_item()
                .table_name(&s.table)
                .set_item(Some(item))
                .condition_expression(ABSENT_OR_EXPIRED)
                .set_expression_attribute_names(Some(names(&[
                    ("#pk", PK),
                    ("#exp_ms", EXPIRES_MS),
                ])))
                .expression_attribute_values(":now", n(now_ms()))
                .send(),
        )
        .await
    }

    /// Delete every key of `pks` (distinct) with batch writes of 25.
    async fn delete_pks(&self, pks: Vec<String>) -> Result<()> {
        let requests = pks
            .into_iter()
            .map(delete_request)
            .collect::<Result<Vec<_>>>()?;
        self.write_all(requests).await
    }

    /// Send `requests` (distinct keys) as batch writes of 25, at once.
    async fn write_all(&self, requests: Vec<WriteRequest>) -> Result<()> {
        try_join_all(
            requests
                .chunks(BATCH_WRITE)
                .map(|chunk| self.shared.batch_write(chunk.to_vec())),
        )
        .await
        .map(drop)
    }
}

impl DynamoBuilder {
    /// Lazy start: a backend that connects in the background (see
    /// [`LazyBackend`](cache_core::LazyBackend)), so the application starts while the
    /// store is down; until it is reachable, calls fail fast with `Unavailable` and
    /// get-or-compute computes without the cache. Settings are checked at once;
    /// errors only the server can tell (credentials, a missing database) show on the
    /// calls as `Config` errors. Call it inside a tokio runtime.
    pub fn build_lazy(self) -> Result<cache_core::LazyBackend> {
        let caps = capabilities(&self.config);
        let namespace = self.config.namespace.clone();
        cache_core::LazyBackend::spawn(caps, namespace, move || self.clone().build())
    }
}

/// What a backend of `config` can do (known before it connects).
fn capabilities(config: &DynamoConfig) -> Capabilities {
    Capabilities::new(BACKEND)
        .max_key_len(Some(MAX_KEY_LEN))
        .max_value_size(Some(config.max_value_size))
        .native_batch(true)
        .distributed_locks(true)
}

#[async_trait]
impl CacheBackend for DynamoBackend {
    fn capabilities(&self) -> Capabilities {
        self.caps
    }

    fn namespace(&self) -> &str {
        Self::namespace(self)
    }

    async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        let found = self.get_item(self.value_pk(key), None).await?;
        Ok(found.and_then(value_of).map(Bytes::from))
    }

    async fn set(&self, key: &str, value: Bytes, expiry: Expiry) -> Result<()> {
        let Ok(exp) = expires_at(expiry) else {
            return self.delete(key).await.map(drop);
        };
        let s = &self.shared;
        s.call(
            s.client
                .put_item()
                .table_name(&s.table)
                .set_item(Some(item(self.value_pk(key), self.ns(), &value, exp)))
                .send(),
        )
        .await
        .map(drop)
    }

    async fn delete(&self, key: &str) -> Result<bool> {
        let s = &self.shared;
        let out = s
            .call(
                s.client
                    .delete_item()
                    .table_name(&s.table)
                    .set_key(Some(key_of(self.value_pk(key))))
                    .return_values(ReturnValue::AllOld)
                    .send(),
            )
            .await?;
        Ok(out.attributes.is_some_and(|old| is_live(&old, now_ms())))
    }

    async fn has(&self, key: &str) -> Result<bool> {
        // Without the value, which may be large.
        Ok(self
            .get_item(self.value_pk(key), Some("#pk, #exp_ms"))
            .await?
            .is_some())
    }

    async fn clear(&self) -> Result<()> {
        // The keys of this namespace from its index (never a scan, never a pattern),
        // one page at a time, each deleted with batch writes.
        let s = &self.shared;
        let mut start: Option<Item> = None;
        loop {
            let page = s
                .call(
                    s.client
                        .query()
                        .table_name(&s.table)
                        .index_name(NS_INDEX)
                        .key_condition_expression("#ns = :ns")
                        .expression_attribute_names("#ns", NS)
                        .expression_attribute_values(":ns", AttributeValue::S(self.ns().to_owned()))
                        .set_exclusive_start_key(start.take())
                        .send(),
                )
                .await?;
            let pks = distinct(
                page.items()
                    .iter()
                    .filter_map(|i| pk_of(i).map(str::to_owned)),
            );
            self.delete_pks(pks).await?;
            match page.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return Ok(()),
            }
        }
    }

    async fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<Bytes>>> {
        let pks: Vec<String> = keys.iter().map(|k| self.value_pk(k)).collect();
        let found = self.live_items(&pks, None).await?;
        Ok(pks
            .iter()
            .map(|pk| {
                // A key asked twice gets its value twice.
                let item = found.get(pk)?;
                match item.get(VALUE) {
                    Some(AttributeValue::B(b)) => Some(Bytes::copy_from_slice(b.as_ref())),
                    _ => None,
                }
            })
            .collect())
    }

    async fn set_many(&self, items: &[(&str, Bytes)], expiry: Expiry) -> Result<()> {
        let Ok(exp) = expires_at(expiry) else {
            let keys: Vec<&str> = items.iter().map(|(k, _)| *k).collect();
            return self.delete_many(&keys).await.map(drop);
        };
        // DynamoDB refuses a batch with the same key twice: the last value given wins.
        let order = last_of_each(items);
        let requests = order
            .iter()
            .map(|&i| {
                let (k, v) = &items[i];
                put_request(item(self.value_pk(k), self.ns(), v, exp))
            })
            .collect::<Result<Vec<_>>>()?;
        self.write_all(requests).await
    }

    async fn delete_many(&self, keys: &[&str]) -> Result<usize> {
        let pks = distinct(keys.iter().map(|k| self.value_pk(k)));
        let live = self.live_items(&pks, Some("#pk, #exp_ms")).await?.len();
        self.delete_pks(pks).await?;
        Ok(live)
    }

    async fn set_if_absent(&self, key: &str, value: Bytes, expiry: Expiry) -> Result<bool> {
        let Ok(exp) = expires_at(expiry) else {
            return Ok(false);
        };
        self.put_if_absent(item(self.value_pk(key), self.ns(), &value, exp))
            .await
    }

    async fn acquire_lock(&self, key: &str, ttl: Duration) -> Result<Option<LockToken>> {
        let token = LockToken::random();
        let exp = expires_at(Expiry::After(ttl)).ok().flatten();
        let won = self
            .put_if_absent(item(
                pk(self.ns(), KeyKind::Lock, key),
                // Under the locks' own namespace attribute: `clear` leaves held locks
                // alone.
                &KeyLayout::lock_namespace(self.ns()),
                token.as_str().as_bytes(),
                exp,
            ))
            .await?;
        Ok(won.then_some(token))
    }

    async fn release_lock(&self, key: &str, token: &LockToken) -> Result<bool> {
        let s = &self.shared;
        s.conditional(
            s.client
                .delete_item()
                .table_name(&s.table)
                .set_key(Some(key_of(pk(self.ns(), KeyKind::Lock, key))))
                .condition_expression("#v = :token AND #exp_ms > :now")
                .set_expression_attribute_names(Some(names(&[
                    ("#v", VALUE),
                    ("#exp_ms", EXPIRES_MS),
                ])))
                .expression_attribute_values(
                    ":token",
                    AttributeValue::B(aws_sdk_dynamodb::primitives::Blob::new(token.as_str())),
                )
                .expression_attribute_values(":now", n(now_ms()))
                .send(),
        )
        .await
    }

    async fn close(&self) -> Result<()> {
        Ok(())
    }
}
