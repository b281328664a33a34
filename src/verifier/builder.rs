//! [`VerifierBuilder`]: every setting of a [`Verifier`], checked before
//! anything is fetched.

use std::sync::Arc;
use std::time::Duration;

use crate::algorithm::Algorithm;
use tokio::sync::oneshot;

use super::cache::TokenCache;
use super::issuer::{
    Issuer, IssuerName, IssuerSettings, Match, SourceConfig, TENANT_PLACEHOLDER, Tenants,
};
use super::tenants::{DEFAULT_MAX_TENANTS, Factory, TenantKeys};
use super::{Inner, Keys, Policy, TrustedIssuer, Verifier};
use crate::claims::{ClaimSources, ParsePlan};
use crate::dpop::Dpop;
use crate::error::{BuildError, FetchError};
use crate::health::Counters;
use crate::introspect::{Introspection, Introspector};
use crate::jwks::{
    AlgSet, FetchSettings, KeySet, KeySource, Lifecycle, Location, Origin, Remote, Shared,
    check_url, parse_url, secret_key,
};
use crate::jws::TypPolicy;
use crate::metadata::ResourceMetadata;

/// How long the last good key set may be used while its issuer cannot be
/// reached. `Duration` converts into [`Stale::After`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Stale {
    /// Stop trusting the keys this long after the issuer last confirmed
    /// them: requests then get 503.
    After(Duration),
    /// Keep using the last good keys however old they get. Keys the issuer
    /// revoked meanwhile stay trusted: choose it knowingly.
    Forever,
}

impl From<Duration> for Stale {
    fn from(d: Duration) -> Self {
        Stale::After(d)
    }
}

/// How much memory a cache may take. A number of bytes (`u64`) converts
/// into [`CacheSize::Bytes`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CacheSize {
    /// At most this many bytes. Zero holds nothing and is a build error:
    /// turn the cache off with [`CacheSize::Off`].
    Bytes(u64),
    /// No cache: every token is checked afresh.
    Off,
}

impl From<u64> for CacheSize {
    fn from(bytes: u64) -> Self {
        CacheSize::Bytes(bytes)
    }
}

impl CacheSize {
    /// The byte budget, `None` when off; zero is refused with `setting` named.
    pub(crate) fn budget(self, setting: &'static str) -> Result<Option<u64>, BuildError> {
        match self {
            CacheSize::Bytes(0) => Err(BuildError::setting_error(
                setting,
                "a cache of 0 bytes holds nothing: turn it off with CacheSize::Off",
            )),
            CacheSize::Bytes(bytes) => Ok(Some(bytes)),
            CacheSize::Off => Ok(None),
        }
    }
}

/// Configures and builds a [`Verifier`] (example there); each setting
/// names its default.
///
/// The issuer methods (`issuer`, `jwks_url`, `audience`, …) configure the
/// primary issuer; [`trust`](Self::trust) adds more, and may be used alone.
///
/// # One grammar for every setting
///
/// The same rules hold here, on [`Issuer`], on [`Introspection`], on
/// [`VerifyLayer`](crate::VerifyLayer) and on the outbound builders
/// ([`ClientCredentialsBuilder`](crate::outbound::ClientCredentialsBuilder),
/// [`TokenExchangeBuilder`](crate::outbound::TokenExchangeBuilder)):
///
/// - A setter takes the value, never an `Option`: a switch takes a `bool`
///   ([`allow_any_audience(true)`](Self::allow_any_audience)); "off" and
///   "without limit" are spelled out where they mean something
///   ([`CacheSize::Off`], [`Stale::Forever`]).
/// - Zero means "none" for a tolerance, an age or a wait
///   ([`leeway`](Self::leeway), [`Introspection::cache_ttl`],
///   [`refetch_cooldown`](Self::refetch_cooldown)). For a timeout, a size,
///   a count or an interval, where nothing could work, zero is refused.
/// - `build()` checks every value before anything is fetched; a value that
///   cannot work is a [`BuildError::InvalidSetting`] (or
///   [`BuildError::Url`]) naming the setting as its setter is spelled. No
///   value is silently clamped.
#[derive(Debug)]
#[must_use]
pub struct VerifierBuilder {
    /// The primary issuer's `iss`, once `.issuer(…)` named it.
    primary_iss: Option<String>,
    /// What the primary-issuer shortcuts set, in whatever order they came.
    primary: IssuerSettings,
    trusted: Vec<Issuer>,
    leeway: Duration,
    max_token_len: usize,
    required: Vec<String>,
    typ: TypPolicy,
    realm: Option<String>,
    fetch: FetchSettings,
    lifecycle: Lifecycle,
    lazy: bool,
    client: Option<reqwest::Client>,
    cache: CacheSize,
    metadata: Option<ResourceMetadata>,
    dpop: Option<Dpop>,
}

impl Default for VerifierBuilder {
    fn default() -> Self {
        Self {
            primary_iss: None,
            primary: IssuerSettings::default(),
            trusted: Vec::new(),
            leeway: Duration::from_secs(60),
            max_token_len: 8 * 1024,
            required: Vec::new(),
            typ: TypPolicy::Any,
            realm: None,
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
            cache: CacheSize::Bytes(16 * 1024 * 1024),
            metadata: None,
            dpop: None,
        }
    }
}

impl VerifierBuilder {
    /// The primary issuer's identifier (`iss`). Unless [`jwks_url`](Self::jwks_url)
    /// or [`jwks_json`](Self::jwks_json) is set, its keys are found through OIDC
    /// discovery, and the discovery document must name exactly this issuer.
    /// Required.
    pub fn issuer(mut self, iss: impl Into<String>) -> Self {
        self.primary_iss = Some(iss.into());
        self
    }

    /// Applies an [`Issuer`] setter to the primary issuer's settings.
    fn primary(mut self, set: impl FnOnce(Issuer) -> Issuer) -> Self {
        let settings = std::mem::take(&mut self.primary);
        self.primary = set(Issuer {
            iss: String::new(),
            settings,
            tenants: None,
            max_tenants: None,
        })
        .settings;
        self
    }

