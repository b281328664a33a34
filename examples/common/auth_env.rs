//! The verifier of the example services, configured from the environment.
//!
//! - `AUTH_ISSUER` — issuer URL; keys via OIDC discovery (default `http://127.0.0.1:4000`)
//! - `AUTH_JWKS_URL` — fetch keys from this URL instead of discovering it
//! - `AUTH_AUDIENCE` — required audience (default `urn:orders`; the gateway's
//!   default depends on its mode)
//! - `AUTH_LAZY` — `1`: start even if the issuer is down (503 until keys arrive)
//! - `AUTH_ALLOW_HTTP` — `1`: allow plain-http key URLs on non-loopback hosts
//! - `AUTH_REFRESH_SECS`, `AUTH_COOLDOWN_SECS`, `AUTH_MAX_STALE_SECS`,
//!   `AUTH_FETCH_TIMEOUT_MS` — key lifecycle (defaults 300, 30, 86400, 5000)
//! - `AUTH_ROLES_CLAIM` — claim path of the roles, dots for nesting (default
//!   `roles`; e.g. `realm_access.roles` for Keycloak): an array, a
//!   space-separated string or an object whose keys are the roles
//! - `AUTH_TENANT_CLAIM` — claim path of the tenant, a string (default `tenant`)
//!
//! Introspection (RFC 7662), on when both credentials are set:
//! - `AUTH_INTROSPECTION_CLIENT_ID`, `AUTH_INTROSPECTION_CLIENT_SECRET` — the
//!   client that calls the issuer's introspection endpoint; opaque tokens are
//!   then accepted (without them they get 401 `invalid_token`)
//! - `AUTH_INTROSPECTION_URL` — the endpoint (default: the discovery
//!   document's `introspection_endpoint`)
//! - `AUTH_INTROSPECTION_AUTH` — `basic` (default) or `post`: how the client
//!   authenticates
//! - `AUTH_INTROSPECTION_TIMEOUT_MS`, `AUTH_INTROSPECTION_CACHE_SECS` —
//!   timeout and cache TTL of answers (defaults 2000, 30)
//! - `AUTH_ACTIVE_TTL` — seconds a revocation-sensitive route may rely on an
//!   earlier answer (default 5)
//!
//! The service's public URL and DPoP (`orders` only):
//! - `AUTH_PUBLIC_URL` — the URL clients call the service at: its RFC 9728
//!   resource identifier, and the origin DPoP proofs must name in `htu`
//!   (default `http://127.0.0.1:$PORT`, with the port actually bound)
//! - `AUTH_DPOP` — `allowed` (default: `Bearer` tokens without a key
//!   binding and `DPoP`-bound tokens with their proof), `required` (only
//!   `DPoP`) or `off` (no `DPoP` scheme; key-bound tokens are refused)
//! - `AUTH_DPOP_NONCE` — `1`: proofs must carry a server nonce
//! - `AUTH_DPOP_NONCE_SECRET` — base64 (standard or URL-safe) of the secret
//!   nonces are sealed with, at least 32 bytes; replicas behind one load
//!   balancer must share it. Default: random per process, so a nonce is
//!   good only at the replica that issued it

use std::time::Duration;

use authlayer::{
    BuildError, ClaimPath, ClaimSources, ClientAuth, Dpop, Introspection, ValueShape, Verifier,
    VerifierBuilder,
};

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn flag(name: &str) -> bool {
    env(name).is_some_and(|v| v == "1" || v.eq_ignore_ascii_case("true"))
}

fn duration(name: &str, default: Duration, unit: fn(u64) -> Duration) -> Duration {
    env(name).and_then(|v| v.parse().ok()).map_or(default, unit)
}

/// Where roles and tenant come from: `AUTH_ROLES_CLAIM`, `AUTH_TENANT_CLAIM`.
fn claim_sources() -> ClaimSources {
    let roles = env("AUTH_ROLES_CLAIM").unwrap_or_else(|| "roles".into());
    let tenant = env("AUTH_TENANT_CLAIM").unwrap_or_else(|| "tenant".into());
    ClaimSources::rfc9068()
        .roles([ClaimPath::new(&roles, ValueShape::Any)])
        .tenant([ClaimPath::new(&tenant, ValueShape::Text)])
}

/// Builds the verifier from the environment (see the module docs).
#[allow(dead_code)] // the gateway uses `verifier_from_env_for`
pub async fn verifier_from_env() -> Result<Verifier, BuildError> {
    verifier_from_env_for("urn:orders").await
}

/// [`verifier_from_env`] with another default for `AUTH_AUDIENCE`.
#[allow(dead_code)] // the order services use `verifier_from_env`
pub async fn verifier_from_env_for(default_audience: &str) -> Result<Verifier, BuildError> {
    builder_from_env_for(default_audience)?.build().await
}

