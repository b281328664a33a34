//! Introspection (RFC 7662) and revocation (RFC 7009).

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::super::audit::Audit;
use super::super::keys::now_ms;
use super::super::store::{StoreError, TokenHash};
use super::LOG_TARGET;
use super::client_auth::{Peer, authenticate, require_client};
use super::error::{OAuthError, log_safe, no_store};
use super::params::Params;
use super::{AppState, audited};

/// JWT access tokens have two dots; refresh tokens and opaque access tokens
/// have none.
fn looks_like_jwt(token: &str) -> bool {
    token.bytes().filter(|&b| b == b'.').count() == 2
}

/// The claims of one of our access tokens that is still valid (signature or
/// store entry, issuer, expiry, not revoked): a JWT, or an opaque one.
/// `Err` when the store cannot answer.
pub(super) async fn live_access_token(
    s: &AppState,
    token: &str,
) -> Result<Option<Map<String, Value>>, StoreError> {
    let claims = if looks_like_jwt(token) {
        let Some(claims) = s.keys.verify_jwt(token) else {
            return Ok(None);
        };
        claims
    } else {
        let Some(text) = s
            .store
            .opaque(TokenHash::of(token), now_ms() / 1000)
            .await?
        else {
            return Ok(None);
        };
        match serde_json::from_str(&text) {
            Ok(Value::Object(claims)) => claims,
            _ => return Ok(None),
        }
    };
    let now = now_ms() / 1000;
    if claims.get("iss").and_then(Value::as_str) != Some(s.issuer.as_str())
        || claims
            .get("exp")
            .and_then(Value::as_i64)
            .is_none_or(|exp| exp <= now)
    {
        return Ok(None);
    }
    let Some(jti) = claims.get("jti").and_then(Value::as_str) else {
        return Ok(None);
    };
    if s.store.is_access_revoked(jti.to_owned()).await? {
        return Ok(None);
    }
    // SECURITY: a disabled user's tokens stop being active at once, on
    // every replica, whichever way they were issued.
    if let Some(sub) = claims.get("sub").and_then(Value::as_str)
        && s.store.is_disabled(sub.to_owned()).await?
    {
        return Ok(None);
    }
    Ok(Some(claims))
}

