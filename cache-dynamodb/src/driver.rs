//! The SDK side: the client, the table and its index, items, expiry encoding, the
//! bounded call and the batch calls with their retry of unprocessed items.

use crate::config::DynamoConfig;
use crate::error::{config, map, BACKEND};
use crate::fence::ValueWrite;
use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, DeleteRequest, GlobalSecondaryIndex,
    KeySchemaElement, KeyType, KeysAndAttributes, Projection, ProjectionType, ScalarAttributeType,
    TableStatus, TimeToLiveSpecification, WriteRequest,
};
use aws_sdk_dynamodb::Client;
use backon::{BackoffBuilder, ExponentialBuilder};
use cache_core::raw::{within, KeyKind, KeyLayout};
use cache_core::{Error, ErrorKind, Result};
use std::collections::HashMap;
use std::time::Duration;

/// Partition keys are `ns:key` strings; keys whose store key would pass DynamoDB's
/// 2 048-byte partition-key limit are stored as their digest.
pub(crate) const LAYOUT: KeyLayout = KeyLayout::ANY.max_len(MAX_KEY_LEN);

/// DynamoDB's limit on a partition key, in bytes.
pub(crate) const MAX_KEY_LEN: usize = 2048;

/// Attribute names. `exp` is epoch seconds, for DynamoDB's TTL; `exp_ms` the same
/// instant in milliseconds, which every read checks. Both are absent for entries that
/// never expire.
pub(crate) const PK: &str = "pk";
pub(crate) const NS: &str = "ns";
pub(crate) const VALUE: &str = "v";
pub(crate) const EXPIRES: &str = "exp";
pub(crate) const EXPIRES_MS: &str = "exp_ms";

/// The global secondary index on `ns` (keys only) that `clear` queries.
pub(crate) const NS_INDEX: &str = "cache_ns";

/// DynamoDB's limits on one BatchGetItem and one BatchWriteItem.
pub(crate) const BATCH_GET: usize = 100;
pub(crate) const BATCH_WRITE: usize = 25;

/// An item, as the SDK takes and gives it.
pub(crate) type Item = HashMap<String, AttributeValue>;

/// The partition key of `key` of `kind` in `namespace`.
pub(crate) fn pk(namespace: &str, kind: KeyKind, key: &str) -> String {
    LAYOUT.key(namespace, kind, key).to_string()
}

#[cfg(test)]
use cache_core::raw::expires_at_ms as expires_at;

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

