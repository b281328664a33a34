//! Identity across service boundaries: tokens on outbound calls, and the
//! verified identity for backends that do not verify tokens.
//!
//! - [`OutboundToken`] chooses the token an outbound call carries: the
//!   caller's own ([`forward`](OutboundToken::forward)), one exchanged for
//!   the downstream audience ([`exchange`](OutboundToken::exchange), RFC
//!   8693, via [`TokenExchange`]) or the service's own
//!   ([`service`](OutboundToken::service), `client_credentials`, via
//!   [`ClientCredentials`]).
//! - [`AttachTokenLayer`] puts it on every request of a tower client: a
//!   tonic `Channel`, a hyper client.
//! - clients without tower middleware (reqwest): [`OutboundToken::authorize`]
//!   sets the header in a request's `http::HeaderMap` (one call, no
//!   dependency on the client's version);
//!   [`authorize_request`](OutboundToken::authorize_request) also takes the
//!   method and URI, which DPoP-bound tokens need.
//! - [`DpopKey`]: sender-constrained tokens (DPoP, RFC 9449). Give one to
//!   [`ClientCredentialsBuilder::dpop`] or [`TokenExchangeBuilder::dpop`]:
//!   the tokens are bound to the key, and each call carries a proof signed
//!   for it, so a token copied from a log or a proxy is useless alone.
//! - [`IdentityHeadersLayer`] strips inbound `x-auth-*` headers and sets
//!   them from the verified claims, for backends behind a gateway.
//!
//! # Example
//!
//! A handler that calls another service with the caller's token
//! ([`AccessToken`] is what [`VerifyLayer`](crate::VerifyLayer) put into the
//! request):
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
//! use authlayer::AccessToken;
//! use authlayer::outbound::{AttachTokenLayer, OutboundToken};
//! use http::{Request, Response};
//! use tower::{Layer, ServiceExt, service_fn};
//!
//! // The downstream client (a tonic Channel or hyper client in real code).
//! let client = service_fn(|req: Request<()>| async move {
//!     let auth = req.headers()["authorization"].to_str()?.to_owned();
//!     Ok::<_, http::header::ToStrError>(Response::new(auth))
//! });
//! let client = AttachTokenLayer::new(OutboundToken::forward()).layer(client);
//!
//! // In the handler: copy the caller's token onto the outbound request.
//! let caller = AccessToken::new("eyJ.caller.token");
//! let mut outbound = Request::new(());
//! outbound.extensions_mut().insert(caller);
//! let res = client.oneshot(outbound).await?;
//! assert_eq!(res.body(), "Bearer eyJ.caller.token");
//!
//! // With reqwest: the same policy, one call.
//! let http = reqwest::Client::new();
//! let mut request = http.get("http://127.0.0.1:1/orders/1").build()?;
//! OutboundToken::forward()
//!     .authorize(request.headers_mut(), Some(&AccessToken::new("t")))
//!     .await?;
//! # let _ = request;
//! # Ok(()) }
//! ```

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

mod attach;
mod client_credentials;
mod dpop;
mod endpoint;
mod exchange;
mod identity_headers;

pub use attach::{AttachToken, AttachTokenLayer, ResponseFuture};
pub use client_credentials::{ClientCredentials, ClientCredentialsBuilder, ServiceTokenHealth};
pub use dpop::DpopKey;
pub use exchange::{ExchangeStats, TokenExchange, TokenExchangeBuilder};
pub use identity_headers::{IdentityField, IdentityHeaders, IdentityHeadersLayer};

use crate::layer::AccessToken;

/// The error type of [`AttachToken`] (as tower's own layers use it).
pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// RFC 8693 token type of an OAuth access token.
pub(crate) const TOKEN_TYPE_ACCESS: &str = "urn:ietf:params:oauth:token-type:access_token";

