//! The verifier of the example services, configured from the environment.
//!
//! - `AUTH_ISSUER` — issuer URL; keys via OIDC discovery (default `http://127.0.0.1:4000`)
//! - `AUTH_JWKS_URL` — fetch keys from this URL instead of discovering it
//! - `AUTH_AUDIENCE` — required audience (default `urn:orders`)
//! - `AUTH_LAZY` — `1`: start even if the issuer is down (503 until keys arrive)
//! - `AUTH_ALLOW_HTTP` — `1`: allow plain-http key URLs on non-loopback hosts
//! - `AUTH_REFRESH_SECS`, `AUTH_COOLDOWN_SECS`, `AUTH_MAX_STALE_SECS`,
//!   `AUTH_FETCH_TIMEOUT_MS` — key lifecycle (defaults 300, 30, 86400, 5000)
//! - `AUTH_ROLES_CLAIM` — claim path of the roles, dots for nesting (default
//!   `roles`; e.g. `realm_access.roles` for Keycloak): an array, a
//!   space-separated string or an object whose keys are the roles
//! - `AUTH_TENANT_CLAIM` — claim path of the tenant, a string (default `tenant`)

use std::time::Duration;

use authlayer::{BuildError, ClaimPath, ClaimSources, ValueShape, Verifier};

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
pub async fn verifier_from_env() -> Result<Verifier, BuildError> {
    let secs = |name, default| duration(name, Duration::from_secs(default), Duration::from_secs);
    let mut builder = Verifier::builder()
        .issuer(env("AUTH_ISSUER").unwrap_or_else(|| "http://127.0.0.1:4000".into()))
        .audience(env("AUTH_AUDIENCE").unwrap_or_else(|| "urn:orders".into()))
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
    builder.build().await
}
