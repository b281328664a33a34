//! [`Verifier`]: token → [`Claims`], against the keys of one or more
//! trusted issuers.
//!
//! # Example
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use authlayer::{ErrorKind, Verifier};
//!
//! // A pinned key set; in production use `.issuer(url)` (OIDC discovery)
//! // or `.jwks_url(url)`.
//! let jwks = r#"{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"k1",
//!     "x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}"#;
//! let verifier = Verifier::builder()
//!     .issuer("https://id.example")
//!     .jwks_json(jwks)
//!     .audience("urn:orders")
//!     .build()
//!     .await?;
//!
//! let err = verifier.verify::<()>("not-a-token").await.unwrap_err();
//! assert_eq!(err.kind(), ErrorKind::InvalidToken);
//! # Ok(()) }
//! ```

use std::fmt;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::{Duration, SystemTime};

use jsonwebtoken::Algorithm;
use serde::de::DeserializeOwned;
use tokio::sync::oneshot;

use crate::cache::{Entry as CacheEntry, TokenCache};
use crate::claims::{Claims, WireClaims};
use crate::error::{AuthError, BuildError, Reason};
use crate::health::{Counters, Health, Metrics};
use crate::jwks::{
    AlgSet, FetchSettings, KeySet, KeySource, Lifecycle, Location, Origin, Remote, Shared, Trigger,
    VerifyKey, check_url, parse_url, secret_key,
};
use crate::jws::{self, KeyMiss};

/// Verifies bearer tokens against the keys of the issuers it trusts.
///
/// Cheap to clone: clones share the key sets, the background refreshers and
/// the counters. The refreshers stop when the last clone is dropped.
#[derive(Clone)]
pub struct Verifier {
    inner: Arc<Inner>,
}

struct Inner {
    issuers: Vec<TrustedIssuer>,
    policy: Policy,
    counters: Arc<Counters>,
    realm: Arc<str>,
    all_algs: AlgSet,
    cache: Option<Arc<TokenCache>>,
    // Dropping these (with the last `Verifier`) stops the refreshers.
    _stop: Vec<oneshot::Sender<()>>,
}

struct TrustedIssuer {
    iss: Box<str>,
    audiences: Option<Vec<String>>,
    algs: AlgSet,
    keys: Arc<KeySource>,
}

struct Policy {
    leeway: i64,
    max_token_len: usize,
    required: Vec<String>,
    typ: TypPolicy,
    wait: Duration,
}

/// What the `typ` header of a token must say.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum TypPolicy {
    /// Any `typ`, or none. Keycloak, Authentik and most providers send `JWT`.
    #[default]
    Any,
    /// RFC 9068 access tokens only: `typ` must be `at+jwt` (or
    /// `application/at+jwt`), case-insensitively. Refuses ID tokens and other
    /// JWTs signed by the same keys.
    AccessToken,
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
                    .map(|i| &*i.iss)
                    .collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

/// The result of the synchronous part of verification.
pub(crate) enum Check<E> {
    Done(Result<Claims<E>, AuthError>),
    /// The key is not in the current set: a refetch may bring it.
    Refetch(Arc<KeySource>),
}

impl Verifier {
    /// Starts configuring a verifier.
    pub fn builder() -> VerifierBuilder {
        VerifierBuilder::default()
    }

    /// Verifies `token` and returns its claims, with `E` as your own claims type.
    ///
    /// A token whose key is in the current set is verified without waiting
    /// for anything. A token naming an unknown key may wait, at most the
    /// fetch timeout, for one shared refetch of its issuer's keys.
    pub async fn verify<E>(&self, token: &str) -> Result<Claims<E>, AuthError>
    where
        E: DeserializeOwned + Send + Sync + 'static,
    {
        match self.check(token) {
            Check::Done(result) => result,
            Check::Refetch(source) => self.check_after_refetch(&source, token).await,
        }
    }

