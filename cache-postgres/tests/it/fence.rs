//! Fenced writes under concurrency: what READ COMMITTED does when a holder's
//! `set_locked` and an application write meet on the same lock row, checked with
//! transactions held open on a raw connection (the conformance suite checks the
//! sequential cases).

use crate::common;
use cache_core::{Bytes, CacheBackend, Expiry, LockToken};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

const TABLE: &str = "fence_test";
const FRESH: Expiry = Expiry::After(Duration::from_secs(60));

async fn raw() -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(&common::url().await, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    client
}

/// Two handles (as two processes) on one namespace of the test table, with a timeout
/// long enough to wait on a row lock held by the test.
async fn handles() -> (Arc<dyn CacheBackend>, Arc<dyn CacheBackend>, String) {
    let ns = conformance_tests::random_namespace();
    let b = common::builder(&ns)
        .await
        .table(TABLE)
        .timeout(Duration::from_secs(10))
        .build()
        .await
        .unwrap();
    let other = b.with_namespace(&ns).unwrap();
    (Arc::new(b), Arc::new(other), ns)
}

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

/// `f` runs and is still waiting 300 ms later (on a row lock).
async fn started_and_waiting<T: Send + 'static>(
    f: impl Future<Output = T> + Send + 'static,
) -> tokio::task::JoinHandle<T> {
    let task = tokio::spawn(f);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !task.is_finished(),
        "the statement did not wait for the row"
    );
    task
}

/// Whether the value row of `k` can be row-locked at once by another connection.
async fn value_row_is_free(ns: &str, k: &str) -> bool {
    let c = raw().await;
    c.batch_execute("BEGIN").await.unwrap();
    let r = c
        .query(
            &format!("SELECT 1 FROM {TABLE} WHERE namespace = $1 AND key = $2 FOR UPDATE NOWAIT"),
            &[&ns, &k],
        )
        .await;
    c.batch_execute("ROLLBACK").await.unwrap();
    match r {
        Ok(rows) => {
            assert_eq!(rows.len(), 1, "the value row exists");
            true
        }
        Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::LOCK_NOT_AVAILABLE) => false,
        Err(e) => panic!("{e}"),
    }
}

/// An application write that marked the lock (and wrote its value) in a transaction
/// not yet committed: `set_locked` waits for the lock row, then sees the overtaken
/// token (READ COMMITTED re-checks its WHERE on the new row), releases the lock and
/// stores nothing.
#[tokio::test]
async fn set_locked_waits_for_an_uncommitted_app_write_then_refuses() {
    let (holder, app, ns) = handles().await;
    let token = holder
        .acquire_lock("k", Duration::from_secs(30))
        .await
        .unwrap()
        .unwrap();
    let c = raw().await;
    c.batch_execute("BEGIN").await.unwrap();
    c.execute(
        &format!(
            "UPDATE {TABLE} SET value = '!'::bytea || value \
             WHERE namespace = $1 AND key = '#lock:k'"
        ),
        &[&ns],
    )
    .await
    .unwrap();
    c.execute(
        &format!("INSERT INTO {TABLE} VALUES ($1, 'k', 'app', NULL)"),
        &[&ns],
    )
    .await
    .unwrap();
    let h = holder.clone();
    let write =
        started_and_waiting(async move { h.set_locked("k", b("computed"), FRESH, &token).await })
            .await;
    c.batch_execute("COMMIT").await.unwrap();
    assert!(
        !write.await.unwrap().unwrap(),
        "the holder's write is refused"
    );
    assert_eq!(app.get("k").await.unwrap(), Some(b("app")));
    let next = app
        .acquire_lock("k", Duration::from_secs(30))
        .await
        .unwrap();
    assert!(next.is_some(), "set_locked released the overtaken lock");
}

