//! What operators read: [`Health`] (key sources, tenant templates,
//! introspection endpoints) and the lock-free counters behind [`Metrics`].
//! The user's documentation is on the types.

use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

use crate::error::Reason;

/// Health of one issuer's key source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct IssuerHealth {
    /// The issuer (`iss`).
    pub issuer: String,
    /// Whether tokens of this issuer can be verified now.
    pub ready: bool,
    /// Usable keys in the current set.
    pub key_count: usize,
    /// Their key ids, sorted.
    pub kids: Vec<String>,
    /// Seconds since the issuer last confirmed the current set.
    pub age_secs: Option<u64>,
    /// When the last fetch succeeded, in seconds since the epoch.
    pub last_success_unix: Option<u64>,
    /// The last fetch error, cleared by the next success.
    pub last_error: Option<String>,
    /// Seconds until the background refresher's next fetch (remote sources).
    pub next_refresh_secs: Option<u64>,
    /// Fetches failed in a row.
    pub consecutive_failures: u32,
    /// Whether keys are being served although the last refresh failed.
    pub stale: bool,
    /// `"remote"` or `"static"`.
    pub source: &'static str,
}

/// Health of every issuer of a verifier, from
/// [`Verifier::health`](crate::Verifier::health): for readiness probes
/// ([`ready`](Self::ready)) and dashboards (key-set age, last success, last
/// error per source). Serializes to JSON.
///
/// # Example
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), authlayer::BuildError> {
/// use authlayer::Verifier;
///
/// let jwks = r#"{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"k1",
///     "x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}"#;
/// let verifier = Verifier::builder()
///     .issuer("https://id.example")
///     .jwks_json(jwks)
///     .audience("urn:orders")
///     .build()
///     .await?;
///
/// let health = verifier.health();
/// assert!(health.ready);
/// assert_eq!(health.issuers[0].key_count, 1);
/// assert_eq!(verifier.metrics().fetches, 0);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Health {
    /// Whether every issuer in [`issuers`](Self::issuers) is ready: use it
    /// as a readiness probe. The per-tenant sources of a tenant template do
    /// not count (see [`tenants`](Self::tenants)).
    pub ready: bool,
    /// Per key source, in configuration order (issuers sharing a JWKS URL
    /// share one).
    pub issuers: Vec<IssuerHealth>,
    /// Per tenant template that discovers each tenant's keys, in
    /// configuration order. Its tenants do not decide
    /// [`ready`](Self::ready): any token may name an admitted tenant before
    /// its signature is checked, so a stranger must not be able to take a
    /// replica out of rotation.
    pub tenants: Vec<TenantsHealth>,
    /// The introspection endpoint of every issuer that has one, in
    /// configuration order. Its trouble does not clear `ready`: the JWTs of
    /// the same issuers still verify, and a probe that takes every replica
    /// out of rotation would not bring the endpoint back.
    pub introspection: Vec<IntrospectionHealth>,
}

/// Health of the per-tenant key sources of one tenant template
/// ([`Issuer::tenant_template`](crate::Issuer::tenant_template) without a
/// shared JWKS).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct TenantsHealth {
    /// The template, with its `{tenantid}` placeholder.
    pub template: String,
    /// Most tenants with loaded keys at once
    /// ([`Issuer::max_tenants`](crate::Issuer::max_tenants)); also the most
    /// first fetches running at once.
    pub max_tenants: usize,
    /// Each tenant whose keys loaded, by issuer, sorted.
    pub loaded: Vec<IssuerHealth>,
    /// Tenants whose first key fetch is running.
    pub pending: usize,
    /// Tenants whose first key fetch failed within the refetch cooldown:
    /// their tokens get 503 without a fetch until it has passed.
    pub failed: usize,
}

/// Health of one issuer's introspection endpoint (RFC 7662).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct IntrospectionHealth {
    /// The issuer (`iss`).
    pub issuer: String,
    /// The endpoint, once known (explicit, or found by discovery).
    pub endpoint: Option<String>,
    /// When the endpoint last gave a valid answer, in seconds since the epoch.
    pub last_success_unix: Option<u64>,
    /// The last failure (no token in it), cleared by the next success.
    pub last_error: Option<String>,
    /// Calls failed in a row.
    pub consecutive_failures: u32,
}

