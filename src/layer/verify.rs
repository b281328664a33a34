//! [`VerifyLayer`] and its service [`Verify`]: find the credential of a
//! request, hand it to the engine ([`Verifier`]), put the claims into the
//! extensions and keep the request's audit trail until its response is
//! known. Everything about tokens and keys happens in the verifier; the
//! user's documentation is on [`VerifyLayer`].

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::header::{AUTHORIZATION, COOKIE};
use http::{HeaderName, HeaderValue, Request, Response};
use serde::de::DeserializeOwned;
use tower_layer::Layer;
use tower_service::Service;

use super::{AccessToken, Authenticated, ResponseFuture, Scheme, credential};
use crate::audit::{self, Pending, Subject, Trail};
use crate::claims::Claims;
use crate::dpop::{self, Checked};
use crate::error::{AuthError, Reason};
use crate::reject::{self, DefaultReject, DpopFacts, Erased, RejectContext, RejectFn, Render};
use crate::telemetry;
use crate::verifier::{Check, Verifier};

#[derive(Debug, Clone)]
enum TokenSource {
    Cookie(String),
    Header(HeaderName),
}

#[derive(Debug, Clone)]
struct Config {
    verifier: Verifier,
    authorization: bool,
    extra: Vec<TokenSource>,
    optional: bool,
    /// This route's DPoP mode, when it differs from the verifier's.
    dpop_required: Option<bool>,
}

/// Verifies the bearer token of every request and puts its [`Claims`] into
/// the request extensions; builds [`Verify`].
///
/// The token comes from `Authorization: Bearer` (the scheme in any case),
/// or from a cookie or header you name
/// ([`token_from_cookie`](Self::token_from_cookie),
/// [`token_from_header`](Self::token_from_header)); a request carrying two
/// credentials is refused with 400 `invalid_request`. With DPoP on the
/// verifier ([`VerifierBuilder::dpop`](crate::VerifierBuilder::dpop)),
/// `Authorization: DPoP` too: the token is verified as any other (the
/// cache may answer), then the request's `DPoP` proof is checked, on every
/// request, against the token's `cnf.jkt`; a token bound to a key is
/// refused under `Bearer` (see [`Dpop`](crate::Dpop) for the modes and
/// answers, and [`dpop_required`](Self::dpop_required) for a route's). The [`Verifier`]
/// checks it; an accepted request goes on with its [`Claims`] (and, with
/// [`with_claims`](Self::with_claims), your own `Claims<E>`) and the raw
/// [`AccessToken`] in its extensions. A refused one is answered here: 401
/// with an RFC 6750 challenge, or 503 with `Retry-After` when the keys are
/// unavailable (gRPC: `UNAUTHENTICATED`, `UNAVAILABLE`), rendered by
/// [`DefaultReject`] unless you set [`on_reject`](Self::on_reject).
///
/// Authorization goes *inside* this layer: the rule layers
/// ([`RequireScopesLayer`](crate::RequireScopesLayer),
/// [`RequireRolesLayer`](crate::RequireRolesLayer),
/// [`RequirePolicyLayer`](crate::RequirePolicyLayer),
/// [`RequireTenantLayer`](crate::RequireTenantLayer),
/// [`MethodRulesLayer`](crate::MethodRulesLayer),
/// [`RequireActiveLayer`](crate::RequireActiveLayer)) read the claims it
/// put there. In axum, add `VerifyLayer` with `Router::layer` and the rules
/// with `route_layer`.
///
/// `E` is your own claims type (default `()`, see
/// [`with_claims`](Self::with_claims)); `R` renders refusals:
/// [`DefaultReject`], or your handler as a [`RejectFn`] (see
/// [`on_reject`](Self::on_reject)).
///
/// # Example
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use authlayer::{Claims, Verifier, VerifyLayer};
/// use http::{Request, Response, StatusCode};
/// use tower::{ServiceBuilder, ServiceExt, service_fn};
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
/// let service = ServiceBuilder::new()
///     .layer(VerifyLayer::new(verifier))
///     .service(service_fn(|req: Request<String>| async move {
///         let claims = req.extensions().get::<Claims>().cloned();
///         Ok::<_, std::convert::Infallible>(Response::new(format!("{:?}", claims.map(|c| c.sub().map(str::to_owned)))))
///     }));
///
/// // No token: 401 with an RFC 6750 challenge.
/// let res = service.oneshot(Request::new(String::new())).await?;
/// assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
/// assert_eq!(res.headers()["www-authenticate"], r#"Bearer realm="https://id.example""#);
/// # Ok(()) }
/// ```
pub struct VerifyLayer<E = (), R = DefaultReject> {
    config: Arc<Config>,
    on_reject: R,
    _claims: PhantomData<fn() -> E>,
}

