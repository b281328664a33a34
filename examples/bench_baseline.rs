//! BENCHMARK BASELINE, not an example to copy: the JWT check a team might
//! hand-write instead of using authlayer, for `benches/load.sh` to compare
//! the `orders` example against on the same machine.
//!
//! ```text
//! AUTH_ISSUER=http://127.0.0.1:4000 PORT=0 cargo run --release --example bench_baseline
//! ```
//!
//! At start-up it fetches the issuer's keys once (OIDC discovery, then the
//! JWK Set). Each request to `GET /orders/{id}` then goes through an axum
//! middleware that decodes the bearer token with
//! `jsonwebtoken::decode::<serde_json::Value>` (signature, `exp`, `iss`,
//! `aud`) and checks the `orders:read` scope: no cache, no key refresh, no
//! logging, no audit. `GET /health` answers without a token. Prints
//! `listening on 127.0.0.1:PORT` when ready.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Json, Router};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{DecodingKey, Validation};
use serde_json::{Value, json};

struct Keys {
    by_kid: HashMap<String, DecodingKey>,
    iss: String,
}

async fn check_token(
    State(keys): State<Arc<Keys>>,
    mut req: Request,
    next: Next,
) -> Result<Response, StatusCode> {
    let token = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or(StatusCode::UNAUTHORIZED)?;
    let header = jsonwebtoken::decode_header(token).map_err(|_| StatusCode::UNAUTHORIZED)?;
    let key = header
        .kid
        .as_deref()
        .and_then(|kid| keys.by_kid.get(kid))
        .ok_or(StatusCode::UNAUTHORIZED)?;
    let mut validation = Validation::new(header.alg);
    validation.set_audience(&["urn:orders"]);
    validation.set_issuer(&[&keys.iss]);
    let claims = jsonwebtoken::decode::<Value>(token, key, &validation)
        .map_err(|_| StatusCode::UNAUTHORIZED)?
        .claims;
    let scoped = claims["scope"]
        .as_str()
        .is_some_and(|s| s.split(' ').any(|s| s == "orders:read"));
    if !scoped {
        return Err(StatusCode::FORBIDDEN);
    }
    req.extensions_mut().insert(Arc::new(claims));
    Ok(next.run(req).await)
}

async fn get_order(Extension(claims): Extension<Arc<Value>>, Path(id): Path<u64>) -> Json<Value> {
    Json(json!({"id": id, "item": "widget", "quantity": 1, "owner": claims["sub"]}))
}

async fn health() -> impl IntoResponse {
    Json(json!({"status": "ok"}))
}

async fn fetch_keys(iss: &str) -> Result<Keys, Box<dyn std::error::Error>> {
    let http = reqwest::Client::new();
    let meta: Value = http
        .get(format!("{iss}/.well-known/openid-configuration"))
        .send()
        .await?
        .json()
        .await?;
    let jwks_uri = meta["jwks_uri"].as_str().ok_or("no jwks_uri")?;
    let set: JwkSet = http.get(jwks_uri).send().await?.json().await?;
    let mut by_kid = HashMap::new();
    for jwk in &set.keys {
        if let (Some(kid), Ok(key)) = (&jwk.common.key_id, DecodingKey::from_jwk(jwk)) {
            by_kid.insert(kid.clone(), key);
        }
    }
    Ok(Keys {
        by_kid,
        iss: iss.to_owned(),
    })
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // jsonwebtoken 12 needs a provider chosen when both backends are built.
    #[cfg(feature = "aws-lc-rs")]
    let _ = jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER.install_default();
    let iss = std::env::var("AUTH_ISSUER").unwrap_or_else(|_| "http://127.0.0.1:4000".into());
    let port: u16 = std::env::var("PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(3001);
    let keys = Arc::new(fetch_keys(&iss).await?);
    let app = Router::new()
        .route(
            "/orders/{id}",
            get(get_order).route_layer(middleware::from_fn_with_state(keys, check_token)),
        )
        .route("/health", get(health));
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    println!("listening on {}", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}
