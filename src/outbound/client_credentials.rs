//! [`ClientCredentials`]: the service's own token (RFC 6749 §4.4), cached
//! and renewed ahead of expiry by a background task. The user's
//! documentation is on the type.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use serde::Serialize;
use tokio::time::Instant;

use super::dpop::DpopKey;
use super::endpoint::{Endpoint, Issued, Names};
use super::{OutboundError, jitter};
use crate::error::BuildError;
use crate::layer::AccessToken;
use crate::telemetry;

/// The renewal loop never wakes sooner than this after its last turn.
const MIN_WAIT: Duration = Duration::from_secs(1);

/// A token endpoint that omits `expires_in` is assumed to issue tokens
/// living this long (RFC 6749 leaves the lifetime to the server).
const ASSUMED_LIFETIME: Duration = Duration::from_secs(60);
/// Retries after failed renewals never wait longer than this.
const MAX_RETRY: Duration = Duration::from_secs(60);

/// The fractions of a token's lifetime [`ClientCredentialsBuilder::renew_at`]
/// accepts: not so early that tokens are renewed all the time, not so late
/// that a slow renewal lets the token lapse.
const RENEW_AT: std::ops::RangeInclusive<f64> = 0.1..=0.95;

/// The settings of the builder, as build errors name them.
const NAMES: Names = Names {
    token_url: "client_credentials.token_url",
    client_id: "client_credentials.client_id",
    timeout: "client_credentials.timeout",
};

/// Builds a [`ClientCredentials`].
#[must_use]
pub struct ClientCredentialsBuilder {
    url: String,
    client_id: String,
    secret: String,
    scope: Option<String>,
    audience: Option<String>,
    renew_at: f64,
    timeout: Duration,
    retry: Duration,
    http: Option<reqwest::Client>,
    allow_http: bool,
    dpop: Option<DpopKey>,
}

impl fmt::Debug for ClientCredentialsBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientCredentialsBuilder")
            .field("url", &self.url)
            .field("client_id", &self.client_id)
            .field("scope", &self.scope)
            .field("audience", &self.audience)
            .finish_non_exhaustive()
    }
}

impl ClientCredentialsBuilder {
    /// The `scope` to request (space-separated). Defaults to none: the
    /// server's default for the client.
    pub fn scope(mut self, scope: impl Into<String>) -> Self {
        self.scope = Some(scope.into());
        self
    }