impl<E, R: Clone> Clone for VerifyLayer<E, R> {
    fn clone(&self) -> Self {
        Self {
            config: Arc::clone(&self.config),
            on_reject: self.on_reject.clone(),
            _claims: PhantomData,
        }
    }
}

impl<E, R> fmt::Debug for VerifyLayer<E, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifyLayer")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl VerifyLayer {
    /// Verify `Authorization: Bearer` tokens with `verifier`; every request
    /// must carry a valid token.
    pub fn new(verifier: Verifier) -> Self {
        Self {
            config: Arc::new(Config {
                verifier,
                authorization: true,
                extra: Vec::new(),
                optional: false,
                dpop_required: None,
            }),
            on_reject: DefaultReject,
            _claims: PhantomData,
        }
    }
}

impl<E, R> VerifyLayer<E, R> {
    fn config_mut(&mut self) -> &mut Config {
        Arc::make_mut(&mut self.config)
    }

    /// Parse your own claims type `E2` from each token, and put `Claims<E2>`
    /// (and the standard view `Claims`) into the extensions. Defaults to
    /// `()`: the standard view only.
    ///
    /// A token that does not fit `E2` (a field missing, or of another type)
    /// is refused on every route with 401 `invalid_token`
    /// ([`InvalidClaim`](crate::Reason::InvalidClaim)), as Spring's resource
    /// server and Envoy refuse a token whose claims they cannot read: it is
    /// not a token this service can use, and the client's remedy is another
    /// token. The field and the kind of problem are logged at `warn` (never
    /// the value). Make a claim some tokens lack an `Option` or
    /// `#[serde(default)]`.
    pub fn with_claims<E2>(self) -> VerifyLayer<E2, R> {
        VerifyLayer {
            config: self.config,
            on_reject: self.on_reject,
            _claims: PhantomData,
        }
    }

    /// Let requests without any token through, without claims; a present but
    /// invalid token is still refused. For routers mixing public and protected
    /// routes (protect the latter with [`RequireScopesLayer`](crate::RequireScopesLayer)
    /// or the `Claims` extractor). Defaults to `false`.
    #[must_use]
    pub fn optional(mut self, optional: bool) -> Self {
        self.config_mut().optional = optional;
        self
    }

    /// Also accept the token from the cookie `name`. Defaults to none.
    #[must_use]
    pub fn token_from_cookie(mut self, name: impl Into<String>) -> Self {
        self.config_mut()
            .extra
            .push(TokenSource::Cookie(name.into()));
        self
    }

    /// Also accept the token, bare, from the header `name`. Defaults to none.
    #[must_use]
    pub fn token_from_header(mut self, name: HeaderName) -> Self {
        self.config_mut().extra.push(TokenSource::Header(name));
        self
    }

    /// Whether the token is read from `Authorization: Bearer`. With `false`,
    /// that header is ignored and only the sources added with
    /// [`token_from_cookie`](Self::token_from_cookie) and
    /// [`token_from_header`](Self::token_from_header) are read (with none
    /// of them, no request carries a token). Defaults to `true`.
    #[must_use]
    pub fn authorization_header(mut self, enabled: bool) -> Self {
        self.config_mut().authorization = enabled;
        self
    }

    /// Whether this layer's routes require DPoP (`true`: `Bearer` tokens
    /// refused) or allow both schemes (`false`), whatever the verifier's
    /// [`Dpop`](crate::Dpop) mode says. Needs a verifier with
    /// [`dpop`](crate::VerifierBuilder::dpop): without it, `true` refuses
    /// every token ([`DpopRequired`](crate::Reason::DpopRequired)), since
    /// no proof can be checked. Defaults to the verifier's mode.
    #[must_use]
    pub fn dpop_required(mut self, required: bool) -> Self {
        self.config_mut().dpop_required = Some(required);
        self
    }

