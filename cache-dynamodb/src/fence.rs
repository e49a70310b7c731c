//! Fenced writes: every write of a value is one `TransactWriteItems` that also asserts
//! something about the key's lock item, so that a lock held while the application
//! writes ends up marked overtaken, in the same atomic step as the write.
//!
//! The first attempt assumes the common case, no lock item (`attribute_not_exists`):
//! one round trip. When a lock is there, the cancellation reasons return it as it was
//! (`ReturnValuesOnConditionCheckFailure: ALL_OLD`) and the next attempt asserts what
//! was found: a live lock is marked (`v := "!" + token` on condition `v = token`), a
//! marked one is checked unchanged, and one whose deadline passed more than
//! `max_clock_skew` ago is deleted (its late holder then finds no lock and writes
//! nothing). A failed assertion never fails the write: it only tells the next attempt
//! what to assert.

use crate::driver::{key_of, Driver, Item, ABSENT_OR_EXPIRED, EXPIRES_MS, PK, VALUE};
use crate::error::BACKEND;
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, Delete, Put, ReturnValuesOnConditionCheckFailure,
    TransactWriteItem, Update,
};
use cache_core::{Error, ErrorKind, Result};
use std::collections::HashMap;
use std::time::Duration;

/// Attempts of one fenced write before it gives up (each cancellation that is not a
/// conflict tells the next attempt the lock's state, so two or three are the most a
/// write needs unless locks keep changing under it).
const ATTEMPTS: u32 = 8;

/// DynamoDB's limits on one transaction: 100 actions (two per key here) and 4 MB.
pub(crate) const MAX_KEYS: usize = 50;
pub(crate) const MAX_BYTES: usize = 3 * 1024 * 1024 + 512 * 1024;

/// What a write asserts about the key's lock item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Guard {
    /// No lock item (`attribute_not_exists(pk)`): the common case.
    Free,
    /// A live lock of token `t`: marked overtaken (`v := "!t"`) on condition `v = t`.
    Mark(Vec<u8>),
    /// A lock already marked (`v = "!t"`): checked unchanged.
    Marked(Vec<u8>),
    /// A lock whose deadline passed more than `max_clock_skew` ago on this client's
    /// clock (any contender may take it): deleted, on condition that `v` is unchanged.
    Stale(Option<Vec<u8>>),
}

impl Guard {
    /// The guard for a lock item as it was (`None`: no item), judged at `now` (epoch
    /// ms, this client's clock) with the margin `skew_ms`.
    pub(crate) fn of(item: Option<&Item>, now: u64, skew_ms: u64) -> Guard {
        let Some(item) = item else {
            return Guard::Free;
        };
        let v = match item.get(VALUE) {
            Some(AttributeValue::B(b)) => Some(b.as_ref().to_vec()),
            _ => None,
        };
        let stale = match item.get(EXPIRES_MS) {
            Some(AttributeValue::N(ms)) => ms
                .parse::<u64>()
                .is_ok_and(|ms| ms.saturating_add(skew_ms) < now),
            _ => false,
        };
        match v {
            Some(v) if !stale && v.starts_with(b"!") => Guard::Marked(v),
            Some(v) if !stale => Guard::Mark(v),
            v => Guard::Stale(v),
        }
    }