pub(crate) fn n(v: u64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

/// The key map of an item.
pub(crate) fn key_of(pk: String) -> Item {
    HashMap::from([(PK.to_owned(), s(pk))])
}

/// A whole item: every attribute written, so a put leaves nothing of the old one.
pub(crate) fn item(pk: String, namespace: &str, value: &[u8], expires_ms: Option<u64>) -> Item {
    let mut item = HashMap::with_capacity(5);
    item.insert(PK.to_owned(), s(pk));
    item.insert(NS.to_owned(), s(namespace));
    item.insert(
        VALUE.to_owned(),
        AttributeValue::B(aws_sdk_dynamodb::primitives::Blob::new(value)),
    );
    if let Some(ms) = expires_ms {
        item.insert(EXPIRES.to_owned(), n(ms.div_ceil(1000)));
        item.insert(EXPIRES_MS.to_owned(), n(ms));
    }
    item
}

/// A lock item of `token`: as [`item`], but its TTL attribute `exp` is the deadline
/// plus `skew_ms` (rounded up), so DynamoDB's TTL reaper, on AWS's clock, never deletes
/// the live lock of a holder whose clock runs behind by less than `max_clock_skew`
/// (a contender waits that margin past the deadline too). `exp_ms` stays the deadline.
pub(crate) fn lock_item(
    pk: String,
    lock_namespace: &str,
    token: &[u8],
    expires_ms: Option<u64>,
    skew_ms: u64,
) -> Item {
    let mut lock = item(pk, lock_namespace, token, expires_ms);
    if let Some(ms) = expires_ms {
        lock.insert(
            EXPIRES.to_owned(),
            n(ms.saturating_add(skew_ms).div_ceil(1000)),
        );
    }
    lock
}

/// Whether an item (read with its `exp_ms`) is live at `now` (epoch ms). DynamoDB's
/// TTL deletes expired items only eventually (within days), so every read checks.
pub(crate) fn is_live(item: &Item, now: u64) -> bool {
    match item.get(EXPIRES_MS) {
        Some(AttributeValue::N(ms)) => ms.parse::<u64>().is_ok_and(|ms| ms > now),
        _ => true,
    }
}

/// The value bytes of an item.
pub(crate) fn value_of(item: Item) -> Option<Vec<u8>> {
    match item.into_iter().find(|(k, _)| k == VALUE)?.1 {
        AttributeValue::B(b) => Some(b.into_inner()),
        _ => None,
    }
}

pub(crate) fn pk_of(item: &Item) -> Option<&str> {
    item.get(PK)?.as_s().ok().map(String::as_str)
}

/// The condition of a write that must find no live entry: absent, or expired.
pub(crate) const ABSENT_OR_EXPIRED: &str = "attribute_not_exists(#pk) OR #exp_ms < :now";

/// What every namespace's handle shares: the client and the settings of its calls.
pub(crate) struct Driver {
    pub(crate) client: Client,
    pub(crate) table: String,
    pub(crate) timeout: Duration,
    pub(crate) consistent: bool,
    /// Tests only (moto): transactions run alone, other requests among themselves.
    pub(crate) gate: Option<tokio::sync::RwLock<()>>,
}

/// The errors of the calls that take a condition.
pub(crate) trait ConditionFailed {
    fn condition_failed(&self) -> bool;
    /// The item is part of a transaction in progress (`TransactionConflictException`):
    /// the call was refused, nothing was written, and it may be sent again.
    fn transaction_conflict(&self) -> bool;
}

impl ConditionFailed for aws_sdk_dynamodb::operation::put_item::PutItemError {
    fn condition_failed(&self) -> bool {
        self.is_conditional_check_failed_exception()
    }
    fn transaction_conflict(&self) -> bool {
        self.is_transaction_conflict_exception()
    }
}

impl ConditionFailed for aws_sdk_dynamodb::operation::delete_item::DeleteItemError {
    fn condition_failed(&self) -> bool {
        self.is_conditional_check_failed_exception()
    }
    fn transaction_conflict(&self) -> bool {
        self.is_transaction_conflict_exception()
    }
}

impl ConditionFailed for aws_sdk_dynamodb::operation::update_item::UpdateItemError {
    fn condition_failed(&self) -> bool {
        self.is_conditional_check_failed_exception()
    }
    fn transaction_conflict(&self) -> bool {
        self.is_transaction_conflict_exception()
    }
}

/// Retries of a single-item write refused because a transaction on its item was in
/// progress (a fenced write's guard on the same lock): exponential from 10 ms, capped
/// at 100 ms, with jitter, at most 4 times; the call stays bounded by the timeout.
/// The SDK's own retries do not cover `TransactionConflictException`.
fn conflict_backoff() -> impl Iterator<Item = Duration> {
    ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(10))
        .with_max_delay(Duration::from_millis(100))
        .with_max_times(4)
        .with_jitter()
        .build()
}

/// Send `op` again (with [`conflict_backoff`]) while DynamoDB refuses it because a
/// transaction on its item is in progress; its last answer otherwise.
pub(crate) async fn retry_conflicts<T, E, R, Fut>(
    op: impl Fn() -> Fut,
) -> std::result::Result<T, SdkError<E, R>>
where
    E: ConditionFailed,
    Fut: std::future::Future<Output = std::result::Result<T, SdkError<E, R>>>,
{
    let mut delays = conflict_backoff();
    loop {
        match op().await {
            Err(e) if e.as_service_error().is_some_and(E::transaction_conflict) => {
                let Some(delay) = delays.next() else {
                    return Err(e);
                };
                tracing::debug!(?delay, "dynamodb: transaction conflict, retrying");
                tokio::time::sleep(delay).await;
            }
            answer => return answer,
        }
    }
}

/// Retries of unprocessed batch items: exponential from 25 ms, capped at 1 s, with
/// jitter, at most 10 times; the whole call stays bounded by the timeout.
fn unprocessed_backoff() -> impl Iterator<Item = Duration> {
    ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(25))
        .with_max_delay(Duration::from_secs(1))
        .with_max_times(10)
        .with_jitter()
        .build()
}