    /// Render every refusal of the stack with `handler` instead of
    /// [`DefaultReject`]: this layer's own, those of the rule layers
    /// ([`RequireScopesLayer`](crate::RequireScopesLayer) and its siblings)
    /// and [`RequireActiveLayer`](crate::RequireActiveLayer) behind it, and
    /// the answers of the axum `Claims` and `AccessToken` extractors. So one
    /// API answers in one format. Defaults to [`DefaultReject`].
    ///
    /// `handler` returns the response body type of the service the layer
    /// wraps (in axum, `axum::body::Body`; in tonic, `tonic::body::Body`).
    /// A layer between this one and a rule layer that changes the body type
    /// makes that rule layer fall back to the default rendering (logged
    /// once). For gRPC requests ([`RejectContext::grpc`]), answer with a
    /// gRPC status, as [`AuthError::to_response`] does. Put the challenge
    /// of [`AuthError::www_authenticate`] on your HTTP refusals: it is the
    /// one the default sends, with the required `scope` and the verifier's
    /// `resource_metadata`.
    ///
    /// ```
    /// use authlayer::{Verifier, VerifyLayer};
    /// use http::{Response, header};
    ///
    /// # async fn build(verifier: Verifier) {
    /// // RFC 9457 problem details, and the default rendering for gRPC.
    /// let layer = VerifyLayer::new(verifier).on_reject(|err, ctx| {
    ///     if ctx.grpc {
    ///         return err.to_response(ctx);
    ///     }
    ///     let body = format!(
    ///         r#"{{"type":"about:blank","title":"{}","status":{}}}"#,
    ///         err.reason().description(),
    ///         err.status().as_u16(),
    ///     );
    ///     let mut res = Response::new(body);
    ///     *res.status_mut() = err.status();
    ///     res.headers_mut().insert(
    ///         header::CONTENT_TYPE,
    ///         header::HeaderValue::from_static("application/problem+json"),
    ///     );
    ///     if let Ok(challenge) = err.www_authenticate(ctx).parse() {
    ///         res.headers_mut().insert(header::WWW_AUTHENTICATE, challenge);
    ///     }
    ///     res
    /// });
    /// # let _ = layer;
    /// # }
    /// ```
    pub fn on_reject<B, F>(self, handler: F) -> VerifyLayer<E, RejectFn<B>>
    where
        F: Fn(&AuthError, &RejectContext<'_>) -> Response<B> + Send + Sync + 'static,
        B: 'static,
    {
        VerifyLayer {
            config: self.config,
            on_reject: RejectFn::new(handler),
            _claims: PhantomData,
        }
    }
}

impl<S, E, R: Clone> Layer<S> for VerifyLayer<E, R> {
    type Service = Verify<S, E, R>;

    fn layer(&self, inner: S) -> Self::Service {
        Verify {
            inner,
            config: Arc::clone(&self.config),
            on_reject: self.on_reject.clone(),
            _claims: PhantomData,
        }
    }
}

/// The service built by [`VerifyLayer`].
pub struct Verify<S, E = (), R = DefaultReject> {
    inner: S,
    config: Arc<Config>,
    on_reject: R,
    _claims: PhantomData<fn() -> E>,
}

impl<S: Clone, E, R: Clone> Clone for Verify<S, E, R> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            config: Arc::clone(&self.config),
            on_reject: self.on_reject.clone(),
            _claims: PhantomData,
        }
    }
}

impl<S: fmt::Debug, E, R> fmt::Debug for Verify<S, E, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verify")
            .field("inner", &self.inner)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl<S> Verify<S> {
    /// Wraps `inner` with the default settings of [`VerifyLayer::new`].
    pub fn new(inner: S, verifier: Verifier) -> Self {
        VerifyLayer::new(verifier).layer(inner)
    }
}

impl Verify<()> {
    /// A [`VerifyLayer`] for `verifier`; the same as [`VerifyLayer::new`].
    pub fn layer(verifier: Verifier) -> VerifyLayer {
        VerifyLayer::new(verifier)
    }
}

