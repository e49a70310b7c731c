//! `DynamoBuilder` and `DynamoBackend`: a thin `CacheBackend` over the SDK side.

use crate::config::DynamoConfig;
use crate::driver::{
    self, delete_request, is_live, item, lock_item, pk, pk_of, value_of, Driver, Item, BATCH_GET,
    BATCH_WRITE, VALUE,
};
use crate::error::{config, BACKEND};
use crate::fence::{self, Fenced, Guard, ValueWrite};
use aws_sdk_dynamodb::config::{Credentials, Region};
use aws_sdk_dynamodb::types::{AttributeValue, WriteRequest};
use aws_sdk_dynamodb::Client;
use cache_core::raw::{distinct, last_of_each, lock_state, overtaken, within, KeyKind, KeyLayout};
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
    clock_offset_ms: i64,
    alone: bool,
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
    cache_core::builder_setters! { config: DynamoConfig;
        from_config,
        table(table: impl Into<String>) = table.into(),
        namespace,
        endpoint(url: impl Into<String>) = Some(url.into()),
        region(region: impl Into<String>) = Some(region.into()),
        timeout, connect_timeout,
        consistent_reads(on: bool),
        max_value_size, max_clock_skew,
        test_clock_offset_ms => clock_offset_ms,
    }
    /// Tests only: run this backend's transactions alone, never beside its other
    /// requests. moto rolls a cancelled transaction back by restoring a copy of the
    /// whole table taken when it began, which erases what other requests wrote
    /// meanwhile; DynamoDB's transactions are serializable and need no such thing.
    #[doc(hidden)]
    pub fn test_transactions_alone(mut self) -> Self {
        self.alone = true;
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
        driver::validate_table(&self.config.table)?;
        let client = self.client().await?;
        let limit = self.config.connect_timeout.max(Duration::from_secs(120));
        driver::create_table(&client, &self.config.table, limit).await
    }

    /// Check the settings, make the client and check the table once: a missing table,
    /// a table of another layout, refused credentials or a missing region are a
    /// [`Config`](cache_core::ErrorKind::Config) error; an unreachable endpoint is
    /// `Unavailable` or `Timeout` within the connect timeout.
    pub async fn build(self) -> Result<DynamoBackend> {
        driver::validate(&self.config)?;
        let client = self.client().await?;
        driver::check_table(&client, &self.config.table, self.config.connect_timeout).await?;
        let (cfg, clock_offset_ms) = (self.config, self.clock_offset_ms);
        let driver = Arc::new(Driver {
            client,
            table: cfg.table.clone(),
            timeout: cfg.timeout,
            consistent: cfg.consistent_reads,
            gate: self.alone.then(|| tokio::sync::RwLock::new(())),
        });
        tracing::debug!(namespace = %cfg.namespace, table = %cfg.table, "dynamodb backend ready");
        Ok(DynamoBackend::on_driver(driver, cfg, clock_offset_ms))
    }
}

/// A cache backend on one DynamoDB table, shared by every namespace.
///
/// Items are `{pk: "ns:key", ns, v: binary, exp: seconds, exp_ms}`, with a keys-only
/// index on `ns` (for `clear`) and DynamoDB's TTL on `exp`; reads filter expired items.
/// Writes of get-or-compute are fenced (see the crate README).
pub struct DynamoBackend {
    driver: Arc<Driver>,
    caps: Capabilities,
    config: DynamoConfig,
    clock_offset_ms: i64,
}

cache_core::backend_handle! {
    DynamoBackend: DynamoBuilder, DynamoConfig;
    /// Another backend on the same client and table with its own namespace.
    with_namespace: on_driver(driver.clone(), config, clock_offset_ms),
}

impl DynamoBackend {
    fn on_driver(driver: Arc<Driver>, config: DynamoConfig, clock_offset_ms: i64) -> Self {
        DynamoBackend {
            driver,
            caps: config.capabilities(),
            config,
            clock_offset_ms,
        }
    }

    /// The SDK client, for calls this crate does not make.
    pub fn client(&self) -> &Client {
        &self.driver.client
    }

    fn ns(&self) -> &str {
        &self.config.namespace
    }

    /// This client's clock, in epoch milliseconds (shifted only by tests).
    fn now(&self) -> u64 {
        cache_core::raw::shifted_now_ms(self.clock_offset_ms)
    }

    /// When an entry written now with `expiry` expires, on this client's clock, in
    /// epoch milliseconds rounded up (`None`: never), or `Err(())` if it already has.
    fn expires(&self, expiry: Expiry) -> std::result::Result<Option<u64>, ()> {
        cache_core::raw::expires_at_ms_from(self.now(), expiry)
    }

    fn value_pk(&self, key: &str) -> String {
        pk(self.ns(), KeyKind::Value, key)
    }

