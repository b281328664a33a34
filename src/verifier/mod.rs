//! [`Verifier`], the engine: token → [`Claims`], against the keys of one
//! or more trusted issuers. The user's documentation is on [`Verifier`]
//! and [`VerifierBuilder`].
//!
//! This file is the whole path from a token to its claims, top to bottom:
//! the verified-token cache (`check`), then the header, the
//! issuer, the key and the signature, then the dates, the audience and the
//! required claims (`verify_token`), and the bounded wait for a
//! refetch when the key is unknown. A token that is not a JWT, for an
//! issuer with introspection, takes one branch (`check_opaque`, then
//! `introspect`): the endpoint's answer goes through the same parse
//! (`Payload::parse`) and the same checks (`checked_claims`) as a JWT payload.
//! The builder, the issuer configuration and the cache live in the
//! submodules; the introspection client and its cache in
//! [`crate::introspect`].

use std::fmt;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::{Duration, SystemTime};

use serde::de::DeserializeOwned;
use tokio::sync::oneshot;

use crate::claims::{self, Claims, ParsePlan, Payload, Resolved};
use crate::error::{AuthError, Reason};
use crate::health::{Counters, Health, Metrics};
use crate::introspect::{self, Confirmed, Introspector, Lookup};
use crate::jwks::{AlgSet, KeySource, Trigger, VerifyKey};
use crate::jws::{self, KeyMiss, TypPolicy};
use crate::metadata::ResourceMetadataService;
use crate::telemetry;

mod builder;
mod cache;
mod issuer;
mod tenants;

pub use builder::{CacheSize, Stale, VerifierBuilder};
use cache::{Entry as CacheEntry, TokenCache};
pub use issuer::Issuer;
use issuer::{IssuerName, Match};

/// Verifies bearer tokens against the keys of the issuers it trusts.
///
/// Cheap to clone: clones share the key sets, the background refreshers and
/// the counters. The refreshers stop when the last clone is dropped.
///
/// Built with [`Verifier::builder`]: keys come from OIDC discovery
/// ([`issuer`](VerifierBuilder::issuer)), a JWKS URL or a pinned JWK Set;
/// the first fetch happens in [`build`](VerifierBuilder::build), which fails
/// loudly when the issuer is unreachable (unless
/// [`lazy`](VerifierBuilder::lazy)). Keys are then refreshed in the
/// background; a token whose key is known is verified without I/O or
/// locks, and an unknown `kid` triggers one shared, rate-limited refetch.
/// [`VerifyLayer`](crate::VerifyLayer) uses it for every request;
/// [`verify`](Self::verify) and [`verify_as`](Self::verify_as) serve code
/// outside a layer. [`health`](Self::health) and [`metrics`](Self::metrics)
/// report on it.
///
/// # Example
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use authlayer::{ErrorKind, Verifier};
///
/// // A pinned key set; in production use `.issuer(url)` (OIDC discovery)
/// // or `.jwks_url(url)`.
/// let jwks = r#"{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"k1",
///     "x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}"#;
/// let verifier = Verifier::builder()
///     .issuer("https://id.example")
///     .jwks_json(jwks)
///     .audience("urn:orders")
///     .build()
///     .await?;
///
/// let err = verifier.verify("not-a-token").await.unwrap_err();
/// assert_eq!(err.kind(), ErrorKind::InvalidToken);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Verifier {
    inner: Arc<Inner>,
}

struct Inner {
    issuers: Vec<TrustedIssuer>,
    /// The claims every issuer's sources read, kept while parsing.
    plan: ParsePlan,
    policy: Policy,
    counters: Arc<Counters>,
    realm: Arc<str>,
    all_algs: AlgSet,
    cache: Option<Arc<TokenCache>>,
    /// The issuer whose endpoint introspects tokens that are not JWTs.
    opaque: Option<usize>,
    /// The RFC 9728 document, when configured.
    metadata: Option<ResourceMetadataService>,
    /// The DPoP settings, when DPoP is on.
    dpop: Option<crate::dpop::Settings>,
    // Dropping these (with the last `Verifier`) stops the refreshers.
    _stop: Vec<oneshot::Sender<()>>,
}

struct TrustedIssuer {
    name: IssuerName,
    audiences: Option<Vec<String>>,
    /// Cognito: the audience is in `client_id`, not `aud`.
    audience_from_client_id: bool,
    claims: Resolved,
    algs: AlgSet,
    keys: Keys,
    introspector: Option<Arc<Introspector>>,
}

/// Where a trusted issuer's keys come from.
enum Keys {
    /// One key source (possibly shared with other issuers).
    Fixed(Arc<KeySource>),
    /// A tenant template discovering each admitted tenant's keys on demand.
    PerTenant(Box<tenants::TenantKeys>),
}

impl Keys {
    /// Every key source created so far.
    fn sources(&self) -> Vec<Arc<KeySource>> {
        match self {
            Keys::Fixed(keys) => vec![Arc::clone(keys)],
            Keys::PerTenant(tenants) => tenants.all(),
        }
    }
}