fn gave_up(what: &str, left: usize) -> Error {
    Error::new(
        ErrorKind::Unavailable,
        BACKEND,
        format!("DynamoDB left {left} {what} unprocessed after 10 retries (throttled?); retry later or raise the table's capacity"),
    )
}

impl Driver {
    /// With the test gate: a shared pass for an ordinary request.
    async fn pass(&self) -> Option<tokio::sync::RwLockReadGuard<'_, ()>> {
        match &self.gate {
            Some(g) => Some(g.read().await),
            None => None,
        }
    }

    /// Bound a call by the timeout.
    pub(crate) async fn call<T, E>(
        &self,
        op: impl std::future::Future<Output = std::result::Result<T, SdkError<E, HttpResponse>>>,
    ) -> Result<T>
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        within(BACKEND, self.timeout, async {
            let _pass = self.pass().await;
            op.await.map_err(map)
        })
        .await
    }

    /// Bound a conditional write by the timeout: true if it was made, false if its
    /// condition failed (the SDK's typed `ConditionalCheckFailedException`). `op`
    /// sends the request; it is sent again while a transaction on the item is in
    /// progress ([`retry_conflicts`]).
    pub(crate) async fn conditional<T, E, Fut>(&self, op: impl Fn() -> Fut) -> Result<bool>
    where
        E: ConditionFailed + ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
        Fut: std::future::Future<Output = std::result::Result<T, SdkError<E, HttpResponse>>>,
    {
        let made = within(BACKEND, self.timeout, async {
            Ok(retry_conflicts(|| async {
                let _pass = self.pass().await;
                op().await
            })
            .await)
        })
        .await?;
        match made {
            Ok(_) => Ok(true),
            Err(e) if e.as_service_error().is_some_and(E::condition_failed) => Ok(false),
            Err(e) => Err(map(e)),
        }
    }

    /// Send one `TransactWriteItems` (not bounded here: the caller bounds its attempts
    /// together): `None` if it went through, the cancellation reasons (one per item,
    /// in order) if DynamoDB cancelled it.
    pub(crate) async fn transact(
        &self,
        items: Vec<aws_sdk_dynamodb::types::TransactWriteItem>,
    ) -> Result<Option<Vec<crate::fence::Reason>>> {
        use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
        let _alone = match &self.gate {
            Some(g) => Some(g.write().await),
            None => None,
        };
        match self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await
        {
            Ok(_) => Ok(None),
            Err(e) => match e.as_service_error() {
                Some(TransactWriteItemsError::TransactionCanceledException(c)) => Ok(Some(
                    c.cancellation_reasons()
                        .iter()
                        .map(|r| crate::fence::Reason {
                            code: r.code().unwrap_or("None").to_owned(),
                            item: r.item().cloned(),
                        })
                        .collect(),
                )),
                _ => Err(map(e)),
            },
        }
    }

    /// The items of `pks` (distinct, at most [`BATCH_GET`]), with the attributes of
    /// `projection` (`None`: all); unprocessed keys are asked again with backoff.
    pub(crate) async fn batch_get(
        &self,
        pks: Vec<String>,
        projection: Option<&str>,
    ) -> Result<Vec<Item>> {
        within(BACKEND, self.timeout, async {
            let mut found = Vec::with_capacity(pks.len());
            let mut keys = KeysAndAttributes::builder()
                .set_keys(Some(pks.into_iter().map(key_of).collect()))
                .consistent_read(self.consistent)
                .set_projection_expression(projection.map(str::to_owned))
                .set_expression_attribute_names(projection.map(|_| {
                    HashMap::from([
                        ("#pk".to_owned(), PK.to_owned()),
                        ("#exp_ms".to_owned(), EXPIRES_MS.to_owned()),
                    ])
                }))
                .build()
                .map_err(|e| {
                    Error::new(ErrorKind::Backend, BACKEND, "cannot build a BatchGetItem")
                        .with_source(e)
                })?;
            let mut delays = unprocessed_backoff();
            loop {
                let pass = self.pass().await;
                let out = self
                    .client
                    .batch_get_item()
                    .request_items(&self.table, keys)
                    .send()
                    .await
                    .map_err(map)?;
                drop(pass);
                if let Some(mut r) = out.responses {
                    found.extend(r.remove(&self.table).unwrap_or_default());
                }
                match out.unprocessed_keys.and_then(|mut u| u.remove(&self.table)) {
                    Some(left) if !left.keys.is_empty() => {
                        let delay = delays
                            .next()
                            .ok_or_else(|| gave_up("keys", left.keys.len()))?;
                        tracing::debug!(
                            left = left.keys.len(),
                            ?delay,
                            "dynamodb: unprocessed keys, retrying"
                        );
                        tokio::time::sleep(delay).await;
                        keys = left;
                    }
                    _ => return Ok(found),
                }
            }
        })
        .await
    }

    /// Send `writes` (at most [`BATCH_WRITE`], distinct keys); unprocessed ones are
    /// sent again with backoff.
    pub(crate) async fn batch_write(&self, mut writes: Vec<WriteRequest>) -> Result<()> {
        within(BACKEND, self.timeout, async {
            let mut delays = unprocessed_backoff();
            loop {
                let pass = self.pass().await;
                let out = self
                    .client
                    .batch_write_item()
                    .request_items(&self.table, writes)
                    .send()
                    .await
                    .map_err(map)?;
                drop(pass);
                match out
                    .unprocessed_items
                    .and_then(|mut u| u.remove(&self.table))
                {
                    Some(left) if !left.is_empty() => {
                        let delay = delays.next().ok_or_else(|| gave_up("writes", left.len()))?;
                        tracing::debug!(
                            left = left.len(),
                            ?delay,
                            "dynamodb: unprocessed writes, retrying"
                        );
                        tokio::time::sleep(delay).await;
                        writes = left;
                    }
                    _ => return Ok(()),
                }
            }
        })
        .await
    }
}