impl<S, E, R> Verify<S, E, R> {
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

/// The credential of a request: the header value it is a slice of, the
/// token, and the scheme it came under.
type Found<'a> = (&'a HeaderValue, &'a str, Scheme);

/// Finds the credential. `Ok(None)`: none at all. `dpop`: whether the
/// `DPoP` scheme is understood.
///
/// SECURITY (RFC 6750 §2, RFC 9449 §7): exactly one credential per
/// request; two (even identical, even under two schemes) are a malformed
/// request, so no component has to pick one. Where DPoP is understood,
/// several `Authorization` values are refused whatever their schemes:
/// `Authorization` is not a list, and a proxy or framework reading
/// another value than this layer must not be possible.
fn extract_token<'a, B>(
    req: &'a Request<B>,
    config: &Config,
    dpop: bool,
) -> Result<Option<Found<'a>>, Reason> {
    let mut found: Option<Found<'a>> = None;
    let mut take = |value: &'a HeaderValue, token: &'a str, scheme| -> Result<(), Reason> {
        if found.replace((value, token, scheme)).is_some() {
            return Err(Reason::MultipleCredentials);
        }
        Ok(())
    };
    if config.authorization {
        let values = req.headers().get_all(AUTHORIZATION);
        let mut count = 0;
        for value in values {
            count += 1;
            if let Some((scheme, token)) = credential(value, dpop)? {
                take(value, token, scheme)?;
            }
        }
        if dpop && count > 1 {
            return Err(Reason::MultipleCredentials);
        }
    }
    for source in &config.extra {
        match source {
            TokenSource::Header(name) => {
                for value in req.headers().get_all(name) {
                    let token = value.to_str().map_err(|_| Reason::Malformed)?.trim();
                    if !token.is_empty() {
                        take(value, token, Scheme::Bearer)?;
                    }
                }
            }
            TokenSource::Cookie(name) => {
                for value in req.headers().get_all(COOKIE) {
                    let Ok(text) = value.to_str() else { continue };
                    for pair in text.split(';') {
                        if let Some((k, v)) = pair.trim().split_once('=')
                            && k == name
                            && !v.is_empty()
                        {
                            take(value, v, Scheme::Bearer)?;
                        }
                    }
                }
            }
        }
    }
    Ok(found)
}

/// With the default rendering: any response body with a `Default` (axum's
/// and tonic's bodies both have one).
impl<S, E, ReqBody, ResBody> Service<Request<ReqBody>> for Verify<S, E, DefaultReject>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: 'static,
    ReqBody: Send + 'static,
    ResBody: Default + 'static,
    E: DeserializeOwned + Send + Sync + 'static,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, ResBody, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        self.serve(req)
    }
}

/// With your handler ([`VerifyLayer::on_reject`]): the body type it renders.
impl<S, E, ReqBody, ResBody> Service<Request<ReqBody>> for Verify<S, E, RejectFn<ResBody>>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: 'static,
    ReqBody: Send + 'static,
    ResBody: 'static,
    E: DeserializeOwned + Send + Sync + 'static,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, ResBody, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        self.serve(req)
    }
}

