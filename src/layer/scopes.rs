//! [`RequireScopesLayer`]: refuse requests whose verified token lacks the
//! scopes a route needs (403 `insufficient_scope`, gRPC `PERMISSION_DENIED`).
//!
//! `RequireScopes::all([…])` and `RequireScopes::any([…])` are shorthands for
//! the layer's constructors.
//!
//! # Example
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use authlayer::{Claims, RequireScopes};
//! use http::{Request, Response, StatusCode};
//! use tower::{Layer, ServiceExt, service_fn};
//!
//! let svc = RequireScopes::all(["orders:read"])
//!     .layer(service_fn(|_req: Request<()>| async { Ok::<_, ()>(Response::new(())) }));
//!
//! // Normally VerifyLayer puts the claims there.
//! let mut req = Request::new(());
//! req.extensions_mut().insert(Claims::<()>::from_json(r#"{"scope":"orders:reader"}"#)?);
//! let res = svc.oneshot(req).await.unwrap();
//! assert_eq!(res.status(), StatusCode::FORBIDDEN);
//! # Ok(()) }
//! ```

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response};
use tower_layer::Layer;
use tower_service::Service;

use super::{Authenticated, ResponseFuture};
use crate::audit;
use crate::claims::Claims;
use crate::error::{AuthError, Reason};
use crate::reject::{DefaultReject, OnReject, RejectContext};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    All,
    Any,
}

#[derive(Debug)]
struct Required {
    scopes: Vec<String>,
    mode: Mode,
    /// Space-separated, for the challenge and the audit log.
    joined: Arc<str>,
}

/// Layer requiring scopes of the verified token; builds [`RequireScopes`].
/// Put it *inside* [`VerifyLayer`](crate::VerifyLayer) (in axum: `route_layer`
/// on a route, with `VerifyLayer` as a router-wide `layer`). Without
/// `VerifyLayer` in front, every request is answered 500 and the wiring
/// mistake is logged.
///
/// Scopes match exactly: `orders:reader` does not grant `orders:read`.
pub struct RequireScopesLayer<R = DefaultReject> {
    required: Arc<Required>,
    on_reject: R,
}

impl<R: Clone> Clone for RequireScopesLayer<R> {
    fn clone(&self) -> Self {
        Self {
            required: Arc::clone(&self.required),
            on_reject: self.on_reject.clone(),
        }
    }
}

impl<R> fmt::Debug for RequireScopesLayer<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequireScopesLayer")
            .field("required", &self.required)
            .finish_non_exhaustive()
    }
}

impl RequireScopesLayer {
    fn new<I, S>(scopes: I, mode: Mode) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let scopes: Vec<String> = scopes.into_iter().map(Into::into).collect();
        let joined = scopes.join(" ").into();
        Self {
            required: Arc::new(Required {
                scopes,
                mode,
                joined,
            }),
            on_reject: DefaultReject,
        }
    }

    /// Require every one of `scopes`. With no scopes, any verified token passes.
    pub fn all<I, S>(scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self::new(scopes, Mode::All)
    }

    /// Require at least one of `scopes`. With no scopes, nothing passes.
    pub fn any<I, S>(scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self::new(scopes, Mode::Any)
    }
}

impl RequireScopes<()> {
    /// [`RequireScopesLayer::all`]: require every one of `scopes`.
    pub fn all<I, S>(scopes: I) -> RequireScopesLayer
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        RequireScopesLayer::all(scopes)
    }

    /// [`RequireScopesLayer::any`]: require at least one of `scopes`.
    pub fn any<I, S>(scopes: I) -> RequireScopesLayer
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        RequireScopesLayer::any(scopes)
    }
}

impl<R> RequireScopesLayer<R> {
    /// Render rejections with `handler` instead of [`DefaultReject`].
    pub fn on_reject<R2>(self, handler: R2) -> RequireScopesLayer<R2> {
        RequireScopesLayer {
            required: self.required,
            on_reject: handler,
        }
    }

    fn allows(&self, claims: &Claims) -> bool {
        let granted = claims.scopes();
        let mut required = self.required.scopes.iter();
        match self.required.mode {
            Mode::All => required.all(|s| granted.contains(s)),
            Mode::Any => required.any(|s| granted.contains(s)),
        }
    }
}

impl<S, R: Clone> Layer<S> for RequireScopesLayer<R> {
    type Service = RequireScopes<S, R>;