    /// The live item under `pk`, with the attributes of `projection` (`None`: all).
    async fn get_item(&self, pk: String, projection: Option<&str>) -> Result<Option<Item>> {
        let item = self.driver.get_item(pk, projection).await?;
        Ok(item.filter(|i| is_live(i, self.now())))
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
                .map(|chunk| self.driver.batch_get(chunk.to_vec(), projection)),
        )
        .await?;
        let now = self.now();
        Ok(pages
            .into_iter()
            .flatten()
            .filter(|i| is_live(i, now))
            .filter_map(|i| Some((pk_of(&i)?.to_owned(), i)))
            .collect())
    }

    fn lock_pk(&self, key: &str) -> String {
        pk(self.ns(), KeyKind::Lock, key)
    }

    fn skew_ms(&self) -> u64 {
        u64::try_from(self.config.max_clock_skew.as_millis()).unwrap_or(u64::MAX)
    }

    /// Run fenced writes (see `fence.rs`): in transactions within DynamoDB's limits,
    /// at once, all of them bounded by the timeout.
    async fn fenced(&self, writes: Vec<Fenced>) -> Result<Vec<Fenced>> {
        let skew = self.skew_ms();
        let done = within(BACKEND, self.driver.timeout, async {
            try_join_all(
                fence::chunks(writes)
                    .into_iter()
                    .map(|mut chunk| async move {
                        fence::run(&self.driver, &mut chunk, || self.now(), skew).await?;
                        Ok::<_, cache_core::Error>(chunk)
                    }),
            )
            .await
        })
        .await?;
        Ok(done.into_iter().flatten().collect())
    }

    /// One key's fenced write.
    async fn fenced_one(&self, key: &str, op: ValueWrite) -> Result<Fenced> {
        let mut done = self
            .fenced(vec![Fenced::new(self.lock_pk(key), op)])
            .await?;
        done.pop().ok_or_else(|| {
            cache_core::Error::new(cache_core::ErrorKind::Backend, BACKEND, "no write done")
        })
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
                .map(|chunk| self.driver.batch_write(chunk.to_vec())),
        )
        .await
        .map(drop)
    }

    /// `clear`, first step: mark the namespace's held locks overtaken (they stay
    /// held), each on condition that its token did not change meanwhile; delete the
    /// ones whose deadline passed more than `max_clock_skew` ago.
    async fn overtake_all(&self) -> Result<()> {
        let pks = self
            .driver
            .keys_of(&KeyLayout::lock_namespace(self.ns()))
            .await?;
        if pks.is_empty() {
            return Ok(());
        }
        let pages = try_join_all(
            pks.chunks(BATCH_GET)
                .map(|chunk| self.driver.batch_get(chunk.to_vec(), None)),
        )
        .await?;
        let (now, skew) = (self.now(), self.skew_ms());
        let s = &self.driver;
        try_join_all(pages.into_iter().flatten().filter_map(|lock| {
            let pk = pk_of(&lock)?.to_owned();
            let guard = Guard::of(Some(&lock), now, skew);
            Some(async move {
                // A lock that changed since it was read was taken after the clear
                // began: left as it is.
                match guard {
                    Guard::Mark(token) => {
                        let mut marked = b"!".to_vec();
                        marked.extend_from_slice(&token);
                        s.replace_value(&pk, &token, &marked).await
                    }
                    Guard::Stale(Some(v)) => s.delete_if_value(&pk, &[&v]).await,
                    _ => Ok(true),
                }
            })
        }))
        .await
        .map(drop)
    }
}

cache_core::impl_backend_builder!(config: DynamoBuilder => DynamoBackend, DynamoConfig::capabilities);

#[async_trait]
impl CacheBackend for DynamoBackend {
    cache_core::backend_identity!(caps);

