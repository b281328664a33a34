//! [`TokenExchange`]: trade the caller's token for one meant for the
//! downstream service (RFC 8693), cached and single-flight. The user's
//! documentation is on the type.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::OnceCell;
use tokio::time::Instant;

use super::dpop::DpopKey;
use super::endpoint::{Endpoint, Names};
use super::{ClientCredentials, OutboundError, TOKEN_TYPE_ACCESS};
use crate::error::BuildError;
use crate::layer::AccessToken;
use crate::telemetry;
use crate::verifier::CacheSize;

const GRANT_TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";

/// The settings of the builder, as build errors name them.
const NAMES: Names = Names {
    token_url: "token_exchange.token_url",
    client_id: "token_exchange.client_id",
    timeout: "token_exchange.timeout",
};

/// (subject token, audience).
type Key = (AccessToken, Arc<str>);
type Flight = Arc<OnceCell<Result<Cached, OutboundError>>>;

#[derive(Clone)]
struct Cached {
    token: AccessToken,
    /// Served from the cache until then (shortly before its expiry).
    fresh_until: Instant,
}

/// Builds a [`TokenExchange`].
#[must_use]
pub struct TokenExchangeBuilder {
    url: String,
    client_id: String,
    secret: String,
    actor: Option<ClientCredentials>,
    scope: Option<String>,
    entries: u64,
    cache: CacheSize,
    margin: Duration,
    timeout: Duration,
    http: Option<reqwest::Client>,
    allow_http: bool,
    dpop: Option<DpopKey>,
}

impl fmt::Debug for TokenExchangeBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenExchangeBuilder")
            .field("url", &self.url)
            .field("client_id", &self.client_id)
            .field("entries", &self.entries)
            .field("cache", &self.cache)
            .finish_non_exhaustive()
    }
}

impl TokenExchangeBuilder {
    /// Send the service's own token as `actor_token` (delegation: the new
    /// token says who acts for the subject). Defaults to none.
    pub fn actor(mut self, actor: ClientCredentials) -> Self {
        self.actor = Some(actor);
        self
    }

    /// The `scope` to request (space-separated). Defaults to none: the
    /// issuer's choice, typically the subject's scopes that the client may
    /// pass on.
    pub fn scope(mut self, scope: impl Into<String>) -> Self {
        self.scope = Some(scope.into());
        self
    }

    /// How many exchanged tokens to keep, at most. The cache is bounded in
    /// bytes as well ([`cache_bytes`](Self::cache_bytes)): whichever bound
    /// is reached first evicts. Not zero: turn the cache off with
    /// `cache_bytes(CacheSize::Off)`. Defaults to 10 000.
    pub fn cache_entries(mut self, entries: u64) -> Self {
        self.entries = entries;
        self
    }

    /// How much memory cached tokens may take, at most: each entry is
    /// charged the lengths of its subject token, audience and exchanged
    /// token, plus 512 bytes for the key, the value and the cache's own
    /// bookkeeping (about 350 measured). A number of bytes, or
    /// [`CacheSize::Off`]: every exchange asks the issuer. Zero bytes is a
    /// build error. Defaults to 32 MiB: the default 10 000 entries with two
    /// tokens of about 1.4 KiB each.
    pub fn cache_bytes(mut self, size: impl Into<CacheSize>) -> Self {
        self.cache = size.into();
        self
    }

    /// A cached token is not served in its last `margin` (at most a fifth
    /// of its lifetime), so that it never expires on the way; zero serves
    /// it to the end. Defaults to 30 s.
    pub fn refresh_margin(mut self, margin: Duration) -> Self {
        self.margin = margin;
        self
    }

    /// Bound on one request to the token endpoint. Not zero. Defaults to 5 s.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Allow a plain-http token endpoint on a host other than this machine
    /// (the client secret and tokens then cross the network in clear).
    /// Defaults to `false`: https, or http to loopback only.
    pub fn allow_insecure_http(mut self, allow: bool) -> Self {
        self.allow_http = allow;
        self
    }

    /// Ask for DPoP-bound tokens (RFC 9449): every token request carries
    /// a proof signed with `key` (`htm` POST, `htu` the token endpoint), the
    /// answer must say `token_type: DPoP` (an unbound `Bearer` token is
    /// refused with [`OutboundError::InvalidResponse`]: the server ignored
    /// the proof), and a `use_dpop_nonce` refusal is retried once with the
    /// nonce it gave. Calls made with these tokens carry a proof of their
    /// own ([`OutboundToken`](super::OutboundToken) does it). Defaults to
    /// none: bearer tokens.
    pub fn dpop(mut self, key: DpopKey) -> Self {
        self.dpop = Some(key);
        self
    }

