//! [`AttachTokenLayer`]: put a token on every outbound request of a tower
//! client (tonic channels, hyper clients), chosen by an [`OutboundToken`].

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use http::header::AUTHORIZATION;
use http::{Request, Response};
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use super::dpop::{DPOP, DpopKey};
use super::{BoxError, OutboundError, OutboundToken};
use crate::layer::AccessToken;

/// Layer that sets `Authorization: Bearer …` on outbound requests, in place
/// of any `Authorization` they had; builds [`AttachToken`]. See the
/// [`outbound`](super) module for an example.
///
/// For [`OutboundToken::forward`] and [`OutboundToken::exchange`], the
/// caller's token is the [`AccessToken`] in the outbound request's
/// extensions: copy it there from the inbound request (for tonic,
/// `request.extensions_mut().insert(token)`). A missing one fails the call
/// with [`OutboundError::NoToken`]; nothing is sent.
///
/// A DPoP-bound token (a source built with a
/// [`DpopKey`](super::DpopKey)) goes as `Authorization: DPoP …` with a
/// `DPoP` proof signed for each request: its method, its URI without query
/// and fragment, the token's hash, a fresh `jti`, and the nonce the server
/// last sent (`DPoP-Nonce` on any answer is remembered per origin). The
/// request's URI must then be absolute (`http://host/path`, as hyper's
/// client wants it); a path alone (a tonic `Channel` adds its origin
/// later) fails with [`OutboundError::Dpop`] and nothing is sent, unless
/// [`dpop_base_url`](Self::dpop_base_url) says where they go. A `401`
/// with `error="use_dpop_nonce"` is returned as it is: the next request
/// carries the new nonce; repeating this one is the caller's choice.
#[derive(Clone, Debug)]
#[must_use]
pub struct AttachTokenLayer {
    policy: OutboundToken,
    base: Option<Arc<str>>,
}

impl AttachTokenLayer {
    /// Attach the token `policy` chooses.
    pub fn new(policy: OutboundToken) -> Self {
        Self { policy, base: None }
    }

    /// The scheme and authority (`https://orders.internal:8443`) that
    /// requests whose URI is a path alone are sent to: a tonic `Channel`'s
    /// requests carry `/package.Service/Method` and the channel adds its
    /// origin later. The `htu` of their DPoP proofs is this base followed
    /// by the path. A request with an absolute URI is signed for that URI
    /// whatever this says. Only DPoP-bound tokens use it. Defaults to none:
    /// a path-only request with a DPoP-bound token fails with
    /// [`OutboundError::Dpop`].
    pub fn dpop_base_url(mut self, base: impl Into<Arc<str>>) -> Self {
        self.base = Some(base.into());
        self
    }
}

impl<S> Layer<S> for AttachTokenLayer {
    type Service = AttachToken<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AttachToken {
            inner,
            policy: self.policy.clone(),
            base: self.base.clone(),
        }
    }
}

/// The service built by [`AttachTokenLayer`].
#[derive(Clone)]
pub struct AttachToken<S> {
    inner: S,
    policy: OutboundToken,
    base: Option<Arc<str>>,
}

impl<S: fmt::Debug> fmt::Debug for AttachToken<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AttachToken")
            .field("inner", &self.inner)
            .field("policy", &self.policy)
            .field("dpop_base_url", &self.base)
            .finish()
    }
}