impl<S, E, R> Verify<S, E, R> {
    #[allow(clippy::too_many_lines)] // one pass: credential, token, proof, admit
    fn serve<ReqBody, ResBody>(
        &mut self,
        mut req: Request<ReqBody>,
    ) -> ResponseFuture<S::Future, ResBody, S::Error>
    where
        S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
        S::Future: Send + 'static,
        S::Error: 'static,
        ReqBody: Send + 'static,
        ResBody: 'static,
        E: DeserializeOwned + Send + Sync + 'static,
        R: Render<ResBody> + Clone + Send + Sync + 'static,
    {
        let config = &*self.config;
        let verifier = &config.verifier;
        let settings = verifier.dpop();
        let mut facts = DpopFacts {
            required: config
                .dpop_required
                .unwrap_or_else(|| settings.is_some_and(|s| s.required)),
            used: false,
        };
        let (value, token, scheme) = match extract_token(&req, config, settings.is_some()) {
            Ok(Some(found)) => found,
            Ok(None) if config.optional => {
                let trail = Trail::default();
                let pending = Pending::new(
                    Subject::of(&req, None::<&Claims>),
                    "no_token",
                    trail.clone(),
                );
                req.extensions_mut().insert(Authenticated {
                    verifier: verifier.clone(),
                    claims_type: None,
                    trail,
                    on_reject: self.on_reject.erased(),
                    dpop: facts,
                });
                return ResponseFuture::audited(self.inner.call(req), pending);
            }
            Ok(None) => {
                verifier.count_rejection(Reason::MissingToken);
                return self.reject(&req, &AuthError::missing_token(), facts, None);
            }
            Err(reason) => {
                verifier.count_rejection(reason);
                return self.reject(&req, &AuthError::new(reason), facts, None);
            }
        };
        facts.used = scheme == Scheme::Dpop;
        // SECURITY: where DPoP is required, a bearer token is refused before
        // it is even verified.
        if facts.required && scheme == Scheme::Bearer {
            verifier.count_rejection(Reason::DpopRequired);
            let err = AuthError::new(Reason::DpopRequired);
            return self.reject(&req, &err, facts, Some(scheme));
        }
        match verifier.check::<E>(token) {
            Check::Done(Ok(claims)) => match bind(&req, &claims, scheme, token, settings) {
                Bound::Admit(nonce) => {
                    let token = AccessToken::from_value(value, token);
                    let on_reject = self.on_reject.erased();
                    let pending =
                        admit(&mut req, claims, token, verifier, on_reject, facts, scheme);
                    ResponseFuture::audited(self.inner.call(req), pending).with_dpop_nonce(nonce)
                }
                Bound::Refuse(err) => {
                    verifier.count_rejection(err.reason());
                    self.reject(&req, &err, facts, Some(scheme))
                }
                Bound::Store(checked) => {
                    let token = AccessToken::from_value(value, token);
                    let inner = take_ready(&mut self.inner);
                    let verifier = verifier.clone();
                    let on_reject = self.on_reject.clone();
                    ResponseFuture::waiting(Box::pin(async move {
                        let proof = store(checked, &verifier).await;
                        finish(
                            req, claims, token, proof, verifier, on_reject, inner, facts, scheme,
                        )
                        .await
                    }))
                }
            },
            Check::Done(Err(err)) => self.reject(&req, &err, facts, Some(scheme)),
            Check::Wait(wait) => {
                // Slow path: the key is unknown or the token opaque. Take the
                // service that was made ready, leave a clone in its place, and
                // wait (bounded) for the shared refetch or introspection.
                let token = token.to_owned();
                let inner = take_ready(&mut self.inner);
                let verifier = verifier.clone();
                let on_reject = self.on_reject.clone();
                ResponseFuture::waiting(Box::pin(async move {
                    let claims = match verifier.wait::<E>(wait, &token).await {
                        Ok(claims) => claims,
                        Err(err) => {
                            return Ok(render(
                                &req,
                                &err,
                                &verifier,
                                &on_reject,
                                facts,
                                Some(scheme),
                            ));
                        }
                    };
                    let proof = match bind(&req, &claims, scheme, &token, verifier.dpop()) {
                        Bound::Admit(nonce) => Ok(nonce),
                        Bound::Refuse(err) => Err(err),
                        Bound::Store(checked) => store(checked, &verifier).await,
                    };
                    let token = AccessToken::from(token);
                    finish(
                        req, claims, token, proof, verifier, on_reject, inner, facts, scheme,
                    )
                    .await
                }))
            }
        }
    }

    fn reject<B, ResB, F, Er>(
        &self,
        req: &Request<B>,
        err: &AuthError,
        facts: DpopFacts,
        scheme: Option<Scheme>,
    ) -> ResponseFuture<F, ResB, Er>
    where
        R: Render<ResB>,
    {
        ResponseFuture::reject(render(
            req,
            err,
            &self.config.verifier,
            &self.on_reject,
            facts,
            scheme,
        ))
    }
}

/// The service that was made ready, leaving a clone in its place.
fn take_ready<S: Clone>(inner: &mut S) -> S {
    let clone = inner.clone();
    std::mem::replace(inner, clone)
}

/// What the token's binding and the request's proof say, once the token
/// is verified.
enum Bound {
    /// Go on, sending this fresh nonce with the answer.
    Admit(Option<HeaderValue>),
    Refuse(AuthError),
    /// The proof passed every check but the replay store's, which must be awaited.
    Store(Checked),
}