/// The requests the backend sends, built here: the backend says what to do with which
/// keys, the driver how DynamoDB is asked.
impl Driver {
    /// The item under `pk`, live or not, with the attributes of `projection` (`None`:
    /// all).
    pub(crate) async fn get_item(
        &self,
        pk: String,
        projection: Option<&str>,
    ) -> Result<Option<Item>> {
        let out = self
            .call(
                self.client
                    .get_item()
                    .table_name(&self.table)
                    .set_key(Some(key_of(pk)))
                    .consistent_read(self.consistent)
                    .set_projection_expression(projection.map(str::to_owned))
                    .set_expression_attribute_names(
                        projection.map(|_| names(&[("#pk", PK), ("#exp_ms", EXPIRES_MS)])),
                    )
                    .send(),
            )
            .await?;
        Ok(out.item)
    }

    /// Every partition key of the index query `ns = namespace`, page by page.
    pub(crate) async fn keys_of(&self, namespace: &str) -> Result<Vec<String>> {
        let mut start: Option<Item> = None;
        let mut out = Vec::new();
        loop {
            let page = self
                .call(
                    self.client
                        .query()
                        .table_name(&self.table)
                        .index_name(NS_INDEX)
                        .key_condition_expression("#ns = :ns")
                        .expression_attribute_names("#ns", NS)
                        .expression_attribute_values(":ns", AttributeValue::S(namespace.to_owned()))
                        .set_exclusive_start_key(start.take())
                        .send(),
                )
                .await?;
            out.extend(
                page.items()
                    .iter()
                    .filter_map(|i| pk_of(i).map(str::to_owned)),
            );
            match page.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return Ok(cache_core::raw::distinct(out)),
            }
        }
    }

    /// Put `lock` where no live lock is: none, or one whose deadline (`exp_ms`) is
    /// before `stale_before`. True if it was put.
    pub(crate) async fn put_lock(&self, lock: Item, stale_before: u64) -> Result<bool> {
        self.conditional(|| {
            self.client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(lock.clone()))
                .condition_expression(ABSENT_OR_EXPIRED)
                .set_expression_attribute_names(Some(names(&[
                    ("#pk", PK),
                    ("#exp_ms", EXPIRES_MS),
                ])))
                .expression_attribute_values(":now", n(stale_before))
                .send()
        })
        .await
    }

    /// Set the value of the item under `pk` to `to` if it is still `was`.
    pub(crate) async fn replace_value(&self, pk: &str, was: &[u8], to: &[u8]) -> Result<bool> {
        self.conditional(|| {
            self.client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(key_of(pk.to_owned())))
                .update_expression("SET #v = :to")
                .condition_expression("#v = :was")
                .expression_attribute_names("#v", VALUE)
                .expression_attribute_values(":to", blob(to))
                .expression_attribute_values(":was", blob(was))
                .send()
        })
        .await
    }

    /// Delete the item under `pk` if its value is one of `values`. True if deleted.
    pub(crate) async fn delete_if_value(&self, pk: &str, values: &[&[u8]]) -> Result<bool> {
        let condition = (0..values.len())
            .map(|i| format!("#v = :v{i}"))
            .collect::<Vec<_>>()
            .join(" OR ");
        self.conditional(|| {
            let mut request = self
                .client
                .delete_item()
                .table_name(&self.table)
                .set_key(Some(key_of(pk.to_owned())))
                .condition_expression(condition.clone())
                .expression_attribute_names("#v", VALUE);
            for (i, v) in values.iter().enumerate() {
                request = request.expression_attribute_values(format!(":v{i}"), blob(v));
            }
            request.send()
        })
        .await
    }

    /// One `TransactWriteItems` (see [`transact`](Self::transact)): delete the lock
    /// under `lock_pk` on condition that it holds `token` (its old item comes back in
    /// the cancellation reason when it does not), and `write` the value item, judged
    /// at `now`.
    pub(crate) async fn take_lock_and_write(
        &self,
        lock_pk: &str,
        token: &[u8],
        write: &ValueWrite,
        now: u64,
    ) -> Result<Option<Vec<crate::fence::Reason>>> {
        let take = aws_sdk_dynamodb::types::Delete::builder()
            .table_name(&self.table)
            .set_key(Some(key_of(lock_pk.to_owned())))
            .condition_expression("#v = :token")
            .expression_attribute_names("#v", VALUE)
            .expression_attribute_values(":token", blob(token))
            .return_values_on_condition_check_failure(
                aws_sdk_dynamodb::types::ReturnValuesOnConditionCheckFailure::AllOld,
            )
            .build()
            .map_err(|e| {
                Error::new(
                    ErrorKind::Backend,
                    BACKEND,
                    "cannot build a TransactWriteItems",
                )
                .with_source(e)
            })?;
        let items = vec![
            aws_sdk_dynamodb::types::TransactWriteItem::builder()
                .delete(take)
                .build(),
            crate::fence::value_item(write, &self.table, now)?,
        ];
        self.transact(items).await
    }
}