    fn item(&self, table: &str, lock_pk: &str) -> Result<TransactWriteItem> {
        let names = |pairs: &[(&str, &str)]| {
            Some(
                pairs
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect::<HashMap<_, _>>(),
            )
        };
        let blob = |b: &[u8]| AttributeValue::B(Blob::new(b));
        let old = ReturnValuesOnConditionCheckFailure::AllOld;
        Ok(match self {
            Guard::Free => TransactWriteItem::builder()
                .condition_check(
                    ConditionCheck::builder()
                        .table_name(table)
                        .set_key(Some(key_of(lock_pk.to_owned())))
                        .condition_expression("attribute_not_exists(#pk)")
                        .set_expression_attribute_names(names(&[("#pk", PK)]))
                        .return_values_on_condition_check_failure(old)
                        .build()
                        .map_err(building)?,
                )
                .build(),
            Guard::Mark(token) => {
                let mut marked = b"!".to_vec();
                marked.extend_from_slice(token);
                TransactWriteItem::builder()
                    .update(
                        Update::builder()
                            .table_name(table)
                            .set_key(Some(key_of(lock_pk.to_owned())))
                            .update_expression("SET #v = :marked")
                            .condition_expression("#v = :token")
                            .set_expression_attribute_names(names(&[("#v", VALUE)]))
                            .expression_attribute_values(":marked", blob(&marked))
                            .expression_attribute_values(":token", blob(token))
                            .return_values_on_condition_check_failure(old)
                            .build()
                            .map_err(building)?,
                    )
                    .build()
            }
            Guard::Marked(v) => TransactWriteItem::builder()
                .condition_check(
                    ConditionCheck::builder()
                        .table_name(table)
                        .set_key(Some(key_of(lock_pk.to_owned())))
                        .condition_expression("#v = :v")
                        .set_expression_attribute_names(names(&[("#v", VALUE)]))
                        .expression_attribute_values(":v", blob(v))
                        .return_values_on_condition_check_failure(old)
                        .build()
                        .map_err(building)?,
                )
                .build(),
            Guard::Stale(v) => {
                let delete = Delete::builder()
                    .table_name(table)
                    .set_key(Some(key_of(lock_pk.to_owned())))
                    .set_expression_attribute_names(names(&[("#v", VALUE)]))
                    .return_values_on_condition_check_failure(old);
                let delete = match v {
                    Some(v) => delete
                        .condition_expression("#v = :v")
                        .expression_attribute_values(":v", blob(v)),
                    None => delete.condition_expression("attribute_not_exists(#v)"),
                };
                TransactWriteItem::builder()
                    .delete(delete.build().map_err(building)?)
                    .build()
            }
        })
    }
}

/// What a write does to the value item.
#[derive(Debug, Clone)]
pub(crate) enum ValueWrite {
    /// Put the whole item.
    Put(Item),
    /// Put the whole item only where no live entry is (`set_if_absent`).
    PutIfAbsent(Item),
    /// Delete the item; with `if_live`, on condition that it is live, which tells
    /// whether it was (a delete whose condition failed retries without it only if the
    /// lock still needs its mark).
    Delete { pk: String, if_live: bool },
}

/// The transaction item of `op` on `table`, judged at `now` (epoch ms).
pub(crate) fn value_item(op: &ValueWrite, table: &str, now: u64) -> Result<TransactWriteItem> {
    op.item(table, now)
}

impl ValueWrite {
    fn item(&self, table: &str, now: u64) -> Result<TransactWriteItem> {
        let names = |pairs: &[(&str, &str)]| {
            Some(
                pairs
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect::<HashMap<_, _>>(),
            )
        };
        Ok(match self {
            ValueWrite::Put(item) => TransactWriteItem::builder()
                .put(
                    Put::builder()
                        .table_name(table)
                        .set_item(Some(item.clone()))
                        .build()
                        .map_err(building)?,
                )
                .build(),
            ValueWrite::PutIfAbsent(item) => TransactWriteItem::builder()
                .put(
                    Put::builder()
                        .table_name(table)
                        .set_item(Some(item.clone()))
                        .condition_expression(ABSENT_OR_EXPIRED)
                        .set_expression_attribute_names(names(&[
                            ("#pk", PK),
                            ("#exp_ms", EXPIRES_MS),
                        ]))
                        .expression_attribute_values(":now", AttributeValue::N(now.to_string()))
                        .build()
                        .map_err(building)?,
                )
                .build(),
            ValueWrite::Delete { pk, if_live } => {
                let delete = Delete::builder()
                    .table_name(table)
                    .set_key(Some(key_of(pk.clone())));
                let delete = if *if_live {
                    delete
                        .condition_expression(
                            "attribute_exists(#pk) AND (attribute_not_exists(#exp_ms) OR #exp_ms > :now)",
                        )
                        .set_expression_attribute_names(names(&[
                            ("#pk", PK),
                            ("#exp_ms", EXPIRES_MS),
                        ]))
                        .expression_attribute_values(":now", AttributeValue::N(now.to_string()))
                } else {
                    delete
                };
                TransactWriteItem::builder()
                    .delete(delete.build().map_err(building)?)
                    .build()
            }
        })
    }

    /// About how many bytes the item adds to a transaction.
    pub(crate) fn size(&self) -> usize {
        match self {
            ValueWrite::Put(item) | ValueWrite::PutIfAbsent(item) => item
                .iter()
                .map(|(k, v)| {
                    k.len()
                        + match v {
                            AttributeValue::B(b) => b.as_ref().len(),
                            AttributeValue::S(s) | AttributeValue::N(s) => s.len(),
                            _ => 16,
                        }
                })
                .sum::<usize>(),
            ValueWrite::Delete { pk, .. } => pk.len(),
        }
    }
}