struct Policy {
    leeway: i64,
    max_token_len: usize,
    required: Vec<String>,
    typ: TypPolicy,
    wait: Duration,
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verifier")
            .field(
                "issuers",
                &self
                    .inner
                    .issuers
                    .iter()
                    .map(|i| i.name.as_str())
                    .collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

/// The result of the synchronous part of verification.
pub(crate) enum Check<E> {
    Done(Result<Claims<E>, AuthError>),
    /// The answer needs I/O: finish with [`Verifier::wait`].
    Wait(Wait),
}

/// What a token is waiting for.
pub(crate) enum Wait {
    /// The key is not in the current set: a refetch may bring it.
    Refetch(Arc<KeySource>),
    /// A token the issuer at `index` must introspect, accepting no cached
    /// answer older than `max_age`.
    Introspect {
        index: usize,
        max_age: Option<Duration>,
    },
}

impl Verifier {
    /// Starts configuring a verifier.
    pub fn builder() -> VerifierBuilder {
        VerifierBuilder::default()
    }

    /// Verifies `token` and returns its standard claims.
    ///
    /// A token whose key is in the current set is verified without waiting
    /// for anything. A token naming an unknown key may wait, at most the
    /// fetch timeout, for one shared refetch of its issuer's keys.
    pub async fn verify(&self, token: &str) -> Result<Claims, AuthError> {
        self.verify_as::<()>(token).await
    }

    /// Verifies `token` like [`verify`](Self::verify), and also parses the
    /// whole payload as your own claims type `E`
    /// ([`Claims::extra`]).
    ///
    /// Both take the token as a bearer token: one bound to a key
    /// (`cnf.jkt`, DPoP) is refused with
    /// [`BoundTokenAsBearer`](crate::Reason::BoundTokenAsBearer), since
    /// without its proof nothing shows the caller holds the key; such
    /// tokens go through [`VerifyLayer`](crate::VerifyLayer) with DPoP on.
    pub async fn verify_as<E>(&self, token: &str) -> Result<Claims<E>, AuthError>
    where
        E: DeserializeOwned + Send + Sync + 'static,
    {
        let claims = match self.check(token) {
            Check::Done(result) => result,
            Check::Wait(wait) => self.wait(wait, token).await,
        }?;
        // SECURITY (RFC 9449 §7.2): the downgrade, refused here as in the layer.
        if claims.standard().cnf_jkt.is_some() {
            return Err(self.count(AuthError::new(Reason::BoundTokenAsBearer)));
        }
        Ok(claims)
    }

    /// The synchronous part: everything but waiting for a refetch.
    pub(crate) fn check<E: DeserializeOwned + Send + Sync + 'static>(
        &self,
        token: &str,
    ) -> Check<E> {
        let inner = &*self.inner;
        // Routing: a token that is not a JWT goes to introspection when an
        // issuer is configured for it; otherwise it is malformed, as ever.
        if let Some(index) = inner.opaque
            && !introspect::is_compact_jws(token)
        {
            return self.check_opaque(index, token);
        }
        // One clock read serves a cache hit's date checks and, when
        // measuring is compiled in, the start of the timing (a wall-clock
        // step during the verification distorts that one sample only; a
        // step back reads as zero).
        let started = SystemTime::now();
        let took = |cached| {
            if telemetry::ON {
                telemetry::verify_seconds(cached, started.elapsed().unwrap_or_default());
            }
        };
        if let Some(cache) = &inner.cache
            && let Some(result) = cache.get(token, |entry| {
                self.check_cached(cache, token, entry, unix(started))
            })
        {
            took(true);
            return Check::Done(result);
        }
        let verified = self.verify_token(token);
        took(false);
        match verified {
            Ok((claims, keys, key)) => {
                inner.counters.accepted.fetch_add(1, Ordering::Relaxed);
                if let Some(cache) = &inner.cache {
                    cache.insert(token, &claims, &keys, key, unix_now(), inner.policy.leeway);
                }
                Check::Done(Ok(claims))
            }
            Err(Outcome::Refetch(source)) => Check::Wait(Wait::Refetch(source)),
            Err(Outcome::Reject(reason)) => Check::Done(Err(self.count(AuthError::new(reason)))),
        }
    }

    /// The answer for a token verified before; `None`: verify it again.
    fn check_cached<E: Send + Sync + 'static>(
        &self,
        cache: &TokenCache,
        token: &str,
        entry: &CacheEntry,
        now: i64,
    ) -> Option<Result<Claims<E>, AuthError>> {
        let inner = &*self.inner;
        // SECURITY (rotation, compromise): a cached acceptance holds only while
        // the very key that verified it is still in its issuer's set.
        if entry.key.strong_count() == 0 {
            cache.remove(token);
            return None;
        }
        if entry.keys.usable().is_err() {
            return Some(Err(self.count(AuthError::new(Reason::KeysUnavailable))));
        }
        let leeway = inner.policy.leeway;
        if entry.exp.saturating_add(leeway) <= now {
            cache.remove(token);
            return Some(Err(self.count(AuthError::new(Reason::Expired))));
        }
        if entry
            .nbf
            .is_some_and(|nbf| nbf.saturating_sub(leeway) > now)
        {
            return Some(Err(self.count(AuthError::new(Reason::NotYetValid))));
        }
        let claims = TokenCache::claims::<E>(entry)?;
        inner.counters.accepted.fetch_add(1, Ordering::Relaxed);
        inner.counters.cache_hits.fetch_add(1, Ordering::Relaxed);
        telemetry::token_cache_hit();
        Some(Ok(claims))
    }

