//! Closing and errors.

use super::*;

/// After `close`, calls return a `Closed` error.
pub async fn use_after_close_is_an_error<H: Harness>(h: &H) {
    let c = fresh(h).await;
    c.set("k", b("v"), Expiry::Never).await.unwrap();
    c.close().await.unwrap();
    let err = c.get("k").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Closed, "{err}");
    let err = c.set("k", b("v"), Expiry::Never).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Closed, "{err}");
    c.close().await.expect("closing twice is fine");
}

/// Errors name the operation that failed and the backend, and say what to do.
pub async fn errors_name_the_operation<H: Harness>(h: &H) {
    let c = fresh(h).await;
    let name = c.capabilities().name;
    let err = c.get("").await.unwrap_err();
    assert_eq!(err.operation(), Some("get"), "{err}");
    assert_eq!(err.backend(), Some(name), "{err}");
    let err = c
        .set_many(&[("ok", b("v")), ("", b("v"))], Expiry::Never)
        .await
        .unwrap_err();
    assert_eq!(err.operation(), Some("set_many"), "{err}");
    let err = c.acquire_lock("k", Duration::ZERO).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    assert!(err.to_string().contains("acquire_lock"), "{err}");
}