    fn layer(&self, inner: S) -> Self::Service {
        RequireScopes {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service built by [`RequireScopesLayer`].
#[derive(Clone)]
pub struct RequireScopes<S, R = DefaultReject> {
    inner: S,
    layer: RequireScopesLayer<R>,
}

impl<S: fmt::Debug, R> fmt::Debug for RequireScopes<S, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequireScopes")
            .field("inner", &self.inner)
            .field("layer", &self.layer)
            .finish()
    }
}

impl<S, R> RequireScopes<S, R> {
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

impl<S, R, ReqBody, ResBody> Service<Request<ReqBody>> for RequireScopes<S, R>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    R: OnReject<ResBody>,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, ResBody, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        let required = &*self.layer.required.joined;
        let (err, realm) = match (
            req.extensions().get::<Claims>(),
            req.extensions().get::<Authenticated>(),
        ) {
            (Some(claims), _) if self.layer.allows(claims) => {
                audit::record(&req, Some(claims), "allow", "scopes_granted", required);
                return ResponseFuture::inner(self.inner.call(req));
            }
            (Some(claims), marker) => {
                audit::record(&req, Some(claims), "deny", "insufficient_scope", required);
                (
                    AuthError::insufficient_scope(Arc::clone(&self.layer.required.joined)),
                    marker.map(|m| m.refuse(Reason::InsufficientScope)),
                )
            }
            (None, Some(marker)) => {
                // Optional mode let an anonymous request through: ask for a token.
                audit::record(&req, None::<&Claims>, "deny", "missing_token", required);
                (
                    AuthError::new(Reason::MissingToken),
                    Some(marker.refuse(Reason::MissingToken)),
                )
            }
            (None, None) => {
                tracing::error!(
                    required_scopes = required,
                    "RequireScopes found no claims: VerifyLayer must run before it (in axum, \
                     add VerifyLayer with .layer() and RequireScopes with .route_layer())"
                );
                audit::record(&req, None::<&Claims>, "deny", "layer_missing", required);
                (AuthError::new(Reason::LayerMissing), None)
            }
        };
        let response = self.layer.on_reject.on_reject(
            &err,
            &RejectContext::of(&req, realm.as_deref().unwrap_or("")),
        );
        ResponseFuture::reject(response)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tower::ServiceExt;

    type Ready = std::future::Ready<Result<Response<()>, ()>>;
    type Svc = RequireScopes<tower::util::ServiceFn<fn(Request<()>) -> Ready>>;

    fn svc(layer: &RequireScopesLayer) -> Svc {
        fn ok(_: Request<()>) -> Ready {
            std::future::ready(Ok(Response::new(())))
        }
        layer.layer(tower::service_fn(ok as fn(_) -> _))
    }

    fn with_scopes(scope: &str) -> Request<()> {
        let mut req = Request::new(());
        req.extensions_mut()
            .insert(Claims::<()>::from_json(&format!(r#"{{"scope":"{scope}"}}"#)).unwrap());
        req
    }

    #[tokio::test]
    async fn all_requires_every_scope() {
        let res = svc(&RequireScopes::all(["a", "b"]))
            .oneshot(with_scopes("a b c"))
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let res = svc(&RequireScopes::all(["a", "b"]))
            .oneshot(with_scopes("a"))
            .await
            .unwrap();
        assert_eq!(res.status(), 403);
        assert!(
            res.headers()["www-authenticate"]
                .to_str()
                .unwrap()
                .contains("scope=\"a b\"")
        );
    }

    #[tokio::test]
    async fn any_requires_one_scope() {
        let res = svc(&RequireScopes::any(["a", "b"]))
            .oneshot(with_scopes("b"))
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let res = svc(&RequireScopes::any(["a", "b"]))
            .oneshot(with_scopes("c"))
            .await
            .unwrap();
        assert_eq!(res.status(), 403);
    }

    #[tokio::test]
    async fn look_alike_scope_is_403() {
        let res = svc(&RequireScopes::all(["orders:read"]))
            .oneshot(with_scopes("orders:reader orders:rea orders"))
            .await
            .unwrap();
        assert_eq!(res.status(), 403);
    }

    #[tokio::test]
    async fn missing_layer_is_a_wiring_mistake_answered_500() {
        let res = svc(&RequireScopes::all(["a"]))
            .oneshot(Request::new(()))
            .await
            .unwrap();
        assert_eq!(res.status(), 500);
        let mut req = Request::new(());
        req.headers_mut()
            .insert("content-type", "application/grpc".parse().unwrap());
        let res = svc(&RequireScopes::all(["a"])).oneshot(req).await.unwrap();
        assert_eq!(res.headers()["grpc-status"], "13");
    }

    #[tokio::test]
    async fn grpc_insufficient_scope_is_permission_denied() {
        let mut req = with_scopes("x");
        req.headers_mut()
            .insert("content-type", "application/grpc".parse().unwrap());
        let res = svc(&RequireScopes::all(["a"])).oneshot(req).await.unwrap();
        assert_eq!(res.status(), 200);
        assert_eq!(res.headers()["grpc-status"], "7");
    }
}