/// The builder of [`verifier_from_env_for`], for settings of one service
/// on top.
pub fn builder_from_env_for(default_audience: &str) -> Result<VerifierBuilder, BuildError> {
    let secs = |name, default| duration(name, Duration::from_secs(default), Duration::from_secs);
    let mut builder = Verifier::builder()
        .issuer(env("AUTH_ISSUER").unwrap_or_else(|| "http://127.0.0.1:4000".into()))
        .audience(env("AUTH_AUDIENCE").unwrap_or_else(|| default_audience.into()))
        .refresh_interval(secs("AUTH_REFRESH_SECS", 300))
        .refetch_cooldown(secs("AUTH_COOLDOWN_SECS", 30))
        .max_stale(secs("AUTH_MAX_STALE_SECS", 86_400))
        .fetch_timeout(duration(
            "AUTH_FETCH_TIMEOUT_MS",
            Duration::from_secs(5),
            Duration::from_millis,
        ))
        .allow_insecure_http(flag("AUTH_ALLOW_HTTP"))
        .lazy(flag("AUTH_LAZY"))
        .claims(claim_sources());
    if let Some(url) = env("AUTH_JWKS_URL") {
        builder = builder.jwks_url(url);
    }
    if let Some(introspection) = introspection_from_env()? {
        builder = builder.introspection(introspection);
    }
    Ok(builder)
}

/// The URL clients call the service at: `AUTH_PUBLIC_URL`, or
/// `http://127.0.0.1:{port}` with the port the service bound.
#[allow(dead_code)] // orders only
pub fn public_url(port: u16) -> String {
    env("AUTH_PUBLIC_URL").unwrap_or_else(|| format!("http://127.0.0.1:{port}"))
}

/// The DPoP settings of `AUTH_DPOP`, `AUTH_DPOP_NONCE` and
/// `AUTH_DPOP_NONCE_SECRET`; `None` for `off`. The URL proofs name is the
/// verifier's resource metadata resource (`AUTH_PUBLIC_URL`).
#[allow(dead_code)] // orders only
pub fn dpop_from_env() -> Result<Option<Dpop>, BuildError> {
    let setting = |reason: String| BuildError::InvalidSetting {
        setting: "dpop",
        issuer: None,
        reason,
    };
    let mut dpop = match env("AUTH_DPOP").as_deref() {
        None | Some("allowed") => Dpop::allowed(),
        Some("required") => Dpop::required(),
        Some("off") => return Ok(None),
        Some(other) => {
            return Err(setting(format!(
                "AUTH_DPOP={other:?}: use allowed, required or off"
            )));
        }
    };
    if flag("AUTH_DPOP_NONCE") {
        let secret = if let Some(text) = env("AUTH_DPOP_NONCE_SECRET") {
            decode_secret(&text)
                .ok_or_else(|| setting("AUTH_DPOP_NONCE_SECRET is not base64".into()))?
        } else {
            let mut secret = vec![0u8; 32];
            aws_lc_rs::rand::fill(&mut secret)
                .map_err(|_| setting("no random source for the DPoP nonce secret".into()))?;
            secret
        };
        dpop = dpop.nonces(secret);
    }
    Ok(Some(dpop))
}

/// Standard or URL-safe base64, padded or not.
fn decode_secret(text: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
    let text = text.trim().trim_end_matches('=');
    STANDARD_NO_PAD
        .decode(text)
        .or_else(|_| URL_SAFE_NO_PAD.decode(text))
        .ok()
}

/// The introspection settings, when `AUTH_INTROSPECTION_CLIENT_ID` and
/// `AUTH_INTROSPECTION_CLIENT_SECRET` are both set.
fn introspection_from_env() -> Result<Option<Introspection>, BuildError> {
    let (Some(id), Some(secret)) = (
        env("AUTH_INTROSPECTION_CLIENT_ID"),
        env("AUTH_INTROSPECTION_CLIENT_SECRET"),
    ) else {
        return Ok(None);
    };
    let auth = match env("AUTH_INTROSPECTION_AUTH").as_deref() {
        None | Some("basic" | "client_secret_basic") => ClientAuth::Basic,
        Some("post" | "client_secret_post") => ClientAuth::Post,
        Some(other) => {
            return Err(BuildError::InvalidSetting {
                setting: "introspection.client_auth",
                issuer: None,
                reason: format!("AUTH_INTROSPECTION_AUTH={other:?}: use basic or post"),
            });
        }
    };
    let mut introspection = Introspection::new(id, secret)
        .client_auth(auth)
        .timeout(duration(
            "AUTH_INTROSPECTION_TIMEOUT_MS",
            Duration::from_secs(2),
            Duration::from_millis,
        ))
        .cache_ttl(duration(
            "AUTH_INTROSPECTION_CACHE_SECS",
            Duration::from_secs(30),
            Duration::from_secs,
        ));
    if let Some(url) = env("AUTH_INTROSPECTION_URL") {
        introspection = introspection.endpoint(url);
    }
    Ok(Some(introspection))
}

/// How old an introspection answer a revocation-sensitive route accepts:
/// `AUTH_ACTIVE_TTL` seconds (default 5).
#[allow(dead_code)] // orders_grpc has no such route
pub fn active_ttl() -> Duration {
    duration(
        "AUTH_ACTIVE_TTL",
        Duration::from_secs(5),
        Duration::from_secs,
    )
}
