//! Minting RFC 9068 access tokens and random opaque tokens.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use super::keys::{KeyError, KeyManager, now_ms};
use super::store::Grant;

/// A signed access token and what the response needs to say about it.
pub struct Minted {
    /// The compact JWS.
    pub token: String,
    /// Its `jti`.
    pub jti: String,
    /// Its `exp`, seconds since the epoch.
    pub exp: i64,
    /// Seconds until it expires.
    pub expires_in: u64,
}

/// `n` random bytes, base64url: refresh tokens (32 bytes), ids.
pub fn random_token(n: usize) -> Result<String, KeyError> {
    let mut bytes = vec![0u8; n];
    aws_lc_rs::rand::fill(&mut bytes)
        .map_err(|_| KeyError("the system random generator failed".into()))?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

/// The claims of an access token for `grant` (RFC 9068 §2.2).
pub fn access_claims(issuer: &str, grant: &Grant, jti: &str, iat: i64, exp: i64) -> Value {
    let mut claims = json!({
        "iss": issuer,
        "sub": grant.sub,
        "aud": grant.audience,
        "exp": exp,
        "iat": iat,
        "jti": jti,
        "client_id": grant.client_id,
        "scope": grant.scopes.join(" "),
        "roles": grant.roles,
    });
    if let Some(tenant) = &grant.tenant {
        claims["tenant"] = json!(tenant);
    }
    claims
}

/// An opaque access token for `grant`, valid for `ttl`, and the claims it
/// stands for (kept by the store, shown by `/introspect`).
pub fn mint_opaque(
    issuer: &str,
    grant: &Grant,
    ttl: Duration,
) -> Result<(Minted, Value), KeyError> {
    let token = random_token(32)?;
    let jti = random_token(16)?;
    let iat = now_ms() / 1000;
    let expires_in = ttl.as_secs().max(1);
    let exp = iat.saturating_add(i64::try_from(expires_in).unwrap_or(i64::MAX));
    let claims = access_claims(issuer, grant, &jti, iat, exp);
    Ok((
        Minted {
            token,
            jti,
            exp,
            expires_in,
        },
        claims,
    ))
}

/// Signs an access token for `grant`, valid for `ttl`.
pub fn mint(
    keys: &KeyManager,
    issuer: &str,
    grant: &Grant,
    ttl: Duration,
) -> Result<Minted, KeyError> {
    mint_delegated(keys, issuer, grant, ttl, None)
}

/// [`mint`], and with an `actor` the RFC 8693 §4.1 `act` claim naming who
/// acts on the subject's behalf.
pub fn mint_delegated(
    keys: &KeyManager,
    issuer: &str,
    grant: &Grant,
    ttl: Duration,
    actor: Option<&str>,
) -> Result<Minted, KeyError> {
    let jti = random_token(16)?;
    let iat = now_ms() / 1000;
    let expires_in = ttl.as_secs().max(1);
    let exp = iat.saturating_add(i64::try_from(expires_in).unwrap_or(i64::MAX));
    let mut claims = access_claims(issuer, grant, &jti, iat, exp);
    if let Some(actor) = actor {
        claims["act"] = json!({ "sub": actor });
    }
    let token = keys.sign_access_token(&claims)?;
    Ok(Minted {
        token,
        jti,
        exp,
        expires_in,
    })
}