    /// The slow part: waits (bounded) for what [`check`](Self::check) found
    /// missing.
    pub(crate) async fn wait<E: DeserializeOwned + Send + Sync + 'static>(
        &self,
        wait: Wait,
        token: &str,
    ) -> Result<Claims<E>, AuthError> {
        let source = match wait {
            Wait::Refetch(source) => source,
            Wait::Introspect { index, max_age } => {
                let result = self.introspect(index, token, max_age).await;
                // Without `max_age` this verified the token; with one it is
                // a rule's re-check of a token already counted.
                if result.is_ok() && max_age.is_none() {
                    self.inner.counters.accepted.fetch_add(1, Ordering::Relaxed);
                }
                return result;
            }
        };
        let Some(mut done) = source.start_fetch(Trigger::UnknownKey) else {
            // Inside the cooldown: fail fast, never queue behind the limiter.
            return Err(self.count(AuthError::new(Reason::UnknownKey)));
        };
        let _ = tokio::time::timeout(self.inner.policy.wait, done.wait_for(|d| *d)).await;
        match self.check(token) {
            Check::Done(result) => result,
            Check::Wait(_) => Err(self.count(AuthError::new(Reason::UnknownKey))),
        }
    }

    fn count(&self, err: AuthError) -> AuthError {
        self.inner.counters.reject(err.reason());
        err
    }

    /// Full verification: the claims, the index of the issuer and the key
    /// that verified them.
    fn verify_token<E: DeserializeOwned + 'static>(
        &self,
        token: &str,
    ) -> Result<Verified<E>, Outcome> {
        let inner = &*self.inner;
        let jws = jws::parse(
            token,
            inner.policy.max_token_len,
            inner.all_algs,
            inner.policy.typ,
        )?;
        let bytes = jws::payload(&jws)?;
        // One UTF-8 check of the whole payload; the parser then skips it per string.
        let text = std::str::from_utf8(&bytes).map_err(|_| Reason::Malformed)?;
        let payload = Payload::parse(text, &inner.plan).map_err(|e| parse_error(&e))?;

        // `iss` only chooses whose keys to try; it is trusted once the
        // signature verifies with that issuer's key. Exact match, no
        // normalization (CVE-2024-53861). A tenant template matches only
        // tenants it allows, before any key is looked up or fetched.
        let iss = payload.iss.as_deref().ok_or(Reason::MissingClaim)?;
        let (issuer, matched) = inner
            .issuers
            .iter()
            .find_map(|t| t.name.matches(iss).map(|m| (t, m)))
            .ok_or(Reason::UnknownIssuer)?;
        // Templated issuers only (rare): kept past the payload's move below.
        let tenant: Option<Box<str>> = match matched {
            Match::Exact => None,
            Match::Tenant(t) => Some(t.into()),
        };
        if !issuer.algs.contains(jws.alg) {
            return Err(Outcome::Reject(Reason::AlgorithmNotAllowed));
        }

        let keys = match &issuer.keys {
            Keys::Fixed(keys) => Arc::clone(keys),
            Keys::PerTenant(tenants) => {
                let keys = tenants.get(iss)?;
                if keys.never_loaded() {
                    // A tenant seen for the first time: wait (bounded) for
                    // its first fetch, as for an unknown kid.
                    return Err(Outcome::Refetch(keys));
                }
                keys
            }
        };
        let snapshot = keys.usable().map_err(|()| Reason::KeysUnavailable)?;
        let Some(snapshot) = snapshot.as_ref() else {
            return Err(Outcome::Reject(Reason::KeysUnavailable));
        };
        let key = match jws::verify_with(&snapshot.set, &jws) {
            Ok(key) => Arc::downgrade(key),
            Err(miss) => return Err(Self::key_miss(miss, &keys)),
        };

        let claims = self.checked_claims(payload, text, issuer, tenant.as_deref())?;
        Ok((claims, keys, key))
    }

    /// The claim checks every accepted token passes, JWT or introspected:
    /// the dates, the audience, a templated issuer's tenant and the required
    /// claims; then the standard view, and your own type `E` from `text`.
    fn checked_claims<E: DeserializeOwned + 'static>(
        &self,
        payload: Payload,
        text: &str,
        issuer: &TrustedIssuer,
        tenant: Option<&str>,
    ) -> Result<Claims<E>, Reason> {
        let now = unix_now();
        let leeway = self.inner.policy.leeway;
        let exp = payload.exp.ok_or(Reason::MissingClaim)?;
        if exp.saturating_add(leeway) <= now {
            return Err(Reason::Expired);
        }
        if payload
            .nbf
            .is_some_and(|nbf| nbf.saturating_sub(leeway) > now)
        {
            return Err(Reason::NotYetValid);
        }
        if let Some(wanted) = &issuer.audiences {
            // SECURITY (CVE-2020-26160): `aud` as string or array, each entry
            // compared exactly; an empty array matches nothing. Issuers that
            // put the audience in `client_id` (Cognito) are checked there,
            // and only when so configured.
            let ok = if issuer.audience_from_client_id {
                payload
                    .client_id()
                    .is_some_and(|c| wanted.iter().any(|w| w == c))
            } else {
                payload
                    .aud
                    .as_deref()
                    .is_some_and(|aud| aud.iter().any(|a| wanted.iter().any(|w| w == a)))
            };
            if !ok {
                return Err(Reason::WrongAudience);
            }
        }
        let standard = payload.into_standard(&issuer.claims);
        // SECURITY: a templated issuer names its tenant twice; both must agree.
        if tenant.is_some() && standard.tenant.as_deref() != tenant {
            return Err(Reason::IssuerTenantMismatch);
        }
        if self
            .inner
            .policy
            .required
            .iter()
            .any(|c| !claims::has(&standard, c))
        {
            return Err(Reason::MissingClaim);
        }
        let extra = claims::extra::<E>(text).map_err(|e| {
            claims::report_misfit::<E>(text);
            parse_error(&e)
        })?;
        Ok(Claims::new(standard, extra))
    }

    /// An opaque token: the cached answer, or a wait for the endpoint.
    fn check_opaque<E: DeserializeOwned + Send + Sync + 'static>(
        &self,
        index: usize,
        token: &str,
    ) -> Check<E> {
        if token.len() > self.inner.policy.max_token_len {
            return Check::Done(Err(self.count(AuthError::new(Reason::TooLong))));
        }
        if !introspect::is_b64token(token) {
            return Check::Done(Err(self.count(AuthError::new(Reason::Malformed))));
        }
        let Some(introspector) = self.introspector(index) else {
            return Check::Done(Err(self.count(AuthError::new(Reason::Malformed))));
        };
        match introspector.lookup(token, None) {
            Lookup::Active(confirmed) => {
                let result = self.accept_confirmed(index, &confirmed);
                if result.is_ok() {
                    self.inner.counters.accepted.fetch_add(1, Ordering::Relaxed);
                }
                Check::Done(result)
            }
            Lookup::Refused(reason) => Check::Done(Err(self.count(AuthError::new(reason)))),
            Lookup::Miss => Check::Wait(Wait::Introspect {
                index,
                max_age: None,
            }),
        }
    }

    fn introspector(&self, index: usize) -> Option<&Introspector> {
        self.inner.issuers.get(index)?.introspector.as_deref()
    }

    /// Asks issuer `index`'s endpoint about `token` (or joins the call that
    /// already does), accepting no cached answer older than `max_age`.
    async fn introspect<E: DeserializeOwned + Send + Sync + 'static>(
        &self,
        index: usize,
        token: &str,
        max_age: Option<Duration>,
    ) -> Result<Claims<E>, AuthError> {
        let Some(introspector) = self.introspector(index) else {
            return Err(self.count(AuthError::new(Reason::IntrospectionMissing)));
        };
        // The shared answer is judged on what every route checks alone (the
        // standard claims): a route's own claims type that does not fit the
        // answer must not become a cached refusal for the other routes.
        let validate = |body: Arc<[u8]>| {
            let claims = self.introspected_claims::<()>(index, &body)?;
            Ok(Confirmed::new(&claims, body))
        };
        match introspector.resolve(token, max_age, &validate).await {
            Ok(confirmed) => self.accept_confirmed(index, &confirmed),
            Err(reason) => Err(self.count(AuthError::new(reason))),
        }
    }

    /// The claims of an active introspection answer (its envelope already
    /// judged): the same parse and checks as a JWT payload.
    fn introspected_claims<E: DeserializeOwned + 'static>(
        &self,
        index: usize,
        body: &[u8],
    ) -> Result<Claims<E>, Reason> {
        let issuer = self.inner.issuers.get(index).ok_or(Reason::UnknownIssuer)?;
        let text = std::str::from_utf8(body).map_err(|_| Reason::Malformed)?;
        let mut payload = Payload::parse(text, &self.inner.plan).map_err(|e| parse_error(&e))?;
        // RFC 7662: `iss` is optional; when present it was checked to be this
        // issuer, so the claims name it either way.
        payload.iss.get_or_insert_with(|| issuer.name.as_str());
        self.checked_claims(payload, text, issuer, None)
    }

    /// A confirmed answer, cached or fresh: its dates are checked again
    /// (it may have been cached a while) and the claims typed as `E`.
    fn accept_confirmed<E: DeserializeOwned + Send + Sync + 'static>(
        &self,
        index: usize,
        confirmed: &Confirmed,
    ) -> Result<Claims<E>, AuthError> {
        let now = unix_now();
        let leeway = self.inner.policy.leeway;
        if confirmed.exp.saturating_add(leeway) <= now {
            return Err(self.count(AuthError::new(Reason::Expired)));
        }
        if confirmed
            .nbf
            .is_some_and(|nbf| nbf.saturating_sub(leeway) > now)
        {
            return Err(self.count(AuthError::new(Reason::NotYetValid)));
        }
        let claims = match confirmed.claims::<E>() {
            Some(claims) => claims,
            None => self
                .introspected_claims::<E>(index, &confirmed.body)
                .map_err(|reason| self.count(AuthError::new(reason)))?,
        };
        Ok(claims)
    }

    /// Whether `token`, issued by `iss`, is active now at its issuer's
    /// endpoint: a cached answer no older than `max_age`, or a wait for the
    /// endpoint. For [`RequireActive`](crate::RequireActive).
    pub(crate) fn check_active(
        &self,
        token: &str,
        iss: Option<&str>,
        max_age: Duration,
    ) -> Check<()> {
        let found = self.inner.issuers.iter().enumerate().find(|(_, i)| {
            iss.is_some_and(|iss| i.name.matches(iss).is_some()) && i.introspector.is_some()
        });
        let Some((index, issuer)) = found else {
            tracing::error!(
                "RequireActive: the token's issuer has no introspection configured (Issuer::introspection)"
            );
            return Check::Done(Err(self.count(AuthError::new(Reason::IntrospectionMissing))));
        };
        match issuer
            .introspector
            .as_ref()
            .map(|i| i.lookup(token, Some(max_age)))
        {
            Some(Lookup::Active(confirmed)) => {
                return Check::Done(self.accept_confirmed(index, &confirmed));
            }
            Some(Lookup::Refused(reason)) => {
                return Check::Done(Err(self.count(AuthError::new(reason))));
            }
            Some(Lookup::Miss) | None => {}
        }
        Check::Wait(Wait::Introspect {
            index,
            max_age: Some(max_age),
        })
    }

    fn key_miss(miss: KeyMiss, keys: &Arc<KeySource>) -> Outcome {
        let refetch = matches!(
            miss,
            KeyMiss::Unknown | KeyMiss::BadSignature { kidless: true }
        );
        if refetch && keys.is_remote() {
            return Outcome::Refetch(Arc::clone(keys));
        }
        Outcome::Reject(match miss {
            KeyMiss::Unknown | KeyMiss::Ambiguous => Reason::UnknownKey,
            KeyMiss::Mismatch => Reason::KeyAlgorithmMismatch,
            KeyMiss::BadSignature { .. } => Reason::BadSignature,
        })
    }

    /// The realm used in `WWW-Authenticate` challenges.
    pub fn realm(&self) -> &str {
        &self.inner.realm
    }

    pub(crate) fn realm_arc(&self) -> Arc<str> {
        Arc::clone(&self.inner.realm)
    }

    /// The RFC 9728 metadata document configured with
    /// [`VerifierBuilder::resource_metadata`], ready to serve; `None`
    /// without one.
    pub(crate) fn dpop(&self) -> Option<&crate::dpop::Settings> {
        self.inner.dpop.as_ref()
    }

    /// The RFC 9728 document, when configured.
    pub fn resource_metadata(&self) -> Option<&ResourceMetadataService> {
        self.inner.metadata.as_ref()
    }

    /// Health of every issuer's key source, for readiness probes.
    pub fn health(&self) -> Health {
        let mut fixed: Vec<&Arc<KeySource>> = Vec::new();
        let mut tenants = Vec::new();
        for issuer in &self.inner.issuers {
            match &issuer.keys {
                Keys::Fixed(keys) => {
                    if !fixed.iter().any(|k| Arc::ptr_eq(k, keys)) {
                        fixed.push(keys);
                    }
                }
                Keys::PerTenant(per_tenant) => tenants.push(per_tenant.health()),
            }
        }
        let issuers: Vec<_> = fixed.iter().map(|keys| keys.health()).collect();
        let introspection = self
            .inner
            .issuers
            .iter()
            .filter_map(|i| Some(i.introspector.as_ref()?.health()))
            .collect();
        Health {
            // SECURITY (availability): only the sources the configuration
            // names decide readiness; per-tenant ones come and go with
            // tokens nobody has verified yet.
            ready: issuers.iter().all(|i| i.ready),
            issuers,
            tenants,
            introspection,
        }
    }

    /// Counters since the verifier was built: lock-free reads, safe to call
    /// from a scrape endpoint. `cached_tokens` is as of the cache's last
    /// housekeeping, which runs on its own every few operations.
    pub fn metrics(&self) -> Metrics {
        let cached = self.inner.cache.as_ref().map_or(0, |c| c.len());
        self.inner.counters.snapshot(cached)
    }

    /// Sets the key-set gauges (`authlayer_jwks_age_seconds`,
    /// `authlayer_jwks_stale`, `authlayer_jwks_keys`,
    /// `authlayer_jwks_next_refresh_seconds`) of every issuer from
    /// [`health`](Self::health), and the token-cache gauge, now. The
    /// refresher sets them after every fetch; call this from a scrape
    /// handler so that age and next refresh are exact when scraped.
    #[cfg(feature = "metrics")]
    #[cfg_attr(docsrs, doc(cfg(feature = "metrics")))]
    pub fn record_key_metrics(&self) {
        for keys in self.sources() {
            keys.record_gauges();
        }
        if let Some(cache) = &self.inner.cache {
            telemetry::token_cache_entries(cache.len());
        }
    }

    /// Runs the token cache's pending housekeeping (evictions, expiries,
    /// purges) now, so that the next [`metrics`](Self::metrics) counts
    /// `cached_tokens` exactly. For tests and benchmarks.
    #[cfg(feature = "test-util")]
    #[cfg_attr(docsrs, doc(cfg(feature = "test-util")))]
    pub fn settle_cache(&self) {
        if let Some(cache) = &self.inner.cache {
            cache.settle();
        }
    }

    /// Counts a refusal decided outside the engine (no token, a missing
    /// scope), so that [`metrics`](Self::metrics) sees every refusal.
    pub(crate) fn count_rejection(&self, reason: Reason) {
        self.inner.counters.reject(reason);
    }

    /// Refetches every remote key set now (ignoring the cooldown) and waits
    /// for the fetches to finish (each is bounded by the fetch timeout).
    pub async fn refresh(&self) {
        for keys in self.sources() {
            if let Some(mut done) = keys.start_fetch(Trigger::Scheduled) {
                let _ = done.wait_for(|d| *d).await;
            }
        }
    }

    /// Every key source, each once (issuers may share one).
    fn sources(&self) -> Vec<Arc<KeySource>> {
        let mut all: Vec<Arc<KeySource>> = Vec::new();
        for keys in self.inner.issuers.iter().flat_map(|i| i.keys.sources()) {
            if !all.iter().any(|k| Arc::ptr_eq(k, &keys)) {
                all.push(keys);
            }
        }
        all
    }
}