/// Why no token could be put on an outbound call. Never contains a token
/// or a secret. (A configuration that cannot work is refused earlier, by
/// the builders' `build()`, with a [`BuildError`](crate::BuildError).)
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OutboundError {
    /// The caller's token was needed but the request has none.
    #[error(
        "no caller token to pass on: the outbound request has no AccessToken extension (copy it from the inbound request, which VerifyLayer gave one)"
    )]
    NoToken,
    /// The token endpoint answered with an OAuth error (RFC 6749 §5.2).
    #[error("the token endpoint refused (HTTP {status}): {code}{}", description.as_ref().map(|d| format!(": {d}")).unwrap_or_default())]
    Refused {
        /// The HTTP status.
        status: u16,
        /// The OAuth `error` code, e.g. `invalid_target`, `invalid_client`.
        code: String,
        /// `error_description`, escaped and shortened.
        description: Option<String>,
    },
    /// The token endpoint could not be reached, or failed (5xx).
    #[error("the token endpoint is unavailable: {reason}")]
    Unavailable {
        /// The cause.
        reason: String,
    },
    /// The token endpoint did not answer in time.
    #[error("the token endpoint did not answer within {after:?}")]
    Timeout {
        /// The configured timeout.
        after: Duration,
    },
    /// No DPoP proof could be made for the request: a DPoP-bound token
    /// without the request's method and absolute URI (use
    /// [`OutboundToken::authorize_request`]), or the key failed to sign.
    /// Nothing is sent: a bound token without its proof is refused anyway.
    #[error("cannot sign a DPoP proof: {reason}")]
    Dpop {
        /// What is missing.
        reason: String,
    },
    /// The token endpoint's answer is not a usable token response.
    #[error("the token endpoint's answer is unusable: {reason}")]
    InvalidResponse {
        /// What is wrong with it.
        reason: String,
    },
}

impl OutboundError {
    /// The OAuth error code of a refusal (`invalid_target`, …).
    pub fn oauth_code(&self) -> Option<&str> {
        match self {
            Self::Refused { code, .. } => Some(code),
            _ => None,
        }
    }
}

/// Which token an outbound call carries: the caller's own
/// ([`forward`](Self::forward)), one exchanged for the downstream audience
/// ([`exchange`](Self::exchange)) or the service's own
/// ([`service`](Self::service)). Cheap to clone.
///
/// Put it on every request of a tower client with [`AttachTokenLayer`], or
/// on one request's headers with [`authorize`](Self::authorize). See the
/// [module](self) for an example of both.
#[derive(Clone)]
pub struct OutboundToken {
    mode: Mode,
}

#[derive(Clone)]
enum Mode {
    Forward,
    Exchange {
        exchange: TokenExchange,
        audience: Arc<str>,
    },
    Service(ClientCredentials),
}

impl fmt::Debug for OutboundToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.mode {
            Mode::Forward => f.write_str("OutboundToken::Forward"),
            Mode::Exchange { audience, .. } => f
                .debug_struct("OutboundToken::Exchange")
                .field("audience", audience)
                .finish_non_exhaustive(),
            Mode::Service(source) => f
                .debug_tuple("OutboundToken::Service")
                .field(source)
                .finish(),
        }
    }
}

impl OutboundToken {
    /// The caller's own token, unchanged. For downstream services that
    /// accept the same audience (or a token meant for several).
    pub fn forward() -> Self {
        Self {
            mode: Mode::Forward,
        }
    }

    /// The caller's token exchanged for one whose audience is `audience`.
    pub fn exchange(exchange: TokenExchange, audience: impl Into<Arc<str>>) -> Self {
        Self {
            mode: Mode::Exchange {
                exchange,
                audience: audience.into(),
            },
        }
    }

    /// The service's own token; the caller's is not used.
    pub fn service(source: ClientCredentials) -> Self {
        Self {
            mode: Mode::Service(source),
        }
    }