    /// The `audience` to request (RFC 8693 / RFC 8707 style, as the bundled
    /// issuer accepts it). Defaults to none: the server's default.
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audience = Some(audience.into());
        self
    }

    /// Renew when this fraction of the token's lifetime has passed: from
    /// 0.1 to 0.95, anything else (NaN included) is a build error. Defaults
    /// to 0.8.
    pub fn renew_at(mut self, fraction: f64) -> Self {
        self.renew_at = fraction;
        self
    }

    /// Bound on one request to the token endpoint (connect, send, read).
    /// Not zero. Defaults to 5 s.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Wait before the first retry of a failed renewal; doubled on every
    /// further failure up to 60 s, each wait shortened by up to half at
    /// random (jitter) so that replicas do not retry in step. Retries are at
    /// least 1 s apart whatever this is (zero included). Defaults to 1 s.
    pub fn retry_backoff(mut self, base: Duration) -> Self {
        self.retry = base;
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

    /// The HTTP client to use (proxies, TLS roots). Whatever this client's redirect policy, a token
    /// endpoint answering 3xx is an error: the secret is not sent on.
    /// Give it `redirect(reqwest::redirect::Policy::none())` all the same:
    /// a following client answered 301, 302 or 303 by the endpoint's own
    /// origin makes one bodiless `GET` there, with `Basic` client
    /// credentials, before the answer is refused. Defaults to a client that
    /// follows no redirects.
    pub fn http_client(mut self, client: reqwest::Client) -> Self {
        self.http = Some(client);
        self
    }

    /// Checks the settings and builds the source; no request is made until
    /// the first [`token`](ClientCredentials::token). A value that cannot
    /// work is a [`BuildError`] naming the setting
    /// (`client_credentials.timeout`, …).
    pub fn build(self) -> Result<ClientCredentials, BuildError> {
        // SECURITY (availability): `Duration::mul_f64` panics on NaN, so an
        // unchecked fraction would panic the renewal; out of range, it
        // renews constantly or too late.
        if !RENEW_AT.contains(&self.renew_at) {
            return Err(BuildError::setting_error(
                "client_credentials.renew_at",
                format!(
                    "{} is not a fraction from {} to {} of the token's lifetime",
                    self.renew_at,
                    RENEW_AT.start(),
                    RENEW_AT.end()
                ),
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
        Ok(ClientCredentials {
            inner: Arc::new(Inner {
                endpoint,
                scope: self.scope,
                audience: self.audience,
                renew_at: self.renew_at,
                retry: self.retry,
                current: ArcSwapOption::empty(),
                flight: tokio::sync::Mutex::new(None),
                attempts: AtomicU64::new(0),
                renewer: AtomicBool::new(false),
                renewals: AtomicU64::new(0),
                failures: AtomicU64::new(0),
                consecutive: AtomicU64::new(0),
                last_error: Mutex::new(None),
            }),
        })
    }
}

/// A service's own access token from the `client_credentials` grant.
///
/// Cheap to clone (one `Arc`). The token is fetched on first use, served
/// from memory, and renewed in the background when
/// [`renew_at`](ClientCredentialsBuilder::renew_at) of its lifetime has
/// passed. Fetches are single-flight: concurrent callers share one request.
/// A failed renewal is retried with jittered back-off and shows in
/// [`health`](Self::health); meanwhile the current token is served until
/// it expires. The background task ends when the last clone is dropped.
///
/// Put it on outbound calls with
/// [`OutboundToken::service`](super::OutboundToken::service), or use it as
/// the actor of a [`TokenExchange`](super::TokenExchange).
///
/// # Example
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use authlayer::outbound::ClientCredentials;
///
/// let tokens = ClientCredentials::builder("https://id.example/token", "orders-service", "secret")
///     .scope("inventory:read")
///     .audience("urn:inventory")
///     .build()?; // a BuildError naming the setting to fix
/// let token = tokens.token().await?; // fetched once, then served from memory
/// assert!(tokens.health().ready);
/// # let _ = token; Ok(()) }
/// ```
#[derive(Clone)]
pub struct ClientCredentials {
    inner: Arc<Inner>,
}

struct Inner {
    endpoint: Endpoint,
    scope: Option<String>,
    audience: Option<String>,
    renew_at: f64,
    retry: Duration,
    current: ArcSwapOption<Held>,
    /// Single flight: one request to the endpoint at a time. Holds the
    /// outcome of the last request that failed, with its attempt number.
    flight: tokio::sync::Mutex<Option<(u64, OutboundError)>>,
    /// Requests made to the endpoint so far.
    attempts: AtomicU64,
    renewer: AtomicBool,
    renewals: AtomicU64,
    failures: AtomicU64,
    consecutive: AtomicU64,
    last_error: Mutex<Option<String>>,
}

struct Held {
    token: AccessToken,
    renew_at: Instant,
    /// Not served from here on (a little before the real expiry, so that a
    /// token does not expire in flight).
    usable_until: Instant,
}

impl fmt::Debug for ClientCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientCredentials")
            .field("endpoint", &self.inner.endpoint)
            .field("health", &self.health())
            .finish_non_exhaustive()
    }
}

/// The state of a [`ClientCredentials`] source, for readiness probes and
/// metrics.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ServiceTokenHealth {
    /// Whether a usable token is held now.
    pub ready: bool,
    /// Seconds the held token is still served, if one is held.
    pub expires_in_secs: Option<u64>,
    /// Tokens obtained (first fetch and renewals).
    pub renewals: u64,
    /// Requests to the token endpoint that failed.
    pub renewal_failures: u64,
    /// Failures since the last success: non-zero means the source is
    /// serving an ageing token (or none).
    pub consecutive_failures: u64,
    /// The last failure, if any (never contains a token or the secret).
    pub last_error: Option<String>,
}