/// Counters since the verifier was built, from
/// [`Verifier::metrics`](crate::Verifier::metrics): read without locks or
/// cache housekeeping, so a scrape handler may call it freely. For
/// measurements through the `metrics` facade (feature `metrics`), see the
/// [crate documentation](crate#metrics).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), authlayer::BuildError> {
/// use authlayer::{Reason, Verifier};
///
/// # let jwks = r#"{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"k1",
/// #     "x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}"#;
/// let verifier = Verifier::builder()
///     .issuer("https://id.example")
///     .jwks_json(jwks)
///     .audience("urn:orders")
///     .build()
///     .await?;
/// assert!(verifier.verify("not-a-token").await.is_err());
/// let metrics = verifier.metrics();
/// assert_eq!(metrics.rejected(Reason::Malformed), 1);
/// assert_eq!(metrics.accepted, 0);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Metrics {
    /// Key fetches started (scheduled, first load and unknown-key refetches).
    pub fetches: u64,
    /// Fetches that failed.
    pub fetch_failures: u64,
    /// Conditional fetches answered with 304.
    pub not_modified: u64,
    /// Refetches triggered by a token naming an unknown key.
    pub unknown_key_refetches: u64,
    /// Unknown-key requests refused without a fetch because of the cooldown.
    pub cooldown_rejections: u64,
    /// Tokens accepted.
    pub accepted: u64,
    /// Acceptances answered from the verified-token cache.
    pub cache_hits: u64,
    /// Tokens in the verified-token cache now.
    pub cached_tokens: u64,
    /// Requests refused, by [`Reason::code`] (only reasons counted at
    /// least once); [`rejected`](Self::rejected) reads one.
    pub rejections: Vec<(&'static str, u64)>,
    /// Calls made to introspection endpoints.
    pub introspections: u64,
    /// Introspection calls that failed (down, slow, garbage): each request
    /// waiting on one got 503.
    pub introspection_failures: u64,
    /// Answers taken from the introspection cache instead of the endpoint.
    pub introspection_cache_hits: u64,
    /// Requests refused with 503 without a call because too many
    /// introspections were already pending (a flood of unknown tokens).
    pub introspection_shed: u64,
}

impl Metrics {
    /// Rejections counted for `reason`.
    pub fn rejected(&self, reason: Reason) -> u64 {
        self.rejections
            .iter()
            .find(|(label, _)| *label == reason.code())
            .map_or(0, |(_, n)| *n)
    }
}

/// One counter per [`Reason`] (arrays derive `Default` only up to 32).
#[derive(Debug)]
pub(crate) struct PerReason([AtomicU64; Reason::EVERY.len()]);

impl Default for PerReason {
    fn default() -> Self {
        Self(std::array::from_fn(|_| AtomicU64::new(0)))
    }
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) fetches: AtomicU64,
    pub(crate) fetch_failures: AtomicU64,
    pub(crate) not_modified: AtomicU64,
    pub(crate) kid_refetches: AtomicU64,
    pub(crate) cooldown_rejections: AtomicU64,
    pub(crate) accepted: AtomicU64,
    pub(crate) cache_hits: AtomicU64,
    pub(crate) rejected: PerReason,
    pub(crate) introspections: AtomicU64,
    pub(crate) introspection_failures: AtomicU64,
    pub(crate) introspection_cache_hits: AtomicU64,
    pub(crate) introspection_shed: AtomicU64,
}

impl Counters {
    pub(crate) fn reject(&self, reason: Reason) {
        if let Some(c) = self.rejected.0.get(reason.index()) {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub(crate) fn snapshot(&self, cached_tokens: u64) -> Metrics {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Metrics {
            fetches: get(&self.fetches),
            fetch_failures: get(&self.fetch_failures),
            not_modified: get(&self.not_modified),
            unknown_key_refetches: get(&self.kid_refetches),
            cooldown_rejections: get(&self.cooldown_rejections),
            accepted: get(&self.accepted),
            cache_hits: get(&self.cache_hits),
            cached_tokens,
            rejections: Reason::EVERY
                .iter()
                .zip(&self.rejected.0)
                .map(|(r, c)| (r.code(), get(c)))
                .filter(|(_, n)| *n > 0)
                .collect(),
            introspections: get(&self.introspections),
            introspection_failures: get(&self.introspection_failures),
            introspection_cache_hits: get(&self.introspection_cache_hits),
            introspection_shed: get(&self.introspection_shed),
        }
    }
}