    /// Fetch the primary issuer's keys from this JWKS URL (no discovery);
    /// see [`Issuer::jwks_url`]. Defaults to OIDC discovery.
    pub fn jwks_url(self, url: impl Into<String>) -> Self {
        self.primary(|i| i.jwks_url(url))
    }

    /// Use a static JWK Set (JSON) for the primary issuer; see
    /// [`Issuer::jwks_json`]. Defaults to OIDC discovery.
    pub fn jwks_json(self, json: impl Into<String>) -> Self {
        self.primary(|i| i.jwks_json(json))
    }

    /// An accepted audience of the primary issuer; see [`Issuer::audience`].
    /// Required unless [`allow_any_audience`](Self::allow_any_audience).
    pub fn audience(self, audience: impl Into<String>) -> Self {
        self.primary(|i| i.audience(audience))
    }

    /// Skip the `aud` check for the primary issuer; see
    /// [`Issuer::allow_any_audience`]. Defaults to `false`.
    pub fn allow_any_audience(self, allow: bool) -> Self {
        self.primary(|i| i.allow_any_audience(allow))
    }

    /// The primary issuer's algorithm allow-list; see [`Issuer::algorithms`].
    /// Defaults to RS256/384/512, PS256/384/512, ES256/384 and EdDSA.
    pub fn algorithms(self, algs: impl IntoIterator<Item = Algorithm>) -> Self {
        self.primary(|i| i.algorithms(algs))
    }

    /// A shared HMAC secret for the primary issuer's tokens without `kid`;
    /// see [`Issuer::shared_secret`]. Defaults to none.
    pub fn shared_secret(self, secret: impl Into<Vec<u8>>) -> Self {
        self.primary(|i| i.shared_secret(secret))
    }

    /// A shared HMAC secret for the primary issuer's tokens naming `kid`;
    /// see [`Issuer::shared_secret_with_kid`]. Defaults to none.
    pub fn shared_secret_with_kid(
        self,
        kid: impl Into<String>,
        secret: impl Into<Vec<u8>>,
    ) -> Self {
        self.primary(|i| i.shared_secret_with_kid(kid, secret))
    }

    /// Where the primary issuer's tokens carry roles, scopes and tenant;
    /// see [`Issuer::claims`]. Defaults to [`ClaimSources::rfc9068`].
    pub fn claims(self, sources: ClaimSources) -> Self {
        self.primary(|i| i.claims(sources))
    }

    /// Check the primary issuer's audience against `client_id`; see
    /// [`Issuer::audience_from_client_id`]. Defaults to `false`.
    pub fn audience_from_client_id(self, on: bool) -> Self {
        self.primary(|i| i.audience_from_client_id(on))
    }

    /// Introspection for the primary issuer; see [`Issuer::introspection`].
    /// Defaults to none.
    pub fn introspection(self, introspection: Introspection) -> Self {
        self.primary(|i| i.introspection(introspection))
    }

    /// Trust another issuer too. A token's `iss` selects the issuer whose keys,
    /// audiences and algorithms apply; keys of one issuer never verify another's
    /// tokens. Defaults to none besides the primary issuer.
    pub fn trust(mut self, issuer: Issuer) -> Self {
        self.trusted.push(issuer);
        self
    }

