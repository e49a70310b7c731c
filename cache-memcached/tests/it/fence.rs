//! Fenced writes on memcached, which has no multi-key atomicity: a lock's *held mark*
//! (deleted by every application write before it writes), a `cas`/`add` of the value
//! as the holder read it, and tombstones for deletes while a lock is held. The hidden
//! `set_locked_with` runs another handle's write between the holder's check and its
//! write: the window the conformance suite cannot reach.

use crate::common;
use async_memcached::{AsciiProtocol, MetaProtocol};
use cache_core::{Bytes, CacheBackend, Expiry, LockToken};
use cache_memcached::MemcachedBackend;
use std::time::Duration;

const FRESH: Expiry = Expiry::After(Duration::from_secs(60));
const LOCK_TTL: Duration = Duration::from_secs(30);

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

/// A holder and an application on one namespace, each with its own pools (as two
/// processes).
async fn handles() -> (MemcachedBackend, MemcachedBackend, String) {
    let ns = conformance_tests::random_namespace();
    (common::backend(&ns).await, common::backend(&ns).await, ns)
}

async fn lock(store: &MemcachedBackend) -> LockToken {
    store
        .acquire_lock("k", LOCK_TTL)
        .await
        .unwrap()
        .expect("a free lock is taken")
}

async fn lock_is_free(store: &MemcachedBackend) -> bool {
    match store.acquire_lock("k", LOCK_TTL).await.unwrap() {
        Some(t) => {
            store.release_lock("k", &t).await.unwrap();
            true
        }
        None => false,
    }
}