/// Checks the token's key binding against the scheme it came under and,
/// for `DPoP`, the request's proof.
fn bind<B, E>(
    req: &Request<B>,
    claims: &Claims<E>,
    scheme: Scheme,
    token: &str,
    settings: Option<&dpop::Settings>,
) -> Bound {
    let jkt = claims.standard().cnf_jkt.as_deref();
    match (scheme, jkt, settings) {
        // SECURITY (RFC 9449 §7.2): a token bound to a key is refused as a
        // bearer token in every mode, and by a verifier without DPoP, which
        // could not check the binding: otherwise whoever copied it from a
        // log or a proxy could use it without the key.
        //
        // `extract_token` finds no `DPoP` scheme without settings: such a
        // request is the same case.
        (Scheme::Bearer, Some(_), _) | (Scheme::Dpop, Some(_), None) => {
            Bound::Refuse(AuthError::new(Reason::BoundTokenAsBearer))
        }
        (Scheme::Bearer, None, _) => Bound::Admit(None),
        // SECURITY: a proof proves possession of a key; a token not bound
        // to one gains nothing from it, and accepting it under `DPoP` would
        // let a bearer token pass where DPoP is required.
        (Scheme::Dpop, None, _) => Bound::Refuse(AuthError::new(Reason::UnboundDpopToken)),
        (Scheme::Dpop, Some(jkt), Some(settings)) => {
            let refuse = |error: dpop::ProofError| Bound::Refuse(proof_refused(error));
            let Some(uri) = settings.external_uri(req) else {
                tracing::debug!("DPoP: the forwarded headers do not name one origin");
                return refuse(dpop::ProofReason::Htu.into());
            };
            let request = dpop::ProofRequest {
                method: req.method(),
                uri: &uri,
                access_token: Some(token),
                expected_jkt: Some(jkt),
            };
            match dpop::check_now(
                req.headers().get_all(&DPOP),
                &request,
                unix_now(),
                &settings.policy,
            ) {
                dpop::Proof::Done(Ok(info)) => Bound::Admit(nonce_value(info.fresh_nonce)),
                dpop::Proof::Done(Err(error)) => refuse(error),
                dpop::Proof::Store(checked) => Bound::Store(checked),
            }
        }
    }
}

/// The replay store's verdict on a proof `bind` checked otherwise.
async fn store(checked: Checked, verifier: &Verifier) -> Result<Option<HeaderValue>, AuthError> {
    let Some(settings) = verifier.dpop() else {
        return Err(AuthError::new(Reason::DpopUnavailable));
    };
    match dpop::check_store(checked, unix_now(), &settings.policy).await {
        Ok(info) => Ok(nonce_value(info.fresh_nonce)),
        Err(error) => {
            if let Some(detail) = &error.detail {
                tracing::warn!(detail = %detail, "DPoP replay store unavailable: proof refused");
            }
            Err(proof_refused(error))
        }
    }
}

/// The end of the slow path: admit and call the service, or refuse.
#[allow(clippy::too_many_arguments)]
async fn finish<S, E, R, ReqBody, ResBody>(
    mut req: Request<ReqBody>,
    claims: Claims<E>,
    token: AccessToken,
    proof: Result<Option<HeaderValue>, AuthError>,
    verifier: Verifier,
    on_reject: R,
    mut inner: S,
    facts: DpopFacts,
    scheme: Scheme,
) -> Result<Response<ResBody>, S::Error>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    E: Send + Sync + 'static,
    R: Render<ResBody>,
{
    let nonce = match proof {
        Ok(nonce) => nonce,
        Err(err) => {
            verifier.count_rejection(err.reason());
            return Ok(render(
                &req,
                &err,
                &verifier,
                &on_reject,
                facts,
                Some(scheme),
            ));
        }
    };
    let erased = on_reject.erased();
    let mut pending = admit(&mut req, claims, token, &verifier, erased, facts, scheme);
    let mut result = inner.call(req).await;
    if let (Some(nonce), Ok(response)) = (nonce, result.as_mut()) {
        response.headers_mut().insert(&reject::DPOP_NONCE, nonce);
    }
    pending.finish(result.as_ref().ok());
    result
}

/// A refused proof, counted.
fn proof_refused(error: dpop::ProofError) -> AuthError {
    let reason = error.reason();
    telemetry::dpop_proof_refused(
        reason.code(),
        reason == dpop::ProofReason::Replayed,
        reason.kind() == dpop::ProofErrorKind::UseNonce,
    );
    AuthError::from(error)
}

