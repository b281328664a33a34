//! The `orders` HTTP service, protected by authlayer (axum).
//!
//! ```text
//! AUTH_ISSUER=http://127.0.0.1:4000 cargo run --example orders
//! ```
//!
//! Environment (all optional): `AUTH_ISSUER` (default `http://127.0.0.1:4000`),
//! `AUTH_JWKS_URL`, `AUTH_AUDIENCE` (default `urn:orders`), `AUTH_LAZY`,
//! `AUTH_ALLOW_HTTP` and the lifecycle settings described in
//! `examples/common/auth_env.rs`; `AUTH_PUBLIC_URL` — the URL clients call
//! this service at, its RFC 9728 resource identifier (default
//! `http://127.0.0.1:$PORT`, the port actually bound), also the URL DPoP
//! proofs must name; `AUTH_DPOP` (`allowed` by default, `required`, `off`),
//! `AUTH_DPOP_NONCE` (`1`: server nonces) and `AUTH_DPOP_NONCE_SECRET`
//! (base64; replicas must share it; default random per process);
//! `PORT` — listen port on 127.0.0.1 (default 3000);
//! `AUDIT_LOG` (unset: audit JSON lines on stdout; a path: that file; `off`)
//! and `RUST_LOG` (human log on stderr, default `info`), described in
//! `examples/common/observability.rs`.
//!
//! Routes: `GET /health` (no auth: key-set health as JSON, 503 when not
//! ready), `GET /metrics` (no auth: Prometheus text),
//! `GET /.well-known/oauth-protected-resource` (no auth: the RFC 9728
//! metadata, `resource` = `AUTH_PUBLIC_URL`, `authorization_servers` =
//! [`AUTH_ISSUER`], `scopes_supported` = the scopes below; every
//! `WWW-Authenticate` challenge names it as `resource_metadata`; the
//! path-suffixed form when `AUTH_PUBLIC_URL` has a path), `GET /orders/{id}`
//! (scope `orders:read`), `POST /orders` (scope `orders:write`, 201),
//! `GET /me` (any valid token: the verified claims), `GET /admin/orders`
//! (role `admin`: a JSON array), `GET /tenants/{tenant}/orders/{id}` (scope
//! `orders:read` and the token's tenant must be `{tenant}`). Roles and
//! tenant are read from `AUTH_ROLES_CLAIM` and `AUTH_TENANT_CLAIM`.
//!
//! With introspection configured (`AUTH_INTROSPECTION_CLIENT_ID` and
//! `AUTH_INTROSPECTION_CLIENT_SECRET`, see `auth_env.rs`), opaque tokens are
//! accepted on every route with the same scope rules, and
//! `DELETE /orders/{id}` (scope `orders:write`, 204) is revocation-sensitive:
//! its token is confirmed at the introspection endpoint, relying on an
//! answer at most `AUTH_ACTIVE_TTL` seconds old (default 5).
//!
//! Ctrl-C or SIGTERM stops it gracefully: running requests finish and the
//! audit log is flushed.

use std::time::Duration;

use authlayer::{
    BuildError, Claims, RequireActiveLayer, RequireRolesLayer, RequireScopesLayer,
    RequireTenantLayer, ResourceMetadata, Verifier, VerifyLayer,
};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde_json::{Value, json};

#[path = "common/auth_env.rs"]
#[allow(clippy::duplicate_mod)] // the demo includes both order services
mod auth_env;
pub use auth_env::active_ttl;
#[path = "common/limits.rs"]
#[allow(clippy::duplicate_mod, dead_code)] // shared by every example
mod limits;
#[path = "common/observability.rs"]
#[allow(clippy::duplicate_mod, dead_code)] // shared by every example
mod observability;

/// The scopes the routes ask for: `scopes_supported` of the metadata.
pub const SCOPES: [&str; 2] = ["orders:read", "orders:write"];

/// The verifier configured from the environment (`auth_env.rs`), with the
/// RFC 9728 metadata of this service at `public_url` and DPoP as
/// `AUTH_DPOP` says (proofs name `public_url`).
pub async fn verifier_for(public_url: String) -> Result<Verifier, BuildError> {
    let mut builder = auth_env::builder_from_env_for("urn:orders")?
        .resource_metadata(ResourceMetadata::new(public_url).scopes_supported(SCOPES));
    if let Some(dpop) = auth_env::dpop_from_env()? {
        builder = builder.dpop(dpop);
    }
    builder.build().await
}

/// The service's router; with the verifier's RFC 9728 document when it has
/// one, served without a token.
pub fn app(verifier: Verifier) -> Router {
    let protected = Router::new()
        .route(
            "/orders/{id}",
            get(get_order).route_layer(RequireScopesLayer::all(["orders:read"])),
        )
        .route(
            "/orders",
            post(create_order).route_layer(RequireScopesLayer::all(["orders:write"])),
        )
        .route("/me", get(me))
        .route(
            "/admin/orders",
            get(admin_orders).route_layer(RequireRolesLayer::all(["admin"])),
        )
        .route(
            "/tenants/{tenant}/orders/{id}",
            get(tenant_order)
                .route_layer(RequireTenantLayer::path_segment(1))
                .route_layer(RequireScopesLayer::all(["orders:read"])),
        )
        .merge(revocable(&verifier, active_ttl()))
        .layer(VerifyLayer::new(verifier.clone()));
    let metadata = verifier.resource_metadata().cloned();
    let app = Router::new()
        .route("/health", get(health))
        .with_state(verifier)
        .merge(protected);
    match metadata {
        Some(metadata) => {
            let path = metadata.path().to_owned();
            app.route_service(&path, metadata)
        }
        None => app,
    }
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

async fn admin_orders(claims: Claims) -> Json<Value> {
    Json(json!([
        {"id": 1, "item": "widget", "quantity": 1, "seen_by": claims.sub()},
        {"id": 2, "item": "gadget", "quantity": 3, "seen_by": claims.sub()},
    ]))
}

async fn tenant_order(Path((tenant, id)): Path<(String, u64)>) -> Json<Value> {
    Json(json!({"tenant": tenant, "id": id}))
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
            .route_layer(RequireScopesLayer::all(["orders:write"])),
    )
}

async fn delete_order(_claims: Claims, Path(_id): Path<u64>) -> StatusCode {
    StatusCode::NO_CONTENT
}

async fn me(claims: Claims) -> Json<Claims> {
    Json(claims)
}

/// Serves on `listener`, with `GET /metrics` when a Prometheus handle is
/// given; prints the address when ready and stops on Ctrl-C or SIGTERM.
pub async fn serve(
    listener: tokio::net::TcpListener,
    verifier: Verifier,
    metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
) -> std::io::Result<()> {
    let mut app = app(verifier.clone());
    if let Some(handle) = metrics {
        app = app.merge(observability::metrics_route(handle, move || {
            verifier.record_key_metrics();
        }));
    }
    observability::announce(listener.local_addr()?);
    limits::serve(
        listener,
        app,
        limits::Limits::default(),
        observability::stop_signal(),
    )
    .await
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let audit = observability::AuditDestination::from_env();
    let _audit_log = observability::init_logging(&audit, "info")?;
    let metrics = observability::install_metrics()?;
    let port = std::env::var("PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(3000);
    // Bound first: the default public URL names the port actually bound
    // (PORT=0 picks any free one).
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    let public_url = auth_env::public_url(listener.local_addr()?.port());
    let verifier = verifier_for(public_url).await.map_err(|e| {
        eprintln!("orders: cannot start: {e}");
        e
    })?;
    serve(listener, verifier, Some(metrics)).await?;
    Ok(())
}
