//! Client authentication (RFC 6749 §2.3.1): HTTP Basic or `client_id` +
//! `client_secret` in the body.

use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use super::super::config::Client;
use super::AppState;
use super::LOG_TARGET;
use super::error::{OAuthError, log_safe};
use super::params::Params;

/// The source of a request, as failed attempts are counted: the peer's
/// IPv4 address, or the /64 of its IPv6 one.
#[derive(Clone, Copy, Debug)]
pub(super) struct Peer(pub(super) IpAddr);

impl<S: Send + Sync> FromRequestParts<S> for Peer {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        // SECURITY: the TCP peer, never `X-Forwarded-For` or `Forwarded`,
        // which any caller can write. (Behind a reverse proxy every caller
        // would share the proxy's address: trust its header there, and only
        // there.) Without connection info all callers share one source.
        let ip = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| {
                c.0.ip().to_canonical()
            });
        Ok(Self(match ip {
            // SECURITY: one host commonly holds a whole /64; counting each
            // address apart would give it 2^64 budgets.
            IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from_bits(v6.to_bits() & !u128::from(u64::MAX))),
            v4 @ IpAddr::V4(_) => v4,
        }))
    }
}

/// Decodes application/x-www-form-urlencoded text (`%XX`, `+`).
fn form_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes.get(i + 1..i + 3)?;
                if !hex.iter().all(u8::is_ascii_hexdigit) {
                    return None;
                }
                out.push(u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// `(client_id, secret, via_basic)` if the request carries client credentials.
fn client_credentials(
    headers: &HeaderMap,
    p: &Params,
) -> Result<Option<(String, String, bool)>, OAuthError> {
    let basic = match headers.get(header::AUTHORIZATION) {
        Some(value) => {
            let value = value
                .to_str()
                .map_err(|_| OAuthError::invalid_client(true))?;
            let (scheme, creds) = value.split_once(' ').unwrap_or((value, ""));
            if scheme.eq_ignore_ascii_case("basic") {
                let decoded = STANDARD
                    .decode(creds.trim())
                    .ok()
                    .and_then(|d| String::from_utf8(d).ok())
                    .ok_or_else(|| OAuthError::invalid_client(true))?;
                let (id, secret) = decoded
                    .split_once(':')
                    .ok_or_else(|| OAuthError::invalid_client(true))?;
                Some((
                    form_decode(id).ok_or_else(|| OAuthError::invalid_client(true))?,
                    form_decode(secret).ok_or_else(|| OAuthError::invalid_client(true))?,
                ))
            } else {
                None
            }
        }
        None => None,
    };
    let post = match (p.get("client_id"), p.get("client_secret")) {
        (Some(id), Some(secret)) => Some((id.to_owned(), secret.to_owned())),
        (None, Some(_)) => {
            return Err(OAuthError::invalid_request(
                "client_secret without client_id",
            ));
        }
        _ => None,
    };
    match (basic, post) {
        // SECURITY (RFC 6749 §2.3): one method per request, so no confusion
        // about which client is speaking.
        (Some(_), Some(_)) => Err(OAuthError::invalid_request(
            "use one client authentication method, not two",
        )),
        (Some((id, secret)), None) => Ok(Some((id, secret, true))),
        (None, Some((id, secret))) => Ok(Some((id, secret, false))),
        (None, None) => Ok(None),
    }
}

/// The authenticated client, `None` if the request has no client
/// credentials, or `invalid_client` if they are wrong.
pub(super) async fn authenticate<'a>(
    s: &'a AppState,
    peer: Peer,
    headers: &HeaderMap,
    p: &Params,
) -> Result<Option<&'a Client>, OAuthError> {
    let Some((id, secret, basic)) = client_credentials(headers, p)? else {
        return Ok(None);
    };
    if id.len() > 256 || secret.len() > 1024 {
        return Err(OAuthError::invalid_client(basic));
    }
    let attempt = s
        .backoff
        .begin(peer.0, &format!("client:{id}"))
        .map_err(OAuthError::too_many)?;
    let client = s.clients.get(&id);
    if let Some(c) = client
        && s.client_cache.hit(&id, &secret)
    {
        attempt.success();
        return Ok(Some(c));
    }
    // SECURITY: unknown clients are checked against a decoy of equal cost,
    // so response time does not reveal which client ids exist.
    let phc = client.map_or_else(
        || s.client_decoys.for_name(&id).to_owned(),
        |c| c.secret_hash.clone(),
    );
    let ok = s.hasher.verify(secret.clone(), phc).await;
    match client {
        Some(c) if ok => {
            attempt.success();
            s.client_cache.remember(&id, &secret);
            Ok(Some(c))
        }
        _ => {
            attempt.failure();
            tracing::warn!(target: LOG_TARGET, client_id = %log_safe(&id), "client authentication failed");
            Err(OAuthError::invalid_client(basic))
        }
    }
}

/// The authenticated client, or `invalid_client` if there is none.
pub(super) async fn require_client<'a>(
    s: &'a AppState,
    peer: Peer,
    headers: &HeaderMap,
    p: &Params,
) -> Result<&'a Client, OAuthError> {
    authenticate(s, peer, headers, p)
        .await?
        .ok_or_else(|| OAuthError::invalid_client(false))
}
