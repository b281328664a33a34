//! The `orders` HTTP service, protected by authlayer (axum).
//!
//! ```text
//! AUTH_ISSUER=http://127.0.0.1:4000 cargo run --example orders --features axum
//! ```
//!
//! Environment (all optional):
//! - `AUTH_ISSUER` — issuer URL; keys via OIDC discovery (default `http://127.0.0.1:4000`)
//! - `AUTH_JWKS_URL` — fetch keys from this URL instead of discovering it
//! - `AUTH_AUDIENCE` — required audience (default `urn:orders`)
//! - `AUTH_LAZY` — `1`: start even if the issuer is down (503 until keys arrive)
//! - `AUTH_REFRESH_SECS`, `AUTH_COOLDOWN_SECS`, `AUTH_MAX_STALE_SECS`,
//!   `AUTH_FETCH_TIMEOUT_MS` — key lifecycle tuning (defaults: 300, 30, 86400, 5000)
//! - `PORT` — listen port on 127.0.0.1 (default 3000)
//!
//! Routes: `GET /health` (no auth: key-set health as JSON, 503 when not
//! ready), `GET /orders/{id}` (scope `orders:read`), `POST /orders`
//! (scope `orders:write`, 201), `GET /me` (any valid token: the verified claims).

use std::time::Duration;

use authlayer::{Claims, RequireScopes, Verifier, VerifyLayer};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};

/// Builds the verifier from the environment.
pub async fn verifier_from_env() -> Result<Verifier, authlayer::BuildError> {
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let secs = |name: &str, default: u64| {
        env(name)
            .and_then(|v| v.parse().ok())
            .map_or(Duration::from_secs(default), Duration::from_secs)
    };
    let issuer = env("AUTH_ISSUER").unwrap_or_else(|| "http://127.0.0.1:4000".into());
    let audience = env("AUTH_AUDIENCE").unwrap_or_else(|| "urn:orders".into());
    let mut builder = Verifier::builder()
        .issuer(issuer)
        .audience(audience)
        .refresh_interval(secs("AUTH_REFRESH_SECS", 300))
        .refetch_cooldown(secs("AUTH_COOLDOWN_SECS", 30))
        .max_stale(Some(secs("AUTH_MAX_STALE_SECS", 86_400)))
        .fetch_timeout(
            env("AUTH_FETCH_TIMEOUT_MS")
                .and_then(|v| v.parse().ok())
                .map_or(Duration::from_secs(5), Duration::from_millis),
        )
        .lazy(env("AUTH_LAZY").is_some_and(|v| v == "1" || v == "true"));
    if let Some(url) = env("AUTH_JWKS_URL") {
        builder = builder.jwks_url(url);
    }
    builder.build().await
}

/// The service's router.
pub fn app(verifier: Verifier) -> Router {
    let protected = Router::new()
        .route(
            "/orders/{id}",
            get(get_order).route_layer(RequireScopes::all(["orders:read"])),
        )
        .route(
            "/orders",
            post(create_order).route_layer(RequireScopes::all(["orders:write"])),
        )
        .route("/me", get(me))
        .layer(VerifyLayer::new(verifier.clone()));
    Router::new()
        .route("/health", get(health))
        .with_state(verifier)
        .merge(protected)
}

async fn health(State(verifier): State<Verifier>) -> (StatusCode, Json<Value>) {
    let health = verifier.health();
    let status = if health.ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(json!({"status": if health.ready { "ok" } else { "unavailable" }, "auth": health})),
    )
}

async fn get_order(claims: Claims, Path(id): Path<u64>) -> Json<Value> {
    Json(json!({"id": id, "item": "widget", "quantity": 1, "owner": claims.sub()}))
}

async fn create_order(claims: Claims, Json(body): Json<Value>) -> (StatusCode, Json<Value>) {
    (
        StatusCode::CREATED,
        Json(json!({"id": 42, "order": body, "owner": claims.sub()})),
    )
}

async fn me(claims: Claims) -> Json<Claims> {
    Json(claims)
}

/// Serves on 127.0.0.1:`port` (0: any free port); prints the address when ready.
pub async fn serve(verifier: Verifier, port: u16) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    println!("listening on {}", listener.local_addr()?);
    axum::serve(listener, app(verifier)).await
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,authlayer::audit=info".into()),
        )
        .init();
    let port = std::env::var("PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(3000);
    let verifier = verifier_from_env().await.map_err(|e| {
        eprintln!("orders: cannot start: {e}");
        e
    })?;
    serve(verifier, port).await?;
    Ok(())
}