/// The namespace's generation, read raw.
async fn generation(ns: &str) -> u64 {
    let mut raw = common::raw(&common::url().await).await;
    let g = raw
        .meta_get(format!("{ns}:#gen"), false, None, Some(&["v"]))
        .await
        .unwrap()
        .expect("the namespace has a generation");
    String::from_utf8(g.data.unwrap()).unwrap().parse().unwrap()
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum AppWrite {
    Set,
    SetMany,
    SetIfAbsent,
    Delete,
    DeleteMany,
    Clear,
}

impl AppWrite {
    async fn apply(self, app: &MemcachedBackend) {
        match self {
            AppWrite::Set => app.set("k", b("app"), FRESH).await.unwrap(),
            AppWrite::SetMany => app.set_many(&[("k", b("app"))], FRESH).await.unwrap(),
            AppWrite::SetIfAbsent => {
                assert!(app.set_if_absent("k", b("app"), FRESH).await.unwrap())
            }
            AppWrite::Delete => drop(app.delete("k").await.unwrap()),
            AppWrite::DeleteMany => drop(app.delete_many(&["k"]).await.unwrap()),
            AppWrite::Clear => app.clear().await.unwrap(),
        }
    }

    fn leaves(self) -> Option<Bytes> {
        match self {
            AppWrite::Set | AppWrite::SetMany | AppWrite::SetIfAbsent => Some(b("app")),
            _ => None,
        }
    }
}

/// Every kind of application write, landing after the holder checked its lock and
/// before it writes, over a value that was there or not: the application's write
/// stays, and the holder frees its lock.
#[tokio::test]
async fn an_app_write_between_the_check_and_the_write_wins() {
    use AppWrite::*;
    for what in [Set, SetMany, SetIfAbsent, Delete, DeleteMany, Clear] {
        for present in [false, true] {
            if what == SetIfAbsent && present {
                continue; // it would store nothing
            }
            let (holder, app, _) = handles().await;
            if present {
                app.set("k", b("old"), FRESH).await.unwrap();
            }
            let token = lock(&holder).await;
            let stored = holder
                .set_locked_with("k", b("computed"), FRESH, &token, what.apply(&app))
                .await
                .unwrap();
            // A clear moved the namespace to a new generation: the holder's write
            // lands in the old one, which nobody reads (it answers true).
            if what != Clear {
                assert!(!stored, "{what:?} (value there: {present}): write refused");
            }
            assert_eq!(
                app.get("k").await.unwrap(),
                what.leaves(),
                "{what:?} (value there: {present}) wins"
            );
            assert!(lock_is_free(&app).await, "{what:?}: the lock was freed");
        }
    }
}

/// With nothing in between, the holder's write stores (over a value or none, and a
/// past expiry removes the value).
#[tokio::test]
async fn the_holder_stores_when_nothing_came_between() {
    for present in [false, true] {
        let (holder, app, _) = handles().await;
        if present {
            app.set("k", b("old"), FRESH).await.unwrap();
        }
        let token = lock(&holder).await;
        assert!(holder
            .set_locked_with("k", b("computed"), FRESH, &token, async {})
            .await
            .unwrap());
        assert_eq!(app.get("k").await.unwrap(), Some(b("computed")));
        assert!(lock_is_free(&app).await);
    }
}

/// A delete leaves a dead entry (a tombstone) in place of the value only while the
/// key's lock is held; without a lock it deletes.
#[tokio::test]
async fn a_delete_leaves_a_tombstone_only_under_a_held_lock() {
    let (holder, app, ns) = handles().await;
    let mut raw = common::raw(&common::url().await).await;
    app.set("a", b("v"), FRESH).await.unwrap();
    assert!(app.delete("a").await.unwrap());
    let g = generation(&ns).await;
    assert!(raw.get(format!("{ns}@{g}:a")).await.unwrap().is_none());

    let _token = holder.acquire_lock("b", LOCK_TTL).await.unwrap().unwrap();
    assert!(!app.delete("b").await.unwrap(), "nothing live was there");
    let t = raw.get(format!("{ns}@{g}:b")).await.unwrap();
    assert!(t.is_some(), "a tombstone stands in for the absent value");
    assert_eq!(app.get("b").await.unwrap(), None, "reads miss it");
    assert!(!app.has("b").await.unwrap());
    assert!(
        app.set_if_absent("b", b("new"), FRESH).await.unwrap(),
        "an insert-if-absent takes its place"
    );
}

/// The window left (see the README): a tombstone gone before the holder's `add`
/// (evicted, or outlived by a holder stalled between its check and its write) lets
/// the holder's value land after the delete.
#[tokio::test]
async fn the_window_left_a_tombstone_gone_before_the_add() {
    let (holder, app, ns) = handles().await;
    let token = lock(&holder).await;
    let stored = holder
        .set_locked_with("k", b("computed"), FRESH, &token, async {
            app.delete("k").await.unwrap();
            let g = generation(&ns).await;
            let mut raw = common::raw(&common::url().await).await;
            raw.delete(format!("{ns}@{g}:k")).await.unwrap(); // "evicted"
        })
        .await
        .unwrap();
    assert!(stored, "the add landed: the documented window");
    assert_eq!(app.get("k").await.unwrap(), Some(b("computed")));
}

/// An insert-if-absent that stores nothing (a live value is there) leaves the lock
/// alone: the holder's write still goes through.
#[tokio::test]
async fn a_set_if_absent_that_stores_nothing_does_not_overtake() {
    let (holder, app, _) = handles().await;
    app.set("k", b("old"), FRESH).await.unwrap();
    let token = lock(&holder).await;
    assert!(!app.set_if_absent("k", b("app"), FRESH).await.unwrap());
    assert!(holder
        .set_locked("k", b("computed"), FRESH, &token)
        .await
        .unwrap());
    assert_eq!(app.get("k").await.unwrap(), Some(b("computed")));
}

/// A contender polling an overtaken lock adds a held mark of its own (the holder's is
/// gone); that never makes the holder's lock writable again, and the next holder
/// writes normally.
#[tokio::test]
async fn a_contender_never_revives_an_overtaken_lock() {
    let (holder, app, _) = handles().await;
    let token = lock(&holder).await;
    app.set("k", b("app"), FRESH).await.unwrap();
    assert!(app.acquire_lock("k", LOCK_TTL).await.unwrap().is_none());
    assert!(!holder
        .set_locked("k", b("computed"), FRESH, &token)
        .await
        .unwrap());
    assert_eq!(app.get("k").await.unwrap(), Some(b("app")));
    let next = lock(&app).await;
    assert!(app.set_locked("k", b("next"), FRESH, &next).await.unwrap());
    assert_eq!(holder.get("k").await.unwrap(), Some(b("next")));
}

/// A held mark left by an earlier holder (its lock gone without a release) is
/// replaced by the next holder's.
#[tokio::test]
async fn a_stale_held_mark_is_replaced_by_the_next_holder() {
    let (holder, app, ns) = handles().await;
    app.set("x", b("v"), FRESH).await.unwrap(); // makes the generation
    let g = generation(&ns).await;
    let mut raw = common::raw(&common::url().await).await;
    raw.set(format!("{ns}@{g}:#held:k"), "someone-else", Some(60), None)
        .await
        .unwrap();
    let token = lock(&holder).await;
    assert!(holder
        .set_locked("k", b("computed"), FRESH, &token)
        .await
        .unwrap());
    assert_eq!(app.get("k").await.unwrap(), Some(b("computed")));
}