    /// The HTTP client to use. Whatever this client's redirect policy, a
    /// token endpoint answering 3xx is an error: neither the secret nor the
    /// subject token is sent on. Give it
    /// `redirect(reqwest::redirect::Policy::none())` all the same: a
    /// following client answered 301, 302 or 303 by the endpoint's own
    /// origin makes one bodiless `GET` there, with `Basic` client
    /// credentials, before the answer is refused. Defaults to a client that
    /// follows no redirects.
    pub fn http_client(mut self, client: reqwest::Client) -> Self {
        self.http = Some(client);
        self
    }

    /// Checks the settings and builds the client; no request is made until
    /// the first exchange. A value that cannot work is a [`BuildError`]
    /// naming the setting (`token_exchange.timeout`, …).
    pub fn build(self) -> Result<TokenExchange, BuildError> {
        let max_bytes = self.cache.budget("token_exchange.cache_bytes")?;
        if self.entries == 0 {
            return Err(BuildError::setting_error(
                "token_exchange.cache_entries",
                "a cache of 0 entries holds nothing: turn it off with cache_bytes(CacheSize::Off)",
            ));
        }
        let endpoint = Endpoint::new(
            &NAMES,
            &self.url,
            &self.client_id,
            &self.secret,
            self.http,
            self.timeout,
            self.allow_http,
        )?
        .with_dpop(self.dpop);
        // SECURITY (memory): a count alone does not bound memory: tokens
        // are as long as the verifier and the endpoint allow (an answer may
        // be 64 KiB). moka has one bound, so an entry weighs its size in
        // bytes but at least `max_bytes / entries`: neither more than
        // `entries` entries nor more than `max_bytes` fit.
        let entries = self.entries;
        let cache = max_bytes.map(|max_bytes| {
            let floor = max_bytes.div_ceil(entries).min(u64::from(u32::MAX));
            moka::sync::Cache::builder()
                .max_capacity(max_bytes.min(floor.saturating_mul(entries)))
                .weigher(move |key: &Key, value: &Cached| {
                    u32::try_from(entry_bytes(key, value).max(floor)).unwrap_or(u32::MAX)
                })
                .expire_after(Expiry)
                .build()
        });
        Ok(TokenExchange {
            inner: Arc::new(Inner {
                endpoint,
                actor: self.actor,
                scope: self.scope,
                cache,
                margin: self.margin,
                flights: Mutex::new(HashMap::new()),
                issuer_calls: AtomicU64::new(0),
                cache_hits: AtomicU64::new(0),
                failures: AtomicU64::new(0),
            }),
        })
    }
}

/// What a cached exchange costs beyond its three strings: the key and the
/// value, and moka's bookkeeping for the entry (about 350 bytes measured).
const ENTRY_OVERHEAD: u64 = 512;

/// The bytes a cached exchange is charged.
fn entry_bytes(key: &Key, value: &Cached) -> u64 {
    let strings = key.0.as_str().len() + key.1.len() + value.token.as_str().len();
    u64::try_from(strings)
        .unwrap_or(u64::MAX)
        .saturating_add(ENTRY_OVERHEAD)
}

/// Evicts an entry when it stops being fresh (moka's clock; freshness is
/// checked again on every read with tokio's, which tests can pause).
struct Expiry;

impl moka::Expiry<Key, Cached> for Expiry {
    fn expire_after_create(
        &self,
        _key: &Key,
        value: &Cached,
        _created_at: std::time::Instant,
    ) -> Option<Duration> {
        Some(value.fresh_until.saturating_duration_since(Instant::now()))
    }
}

/// An RFC 8693 token-exchange client. Cheap to clone (one `Arc`).
///
/// Exchanged tokens are cached per (subject token, audience) until shortly
/// before they expire; concurrent exchanges of the same pair share one
/// request to the issuer. Refusals and failures are not cached.
///
/// Put it on outbound calls with
/// [`OutboundToken::exchange`](super::OutboundToken::exchange).
///
/// # Example
///
/// ```no_run
/// # async fn run(caller: authlayer::AccessToken) -> Result<(), Box<dyn std::error::Error>> {
/// use authlayer::outbound::TokenExchange;
///
/// let exchange = TokenExchange::builder("https://id.example/token", "gateway", "secret").build()?;
/// // The caller's token (audience urn:gateway) becomes one for urn:orders.
/// let for_orders = exchange.exchange(&caller, "urn:orders").await?;
/// // Asked again before it nears its expiry: answered from the cache.
/// let again = exchange.exchange(&caller, "urn:orders").await?;
/// assert_eq!(for_orders, again);
/// assert_eq!(exchange.stats().issuer_calls, 1);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct TokenExchange {
    inner: Arc<Inner>,
}

