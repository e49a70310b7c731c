//! Races on the lock documents, each decided by a commit precondition (an update time
//! or "does not exist") that Firestore checks atomically with the commit's writes.
//! The npm emulator ignores update-time preconditions and its commits are not atomic,
//! so these need Google's emulator (`CACHE_TEST_FIRESTORE_EMULATOR=google`, which
//! `scripts/servers.sh` sets where it runs it). Elsewhere (another emulator, or the
//! variable unset) they fail, saying what they need: a race test never passes without
//! the server it needs. `CACHE_TEST_FIRESTORE_SKIP_RACES=1` skips them explicitly (a
//! machine with the npm emulator only).
//!
//! An abandoned lock is made without sleeping: its holder's clock runs an hour behind,
//! so its deadline has long passed on everyone else's.

use crate::common;
use cache_core::{Bytes, CacheBackend, Expiry, LockToken};
use cache_firestore::FirestoreBackend;
use futures::future::join_all;
use std::sync::Arc;
use std::time::Duration;

const ROUNDS: usize = 15;
const RACERS: usize = 12;
const TTL: Duration = Duration::from_secs(30);
const HOUR_MS: i64 = 3_600_000;

/// The opt-out of these races: `CACHE_TEST_FIRESTORE_SKIP_RACES=1`.
const SKIP: &str = "CACHE_TEST_FIRESTORE_SKIP_RACES";

/// Whether `test` runs: true on Google's emulator; false (skipped, said so) when
/// [`SKIP`] is `1`; a failure otherwise.
fn on_googles_emulator(test: &str) -> bool {
    let from_env = conformance_tests::servers::from_env;
    if from_env(SKIP).as_deref() == Some("1") {
        eprintln!("{test}: skipped ({SKIP}=1)");
        return false;
    }
    match from_env("CACHE_TEST_FIRESTORE_EMULATOR").as_deref() {
        Some("google") => true,
        Some(kind) => panic!(
            "{test} needs Google's Firestore emulator; the {kind} one runs (it ignores \
             update-time preconditions, so the race would prove nothing). Install the \
             Google Cloud CLI's cloud-firestore-emulator component and Java 17+, and \
             restart it with `bash scripts/servers.sh stop firestore && bash \
             scripts/servers.sh start firestore`; or set {SKIP}=1 to skip the races"
        ),
        None => panic!(
            "{test} needs Google's Firestore emulator, and CACHE_TEST_FIRESTORE_EMULATOR is \
             not set: run `bash scripts/servers.sh start firestore && eval \"$(bash \
             scripts/servers.sh env firestore)\"` (it sets the variable to google where \
             Google's emulator runs), or set {SKIP}=1 to skip the races"
        ),
    }
}

async fn handle(ns: &str, offset_ms: i64) -> Arc<FirestoreBackend> {
    Arc::new(
        common::builder(ns)
            .await
            .test_clock_offset_ms(offset_ms)
            .build()
            .await
            .unwrap(),
    )
}

/// How much later one side of a race starts in `round`: 0 to 15 ms, spread over the
/// rounds so that each side sometimes commits first.
fn stagger(round: usize) -> Duration {
    Duration::from_micros((round as u64 * 5_300) % 16_000)
}

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

/// Many callers take over one abandoned lock at once: exactly one wins, and the
/// late holder can neither write nor free the winner's lock.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_winner_among_racers_taking_over_an_abandoned_lock() {
    if !on_googles_emulator("takeover race") {
        return;
    }
    let ns = conformance_tests::random_namespace();
    let late = handle(&ns, -HOUR_MS).await;
    let racers = handle(&ns, 0).await;
    for round in 0..ROUNDS {
        let key = format!("k{round}");
        let old = late.acquire_lock(&key, TTL).await.unwrap().expect("free");
        let won: Vec<LockToken> = join_all((0..RACERS).map(|_| {
            let (racers, key) = (racers.clone(), key.clone());
            async move { racers.acquire_lock(&key, TTL).await.unwrap() }
        }))
        .await
        .into_iter()
        .flatten()
        .collect();
        assert_eq!(won.len(), 1, "round {round}: {} winners", won.len());
        assert!(!late
            .set_locked(&key, b("late"), Expiry::After(TTL), &old)
            .await
            .unwrap());
        assert!(!late.release_lock(&key, &old).await.unwrap());
        assert!(racers.release_lock(&key, &won[0]).await.unwrap());
    }
}