    /// The token, if it is at hand without I/O; `None`: [`token`](Self::token)
    /// must fetch it.
    pub(crate) fn ready(
        &self,
        inbound: Option<&AccessToken>,
    ) -> Option<Result<AccessToken, OutboundError>> {
        match &self.mode {
            Mode::Forward => Some(inbound.cloned().ok_or(OutboundError::NoToken)),
            Mode::Exchange { exchange, audience } => match inbound {
                None => Some(Err(OutboundError::NoToken)),
                Some(token) => exchange.cached_for(token, audience).map(Ok),
            },
            Mode::Service(source) => source.current().map(Ok),
        }
    }

    /// The token for an outbound call made on behalf of `inbound` (the
    /// caller's [`AccessToken`]; `None` outside a request).
    pub async fn token(&self, inbound: Option<&AccessToken>) -> Result<AccessToken, OutboundError> {
        match &self.mode {
            Mode::Forward => inbound.cloned().ok_or(OutboundError::NoToken),
            Mode::Exchange { exchange, audience } => {
                let token = inbound.ok_or(OutboundError::NoToken)?;
                exchange.exchange(token, audience).await
            }
            Mode::Service(source) => source.token().await,
        }
    }

    /// The key the chosen tokens are bound to, if they are DPoP-bound.
    pub(crate) fn dpop_key(&self) -> Option<&DpopKey> {
        match &self.mode {
            Mode::Forward => None,
            Mode::Exchange { exchange, .. } => exchange.dpop_key(),
            Mode::Service(source) => source.dpop_key(),
        }
    }

    /// Sets `Authorization: Bearer <token>` (marked sensitive) in
    /// `headers` as their only `Authorization`: the counterpart of
    /// [`AttachTokenLayer`] for clients without tower middleware. Any HTTP
    /// client built on the `http` 1.x types takes it, whichever version of
    /// it you use: with reqwest (0.12 or 0.13, not necessarily the one
    /// authlayer fetches keys with), build the request, then
    /// `authorize(request.headers_mut(), …)` and `execute` it. It takes the
    /// headers rather than a client's request type so that no client's
    /// version is tied to authlayer's.
    ///
    /// DPoP-bound tokens (a source built with a
    /// [`DpopKey`]) need a proof for the very request, so its method and
    /// URI: for them this fails with [`OutboundError::Dpop`] and changes
    /// nothing; use [`authorize_request`](Self::authorize_request).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use authlayer::AccessToken;
    /// use authlayer::outbound::OutboundToken;
    ///
    /// let caller = AccessToken::new("eyJ.caller.token");
    /// let mut headers = http::HeaderMap::new();
    /// // A credential copied from elsewhere does not go along.
    /// headers.insert("authorization", "Basic dXNlcjpwdw==".parse()?);
    /// OutboundToken::forward().authorize(&mut headers, Some(&caller)).await?;
    /// assert_eq!(headers.get_all("authorization").iter().count(), 1);
    /// assert_eq!(headers["authorization"], "Bearer eyJ.caller.token");
    /// assert!(headers["authorization"].is_sensitive());
    /// # Ok(()) }
    /// ```
    pub async fn authorize(
        &self,
        headers: &mut http::HeaderMap,
        inbound: Option<&AccessToken>,
    ) -> Result<(), OutboundError> {
        // SECURITY: a bound token without its proof is refused downstream;
        // say so here rather than send it.
        if self.dpop_key().is_some() {
            return Err(OutboundError::Dpop {
                reason: "the token is DPoP-bound and a proof needs the request's method and URI: use OutboundToken::authorize_request".into(),
            });
        }
        let token = self.token(inbound).await?;
        let (authorization, _) = self.credentials(&token, &http::Method::GET, "")?;
        // SECURITY: exactly the chosen token goes downstream: values the
        // request already had (a `Basic` credential or another token copied
        // from the inbound request) are replaced, not appended to.
        headers.insert(http::header::AUTHORIZATION, authorization);
        Ok(())
    }