struct Inner {
    endpoint: Endpoint,
    actor: Option<ClientCredentials>,
    scope: Option<String>,
    cache: Option<moka::sync::Cache<Key, Cached>>,
    margin: Duration,
    /// The exchanges in flight, each with the number of callers waiting on it.
    flights: Mutex<HashMap<Key, (Flight, usize)>>,
    issuer_calls: AtomicU64,
    cache_hits: AtomicU64,
    failures: AtomicU64,
}

impl fmt::Debug for TokenExchange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenExchange")
            .field("endpoint", &self.inner.endpoint)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

/// Removes a finished or abandoned flight from the map. Callers aboard are
/// counted under the map's lock, so two cancelled at once cannot both leave
/// an abandoned flight (holding the subject token) behind.
struct Leave<'a> {
    flights: &'a Mutex<HashMap<Key, (Flight, usize)>>,
    key: &'a Key,
    flight: &'a Flight,
}

impl Drop for Leave<'_> {
    fn drop(&mut self) {
        let mut flights = self
            .flights
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let Some((current, aboard)) = flights.get_mut(self.key) else {
            return;
        };
        if !Arc::ptr_eq(current, self.flight) {
            return;
        }
        *aboard = aboard.saturating_sub(1);
        // Done, or abandoned by its last waiter: a later caller starts afresh.
        if *aboard == 0 || self.flight.initialized() {
            flights.remove(self.key);
        }
    }
}

/// Counters of a [`TokenExchange`] since it was built.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ExchangeStats {
    /// Requests sent to the issuer.
    pub issuer_calls: u64,
    /// Exchanges answered from the cache.
    pub cache_hits: u64,
    /// Exchanges that failed (refused, unavailable, timed out…).
    pub failures: u64,
    /// Tokens in the cache now (approximate).
    pub cached: u64,
}

impl TokenExchange {
    /// A client for `client_id` at the token endpoint `token_url`, with
    /// `client_secret` sent as HTTP Basic credentials.
    pub fn builder(
        token_url: impl Into<String>,
        client_id: impl Into<String>,
        client_secret: impl Into<String>,
    ) -> TokenExchangeBuilder {
        TokenExchangeBuilder {
            url: token_url.into(),
            client_id: client_id.into(),
            secret: client_secret.into(),
            actor: None,
            scope: None,
            entries: 10_000,
            cache: CacheSize::Bytes(32 * 1024 * 1024),
            margin: Duration::from_secs(30),
            timeout: Duration::from_secs(5),
            http: None,
            allow_http: false,
            dpop: None,
        }
    }

    /// The key its tokens are bound to, if they are DPoP-bound.
    pub(crate) fn dpop_key(&self) -> Option<&DpopKey> {
        self.inner.endpoint.dpop()
    }