/// The late holder's write races the takeover of its lock: whichever commits first,
/// the winner's lock is never freed by the late write (its delete carries the update
/// time it read), and the late value is stored only if it committed before the
/// takeover (then the winner found the key free of it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_write_racing_a_takeover_never_frees_the_new_lock() {
    if !on_googles_emulator("late write race") {
        return;
    }
    let ns = conformance_tests::random_namespace();
    let late = handle(&ns, -HOUR_MS).await;
    let racers = handle(&ns, 0).await;
    let (mut stored, mut taken) = (0, 0);
    for round in 0..ROUNDS * 3 {
        let key = format!("k{round}");
        let old = late.acquire_lock(&key, TTL).await.unwrap().expect("free");
        // One side starts 0 to 15 ms after the other, each side in turn.
        let (write_after, take_after) = match round % 2 {
            0 => (stagger(round), Duration::ZERO),
            _ => (Duration::ZERO, stagger(round)),
        };
        let (wrote, took) = tokio::join!(
            async {
                tokio::time::sleep(write_after).await;
                late.set_locked(&key, b("late"), Expiry::After(TTL), &old)
                    .await
            },
            async {
                tokio::time::sleep(take_after).await;
                racers.acquire_lock(&key, TTL).await
            }
        );
        let (wrote, took) = (wrote.unwrap(), took.unwrap());
        stored += usize::from(wrote);
        if let Some(token) = took {
            taken += 1;
            assert!(
                racers.release_lock(&key, &token).await.unwrap(),
                "round {round}: the late write freed the new holder's lock"
            );
        } else {
            // The late lock was there, live to nobody but its holder, and unchanged:
            // only a takeover that read it and lost to the late write's delete.
            assert!(
                wrote,
                "round {round}: nobody took the lock and nothing was stored"
            );
        }
    }
    eprintln!("late writes stored {stored}, takeovers {taken}");
}

/// The holder's fenced write races application writes (set or delete) of the same
/// key by other handles: whichever commits first, the application's write is what
/// stays, never the computed value; every application write succeeds (writers do
/// not fail each other's fences), and the lock ends free.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fenced_write_racing_app_writes_never_wins() {
    if !on_googles_emulator("fenced write race") {
        return;
    }
    let ns = conformance_tests::random_namespace();
    let holder = handle(&ns, 0).await;
    let app = handle(&ns, 0).await;
    let mut refused = 0;
    for round in 0..ROUNDS * 3 {
        let key = format!("k{round}");
        let delete = round % 2 == 1;
        let token = holder.acquire_lock(&key, TTL).await.unwrap().expect("free");
        let apps = join_all((0..4).map(|_| {
            let (app, key) = (app.clone(), key.clone());
            async move {
                if delete {
                    app.delete(&key).await.map(drop)
                } else {
                    app.set(&key, b("app"), Expiry::After(TTL)).await
                }
            }
        }));
        // The holder starts 0 to 15 ms after the apps: both orders occur.
        let write = async {
            tokio::time::sleep(stagger(round)).await;
            holder
                .set_locked(&key, b("computed"), Expiry::After(TTL), &token)
                .await
        };
        let (wrote, apps) = tokio::join!(write, apps);
        for r in apps {
            r.unwrap_or_else(|e| panic!("round {round}: an app write failed: {e}"));
        }
        refused += usize::from(!wrote.unwrap());
        let want = (!delete).then(|| b("app"));
        assert_eq!(holder.get(&key).await.unwrap(), want, "round {round}");
        // Free once the holder has written: a lock the apps overtook first was
        // released by the holder's refused write.
        assert!(
            app.acquire_lock(&key, TTL).await.unwrap().is_some(),
            "round {round}: the lock stayed held"
        );
    }
    eprintln!("fenced writes refused {refused} of {}", ROUNDS * 3);
}

/// The holder's release races application writes that mark its lock: the release
/// reads again when the lock changed under it, and frees it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_release_racing_app_writes_frees_the_lock() {
    if !on_googles_emulator("release race") {
        return;
    }
    let ns = conformance_tests::random_namespace();
    let holder = handle(&ns, 0).await;
    let app = handle(&ns, 0).await;
    for round in 0..ROUNDS {
        let key = format!("k{round}");
        let token = holder.acquire_lock(&key, TTL).await.unwrap().expect("free");
        let apps = join_all((0..4).map(|i| {
            let (app, key) = (app.clone(), key.clone());
            async move {
                app.set(&key, b(&format!("app{i}")), Expiry::After(TTL))
                    .await
            }
        }));
        let (released, apps) = tokio::join!(holder.release_lock(&key, &token), apps);
        for r in apps {
            r.unwrap();
        }
        assert!(released.unwrap(), "round {round}: not released");
        assert!(
            app.acquire_lock(&key, TTL).await.unwrap().is_some(),
            "round {round}: the lock stayed held"
        );
    }
}