/// A binary attribute.
pub(crate) fn blob(bytes: &[u8]) -> AttributeValue {
    AttributeValue::B(aws_sdk_dynamodb::primitives::Blob::new(bytes))
}

/// Expression attribute names from `(#name, attribute)` pairs.
pub(crate) fn names(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

pub(crate) fn delete_request(pk: String) -> Result<WriteRequest> {
    let delete = DeleteRequest::builder()
        .set_key(Some(key_of(pk)))
        .build()
        .map_err(|e| {
            Error::new(ErrorKind::Backend, BACKEND, "cannot build a DeleteRequest").with_source(e)
        })?;
    Ok(WriteRequest::builder().delete_request(delete).build())
}

/// Table names DynamoDB accepts: 3 to 255 of `a-z A-Z 0-9 _ - .`.
pub(crate) fn validate_table(name: &str) -> Result<()> {
    let ok = (3..=255).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c));
    if ok {
        Ok(())
    } else {
        Err(config(format!(
            "invalid table name {name:?}: use 3 to 255 of a-z, A-Z, 0-9, '_', '-', '.'"
        )))
    }
}

pub(crate) fn validate(cfg: &DynamoConfig) -> Result<()> {
    cache_core::raw::validate_namespace(BACKEND, &cfg.namespace)?;
    validate_table(&cfg.table)?;
    if cfg.timeout.is_zero() || cfg.connect_timeout.is_zero() {
        return Err(config("timeout and connect_timeout must be positive"));
    }
    let most = crate::config::MAX_VALUE;
    if cfg.max_value_size > most {
        return Err(config(format!(
            "max_value_size is over what fits a 400 KB DynamoDB item with its key; use at most {most}"
        )));
    }
    Ok(())
}

