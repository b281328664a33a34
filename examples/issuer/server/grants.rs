//! The grants: password login, refresh, client credentials and RFC 8693
//! token exchange, and the token response they share.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::super::audit::Audit;
use super::super::config::{
    Client, GRANT_CLIENT_CREDENTIALS, GRANT_REFRESH_TOKEN, GRANT_TOKEN_EXCHANGE,
};
use super::super::exchange::ExchangeError;
use super::super::keys::now_ms;
use super::super::store::{Family, Grant, Issued, Redeemed, TokenHash};
use super::super::tokens::{Minted, mint, mint_delegated, mint_opaque, random_token};
use super::LOG_TARGET;
use super::client_auth::{Peer, authenticate};
use super::error::{OAuthError, log_safe, no_store, shorten};
use super::introspection::live_access_token;
use super::params::Params;
use super::{AppState, audited};

const TOKEN_TYPE_ACCESS: &str = "urn:ietf:params:oauth:token-type:access_token";
const TOKEN_TYPE_JWT: &str = "urn:ietf:params:oauth:token-type:jwt";

const BAD_CREDENTIALS: &str = "invalid username or password";
const BAD_REFRESH: &str = "the refresh token is invalid, expired, revoked or already used";

/// Mints the access token for `grant`: opaque for a client configured with
/// `opaque_access_tokens`, a signed JWT otherwise. Returns it with what the
/// store must record of it; nothing is stored yet.
fn mint_for(s: &AppState, grant: &Grant) -> Result<(Minted, Issued), OAuthError> {
    let opaque = s
        .clients
        .get(&grant.client_id)
        .is_some_and(|c| c.opaque_access_tokens);
    if !opaque {
        let minted = mint(&s.keys, &s.issuer, grant, s.config.access_ttl)?;
        let issued = Issued {
            jti: minted.jti.clone(),
            exp: minted.exp,
            opaque: None,
        };
        return Ok((minted, issued));
    }
    let (minted, claims) = mint_opaque(&s.issuer, grant, s.config.access_ttl)?;
    // SECURITY: the store keeps only the token's SHA-256, like refresh tokens.
    let issued = Issued {
        jti: minted.jti.clone(),
        exp: minted.exp,
        opaque: Some((TokenHash::of(&minted.token), claims.to_string())),
    };
    Ok((minted, issued))
}

/// [`mint_for`], and an opaque token saved: for tokens of no family.
async fn issue(s: &AppState, grant: &Grant) -> Result<Minted, OAuthError> {
    let (minted, issued) = mint_for(s, grant)?;
    if let Some((hash, claims)) = issued.opaque {
        s.store.save_opaque(hash, claims, minted.exp).await?;
    }
    Ok(minted)
}