fn nonce_value(nonce: Option<String>) -> Option<HeaderValue> {
    nonce.and_then(|n| HeaderValue::from_str(&n).ok())
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

static DPOP: HeaderName = HeaderName::from_static("dpop");

/// Puts the verified claims into the request; returns its audit record,
/// to be written when the answer is known.
fn admit<B, E: Send + Sync + 'static>(
    req: &mut Request<B>,
    claims: Claims<E>,
    token: AccessToken,
    verifier: &Verifier,
    on_reject: Option<Erased>,
    dpop: DpopFacts,
    scheme: Scheme,
) -> Pending {
    let trail = Trail::of_scheme(scheme.code());
    let pending = Pending::new(
        Subject::of(req, Some(&claims)),
        "valid_token",
        trail.clone(),
    );
    // The raw token, for handlers that call other services on the caller's
    // behalf: shares the header's bytes, no copy.
    let ext = req.extensions_mut();
    ext.insert(token);
    if std::any::TypeId::of::<E>() != std::any::TypeId::of::<()>() {
        ext.insert(claims.to_standard());
    }
    ext.insert(claims);
    ext.insert(Authenticated {
        verifier: verifier.clone(),
        claims_type: Some(std::any::type_name::<E>()),
        trail,
        on_reject,
        dpop,
    });
    pending
}