/// Verified claims, the key source and the key that verified them.
type Verified<E> = (Claims<E>, Arc<KeySource>, Weak<VerifyKey>);

enum Outcome {
    Reject(Reason),
    Refetch(Arc<KeySource>),
}

impl From<Reason> for Outcome {
    fn from(reason: Reason) -> Self {
        Outcome::Reject(reason)
    }
}

fn parse_error(e: &serde_json::Error) -> Reason {
    if e.is_data() {
        Reason::InvalidClaim
    } else {
        Reason::Malformed
    }
}

fn unix_now() -> i64 {
    unix(SystemTime::now())
}

/// `time` in seconds since the epoch.
fn unix(time: SystemTime) -> i64 {
    time.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

#[cfg(all(test, feature = "test-util"))]
mod tests {
    use super::*;
    use crate::Algorithm;
    use crate::test_util::TestIssuer;

    /// A verifier of `issuer`'s tokens for audience `a` (also the cache's tests).
    pub(super) async fn verifier(issuer: &TestIssuer) -> Verifier {
        Verifier::builder()
            .issuer(issuer.issuer())
            .jwks_json(issuer.jwks_json())
            .audience("a")
            .build()
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn cached_token_is_rechecked_for_expiry_on_every_hit() {
        let issuer = TestIssuer::new("https://t.test");
        let v = verifier(&issuer).await;
        let token = issuer.token().audience("a").sign();
        v.verify(&token).await.unwrap();
        let cache = v.inner.cache.as_ref().unwrap();
        cache.set_exp(&token, unix_now() - 61);
        assert_eq!(
            v.verify(&token).await.unwrap_err().reason(),
            Reason::Expired
        );
        // Within the leeway it still counts as valid.
        v.verify(&issuer.token().audience("a").sign())
            .await
            .unwrap();
        let token2 = issuer.token().audience("a").claim("n", 2).sign();
        v.verify(&token2).await.unwrap();
        cache.set_exp(&token2, unix_now() - 30);
        assert!(v.verify(&token2).await.is_ok());
        assert_eq!(v.metrics().cache_hits, 1);
    }

    #[tokio::test]
    async fn build_selects_the_crypto_provider_preferring_aws_lc() {
        use jsonwebtoken::crypto::CryptoProvider;
        let issuer = TestIssuer::new("https://t.test");
        let v = verifier(&issuer).await;
        v.verify(&issuer.token().audience("a").sign())
            .await
            .unwrap();
        let chosen = CryptoProvider::try_get_default().unwrap();
        #[cfg(feature = "aws-lc-rs")]
        let expected = &jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER;
        #[cfg(all(feature = "rust-crypto", not(feature = "aws-lc-rs")))]
        let expected = &jsonwebtoken::crypto::rust_crypto::DEFAULT_PROVIDER;
        assert!(std::ptr::eq(chosen, expected));
    }

    #[tokio::test]
    async fn kidless_token_needs_exactly_one_fitting_key() {
        use crate::test_util::kids;
        let issuer = TestIssuer::new("https://t.test");
        let v = verifier(&issuer).await;
        let token = issuer
            .token()
            .audience("a")
            .key(kids::EC)
            .header_kid(None)
            .sign();
        assert!(v.verify(&token).await.is_ok());
        issuer.add_key("ec-2", Algorithm::ES256);
        let v = verifier(&issuer).await;
        let err = v.verify(&token).await.unwrap_err();
        assert_eq!(
            err.reason(),
            Reason::UnknownKey,
            "two P-256 keys: ambiguous"
        );
    }

    #[tokio::test]
    async fn unknown_claim_requirement_is_a_build_error() {
        let issuer = TestIssuer::new("https://t.test");
        let err = Verifier::builder()
            .issuer(issuer.issuer())
            .jwks_json(issuer.jwks_json())
            .audience("a")
            .require_claims(["sub", "colour"])
            .build()
            .await
            .unwrap_err();
        assert!(err.to_string().contains("\"colour\""), "{err}");
    }

    #[tokio::test]
    async fn audience_is_required_unless_waived() {
        let issuer = TestIssuer::new("https://t.test");
        let b = || {
            Verifier::builder()
                .issuer(issuer.issuer())
                .jwks_json(issuer.jwks_json())
        };
        assert!(
            b().build()
                .await
                .unwrap_err()
                .to_string()
                .contains("audience")
        );
        let v = b().allow_any_audience(true).build().await.unwrap();
        assert!(v.verify(&issuer.token().sign()).await.is_ok());
    }

    #[tokio::test]
    async fn required_claims_are_enforced() {
        let issuer = TestIssuer::new("https://t.test");
        let v = Verifier::builder()
            .issuer(issuer.issuer())
            .jwks_json(issuer.jwks_json())
            .audience("a")
            .require_claims(["sub"])
            .build()
            .await
            .unwrap();
        let err = v
            .verify(&issuer.token().audience("a").sign())
            .await
            .unwrap_err();
        assert_eq!(err.reason(), Reason::MissingClaim);
        assert!(
            v.verify(&issuer.token().audience("a").sub("x").sign())
                .await
                .is_ok()
        );
    }

    #[tokio::test]
    async fn bad_settings_are_refused() {
        let issuer = TestIssuer::new("https://t.test");
        let b = || {
            Verifier::builder()
                .issuer(issuer.issuer())
                .jwks_json(issuer.jwks_json())
                .audience("a")
        };
        for (builder, setting, needle) in [
            (
                b().leeway(Duration::from_secs(3600)),
                "leeway",
                "10 minutes",
            ),
            (b().max_token_bytes(10), "max_token_bytes", "64 bytes"),
            (
                b().fetch_timeout(Duration::ZERO),
                "fetch_timeout",
                "positive",
            ),
            (b().algorithms([]), "algorithms", "allow-list is empty"),
            (
                b().trust(Issuer::new(issuer.issuer()).allow_any_audience(true)),
                "trust",
                "configured twice",
            ),
        ] {
            let err = builder.build().await.unwrap_err();
            assert_eq!(err.setting(), Some(setting), "{err}");
            assert!(err.to_string().contains(needle), "{needle}: {err}");
        }
    }
    /// Skips virtual time forward by `d`, then lets the clock run again.
    async fn skip(d: Duration) {
        tokio::time::pause();
        tokio::time::advance(d).await;
        tokio::time::resume();
    }

    /// A verifier fetching `server`'s keys, with a 30 s refetch cooldown.
    async fn remote(server: &crate::test_util::TestServer) -> Verifier {
        Verifier::builder()
            .issuer(server.issuer_url())
            .jwks_url(server.jwks_url())
            .audience("a")
            .refetch_cooldown(Duration::from_secs(30))
            .build()
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn a_new_kid_is_accepted_on_first_sight_right_after_startup_and_a_scheduled_fetch() {
        let issuer = TestIssuer::new("x");
        let server = issuer.serve().await;
        let v = remote(&server).await;
        // Keycloak signs with a new key the moment it is active: right after
        // our start-up fetch.
        issuer.add_key("rsa-2", Algorithm::RS256);
        let token = issuer.token().audience("a").key("rsa-2").sign();
        assert!(v.verify(&token).await.is_ok(), "new kid after start-up");

        // Right after a scheduled refresh: the same (once the forced fetch
        // above is out of its cooldown window).
        skip(Duration::from_secs(31)).await;
        v.refresh().await;
        issuer.add_key("rsa-3", Algorithm::RS256);
        let token = issuer.token().audience("a").key("rsa-3").sign();
        assert!(v.verify(&token).await.is_ok(), "new kid after a refresh");
        let m = v.metrics();
        assert_eq!((m.fetches, m.unknown_key_refetches), (4, 2));
    }

    #[tokio::test]
    async fn forced_fetches_stay_at_one_per_cooldown_window() {
        let issuer = TestIssuer::new("x");
        let server = issuer.serve().await;
        let v = remote(&server).await;
        let stranger = TestIssuer::new(server.issuer_url());
        let random = |i: u32| {
            stranger
                .token()
                .audience("a")
                .header_kid(Some(&format!("kid-{i}")))
                .sign()
        };
        let before = server.requests();
        for i in 0..50 {
            assert_eq!(
                v.verify(&random(i)).await.unwrap_err().reason(),
                Reason::UnknownKey
            );
        }
        assert_eq!(
            server.requests(),
            before + 1,
            "one forced fetch in the first window"
        );
        // A scheduled refresh inside the window does not open a new one.
        v.refresh().await;
        assert!(v.verify(&random(99)).await.is_err());
        assert_eq!(server.requests(), before + 2);
        skip(Duration::from_secs(31)).await;
        for i in 100..150 {
            assert!(v.verify(&random(i)).await.is_err());
        }
        assert_eq!(
            server.requests(),
            before + 3,
            "one forced fetch in the next window"
        );
        let m = v.metrics();
        assert_eq!(m.unknown_key_refetches, 2);
        assert_eq!(m.cooldown_rejections, 99);
        assert_eq!(m.rejected(Reason::UnknownKey), 101);
    }

    #[tokio::test]
    async fn a_kid_bound_secret_never_verifies_a_kidless_token() {
        let secret = [9u8; 32];
        let issuer = TestIssuer::new("https://t.test");
        issuer.add_secret("hs", Algorithm::HS256, &secret);
        let v = Verifier::builder()
            .issuer(issuer.issuer())
            .jwks_json(r#"{"keys":[]}"#)
            .shared_secret_with_kid("hs", secret)
            .algorithms([Algorithm::HS256])
            .audience("a")
            .build()
            .await
            .unwrap();
        let named = issuer
            .token()
            .audience("a")
            .key("hs")
            .alg(Algorithm::HS256)
            .sign();
        assert!(v.verify(&named).await.is_ok());
        let kidless = issuer
            .token()
            .audience("a")
            .key("hs")
            .alg(Algorithm::HS256)
            .header_kid(None)
            .sign();
        assert_eq!(
            v.verify(&kidless).await.unwrap_err().reason(),
            Reason::UnknownKey
        );

        let unbound = Verifier::builder()
            .issuer(issuer.issuer())
            .jwks_json(r#"{"keys":[]}"#)
            .shared_secret(secret)
            .algorithms([Algorithm::HS256])
            .audience("a")
            .build()
            .await
            .unwrap();
        assert!(unbound.verify(&kidless).await.is_ok());
    }

    #[tokio::test]
    async fn trusted_issuers_alone_need_no_primary() {
        let a = TestIssuer::new("https://a.test");
        let b = TestIssuer::new("https://b.test");
        let v = Verifier::builder()
            .trust(
                Issuer::new(a.issuer())
                    .jwks_json(a.jwks_json())
                    .audience("x"),
            )
            .trust(
                Issuer::new(b.issuer())
                    .jwks_json(b.jwks_json())
                    .audience("y"),
            )
            .build()
            .await
            .unwrap();
        assert!(v.verify(&a.token().audience("x").sign()).await.is_ok());
        assert!(v.verify(&b.token().audience("y").sign()).await.is_ok());
        assert_eq!(
            v.verify(&b.token().audience("x").sign())
                .await
                .unwrap_err()
                .reason(),
            Reason::WrongAudience
        );
        assert_eq!(
            v.realm(),
            "https://a.test",
            "realm defaults to the first issuer"
        );
    }

    #[tokio::test]
    async fn off_and_forever_are_spelled_out() {
        let issuer = TestIssuer::new("x");
        let server = issuer.serve().await;
        let build = |stale: Stale| {
            Verifier::builder()
                .issuer(server.issuer_url())
                .jwks_url(server.jwks_url())
                .audience("a")
                .token_cache(CacheSize::Off)
                .max_stale(stale)
                .build()
        };
        let forever = build(Stale::Forever).await.unwrap();
        let day = build(Duration::from_secs(24 * 3600).into()).await.unwrap();
        assert!(forever.inner.cache.is_none(), "CacheSize::Off is off");
        let token = issuer.token().audience("a").sign();
        drop(server);
        skip(Duration::from_secs(48 * 3600)).await;
        forever.refresh().await;
        day.refresh().await;
        assert!(
            forever.verify(&token).await.is_ok(),
            "Stale::Forever keeps the keys"
        );
        assert_eq!(
            day.verify(&token).await.unwrap_err().reason(),
            Reason::KeysUnavailable,
            "a Duration bounds them"
        );
        assert_eq!(forever.metrics().cache_hits, 0);
    }

    #[tokio::test]
    async fn issuer_configuration_mistakes_are_explained() {
        let issuer = TestIssuer::new("https://t.test");
        for (builder, setting, needle) in [
            (Verifier::builder(), "issuer", "an issuer is required"),
            (
                Verifier::builder()
                    .jwks_json(issuer.jwks_json())
                    .audience("a"),
                "issuer",
                "without .issuer",
            ),
            (
                Verifier::builder()
                    .issuer(issuer.issuer())
                    .jwks_json(issuer.jwks_json())
                    .audience("a")
                    .token_cache(0),
                "token_cache",
                "turn it off with CacheSize::Off",
            ),
            (
                Verifier::builder().trust(Issuer::new("").allow_any_audience(true)),
                "issuer",
                "must not be empty",
            ),
        ] {
            let err = builder.build().await.unwrap_err();
            assert_eq!(err.setting(), Some(setting), "{err}");
            assert!(err.to_string().contains(needle), "{needle}: {err}");
        }
    }
}