    /// Clock skew tolerated on `exp` and `nbf`: at most 10 min, zero for
    /// none. Defaults to 60 s.
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// Longest token accepted, in bytes (64 B to 1 MiB); longer ones are
    /// refused before any decoding. Defaults to 8 KiB.
    pub fn max_token_bytes(mut self, bytes: usize) -> Self {
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

    /// The realm in `WWW-Authenticate` challenges; not empty. Defaults to
    /// the primary issuer (the first configured).
    pub fn realm(mut self, realm: impl Into<String>) -> Self {
        self.realm = Some(realm.into());
        self
    }

    /// Timeout of one fetch (connect, headers and body), and the longest a
    /// request waits for a refetch; not zero. Defaults to 5 s.
    pub fn fetch_timeout(mut self, timeout: Duration) -> Self {
        self.fetch.timeout = timeout;
        self
    }

    /// Largest JWKS or discovery body accepted, in bytes; not zero. Defaults
    /// to 256 KiB.
    pub fn max_jwks_bytes(mut self, bytes: usize) -> Self {
        self.fetch.max_body = bytes;
        self
    }

    /// Most keys accepted in one JWK Set; a larger set is refused whole. Not
    /// zero. Defaults to 64.
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
    /// `Cache-Control: max-age`; up to 10 % earlier (jitter). At least 1 s.
    /// Defaults to 5 min.
    pub fn refresh_interval(mut self, interval: Duration) -> Self {
        self.lifecycle.refresh_interval = interval;
        self
    }

    /// Bounds for a server's `Cache-Control: max-age`: `min` at least 1 s (a
    /// server's `max-age=0` must not make the refresher spin), `min <= max`.
    /// Defaults to 1 min … 1 h.
    pub fn max_age_bounds(mut self, min: Duration, max: Duration) -> Self {
        self.lifecycle.min_refresh = min;
        self.lifecycle.max_refresh = max;
        self
    }

    /// Least time between two fetches forced by tokens naming unknown keys:
    /// a flood of random `kid`s costs at most one fetch per window. Scheduled
    /// refreshes and the first load do not start a window, so a key that
    /// appears right after them is fetched on first sight. Zero puts no
    /// bound on them (every unknown `kid` may cost a fetch). Defaults to 30 s.
    pub fn refetch_cooldown(mut self, cooldown: Duration) -> Self {
        self.lifecycle.cooldown = cooldown;
        self
    }

    /// How long the last good key set keeps being used while the issuer
    /// cannot be reached; past it, requests get 503. A `Duration`, or
    /// [`Stale::Forever`]. The age counts from the issuer's last
    /// confirmation, so a duration shorter than
    /// [`refresh_interval`](Self::refresh_interval) (zero included) would
    /// refuse good keys between refreshes and is a build error; keep it
    /// above the upper bound of [`max_age_bounds`](Self::max_age_bounds)
    /// too, or a server's long `max-age` has the same effect. Defaults to
    /// 24 h.
    pub fn max_stale(mut self, max_stale: impl Into<Stale>) -> Self {
        self.lifecycle.max_stale = match max_stale.into() {
            Stale::After(d) => Some(d),
            Stale::Forever => None,
        };
        self
    }

    /// Start without keys instead of failing `build()` when the issuer is
    /// unreachable: requests get 503 with `Retry-After` until the first fetch
    /// succeeds, retried with backoff. Defaults to `false`.
    pub fn lazy(mut self, lazy: bool) -> Self {
        self.lazy = lazy;
        self
    }

    /// Remember verified tokens in at most this much memory (each entry is
    /// charged its token length plus 1,216 bytes, its measured size), so a
    /// token seen before is accepted without a second signature check. A
    /// number of bytes, or [`CacheSize::Off`]; zero bytes is a build error.
    /// Entries never outlive `exp` (+ leeway), `exp`/`nbf` are re-checked on
    /// every hit, and an entry dies with the key that verified it. Defaults
    /// to 16 MiB (about 8,000 tokens of 900 bytes).
    pub fn token_cache(mut self, size: impl Into<CacheSize>) -> Self {
        self.cache = size.into();
        self
    }

    /// Use this HTTP client for fetches (proxies, custom roots). Timeouts and
    /// size limits still apply; its redirect policy is its own for key and
    /// discovery fetches, but an introspection call, which carries the token
    /// and the client secret, never follows a redirect (an endpoint
    /// answering 3xx is unavailable). Build it with
    /// `redirect(reqwest::redirect::Policy::none())` all the same: a
    /// following client answered 301, 302 or 303 by the endpoint's own
    /// origin makes one `GET` there, without the body but with `Basic`
    /// client credentials, before the answer is refused. Defaults to a
    /// client built from the fetch settings.
    pub fn http_client(mut self, client: reqwest::Client) -> Self {
        self.client = Some(client);
        self
    }

    /// The RFC 9728 metadata of the resource this verifier protects: served
    /// by [`Verifier::resource_metadata`], and named in every challenge the
    /// layers send (`resource_metadata="…"`). Its URLs pass the policy of
    /// key URLs ([`allow_insecure_http`](Self::allow_insecure_http)).
    /// Defaults to none: no document, challenges without it.
    pub fn resource_metadata(mut self, metadata: ResourceMetadata) -> Self {
        self.metadata = Some(metadata);
        self
    }

    /// Accept DPoP-bound tokens (RFC 9449) as [`Dpop`] says: the `DPoP`
    /// scheme, a proof on every request, replay and nonce checks; and,
    /// with [`resource_metadata`](Self::resource_metadata), the document's
    /// `dpop_signing_alg_values_supported` and
    /// `dpop_bound_access_tokens_required`. `build()` checks its values
    /// (settings `dpop.…`) and connects its replay store. Defaults to none:
    /// no `DPoP` scheme, and every token bound to a key (`cnf.jkt`) is
    /// refused, since its binding could not be checked.
    pub fn dpop(mut self, dpop: Dpop) -> Self {
        self.dpop = Some(dpop);
        self
    }

    /// Checks the configuration, selects the crypto provider and, unless
    /// [`lazy`](Self::lazy), fetches every remote key set once.
    ///
    /// Must be called within a tokio runtime: the refreshers are spawned on it.
    #[allow(clippy::too_many_lines)] // one pass, in order: check, sources, first fetch
    pub async fn build(mut self) -> Result<Verifier, BuildError> {
        crate::crypto::ensure_provider()?;
        let configured = self.issuers()?;
        self.validate(&configured)?;
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| BuildError::NoRuntime)?;
        let counters = Arc::new(Counters::default());
        let cache = self
            .cache
            .budget("token_cache")?
            .map(|b| Arc::new(TokenCache::new(b)));
        let on_new_keys = cache.clone().map(|cache| {
            let hook: Arc<dyn Fn() + Send + Sync> = Arc::new(move || cache.purge_retired());
            hook
        });
        let dpop = match self.dpop.take() {
            Some(dpop) => Some(
                dpop.build(
                    self.metadata.as_ref().map(ResourceMetadata::resource),
                    self.fetch.allow_http,
                )
                .await?,
            ),
            None => None,
        };
        let metadata = match self.metadata.take() {
            Some(metadata) => Some(metadata.resolve(
                authorization_servers(&configured),
                self.fetch.allow_http,
                dpop.as_ref(),
            )?),
            None => None,
        };
        let realm = match self.realm.take() {
            Some(realm) => realm,
            None => configured
                .first()
                .map(|i| i.iss.clone())
                .unwrap_or_default(),
        };

        let mut client = self.client.clone();
        let mut issuers: Vec<TrustedIssuer> = Vec::new();
        // Issuers with the same JWKS URL and algorithms share one key source:
        // one fetch, one refresher, one snapshot.
        let mut by_url: Vec<(&str, AlgSet, Arc<KeySource>)> = Vec::new();
        let plan = ParsePlan::new(configured.iter().map(|i| &i.settings.claims));
        for issuer in &configured {
            let settings = &issuer.settings;
            let algs = settings.algorithms.unwrap_or(AlgSet::ASYMMETRIC);
            let shared = match &settings.source {
                SourceConfig::JwksUrl(url) => by_url
                    .iter()
                    .find(|(u, a, _)| u == url && *a == algs)
                    .map(|(_, _, keys)| Arc::clone(keys)),
                _ => None,
            };
            let per_tenant = issuer.tenants.is_some() && settings.source == SourceConfig::Discover;
            let keys = if per_tenant {
                self.check_template(issuer)?;
                let client = self.client(&mut client, issuer)?;
                Keys::PerTenant(Box::new(TenantKeys::new(
                    Factory {
                        template: issuer.iss.as_str().into(),
                        client,
                        settings: self.fetch.clone(),
                        lifecycle: self.lifecycle.clone(),
                        shared: Shared {
                            counters: Arc::clone(&counters),
                            runtime: runtime.clone(),
                            on_new_keys: on_new_keys.clone(),
                        },
                        algs,
                    },
                    issuer.max_tenants.unwrap_or(DEFAULT_MAX_TENANTS),
                )))
            } else if let Some(keys) = shared {
                Keys::Fixed(keys)
            } else {
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
                        on_new_keys: on_new_keys.clone(),
                    },
                ));
                if let SourceConfig::JwksUrl(url) = &settings.source {
                    by_url.push((url, algs, Arc::clone(&keys)));
                }
                Keys::Fixed(keys)
            };
            let introspector = self.introspector(issuer, &counters)?;
            issuers.push(TrustedIssuer {
                name: IssuerName::new(&issuer.iss, issuer.tenants.as_ref()),
                audiences: (!settings.any_audience).then(|| settings.audiences.clone()),
                audience_from_client_id: settings.audience_from_client_id,
                claims: plan.resolve(&settings.claims),
                algs,
                keys,
                introspector,
            });
        }
        if !self.lazy {
            find_introspection_endpoints(&issuers).await?;
        }

        let mut stop = Vec::new();
        let mut started: Vec<&Arc<KeySource>> = Vec::new();
        for issuer in &issuers {
            let Keys::Fixed(keys) = &issuer.keys else {
                continue;
            };
            if !keys.is_remote() || started.iter().any(|k| Arc::ptr_eq(k, keys)) {
                continue;
            }
            started.push(keys);
            let first = if self.lazy {
                Duration::ZERO
            } else {
                keys.initial_fetch()
                    .await
                    .map_err(|cause| BuildError::Fetch {
                        url: keys.describe_url(),
                        cause,
                    })?;
                keys.next_delay()
            };
            let (tx, rx) = oneshot::channel();
            keys.spawn_refresher(rx, first);
            stop.push(tx);
        }

        let all_algs = issuers
            .iter()
            .fold(AlgSet::default(), |acc, i| acc.or(i.algs));
        let opaque = issuers.iter().position(|i| i.introspector.is_some());
        Ok(Verifier {
            inner: Arc::new(Inner {
                issuers,
                plan,
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
                opaque,
                metadata,
                dpop,
                _stop: stop,
            }),
        })
    }

    /// The configured issuers, the primary one first.
    fn issuers(&mut self) -> Result<Vec<Issuer>, BuildError> {
        let primary = std::mem::take(&mut self.primary);
        let mut issuers = Vec::with_capacity(self.trusted.len() + 1);
        match self.primary_iss.take() {
            Some(iss) => issuers.push(Issuer {
                iss,
                settings: primary,
                tenants: None,
                max_tenants: None,
            }),
            None if primary != IssuerSettings::default() => {
                return Err(BuildError::setting_error(
                    "issuer",
                    "issuer settings (jwks_url, audience, …) were given without .issuer(\"…\"): \
                     name the issuer they belong to, or configure it with .trust(Issuer::new(…))",
                ));
            }
            None => {}
        }
        issuers.append(&mut self.trusted);
        if issuers.is_empty() {
            return Err(BuildError::setting_error(
                "issuer",
                "an issuer is required: call .issuer(\"https://…\") or .trust(Issuer::new(…))",
            ));
        }
        // Configured issuers are the only issuer label values of metrics.
        for issuer in &issuers {
            crate::telemetry::known_issuer(&issuer.iss);
        }
        Ok(issuers)
    }

    /// Settings that cannot work are refused before anything is fetched.
    fn validate(&self, issuers: &[Issuer]) -> Result<(), BuildError> {
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
        let fail = |setting, reason: &str| Err(BuildError::setting_error(setting, reason));
        let lc = &self.lifecycle;
        if self.leeway > Duration::from_secs(600) {
            return fail("leeway", "must be at most 10 minutes");
        }
        if !(64..=1024 * 1024).contains(&self.max_token_len) {
            return fail("max_token_bytes", "must be between 64 bytes and 1 MiB");
        }
        if self.fetch.timeout.is_zero() {
            return fail("fetch_timeout", "must be positive");
        }
        if self.fetch.max_keys == 0 {
            return fail("max_jwks_keys", "must be positive: 0 admits no key");
        }
        if self.fetch.max_body == 0 {
            return fail("max_jwks_bytes", "must be positive: 0 admits no body");
        }
        if lc.refresh_interval < Duration::from_secs(1) {
            return fail("refresh_interval", "must be at least 1 s");
        }
        if lc.min_refresh < Duration::from_secs(1) || lc.min_refresh > lc.max_refresh {
            return fail(
                "max_age_bounds",
                "min must be at least 1 s (a server's max-age=0 would make the refresher spin) \
                 and at most max",
            );
        }
        if let Some(max_stale) = lc.max_stale
            && max_stale < lc.refresh_interval
        {
            // The age counts from the issuer's last confirmation: a bound
            // shorter than the wait between two scheduled refreshes refuses
            // good keys while the issuer is up.
            return Err(BuildError::setting_error(
                "max_stale",
                format!(
                    "{max_stale:?} is shorter than refresh_interval ({:?}): keys would be refused \
                     between refreshes; lengthen it, shorten refresh_interval, or use Stale::Forever",
                    lc.refresh_interval
                ),
            ));
        }
        self.cache.budget("token_cache")?;
        if self.realm.as_deref() == Some("") {
            return fail(
                "realm",
                "must not be empty: leave it unset for the primary issuer's name",
            );
        }
        if let Some(c) = self.required.iter().find(|c| !KNOWN.contains(&c.as_str())) {
            return Err(BuildError::setting_error(
                "require_claims",
                format!("unknown claim {c:?} (known: {})", KNOWN.join(" ")),
            ));
        }
        for (n, issuer) in issuers.iter().enumerate() {
            Self::validate_issuer(issuer)?;
            if issuers.iter().take(n).any(|i| i.iss == issuer.iss) {
                return Err(BuildError::issuer_setting(
                    "trust",
                    &issuer.iss,
                    "the issuer is configured twice",
                ));
            }
        }
        Self::refuse_overlaps(issuers)
    }

    /// The settings of one issuer.
    fn validate_issuer(issuer: &Issuer) -> Result<(), BuildError> {
        let iss = issuer.iss.as_str();
        let fail = |setting, reason: String| Err(BuildError::issuer_setting(setting, iss, reason));
        let settings = &issuer.settings;
        if iss.is_empty() {
            return fail(
                "issuer",
                "an issuer's identifier (iss) must not be empty".into(),
            );
        }
        if settings.audiences.is_empty() && !settings.any_audience {
            return fail(
                "audience",
                "set .audience(…) (or explicitly allow_any_audience(true))".into(),
            );
        }
        if let Err(reason) = settings.claims.validate() {
            return fail("claims", reason);
        }
        if let Some(tenants) = &issuer.tenants {
            if iss.matches(TENANT_PLACEHOLDER).count() != 1 {
                return fail(
                    "tenant_template",
                    format!("must contain {TENANT_PLACEHOLDER} exactly once"),
                );
            }
            match tenants {
                Tenants::Unset => {
                    return fail(
                        "tenants",
                        "admit tenants with .tenants([…]) or .tenant_filter(…)".into(),
                    );
                }
                Tenants::List(list) if list.is_empty() => {
                    return fail(
                        "tenants",
                        "the list is empty, so no tenant is admitted".into(),
                    );
                }
                _ => {}
            }
            if issuer.max_tenants == Some(0) {
                return fail("max_tenants", "must be positive: 0 admits no tenant".into());
            }
            if settings.introspection.is_some() {
                return fail(
                    "introspection",
                    "a tenant template cannot introspect: introspection needs one issuer name \
                     (configure it on each tenant's Issuer)"
                        .into(),
                );
            }
        }
        if let Some(introspection) = &settings.introspection {
            introspection.validate(iss)?;
        }
        if settings.algorithms.is_some_and(AlgSet::is_empty) {
            return fail("algorithms", "the allow-list is empty".into());
        }
        Ok(())
    }

    /// An `iss` must select one issuer whatever the configuration order.
    fn refuse_overlaps(issuers: &[Issuer]) -> Result<(), BuildError> {
        // SECURITY: a token's `iss` chooses the keys, audiences and claim
        // sources that apply; a name both an exact issuer and a template
        // claim would be decided by the order of `.trust(…)` calls, which
        // nobody reviewing the configuration would read as a rule.
        for template in issuers.iter().filter(|i| i.tenants.is_some()) {
            let name = IssuerName::new(&template.iss, template.tenants.as_ref());
            for exact in issuers.iter().filter(|i| i.tenants.is_none()) {
                if let Some(Match::Tenant(tenant)) = name.matches(&exact.iss) {
                    return Err(BuildError::issuer_setting(
                        "trust",
                        &exact.iss,
                        format!(
                            "the issuer is also tenant {tenant:?} of tenant template {:?}: \
                             remove the tenant from the template's .tenants([…]) or \
                             .tenant_filter(…), or the exact Issuer",
                            template.iss
                        ),
                    ));
                }
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
        let url_error = |setting, url: &str, reason: String| BuildError::Url {
            setting,
            url: url.to_owned(),
            reason,
        };
        let settings = &issuer.settings;
        let location = match &settings.source {
            SourceConfig::Static(json) => {
                let parsed =
                    KeySet::from_json(json.as_bytes(), algs, self.fetch.max_keys, Origin::Static);
                let mut set = match parsed {
                    Ok(set) => set,
                    Err(FetchError::NoUsableKeys) if settings.secret.is_some() => KeySet::default(),
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
                parse_url(url, self.fetch.allow_http)
                    .map_err(|reason| url_error("jwks_url", url, reason))?,
            ),
            SourceConfig::Discover => {
                let url = reqwest::Url::parse(&issuer.iss).map_err(|e| {
                    url_error(
                        "issuer",
                        &issuer.iss,
                        format!("issuer is not a URL, so discovery is impossible: {e}"),
                    )
                })?;
                check_url(&url, self.fetch.allow_http)
                    .map_err(|reason| url_error("issuer", &issuer.iss, reason))?;
                Location::Discover {
                    issuer: issuer.iss.clone(),
                }
            }
        };
        if settings.secret.is_some() {
            return Err(BuildError::issuer_setting(
                "shared_secret",
                &issuer.iss,
                "a shared secret goes with a static key set (jwks_json), not a remote one",
            ));
        }
        let client = self.client(client, issuer)?;
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

impl VerifierBuilder {
    /// A tenant template whose tenants discover their own keys: its URL,
    /// with a tenant in place of the placeholder, must pass the URL policy.
    fn check_template(&self, issuer: &Issuer) -> Result<(), BuildError> {
        // SECURITY (key source integrity): each tenant's keys are found
        // through its own issuer URL, so the template gets the https (or
        // loopback) policy of every other key URL; each tenant's URL is
        // checked again before its discovery (tenants.rs).
        let sample = issuer.iss.replace(TENANT_PLACEHOLDER, "tenant");
        let url_error = |reason: String| BuildError::Url {
            setting: "tenant_template",
            url: issuer.iss.clone(),
            reason,
        };
        let url = reqwest::Url::parse(&sample).map_err(|e| {
            url_error(format!(
                "tenant template is not a URL, so discovery is impossible: {e}"
            ))
        })?;
        check_url(&url, self.fetch.allow_http).map_err(url_error)?;
        // SECURITY (key source integrity): tenant names may hold dots, so a
        // placeholder inside a host (`https://login.example{tenantid}/`,
        // `https://{tenantid}/`) would let a tenant name choose the host its
        // keys come from. It must not change the origin, or be the first
        // label of a host under a fixed domain of two labels or more.
        let dotted = reqwest::Url::parse(&issuer.iss.replace(TENANT_PLACEHOLDER, "a.b"));
        if dotted.is_ok_and(|d| d.origin() == url.origin()) || leads_a_fixed_domain(&issuer.iss) {
            Ok(())
        } else {
            Err(url_error(format!(
                "the {TENANT_PLACEHOLDER} placeholder must be a path segment (https://login.example/{TENANT_PLACEHOLDER}/v2.0) \
                 or the first label of a host under a fixed domain (https://{TENANT_PLACEHOLDER}.login.example/): \
                 elsewhere a tenant name would choose the host keys are fetched from"
            )))
        }
    }

    /// The HTTP client of every fetch: the one given, or one built once
    /// from the fetch settings.
    fn client(
        &self,
        client: &mut Option<reqwest::Client>,
        issuer: &Issuer,
    ) -> Result<reqwest::Client, BuildError> {
        if let Some(c) = client {
            return Ok(c.clone());
        }
        let c = self.fetch.client().map_err(|cause| BuildError::Fetch {
            url: issuer.iss.clone(),
            cause,
        })?;
        *client = Some(c.clone());
        Ok(c)
    }

    /// The introspector of `issuer`, if it has introspection configured.
    fn introspector(
        &self,
        issuer: &Issuer,
        counters: &Arc<Counters>,
    ) -> Result<Option<Arc<Introspector>>, BuildError> {
        let Some(settings) = &issuer.settings.introspection else {
            return Ok(None);
        };
        // SECURITY: the client secret goes with every call, so the endpoint
        // must pass the same URL policy as key URLs; redirects are never
        // followed (a 307 would resend the secret to wherever it points).
        let endpoint = if let Some(raw) = &settings.endpoint {
            let url = parse_url(raw, self.fetch.allow_http).map_err(|reason| BuildError::Url {
                setting: "introspection.endpoint",
                url: raw.clone(),
                reason,
            })?;
            Some(url)
        } else {
            let url = reqwest::Url::parse(&issuer.iss).map_err(|e| BuildError::Url {
                setting: "issuer",
                url: issuer.iss.clone(),
                reason: format!(
                    "issuer is not a URL, so the introspection endpoint cannot be discovered: {e}"
                ),
            })?;
            check_url(&url, self.fetch.allow_http).map_err(|reason| BuildError::Url {
                setting: "issuer",
                url: issuer.iss.clone(),
                reason,
            })?;
            None
        };
        let client = match &self.client {
            Some(own) => own.clone(),
            None => FetchSettings {
                timeout: settings.timeout,
                follow_redirects: false,
                ..self.fetch.clone()
            }
            .client()
            .map_err(|cause| BuildError::Fetch {
                url: issuer.iss.clone(),
                cause,
            })?,
        };
        Ok(Some(Arc::new(Introspector::new(
            &issuer.iss,
            settings.clone(),
            endpoint,
            client,
            self.fetch.allow_http,
            self.fetch.max_body,
            Arc::clone(counters),
        ))))
    }
}

/// Resolves every introspection endpoint now, so that a wrong or missing
/// one fails `build()` loudly, as unreachable keys do.
async fn find_introspection_endpoints(issuers: &[TrustedIssuer]) -> Result<(), BuildError> {
    for issuer in issuers {
        if let Some(introspector) = &issuer.introspector {
            introspector
                .endpoint()
                .await
                .map_err(|cause| BuildError::Fetch {
                    url: format!("{} (introspection_endpoint)", issuer.name.as_str()),
                    cause,
                })?;
        }
    }
    Ok(())
}

fn add_secret(set: &mut KeySet, issuer: &Issuer, algs: AlgSet) -> Result<(), BuildError> {
    if let Some((kid, secret)) = &issuer.settings.secret {
        let key = secret_key(kid.clone(), &secret.0, algs)
            .map_err(|reason| BuildError::issuer_setting("shared_secret", &issuer.iss, reason))?;
        set.insert(key);
    }
    if set.len() == 0 {
        return Err(BuildError::Fetch {
            url: "static JWKS".into(),
            cause: FetchError::NoUsableKeys,
        });
    }
    Ok(())
}

/// The issuer identifiers clients get tokens from, for RFC 9728's
/// `authorization_servers`: every exact issuer, and each listed tenant's of
/// a tenant template (a filter cannot be listed).
fn authorization_servers(issuers: &[Issuer]) -> Vec<String> {
    let mut servers = Vec::new();
    for issuer in issuers {
        match &issuer.tenants {
            None => servers.push(issuer.iss.clone()),
            Some(Tenants::List(tenants)) => servers.extend(
                tenants
                    .iter()
                    .map(|t| issuer.iss.replace(TENANT_PLACEHOLDER, t)),
            ),
            Some(Tenants::Filter(_) | Tenants::Unset) => {}
        }
    }
    servers
}

/// Whether the template's placeholder is the first label of its host, under
/// a fixed domain of at least two labels (`https://{tenantid}.okta.example/`).
fn leads_a_fixed_domain(template: &str) -> bool {
    let Some(rest) = template
        .split_once("://")
        .and_then(|(_, rest)| rest.strip_prefix(TENANT_PLACEHOLDER))
    else {
        return false;
    };
    let host = rest.split(['/', ':', '?', '#']).next().unwrap_or_default();
    host.strip_prefix('.').is_some_and(|domain| {
        let labels: Vec<&str> = domain.split('.').collect();
        labels.len() >= 2 && labels.iter().all(|l| !l.is_empty())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Verifier;

    async fn template(template: &str, allow_http: bool) -> Result<Verifier, BuildError> {
        Verifier::builder()
            .trust(
                Issuer::tenant_template(template)
                    .tenants(["t-1"])
                    .audience("a"),
            )
            .allow_insecure_http(allow_http)
            .build()
            .await
    }

    #[tokio::test]
    async fn a_tenant_template_placeholder_cannot_choose_the_host() {
        // Tenant names may hold dots: `.evil.example` makes the first
        // `https://login.example.evil.example/`.
        for refused in [
            "https://login.example{tenantid}/v2.0",
            "https://{tenantid}/v2.0",
            "https://{tenantid}.example/v2.0",
            "https://login-{tenantid}.example/v2.0",
            "https://{tenantid}:443/v2.0",
            "https://a.{tenantid}.example/v2.0",
        ] {
            let err = template(refused, false).await.unwrap_err();
            assert!(
                matches!(&err, BuildError::Url { setting: "tenant_template", url, reason } if url == refused && reason.contains("placeholder")),
                "{refused}: {err}"
            );
        }
    }

    #[tokio::test]
    async fn tenant_templates_pass_the_same_url_policy_as_issuer_urls() {
        for refused in [
            "http://login.example/{tenantid}/v2.0",
            "http://{tenantid}.login.example/v2.0",
            "ftp://login.example/{tenantid}/v2.0",
            "login.example/{tenantid}/v2.0",
        ] {
            let err = template(refused, false).await.unwrap_err();
            assert!(
                matches!(&err, BuildError::Url { url, .. } if url == refused),
                "{refused}: {err}"
            );
            // As `Issuer::new` refuses the same URL.
            let plain = Verifier::builder()
                .trust(Issuer::new(refused.replace(TENANT_PLACEHOLDER, "t-1")).audience("a"))
                .build()
                .await
                .unwrap_err();
            assert!(matches!(plain, BuildError::Url { .. }), "{plain}");
        }
        for accepted in [
            "https://login.example/{tenantid}/v2.0",
            "https://login.example/t/{tenantid}",
            "https://login.example/v2.0?tenant={tenantid}",
            "https://{tenantid}.login.example/v2.0",
            "http://127.0.0.1:9/{tenantid}/v2.0",
            "http://localhost:9/{tenantid}/v2.0",
        ] {
            assert!(template(accepted, false).await.is_ok(), "{accepted}");
        }
        assert!(
            template("http://login.example/{tenantid}/v2.0", true)
                .await
                .is_ok(),
            "allow_insecure_http admits it, as it does for every key URL"
        );
    }

    const JWKS: &str = r#"{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"k1",
        "x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}"#;
    const TEMPLATE: &str = "https://login.example/{tenantid}/v2.0";
    const EXACT: &str = "https://login.example/t-1/v2.0";

    async fn both(template: Issuer, template_first: bool) -> Result<Verifier, BuildError> {
        let template = template.jwks_json(JWKS).audience("a");
        let exact = Issuer::new(EXACT).jwks_json(JWKS).audience("b");
        let (first, second) = if template_first {
            (template, exact)
        } else {
            (exact, template)
        };
        Verifier::builder().trust(first).trust(second).build().await
    }

    #[tokio::test]
    async fn an_exact_issuer_that_a_tenant_template_also_matches_is_refused() {
        for template_first in [true, false] {
            for template in [
                Issuer::tenant_template(TEMPLATE).tenants(["t-1", "t-2"]),
                Issuer::tenant_template(TEMPLATE).tenant_filter(|t| t.starts_with("t-")),
            ] {
                let err = both(template, template_first).await.unwrap_err();
                let text = err.to_string();
                assert!(
                    matches!(&err, BuildError::InvalidSetting { setting: "trust", issuer: Some(i), .. } if i == EXACT),
                    "{text}"
                );
                assert!(
                    text.contains(EXACT) && text.contains(TEMPLATE) && text.contains("\"t-1\""),
                    "{text}"
                );
            }
        }
        // A template that does not admit that tenant does not overlap.
        let apart = Issuer::tenant_template(TEMPLATE).tenants(["t-2"]);
        assert!(both(apart, true).await.is_ok());
    }

    /// A builder for the primary issuer with static keys.
    fn primary() -> VerifierBuilder {
        Verifier::builder()
            .issuer("https://id.example")
            .jwks_json(JWKS)
            .audience("a")
    }

    /// The setting `builder` is refused for; `None` if it builds.
    async fn refused(builder: VerifierBuilder) -> Option<&'static str> {
        let err = builder.build().await.err()?;
        assert!(
            matches!(
                err,
                BuildError::InvalidSetting { .. } | BuildError::Url { .. }
            ),
            "{err}"
        );
        Some(err.setting().expect("a setting error names its setting"))
    }

    #[tokio::test]
    async fn values_that_cannot_work_are_refused_naming_the_setting() {
        let secs = Duration::from_secs;
        for (builder, setting) in [
            (primary().max_jwks_keys(0), "max_jwks_keys"),
            (primary().max_jwks_bytes(0), "max_jwks_bytes"),
            (
                primary().refresh_interval(Duration::ZERO),
                "refresh_interval",
            ),
            (primary().token_cache(0), "token_cache"),
            (primary().require_claims(["nope"]), "require_claims"),
            (primary().shared_secret(b"short".to_vec()), "shared_secret"),
            (
                primary().claims(
                    ClaimSources::rfc9068()
                        .roles([crate::ClaimPath::new("a..b", crate::ValueShape::Any)]),
                ),
                "claims",
            ),
            (
                primary().trust(
                    Issuer::tenant_template("https://login.example/{tenantid}")
                        .tenants(["t"])
                        .max_tenants(0)
                        .audience("a"),
                ),
                "max_tenants",
            ),
            (
                primary().trust(
                    Issuer::tenant_template("https://login.example/v2.0")
                        .tenants(["t"])
                        .audience("a"),
                ),
                "tenant_template",
            ),
            (
                primary().trust(Issuer::tenant_template(TEMPLATE).audience("a")),
                "tenants",
            ),
            (primary().max_stale(secs(60)), "max_stale"),
        ] {
            assert_eq!(refused(builder).await, Some(setting));
        }
    }

    #[tokio::test]
    async fn per_issuer_errors_name_the_issuer() {
        let err = Verifier::builder()
            .trust(Issuer::new("https://id.example").jwks_json(JWKS))
            .build()
            .await
            .unwrap_err();
        assert!(
            matches!(&err, BuildError::InvalidSetting { setting: "audience", issuer: Some(i), .. } if i == "https://id.example"),
            "{err}"
        );
        assert!(
            err.to_string()
                .starts_with("invalid setting audience of issuer \"https://id.example\": "),
            "{err}"
        );
        let err = primary()
            .introspection(Introspection::new("c", "s").timeout(Duration::ZERO))
            .build()
            .await
            .unwrap_err();
        assert!(
            matches!(&err, BuildError::InvalidSetting { setting: "introspection.timeout", issuer: Some(i), .. } if i == "https://id.example"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn refused_urls_name_the_setting_that_gave_them() {
        let remote = "http://keys.example/jwks.json";
        for (builder, setting, url) in [
            (
                Verifier::builder()
                    .issuer("https://id.example")
                    .jwks_url(remote)
                    .audience("a"),
                "jwks_url",
                remote,
            ),
            (
                Verifier::builder()
                    .issuer("http://id.example")
                    .audience("a"),
                "issuer",
                "http://id.example",
            ),
            (
                primary().introspection(
                    Introspection::new("c", "s").endpoint("http://id.example/introspect"),
                ),
                "introspection.endpoint",
                "http://id.example/introspect",
            ),
            (
                primary().resource_metadata(ResourceMetadata::new("http://api.example")),
                "resource_metadata",
                "http://api.example",
            ),
        ] {
            let err = builder.build().await.unwrap_err();
            assert!(
                matches!(&err, BuildError::Url { setting: s, url: u, .. } if *s == setting && u == url),
                "{err}"
            );
            assert!(err.to_string().contains(&format!("({setting})")), "{err}");
        }
    }

    #[tokio::test]
    async fn a_max_stale_shorter_than_the_refresh_interval_is_refused() {
        let secs = Duration::from_secs;
        // Zero would refuse keys as soon as they arrive.
        assert_eq!(
            refused(primary().max_stale(Duration::ZERO)).await,
            Some("max_stale")
        );
        assert_eq!(
            refused(primary().max_stale(secs(299))).await,
            Some("max_stale")
        );
        assert_eq!(refused(primary().max_stale(secs(300))).await, None);
        assert_eq!(
            refused(primary().refresh_interval(secs(10)).max_stale(secs(60))).await,
            None
        );
        assert_eq!(refused(primary().max_stale(Stale::Forever)).await, None);
    }

    #[tokio::test]
    async fn a_max_age_lower_bound_under_a_second_is_refused() {
        let secs = Duration::from_secs;
        // A server's `max-age=0` would otherwise make the refresher spin.
        assert_eq!(
            refused(primary().max_age_bounds(Duration::ZERO, secs(3600))).await,
            Some("max_age_bounds")
        );
        assert_eq!(
            refused(primary().max_age_bounds(secs(7200), secs(3600))).await,
            Some("max_age_bounds")
        );
        assert_eq!(
            refused(primary().max_age_bounds(secs(1), secs(1))).await,
            None
        );
    }

    #[tokio::test]
    async fn an_empty_realm_is_refused_not_replaced() {
        assert_eq!(refused(primary().realm("")).await, Some("realm"));
        let named = primary().realm("orders").build().await.unwrap();
        assert_eq!(named.realm(), "orders");
        let default = primary().build().await.unwrap();
        assert_eq!(default.realm(), "https://id.example");
    }

    #[tokio::test]
    async fn resource_metadata_names_the_verifiers_issuers_unless_told_otherwise() {
        let json = |v: &Verifier| v.resource_metadata().unwrap().json().to_owned();
        let v = primary()
            .trust(
                Issuer::new("https://other.example")
                    .jwks_json(JWKS)
                    .audience("a"),
            )
            .trust(
                Issuer::tenant_template(TEMPLATE)
                    .tenants(["t-2", "t-3"])
                    .jwks_json(JWKS)
                    .audience("a"),
            )
            .trust(
                Issuer::tenant_template("https://{tenantid}.login.example/")
                    .tenant_filter(|_| true)
                    .jwks_json(JWKS)
                    .audience("a"),
            )
            .resource_metadata(ResourceMetadata::new("https://api.example"))
            .build()
            .await
            .unwrap();
        assert!(
            json(&v).contains(
                r#""authorization_servers":["https://id.example","https://other.example","https://login.example/t-2/v2.0","https://login.example/t-3/v2.0"]"#
            ),
            "{}",
            json(&v)
        );
        let v = primary()
            .resource_metadata(
                ResourceMetadata::new("https://api.example")
                    .authorization_servers(["https://as.example"]),
            )
            .build()
            .await
            .unwrap();
        assert!(json(&v).contains(r#""authorization_servers":["https://as.example"]"#));
        // Only tenants a filter admits: nothing to list, nothing to serve.
        let err = Verifier::builder()
            .trust(
                Issuer::tenant_template(TEMPLATE)
                    .tenant_filter(|_| true)
                    .jwks_json(JWKS)
                    .audience("a"),
            )
            .resource_metadata(ResourceMetadata::new("https://api.example"))
            .build()
            .await
            .unwrap_err();
        assert_eq!(
            err.setting(),
            Some("resource_metadata.authorization_servers")
        );
        assert!(
            primary()
                .build()
                .await
                .unwrap()
                .resource_metadata()
                .is_none()
        );
        // The switch for key URLs admits a plain-http resource too.
        let plain = primary()
            .allow_insecure_http(true)
            .resource_metadata(ResourceMetadata::new("http://api.example"))
            .build()
            .await
            .unwrap();
        assert_eq!(
            plain.resource_metadata().unwrap().url(),
            "http://api.example/.well-known/oauth-protected-resource"
        );
    }

    #[tokio::test]
    async fn an_empty_tenant_list_is_refused() {
        let none: [&str; 0] = [];
        let err = Verifier::builder()
            .trust(
                Issuer::tenant_template(TEMPLATE)
                    .tenants(none)
                    .jwks_json(JWKS)
                    .audience("a"),
            )
            .build()
            .await
            .unwrap_err();
        assert!(
            matches!(&err, BuildError::InvalidSetting { setting: "tenants", issuer: Some(i), .. } if i == TEMPLATE),
            "{err}"
        );
    }

    #[tokio::test]
    async fn cache_size_off_turns_the_token_cache_off() {
        let off = primary().token_cache(CacheSize::Off).build().await.unwrap();
        assert!(off.inner.cache.is_none());
        let on = primary().token_cache(1 << 20).build().await.unwrap();
        assert!(on.inner.cache.is_some());
    }

    #[tokio::test]
    async fn switches_take_their_value() {
        // `false` is the default: the audience is required again.
        assert_eq!(
            refused(
                Verifier::builder()
                    .issuer("https://id.example")
                    .jwks_json(JWKS)
                    .allow_any_audience(true)
                    .allow_any_audience(false)
            )
            .await,
            Some("audience")
        );
        assert_eq!(
            refused(
                Verifier::builder()
                    .issuer("https://id.example")
                    .jwks_json(JWKS)
                    .allow_any_audience(true)
            )
            .await,
            None
        );
    }

    #[test]
    fn building_outside_a_tokio_runtime_is_an_error_not_a_panic() {
        use std::future::Future;
        use std::task::{Context, Poll, Waker};
        let mut build = std::pin::pin!(primary().build());
        let polled = build.as_mut().poll(&mut Context::from_waker(Waker::noop()));
        assert!(
            matches!(polled, Poll::Ready(Err(BuildError::NoRuntime))),
            "{:?}",
            polled.map(|r| r.map(|_| ()))
        );
    }
}