/// `POST /login`: username + password → access and refresh token.
pub(super) async fn login(
    State(s): State<Arc<AppState>>,
    peer: Peer,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, OAuthError> {
    let mut audit = Audit::request("login", "password", "/login", &s.issuer, &headers);
    let result = login_grant(&s, peer, &headers, &body, &mut audit).await;
    audited(&audit, result)
}

async fn login_grant(
    s: &AppState,
    peer: Peer,
    headers: &HeaderMap,
    body: &Bytes,
    audit: &mut Audit,
) -> Result<Response, OAuthError> {
    let p = Params::parse(headers, body)?;
    let username = p.require("username")?;
    // SECURITY: the password never reaches a record or a log line.
    let password = p.require("password")?;
    audit.sub = Some(log_safe(username));
    let denied = || OAuthError::new(StatusCode::UNAUTHORIZED, "invalid_grant", BAD_CREDENTIALS);
    if username.len() > 256 || password.len() > 1024 {
        return Err(denied());
    }
    let attempt = s
        .backoff
        .begin(peer.0, &format!("user:{username}"))
        .map_err(OAuthError::too_many)?;
    // SECURITY (guessing across replicas): each replica's back-off sees
    // only the guesses sent to it; the store counts them all (PostgreSQL),
    // so spreading guesses over the replicas gains nothing.
    let source = peer.0.to_string();
    let shared = s
        .store
        .login_locked(source.clone(), username.to_owned(), now_ms())
        .await;
    let user = match shared {
        Ok(None) => s.store.user(username.to_owned()).await,
        Ok(Some(left_ms)) => {
            drop(attempt);
            audit.reason = Some("locked");
            let left = u64::try_from(left_ms).unwrap_or(1000).max(1000);
            return Err(OAuthError::too_many(std::time::Duration::from_millis(left)));
        }
        Err(e) => Err(e),
    };
    let user = match user {
        Ok(user) => user,
        Err(e) => {
            // Nothing was checked: the attempt ends without an outcome.
            drop(attempt);
            return Err(e.into());
        }
    };
    let user = user.as_ref();
    // SECURITY: one Argon2 check whether or not the user exists (decoy hash
    // of the same cost), compared in constant time by Argon2, and one
    // answer for every failure: neither timing nor message tells which
    // part was wrong.
    let phc = user.map_or_else(
        || s.user_decoys.for_name(username).to_owned(),
        |u| u.password_hash.clone(),
    );
    let ok = s.hasher.verify(password.to_owned(), phc).await;
    let Some(user) = user.filter(|_| ok) else {
        attempt.failure();
        audit.reason = Some(if user.is_some() {
            "bad_password"
        } else {
            "unknown_user"
        });
        tracing::warn!(target: LOG_TARGET, username = %log_safe(username), "login failed");
        if let Err(e) = s
            .store
            .login_failed(source, username.to_owned(), now_ms())
            .await
        {
            tracing::warn!(target: LOG_TARGET, error = %e, "cannot count the failed login in the store");
        }
        return Err(denied());
    };
    attempt.success();
    if let Err(e) = s.store.login_succeeded(source, username.to_owned()).await {
        tracing::warn!(target: LOG_TARGET, error = %e, "cannot clear the failed logins in the store");
    }
    let grant = Grant {
        sub: user.username.clone(),
        client_id: s.config.login_client_id.clone(),
        scopes: choose_scopes(p.get("scope"), &user.scopes)?,
        audience: choose_audience(&p, user.audiences.as_deref(), &s.config.default_audience)?,
        roles: user.roles.clone(),
        tenant: user.tenant.clone(),
    };
    let refresh_token = random_token(32)?;
    let family = Family {
        id: random_token(12)?,
        grant: grant.clone(),
        expires_at: now_ms() / 1000
            + i64::try_from(s.config.refresh_ttl.as_secs()).unwrap_or(i64::MAX / 2),
    };
    let (minted, issued) = mint_for(s, &grant)?;
    // One atomic step: the family, its live token and the access token.
    s.store
        .create_family(family.clone(), TokenHash::of(&refresh_token), issued)
        .await?;
    audit.client_id = Some(grant.client_id.clone());
    audit.tenant.clone_from(&grant.tenant);
    audit.jti = Some(minted.jti.clone());
    tracing::info!(target: LOG_TARGET, sub = %log_safe(&grant.sub), family = %family.id, scope = %grant.scopes.join(" "), aud = %grant.audience, "login");
    Ok(token_response(
        &minted,
        &grant.scopes,
        Some(&refresh_token),
        None,
    ))
}

/// `POST /refresh`: the refresh-token grant without `grant_type`.
pub(super) async fn refresh(
    State(s): State<Arc<AppState>>,
    peer: Peer,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, OAuthError> {
    let mut audit = Audit::request("refresh", "refresh_token", "/refresh", &s.issuer, &headers);
    let result = async {
        let p = Params::parse(&headers, &body)?;
        let client = authenticate(&s, peer, &headers, &p).await?;
        refresh_grant(&s, &p, client, &mut audit).await
    }
    .await;
    audited(&audit, result)
}

async fn refresh_grant(
    s: &AppState,
    p: &Params,
    client: Option<&Client>,
    audit: &mut Audit,
) -> Result<Response, OAuthError> {
    audit.client_id = client.map(|c| c.client_id.clone());
    let presented = TokenHash::of(p.require("refresh_token")?);
    let now = now_ms() / 1000;
    // Checks that need the family come before the token is consumed, so a
    // bad request does not burn a good token.
    let next = random_token(32)?;
    let mut issued = None;
    let mut grant = None;
    if let Some(family) = s.store.live_family(presented, now).await? {
        audit.sub = Some(log_safe(&family.grant.sub));
        audit.client_id = Some(family.grant.client_id.clone());
        audit.tenant.clone_from(&family.grant.tenant);
        // SECURITY (RFC 6749 §6): a refresh token is bound to its client:
        // a confidential client's token needs that client's credentials.
        let owner = match client {
            Some(c) => c.client_id == family.grant.client_id,
            None => family.grant.client_id == s.config.login_client_id,
        };
        if !owner {
            audit.reason = Some("wrong_client");
            return Err(OAuthError::invalid_grant(BAD_REFRESH));
        }
        // RFC 6749 §6: the new access token may be narrower, never wider.
        let narrowed = Grant {
            scopes: choose_scopes(p.get("scope"), &family.grant.scopes)?,
            ..family.grant.clone()
        };
        // Minted before the token is consumed: the rotation and the record
        // of the new access token are then one atomic step, so a failure
        // (the database gone mid-request) never burns the presented token
        // without handing out its successor.
        let (minted, record) = mint_for(s, &narrowed)?;
        issued = Some((minted, record));
        grant = Some(narrowed);
    }
    let record = issued.as_ref().map(|(_, record)| record.clone());
    match s
        .store
        .rotate(presented, TokenHash::of(&next), now, record)
        .await?
    {
        Redeemed::Rotated(family) => {
            let (Some((minted, _)), Some(grant)) = (issued, grant) else {
                // The store rotates only when given the new access token.
                audit.reason = Some("unknown_refresh_token");
                return Err(OAuthError::invalid_grant(BAD_REFRESH));
            };
            audit.jti = Some(minted.jti.clone());
            tracing::info!(target: LOG_TARGET, sub = %log_safe(&grant.sub), family = %family.id, "refresh token rotated");
            Ok(token_response(&minted, &grant.scopes, Some(&next), None))
        }
        Redeemed::Reused(family) => {
            audit.action = "refresh_reuse";
            audit.reason = Some("family_revoked");
            audit.sub = Some(log_safe(&family.grant.sub));
            audit.client_id = Some(family.grant.client_id.clone());
            audit.tenant.clone_from(&family.grant.tenant);
            tracing::warn!(
                target: LOG_TARGET,
                sub = %log_safe(&family.grant.sub),
                family = %family.id,
                "refresh token reuse detected: the whole family is revoked"
            );
            Err(OAuthError::invalid_grant(BAD_REFRESH))
        }
        Redeemed::Unknown => {
            audit.reason = Some("unknown_refresh_token");
            Err(OAuthError::invalid_grant(BAD_REFRESH))
        }
        Redeemed::Expired => {
            audit.reason = Some("expired");
            Err(OAuthError::invalid_grant(BAD_REFRESH))
        }
        Redeemed::Revoked => {
            audit.reason = Some("revoked");
            Err(OAuthError::invalid_grant(BAD_REFRESH))
        }
    }
}

/// `POST /token`: the OAuth 2.0 token endpoint.
pub(super) async fn token(
    State(s): State<Arc<AppState>>,
    peer: Peer,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, OAuthError> {
    let mut audit = Audit::request("token", "token", "/token", &s.issuer, &headers);
    let result = token_grant(&s, peer, &headers, &body, &mut audit).await;
    audited(&audit, result)
}

async fn token_grant(
    s: &AppState,
    peer: Peer,
    headers: &HeaderMap,
    body: &Bytes,
    audit: &mut Audit,
) -> Result<Response, OAuthError> {
    let p = Params::parse(headers, body)?;
    let grant_type = p.require("grant_type")?;
    (audit.action, audit.rule) = match grant_type {
        GRANT_CLIENT_CREDENTIALS => ("client_credentials", "client_credentials"),
        GRANT_REFRESH_TOKEN => ("refresh", "refresh_token"),
        GRANT_TOKEN_EXCHANGE => ("token_exchange", "token_exchange"),
        _ => ("token", "token"),
    };
    let client = authenticate(s, peer, headers, &p).await?;
    audit.client_id = client.map(|c| c.client_id.clone());
    let may = |c: &Client, grant: &str| {
        if c.grant_types.iter().any(|g| g == grant) {
            Ok(())
        } else {
            Err(OAuthError::unauthorized_client(format!(
                "client {:?} may not use grant type {grant:?}",
                c.client_id
            )))
        }
    };
    match grant_type {
        GRANT_CLIENT_CREDENTIALS => {
            let c = client.ok_or_else(|| OAuthError::invalid_client(false))?;
            may(c, grant_type)?;
            let grant = Grant {
                sub: c.client_id.clone(),
                client_id: c.client_id.clone(),
                scopes: choose_scopes(p.get("scope"), &c.scopes)?,
                audience: choose_audience(&p, c.audiences.as_deref(), &s.config.default_audience)?,
                roles: c.roles.clone(),
                tenant: c.tenant.clone(),
            };
            let minted = issue(s, &grant).await?;
            audit.sub = Some(grant.sub.clone());
            audit.tenant.clone_from(&grant.tenant);
            audit.jti = Some(minted.jti.clone());
            tracing::info!(target: LOG_TARGET, client_id = %c.client_id, scope = %grant.scopes.join(" "), aud = %grant.audience, "client credentials");
            // RFC 6749 §4.4.3: no refresh token for client credentials.
            Ok(token_response(&minted, &grant.scopes, None, None))
        }
        GRANT_REFRESH_TOKEN => {
            if let Some(c) = client {
                may(c, grant_type)?;
            }
            refresh_grant(s, &p, client, audit).await
        }
        GRANT_TOKEN_EXCHANGE => {
            let c = client.ok_or_else(|| OAuthError::invalid_client(false))?;
            may(c, grant_type)?;
            exchange_grant(s, &p, c, audit).await
        }
        other => Err(OAuthError::new(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            format!(
                "grant_type {:?} is not supported (client_credentials, refresh_token, {GRANT_TOKEN_EXCHANGE})",
                shorten(other)
            ),
        )),
    }
}

/// RFC 8693 token exchange: an upstream issuer's token → a local token,
/// or (for clients with exchange rules) one of our own tokens → a token for
/// another audience.
async fn exchange_grant(
    s: &AppState,
    p: &Params,
    client: &Client,
    audit: &mut Audit,
) -> Result<Response, OAuthError> {
    if !client.exchange.is_empty()
        && let Some(subject) = p.get("subject_token")
        && s.keys
            .verify_jwt(subject)
            .is_some_and(|c| c.get("iss").and_then(serde_json::Value::as_str) == Some(&s.issuer))
    {
        return exchange_own_token(s, p, client, subject, audit).await;
    }
    let Some(upstreams) = &s.upstreams else {
        return Err(OAuthError::invalid_request(
            "token exchange needs trusted upstream issuers (UPSTREAMS_FILE); none is configured",
        ));
    };
    let subject_token = p.require("subject_token")?;
    let kind = p.require("subject_token_type")?;
    if kind != TOKEN_TYPE_ACCESS && kind != TOKEN_TYPE_JWT {
        return Err(OAuthError::invalid_request(format!(
            "subject_token_type must be {TOKEN_TYPE_ACCESS} or {TOKEN_TYPE_JWT}"
        )));
    }
    if p.get("requested_token_type")
        .is_some_and(|t| t != TOKEN_TYPE_ACCESS)
    {
        return Err(OAuthError::invalid_request(format!(
            "only {TOKEN_TYPE_ACCESS} can be issued"
        )));
    }
    if p.get("actor_token").is_some() {
        return Err(OAuthError::invalid_request(
            "actor_token (delegation) is not supported",
        ));
    }
    let identity = upstreams
        .exchange(subject_token)
        .await
        .map_err(|e| match e {
            ExchangeError::Unavailable => {
                OAuthError::unavailable("the upstream issuer's keys are unavailable right now")
            }
            // RFC 8693 §2.2.2: an unacceptable subject token is invalid_request.
            ExchangeError::Rejected(reason) => {
                audit.reason = Some("subject_token_rejected");
                OAuthError::invalid_request(format!("subject_token is not acceptable: {reason}"))
            }
        })?;
    // SECURITY: the exchanging client can never obtain more than it is
    // registered for, whatever the upstream identity maps to: neither scopes
    // nor roles beyond its own.
    let allowed: Vec<String> = identity
        .scopes
        .iter()
        .filter(|scope| client.scopes.contains(scope))
        .cloned()
        .collect();
    let roles: Vec<String> = identity
        .roles
        .iter()
        .filter(|role| client.roles.contains(role))
        .cloned()
        .collect();
    let grant = Grant {
        sub: identity.sub.clone(),
        client_id: client.client_id.clone(),
        scopes: choose_scopes(p.get("scope"), &allowed)?,
        audience: choose_audience(p, client.audiences.as_deref(), &s.config.default_audience)?,
        roles,
        tenant: identity.tenant.clone(),
    };
    audit.sub = Some(log_safe(&grant.sub));
    audit.tenant.clone_from(&grant.tenant);
    let minted = issue(s, &grant).await?;
    audit.jti = Some(minted.jti.clone());
    tracing::info!(
        target: LOG_TARGET,
        upstream = %identity.upstream,
        sub = %log_safe(&grant.sub),
        client_id = %client.client_id,
        scope = %grant.scopes.join(" "),
        "token exchange"
    );
    Ok(token_response(
        &minted,
        &grant.scopes,
        None,
        Some(TOKEN_TYPE_ACCESS),
    ))
}

/// Token exchange of one of our own tokens (a gateway trading its caller's
/// token for one meant for the service behind it). The new token keeps the
/// subject, roles and tenant; its scopes are the subject's, capped by the
/// client's; its audience is one the client's exchange rules allow for the
/// subject token's audience; it expires no later than the subject token.
async fn exchange_own_token(
    s: &AppState,
    p: &Params,
    client: &Client,
    subject_token: &str,
    audit: &mut Audit,
) -> Result<Response, OAuthError> {
    use serde_json::Value;
    check_token_type(p, "subject_token_type")?;
    if p.get("requested_token_type")
        .is_some_and(|t| t != TOKEN_TYPE_ACCESS)
    {
        return Err(OAuthError::invalid_request(format!(
            "only {TOKEN_TYPE_ACCESS} can be issued"
        )));
    }
    let not_acceptable =
        |why: &str| OAuthError::invalid_request(format!("subject_token is not acceptable: {why}"));
    let subject = live_access_token(s, subject_token)
        .await?
        .ok_or_else(|| not_acceptable("it is expired or revoked"))?;
    let strings = |v: Option<&Value>| -> Vec<String> {
        match v {
            Some(Value::String(one)) => vec![one.clone()],
            Some(Value::Array(many)) => many
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect(),
            _ => Vec::new(),
        }
    };
    let from = strings(subject.get("aud"));
    let audience = exchange_target(p, client, &from)?;
    let actor = actor_of(s, p, client).await?;
    let sub = subject
        .get("sub")
        .and_then(Value::as_str)
        .ok_or_else(|| not_acceptable("it has no subject"))?
        .to_owned();
    // SECURITY: never more than the subject had, nor more than the client
    // may pass on.
    let allowed: Vec<String> = subject
        .get("scope")
        .and_then(Value::as_str)
        .unwrap_or("")
        .split(' ')
        .filter(|scope| client.scopes.iter().any(|c| c == scope))
        .map(str::to_owned)
        .collect();
    let grant = Grant {
        sub,
        client_id: client.client_id.clone(),
        scopes: choose_scopes(p.get("scope"), &allowed)?,
        audience,
        roles: strings(subject.get("roles")),
        tenant: subject
            .get("tenant")
            .and_then(Value::as_str)
            .map(str::to_owned),
    };
    // SECURITY: the new token does not outlive the one it replaces.
    let left = subject.get("exp").and_then(Value::as_i64).unwrap_or(0) - now_ms() / 1000;
    let ttl = s.config.access_ttl.min(std::time::Duration::from_secs(
        u64::try_from(left).unwrap_or(0).max(1),
    ));
    audit.sub = Some(log_safe(&grant.sub));
    audit.tenant.clone_from(&grant.tenant);
    let minted = mint_delegated(&s.keys, &s.issuer, &grant, ttl, actor)?;
    audit.jti = Some(minted.jti.clone());
    tracing::info!(
        target: LOG_TARGET,
        sub = %log_safe(&grant.sub),
        client_id = %client.client_id,
        from = %log_safe(&from.join(" ")),
        aud = %grant.audience,
        scope = %grant.scopes.join(" "),
        "token exchange"
    );
    Ok(token_response(
        &minted,
        &grant.scopes,
        None,
        Some(TOKEN_TYPE_ACCESS),
    ))
}

/// The audience of the new token: the requested one (`audience` or
/// `resource`) if the client's exchange rules allow it for a subject token
/// meant for `from`, else the first the rules allow.
fn exchange_target(p: &Params, client: &Client, from: &[String]) -> Result<String, OAuthError> {
    // SECURITY: only the exchanges configured for this client: a token for
    // one audience never becomes a token for an audience the rules do not
    // name, whoever asks.
    let targets: Vec<&String> = from
        .iter()
        .filter_map(|aud| client.exchange.get(aud))
        .flatten()
        .collect();
    let Some(first) = targets.first() else {
        return Err(OAuthError::invalid_request(format!(
            "subject_token is not acceptable: client {:?} may not exchange tokens for audience {:?}",
            client.client_id,
            shorten(&from.join(" "))
        )));
    };
    let requested = match (p.get("audience"), p.get("resource")) {
        (Some(a), Some(r)) if a != r => {
            return Err(OAuthError::invalid_request(
                "audience and resource name different targets; give one",
            ));
        }
        (a, r) => a.or(r),
    };
    match requested {
        None => Ok((*first).clone()),
        Some(wanted) => targets
            .iter()
            .find(|t| **t == wanted)
            .map(|t| (*t).clone())
            .ok_or_else(|| {
                OAuthError::invalid_target(format!(
                    "audience {:?} is not available for this token to client {:?}",
                    shorten(wanted),
                    client.client_id
                ))
            }),
    }
}

/// Delegation: the `actor_token`, if given, must be a live token of the
/// authenticated client itself; the new token then names it in `act`.
async fn actor_of<'c>(
    s: &AppState,
    p: &Params,
    client: &'c Client,
) -> Result<Option<&'c str>, OAuthError> {
    let Some(actor_token) = p.get("actor_token") else {
        return Ok(None);
    };
    check_token_type(p, "actor_token_type")?;
    let actor = live_access_token(s, actor_token).await?;
    if actor
        .as_ref()
        .and_then(|a| a.get("sub"))
        .and_then(serde_json::Value::as_str)
        != Some(client.client_id.as_str())
    {
        return Err(OAuthError::invalid_request(
            "actor_token must be a live token of the authenticated client",
        ));
    }
    Ok(Some(client.client_id.as_str()))
}

fn check_token_type(p: &Params, name: &str) -> Result<(), OAuthError> {
    let kind = p.require(name)?;
    if kind == TOKEN_TYPE_ACCESS || kind == TOKEN_TYPE_JWT {
        Ok(())
    } else {
        Err(OAuthError::invalid_request(format!(
            "{name} must be {TOKEN_TYPE_ACCESS} or {TOKEN_TYPE_JWT}"
        )))
    }
}

/// Scopes to grant: all allowed ones when none are requested, else the
/// requested ones, each of which must be allowed.
fn choose_scopes(requested: Option<&str>, allowed: &[String]) -> Result<Vec<String>, OAuthError> {
    let Some(requested) = requested else {
        return Ok(allowed.to_vec());
    };
    let mut scopes: Vec<String> = Vec::new();
    for scope in requested.split(' ').filter(|s| !s.is_empty()) {
        if !allowed.iter().any(|a| a == scope) {
            return Err(OAuthError::invalid_scope(format!(
                "scope {:?} is not available here",
                shorten(scope)
            )));
        }
        if !scopes.iter().any(|s| s == scope) {
            scopes.push(scope.to_owned());
        }
    }
    Ok(scopes)
}

/// The audience: the requested `audience` or `resource` (RFC 8693 / 8707),
/// which must be one the principal may have, else the default one.
fn choose_audience(
    p: &Params,
    allowed: Option<&[String]>,
    default: &str,
) -> Result<String, OAuthError> {
    let default_list = [default.to_owned()];
    let allowed = allowed.unwrap_or(&default_list);
    let requested = match (p.get("audience"), p.get("resource")) {
        (Some(a), Some(r)) if a != r => {
            return Err(OAuthError::invalid_request(
                "audience and resource name different targets; give one",
            ));
        }
        (a, r) => a.or(r),
    };
    match requested {
        Some(wanted) => allowed
            .iter()
            .find(|a| *a == wanted)
            .cloned()
            .ok_or_else(|| {
                OAuthError::invalid_target(format!(
                    "audience {:?} is not available here",
                    shorten(wanted)
                ))
            }),
        None => allowed
            .iter()
            .find(|a| *a == default)
            .or_else(|| allowed.first())
            .cloned()
            .ok_or_else(|| OAuthError::invalid_target("no audience is available here")),
    }
}

/// A successful token response (RFC 6749 §5.1), never cached.
fn token_response(
    minted: &Minted,
    scopes: &[String],
    refresh_token: Option<&str>,
    issued_token_type: Option<&str>,
) -> Response {
    let mut body = json!({
        "access_token": minted.token,
        "token_type": "Bearer",
        "expires_in": minted.expires_in,
        "scope": scopes.join(" "),
    });
    if let Some(refresh) = refresh_token {
        body["refresh_token"] = json!(refresh);
    }
    if let Some(kind) = issued_token_type {
        body["issued_token_type"] = json!(kind);
    }
    no_store(Json(body).into_response())
}
