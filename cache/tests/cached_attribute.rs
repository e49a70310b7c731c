//! The `#[cached]` attribute on async and blocking functions.

use cache::{blocking, cached, Cache, ComputeError, ErrorKind, KeyBuilder, MemoryBackend};
use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::LazyLock;
use std::time::Duration;

static CACHE: LazyLock<Cache> =
    LazyLock::new(|| Cache::new(MemoryBackend::builder().build().unwrap()));
static SQUARES: AtomicUsize = AtomicUsize::new(0);

/// Squares a number, slowly.
#[cached(cache = CACHE, expiry = 60)]
async fn square(x: u64) -> Result<u64, Infallible> {
    SQUARES.fetch_add(1, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(20)).await;
    Ok(x * x)
}

#[tokio::test]
async fn hit_does_not_recompute_and_arguments_make_the_key() {
    assert_eq!(square(3).await.unwrap(), 9);
    assert_eq!(square(3).await.unwrap(), 9);
    assert_eq!(SQUARES.load(Ordering::SeqCst), 1);
    assert_eq!(square(4).await.unwrap(), 16);
    assert_eq!(SQUARES.load(Ordering::SeqCst), 2);
    let key = KeyBuilder::new("cache::square").arg(&3u64).build().unwrap();
    assert_eq!(
        CACHE.get::<u64>(&key).await.unwrap(),
        Some(9),
        "default key: the crate's and the function's names (not the module path: moving \
         it keeps its keys) and the arguments"
    );
    // The generated invalidate removes that value only.
    assert!(square_invalidate(3).await.unwrap());
    assert!(!square_invalidate(3).await.unwrap());
    assert_eq!(square(4).await.unwrap(), 16);
    assert_eq!(SQUARES.load(Ordering::SeqCst), 2, "4 is still cached");
    assert_eq!(square(3).await.unwrap(), 9);
    assert_eq!(SQUARES.load(Ordering::SeqCst), 3, "3 is computed again");
}

/// A key prefix of one's own, with a namespace and an excluded argument.
#[cached(cache = cache, key_prefix = "profile-v2", namespace = "people", exclude = [db])]
async fn profile(cache: &Cache, id: u32, db: &AtomicUsize) -> Result<u32, Infallible> {
    db.fetch_add(1, Ordering::SeqCst);
    Ok(id * 10)
}

#[tokio::test]
async fn key_prefix_namespace_and_an_invalidator_without_the_excluded_argument() {
    let cache = Cache::new(MemoryBackend::builder().build().unwrap());
    let db = AtomicUsize::new(0);
    assert_eq!(profile(&cache, 4, &db).await.unwrap(), 40);
    let key = KeyBuilder::new("profile-v2").arg(&4u32).build().unwrap();
    assert_eq!(
        cache.get::<u32>(&format!("people:{key}")).await.unwrap(),
        Some(40)
    );
    // The invalidator takes the cache and the key's arguments: not `db`.
    assert!(profile_invalidate(&cache, 4).await.unwrap());
    assert_eq!(profile(&cache, 4, &db).await.unwrap(), 40);
    assert_eq!(db.load(Ordering::SeqCst), 2);
}

#[derive(Debug, PartialEq, Eq)]
struct NotFound;

/// A fn whose cache is an argument, with a namespace, an explicit key, a skip flag,
/// an excluded argument and a compute error.
#[cached(
    cache = cache,
    key = format!("user:{id}"),
    namespace = "users",
    skip = bypass,
    lock_ttl = 5,
    lock_wait = Duration::from_secs(5),
    stampede_protection = true,
)]
async fn user(
    cache: &Cache,
    id: u32,
    bypass: bool,
    calls: &AtomicUsize,
) -> Result<String, NotFound> {
    calls.fetch_add(1, Ordering::SeqCst);
    if id == 0 {
        return Err(NotFound);
    }
    Ok(format!("user {id}"))
}

#[tokio::test]
async fn options_key_namespace_skip_and_errors() {
    let cache = Cache::new(MemoryBackend::builder().build().unwrap());
    let calls = AtomicUsize::new(0);
    assert_eq!(user(&cache, 1, false, &calls).await.unwrap(), "user 1");
    assert_eq!(user(&cache, 1, false, &calls).await.unwrap(), "user 1");
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(
        cache
            .get::<String>("users:user:1")
            .await
            .unwrap()
            .as_deref(),
        Some("user 1")
    );
    // skip bypasses the cache for one call
    assert_eq!(user(&cache, 1, true, &calls).await.unwrap(), "user 1");
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    // a compute error is returned, not cached
    let err = user(&cache, 0, false, &calls).await.unwrap_err();
    assert!(matches!(err, ComputeError::Compute(ref e) if **e == NotFound));
    assert!(!cache.has("users:user:0").await.unwrap());
    // With `key = ...` the invalidator takes every argument (the key may use any).
    assert!(user_invalidate(&cache, 1, false, &calls).await.unwrap());
    assert!(!cache.has("users:user:1").await.unwrap());
}