    /// The synchronous part: everything but waiting for a refetch.
    pub(crate) fn check<E: DeserializeOwned + Send + Sync + 'static>(
        &self,
        token: &str,
    ) -> Check<E> {
        let inner = &*self.inner;
        if let Some(cache) = &inner.cache
            && let Some(entry) = cache.get(token)
            && let Some(result) = self.check_cached(cache, token, &entry)
        {
            return Check::Done(result);
        }
        match self.verify_token(token) {
            Ok((claims, issuer, key)) => {
                inner.counters.accepted.fetch_add(1, Ordering::Relaxed);
                if let Some(cache) = &inner.cache {
                    cache.insert(token, &claims, issuer, key, unix_now(), inner.policy.leeway);
                }
                Check::Done(Ok(claims))
            }
            Err(Outcome::Refetch(source)) => Check::Refetch(source),
            Err(Outcome::Reject(reason)) => Check::Done(Err(self.count(AuthError::new(reason)))),
        }
    }

    /// The answer for a token verified before; `None`: verify it again.
    fn check_cached<E: Send + Sync + 'static>(
        &self,
        cache: &TokenCache,
        token: &str,
        entry: &CacheEntry,
    ) -> Option<Result<Claims<E>, AuthError>> {
        let inner = &*self.inner;
        // SAFETY (rotation, compromise): a cached acceptance holds only while
        // the very key that verified it is still in its issuer's set.
        if entry.key.strong_count() == 0 {
            cache.remove(token);
            return None;
        }
        let issuer = inner.issuers.get(entry.issuer)?;
        if issuer.keys.usable().is_err() {
            return Some(Err(self.count(AuthError::new(Reason::KeysUnavailable))));
        }
        let now = unix_now();
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
        Some(Ok(claims))
    }

    pub(crate) async fn check_after_refetch<E: DeserializeOwned + Send + Sync + 'static>(
        &self,
        source: &Arc<KeySource>,
        token: &str,
    ) -> Result<Claims<E>, AuthError> {
        let Some(mut done) = source.start_fetch(Trigger::UnknownKey) else {
            // Inside the cooldown: fail fast, never queue behind the limiter.
            return Err(self.count(AuthError::new(Reason::UnknownKey)));
        };
        let _ = tokio::time::timeout(self.inner.policy.wait, done.wait_for(|d| *d)).await;
        match self.check(token) {
            Check::Done(result) => result,
            Check::Refetch(_) => Err(self.count(AuthError::new(Reason::UnknownKey))),
        }
    }

    fn count(&self, err: AuthError) -> AuthError {
        self.inner.counters.reject(err.reason());
        err
    }

    /// Full verification: the claims, the index of the issuer and the key
    /// that verified them.
    fn verify_token<E: DeserializeOwned>(
        &self,
        token: &str,
    ) -> Result<(Claims<E>, usize, Weak<VerifyKey>), Outcome> {
        let inner = &*self.inner;
        let jws = jws::parse(
            token,
            inner.policy.max_token_len,
            inner.all_algs,
            inner.policy.typ,
        )?;
        let claims: WireClaims<E> = serde_json::from_slice(&jws::payload(&jws)?).map_err(|e| {
            if e.is_data() {
                Reason::InvalidClaim
            } else {
                Reason::Malformed
            }
        })?;

        // `iss` only chooses whose keys to try; it is trusted once the
        // signature verifies with that issuer's key. Exact match, no
        // normalization (CVE-2024-53861).
        let iss = claims.iss().ok_or(Reason::MissingClaim)?;
        let index = inner
            .issuers
            .iter()
            .position(|i| &*i.iss == iss)
            .ok_or(Reason::UnknownIssuer)?;
        let issuer = inner.issuers.get(index).ok_or(Reason::UnknownIssuer)?;
        if !issuer.algs.contains(jws.alg) {
            return Err(Outcome::Reject(Reason::AlgorithmNotAllowed));
        }

        let snapshot = issuer.keys.usable().map_err(|()| Reason::KeysUnavailable)?;
        let Some(snapshot) = snapshot.as_ref() else {
            return Err(Outcome::Reject(Reason::KeysUnavailable));
        };
        let key = match jws::verify_with(&snapshot.set, &jws) {
            Ok(key) => Arc::downgrade(key),
            Err(miss) => return Err(Self::key_miss(miss, issuer)),
        };

        let now = unix_now();
        let leeway = inner.policy.leeway;
        let exp = claims.exp().ok_or(Reason::MissingClaim)?;
        if exp.saturating_add(leeway) <= now {
            return Err(Outcome::Reject(Reason::Expired));
        }
        if claims
            .nbf()
            .is_some_and(|nbf| nbf.saturating_sub(leeway) > now)
        {
            return Err(Outcome::Reject(Reason::NotYetValid));
        }
        if let Some(wanted) = &issuer.audiences {
            // SAFETY (CVE-2020-26160): `aud` as string or array, each entry
            // compared exactly; an empty array matches nothing.
            let ok = claims
                .aud()
                .is_some_and(|aud| aud.iter().any(|a| wanted.iter().any(|w| w == a)));
            if !ok {
                return Err(Outcome::Reject(Reason::WrongAudience));
            }
        }
        if inner.policy.required.iter().any(|c| !claims.has(c)) {
            return Err(Outcome::Reject(Reason::MissingClaim));
        }
        Ok((claims.into_claims(), index, key))
    }

    fn key_miss(miss: KeyMiss, issuer: &TrustedIssuer) -> Outcome {
        let refetch = matches!(
            miss,
            KeyMiss::Unknown | KeyMiss::BadSignature { kidless: true }
        );
        if refetch && issuer.keys.is_remote() {
            return Outcome::Refetch(Arc::clone(&issuer.keys));
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

    /// Health of every issuer's key source, for readiness probes.
    pub fn health(&self) -> Health {
        let issuers: Vec<_> = self.inner.issuers.iter().map(|i| i.keys.health()).collect();
        Health {
            ready: issuers.iter().all(|i| i.ready),
            issuers,
        }
    }

    /// Counters since the verifier was built.
    pub fn metrics(&self) -> Metrics {
        let cached = self.inner.cache.as_ref().map_or(0, |c| c.len());
        self.inner.counters.snapshot(cached)
    }

    /// Refetches every remote key set now (ignoring the cooldown) and waits
    /// for the fetches to finish (each is bounded by the fetch timeout).
    pub async fn refresh(&self) {
        for issuer in &self.inner.issuers {
            if let Some(mut done) = issuer.keys.start_fetch(Trigger::Scheduled) {
                let _ = done.wait_for(|d| *d).await;
            }
        }
    }
}

enum Outcome {
    Reject(Reason),
    Refetch(Arc<KeySource>),
}

impl From<Reason> for Outcome {
    fn from(reason: Reason) -> Self {
        Outcome::Reject(reason)
    }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// One trusted issuer: who it is, where its keys are, what its tokens must
/// say. Add it to a builder with [`VerifierBuilder::trust`].
///
/// ```
/// use authlayer::Issuer;
/// use jsonwebtoken::Algorithm;
///
/// let admins = Issuer::new("https://keycloak.internal/realms/admin")
///     .audience("admin-api")
///     .algorithms([Algorithm::RS256]);
/// # let _ = admins;
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct Issuer {
    iss: String,
    source: SourceConfig,
    audiences: Vec<String>,
    any_audience: bool,
    algorithms: Option<AlgSet>,
    secret: Option<(Option<String>, Vec<u8>)>,
}

#[derive(Debug, Clone)]
enum SourceConfig {
    Discover,
    JwksUrl(String),
    Static(String),
}

impl Issuer {
    /// An issuer identified by `iss`, compared exactly with the token's `iss`.
    /// Its keys are found by OIDC discovery at
    /// `{iss}/.well-known/openid-configuration` unless a JWKS URL or a static
    /// key set is given.
    pub fn new(iss: impl Into<String>) -> Self {
        Self {
            iss: iss.into(),
            source: SourceConfig::Discover,
            audiences: Vec::new(),
            any_audience: false,
            algorithms: None,
            secret: None,
        }
    }

    /// Fetch keys from this JWKS URL instead of discovering it.
    pub fn jwks_url(mut self, url: impl Into<String>) -> Self {
        self.source = SourceConfig::JwksUrl(url.into());
        self
    }

    /// Use this static JWK Set (JSON) instead of fetching keys: pinned keys,
    /// tests. Never refreshed.
    pub fn jwks_json(mut self, json: impl Into<String>) -> Self {
        self.source = SourceConfig::Static(json.into());
        self
    }

    /// Use this static [`JwkSet`](jsonwebtoken::jwk::JwkSet).
    pub fn jwk_set(mut self, set: &jsonwebtoken::jwk::JwkSet) -> Self {
        self.source =
            SourceConfig::Static(serde_json::to_string(set).unwrap_or_else(|_| "{}".into()));
        self
    }

    /// Accept tokens whose `aud` contains `audience`. May be called several
    /// times; any one matching is enough. Required unless
    /// [`allow_any_audience`](Self::allow_any_audience).
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audiences.push(audience.into());
        self
    }

    /// Do not check `aud`. Only for issuers whose tokens are meant for this
    /// service alone; RFC 9068 requires the check. Defaults to off.
    pub fn allow_any_audience(mut self) -> Self {
        self.any_audience = true;
        self
    }

    /// The algorithms accepted from this issuer. Defaults to RS256/384/512,
    /// PS256/384/512, ES256/384 and EdDSA. HMAC algorithms only ever verify
    /// with a [`shared_secret`](Self::shared_secret).
    pub fn algorithms(mut self, algs: impl IntoIterator<Item = Algorithm>) -> Self {
        self.algorithms = Some(AlgSet::of(algs));
        self
    }

    /// A shared secret for HS256/384/512, which must also be listed in
    /// [`algorithms`](Self::algorithms); it verifies only the HMAC algorithms
    /// its length allows (RFC 7518 §3.2: 32 bytes for HS256, 48 for HS384, 64
    /// for HS512; shorter for all of them is a build error). With `kid`, only tokens
    /// naming that kid use it. Defaults to none: HMAC tokens are refused.
    pub fn shared_secret(mut self, kid: Option<&str>, secret: impl Into<Vec<u8>>) -> Self {
        self.secret = Some((kid.map(str::to_owned), secret.into()));
        self
    }
}

/// Configures and builds a [`Verifier`].
///
/// The issuer methods (`issuer`, `jwks_url`, `audience`, …) configure the
/// primary issuer; [`trust`](Self::trust) adds more.
#[derive(Debug)]
#[must_use]
pub struct VerifierBuilder {
    primary: Issuer,
    others: Vec<Issuer>,
    leeway: Duration,
    max_token_len: usize,
    required: Vec<String>,
    typ: TypPolicy,
    realm: String,
    fetch: FetchSettings,
    lifecycle: Lifecycle,
    lazy: bool,
    client: Option<reqwest::Client>,
    cache_bytes: Option<u64>,
}

impl Default for VerifierBuilder {
    fn default() -> Self {
        Self {
            primary: Issuer::new(""),
            others: Vec::new(),
            leeway: Duration::from_secs(60),
            max_token_len: 8 * 1024,
            required: Vec::new(),
            typ: TypPolicy::Any,
            realm: String::new(),
            fetch: FetchSettings {
                timeout: Duration::from_secs(5),
                max_body: 256 * 1024,
                max_keys: 64,
                allow_http: false,
                follow_redirects: false,
            },
            lifecycle: Lifecycle {
                refresh_interval: Duration::from_secs(300),
                min_refresh: Duration::from_secs(60),
                max_refresh: Duration::from_secs(3600),
                cooldown: Duration::from_secs(30),
                max_stale: Some(Duration::from_secs(24 * 3600)),
            },
            lazy: false,
            client: None,
            cache_bytes: Some(16 * 1024 * 1024),
        }
    }
}

impl VerifierBuilder {
    /// The primary issuer's identifier (`iss`). Unless [`jwks_url`](Self::jwks_url)
    /// or [`jwks_json`](Self::jwks_json) is set, its keys are found through OIDC
    /// discovery, and the discovery document must name exactly this issuer.
    /// Required.
    pub fn issuer(mut self, iss: impl Into<String>) -> Self {
        self.primary.iss = iss.into();
        self
    }

    /// Fetch the primary issuer's keys from this JWKS URL (no discovery).
    pub fn jwks_url(mut self, url: impl Into<String>) -> Self {
        self.primary = self.primary.jwks_url(url);
        self
    }

    /// Use a static JWK Set (JSON) for the primary issuer.
    pub fn jwks_json(mut self, json: impl Into<String>) -> Self {
        self.primary = self.primary.jwks_json(json);
        self
    }

    /// Use a static [`JwkSet`](jsonwebtoken::jwk::JwkSet) for the primary issuer.
    pub fn jwk_set(mut self, set: &jsonwebtoken::jwk::JwkSet) -> Self {
        self.primary = self.primary.jwk_set(set);
        self
    }

    /// An accepted audience of the primary issuer; see [`Issuer::audience`].
    /// Required unless [`allow_any_audience`](Self::allow_any_audience).
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.primary = self.primary.audience(audience);
        self
    }

    /// Skip the `aud` check for the primary issuer; see [`Issuer::allow_any_audience`].
    pub fn allow_any_audience(mut self) -> Self {
        self.primary = self.primary.allow_any_audience();
        self
    }

    /// The primary issuer's algorithm allow-list; see [`Issuer::algorithms`].
    pub fn algorithms(mut self, algs: impl IntoIterator<Item = Algorithm>) -> Self {
        self.primary = self.primary.algorithms(algs);
        self
    }

    /// A shared HMAC secret for the primary issuer; see [`Issuer::shared_secret`].
    pub fn shared_secret(mut self, kid: Option<&str>, secret: impl Into<Vec<u8>>) -> Self {
        self.primary = self.primary.shared_secret(kid, secret);
        self
    }

    /// Trust another issuer too. A token's `iss` selects the issuer whose keys,
    /// audiences and algorithms apply; keys of one issuer never verify another's
    /// tokens.
    pub fn trust(mut self, issuer: Issuer) -> Self {
        self.others.push(issuer);
        self
    }

    /// Clock skew tolerated on `exp` and `nbf`. Defaults to 60 s; at most 10 min.
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// Longest token accepted, in bytes; longer ones are refused before any
    /// decoding. Defaults to 8 KiB.
    pub fn max_token_len(mut self, bytes: usize) -> Self {
        self.max_token_len = bytes;
        self
    }

    /// Claims that must be present besides `exp` (always required), e.g.
    /// `["sub", "jti"]`. Known names: `iss sub aud exp nbf iat jti scope
    /// client_id tenant roles`. Defaults to none.
    pub fn require_claims<I, S>(mut self, claims: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.required.extend(claims.into_iter().map(Into::into));
        self
    }

    /// The `typ` header policy. Defaults to [`TypPolicy::Any`].
    pub fn typ(mut self, policy: TypPolicy) -> Self {
        self.typ = policy;
        self
    }

    /// The realm in `WWW-Authenticate` challenges. Defaults to the primary issuer.
    pub fn realm(mut self, realm: impl Into<String>) -> Self {
        self.realm = realm.into();
        self
    }

    /// Timeout of one fetch (connect, headers and body), and the longest a
    /// request waits for a refetch. Defaults to 5 s.
    pub fn fetch_timeout(mut self, timeout: Duration) -> Self {
        self.fetch.timeout = timeout;
        self
    }

    /// Largest JWKS or discovery body accepted. Defaults to 256 KiB.
    pub fn max_jwks_bytes(mut self, bytes: usize) -> Self {
        self.fetch.max_body = bytes;
        self
    }

    /// Most keys accepted in one JWK Set; a larger set is refused whole.
    /// Defaults to 64.
    pub fn max_jwks_keys(mut self, keys: usize) -> Self {
        self.fetch.max_keys = keys;
        self
    }

    /// Allow plain-http key and discovery URLs for non-loopback hosts.
    /// Defaults to `false`: plain http only for 127.0.0.0/8, `::1` and `localhost`.
    pub fn allow_insecure_http(mut self, allow: bool) -> Self {
        self.fetch.allow_http = allow;
        self
    }

    /// Follow up to 3 redirects (each target must pass the URL policy).
    /// Defaults to `false`.
    pub fn follow_redirects(mut self, follow: bool) -> Self {
        self.fetch.follow_redirects = follow;
        self
    }

    /// How often keys are refetched in the background when the server sends no
    /// `Cache-Control: max-age`; up to 10 % earlier (jitter). Defaults to 5 min.
    pub fn refresh_interval(mut self, interval: Duration) -> Self {
        self.lifecycle.refresh_interval = interval;
        self
    }

    /// Bounds for a server's `Cache-Control: max-age`. Defaults to 1 min … 1 h.
    pub fn max_age_bounds(mut self, min: Duration, max: Duration) -> Self {
        self.lifecycle.min_refresh = min;
        self.lifecycle.max_refresh = max;
        self
    }

    /// Least time between two fetches triggered by unknown keys, counted from
    /// the last fetch attempt. Defaults to 30 s.
    pub fn refetch_cooldown(mut self, cooldown: Duration) -> Self {
        self.lifecycle.cooldown = cooldown;
        self
    }

    /// How long the last good key set keeps being used while the issuer
    /// cannot be reached; past it, requests get 503. `None`: forever.
    /// Defaults to 24 h.
    pub fn max_stale(mut self, max_stale: Option<Duration>) -> Self {
        self.lifecycle.max_stale = max_stale;
        self
    }

    /// Start without keys instead of failing `build()` when the issuer is
    /// unreachable: requests get 503 with `Retry-After` until the first fetch
    /// succeeds, retried with backoff. Defaults to `false`.
    pub fn lazy(mut self, lazy: bool) -> Self {
        self.lazy = lazy;
        self
    }

    /// Remember verified tokens in at most `max_bytes` of memory (each entry
    /// is charged its token length plus 1,152 bytes, its measured size), so a
    /// token seen before is accepted without a second signature check;
    /// `None` turns the cache off. Entries never outlive `exp` (+ leeway),
    /// `exp`/`nbf` are re-checked on every hit, and an entry dies with the key
    /// that verified it. Defaults to 16 MiB (about 8,000 tokens of 900 bytes).
    pub fn token_cache(mut self, max_bytes: Option<u64>) -> Self {
        self.cache_bytes = max_bytes;
        self
    }

    /// Use this HTTP client for fetches (proxies, custom roots). Timeouts and
    /// size limits still apply; its redirect policy is its own.
    pub fn http_client(mut self, client: reqwest::Client) -> Self {
        self.client = Some(client);
        self
    }

    /// Checks the configuration, selects the crypto provider and, unless
    /// [`lazy`](Self::lazy), fetches every remote key set once.
    ///
    /// Must be called within a tokio runtime: the refreshers are spawned on it.
    pub async fn build(self) -> Result<Verifier, BuildError> {
        ensure_crypto_provider()?;
        self.validate()?;
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| BuildError::Config {
            reason: "build() must run inside a tokio runtime".into(),
        })?;
        let counters = Arc::new(Counters::default());
        let cache = self
            .cache_bytes
            .filter(|b| *b > 0)
            .map(|b| Arc::new(TokenCache::new(b)));
        let realm = if self.realm.is_empty() {
            self.primary.iss.clone()
        } else {
            self.realm.clone()
        };

        let mut client = self.client.clone();
        let mut issuers: Vec<TrustedIssuer> = Vec::new();
        for issuer in std::iter::once(&self.primary).chain(&self.others) {
            if issuers.iter().any(|i| *i.iss == *issuer.iss) {
                return Err(BuildError::Config {
                    reason: format!("issuer {:?} is configured twice", issuer.iss),
                });
            }
            let algs = issuer.algorithms.unwrap_or(AlgSet::ASYMMETRIC);
            let (initial, remote) = self.key_source(issuer, algs, &mut client)?;
            let keys = Arc::new(KeySource::new(
                issuer.iss.as_str().into(),
                algs,
                initial,
                remote,
                self.lifecycle.clone(),
                Shared {
                    counters: Arc::clone(&counters),
                    runtime: runtime.clone(),
                    cache: cache.clone(),
                },
            ));
            issuers.push(TrustedIssuer {
                iss: issuer.iss.clone().into_boxed_str(),
                audiences: (!issuer.any_audience).then(|| issuer.audiences.clone()),
                algs,
                keys,
            });
        }

        let mut stop = Vec::new();
        for issuer in issuers.iter().filter(|i| i.keys.is_remote()) {
            let first = if self.lazy {
                Duration::ZERO
            } else {
                issuer
                    .keys
                    .initial_fetch()
                    .await
                    .map_err(|cause| BuildError::Fetch {
                        url: issuer.keys.describe_url(),
                        cause,
                    })?;
                issuer.keys.next_delay()
            };
            let (tx, rx) = oneshot::channel();
            issuer.keys.spawn_refresher(rx, first);
            stop.push(tx);
        }

        let all_algs = issuers
            .iter()
            .fold(AlgSet::default(), |acc, i| acc.or(i.algs));
        Ok(Verifier {
            inner: Arc::new(Inner {
                issuers,
                policy: Policy {
                    leeway: i64::try_from(self.leeway.as_secs()).unwrap_or(600),
                    max_token_len: self.max_token_len,
                    required: self.required,
                    typ: self.typ,
                    wait: self.fetch.timeout,
                },
                counters,
                realm: realm.into(),
                all_algs,
                cache,
                _stop: stop,
            }),
        })
    }

    /// Settings that cannot work are refused before anything is fetched.
    fn validate(&self) -> Result<(), BuildError> {
        const KNOWN: [&str; 11] = [
            "iss",
            "sub",
            "aud",
            "exp",
            "nbf",
            "iat",
            "jti",
            "scope",
            "client_id",
            "tenant",
            "roles",
        ];
        let fail = |reason: String| Err(BuildError::Config { reason });
        let lc = &self.lifecycle;
        if self.leeway > Duration::from_secs(600) {
            return fail("leeway must be at most 10 minutes".into());
        }
        if !(64..=1024 * 1024).contains(&self.max_token_len) {
            return fail("max_token_len must be between 64 bytes and 1 MiB".into());
        }
        if self.fetch.timeout.is_zero() {
            return fail("fetch_timeout must be positive".into());
        }
        if self.fetch.max_keys == 0 || self.fetch.max_body == 0 {
            return fail("max_jwks_keys and max_jwks_bytes must be positive".into());
        }
        if lc.refresh_interval < Duration::from_secs(1) || lc.min_refresh > lc.max_refresh {
            return fail(
                "refresh_interval must be at least 1 s and max_age_bounds min <= max".into(),
            );
        }
        if let Some(c) = self.required.iter().find(|c| !KNOWN.contains(&c.as_str())) {
            return fail(format!(
                "require_claims: unknown claim {c:?} (known: {})",
                KNOWN.join(" ")
            ));
        }
        for issuer in std::iter::once(&self.primary).chain(&self.others) {
            if issuer.iss.is_empty() {
                return fail("an issuer is required: call .issuer(\"https://…\")".into());
            }
            if issuer.audiences.is_empty() && !issuer.any_audience {
                return fail(format!(
                    "issuer {:?}: set .audience(…) (or explicitly allow_any_audience())",
                    issuer.iss
                ));
            }
            if issuer.algorithms.is_some_and(AlgSet::is_empty) {
                return fail(format!(
                    "issuer {:?}: the algorithm allow-list is empty",
                    issuer.iss
                ));
            }
        }
        Ok(())
    }

    /// The initial static key set, or the remote location to fetch from.
    fn key_source(
        &self,
        issuer: &Issuer,
        algs: AlgSet,
        client: &mut Option<reqwest::Client>,
    ) -> Result<(Option<KeySet>, Option<Remote>), BuildError> {
        let url_error = |url: &str, reason: String| BuildError::Url {
            url: url.to_owned(),
            reason,
        };
        let location = match &issuer.source {
            SourceConfig::Static(json) => {
                let parsed =
                    KeySet::from_json(json.as_bytes(), algs, self.fetch.max_keys, Origin::Static);
                let mut set = match parsed {
                    Ok(set) => set,
                    Err(crate::jwks::FetchError::NoUsableKeys) if issuer.secret.is_some() => {
                        KeySet::default()
                    }
                    Err(cause) => {
                        return Err(BuildError::Fetch {
                            url: "static JWKS".into(),
                            cause,
                        });
                    }
                };
                add_secret(&mut set, issuer, algs)?;
                return Ok((Some(set), None));
            }
            SourceConfig::JwksUrl(url) => Location::Jwks(
                parse_url(url, self.fetch.allow_http).map_err(|reason| url_error(url, reason))?,
            ),
            SourceConfig::Discover => {
                let url = reqwest::Url::parse(&issuer.iss).map_err(|e| {
                    url_error(
                        &issuer.iss,
                        format!("issuer is not a URL, so discovery is impossible: {e}"),
                    )
                })?;
                check_url(&url, self.fetch.allow_http)
                    .map_err(|reason| url_error(&issuer.iss, reason))?;
                Location::Discover {
                    issuer: issuer.iss.clone(),
                }
            }
        };
        if issuer.secret.is_some() {
            return Err(BuildError::Config {
                reason: "a shared secret goes with a static key set, not a remote one".into(),
            });
        }
        let client = if let Some(c) = client {
            c.clone()
        } else {
            let c = self.fetch.client().map_err(|cause| BuildError::Fetch {
                url: issuer.iss.clone(),
                cause,
            })?;
            *client = Some(c.clone());
            c
        };
        Ok((
            None,
            Some(Remote {
                client,
                settings: self.fetch.clone(),
                location,
            }),
        ))
    }
}