    async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        let found = self.get_item(self.value_pk(key), None).await?;
        Ok(found.and_then(value_of).map(Bytes::from))
    }

    async fn set(&self, key: &str, value: Bytes, expiry: Expiry) -> Result<()> {
        let Ok(exp) = self.expires(expiry) else {
            return self.delete(key).await.map(drop);
        };
        let item = item(self.value_pk(key), self.ns(), &value, exp);
        self.fenced_one(key, ValueWrite::Put(item)).await.map(drop)
    }

    async fn delete(&self, key: &str) -> Result<bool> {
        let op = ValueWrite::Delete {
            pk: self.value_pk(key),
            if_live: true,
        };
        Ok(self.fenced_one(key, op).await?.was_live)
    }

    async fn has(&self, key: &str) -> Result<bool> {
        // Without the value, which may be large.
        Ok(self
            .get_item(self.value_pk(key), Some("#pk, #exp_ms"))
            .await?
            .is_some())
    }

    async fn clear(&self) -> Result<()> {
        // The held locks first (marked, never removed), then the values: the keys of
        // this namespace from its index (never a scan, never a pattern), deleted with
        // batch writes.
        self.overtake_all().await?;
        let pks = self.driver.keys_of(self.ns()).await?;
        self.delete_pks(pks).await
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
        let Ok(exp) = self.expires(expiry) else {
            let keys: Vec<&str> = items.iter().map(|(k, _)| *k).collect();
            return self.delete_many(&keys).await.map(drop);
        };
        // One write per key (a transaction refuses the same item twice): the last
        // value given wins.
        let writes = last_of_each(items)
            .into_iter()
            .map(|i| {
                let (k, v) = &items[i];
                Fenced::new(
                    self.lock_pk(k),
                    ValueWrite::Put(item(self.value_pk(k), self.ns(), v, exp)),
                )
            })
            .collect();
        self.fenced(writes).await.map(drop)
    }

    async fn delete_many(&self, keys: &[&str]) -> Result<usize> {
        let keys = distinct(keys.iter().copied());
        let pks: Vec<String> = keys.iter().map(|k| self.value_pk(k)).collect();
        let live = self.live_items(&pks, Some("#pk, #exp_ms")).await?.len();
        let writes = keys
            .iter()
            .zip(pks)
            .map(|(k, pk)| Fenced::new(self.lock_pk(k), ValueWrite::Delete { pk, if_live: false }))
            .collect();
        self.fenced(writes).await?;
        Ok(live)
    }

    async fn set_if_absent(&self, key: &str, value: Bytes, expiry: Expiry) -> Result<bool> {
        let Ok(exp) = self.expires(expiry) else {
            return Ok(false);
        };
        let item = item(self.value_pk(key), self.ns(), &value, exp);
        Ok(self
            .fenced_one(key, ValueWrite::PutIfAbsent(item))
            .await?
            .stored)
    }

    async fn acquire_lock(&self, key: &str, ttl: Duration) -> Result<Option<LockToken>> {
        let token = LockToken::random();
        let exp = self.expires(Expiry::After(ttl)).ok().flatten();
        // Under the locks' own namespace attribute: `clear` leaves held locks alone.
        // Its TTL attribute outlives the deadline by the skew margin (see `lock_item`).
        let lock = lock_item(
            self.lock_pk(key),
            &KeyLayout::lock_namespace(self.ns()),
            token.as_str().as_bytes(),
            exp,
            self.skew_ms(),
        );
        // Free, or its deadline passed more than `max_clock_skew` ago on this clock:
        // the deadline was written with the holder's clock, which may run behind.
        let stale = self.now().saturating_sub(self.skew_ms());
        let won = self.driver.put_lock(lock, stale).await?;
        Ok(won.then_some(token))
    }

    async fn release_lock(&self, key: &str, token: &LockToken) -> Result<bool> {
        // Held or overtaken, as long as it is this token's. An expired lock that
        // nobody took since is still the token's and goes too.
        let marked = overtaken(token.as_str());
        let owned: [&[u8]; 2] = [token.as_str().as_bytes(), marked.as_bytes()];
        self.driver
            .delete_if_value(&self.lock_pk(key), &owned)
            .await
    }

    async fn set_locked(
        &self,
        key: &str,
        value: Bytes,
        expiry: Expiry,
        token: &LockToken,
    ) -> Result<bool> {
        // One transaction: delete the lock on condition that it holds the token (not
        // overtaken), and write the value (or delete it, for an expiry already past).
        // The lock's deadline is not looked at: a takeover replaces the token, and an
        // app write marks or deletes any lock it finds.
        let op = match self.expires(expiry) {
            Ok(exp) => ValueWrite::Put(item(self.value_pk(key), self.ns(), &value, exp)),
            Err(()) => ValueWrite::Delete {
                pk: self.value_pk(key),
                if_live: false,
            },
        };
        let s = &self.driver;
        let lock_pk = self.lock_pk(key);
        within(BACKEND, s.timeout, async {
            for attempt in 0..8u64 {
                let held = token.as_str().as_bytes();
                let done = s.take_lock_and_write(&lock_pk, held, &op, self.now());
                let Some(reasons) = done.await? else {
                    return Ok(true);
                };
                let code = |i: usize| reasons.get(i).map_or("None", |r| r.code.as_str());
                match (code(0), code(1)) {
                    ("ConditionalCheckFailed", _) => {
                        // Not this token's lock, or overtaken: if overtaken, release it.
                        let was = reasons[0].item.as_ref().and_then(|i| match i.get(VALUE) {
                            Some(AttributeValue::B(b)) => Some(b.as_ref().to_vec()),
                            _ => None,
                        });
                        if was.is_some_and(|v| {
                            lock_state(&v, token) == cache_core::raw::LockState::Overtaken
                        }) {
                            self.release_lock(key, token).await?;
                        }
                        return Ok(false);
                    }
                    ("TransactionConflict", _) | (_, "TransactionConflict") => {
                        tokio::time::sleep(Duration::from_millis(10 * (attempt + 1))).await;
                    }
                    (a, b) => {
                        return Err(cache_core::Error::new(
                            cache_core::ErrorKind::Backend,
                            BACKEND,
                            format!("DynamoDB cancelled the fenced write: {a}, {b}"),
                        ))
                    }
                }
            }
            Err(cache_core::Error::new(
                cache_core::ErrorKind::Unavailable,
                BACKEND,
                "DynamoDB kept cancelling the fenced write (transaction conflicts); retry",
            ))
        })
        .await
    }

    async fn close(&self) -> Result<()> {
        Ok(())
    }
}