static BLOCKING: LazyLock<blocking::Cache> =
    LazyLock::new(|| blocking::Cache::new(MemoryBackend::builder().build().unwrap()).unwrap());
static FIBS: AtomicUsize = AtomicUsize::new(0);

#[cached(cache = BLOCKING, expiry = Duration::from_secs(30), exclude = [label])]
fn fib(n: u32, label: &str) -> Result<u64, Infallible> {
    FIBS.fetch_add(1, Ordering::SeqCst);
    let _ = label;
    Ok((1..=n).fold((0u64, 1u64), |(a, b), _| (b, a + b)).0)
}

#[test]
fn blocking_functions_use_the_blocking_cache() {
    assert_eq!(fib(10, "first").unwrap(), 55);
    assert_eq!(fib(10, "second label, same key").unwrap(), 55);
    assert_eq!(FIBS.load(Ordering::SeqCst), 1);
    // A blocking invalidator for a blocking function.
    assert!(fib_invalidate(10).unwrap());
    assert_eq!(fib(10, "third").unwrap(), 55);
    assert_eq!(FIBS.load(Ordering::SeqCst), 2);
}

/// Application state as a web framework would hand it to a handler.
struct AppState {
    cache: Cache,
    lookups: AtomicUsize,
}

#[cached(cache = state.cache, expiry = 30)]
async fn greeting(state: &AppState, name: String) -> Result<String, Infallible> {
    state.lookups.fetch_add(1, Ordering::SeqCst);
    Ok(format!("hello {name}"))
}

#[tokio::test]
async fn cache_from_a_field_of_an_argument() {
    let state = AppState {
        cache: Cache::new(MemoryBackend::builder().build().unwrap()),
        lookups: AtomicUsize::new(0),
    };
    assert_eq!(greeting(&state, "ada".into()).await.unwrap(), "hello ada");
    assert_eq!(greeting(&state, "ada".into()).await.unwrap(), "hello ada");
    assert_eq!(
        state.lookups.load(Ordering::SeqCst),
        1,
        "the state is not part of the key"
    );
    assert!(greeting_invalidate(&state, "ada".into()).await.unwrap());
    assert_eq!(greeting(&state, "ada".into()).await.unwrap(), "hello ada");
    assert_eq!(state.lookups.load(Ordering::SeqCst), 2);
}

mod left {
    use super::*;
    #[cached(cache = super::CACHE, expiry = 60)]
    pub async fn twin(id: u32) -> Result<String, Infallible> {
        Ok(format!("left {id}"))
    }
}

mod right {
    use super::*;
    #[cached(cache = super::CACHE, expiry = 60)]
    pub async fn twin(id: u32) -> Result<String, Infallible> {
        Ok(format!("right {id}"))
    }
}

/// Two functions of one name in one crate would build the same keys: they refuse to
/// run (a clear error naming both), rather than read each other's values.
#[tokio::test]
async fn two_functions_of_one_name_refuse_rather_than_share_values() {
    assert_eq!(left::twin(1).await.unwrap(), "left 1");
    let err = right::twin(1).await.unwrap_err();
    let ComputeError::Cache(e) = &err else {
        panic!("{err}")
    };
    assert_eq!(e.kind(), ErrorKind::Config);
    let msg = e.to_string();
    assert!(
        msg.contains("left::twin") && msg.contains("right::twin") && msg.contains("key_prefix"),
        "{msg}"
    );
    assert!(
        left::twin(1).await.is_err(),
        "the first one refuses from then on too"
    );
    assert!(right::twin_invalidate(1).await.is_err());
}

/// A format string naming an argument keeps every argument in the invalidator; a type
/// parameter of the value alone leaves it.
#[cached(cache = cache, namespace = format!("t-{tenant}"), exclude = [tenant])]
async fn per_tenant<
    T: serde::Serialize + serde::de::DeserializeOwned + Clone + Send + Sync + Default + 'static,
>(
    cache: &Cache,
    tenant: u32,
    id: u32,
) -> Result<T, Infallible> {
    let _ = (tenant, id);
    Ok(T::default())
}

#[tokio::test]
async fn the_invalidator_takes_what_a_format_string_names_and_no_value_type() {
    let cache = Cache::new(MemoryBackend::builder().build().unwrap());
    assert_eq!(per_tenant::<u32>(&cache, 1, 2).await.unwrap(), 0);
    assert!(per_tenant_invalidate(&cache, 1, 2).await.unwrap());
}