fn add_secret(set: &mut KeySet, issuer: &Issuer, algs: AlgSet) -> Result<(), BuildError> {
    if let Some((kid, secret)) = &issuer.secret {
        let key = secret_key(kid.clone(), secret, algs).map_err(|reason| BuildError::Config {
            reason: format!("issuer {:?}: {reason}", issuer.iss),
        })?;
        set.insert(key);
    }
    if set.len() == 0 {
        return Err(BuildError::Fetch {
            url: "static JWKS".into(),
            cause: crate::jwks::FetchError::NoUsableKeys,
        });
    }
    Ok(())
}

/// jsonwebtoken 12 has no default provider when both of its backends are
/// compiled in (as `--all-features` does) and would panic on the first
/// verification; choose one here, at build time, preferring aws-lc.
pub(crate) fn ensure_crypto_provider() -> Result<(), BuildError> {
    use jsonwebtoken::crypto::CryptoProvider;
    if CryptoProvider::try_get_default().is_some() {
        return Ok(());
    }
    #[cfg(feature = "aws-lc-rs")]
    let _ = jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER.install_default();
    #[cfg(all(feature = "rust-crypto", not(feature = "aws-lc-rs")))]
    let _ = jsonwebtoken::crypto::rust_crypto::DEFAULT_PROVIDER.install_default();
    CryptoProvider::try_get_default()
        .map(|_| ())
        .ok_or(BuildError::NoCryptoProvider)
}