impl<S> AttachToken<S> {
    /// Wraps `inner`.
    pub fn new(inner: S, policy: OutboundToken) -> Self {
        Self {
            inner,
            policy,
            base: None,
        }
    }

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwraps the inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

/// Sets the credentials for `token` on `req`; for a DPoP-bound token, the
/// key and the URI whose answer may carry a nonce for the next proof.
fn set<B>(
    req: &mut Request<B>,
    policy: &OutboundToken,
    base: Option<&str>,
    token: &AccessToken,
) -> Result<Option<(DpopKey, String)>, OutboundError> {
    let uri = match (policy.dpop_key(), base) {
        (None, _) => String::new(),
        // SECURITY: the proof names where the request goes: its own
        // absolute URI wins over the configured base.
        (Some(_), Some(base)) if req.uri().scheme().is_none() => {
            format!("{}{}", base.trim_end_matches('/'), req.uri().path())
        }
        (Some(_), _) => req.uri().to_string(),
    };
    let (authorization, proof) = policy.credentials(token, req.method(), &uri)?;
    // SECURITY: `insert` replaces every `Authorization` the request had (a
    // `Basic` credential or another token copied from the inbound request):
    // exactly the chosen token goes downstream; and a `DPoP` proof made for
    // something else never goes along.
    req.headers_mut().insert(AUTHORIZATION, authorization);
    if let Some(proof) = proof {
        req.headers_mut().insert(DPOP, proof);
        Ok(policy.dpop_key().map(|key| (key.clone(), uri)))
    } else {
        req.headers_mut().remove(DPOP);
        Ok(None)
    }
}

type Waiting<T> = Pin<Box<dyn Future<Output = Result<T, BoxError>> + Send>>;

impl<S, B, ResBody> Service<Request<B>> for AttachToken<S>
where
    S: Service<Request<B>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: Send + 'static,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = ResponseFuture<S::Future, S::Response>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        let inbound = req.extensions().get::<AccessToken>();
        match self.policy.ready(inbound) {
            // Fast path: forwarding, or a token already held: no allocation
            // beyond the header values.
            Some(Ok(token)) => match set(&mut req, &self.policy, self.base.as_deref(), &token) {
                Ok(dpop) => ResponseFuture::inner(self.inner.call(req), dpop),
                Err(e) => ResponseFuture::fail(e),
            },
            Some(Err(e)) => ResponseFuture::fail(e),
            None => {
                // Slow path: a token must be fetched. Take the service that
                // was made ready, leave a clone in its place.
                let inbound = inbound.cloned();
                let policy = self.policy.clone();
                let base = self.base.clone();
                let clone = self.inner.clone();
                let mut inner = std::mem::replace(&mut self.inner, clone);
                ResponseFuture::waiting(Box::pin(async move {
                    let token = policy.token(inbound.as_ref()).await?;
                    let dpop = set(&mut req, &policy, base.as_deref(), &token)?;
                    let res = inner.call(req).await.map_err(Into::into)?;
                    if let Some((key, uri)) = dpop {
                        key.observe_response(&uri, res.status(), res.headers());
                    }
                    Ok(res)
                }))
            }
        }
    }
}

pin_project! {
    /// Response future of [`AttachToken`].
    pub struct ResponseFuture<F, T> {
        #[pin]
        state: State<F, T>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F, T> {
        Inner {
            #[pin] future: F,
            // The key and target of a DPoP request: its answer may carry
            // the nonce for the next proof.
            dpop: Option<(DpopKey, String)>,
        },
        Fail { error: Option<OutboundError> },
        Waiting { future: Waiting<T> },
    }
}

impl<F, T> ResponseFuture<F, T> {
    fn inner(future: F, dpop: Option<(DpopKey, String)>) -> Self {
        Self {
            state: State::Inner { future, dpop },
        }
    }

    fn fail(error: OutboundError) -> Self {
        Self {
            state: State::Fail { error: Some(error) },
        }
    }

    fn waiting(future: Waiting<T>) -> Self {
        Self {
            state: State::Waiting { future },
        }
    }
}

impl<F, ResBody, E> Future for ResponseFuture<F, Response<ResBody>>
where
    F: Future<Output = Result<Response<ResBody>, E>>,
    E: Into<BoxError>,
{
    type Output = Result<Response<ResBody>, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            StateProj::Inner { future, dpop } => {
                let res = ready!(future.poll(cx)).map_err(Into::into)?;
                if let Some((key, uri)) = dpop.take() {
                    key.observe_response(&uri, res.status(), res.headers());
                }
                Poll::Ready(Ok(res))
            }
            StateProj::Fail { error } => match error.take() {
                Some(error) => Poll::Ready(Err(error.into())),
                None => Poll::Pending,
            },
            StateProj::Waiting { future } => Poll::Ready(ready!(future.as_mut().poll(cx))),
        }
    }
}

