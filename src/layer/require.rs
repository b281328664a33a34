//! [`RequireLayer`]: refuse verified requests a [`Rule`] does not allow,
//! and its named forms: [`RequireScopes`], [`RequireRoles`],
//! [`RequirePolicy`], [`RequireTenant`] and, for gRPC, a
//! [`MethodRules`](crate::MethodRules) table.
//!
//! Refusals are 403: `insufficient_scope` when scopes are what is missing,
//! otherwise a plain 403 with a fixed description; gRPC
//! `PERMISSION_DENIED`. An anonymous request (optional mode) is asked for a
//! token (401). Without [`VerifyLayer`](crate::VerifyLayer) in front, every
//! request is answered 500 and the wiring mistake is logged.
//!
//! # Example
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use authlayer::{Claims, RequireRoles, RequireScopes};
//! use http::{Request, Response, StatusCode};
//! use tower::{Layer, ServiceExt, service_fn};
//!
//! let svc = RequireScopes::all(["orders:read"])
//!     .layer(RequireRoles::any(["admin", "support"])
//!         .layer(service_fn(|_req: Request<()>| async { Ok::<_, ()>(Response::new(())) })));
//!
//! // Normally VerifyLayer puts the claims there.
//! let mut req = Request::new(());
//! req.extensions_mut().insert(Claims::<()>::from_json(
//!     r#"{"scope":"orders:read","roles":["buyer"]}"#,
//! )?);
//! let res = svc.oneshot(req).await.unwrap();
//! assert_eq!(res.status(), StatusCode::FORBIDDEN);
//! # Ok(()) }
//! ```

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{HeaderName, Request, Response};
use tower_layer::Layer;
use tower_service::Service;

use super::{Authenticated, ResponseFuture};
use crate::audit;
use crate::claims::Claims;
use crate::error::{AuthError, Reason};
use crate::policy::{
    MethodRules, Policy, PolicyRule, RoleRule, Rule, RuleRequest, ScopeRule, TenantRule,
};
use crate::reject::{DefaultReject, OnReject, RejectContext};

/// Layer applying a [`Rule`] to verified requests; builds [`Require`].
/// Put it *inside* [`VerifyLayer`](crate::VerifyLayer) (in axum:
/// `route_layer` on a route, with `VerifyLayer` as a router-wide `layer`).
pub struct RequireLayer<P, R = DefaultReject> {
    rule: Arc<P>,
    on_reject: R,
}

/// [`RequireLayer`] for scopes: `RequireScopes::all([…])`, `::any([…])`.
pub type RequireScopesLayer<R = DefaultReject> = RequireLayer<ScopeRule, R>;
/// The service built by [`RequireScopesLayer`].
pub type RequireScopes<S, R = DefaultReject> = Require<S, ScopeRule, R>;
/// [`RequireLayer`] for roles: `RequireRoles::all([…])`, `::any([…])`.
pub type RequireRolesLayer<R = DefaultReject> = RequireLayer<RoleRule, R>;
/// The service built by [`RequireRolesLayer`].
pub type RequireRoles<S, R = DefaultReject> = Require<S, RoleRule, R>;
/// [`RequireLayer`] for a [`Policy`]: `RequirePolicy::new(policy)`.
pub type RequirePolicyLayer<R = DefaultReject> = RequireLayer<PolicyRule, R>;
/// The service built by [`RequirePolicyLayer`].
pub type RequirePolicy<S, R = DefaultReject> = Require<S, PolicyRule, R>;
/// [`RequireLayer`] binding the request's tenant to the token's:
/// `RequireTenant::path_segment(n)`, `::header(name)`, `::host()`. An
/// allowed request carries the [`CheckedTenant`](crate::CheckedTenant) on
/// to the handler.
pub type RequireTenantLayer<R = DefaultReject> = RequireLayer<TenantRule, R>;
/// The service built by [`RequireTenantLayer`].
pub type RequireTenant<S, R = DefaultReject> = Require<S, TenantRule, R>;
/// [`RequireLayer`] with a per-method table for gRPC:
/// `RequireLayer::new(MethodRules::new().method(…))`.
pub type MethodRulesLayer<R = DefaultReject> = RequireLayer<MethodRules, R>;

impl<P, R: Clone> Clone for RequireLayer<P, R> {
    fn clone(&self) -> Self {
        Self {
            rule: Arc::clone(&self.rule),
            on_reject: self.on_reject.clone(),
        }
    }
}