/// The holder's statement got the lock row first (here: a transaction holding it): an
/// application write waits for it, then finds the lock gone, and its value replaces
/// the computed one.
#[tokio::test]
async fn an_app_write_waits_for_the_holders_statement_then_wins() {
    let (holder, app, ns) = handles().await;
    let token = holder
        .acquire_lock("k", Duration::from_secs(30))
        .await
        .unwrap()
        .unwrap();
    let c = raw().await;
    c.batch_execute("BEGIN").await.unwrap();
    // What set_locked does: delete the lock row (its token), write the value.
    let deleted = c
        .execute(
            &format!("DELETE FROM {TABLE} WHERE namespace = $1 AND key = '#lock:k' AND value = $2"),
            &[&ns, &token.as_str().as_bytes()],
        )
        .await
        .unwrap();
    assert_eq!(deleted, 1);
    c.execute(
        &format!("INSERT INTO {TABLE} VALUES ($1, 'k', 'computed', NULL)"),
        &[&ns],
    )
    .await
    .unwrap();
    let a = app.clone();
    let write = started_and_waiting(async move { a.set("k", b("app"), FRESH).await }).await;
    c.batch_execute("COMMIT").await.unwrap();
    write.await.unwrap().unwrap();
    assert_eq!(
        app.get("k").await.unwrap(),
        Some(b("app")),
        "the later write wins"
    );
    assert!(
        app.acquire_lock("k", Duration::from_secs(30))
            .await
            .unwrap()
            .is_some(),
        "no lock row was made again"
    );
}

/// Every statement that touches a value and its lock takes the lock row first: while
/// another transaction holds the lock row, the statement waits with the value row
/// still free. (Taking the two rows in one order everywhere is what keeps a holder's
/// write and an application write from deadlocking.)
#[tokio::test]
async fn writes_take_the_lock_row_before_the_value_row() {
    type Write = Box<
        dyn FnOnce(
                Arc<dyn CacheBackend>,
                LockToken,
            ) -> std::pin::Pin<Box<dyn Future<Output = ()> + Send>>
            + Send,
    >;
    let writes: Vec<(&str, bool, Write)> = vec![
        (
            "set",
            false,
            Box::new(|s, _| Box::pin(async move { s.set("k", b("app"), FRESH).await.unwrap() })),
        ),
        (
            "set_many",
            false,
            Box::new(|s, _| {
                Box::pin(async move { s.set_many(&[("k", b("app"))], FRESH).await.unwrap() })
            }),
        ),
        (
            "set_if_absent",
            true,
            Box::new(|s, _| {
                Box::pin(async move {
                    assert!(s.set_if_absent("k", b("app"), FRESH).await.unwrap());
                })
            }),
        ),
        (
            "delete",
            false,
            Box::new(|s, _| {
                Box::pin(async move {
                    let _ = s.delete("k").await.unwrap();
                })
            }),
        ),
        (
            "delete_many",
            false,
            Box::new(|s, _| {
                Box::pin(async move {
                    let _ = s.delete_many(&["k"]).await.unwrap();
                })
            }),
        ),
        (
            "clear",
            false,
            Box::new(|s, _| Box::pin(async move { s.clear().await.unwrap() })),
        ),
        (
            "set_locked",
            false,
            Box::new(|s, t| {
                Box::pin(async move {
                    let _ = s.set_locked("k", b("v"), FRESH, &t).await.unwrap();
                })
            }),
        ),
    ];
    for (what, expired_value, write) in writes {
        let (holder, app, ns) = handles().await;
        let token = holder
            .acquire_lock("k", Duration::from_secs(30))
            .await
            .unwrap()
            .unwrap();
        // A value row to watch (expired where the write must find no live value).
        let expires = if expired_value {
            "now() - interval '1 second'"
        } else {
            "NULL"
        };
        raw()
            .await
            .execute(
                &format!("INSERT INTO {TABLE} VALUES ($1, 'k', 'old', {expires})"),
                &[&ns],
            )
            .await
            .unwrap();
        let c = raw().await;
        c.batch_execute("BEGIN").await.unwrap();
        c.query(
            &format!("SELECT 1 FROM {TABLE} WHERE namespace = $1 AND key = '#lock:k' FOR UPDATE"),
            &[&ns],
        )
        .await
        .unwrap();
        let target = if what == "set_locked" { holder } else { app };
        let task = started_and_waiting(write(target, token)).await;
        assert!(
            value_row_is_free(&ns, "k").await,
            "{what} locked the value row before the lock row"
        );
        c.batch_execute("COMMIT").await.unwrap();
        task.await.unwrap();
    }
}