    /// The counters.
    pub fn stats(&self) -> ExchangeStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        ExchangeStats {
            issuer_calls: get(&self.inner.issuer_calls),
            cache_hits: get(&self.inner.cache_hits),
            failures: get(&self.inner.failures),
            cached: self
                .inner
                .cache
                .as_ref()
                .map_or(0, moka::sync::Cache::entry_count),
        }
    }

    /// A cached exchange of `subject` for `audience`, without waiting.
    pub fn cached(&self, subject: &AccessToken, audience: &str) -> Option<AccessToken> {
        self.cached_for(subject, &Arc::from(audience))
    }

    /// [`cached`](Self::cached) for a shared audience: the key is two `Arc`
    /// clones, no allocation.
    pub(crate) fn cached_for(
        &self,
        subject: &AccessToken,
        audience: &Arc<str>,
    ) -> Option<AccessToken> {
        let cache = self.inner.cache.as_ref()?;
        let key: Key = (subject.clone(), Arc::clone(audience));
        self.lookup(cache, &key)
    }

    fn lookup(&self, cache: &moka::sync::Cache<Key, Cached>, key: &Key) -> Option<AccessToken> {
        let hit = cache.get(key).filter(|c| Instant::now() < c.fresh_until)?;
        self.inner.cache_hits.fetch_add(1, Ordering::Relaxed);
        telemetry::token_exchange(telemetry::Exchange::Cached);
        Some(hit.token)
    }

    /// `subject` exchanged for a token whose audience is `audience`.
    pub async fn exchange(
        &self,
        subject: &AccessToken,
        audience: &str,
    ) -> Result<AccessToken, OutboundError> {
        let key: Key = (subject.clone(), Arc::from(audience));
        if let Some(cache) = &self.inner.cache
            && let Some(token) = self.lookup(cache, &key)
        {
            return Ok(token);
        }
        // Single flight per key: the first caller asks, the others wait for
        // its answer. If the first is cancelled, a waiter takes over.
        let flight: Flight = {
            // The map holds no invariant a panic elsewhere could break
            // (entries are counted and removed under this lock only).
            let mut flights = self
                .inner
                .flights
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let (flight, aboard) = flights.entry(key.clone()).or_default();
            *aboard += 1;
            Arc::clone(flight)
        };
        // Whatever happens to this future (done, failed, cancelled), the
        // flight leaves the map once nobody waits on it.
        let _leave = Leave {
            flights: &self.inner.flights,
            key: &key,
            flight: &flight,
        };
        let result = flight
            .get_or_init(|| async {
                let result = self.call_issuer(subject, audience).await;
                if let (Ok(cached), Some(cache)) = (&result, &self.inner.cache) {
                    cache.insert(key.clone(), cached.clone());
                }
                result
            })
            .await
            .clone();
        result.map(|cached| cached.token)
    }

    async fn call_issuer(
        &self,
        subject: &AccessToken,
        audience: &str,
    ) -> Result<Cached, OutboundError> {
        let inner = &self.inner;
        let actor = match &inner.actor {
            Some(source) => Some(source.token().await?),
            None => None,
        };
        let mut params = vec![
            ("grant_type", GRANT_TOKEN_EXCHANGE),
            ("subject_token", subject.as_str()),
            ("subject_token_type", TOKEN_TYPE_ACCESS),
            ("requested_token_type", TOKEN_TYPE_ACCESS),
            ("audience", audience),
        ];
        if let Some(actor) = &actor {
            params.push(("actor_token", actor.as_str()));
            params.push(("actor_token_type", TOKEN_TYPE_ACCESS));
        }
        if let Some(scope) = &inner.scope {
            params.push(("scope", scope));
        }
        inner.issuer_calls.fetch_add(1, Ordering::Relaxed);
        match inner.endpoint.request(&params).await {
            Ok(issued) => {
                telemetry::token_exchange(telemetry::Exchange::Exchanged);
                // Without `expires_in` the lifetime is unknown: use it once,
                // cache nothing.
                let fresh_until = issued.lifetime.map_or(issued.requested_at, |lifetime| {
                    issued.requested_at + lifetime.saturating_sub(inner.margin.min(lifetime / 5))
                });
                Ok(Cached {
                    token: issued.token,
                    fresh_until,
                })
            }
            Err(e) => {
                inner.failures.fetch_add(1, Ordering::Relaxed);
                telemetry::token_exchange(telemetry::Exchange::Error);
                tracing::warn!(audience = %audience, error = %e, "token exchange failed");
                Err(e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_abandoned_exchange_leaves_no_flight_behind() {
        // A token endpoint that accepts the connection and never answers.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/token", listener.local_addr().unwrap());
        let exchange = TokenExchange::builder(url, "c", "s").build().unwrap();
        let subject = AccessToken::new("t");
        let call = exchange.exchange(&subject, "a");
        let abandoned = tokio::time::timeout(Duration::from_millis(50), call).await;
        assert!(abandoned.is_err(), "the endpoint never answers");
        assert!(exchange.inner.flights.lock().unwrap().is_empty());
        drop(listener);
    }

    /// Puts 100 entries (subjects `subject-0`…, tokens `token(i)`), fresh
    /// for an hour, one at a time.
    fn fill(cache: &moka::sync::Cache<Key, Cached>, token: impl Fn(usize) -> String) {
        let audience: Arc<str> = Arc::from("urn:orders");
        for i in 0..100 {
            let key = (
                AccessToken::new(format!("subject-{i}")),
                Arc::clone(&audience),
            );
            let cached = Cached {
                token: AccessToken::new(token(i)),
                fresh_until: Instant::now() + Duration::from_secs(3600),
            };
            cache.insert(key, cached);
            cache.run_pending_tasks();
        }
    }

    #[test]
    fn the_cache_is_bounded_in_bytes_and_in_entries() {
        // Tokens of 100 KiB (an endpoint may answer up to 64 KiB, a subject
        // token is as long as the verifier allows): 100 of them are 10 MiB.
        let exchange = TokenExchange::builder("https://id.example/token", "c", "s")
            .cache_bytes(1024 * 1024)
            .build()
            .unwrap();
        let cache = exchange.inner.cache.as_ref().unwrap();
        let big = "x".repeat(100 * 1024);
        fill(cache, |i| format!("{big}{i}"));
        let held: usize = cache
            .iter()
            .map(|(k, v)| k.0.as_str().len() + k.1.len() + v.token.as_str().len())
            .sum();
        assert!(held > 0 && held <= 1024 * 1024, "{held} bytes held");

        // Small tokens: the entry bound holds as before.
        let exchange = TokenExchange::builder("https://id.example/token", "c", "s")
            .cache_entries(10)
            .build()
            .unwrap();
        let cache = exchange.inner.cache.as_ref().unwrap();
        fill(cache, |i| format!("token-{i}"));
        let count = cache.iter().count();
        assert!(count > 0 && count <= 10, "{count} entries held");
    }

    fn builder() -> TokenExchangeBuilder {
        TokenExchange::builder("https://id.example/token", "c", "s")
    }

    #[test]
    fn cache_size_off_turns_the_cache_off() {
        let exchange = builder().cache_bytes(CacheSize::Off).build().unwrap();
        assert!(exchange.inner.cache.is_none());
        assert_eq!(exchange.cached(&AccessToken::new("t"), "a"), None);
        assert!(builder().build().unwrap().inner.cache.is_some());
    }

    #[test]
    fn a_zero_cache_is_refused_naming_the_setting() {
        let refused = |b: TokenExchangeBuilder| b.build().unwrap_err().setting();
        assert_eq!(
            refused(builder().cache_entries(0)),
            Some("token_exchange.cache_entries")
        );
        assert_eq!(
            refused(builder().cache_bytes(0)),
            Some("token_exchange.cache_bytes")
        );
        assert_eq!(
            refused(builder().timeout(Duration::ZERO)),
            Some("token_exchange.timeout")
        );
        assert_eq!(
            refused(TokenExchange::builder("https://id.example/token", "", "s")),
            Some("token_exchange.client_id")
        );
        assert_eq!(
            refused(TokenExchange::builder("http://id.example/token", "c", "s")),
            Some("token_exchange.token_url")
        );
        // With the cache off, its entry bound is irrelevant.
        assert!(
            builder()
                .cache_bytes(CacheSize::Off)
                .cache_entries(1)
                .build()
                .is_ok()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_cached_token_is_served_until_the_margin_before_expiry() {
        let exchange = TokenExchange::builder("https://id.example/token", "c", "s")
            .build()
            .unwrap();
        let cache = exchange.inner.cache.as_ref().unwrap();
        let subject = AccessToken::new("subject");
        cache.insert(
            (subject.clone(), Arc::from("urn:orders")),
            Cached {
                token: AccessToken::new("exchanged"),
                fresh_until: Instant::now() + Duration::from_secs(60),
            },
        );
        assert_eq!(
            exchange.cached(&subject, "urn:orders"),
            Some(AccessToken::new("exchanged"))
        );
        assert_eq!(exchange.cached(&subject, "urn:other"), None, "per audience");
        tokio::time::advance(Duration::from_secs(61)).await;
        assert_eq!(exchange.cached(&subject, "urn:orders"), None);
        assert_eq!(exchange.stats().cache_hits, 1);
    }

    #[tokio::test]
    async fn an_exchange_with_a_dpop_key_obtains_a_token_bound_to_it() {
        use super::super::dpop::test_server::{Options, Server};
        let server = Server::start(Options {
            nonces: true,
            ..Options::default()
        })
        .await;
        let key = crate::outbound::DpopKey::generate_es256().unwrap();
        let exchange = TokenExchange::builder(server.token_url(), "c", "s")
            .dpop(key.clone())
            .build()
            .unwrap();
        let token = exchange
            .exchange(&AccessToken::new("subject"), "urn:orders")
            .await
            .unwrap();
        assert_eq!(
            server.bound_to(token.as_str()).as_deref(),
            Some(key.thumbprint())
        );
        assert_eq!(server.token_requests(), 2, "the nonce retry");
    }
}