impl<P: fmt::Debug, R> fmt::Debug for RequireLayer<P, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequireLayer")
            .field("rule", &self.rule)
            .finish_non_exhaustive()
    }
}

impl<P: Rule> RequireLayer<P> {
    /// A layer applying `rule`.
    pub fn new(rule: P) -> Self {
        Self {
            rule: Arc::new(rule),
            on_reject: DefaultReject,
        }
    }
}

impl<P, R> RequireLayer<P, R> {
    /// Render rejections with `handler` instead of [`DefaultReject`].
    pub fn on_reject<R2>(self, handler: R2) -> RequireLayer<P, R2> {
        RequireLayer {
            rule: self.rule,
            on_reject: handler,
        }
    }
}

impl RequireScopesLayer {
    /// Require every one of `scopes`. With no scopes, any verified token passes.
    pub fn all<I: IntoIterator<Item = S>, S: Into<String>>(scopes: I) -> Self {
        Self::new(ScopeRule::new(Policy::scopes_all(scopes)))
    }

    /// Require at least one of `scopes`. With no scopes, nothing passes.
    pub fn any<I: IntoIterator<Item = S>, S: Into<String>>(scopes: I) -> Self {
        Self::new(ScopeRule::new(Policy::scopes_any(scopes)))
    }
}

impl RequireScopes<()> {
    /// [`RequireScopesLayer::all`]: require every one of `scopes`.
    pub fn all<I: IntoIterator<Item = S>, S: Into<String>>(scopes: I) -> RequireScopesLayer {
        RequireScopesLayer::all(scopes)
    }

    /// [`RequireScopesLayer::any`]: require at least one of `scopes`.
    pub fn any<I: IntoIterator<Item = S>, S: Into<String>>(scopes: I) -> RequireScopesLayer {
        RequireScopesLayer::any(scopes)
    }
}

impl RequireRoles<()> {
    /// Require every one of `roles` (exact match).
    pub fn all<I: IntoIterator<Item = S>, S: Into<String>>(roles: I) -> RequireRolesLayer {
        RequireLayer::new(RoleRule::new(Policy::roles_all(roles)))
    }

    /// Require at least one of `roles`. With no roles, nothing passes.
    pub fn any<I: IntoIterator<Item = S>, S: Into<String>>(roles: I) -> RequireRolesLayer {
        RequireLayer::new(RoleRule::new(Policy::roles_any(roles)))
    }
}

impl RequirePolicy<()> {
    /// Require `policy`.
    #[allow(clippy::new_ret_no_self)] // builds the layer, as `RequireScopes::all` does
    pub fn new(policy: Policy) -> RequirePolicyLayer {
        RequireLayer::new(PolicyRule::new(policy))
    }
}

impl RequireTenant<()> {
    /// The tenant is the `index`-th path segment (0-based, after the
    /// leading `/`), percent-decoded: for `/tenants/{tenant}/orders`, 1.
    pub fn path_segment(index: usize) -> RequireTenantLayer {
        RequireLayer::new(TenantRule::segment(index))
    }

    /// The tenant is the value of header `name`. Two values are refused
    /// with 400 `invalid_request`.
    pub fn header(name: HeaderName) -> RequireTenantLayer {
        RequireLayer::new(TenantRule::header(name))
    }

    /// The tenant is the first label of the host: `acme.shop.example` names
    /// `acme` (ASCII case-insensitive, port ignored). The host is read from
    /// every place a framework or proxy may take it (`Forwarded` `host=`,
    /// `X-Forwarded-Host`, the URI's authority, `Host`): when those present
    /// disagree, or one lists several hosts that disagree, the request is
    /// refused with 400 `invalid_request`
    /// ([`AmbiguousTenant`](crate::Reason::AmbiguousTenant)).
    pub fn host() -> RequireTenantLayer {
        RequireLayer::new(TenantRule::host())
    }
}

impl<R> RequireLayer<TenantRule, R> {
    /// Binds the tenant to its issuer: the token must also come from
    /// `issuer`, where `{tenantid}` stands for the tenant
    /// (`https://login.microsoftonline.com/{tenantid}/v2.0`), or an exact
    /// issuer name. Call it again to allow several. Needed when you trust
    /// several issuers whose tenants are different namespaces: a tenant is
    /// only a name, and one issuer may name another's customer. Defaults
    /// to any issuer the verifier trusts.
    ///
    /// ```
    /// use authlayer::RequireTenant;
    ///
    /// let rule = RequireTenant::host().issued_by("https://login.example/{tenantid}/v2.0");
    /// # let _ = rule;
    /// ```
    #[must_use]
    pub fn issued_by(self, issuer: impl Into<String>) -> Self {
        RequireLayer {
            rule: Arc::new((*self.rule).clone().issued_by(issuer.into())),
            on_reject: self.on_reject,
        }
    }
}