/// One key's fenced write and, once done, what it did.
#[derive(Debug)]
pub(crate) struct Fenced {
    lock_pk: String,
    guard: Guard,
    op: ValueWrite,
    done: bool,
    /// A put was made (false: `set_if_absent` found a live entry).
    pub(crate) stored: bool,
    /// A delete removed a live entry.
    pub(crate) was_live: bool,
}

impl Fenced {
    pub(crate) fn new(lock_pk: String, op: ValueWrite) -> Self {
        Fenced {
            lock_pk,
            guard: Guard::Free,
            op,
            done: false,
            stored: false,
            was_live: false,
        }
    }

    /// About how many bytes this key adds to a transaction.
    pub(crate) fn size(&self) -> usize {
        self.op.size() + 2 * self.lock_pk.len() + 128
    }

    /// Take in what a cancelled transaction said of this key's two items (`lock`, the
    /// guard's reason; `value`, the value's): the write is done, or the next attempt
    /// asserts what the lock was found to be. True if either item met another
    /// transaction (`TransactionConflict`: wait a little before the next attempt).
    pub(crate) fn learn(
        &mut self,
        lock: &Reason,
        value: &Reason,
        now: u64,
        skew_ms: u64,
    ) -> Result<bool> {
        let mut conflict = false;
        let lock_failed = match lock.code.as_str() {
            "None" => false,
            "ConditionalCheckFailed" => true,
            "TransactionConflict" => {
                conflict = true;
                false
            }
            _ => return Err(reason_error(lock)),
        };
        match value.code.as_str() {
            "None" => {}
            "TransactionConflict" => conflict = true,
            "ConditionalCheckFailed" => match &mut self.op {
                // A live entry is there: nothing is stored, so no lock needs a mark.
                ValueWrite::PutIfAbsent(_) => {
                    self.done = true;
                    return Ok(conflict);
                }
                // Nothing live to delete. Done only if no lock needs a mark: the
                // guard asserted "no lock" and held. A guard that held in this
                // cancelled transaction marked nothing (a lock found by an earlier
                // attempt, the value since expired), and one that met another
                // transaction tells nothing: delete again without the condition,
                // with the guard (updated below if the lock's check failed).
                ValueWrite::Delete { if_live, .. } if *if_live => {
                    *if_live = false;
                    if self.guard == Guard::Free && lock.code == "None" {
                        self.done = true;
                        return Ok(conflict);
                    }
                }
                _ => return Err(reason_error(value)),
            },
            _ => return Err(reason_error(value)),
        }
        if lock_failed {
            self.guard = Guard::of(lock.item.as_ref(), now, skew_ms);
        }
        Ok(conflict)
    }
}

/// Split `writes` into transactions within DynamoDB's limits.
pub(crate) fn chunks(writes: Vec<Fenced>) -> Vec<Vec<Fenced>> {
    let mut out: Vec<Vec<Fenced>> = Vec::new();
    let mut bytes = 0;
    for w in writes {
        let size = w.size();
        match out.last_mut() {
            Some(last) if last.len() < MAX_KEYS && bytes + size <= MAX_BYTES => {
                bytes += size;
                last.push(w);
            }
            _ => {
                bytes = size;
                out.push(vec![w]);
            }
        }
    }
    out
}

/// A cancellation reason: its code (`None` when the item was fine) and the item as it
/// was, when a condition failed.
#[derive(Debug)]
pub(crate) struct Reason {
    pub(crate) code: String,
    pub(crate) item: Option<Item>,
}

