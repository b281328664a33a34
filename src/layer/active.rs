//! [`RequireActiveLayer`] and its service [`RequireActive`]: confirm the
//! verified token at its issuer's introspection endpoint through the
//! verifier (`Verifier::check_active`), which owns the endpoint client and
//! the answer cache. The user's documentation is on [`RequireActiveLayer`].

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::{Request, Response};
use tower_layer::Layer;
use tower_service::Service;

use super::{AccessToken, Authenticated, ResponseFuture, render};
use crate::audit::{self, RuleInfo};
use crate::claims::Claims;
use crate::error::{AuthError, Reason};
use crate::verifier::Check;

/// Confirms that the request's token is still active at its issuer's
/// introspection endpoint (RFC 7662), even a JWT that verified locally:
/// for routes that must honour revocation within seconds. Builds
/// [`RequireActive`].
///
/// Put it *inside* [`VerifyLayer`](crate::VerifyLayer) (in axum:
/// `route_layer`). Answers are cached per token for at most the layer's
/// `max_age`, so a revocation is seen at most that late. The token's issuer
/// must have [`Introspection`](crate::Introspection) configured (else 500:
/// a wiring mistake, logged). An inactive token gets 401 `invalid_token`;
/// an endpoint that is down or slow gets 503 with `Retry-After` (gRPC
/// `UNAVAILABLE`).
///
/// The token confirmed is the one [`VerifyLayer`](crate::VerifyLayer)
/// accepted (from `Authorization`, a cookie or a custom header), never
/// another credential the request also carries. Its refusals are rendered
/// as `VerifyLayer` renders its own (see
/// [`on_reject`](crate::VerifyLayer::on_reject)).
///
/// # Example
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use std::time::Duration;
///
/// use authlayer::{Introspection, RequireActiveLayer, Verifier, VerifyLayer};
/// use http::{Request, Response, StatusCode};
/// use tower::{ServiceBuilder, ServiceExt, service_fn};
///
/// let jwks = r#"{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"k1",
///     "x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}"#;
/// let verifier = Verifier::builder()
///     .issuer("https://id.example")
///     .jwks_json(jwks)
///     .audience("urn:orders")
///     .introspection(Introspection::new("orders", "secret").endpoint("https://id.example/introspect"))
///     .build()
///     .await?;
///
/// // Payments: a revoked token stops working within 5 s.
/// let payments = ServiceBuilder::new()
///     .layer(VerifyLayer::new(verifier))
///     .layer(RequireActiveLayer::new(Duration::from_secs(5)))
///     .service(service_fn(|_: Request<()>| async {
///         Ok::<_, std::convert::Infallible>(Response::new(()))
///     }));
///
/// let res = payments.oneshot(Request::new(())).await?;
/// assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct RequireActiveLayer {
    max_age: Duration,
}

impl RequireActiveLayer {
    /// Accept an introspection answer at most `max_age` old (also capped by
    /// the issuer's [`cache_ttl`](crate::Introspection::cache_ttl));
    /// `Duration::ZERO` asks the endpoint on every request.
    pub fn new(max_age: Duration) -> Self {
        Self { max_age }
    }
}

impl<S> Layer<S> for RequireActiveLayer {
    type Service = RequireActive<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequireActive {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service built by [`RequireActiveLayer`].
#[derive(Clone)]
pub struct RequireActive<S> {
    inner: S,
    layer: RequireActiveLayer,
}

impl<S: fmt::Debug> fmt::Debug for RequireActive<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequireActive")
            .field("inner", &self.inner)
            .field("layer", &self.layer)
            .finish()
    }
}