    /// Sets the credentials for one request to `uri` (absolute) with
    /// `method` in its `headers`: `Authorization: Bearer <token>`, or for
    /// a DPoP-bound token `Authorization: DPoP <token>` and a `DPoP` proof
    /// made for this request (`htm`, `htu`, `ath`, a fresh `jti`, the
    /// nonce the server last sent). Any `Authorization` or `DPoP` the
    /// headers had is replaced (a Bearer token goes without `DPoP`).
    ///
    /// With reqwest: build the request, then
    /// `authorize_request(request.method(), request.url().as_str(),
    /// request.headers_mut(), …)` and `execute` it. A resource server that
    /// wants a nonce answers `401` with `WWW-Authenticate: DPoP
    /// error="use_dpop_nonce"` and `DPoP-Nonce`: hand the answer to
    /// [`DpopKey::observe_response`], which remembers the nonce for the
    /// next request to that origin and says whether sending this one again
    /// (authorized anew) is worth it; whether a request may be repeated is
    /// yours to decide.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use authlayer::AccessToken;
    /// use authlayer::outbound::OutboundToken;
    ///
    /// let http = reqwest::Client::new();
    /// let mut request = http.get("http://127.0.0.1:1/orders/1").build()?;
    /// let (method, url) = (request.method().clone(), request.url().to_string());
    /// OutboundToken::forward()
    ///     .authorize_request(&method, &url, request.headers_mut(), Some(&AccessToken::new("t")))
    ///     .await?;
    /// assert_eq!(request.headers()["authorization"], "Bearer t");
    /// # Ok(()) }
    /// ```
    pub async fn authorize_request(
        &self,
        method: &http::Method,
        uri: &str,
        headers: &mut http::HeaderMap,
        inbound: Option<&AccessToken>,
    ) -> Result<(), OutboundError> {
        let token = self.token(inbound).await?;
        let (authorization, proof) = self.credentials(&token, method, uri)?;
        // SECURITY: as in `authorize`; and a proof the request carried (made
        // for another token or by another key) never goes along.
        headers.insert(http::header::AUTHORIZATION, authorization);
        match proof {
            Some(proof) => headers.insert(dpop::DPOP, proof),
            None => headers.remove(dpop::DPOP),
        };
        Ok(())
    }

    /// The `Authorization` value for `token` and, for a DPoP-bound one, a
    /// proof for `method` `uri`.
    pub(crate) fn credentials(
        &self,
        token: &AccessToken,
        method: &http::Method,
        uri: &str,
    ) -> Result<(http::HeaderValue, Option<http::HeaderValue>), OutboundError> {
        let unusable = || OutboundError::InvalidResponse {
            reason: "the token cannot be a header value".into(),
        };
        match self.dpop_key() {
            None => Ok((token.bearer_header().ok_or_else(unusable)?, None)),
            Some(key) => {
                let proof = key.proof(method, uri, Some(token))?;
                let mut value = http::HeaderValue::try_from(format!("DPoP {}", token.as_str()))
                    .map_err(|_| unusable())?;
                value.set_sensitive(true);
                Ok((value, Some(proof)))
            }
        }
    }
}