/// Run `writes` as one transaction, again with what each cancellation told, until it
/// goes through. `now` is this client's clock (epoch ms), `skew_ms` the margin.
pub(crate) async fn run(
    driver: &Driver,
    writes: &mut [Fenced],
    now: impl Fn() -> u64,
    skew_ms: u64,
) -> Result<()> {
    for attempt in 0..ATTEMPTS {
        let active: Vec<usize> = (0..writes.len()).filter(|&i| !writes[i].done).collect();
        if active.is_empty() {
            return Ok(());
        }
        let at = now();
        let mut items = Vec::with_capacity(active.len() * 2);
        for &i in &active {
            let w = &writes[i];
            items.push(w.guard.item(&driver.table, &w.lock_pk)?);
            items.push(w.op.item(&driver.table, at)?);
        }
        let Some(reasons) = driver.transact(items).await? else {
            for &i in &active {
                let w = &mut writes[i];
                w.done = true;
                match w.op {
                    ValueWrite::Put(_) | ValueWrite::PutIfAbsent(_) => w.stored = true,
                    ValueWrite::Delete { if_live: true, .. } => w.was_live = true,
                    ValueWrite::Delete { if_live: false, .. } => {}
                }
            }
            return Ok(());
        };
        if reasons.len() != active.len() * 2 {
            return Err(Error::new(
                ErrorKind::Backend,
                BACKEND,
                format!(
                    "DynamoDB cancelled a transaction of {} items with {} reasons",
                    active.len() * 2,
                    reasons.len()
                ),
            ));
        }
        let (mut conflict, at) = (false, now());
        for (j, &i) in active.iter().enumerate() {
            conflict |= writes[i].learn(&reasons[2 * j], &reasons[2 * j + 1], at, skew_ms)?;
        }
        if conflict {
            // Another transaction on one of the items: wait a little, with jitter.
            let ms = 10 * u64::from(attempt + 1) + u64::from(uuid_ish() % 20);
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
    }
    Err(Error::new(
        ErrorKind::Unavailable,
        BACKEND,
        format!("DynamoDB cancelled a fenced write {ATTEMPTS} times (locks or transactions kept changing the items); retry"),
    ))
}

/// A few bits of jitter without a random-number crate: the clock's nanoseconds.
fn uuid_ish() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos())
}

fn reason_error(r: &Reason) -> Error {
    let kind = match r.code.as_str() {
        "ThrottlingError" | "ProvisionedThroughputExceeded" | "RequestLimitExceeded" => {
            ErrorKind::Unavailable
        }
        _ => ErrorKind::Backend,
    };
    Error::new(
        kind,
        BACKEND,
        format!("DynamoDB cancelled the transaction: {}", r.code),
    )
}

