//! The `orders` HTTP service, protected by authlayer (axum).
//!
//! ```text
//! AUTH_ISSUER=http://127.0.0.1:4000 cargo run --example orders
//! ```
//!
//! Environment (all optional): `AUTH_ISSUER` (default `http://127.0.0.1:4000`),
//! `AUTH_JWKS_URL`, `AUTH_AUDIENCE` (default `urn:orders`), `AUTH_LAZY`,
//! `AUTH_ALLOW_HTTP` and the lifecycle settings described in
//! `examples/common/auth_env.rs`; `PORT` — listen port on 127.0.0.1 (default 3000).
//!
//! Routes: `GET /health` (no auth: key-set health as JSON, 503 when not
//! ready), `GET /orders/{id}` (scope `orders:read`), `POST /orders`
//! (scope `orders:write`, 201), `GET /me` (any valid token: the verified claims).
//!
//! With introspection configured (`AUTH_INTROSPECTION_CLIENT_ID` and
//! `AUTH_INTROSPECTION_CLIENT_SECRET`, see `auth_env.rs`), opaque tokens are
//! accepted on every route with the same scope rules, and
//! `DELETE /orders/{id}` (scope `orders:write`, 204) is revocation-sensitive:
//! its token is confirmed at the introspection endpoint, relying on an
//! answer at most `AUTH_ACTIVE_TTL` seconds old (default 5).

use std::time::Duration;

use authlayer::{Claims, RequireActiveLayer, RequireScopes, Verifier, VerifyLayer};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde_json::{Value, json};

#[path = "common/auth_env.rs"]
#[allow(clippy::duplicate_mod)] // the demo includes both order services
mod auth_env;
pub use auth_env::{active_ttl, verifier_from_env};

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
        .merge(revocable(&verifier, active_ttl()))
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

/// The revocation-sensitive routes, present when the verifier introspects
/// tokens: their token must be confirmed active at the endpoint, by an answer
/// at most `active_ttl` old.
pub fn revocable(verifier: &Verifier, active_ttl: Duration) -> Router {
    if verifier.health().introspection.is_empty() {
        return Router::new();
    }
    Router::new().route(
        "/orders/{id}",
        delete(delete_order)
            .route_layer(RequireActiveLayer::new(active_ttl))
            .route_layer(RequireScopes::all(["orders:write"])),
    )
}

async fn delete_order(_claims: Claims, Path(_id): Path<u64>) -> StatusCode {
    StatusCode::NO_CONTENT
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