/// A number in `[0, 1)`, different on every call; for jitter, not for secrets.
pub(crate) fn jitter() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    #[allow(clippy::cast_precision_loss)]
    let v = (h.finish() >> 11) as f64 / (1u64 << 53) as f64;
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_name_the_oauth_code_and_nothing_secret() {
        let e = OutboundError::Refused {
            status: 400,
            code: "invalid_target".into(),
            description: Some("audience \"urn:x\" is not available here".into()),
        };
        assert_eq!(e.oauth_code(), Some("invalid_target"));
        assert_eq!(
            e.to_string(),
            "the token endpoint refused (HTTP 400): invalid_target: audience \"urn:x\" is not available here"
        );
    }

    #[tokio::test]
    async fn exchange_without_a_caller_token_is_no_token() {
        let exchange = TokenExchange::builder("https://id.example/token", "c", "s")
            .build()
            .unwrap();
        let policy = OutboundToken::exchange(exchange, "urn:orders");
        assert_eq!(policy.token(None).await, Err(OutboundError::NoToken));
        assert!(matches!(
            policy.ready(None),
            Some(Err(OutboundError::NoToken))
        ));
    }

    #[tokio::test]
    async fn authorize_without_a_token_changes_no_header() {
        let mut headers = http::HeaderMap::new();
        headers.insert("authorization", "Basic dXNlcjpwdw==".parse().unwrap());
        let before = headers.clone();
        let err = OutboundToken::forward()
            .authorize(&mut headers, None)
            .await
            .unwrap_err();
        assert_eq!(err, OutboundError::NoToken);
        assert_eq!(headers, before);
    }

    #[test]
    fn sources_layers_and_services_are_send_sync_static() {
        fn assert_send_sync<T: Send + Sync + 'static>() {}
        assert_send_sync::<OutboundToken>();
        assert_send_sync::<ClientCredentials>();
        assert_send_sync::<TokenExchange>();
        assert_send_sync::<OutboundError>();
        assert_send_sync::<DpopKey>();
        assert_send_sync::<IdentityHeadersLayer>();
        assert_send_sync::<
            IdentityHeaders<
                tower::util::BoxCloneSyncService<http::Request<()>, http::Response<()>, ()>,
            >,
        >();
    }

    #[test]
    fn jitter_is_in_unit_interval() {
        for _ in 0..100 {
            let j = jitter();
            assert!((0.0..1.0).contains(&j));
        }
    }

    mod dpop {
        use super::super::dpop::test_server::{Options, Server};
        use super::*;

        #[tokio::test]
        async fn authorize_refuses_a_bound_token_and_authorize_request_sends_it_with_a_proof() {
            let issuer = Server::start(Options::default()).await;
            let key = DpopKey::generate_es256().unwrap();
            let source = ClientCredentials::builder(issuer.token_url(), "c", "s")
                .dpop(key.clone())
                .build()
                .unwrap();
            let policy = OutboundToken::service(source);

            let mut headers = http::HeaderMap::new();
            headers.insert("authorization", "Basic dXNlcjpwdw==".parse().unwrap());
            let before = headers.clone();
            let err = policy.authorize(&mut headers, None).await.unwrap_err();
            assert!(
                matches!(&err, OutboundError::Dpop { reason } if reason.contains("authorize_request")),
                "{err}"
            );
            assert_eq!(headers, before, "nothing is sent without a proof");

            // reqwest, against a resource that checks the proof.
            let api = Server::start(Options {
                nonces: true,
                ..Options::default()
            })
            .await;
            let token = policy.token(None).await.unwrap();
            api.trust(&token, key.thumbprint());
            let http = reqwest::Client::new();
            let url = format!("{}/resource", api.base);
            let send = || async {
                let mut request = http.put(&url).build().unwrap();
                let (method, url) = (request.method().clone(), request.url().to_string());
                policy
                    .authorize_request(&method, &url, request.headers_mut(), None)
                    .await
                    .unwrap();
                let auth = request.headers()["authorization"].clone();
                assert!(auth.is_sensitive());
                assert_eq!(auth, format!("DPoP {}", token.as_str()).as_str());
                http.execute(request).await.unwrap()
            };
            let res = send().await;
            assert_eq!(res.status(), 401);
            assert!(
                key.observe_response(&url, res.status(), res.headers()),
                "retry with the nonce"
            );
            let res = send().await;
            assert_eq!(res.status(), 200);
            assert_eq!(api.seen()[0]["htm"], "PUT");
        }

        #[tokio::test]
        async fn a_bearer_token_goes_without_a_stale_proof() {
            let mut headers = http::HeaderMap::new();
            headers.insert("dpop", "copied.from.inbound".parse().unwrap());
            OutboundToken::forward()
                .authorize_request(
                    &http::Method::GET,
                    "https://api.example/x",
                    &mut headers,
                    Some(&AccessToken::new("t")),
                )
                .await
                .unwrap();
            assert_eq!(headers["authorization"], "Bearer t");
            assert!(!headers.contains_key("dpop"));
        }
    }
}
