//! The service of `cache-axum/GUIDE.md`: users in PostgreSQL, cached by
//! get-or-compute, invalidated on write; a slow report behind the HTTP layer; the
//! cache's stats on `/metrics` and `/stats`. `main.rs` runs it; `tests/axum_service.rs`
//! drives it over HTTP against real servers.

use axum::extract::{FromRef, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use cache::axum::HttpCacheLayer;
use cache::{cached, Cache, ComputeError};
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The router's state: the cache beside the database.
#[derive(Clone)]
pub struct AppState {
    pub cache: Cache,
    pub db: Db,
}

// What `AppCache` and `prometheus_stats` extract. (`#[derive(FromRef)]` on `AppState`
// does the same, with axum's `macros` feature.)
impl FromRef<AppState> for Cache {
    fn from_ref(state: &AppState) -> Cache {
        state.cache.clone()
    }
}

/// The origin: one PostgreSQL connection, and a count of the queries sent to it.
#[derive(Clone)]
pub struct Db {
    pub client: Arc<tokio_postgres::Client>,
    pub queries: Arc<AtomicU64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct User {
    pub id: i64,
    pub name: String,
}

#[derive(Debug, Deserialize)]
pub struct Rename {
    pub name: String,
}

impl Db {
    pub async fn connect(dsn: &str) -> Result<Db, tokio_postgres::Error> {
        let (client, connection) = tokio_postgres::connect(dsn, tokio_postgres::NoTls).await?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::error!(error = %e, "database connection lost");
            }
        });
        Ok(Db {
            client: Arc::new(client),
            queries: Arc::default(),
        })
    }

    pub async fn create_table(&self) -> Result<(), tokio_postgres::Error> {
        self.client
            .batch_execute(
                "CREATE TABLE IF NOT EXISTS users (id bigint PRIMARY KEY, name text NOT NULL)",
            )
            .await
    }

    pub async fn user(&self, id: i64) -> Result<Option<User>, tokio_postgres::Error> {
        self.queries.fetch_add(1, Ordering::Relaxed);
        let row = self
            .client
            .query_opt("SELECT id, name FROM users WHERE id = $1", &[&id])
            .await?;
        Ok(row.map(|r| User {
            id: r.get(0),
            name: r.get(1),
        }))
    }

    pub async fn rename(&self, id: i64, name: &str) -> Result<bool, tokio_postgres::Error> {
        self.queries.fetch_add(1, Ordering::Relaxed);
        let n = self
            .client
            .execute("UPDATE users SET name = $2 WHERE id = $1", &[&id, &name])
            .await?;
        Ok(n == 1)
    }

    pub async fn report(&self) -> Result<String, tokio_postgres::Error> {
        self.queries.fetch_add(1, Ordering::Relaxed);
        let row = self
            .client
            .query_one(
                "SELECT count(*), coalesce(max(length(name)), 0) FROM users",
                &[],
            )
            .await?;
        let (users, longest): (i64, i32) = (row.get(0), row.get(1));
        Ok(format!("{users} users, longest name {longest} characters"))
    }
}

/// The handlers' error. `Clone`, so that get-or-compute's `ComputeError` gives it back
/// as it was returned (`into_compute`).
#[derive(Debug, Clone)]
pub enum AppError {
    NotFound,
    Database(String),
    Cache(String),
}

impl std::fmt::Display for AppError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AppError::NotFound => f.write_str("not found"),
            AppError::Database(e) => write!(f, "database: {e}"),
            AppError::Cache(e) => write!(f, "cache: {e}"),
        }
    }
}

impl From<tokio_postgres::Error> for AppError {
    fn from(e: tokio_postgres::Error) -> Self {
        AppError::Database(e.to_string())
    }
}

impl From<ComputeError<AppError>> for AppError {
    fn from(e: ComputeError<AppError>) -> Self {
        // The compute's own error as it returned it; anything else (an invalid key,
        // a hard timeout, a panic in another caller's compute) is the cache's.
        e.into_compute()
            .unwrap_or_else(|other| AppError::Cache(other.to_string()))
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        match self {
            AppError::NotFound => StatusCode::NOT_FOUND.into_response(),
            e => {
                tracing::error!(error = %e, "request failed");
                StatusCode::INTERNAL_SERVER_ERROR.into_response()
            }
        }
    }
}

/// A user, from the cache or, on a miss, the database (one query however many
/// requests miss at once). A missing user is an error, and errors are not cached.
#[cached(cache = state.cache, expiry = 60, namespace = "users")]
async fn load_user(state: &AppState, id: i64) -> Result<User, AppError> {
    state.db.user(id).await?.ok_or(AppError::NotFound)
}

async fn get_user(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Json<User>, AppError> {
    Ok(Json(load_user(&state, id).await?))
}

async fn put_user(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    Json(body): Json<Rename>,
) -> Result<Json<User>, AppError> {
    if !state.db.rename(id, &body.name).await? {
        return Err(AppError::NotFound);
    }
    // After the write: the next GET reads the new row. (#[cached] made this function.)
    if let Err(e) = load_user_invalidate(&state, id).await {
        // The store is down: the old value goes when its 60 s expiry ends.
        tracing::warn!(error = %e, "could not invalidate the cached user");
    }
    Ok(Json(User {
        id,
        name: body.name,
    }))
}

async fn report(State(state): State<AppState>) -> Result<String, AppError> {
    Ok(state.db.report().await?)
}

async fn stats(State(state): State<AppState>) -> Json<cache::CacheStats> {
    Json(state.cache.stats())
}

pub fn router(state: AppState) -> Router {
    Router::new()
        // The slow report: whole responses cached for 30 s by the HTTP layer, which
        // wraps the routes added before it.
        .route("/report", get(report))
        .layer(HttpCacheLayer::new(state.cache.clone()).ttl(Duration::from_secs(30)))
        .route("/users/{id}", get(get_user).put(put_user))
        .route("/metrics", get(cache::axum::prometheus_stats))
        .route("/stats", get(stats))
        .with_state(state)
}

/// Resolves at SIGTERM (what `docker stop` and Kubernetes send) or Ctrl-C. The
/// SIGTERM handler is installed at once, so a signal that comes before the server
/// polls this future is not lost; call it inside the runtime.
pub fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = ()> + Send + 'static>
{
    #[cfg(unix)]
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    Ok(async move {
        #[cfg(unix)]
        let term = term.recv();
        #[cfg(not(unix))]
        let term = std::future::pending::<Option<()>>();
        tokio::select! {
            _ = term => {}
            _ = tokio::signal::ctrl_c() => {}
        }
        tracing::info!("shutting down: finishing the requests in flight");
    })
}
