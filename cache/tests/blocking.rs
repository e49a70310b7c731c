//! The blocking API, used without any async runtime.

use cache::{blocking, ErrorKind, MemoryBackend};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

fn cache() -> blocking::Cache {
    blocking::Cache::new(MemoryBackend::builder().build().unwrap()).unwrap()
}

#[test]
fn blocking_calls_work_without_a_runtime() {
    let c = cache();
    c.set("k", &vec![1u8, 2], Duration::from_secs(60)).unwrap();
    assert_eq!(c.get::<Vec<u8>>("k").unwrap(), Some(vec![1, 2]));
    assert!(c.has("k").unwrap());
    assert!(c.set_if_absent("n", &1u8, 60u64).unwrap());
    assert!(!c.set_if_absent("n", &2u8, 60u64).unwrap());
    c.set_many(&[("a", 1u32), ("b", 2u32)], None::<Duration>)
        .unwrap();
    assert_eq!(
        c.get_many::<u32>(&["a", "x", "b"]).unwrap(),
        vec![Some(1), None, Some(2)]
    );
    assert_eq!(c.delete_many(&["a", "b", "x"]).unwrap(), 2);
    assert!(c.delete("k").unwrap());
    c.clear().unwrap();
    assert_eq!(c.get::<u8>("n").unwrap(), None);
}

#[test]
fn blocking_get_or_compute_computes_once_across_threads() {
    let c = cache();
    let calls = Arc::new(AtomicUsize::new(0));
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let (c, calls) = (c.clone(), calls.clone());
            std::thread::spawn(move || {
                c.cached("slow")
                    .expiry(Duration::from_secs(60))
                    .get_or_compute(|| {
                        calls.fetch_add(1, Ordering::SeqCst);
                        std::thread::sleep(Duration::from_millis(100));
                        Ok::<_, std::io::Error>("value".to_string())
                    })
                    .unwrap()
            })
        })
        .collect();
    for t in threads {
        assert_eq!(t.join().unwrap(), "value");
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn blocking_inside_a_runtime_is_a_clear_error_not_a_deadlock() {
    let c = std::thread::spawn(cache).join().unwrap();
    let err = c.get::<u8>("k").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsupported);
    assert!(err.to_string().contains("async"), "{err}");
    let err = c
        .get_or_compute("k", || Ok::<_, std::io::Error>(1u8))
        .unwrap_err();
    assert!(matches!(err, cache::ComputeError::Cache(ref e) if e.kind() == ErrorKind::Unsupported));
    let err = blocking::Cache::new(MemoryBackend::builder().build().unwrap()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsupported);
    drop(c); // dropping inside a runtime must not panic
}
