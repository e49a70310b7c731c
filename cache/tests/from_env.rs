//! `cache::from_env`: the store named by `CACHE_URL`, `memory:` without it. One test
//! alone in its binary: it changes the process's environment, which no other thread
//! may read meanwhile.

use cache::{CacheBackend, CacheUrl, UrlError, CACHE_URL_VAR};

#[test]
fn cache_url_chooses_the_store() {
    assert_eq!(CACHE_URL_VAR, "CACHE_URL");
    std::env::remove_var(CACHE_URL_VAR);
    assert_eq!(CacheUrl::from_env().unwrap().to_string(), "memory:");

    // Set but empty counts as unset (`CACHE_URL=` in a compose file).
    std::env::set_var(CACHE_URL_VAR, " ");
    assert_eq!(CacheUrl::from_env().unwrap().backend_name(), "memory");

    std::env::set_var(CACHE_URL_VAR, "memory:?namespace=from-env");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let cache = rt.block_on(cache::from_env()).unwrap();
    assert_eq!(cache.backend().namespace(), "from-env");

    std::env::set_var(CACHE_URL_VAR, "mysql://h/db");
    let err = rt.block_on(cache::from_env()).unwrap_err();
    assert!(
        err.to_string()
            .contains("unknown cache URL scheme `mysql:`"),
        "{err}"
    );

    // Another variable, for services that already have a name for it.
    std::env::set_var("ORDERS_CACHE", "memory:?namespace=orders");
    assert_eq!(
        CacheUrl::from_var("ORDERS_CACHE").unwrap().namespace(),
        Some("orders")
    );

    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        std::env::set_var(CACHE_URL_VAR, std::ffi::OsStr::from_bytes(b"redis://\xff"));
        assert_eq!(
            CacheUrl::from_env().unwrap_err(),
            UrlError::NotUnicode {
                var: "CACHE_URL".into()
            }
        );
    }
    std::env::remove_var(CACHE_URL_VAR);
    std::env::remove_var("ORDERS_CACHE");
}