fn building(e: aws_sdk_dynamodb::error::BuildError) -> Error {
    Error::new(
        ErrorKind::Backend,
        BACKEND,
        "cannot build a TransactWriteItems",
    )
    .with_source(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lock(v: &[u8], exp_ms: u64) -> Item {
        HashMap::from([
            (VALUE.to_owned(), AttributeValue::B(Blob::new(v))),
            (EXPIRES_MS.to_owned(), AttributeValue::N(exp_ms.to_string())),
        ])
    }

    #[test]
    fn a_lock_is_marked_until_its_deadline_passed_by_more_than_the_skew() {
        let now = 1_000_000;
        assert_eq!(Guard::of(None, now, 1000), Guard::Free);
        let live = lock(b"tok", now + 10);
        assert_eq!(
            Guard::of(Some(&live), now, 1000),
            Guard::Mark(b"tok".to_vec())
        );
        let within_skew = lock(b"tok", now - 1000);
        assert_eq!(
            Guard::of(Some(&within_skew), now, 1000),
            Guard::Mark(b"tok".to_vec()),
            "a contender's takeover waits for the skew too"
        );
        let marked = lock(b"!tok", now - 500);
        assert_eq!(
            Guard::of(Some(&marked), now, 1000),
            Guard::Marked(b"!tok".to_vec())
        );
        let stale = lock(b"!tok", now - 1001);
        assert_eq!(
            Guard::of(Some(&stale), now, 1000),
            Guard::Stale(Some(b"!tok".to_vec()))
        );
    }

    fn reason(code: &str, item: Option<Item>) -> Reason {
        Reason {
            code: code.to_owned(),
            item,
        }
    }

    fn delete_if_live() -> Fenced {
        Fenced::new(
            "ns:#lock:k".into(),
            ValueWrite::Delete {
                pk: "ns:k".into(),
                if_live: true,
            },
        )
    }

    fn if_live(w: &Fenced) -> bool {
        matches!(w.op, ValueWrite::Delete { if_live: true, .. })
    }

    /// A delete whose value was found not live is done only when its guard passed as
    /// `Free` (no lock to mark): a guard that did not apply (the transaction was
    /// cancelled by the value's condition, or the lock met another transaction)
    /// marked nothing, so the delete goes again, unconditionally, with its guard.
    #[test]
    fn a_delete_of_nothing_live_is_done_only_once_no_lock_needs_a_mark() {
        let now = 1_000_000;
        // Attempt 1 found a live lock of `t` (the value was live then): Mark(t).
        let mut w = delete_if_live();
        let found = lock(b"t", now + 30_000);
        let conflict = w
            .learn(
                &reason("ConditionalCheckFailed", Some(found)),
                &reason("None", None),
                now,
                1000,
            )
            .unwrap();
        assert!(!conflict && !w.done && if_live(&w));
        assert_eq!(w.guard, Guard::Mark(b"t".to_vec()));

        // Attempt 2: the value expired meanwhile, so its condition fails; the lock's
        // guard passed ("None") but, in a cancelled transaction, marked nothing.
        let mut passed = w;
        passed
            .learn(
                &reason("None", None),
                &reason("ConditionalCheckFailed", None),
                now,
                1000,
            )
            .unwrap();
        assert!(!passed.done, "the lock is not marked yet: not done");
        assert!(
            !if_live(&passed),
            "the next attempt deletes unconditionally"
        );
        assert_eq!(
            passed.guard,
            Guard::Mark(b"t".to_vec()),
            "and marks the lock"
        );

        // The same when the lock met another transaction.
        let mut busy = delete_if_live();
        busy.guard = Guard::Mark(b"t".to_vec());
        let conflict = busy
            .learn(
                &reason("TransactionConflict", None),
                &reason("ConditionalCheckFailed", None),
                now,
                1000,
            )
            .unwrap();
        assert!(conflict && !busy.done && !if_live(&busy));
        assert_eq!(busy.guard, Guard::Mark(b"t".to_vec()));

        // A Free guard that met another transaction: the lock may have appeared.
        let mut free_busy = delete_if_live();
        free_busy
            .learn(
                &reason("TransactionConflict", None),
                &reason("ConditionalCheckFailed", None),
                now,
                1000,
            )
            .unwrap();
        assert!(!free_busy.done && !if_live(&free_busy));
        assert_eq!(free_busy.guard, Guard::Free);

        // A lock found with nothing live: the guard follows the lock, not done.
        let mut both = delete_if_live();
        both.learn(
            &reason("ConditionalCheckFailed", Some(lock(b"!t", now + 30_000))),
            &reason("ConditionalCheckFailed", None),
            now,
            1000,
        )
        .unwrap();
        assert!(!both.done && !if_live(&both));
        assert_eq!(both.guard, Guard::Marked(b"!t".to_vec()));

        // No lock (the Free guard passed) and nothing live: done, nothing was live.
        let mut free = delete_if_live();
        free.learn(
            &reason("None", None),
            &reason("ConditionalCheckFailed", None),
            now,
            1000,
        )
        .unwrap();
        assert!(free.done && !free.was_live);
    }

    #[test]
    fn a_set_if_absent_that_finds_a_live_entry_is_done_without_a_mark() {
        let item = crate::driver::item("ns:k".into(), "ns", b"v", None);
        let mut w = Fenced::new("ns:#lock:k".into(), ValueWrite::PutIfAbsent(item));
        w.learn(
            &reason("ConditionalCheckFailed", Some(lock(b"t", 2_000_000))),
            &reason("ConditionalCheckFailed", None),
            1_000_000,
            1000,
        )
        .unwrap();
        assert!(w.done && !w.stored);
    }

    #[test]
    fn unknown_reasons_fail_the_write() {
        let mut w = delete_if_live();
        let err = w
            .learn(
                &reason("ThrottlingError", None),
                &reason("None", None),
                0,
                0,
            )
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unavailable);
        let mut put = Fenced::new(
            "ns:#lock:k".into(),
            ValueWrite::Put(crate::driver::item("ns:k".into(), "ns", b"v", None)),
        );
        assert!(put
            .learn(
                &reason("None", None),
                &reason("ConditionalCheckFailed", None),
                0,
                0
            )
            .is_err());
    }

    #[test]
    fn chunks_stay_within_the_transaction_limits() {
        let put = |k: usize, len: usize| {
            let item = crate::driver::item(format!("ns:k{k}"), "ns", &vec![0u8; len], None);
            Fenced::new(format!("ns:#lock:k{k}"), ValueWrite::Put(item))
        };
        let small = chunks((0..120).map(|k| put(k, 10)).collect());
        assert_eq!(
            small.iter().map(Vec::len).collect::<Vec<_>>(),
            vec![50, 50, 20]
        );
        let big = chunks((0..30).map(|k| put(k, 390 * 1024)).collect());
        assert!(big.len() >= 3, "{}", big.len());
        assert!(big
            .iter()
            .all(|c| c.iter().map(Fenced::size).sum::<usize>() <= MAX_BYTES));
    }
}
