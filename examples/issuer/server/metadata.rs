//! Metadata and keys: the JWK Set, discovery, health and the admin
//! endpoints.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::super::audit::Audit;
use super::super::config::{
    Client, GRANT_CLIENT_CREDENTIALS, GRANT_REFRESH_TOKEN, GRANT_TOKEN_EXCHANGE, parse_duration,
};
use super::super::keys::hex;
use super::LOG_TARGET;
use super::client_auth::{Peer, require_client};
use super::error::OAuthError;
use super::params::Params;
use super::{AppState, audited};

/// `GET /.well-known/jwks.json`, with `max-age` and an `ETag`.
pub(super) async fn jwks(State(s): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    let body = s.keys.jwks().to_string();
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, body.as_bytes());
    let etag = format!("\"{}\"", hex(&digest.as_ref()[..8]));
    let cache = public_cache(&s);
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag));
    let mut res = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            body,
        )
            .into_response()
    };
    for (name, value) in [(header::CACHE_CONTROL, cache), (header::ETAG, etag)] {
        if let Ok(value) = HeaderValue::from_str(&value) {
            res.headers_mut().insert(name, value);
        }
    }
    res
}

/// `GET /.well-known/openid-configuration` (and the RFC 8414 path).
pub(super) async fn metadata(State(s): State<Arc<AppState>>) -> Response {
    let iss = &s.issuer;
    let mut scopes: Vec<&str> = s
        .config
        .users
        .iter()
        .flat_map(|u| &u.scopes)
        .chain(s.clients.values().flat_map(|c| &c.scopes))
        .map(String::as_str)
        .collect();
    scopes.sort_unstable();
    scopes.dedup();
    let auth_methods = ["client_secret_basic", "client_secret_post"];
    let body = json!({
        "issuer": iss,
        "jwks_uri": format!("{iss}/.well-known/jwks.json"),
        "token_endpoint": format!("{iss}/token"),
        "introspection_endpoint": format!("{iss}/introspect"),
        "revocation_endpoint": format!("{iss}/revoke"),
        "grant_types_supported": [GRANT_CLIENT_CREDENTIALS, GRANT_REFRESH_TOKEN, GRANT_TOKEN_EXCHANGE],
        "token_endpoint_auth_methods_supported": auth_methods,
        "introspection_endpoint_auth_methods_supported": auth_methods,
        "revocation_endpoint_auth_methods_supported": auth_methods,
        "scopes_supported": scopes,
        // Required by OIDC Discovery and checked by strict clients; here they
        // describe the keys (this issuer mints access tokens only).
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": s.keys.algorithms(),
        // Not standard: the first-party password login and its refresh.
        "login_endpoint": format!("{iss}/login"),
        "refresh_endpoint": format!("{iss}/refresh"),
    });
    let cache = public_cache(&s);
    let mut res = Json(body).into_response();
    if let Ok(value) = HeaderValue::from_str(&cache) {
        res.headers_mut().insert(header::CACHE_CONTROL, value);
    }
    res
}

/// The `Cache-Control` of the key set and of the discovery document (which
/// lists the keys' algorithms): public, for `JWKS_MAX_AGE`.
fn public_cache(s: &AppState) -> String {
    format!("public, max-age={}", s.config.jwks_max_age.as_secs().max(1))
}

/// `GET /health`: `{"status":"ok"}`; with a database, also whether it
/// answers, and 503 while it does not (not ready: logins and refreshes
/// cannot work).
pub(super) async fn health(State(s): State<Arc<AppState>>) -> Response {
    let Some(db) = &s.db else {
        return Json(json!({"status": "ok"})).into_response();
    };
    // SECURITY: the error may name the database's host: logged, not shown.
    let ready = match db.ping().await {
        Ok(()) => true,
        Err(e) => {
            tracing::warn!(target: LOG_TARGET, error = %e, "health: the database does not answer");
            false
        }
    };
    metrics::gauge!("issuer_database_up").set(if ready { 1.0 } else { 0.0 });
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(json!({
            "status": if ready { "ok" } else { "unavailable" },
            "database": {"ready": ready},
        })),
    )
        .into_response()
}

/// The authenticated client if it is an admin client, else `access_denied`.
async fn require_admin<'a>(
    s: &'a AppState,
    peer: Peer,
    headers: &HeaderMap,
    p: &Params,
) -> Result<&'a Client, OAuthError> {
    let client = require_client(s, peer, headers, p).await?;
    if client.admin {
        Ok(client)
    } else {
        Err(OAuthError::new(
            StatusCode::FORBIDDEN,
            "access_denied",
            "this client is not an admin client",
        ))
    }
}

/// `POST /admin/rotate` (admin client): start a key rotation. Optional
/// `lead` (e.g. `30s`) overrides the publication lead, for emergencies.
pub(super) async fn admin_rotate(
    State(s): State<Arc<AppState>>,
    peer: Peer,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, OAuthError> {
    let mut audit = Audit::request(
        "key_rotation",
        "admin_rotate",
        "/admin/rotate",
        &s.issuer,
        &headers,
    );
    let result = rotate_keys(&s, peer, &headers, &body, &mut audit).await;
    audited(&audit, result)
}

async fn rotate_keys(
    s: &AppState,
    peer: Peer,
    headers: &HeaderMap,
    body: &Bytes,
    audit: &mut Audit,
) -> Result<Response, OAuthError> {
    let p = Params::parse(headers, body)?;
    let admin = require_admin(s, peer, headers, &p).await?;
    audit.client_id = Some(admin.client_id.clone());
    let lead = match p.get("lead") {
        Some(text) => parse_duration(text).ok_or_else(|| {
            OAuthError::invalid_request("lead must be a duration such as 600, 30s or 10m")
        })?,
        None => s.keys.lead(),
    };
    if lead < s.config.jwks_max_age {
        tracing::warn!(
            target: LOG_TARGET,
            lead_ms = lead.as_millis(),
            "rotation lead shorter than the JWKS max-age: downstream services may meet the new key before their next refresh and rely on an unknown-kid refetch"
        );
    }
    let rotation = s.keys.rotate(lead).await?;
    audit.reason = Some(if rotation.already_pending {
        "already_pending"
    } else {
        "published"
    });
    tracing::info!(target: LOG_TARGET, client_id = %admin.client_id, kid = %rotation.kid, "rotation requested");
    Ok((StatusCode::ACCEPTED, Json(json!(rotation))).into_response())
}

/// `GET /admin/keys` (admin client): where each key stands.
pub(super) async fn admin_keys(
    State(s): State<Arc<AppState>>,
    peer: Peer,
    headers: HeaderMap,
) -> Result<Response, OAuthError> {
    let p = Params::default();
    require_admin(&s, peer, &headers, &p).await?;
    Ok(Json(json!({"keys": s.keys.status()})).into_response())
}