impl<S, P, R: Clone> Layer<S> for RequireLayer<P, R> {
    type Service = Require<S, P, R>;

    fn layer(&self, inner: S) -> Self::Service {
        Require {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service built by [`RequireLayer`].
pub struct Require<S, P, R = DefaultReject> {
    inner: S,
    layer: RequireLayer<P, R>,
}

impl<S: Clone, P, R: Clone> Clone for Require<S, P, R> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            layer: self.layer.clone(),
        }
    }
}

impl<S: fmt::Debug, P: fmt::Debug, R> fmt::Debug for Require<S, P, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Require")
            .field("inner", &self.inner)
            .field("layer", &self.layer)
            .finish()
    }
}

impl<S, P, R> Require<S, P, R> {
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

impl<S, P, R, ReqBody, ResBody> Service<Request<ReqBody>> for Require<S, P, R>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    P: Rule,
    R: OnReject<ResBody>,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, ResBody, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<ReqBody>) -> Self::Future {
        let view = RuleRequest {
            method: req.method(),
            uri: req.uri(),
            headers: req.headers(),
        };
        let claims = req.extensions().get::<Claims>();
        let marker = req.extensions().get::<Authenticated>();
        let (err, info, realm) = match (claims, marker) {
            (Some(claims), marker) => {
                let (decision, info) = self.layer.rule.decide(view, claims);
                match decision {
                    Ok(()) => {
                        if let Some(marker) = marker {
                            marker.trail.allow(info);
                        }
                        if let Some(tenant) = self.layer.rule.checked(claims) {
                            req.extensions_mut().insert(tenant);
                        }
                        return ResponseFuture::inner(self.inner.call(req));
                    }
                    Err(reason) => {
                        let err = match (&info.scopes, reason) {
                            (Some(scopes), Reason::InsufficientScope) => {
                                AuthError::insufficient_scope(Arc::clone(scopes))
                            }
                            _ => AuthError::new(reason),
                        };
                        (err, info, marker.map(|m| m.refuse(reason)))
                    }
                }
            }
            (None, Some(marker)) => {
                // Optional mode let an anonymous request through: ask for a token.
                let info = self.layer.rule.info(view);
                (
                    AuthError::missing_token(),
                    info,
                    Some(marker.refuse(Reason::MissingToken)),
                )
            }
            (None, None) => {
                let info = self.layer.rule.info(view);
                tracing::error!(
                    rule = info.rule,
                    "a Require layer found no claims: VerifyLayer must run before it (in \
                     axum, add VerifyLayer with .layer() and rule layers with .route_layer())"
                );
                (AuthError::new(Reason::LayerMissing), info, None)
            }
        };
        let response = self.layer.on_reject.on_reject(
            &err,
            &RejectContext::of(&req, realm.as_deref().unwrap_or("")),
        );
        audit::deny_rule(
            &req,
            marker.map(|m| &m.trail),
            claims,
            info,
            err.reason().code(),
            &response,
        );
        ResponseFuture::reject(response)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tower::ServiceExt;

    type Ready = std::future::Ready<Result<Response<()>, ()>>;
    type Inner = tower::util::ServiceFn<fn(Request<()>) -> Ready>;

    fn svc<P>(layer: &RequireLayer<P>) -> Require<Inner, P> {
        fn ok(_: Request<()>) -> Ready {
            std::future::ready(Ok(Response::new(())))
        }
        layer.layer(tower::service_fn(ok as fn(_) -> _))
    }

    fn with_claims(json: &str) -> Request<()> {
        let mut req = Request::new(());
        req.extensions_mut()
            .insert(Claims::<()>::from_json(json).unwrap());
        req
    }

    fn with_scopes(scope: &str) -> Request<()> {
        with_claims(&format!(r#"{{"scope":"{scope}"}}"#))
    }

    async fn status<P: Rule>(layer: &RequireLayer<P>, req: Request<()>) -> Response<()> {
        svc(layer).oneshot(req).await.unwrap()
    }

    #[tokio::test]
    async fn all_requires_every_scope() {
        let res = status(&RequireScopes::all(["a", "b"]), with_scopes("a b c")).await;
        assert_eq!(res.status(), 200);
        let res = status(&RequireScopes::all(["a", "b"]), with_scopes("a")).await;
        assert_eq!(res.status(), 403);
        let challenge = res.headers()["www-authenticate"].to_str().unwrap();
        assert!(challenge.contains("insufficient_scope"), "{challenge}");
        assert!(challenge.contains("scope=\"a b\""), "{challenge}");
    }

    #[tokio::test]
    async fn any_requires_one_scope() {
        assert_eq!(
            status(&RequireScopes::any(["a", "b"]), with_scopes("b"))
                .await
                .status(),
            200
        );
        assert_eq!(
            status(&RequireScopes::any(["a", "b"]), with_scopes("c"))
                .await
                .status(),
            403
        );
    }

    #[tokio::test]
    async fn look_alike_scope_is_403() {
        let res = status(
            &RequireScopes::all(["orders:read"]),
            with_scopes("orders:reader orders:rea orders"),
        )
        .await;
        assert_eq!(res.status(), 403);
    }

    #[tokio::test]
    async fn missing_role_is_a_plain_403_without_insufficient_scope() {
        let layer = RequireRoles::all(["admin"]);
        let res = status(&layer, with_claims(r#"{"roles":["buyer"]}"#)).await;
        assert_eq!(res.status(), 403);
        let challenge = res.headers()["www-authenticate"].to_str().unwrap();
        assert!(!challenge.contains("error="), "{challenge}");
        assert!(challenge.contains("required role missing"), "{challenge}");
        let res = status(&layer, with_claims(r#"{"roles":["buyer","admin"]}"#)).await;
        assert_eq!(res.status(), 200);
        assert_eq!(
            status(
                &RequireRoles::any(["a", "admin"]),
                with_claims(r#"{"roles":["admin"]}"#)
            )
            .await
            .status(),
            200
        );
    }

    #[tokio::test]
    async fn policy_closures_decide() {
        let layer = RequirePolicy::new(Policy::claims("alice only", |c| c.sub() == Some("alice")));
        assert_eq!(
            status(&layer, with_claims(r#"{"sub":"alice"}"#))
                .await
                .status(),
            200
        );
        assert_eq!(
            status(&layer, with_claims(r#"{"sub":"bob"}"#))
                .await
                .status(),
            403
        );
    }

    #[tokio::test]
    async fn tenant_binding_refuses_other_and_missing_tenants() {
        let layer = RequireTenant::path_segment(1);
        let at = |json: &str, path: &str| {
            let mut req = with_claims(json);
            *req.uri_mut() = path.parse().unwrap();
            req
        };
        assert_eq!(
            status(&layer, at(r#"{"tenant":"acme"}"#, "/tenants/acme/orders/1"))
                .await
                .status(),
            200
        );
        assert_eq!(
            status(&layer, at(r#"{"tenant":"acme"}"#, "/tenants/evil/orders/1"))
                .await
                .status(),
            403
        );
        assert_eq!(
            status(&layer, at("{}", "/tenants/acme/orders/1"))
                .await
                .status(),
            403
        );
    }

    #[tokio::test]
    async fn missing_layer_is_a_wiring_mistake_answered_500() {
        let res = status(&RequireScopes::all(["a"]), Request::new(())).await;
        assert_eq!(res.status(), 500);
        let mut req = Request::new(());
        req.headers_mut()
            .insert("content-type", "application/grpc".parse().unwrap());
        let res = status(&RequireRoles::all(["a"]), req).await;
        assert_eq!(res.headers()["grpc-status"], "13");
    }

    #[tokio::test]
    async fn grpc_refusals_are_permission_denied() {
        for layer in [RequireScopes::all(["a"])] {
            let mut req = with_scopes("x");
            req.headers_mut()
                .insert("content-type", "application/grpc".parse().unwrap());
            let res = status(&layer, req).await;
            assert_eq!(res.status(), 200);
            assert_eq!(res.headers()["grpc-status"], "7");
        }
        let mut req = with_claims(r#"{"roles":[]}"#);
        req.headers_mut()
            .insert("content-type", "application/grpc".parse().unwrap());
        let res = status(&RequireRoles::all(["a"]), req).await;
        assert_eq!(res.headers()["grpc-status"], "7");
    }

    #[test]
    fn services_and_futures_are_send_sync_static() {
        fn check<T: Send + Sync + 'static>() {}
        fn send<T: Send + 'static>() {}
        check::<Require<Inner, ScopeRule>>();
        check::<Require<Inner, MethodRules>>();
        send::<<Require<Inner, PolicyRule> as Service<Request<()>>>::Future>();
    }
}