/// `POST /introspect`: whether a token is active, and its claims.
pub(super) async fn introspect(
    State(s): State<Arc<AppState>>,
    peer: Peer,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, OAuthError> {
    let mut audit = Audit::request(
        "introspection",
        "introspect",
        "/introspect",
        &s.issuer,
        &headers,
    );
    let result = introspect_token(&s, peer, &headers, &body, &mut audit).await;
    audited(&audit, result)
}

/// The subject, tenant and id of an introspected or revoked token, for
/// its audit record.
fn describe(audit: &mut Audit, claims: &Map<String, Value>) {
    let text = |name: &str| claims.get(name).and_then(Value::as_str).map(log_safe);
    audit.sub = text("sub");
    audit.tenant = text("tenant");
    audit.jti = text("jti");
}

async fn introspect_token(
    s: &AppState,
    peer: Peer,
    headers: &HeaderMap,
    body: &Bytes,
    audit: &mut Audit,
) -> Result<Response, OAuthError> {
    let p = Params::parse(headers, body)?;
    let client = require_client(s, peer, headers, &p).await?;
    audit.client_id = Some(client.client_id.clone());
    let token = p.require("token")?;
    audit.reason = Some("inactive");
    let inactive = || no_store(Json(json!({"active": false})).into_response());

    if let Some(mut claims) = live_access_token(s, token).await? {
        // SECURITY (RFC 7662 §4): a client learns about a token only if it is
        // one of its audiences or the token was issued to it.
        let audiences = client
            .audiences
            .clone()
            .unwrap_or_else(|| vec![s.config.default_audience.clone()]);
        let aud_ok = match claims.get("aud") {
            Some(Value::String(a)) => audiences.contains(a),
            Some(Value::Array(list)) => list
                .iter()
                .any(|a| a.as_str().is_some_and(|a| audiences.iter().any(|x| x == a))),
            _ => false,
        };
        let own =
            claims.get("client_id").and_then(Value::as_str) == Some(client.client_id.as_str());
        if !aud_ok && !own {
            return Ok(inactive());
        }
        describe(audit, &claims);
        audit.reason = Some("active");
        claims.insert("active".into(), json!(true));
        claims.insert("token_type".into(), json!("Bearer"));
        return Ok(no_store(Json(Value::Object(claims)).into_response()));
    }
    if looks_like_jwt(token) {
        return Ok(inactive());
    }

    let now = now_ms() / 1000;
    match s.store.live_family(TokenHash::of(token), now).await? {
        Some(family) if family.grant.client_id == client.client_id => {
            audit.sub = Some(log_safe(&family.grant.sub));
            audit.tenant.clone_from(&family.grant.tenant);
            audit.reason = Some("active");
            Ok(no_store(
                Json(json!({
                    "active": true,
                    "token_type": "refresh_token",
                    "client_id": family.grant.client_id,
                    "sub": family.grant.sub,
                    "scope": family.grant.scopes.join(" "),
                    "exp": family.expires_at,
                    "iss": s.issuer,
                }))
                .into_response(),
            ))
        }
        _ => Ok(inactive()),
    }
}

/// `POST /revoke`: revoke an access token (until it expires) or a refresh
/// token (with its whole family). Unknown tokens are fine (RFC 7009 §2.2).
pub(super) async fn revoke(
    State(s): State<Arc<AppState>>,
    peer: Peer,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, OAuthError> {
    let mut audit = Audit::request("revocation", "revoke", "/revoke", &s.issuer, &headers);
    let result = revoke_token(&s, peer, &headers, &body, &mut audit).await;
    audited(&audit, result)
}

async fn revoke_token(
    s: &AppState,
    peer: Peer,
    headers: &HeaderMap,
    body: &Bytes,
    audit: &mut Audit,
) -> Result<Response, OAuthError> {
    let p = Params::parse(headers, body)?;
    let client = authenticate(s, peer, headers, &p).await?;
    audit.client_id = client.map(|c| c.client_id.clone());
    audit.reason = Some("unknown_token");
    let token = p.require("token")?;
    let done = || no_store(StatusCode::OK.into_response());
    // SECURITY (RFC 7009 §2.1): tokens of the public login client may be
    // revoked by whoever holds them; a confidential client's tokens only by
    // that client.
    let may_revoke = |owner: &str| {
        owner == s.config.login_client_id || client.is_some_and(|c| c.client_id == owner)
    };
    let refused = || OAuthError::unauthorized_client("this token was issued to another client");

    if let Some(claims) = live_access_token(s, token).await? {
        describe(audit, &claims);
        let owner = claims
            .get("client_id")
            .and_then(Value::as_str)
            .unwrap_or("");
        if !may_revoke(owner) {
            audit.reason = Some("other_clients_token");
            return Err(refused());
        }
        if let (Some(jti), Some(exp)) = (
            claims.get("jti").and_then(Value::as_str),
            claims.get("exp").and_then(Value::as_i64),
        ) {
            s.store.revoke_access(jti.to_owned(), exp).await?;
            audit.reason = Some("access_token_revoked");
            tracing::info!(target: LOG_TARGET, sub = ?claims.get("sub"), "access token revoked");
        }
        return Ok(done());
    }
    if looks_like_jwt(token) {
        return Ok(done());
    }
    let hash = TokenHash::of(token);
    if let Some(family) = s.store.live_family(hash, now_ms() / 1000).await? {
        audit.sub = Some(log_safe(&family.grant.sub));
        audit.tenant.clone_from(&family.grant.tenant);
        if !may_revoke(&family.grant.client_id) {
            audit.reason = Some("other_clients_token");
            return Err(refused());
        }
        s.store.revoke_family_of(hash).await?;
        audit.reason = Some("refresh_family_revoked");
        tracing::info!(target: LOG_TARGET, sub = %log_safe(&family.grant.sub), family = %family.id, "refresh token family revoked");
    }
    Ok(done())
}