impl ClientCredentials {
    /// A source for `client_id` at the token endpoint `token_url`, with
    /// `client_secret` sent as HTTP Basic credentials.
    pub fn builder(
        token_url: impl Into<String>,
        client_id: impl Into<String>,
        client_secret: impl Into<String>,
    ) -> ClientCredentialsBuilder {
        ClientCredentialsBuilder {
            url: token_url.into(),
            client_id: client_id.into(),
            secret: client_secret.into(),
            scope: None,
            audience: None,
            renew_at: 0.8,
            timeout: Duration::from_secs(5),
            retry: Duration::from_secs(1),
            http: None,
            allow_http: false,
            dpop: None,
        }
    }

    /// The current token, without waiting, if one is held and usable.
    pub fn current(&self) -> Option<AccessToken> {
        let now = Instant::now();
        self.inner
            .current
            .load()
            .as_ref()
            .filter(|held| now < held.usable_until)
            .map(|held| held.token.clone())
    }

    /// The current token; fetches one (shared with concurrent callers) if
    /// none is held or it expired.
    pub async fn token(&self) -> Result<AccessToken, OutboundError> {
        if let Some(token) = self.current() {
            return Ok(token);
        }
        let seen = self.inner.attempts.load(Ordering::Acquire);
        let mut flight = self.inner.flight.lock().await;
        // Another caller may have fetched it while this one waited.
        if let Some(token) = self.current() {
            return Ok(token);
        }
        // Or tried and failed: share that answer rather than queue one more
        // request behind it (callers would otherwise wait one timeout each,
        // one after the other, while the endpoint is down).
        if let Some((attempt, err)) = flight.as_ref()
            && *attempt >= seen
        {
            return Err(err.clone());
        }
        let result = self.fetch().await;
        *flight = result
            .as_ref()
            .err()
            .map(|e| (self.inner.attempts.load(Ordering::Acquire) - 1, e.clone()));
        result
    }

    /// The key its tokens are bound to, if they are DPoP-bound.
    pub(crate) fn dpop_key(&self) -> Option<&DpopKey> {
        self.inner.endpoint.dpop()
    }

    /// Where the source stands now.
    pub fn health(&self) -> ServiceTokenHealth {
        let now = Instant::now();
        let held = self.inner.current.load();
        let usable = held.as_ref().filter(|h| now < h.usable_until);
        ServiceTokenHealth {
            ready: usable.is_some(),
            expires_in_secs: usable.map(|h| (h.usable_until - now).as_secs()),
            renewals: self.inner.renewals.load(Ordering::Relaxed),
            renewal_failures: self.inner.failures.load(Ordering::Relaxed),
            consecutive_failures: self.inner.consecutive.load(Ordering::Relaxed),
            last_error: self.inner.last_error.lock().ok().and_then(|e| e.clone()),
        }
    }

    /// One request to the endpoint; the caller holds the flight lock.
    async fn fetch(&self) -> Result<AccessToken, OutboundError> {
        let inner = &self.inner;
        let mut params = vec![("grant_type", "client_credentials")];
        if let Some(scope) = &inner.scope {
            params.push(("scope", scope));
        }
        if let Some(audience) = &inner.audience {
            params.push(("audience", audience));
        }
        let result = inner.endpoint.request(&params).await;
        inner.attempts.fetch_add(1, Ordering::AcqRel);
        match result {
            Ok(issued) => {
                let token = issued.token.clone();
                inner.current.store(Some(Arc::new(self.hold(&issued))));
                inner.renewals.fetch_add(1, Ordering::Relaxed);
                inner.consecutive.store(0, Ordering::Relaxed);
                telemetry::service_token(true);
                self.start_renewer();
                Ok(token)
            }
            Err(e) => {
                inner.failures.fetch_add(1, Ordering::Relaxed);
                inner.consecutive.fetch_add(1, Ordering::Relaxed);
                telemetry::service_token(false);
                if let Ok(mut last) = inner.last_error.lock() {
                    *last = Some(e.to_string());
                }
                tracing::warn!(client_id = %inner.endpoint.client_id(), error = %e, "service token request failed");
                Err(e)
            }
        }
    }