fn render<B, ResB, R: Render<ResB>>(
    req: &Request<B>,
    err: &AuthError,
    verifier: &Verifier,
    on_reject: &R,
    facts: DpopFacts,
    scheme: Option<Scheme>,
) -> Response<ResB> {
    tracing::debug!(reason = %err, "request refused");
    let ctx = RejectContext::of(req, verifier, facts);
    let response = on_reject.render(err, &ctx);
    let dpop = audit::Dpop {
        scheme: scheme.map(Scheme::code),
        proof: err.proof_code(),
    };
    audit::deny_verify(req, err.reason().code(), dpop, &response);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        // A verifier is not needed to test extraction; build a minimal one.
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let verifier = rt
            .block_on(
                Verifier::builder()
                    .issuer("https://id.example")
                    .jwks_json(r#"{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"k","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}"#)
                    .audience("a")
                    .build(),
            )
            .unwrap();
        Config {
            verifier,
            authorization: true,
            extra: vec![
                TokenSource::Cookie("at".into()),
                TokenSource::Header(HeaderName::from_static("x-token")),
            ],
            optional: false,
            dpop_required: None,
        }
    }

    /// The token `extract_token` finds, without its header value.
    fn token_of<'a>(req: &'a Request<()>, config: &Config) -> Result<Option<&'a str>, Reason> {
        extract_token(req, config, false).map(|found| found.map(|(_, token, _)| token))
    }

    fn req(headers: &[(&str, &str)]) -> Request<()> {
        let mut b = Request::builder();
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(()).unwrap()
    }

    #[test]
    fn bearer_scheme_is_case_insensitive() {
        let c = config();
        for scheme in ["Bearer", "bearer", "BEARER", "bEaReR"] {
            let r = req(&[("authorization", &format!("{scheme} abc"))]);
            assert_eq!(token_of(&r, &c), Ok(Some("abc")));
        }
    }

    #[test]
    fn other_schemes_are_no_token() {
        let c = config();
        let r = req(&[("authorization", "Basic dXNlcjpwdw==")]);
        assert_eq!(token_of(&r, &c), Ok(None));
    }

    #[test]
    fn empty_bearer_is_invalid_request() {
        let c = config();
        assert_eq!(
            token_of(&req(&[("authorization", "Bearer ")]), &c),
            Err(Reason::EmptyBearer)
        );
        assert_eq!(
            token_of(&req(&[("authorization", "Bearer")]), &c),
            Err(Reason::EmptyBearer)
        );
    }

    #[test]
    fn two_credentials_are_refused() {
        let c = config();
        let two_headers = req(&[("authorization", "Bearer a"), ("authorization", "Bearer a")]);
        assert_eq!(token_of(&two_headers, &c), Err(Reason::MultipleCredentials));
        let header_and_cookie = req(&[("authorization", "Bearer a"), ("cookie", "x=1; at=b")]);
        assert_eq!(
            token_of(&header_and_cookie, &c),
            Err(Reason::MultipleCredentials)
        );
    }

    #[test]
    fn authorization_header_false_reads_only_the_other_sources() {
        let layer = VerifyLayer::new(config().verifier)
            .token_from_header(HeaderName::from_static("x-token"))
            .authorization_header(false);
        let c = &layer.config;
        assert_eq!(
            token_of(&req(&[("authorization", "Bearer a")]), c),
            Ok(None)
        );
        let both = req(&[("authorization", "Bearer a"), ("x-token", "b")]);
        assert_eq!(token_of(&both, c), Ok(Some("b")));
    }

    #[test]
    fn cookie_and_custom_header_are_sources() {
        let c = config();
        assert_eq!(
            token_of(&req(&[("cookie", "x=1; at=tok; y=2")]), &c),
            Ok(Some("tok"))
        );
        assert_eq!(token_of(&req(&[("x-token", "tok2")]), &c), Ok(Some("tok2")));
        assert_eq!(token_of(&req(&[("cookie", "att=tok")]), &c), Ok(None));
    }

    #[test]
    fn futures_and_services_are_send_sync_static() {
        fn assert_send_sync<T: Send + Sync + 'static>() {}
        fn assert_send<T: Send + 'static>() {}
        assert_send_sync::<VerifyLayer>();
        assert_send_sync::<VerifyLayer<(), RejectFn<()>>>();
        assert_send_sync::<
            Verify<
                tower::util::BoxCloneSyncService<Request<()>, Response<()>, ()>,
                (),
                RejectFn<()>,
            >,
        >();
        assert_send_sync::<Verify<tower::util::BoxCloneSyncService<Request<()>, Response<()>, ()>>>(
        );
        assert_send::<ResponseFuture<std::future::Ready<Result<Response<()>, ()>>, (), ()>>();
    }

    /// A proof whose nonce is past half its lifetime is accepted, and the
    /// answer carries a fresh nonce; a young nonce gets none.
    #[cfg(feature = "test-util")]
    #[tokio::test]
    async fn an_old_nonce_is_accepted_and_a_fresh_one_sent_with_the_answer() {
        use base64::Engine as _;
        use base64::engine::general_purpose::URL_SAFE_NO_PAD;
        use serde_json::json;
        use tower::{ServiceExt as _, service_fn};

        use crate::test_util::{TestIssuer, kids};
        use crate::{Algorithm, Dpop};

        const SECRET: &[u8] = b"a nonce secret of at least 32 bytes";
        let b64 = |bytes: &[u8]| URL_SAFE_NO_PAD.encode(bytes);
        let sha = |text: &str| {
            b64(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, text.as_bytes()).as_ref())
        };
        let issuer = TestIssuer::new("https://id.example");
        let client = TestIssuer::new("client");
        let jwk = client.jwk(kids::EC).unwrap();
        let jkt = sha(&format!(
            r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
            jwk["x"].as_str().unwrap(),
            jwk["y"].as_str().unwrap()
        ));
        let verifier = Verifier::builder()
            .issuer(issuer.issuer())
            .jwks_json(issuer.jwks_json())
            .audience("a")
            .dpop(
                Dpop::allowed()
                    .public_url("https://api.example")
                    .nonces(SECRET),
            )
            .build()
            .await
            .unwrap();
        let token = issuer
            .token()
            .audience("a")
            .claim("cnf", json!({"jkt": jkt}))
            .sign();
        let service = VerifyLayer::new(verifier).layer(service_fn(|_: Request<()>| async {
            Ok::<_, std::convert::Infallible>(Response::new(()))
        }));
        let now = super::unix_now();
        let keys = dpop::NonceKeys::new(SECRET).unwrap();
        let call = |nonce: String, jti: &str| {
            let header = json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": jwk.clone()});
            let claims = json!({
                "jti": jti, "htm": "GET", "htu": "https://api.example/orders",
                "iat": now, "ath": sha(&token), "nonce": nonce,
            });
            let proof = client
                .sign_raw(
                    header.to_string().as_bytes(),
                    claims.to_string().as_bytes(),
                    kids::EC,
                    Algorithm::ES256,
                )
                .unwrap();
            let req = Request::builder()
                .uri("/orders")
                .header("authorization", format!("DPoP {token}"))
                .header("dpop", proof)
                .body(())
                .unwrap();
            service.clone().oneshot(req)
        };
        let old = keys.issue(now - 200);
        let res = call(old.clone(), "j1").await.unwrap();
        assert_eq!(res.status(), http::StatusCode::OK);
        let fresh = res.headers()["dpop-nonce"].to_str().unwrap().to_owned();
        assert_ne!(fresh, old);
        let res = call(fresh, "j2").await.unwrap();
        assert_eq!(res.status(), http::StatusCode::OK);
        assert!(res.headers().get("dpop-nonce").is_none());
    }
}