/// Check that the table exists, is usable, and has the layout this crate writes: a
/// string partition key `pk` alone, and the index on `ns`.
pub(crate) async fn check_table(client: &Client, table: &str, limit: Duration) -> Result<()> {
    let out = within(BACKEND, limit, async {
        client.describe_table().table_name(table).send().await.map_err(map)
    })
    .await
    .map_err(|e| match e.kind() {
        ErrorKind::Config if e.message().contains("ResourceNotFound") => config(format!(
            "the table {table:?} does not exist; create it once with DynamoBuilder::create_table() (or as the crate README shows)"
        )),
        _ => e,
    })?;
    let t = out
        .table
        .ok_or_else(|| config(format!("DynamoDB described no table {table:?}")))?;
    let keys = t.key_schema();
    let pk_only =
        keys.len() == 1 && keys[0].attribute_name() == PK && keys[0].key_type() == &KeyType::Hash;
    let has_index = t
        .global_secondary_indexes()
        .iter()
        .any(|i| i.index_name() == Some(NS_INDEX));
    if !pk_only || !has_index {
        return Err(config(format!(
            "the table {table:?} does not have this crate's layout (partition key \"pk\" alone and the index \"{NS_INDEX}\" on \"ns\"); use a table made by DynamoBuilder::create_table()"
        )));
    }
    Ok(())
}