    fn hold(&self, issued: &Issued) -> Held {
        let lifetime = issued.lifetime.unwrap_or(ASSUMED_LIFETIME);
        // Not served in its last tenth (at most 5 s): it must not expire
        // on the way to the downstream service.
        let skew = (lifetime / 10).min(Duration::from_secs(5));
        let usable_until = issued.requested_at + lifetime.saturating_sub(skew);
        Held {
            token: issued.token.clone(),
            // Never later than the token stops being served.
            renew_at: (issued.requested_at + lifetime.mul_f64(self.inner.renew_at))
                .min(usable_until),
            usable_until,
        }
    }

    fn start_renewer(&self) {
        if self.inner.renewer.swap(true, Ordering::AcqRel) {
            return;
        }
        tokio::spawn(renew_loop(Arc::downgrade(&self.inner)));
    }
}

/// Renews ahead of expiry, retrying failures with jittered back-off. Holds
/// only a weak reference while it sleeps: it ends when the source is gone.
async fn renew_loop(weak: Weak<Inner>) {
    let mut failures: u32 = 0;
    loop {
        let wake = {
            let Some(inner) = weak.upgrade() else { return };
            let Some(held) = inner.current.load_full() else {
                return;
            };
            if failures == 0 {
                held.renew_at
            } else {
                let wait = inner
                    .retry
                    .saturating_mul(1_u32 << failures.min(16).saturating_sub(1))
                    .min(MAX_RETRY);
                Instant::now() + wait.mul_f64(1.0 - jitter() * 0.5)
            }
        };
        // SECURITY (hostile or broken endpoint): a token issued with
        // `expires_in: 0`, or a zero back-off, must not turn this loop into
        // a tight one hammering the endpoint.
        tokio::time::sleep_until(wake.max(Instant::now() + MIN_WAIT)).await;
        let Some(inner) = weak.upgrade() else { return };
        let source = ClientCredentials { inner };
        let _flight = source.inner.flight.lock().await;
        // A caller may have fetched a fresh token meanwhile.
        let due = source
            .inner
            .current
            .load()
            .as_ref()
            .is_none_or(|held| Instant::now() >= held.renew_at);
        if !due {
            failures = 0;
            continue;
        }
        match source.fetch().await {
            Ok(_) => failures = 0,
            Err(_) => failures = failures.saturating_add(1),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn builder() -> ClientCredentialsBuilder {
        ClientCredentials::builder("https://id.example/token", "c", "s")
    }

    #[test]
    fn a_renew_fraction_out_of_range_is_refused_not_clamped() {
        for fraction in [2.0, 0.0, 0.05, 0.96, -1.0, f64::NAN, f64::INFINITY] {
            let err = builder().renew_at(fraction).build().unwrap_err();
            assert_eq!(
                err.setting(),
                Some("client_credentials.renew_at"),
                "{fraction}: {err}"
            );
        }
        for fraction in [0.1, 0.5, 0.95] {
            let source = builder().renew_at(fraction).build().unwrap();
            assert!((source.inner.renew_at - fraction).abs() < f64::EPSILON);
        }
    }

    #[test]
    fn values_that_cannot_work_are_build_errors_naming_the_setting() {
        let refused = |b: ClientCredentialsBuilder| b.build().unwrap_err().setting();
        assert_eq!(
            refused(builder().timeout(Duration::ZERO)),
            Some("client_credentials.timeout")
        );
        assert_eq!(
            refused(ClientCredentials::builder(
                "https://id.example/token",
                "",
                "s"
            )),
            Some("client_credentials.client_id")
        );
        let err = ClientCredentials::builder("http://id.example/token", "c", "s")
            .build()
            .unwrap_err();
        assert!(
            matches!(
                &err,
                BuildError::Url {
                    setting: "client_credentials.token_url",
                    ..
                }
            ),
            "{err}"
        );
        assert!(
            ClientCredentials::builder("http://id.example/token", "c", "s")
                .allow_insecure_http(true)
                .build()
                .is_ok()
        );
    }

    #[test]
    fn debug_shows_neither_secret_nor_token() {
        let source = ClientCredentials::builder("https://id.example/token", "c", "hunter2")
            .build()
            .unwrap();
        source.inner.current.store(Some(Arc::new(Held {
            token: AccessToken::new("tok-secret"),
            renew_at: Instant::now(),
            usable_until: Instant::now(),
        })));
        let shown = format!("{source:?}");
        assert!(
            !shown.contains("hunter2") && !shown.contains("tok-secret"),
            "{shown}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_held_token_is_served_until_shortly_before_expiry() {
        let source = ClientCredentials::builder("https://id.example/token", "c", "s")
            .build()
            .unwrap();
        let issued = Issued {
            token: AccessToken::new("t"),
            lifetime: Some(Duration::from_secs(100)),
            requested_at: Instant::now(),
        };
        source
            .inner
            .current
            .store(Some(Arc::new(source.hold(&issued))));
        assert_eq!(source.current(), Some(AccessToken::new("t")));
        tokio::time::advance(Duration::from_secs(94)).await;
        assert!(source.current().is_some());
        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(source.current(), None, "not served in its last 5 s");
        assert!(!source.health().ready);
    }

    mod dpop {
        use super::super::super::dpop::test_server::{Options, Server};
        use super::*;
        use crate::outbound::DpopKey;

        fn source(server: &Server, key: &DpopKey) -> ClientCredentials {
            ClientCredentials::builder(server.token_url(), "c", "s")
                .dpop(key.clone())
                .build()
                .unwrap()
        }

        #[tokio::test]
        async fn the_token_request_carries_a_proof_and_the_token_is_bound_to_the_key() {
            let server = Server::start(Options::default()).await;
            let key = DpopKey::generate_es256().unwrap();
            let token = source(&server, &key).token().await.unwrap();
            assert_eq!(
                server.bound_to(token.as_str()).as_deref(),
                Some(key.thumbprint()),
                "the endpoint checked the proof and bound the token to its key"
            );
        }

        #[tokio::test]
        async fn a_use_dpop_nonce_refusal_is_retried_once_and_the_nonce_remembered() {
            let server = Server::start(Options {
                nonces: true,
                ..Options::default()
            })
            .await;
            let key = DpopKey::generate_es256().unwrap();
            let token = source(&server, &key).token().await.unwrap();
            assert_eq!(
                server.bound_to(token.as_str()).as_deref(),
                Some(key.thumbprint())
            );
            assert_eq!(
                server.token_requests(),
                2,
                "refused for the nonce, then issued"
            );
            // The next request to that server (another source, same key)
            // carries the nonce at once.
            source(&server, &key).token().await.unwrap();
            assert_eq!(server.token_requests(), 3);
        }

        #[tokio::test]
        async fn a_bearer_answer_to_a_dpop_request_is_refused() {
            let server = Server::start(Options {
                token_type: "Bearer",
                ..Options::default()
            })
            .await;
            let key = DpopKey::generate_es256().unwrap();
            let err = source(&server, &key).token().await.unwrap_err();
            assert!(
                matches!(&err, OutboundError::InvalidResponse { reason } if reason.contains("ignored the DPoP proof")),
                "{err}"
            );
            // `dpop` is matched without regard to case.
            let server = Server::start(Options {
                token_type: "dpop",
                ..Options::default()
            })
            .await;
            assert!(source(&server, &key).token().await.is_ok());
        }
    }
}