/// Holders and application writes of every kind on a few keys at once, for a while:
/// no statement fails (a deadlock would fail one after PostgreSQL's
/// `deadlock_timeout`), and every holder's write that was accepted is readable or
/// was replaced by a later write.
#[tokio::test]
async fn holders_and_app_writes_race_without_errors() {
    let (holder, app, _) = handles().await;
    let keys = ["a", "b", "c"];
    let until = std::time::Instant::now() + Duration::from_millis(1500);
    let mut tasks = Vec::new();
    for i in 0..3 {
        let holder = holder.clone();
        tasks.push(tokio::spawn(async move {
            let mut stored = 0;
            while std::time::Instant::now() < until {
                let k = keys[i % 3];
                if let Some(t) = holder
                    .acquire_lock(k, Duration::from_secs(5))
                    .await
                    .unwrap()
                {
                    stored += usize::from(holder.set_locked(k, b("c"), FRESH, &t).await.unwrap());
                }
            }
            stored
        }));
    }
    for i in 0..4 {
        let app = app.clone();
        tasks.push(tokio::spawn(async move {
            let mut n = 0;
            while std::time::Instant::now() < until {
                n += 1;
                let k = keys[(i + n) % 3];
                match n % 6 {
                    0 => app.set(k, b("a"), FRESH).await.unwrap(),
                    1 => drop(app.delete(k).await.unwrap()),
                    2 => app
                        .set_many(&[("c", b("a")), ("b", b("a")), ("a", b("a"))], FRESH)
                        .await
                        .unwrap(),
                    3 => drop(app.delete_many(&["b", "a", "c"]).await.unwrap()),
                    4 => drop(app.set_if_absent(k, b("a"), FRESH).await.unwrap()),
                    _ if i == 0 => app.clear().await.unwrap(),
                    _ => drop(app.get(k).await.unwrap()),
                }
            }
            0
        }));
    }
    let mut stored = 0;
    for t in tasks {
        stored += t.await.unwrap();
    }
    assert!(stored > 0, "some holder's write went through");
}

/// What an application delete of the key `k` says it deleted: how many live values
/// (`None`: `clear` does not say).
async fn app_delete(what: &str, app: Arc<dyn CacheBackend>) -> Option<usize> {
    match what {
        "delete" => Some(usize::from(app.delete("k").await.unwrap())),
        "delete_many" => Some(app.delete_many(&["j", "k"]).await.unwrap()),
        "clear" => {
            app.clear().await.unwrap();
            None
        }
        _ => unreachable!("{what}"),
    }
}

/// The holder's statement got the lock row first, on a key with no value row yet (here:
/// a transaction that deleted the lock row and inserted the computed value): an
/// application delete waits for it, and must then delete the value it committed. (A
/// DELETE, unlike `INSERT … ON CONFLICT`, only sees rows of its snapshot: one taken
/// before the holder committed would miss the new value row, and the computed value,
/// possibly stale, would outlive the delete.) Also when the lock expired between the
/// holder's statement's start (which found it live) and the delete's.
#[tokio::test]
async fn an_app_delete_waits_for_the_holders_statement_then_deletes_its_value() {
    let mut wrong = Vec::new();
    for expired in [false, true] {
        for what in ["delete", "delete_many", "clear"] {
            let (holder, app, ns) = handles().await;
            let token = holder
                .acquire_lock("k", Duration::from_secs(30))
                .await
                .unwrap()
                .unwrap();
            if expired {
                raw()
                    .await
                    .execute(
                        &format!(
                            "UPDATE {TABLE} SET expires_at = now() - interval '1 second' \
                             WHERE namespace = $1 AND key = '#lock:k'"
                        ),
                        &[&ns],
                    )
                    .await
                    .unwrap();
            }
            let c = raw().await;
            c.batch_execute("BEGIN").await.unwrap();
            // What set_locked does: delete the lock row (its token), write the value.
            let deleted = c
                .execute(
                    &format!(
                        "DELETE FROM {TABLE} WHERE namespace = $1 AND key = '#lock:k' \
                         AND value = $2"
                    ),
                    &[&ns, &token.as_str().as_bytes()],
                )
                .await
                .unwrap();
            assert_eq!(deleted, 1);
            c.execute(
                &format!("INSERT INTO {TABLE} VALUES ($1, 'k', 'computed', NULL)"),
                &[&ns],
            )
            .await
            .unwrap();
            // Not `started_and_waiting`: a delete that does not wait is wrong only if the
            // value outlives it, which is what this test checks.
            let task = tokio::spawn(app_delete(what, app.clone()));
            tokio::time::sleep(Duration::from_millis(300)).await;
            c.batch_execute("COMMIT").await.unwrap();
            let said = task.await.unwrap();
            let left = app.get("k").await.unwrap();
            if left.is_some() || said.is_some_and(|n| n != 1) {
                let lock = if expired { "expired" } else { "live" };
                wrong.push(format!(
                    "{what} (lock {lock}) said it deleted {said:?} and left {left:?}"
                ));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "the holder's value outlived the delete: {wrong:#?}"
    );
}