#[cfg(all(test, feature = "test-util"))]
mod tests {
    use super::*;
    use crate::test_util::TestIssuer;

    async fn verifier(issuer: &TestIssuer) -> Verifier {
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
        v.verify::<()>(&token).await.unwrap();
        let cache = v.inner.cache.as_ref().unwrap();
        cache.set_exp(&token, unix_now() - 61);
        assert_eq!(
            v.verify::<()>(&token).await.unwrap_err().reason(),
            Reason::Expired
        );
        // Within the leeway it still counts as valid.
        v.verify::<()>(&issuer.token().audience("a").sign())
            .await
            .unwrap();
        let token2 = issuer.token().audience("a").claim("n", 2).sign();
        v.verify::<()>(&token2).await.unwrap();
        cache.set_exp(&token2, unix_now() - 30);
        assert!(v.verify::<()>(&token2).await.is_ok());
        assert_eq!(v.metrics().cache_hits, 1);
    }

    #[tokio::test]
    async fn build_selects_the_crypto_provider_preferring_aws_lc() {
        use jsonwebtoken::crypto::CryptoProvider;
        let issuer = TestIssuer::new("https://t.test");
        let v = verifier(&issuer).await;
        v.verify::<()>(&issuer.token().audience("a").sign())
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
        assert!(v.verify::<()>(&token).await.is_ok());
        issuer.add_key("ec-2", Algorithm::ES256);
        let v = verifier(&issuer).await;
        let err = v.verify::<()>(&token).await.unwrap_err();
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
        let v = b().allow_any_audience().build().await.unwrap();
        assert!(v.verify::<()>(&issuer.token().sign()).await.is_ok());
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
            .verify::<()>(&issuer.token().audience("a").sign())
            .await
            .unwrap_err();
        assert_eq!(err.reason(), Reason::MissingClaim);
        assert!(
            v.verify::<()>(&issuer.token().audience("a").sub("x").sign())
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
        for (builder, needle) in [
            (b().leeway(Duration::from_secs(3600)), "leeway"),
            (b().max_token_len(10), "max_token_len"),
            (b().fetch_timeout(Duration::ZERO), "fetch_timeout"),
            (b().algorithms([]), "allow-list is empty"),
            (
                b().trust(Issuer::new(issuer.issuer()).allow_any_audience()),
                "configured twice",
            ),
        ] {
            let err = builder.build().await.unwrap_err();
            assert!(err.to_string().contains(needle), "{needle}: {err}");
        }
    }
}