impl<F, T> fmt::Debug for ResponseFuture<F, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use tower::{ServiceExt, service_fn};

    use super::*;

    fn echo_authorization() -> impl Service<
        Request<()>,
        Response = Response<String>,
        Error = Infallible,
        Future = impl Send + 'static,
    > + Clone
    + Send
    + 'static {
        service_fn(|req: Request<()>| async move {
            let auth = req
                .headers()
                .get(AUTHORIZATION)
                .map(|v| v.to_str().unwrap().to_owned())
                .unwrap_or_default();
            Ok::<_, Infallible>(Response::new(auth))
        })
    }

    #[tokio::test]
    async fn forward_puts_the_callers_token_on_the_request() {
        let svc = AttachTokenLayer::new(OutboundToken::forward()).layer(echo_authorization());
        let mut req = Request::new(());
        req.extensions_mut().insert(AccessToken::new("caller"));
        let res = svc.oneshot(req).await.unwrap();
        assert_eq!(res.body(), "Bearer caller");
    }

    #[tokio::test]
    async fn forward_without_a_token_fails_without_calling() {
        let called = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let seen = called.clone();
        let inner = service_fn(move |_: Request<()>| {
            seen.store(true, std::sync::atomic::Ordering::SeqCst);
            async { Ok::<_, Infallible>(Response::new(())) }
        });
        let svc = AttachTokenLayer::new(OutboundToken::forward()).layer(inner);
        let err = svc.oneshot(Request::new(())).await.unwrap_err();
        assert!(
            matches!(
                err.downcast_ref::<OutboundError>(),
                Some(OutboundError::NoToken)
            ),
            "{err}"
        );
        assert!(!called.load(std::sync::atomic::Ordering::SeqCst));
    }

    #[tokio::test]
    async fn a_spoofed_authorization_is_replaced() {
        let svc = AttachTokenLayer::new(OutboundToken::forward()).layer(echo_authorization());
        let mut req = Request::new(());
        req.headers_mut()
            .insert(AUTHORIZATION, "Bearer other".parse().unwrap());
        req.extensions_mut().insert(AccessToken::new("caller"));
        assert_eq!(svc.oneshot(req).await.unwrap().body(), "Bearer caller");
    }

    #[test]
    fn services_and_futures_are_send_sync_static() {
        fn assert_send_sync<T: Send + Sync + 'static>() {}
        fn assert_send<T: Send + 'static>() {}
        assert_send_sync::<AttachTokenLayer>();
        assert_send_sync::<
            AttachToken<tower::util::BoxCloneSyncService<Request<()>, Response<()>, BoxError>>,
        >();
        assert_send::<
            ResponseFuture<std::future::Ready<Result<Response<()>, BoxError>>, Response<()>>,
        >();
    }

    mod dpop {
        use std::convert::Infallible;

        use http::{Method, Response};
        use tower::{ServiceExt, service_fn};

        use super::super::super::dpop::test_server::{Options, Server};
        use super::*;
        use crate::outbound::{ClientCredentials, DpopKey};

        /// A tower client over reqwest: sends the request as it is.
        fn client() -> impl Service<
            Request<()>,
            Response = Response<String>,
            Error = Infallible,
            Future = impl Send + 'static,
        > + Clone
        + Send
        + 'static {
            let http = reqwest::Client::new();
            service_fn(move |req: Request<()>| {
                let http = http.clone();
                async move {
                    let res = http
                        .request(req.method().clone(), req.uri().to_string())
                        .headers(req.headers().clone())
                        .send()
                        .await
                        .unwrap();
                    let mut out = Response::builder().status(res.status());
                    for (name, value) in res.headers() {
                        out = out.header(name, value);
                    }
                    Ok::<_, Infallible>(out.body(res.text().await.unwrap()).unwrap())
                }
            })
        }

        fn policy(issuer: &Server, key: &DpopKey) -> OutboundToken {
            let source = ClientCredentials::builder(issuer.token_url(), "c", "s")
                .dpop(key.clone())
                .build()
                .unwrap();
            OutboundToken::service(source)
        }

        #[tokio::test]
        async fn each_request_carries_its_own_proof_and_the_servers_nonce() {
            let issuer = Server::start(Options::default()).await;
            let api = Server::start(Options {
                nonces: true,
                ..Options::default()
            })
            .await;
            let key = DpopKey::generate_es256().unwrap();
            let policy = policy(&issuer, &key);
            let svc = AttachTokenLayer::new(policy.clone()).layer(client());
            // The resource server trusts the issuer's bindings: its first
            // token is `tok-1`, fetched by the first call (the slow path).
            let token = AccessToken::new("tok-1");
            api.trust(&token, key.thumbprint());

            let call = |method: Method| {
                let svc = svc.clone();
                let uri = format!("{}/resource?page=2#x", api.base);
                async move {
                    let req = Request::builder().method(method).uri(uri).body(()).unwrap();
                    svc.oneshot(req).await.unwrap()
                }
            };
            // First (fetching the token): the resource wants a nonce; the
            // answer is the caller's.
            let res = call(Method::GET).await;
            assert_eq!(res.status(), 401);
            assert!(res.headers().contains_key("dpop-nonce"));
            assert_eq!(policy.token(None).await.unwrap(), token);
            assert_eq!(issuer.token_requests(), 1);
            // Then (the token held) the nonce goes along, in a new proof
            // each time.
            let res = call(Method::GET).await;
            assert_eq!(res.status(), 200, "{}", res.body());
            let res = call(Method::POST).await;
            assert_eq!(res.status(), 200, "{}", res.body());
            let seen = api.seen();
            assert_eq!(seen.len(), 2);
            let ath = crate::dpop::sha256_b64(token.as_str().as_bytes()).unwrap();
            for (claims, htm) in seen.iter().zip(["GET", "POST"]) {
                assert_eq!(claims["htm"], htm);
                assert_eq!(claims["htu"], format!("{}/resource", api.base));
                assert_eq!(claims["ath"], ath.as_str());
                assert!(claims["nonce"].is_string(), "{claims}");
            }
            assert_ne!(seen[0]["jti"], seen[1]["jti"]);
        }

        #[tokio::test]
        async fn a_bound_token_is_not_sent_without_an_absolute_uri() {
            let issuer = Server::start(Options::default()).await;
            let key = DpopKey::generate_es256().unwrap();
            let policy = policy(&issuer, &key);
            let called = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
            let seen = called.clone();
            let inner = service_fn(move |_: Request<()>| {
                seen.store(true, std::sync::atomic::Ordering::SeqCst);
                async { Ok::<_, Infallible>(Response::new(())) }
            });
            let svc = AttachTokenLayer::new(policy).layer(inner);
            // A tonic Channel's requests carry the path only.
            let req = Request::post("/orders.v1.Orders/GetOrder")
                .body(())
                .unwrap();
            let err = svc.oneshot(req).await.unwrap_err();
            assert!(
                matches!(
                    err.downcast_ref::<OutboundError>(),
                    Some(OutboundError::Dpop { .. })
                ),
                "{err}"
            );
            assert!(!called.load(std::sync::atomic::Ordering::SeqCst));
        }

        #[tokio::test]
        async fn path_only_requests_are_signed_for_the_configured_base() {
            let issuer = Server::start(Options::default()).await;
            let api = Server::start(Options::default()).await;
            let key = DpopKey::generate_es256().unwrap();
            let policy = policy(&issuer, &key);
            let token = policy.token(None).await.unwrap();
            api.trust(&token, key.thumbprint());
            // What a tonic Channel does below the layer: add its origin.
            let origin = api.base.clone();
            let channel = tower::ServiceBuilder::new()
                .map_request(move |mut req: Request<()>| {
                    *req.uri_mut() = format!("{origin}{}", req.uri()).parse().unwrap();
                    req
                })
                .service(client());
            let svc = AttachTokenLayer::new(policy)
                .dpop_base_url(format!("{}/", api.base))
                .layer(channel);
            let req = Request::post("/resource").body(()).unwrap();
            let res = svc.oneshot(req).await.unwrap();
            assert_eq!(res.status(), 200, "{}", res.body());
            assert_eq!(api.seen()[0]["htu"], format!("{}/resource", api.base));
        }
    }
}