/// Create the table if absent (on-demand billing, the `ns` index, TTL on `exp`) and
/// wait until it is ACTIVE, for at most `limit`.
pub(crate) async fn create_table(client: &Client, table: &str, limit: Duration) -> Result<()> {
    within(BACKEND, limit, async {
        let attr = |name: &str| {
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .map_err(|e| config("cannot describe an attribute").with_source(e))
        };
        let hash = |name: &str| {
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(KeyType::Hash)
                .build()
                .map_err(|e| config("cannot describe a key").with_source(e))
        };
        let index = GlobalSecondaryIndex::builder()
            .index_name(NS_INDEX)
            .key_schema(hash(NS)?)
            .projection(
                Projection::builder()
                    .projection_type(ProjectionType::KeysOnly)
                    .build(),
            )
            .build()
            .map_err(|e| config("cannot describe the index").with_source(e))?;
        let created = client
            .create_table()
            .table_name(table)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(attr(PK)?)
            .attribute_definitions(attr(NS)?)
            .key_schema(hash(PK)?)
            .global_secondary_indexes(index)
            .send()
            .await;
        match created {
            Ok(_) => tracing::info!(table, "dynamodb: created the cache table"),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_resource_in_use_exception()) => {}
            Err(e) => return Err(map(e)),
        }
        loop {
            let out = client
                .describe_table()
                .table_name(table)
                .send()
                .await
                .map_err(map)?;
            if out.table.and_then(|t| t.table_status) == Some(TableStatus::Active) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let ttl = client
            .describe_time_to_live()
            .table_name(table)
            .send()
            .await
            .map_err(map)?;
        let enabled = ttl
            .time_to_live_description
            .is_some_and(|d| d.attribute_name() == Some(EXPIRES));
        if !enabled {
            client
                .update_time_to_live()
                .table_name(table)
                .time_to_live_specification(
                    TimeToLiveSpecification::builder()
                        .enabled(true)
                        .attribute_name(EXPIRES)
                        .build()
                        .map_err(|e| config("cannot describe the TTL").with_source(e))?,
                )
                .send()
                .await
                .map_err(map)?;
        }
        Ok(())
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use cache_core::Expiry;

    #[test]
    fn partition_keys_are_unambiguous_and_bounded() {
        assert_eq!(pk("app", KeyKind::Value, "user:1"), "app:user:1");
        assert_eq!(pk("app", KeyKind::Lock, "user:1"), "app:#lock:user:1");
        let long = pk("app", KeyKind::Value, &"é".repeat(5000));
        assert!(long.len() <= MAX_KEY_LEN, "{}", long.len());
        assert!(long.starts_with("app:#"));
        let edge = "x".repeat(MAX_KEY_LEN - 4);
        assert_eq!(pk("app", KeyKind::Value, &edge).len(), MAX_KEY_LEN);
    }

    #[test]
    fn expiries_round_up_and_clamp() {
        assert_eq!(expires_at(Expiry::Never), Ok(None));
        assert_eq!(expires_at(Expiry::After(Duration::ZERO)), Err(()));
        assert_eq!(
            expires_at(Expiry::After(Duration::MAX)),
            Ok(Some(253_402_300_799_000))
        );
        let soon = expires_at(Expiry::After(Duration::from_micros(10)))
            .unwrap()
            .unwrap();
        assert!(soon > cache_core::raw::now_ms() - 5);
        // The TTL attribute (seconds) is never before the exact expiry.
        let it = item("a:b".into(), "a", b"v", Some(1_500));
        assert_eq!(it[EXPIRES], n(2));
        assert!(is_live(&it, 1_499) && !is_live(&it, 1_500));
        assert!(is_live(&item("a:b".into(), "a", b"v", None), u64::MAX));
        // A lock's TTL attribute waits the skew margin past its deadline.
        let lock = lock_item("a:#lock:b".into(), "a:#lock", b"t", Some(1_500), 1_000);
        assert_eq!((&lock[EXPIRES], &lock[EXPIRES_MS]), (&n(3), &n(1_500)));
        assert!(!lock_item("a:#lock:b".into(), "a:#lock", b"t", None, 1_000).contains_key(EXPIRES));
    }

    /// A single-item write that meets a transaction in progress on its item is sent
    /// again (the SDK does not retry `TransactionConflictException`); a refused
    /// condition or another error is answered at once; conflicts that last give up.
    #[tokio::test]
    async fn transaction_conflicts_are_retried_a_few_times() {
        use aws_sdk_dynamodb::operation::put_item::PutItemError;
        use aws_sdk_dynamodb::types::error::{
            ConditionalCheckFailedException, TransactionConflictException,
        };
        use std::sync::atomic::{AtomicUsize, Ordering};
        type Answer = std::result::Result<u8, SdkError<PutItemError, u16>>;
        let conflict = || {
            let e = TransactionConflictException::builder()
                .message("Transaction is ongoing for the item")
                .build();
            SdkError::service_error(PutItemError::TransactionConflictException(e), 400)
        };
        let calls = AtomicUsize::new(0);
        let answer = retry_conflicts(|| async {
            match calls.fetch_add(1, Ordering::SeqCst) {
                0 | 1 => Err(conflict()),
                _ => Ok(7),
            }
        })
        .await;
        assert_eq!(answer.unwrap(), 7);
        assert_eq!(calls.swap(0, Ordering::SeqCst), 3);

        let answer = retry_conflicts(|| async {
            calls.fetch_add(1, Ordering::SeqCst);
            let e = ConditionalCheckFailedException::builder().build();
            Answer::Err(SdkError::service_error(
                PutItemError::ConditionalCheckFailedException(e),
                400,
            ))
        })
        .await;
        assert!(answer
            .unwrap_err()
            .as_service_error()
            .is_some_and(PutItemError::is_conditional_check_failed_exception));
        assert_eq!(
            calls.swap(0, Ordering::SeqCst),
            1,
            "a refused condition is final"
        );

        let started = std::time::Instant::now();
        let answer = retry_conflicts(|| async {
            calls.fetch_add(1, Ordering::SeqCst);
            Answer::Err(conflict())
        })
        .await;
        assert!(answer
            .unwrap_err()
            .as_service_error()
            .is_some_and(PutItemError::is_transaction_conflict_exception));
        assert_eq!(
            calls.load(Ordering::SeqCst),
            5,
            "sent once and retried 4 times"
        );
        assert!(started.elapsed() < Duration::from_secs(1), "short backoff");
    }

    #[test]
    fn table_names() {
        for bad in ["", "ab", "a b", "a/b", "ä123", &"x".repeat(256)] {
            assert!(validate_table(bad).is_err(), "{bad}");
        }
        validate_table("cache.entries-1_x").unwrap();
    }
}