impl<S> RequireActive<S> {
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

/// The one `Authorization: Bearer` token of the request.
/// The token `VerifyLayer` accepted (from whichever source it reads).
///
/// SECURITY: never read the request's headers again: with a cookie or a
/// custom header as the source, `Authorization` may carry another token,
/// and confirming that one would let a revoked token through.
fn token_of<B>(req: &Request<B>) -> Result<&str, Reason> {
    req.extensions()
        .get::<AccessToken>()
        .map(AccessToken::as_str)
        .ok_or(Reason::MissingToken)
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for RequireActive<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: 'static,
    ReqBody: Send + 'static,
    ResBody: Default + 'static,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, ResBody, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        let (Some(claims), Some(marker)) = (
            req.extensions().get::<Claims>(),
            req.extensions().get::<Authenticated>(),
        ) else {
            // Optional mode let an anonymous request through: ask for a token.
            let (reason, realm) = if let Some(marker) = req.extensions().get::<Authenticated>() {
                (Reason::MissingToken, marker.refuse(Reason::MissingToken))
            } else {
                tracing::error!(
                    "RequireActive found no claims: VerifyLayer must run before it (in axum, \
                     add VerifyLayer with .layer() and RequireActive with .route_layer())"
                );
                (Reason::LayerMissing, Arc::from(""))
            };
            return ResponseFuture::reject(refuse(&req, None, &AuthError::new(reason), &realm));
        };
        let verifier = marker.verifier.clone();
        let token = match token_of(&req) {
            Ok(token) => token,
            Err(reason) => {
                let realm = marker.refuse(reason);
                let claims = claims.clone();
                return ResponseFuture::reject(refuse(
                    &req,
                    Some(&claims),
                    &AuthError::new(reason),
                    &realm,
                ));
            }
        };
        match verifier.check_active(token, claims.iss(), self.layer.max_age) {
            Check::Done(Ok(_)) => {
                if let Some(trail) = req.extensions().get::<Authenticated>().map(|m| &m.trail) {
                    trail.allow(&ACTIVE);
                }
                ResponseFuture::inner(self.inner.call(req))
            }
            Check::Done(Err(err)) => {
                let claims = claims.clone();
                ResponseFuture::reject(refuse(&req, Some(&claims), &err, verifier.realm()))
            }
            Check::Wait(wait) => {
                // Take the service that was made ready, leave a clone in its
                // place, and wait (bounded) for the endpoint.
                let token = token.to_owned();
                let claims = claims.clone();
                let clone = self.inner.clone();
                let mut inner = std::mem::replace(&mut self.inner, clone);
                ResponseFuture::waiting(Box::pin(async move {
                    match verifier.wait::<()>(wait, &token).await {
                        Ok(_) => {
                            if let Some(trail) =
                                req.extensions().get::<Authenticated>().map(|m| &m.trail)
                            {
                                trail.allow(&ACTIVE);
                            }
                            inner.call(req).await
                        }
                        Err(err) => Ok(refuse(&req, Some(&claims), &err, verifier.realm())),
                    }
                }))
            }
        }
    }
}

/// Renders a refusal as the stack does, and records it.
fn refuse<B, ResB: Default + 'static>(
    req: &Request<B>,
    claims: Option<&Claims>,
    err: &AuthError,
    realm: &str,
) -> Response<ResB> {
    tracing::debug!(reason = %err, "request refused: token not confirmed active");
    let marker = req.extensions().get::<Authenticated>();
    let response = render(req, marker, err, realm);
    audit::deny_rule(
        req,
        marker.map(|m| &m.trail),
        claims,
        &ACTIVE,
        err.reason().code(),
        &response,
    );
    response
}

/// What the audit record names when this layer decides.
const ACTIVE: RuleInfo = RuleInfo {
    rule: "active",
    scopes: None,
    roles: None,
};

#[cfg(test)]
mod tests {
    use super::*;

    fn req(headers: &[(&str, &str)]) -> Request<()> {
        let mut b = Request::builder();
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(()).unwrap()
    }

    #[test]
    fn the_token_is_the_one_verify_layer_accepted_never_another_header() {
        let mut req = Request::builder()
            .header("authorization", "Bearer attackers-own-active-token")
            .body(())
            .unwrap();
        // VerifyLayer read the token from a cookie, say.
        assert_eq!(token_of(&req), Err(Reason::MissingToken));
        req.extensions_mut()
            .insert(AccessToken::new("the-verified-token"));
        assert_eq!(token_of(&req), Ok("the-verified-token"));
    }

    #[tokio::test]
    async fn without_verify_layer_it_is_a_wiring_mistake_answered_500() {
        use tower::ServiceExt;
        let svc = RequireActiveLayer::new(Duration::from_secs(5)).layer(tower::service_fn(
            |_: Request<()>| async { Ok::<_, ()>(Response::new(())) },
        ));
        let res = svc
            .oneshot(req(&[("authorization", "Bearer t")]))
            .await
            .unwrap();
        assert_eq!(res.status(), 500);
    }

    #[test]
    fn futures_and_services_are_send_sync_static() {
        fn assert_send_sync<T: Send + Sync + 'static>() {}
        assert_send_sync::<RequireActiveLayer>();
        assert_send_sync::<
            RequireActive<tower::util::BoxCloneSyncService<Request<()>, Response<()>, ()>>,
        >();
    }
}
