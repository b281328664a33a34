//! The rule layers: the private generic [`RequireLayer`] / [`Require`]
//! that apply a [`Rule`] to verified requests, and the `rule_layer!` macro
//! that gives each rule its named public pair (`RequireScopesLayer` builds
//! `RequireScopes<S>`, tower-http style). The user's documentation is on
//! the named layers.

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{HeaderName, Request, Response};
use tower_layer::Layer;
use tower_service::Service;

use super::{Authenticated, ResponseFuture, render};
use crate::audit;
use crate::claims::Claims;
use crate::error::{AuthError, Reason};
use crate::policy::{
    MethodTable, Policy, PolicyRule, RoleRule, Rule, RuleRequest, ScopeRule, TenantRule,
};

/// A [`Rule`] shared by the clones of a rule layer and its services.
pub(crate) struct RequireLayer<P> {
    rule: Arc<P>,
}

impl<P> Clone for RequireLayer<P> {
    fn clone(&self) -> Self {
        Self {
            rule: Arc::clone(&self.rule),
        }
    }
}

impl<P: fmt::Debug> fmt::Debug for RequireLayer<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequireLayer")
            .field("rule", &self.rule)
            .finish()
    }
}

impl<P: Rule> RequireLayer<P> {
    pub(crate) fn new(rule: P) -> Self {
        Self {
            rule: Arc::new(rule),
        }
    }

    fn layer<S>(&self, inner: S) -> Require<S, P> {
        Require {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service every rule layer builds: applies its rule, then calls `inner`.
pub(crate) struct Require<S, P> {
    inner: S,
    layer: RequireLayer<P>,
}

impl<S: Clone, P> Clone for Require<S, P> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            layer: self.layer.clone(),
        }
    }
}

/// One rule layer and the service it builds, named for the rule, tower-http
/// style: `$layer` builds `$service<S>`.
macro_rules! rule_layer {
    (
        $(#[$layer_doc:meta])* $layer:ident,
        $(#[$service_doc:meta])* $service:ident,
        $rule:ty
    ) => {
        $(#[$layer_doc])*
        ///
        /// Its refusals are rendered as [`VerifyLayer`](crate::VerifyLayer)
        /// renders its own: by the handler of
        /// [`on_reject`](crate::VerifyLayer::on_reject) when it has one.
        #[derive(Clone)]
        pub struct $layer(RequireLayer<$rule>);

        impl fmt::Debug for $layer {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_tuple(stringify!($layer)).field(&self.0.rule).finish()
            }
        }

        impl<S> Layer<S> for $layer {
            type Service = $service<S>;

            fn layer(&self, inner: S) -> Self::Service {
                $service(self.0.layer(inner))
            }
        }

        $(#[$service_doc])*
        #[derive(Clone)]
        pub struct $service<S>(Require<S, $rule>);

        impl<S: fmt::Debug> fmt::Debug for $service<S> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($service))
                    .field("inner", &self.0.inner)
                    .field("rule", &self.0.layer.rule)
                    .finish()
            }
        }

        impl<S> $service<S> {
            /// The inner service.
            pub fn get_ref(&self) -> &S {
                &self.0.inner
            }

            /// The inner service, mutably.
            pub fn get_mut(&mut self) -> &mut S {
                &mut self.0.inner
            }

            /// Unwraps the inner service.
            pub fn into_inner(self) -> S {
                self.0.inner
            }
        }

        impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for $service<S>
        where
            S: Service<Request<ReqBody>, Response = Response<ResBody>>,
            ResBody: Default + 'static,
        {
            type Response = Response<ResBody>;
            type Error = S::Error;
            type Future = ResponseFuture<S::Future, ResBody, S::Error>;

            fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
                self.0.poll_ready(cx)
            }

            fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
                self.0.call(req)
            }
        }

        #[cfg(feature = "tonic")]
        impl<S: tonic::server::NamedService> tonic::server::NamedService for $service<S> {
            const NAME: &'static str = S::NAME;
        }
    };
}

rule_layer!(
    /// Refuses verified requests that lack scopes: [`all`](Self::all) or
    /// [`any`](Self::any) of a list, matched exactly (`orders:reader` is not
    /// `orders:read`). Builds [`RequireScopes`].
    ///
    /// Put it *inside* [`VerifyLayer`](crate::VerifyLayer) (in axum:
    /// `route_layer` on a route, with `VerifyLayer` as a router-wide
    /// `layer`). A refusal is 403 `insufficient_scope` naming the scopes
    /// (gRPC `PERMISSION_DENIED`), and is the request's audit record.
    ///
    /// What every rule layer shares: a refusal of another rule is a plain
    /// 403 with a fixed description; an anonymous request (let through by
    /// [`VerifyLayer::optional`](crate::VerifyLayer::optional)) is asked for
    /// a token with 401; without `VerifyLayer` in front, every request is
    /// answered 500 and the wiring mistake is logged. Rules stack: each
    /// layer is one more condition, and the audit record of an allowed
    /// request names what all of them required.
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use authlayer::{Claims, RequireRolesLayer, RequireScopesLayer};
    /// use http::{Request, Response, StatusCode};
    /// use tower::{Layer, ServiceExt, service_fn};
    ///
    /// // `orders:read`, and the role `admin` or `support`.
    /// let svc = RequireScopesLayer::all(["orders:read"])
    ///     .layer(RequireRolesLayer::any(["admin", "support"])
    ///         .layer(service_fn(|_req: Request<()>| async { Ok::<_, ()>(Response::new(())) })));
    ///
    /// // Normally VerifyLayer puts the claims there.
    /// let request = |claims: &str| -> Result<Request<()>, serde_json::Error> {
    ///     let mut req = Request::new(());
    ///     req.extensions_mut().insert(Claims::<()>::from_json(claims)?);
    ///     Ok(req)
    /// };
    /// let support = request(r#"{"scope":"orders:read","roles":["support"]}"#)?;
    /// assert_eq!(svc.clone().oneshot(support).await.unwrap().status(), StatusCode::OK);
    /// let buyer = request(r#"{"scope":"orders:read","roles":["buyer"]}"#)?;
    /// assert_eq!(svc.clone().oneshot(buyer).await.unwrap().status(), StatusCode::FORBIDDEN);
    /// let no_scope = request(r#"{"scope":"orders:write","roles":["admin"]}"#)?;
    /// let res = svc.oneshot(no_scope).await.unwrap();
    /// assert_eq!(res.status(), StatusCode::FORBIDDEN);
    /// assert!(res.headers()["www-authenticate"].to_str()?.contains(r#"scope="orders:read""#));
    /// # Ok(()) }
    /// ```
    RequireScopesLayer,
    /// The service built by [`RequireScopesLayer`].
    RequireScopes,
    ScopeRule
);

rule_layer!(
    /// Refuses verified requests that lack roles: [`all`](Self::all) or
    /// [`any`](Self::any) of a list, matched exactly, read from the claim
    /// the verifier's [`ClaimSources`](crate::ClaimSources) name. Builds
    /// [`RequireRoles`]. A refusal is a plain 403 (gRPC `PERMISSION_DENIED`);
    /// a roles claim of an unexpected shape refuses with
    /// [`ClaimShape`](crate::Reason::ClaimShape). See
    /// [`RequireScopesLayer`] for what every rule layer shares, and an
    /// example with both.
    ///
    /// ```
    /// use authlayer::{ClaimSources, RequireRolesLayer};
    ///
    /// // Keycloak realm or client roles: configure where roles are read
    /// // on the verifier, with `.claims(ClaimSources::keycloak("orders-api"))`.
    /// let admins = RequireRolesLayer::any(["admin", "orders-admin"]);
    /// # let _ = (admins, ClaimSources::keycloak("orders-api"));
    /// ```
    RequireRolesLayer,
    /// The service built by [`RequireRolesLayer`].
    RequireRoles,
    RoleRule
);

rule_layer!(
    /// Refuses verified requests a [`Policy`] does not allow. Builds
    /// [`RequirePolicy`]. A refusal is a plain 403 (gRPC
    /// `PERMISSION_DENIED`) with the reason of the part that failed.
    ///
    /// ```
    /// # fn main() -> Result<(), serde_json::Error> {
    /// use authlayer::{Claims, Policy, RequirePolicyLayer};
    ///
    /// // Admins, or support staff of the tenant `acme`.
    /// let refunds = Policy::any([
    ///     Policy::roles_all(["admin"]),
    ///     Policy::all([Policy::roles_all(["support"]), Policy::tenant_in(["acme"])]),
    /// ]);
    /// let staff = Claims::<()>::from_json(r#"{"roles":["support"],"tenant":"acme"}"#)?;
    /// assert!(refunds.allows(&staff));
    /// let layer = RequirePolicyLayer::new(refunds);
    /// # let _ = layer;
    /// # Ok(()) }
    /// ```
    RequirePolicyLayer,
    /// The service built by [`RequirePolicyLayer`].
    RequirePolicy,
    PolicyRule
);

rule_layer!(
    /// Binds the tenant a request names (a path segment, a header or the
    /// host) to the token's tenant. Builds [`RequireTenant`]. An allowed
    /// request carries the [`CheckedTenant`](crate::CheckedTenant) on to the
    /// handler. A token without a tenant, or naming another one, gets a
    /// plain 403 (gRPC `PERMISSION_DENIED`).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use authlayer::{CheckedTenant, Claims, RequireTenantLayer};
    /// use http::{Request, Response, StatusCode};
    /// use tower::{Layer, ServiceExt, service_fn};
    ///
    /// // `/tenants/{tenant}/orders`: the tenant is segment 1.
    /// let svc = RequireTenantLayer::path_segment(1).layer(service_fn(|req: Request<()>| async move {
    ///     let tenant = req.extensions().get::<CheckedTenant>().map(|t| t.as_str().to_owned());
    ///     Ok::<_, ()>(Response::new(tenant.unwrap_or_default()))
    /// }));
    /// let request = |path: &str| -> Result<Request<()>, Box<dyn std::error::Error>> {
    ///     let mut req = Request::builder().uri(path).body(())?;
    ///     // Normally VerifyLayer puts the claims there.
    ///     req.extensions_mut().insert(Claims::<()>::from_json(r#"{"tenant":"acme"}"#)?);
    ///     Ok(req)
    /// };
    /// let own = svc.clone().oneshot(request("/tenants/acme/orders")?).await.unwrap();
    /// assert_eq!(own.body(), "acme");
    /// let other = svc.oneshot(request("/tenants/globex/orders")?).await.unwrap();
    /// assert_eq!(other.status(), StatusCode::FORBIDDEN);
    /// # Ok(()) }
    /// ```
    RequireTenantLayer,
    /// The service built by [`RequireTenantLayer`].
    RequireTenant,
    TenantRule
);

rule_layer!(
    /// A per-method table of [`Policy`]s for gRPC servers: each method
    /// (`/package.Service/Method`) has its policy, and a method the table
    /// does not name is denied unless a [`default_policy`](Self::default_policy)
    /// is set. Builds [`MethodRules`].
    ///
    /// ```
    /// use authlayer::{MethodRulesLayer, Policy};
    ///
    /// let rules = MethodRulesLayer::new()
    ///     .method("/orders.v1.Orders/GetOrder", Policy::scopes_all(["orders:read"]))
    ///     .method("/orders.v1.Orders/CreateOrder", Policy::scopes_all(["orders:write"]))
    ///     .method("/grpc.health.v1.Health/Check", Policy::allow());
    /// # let _ = rules;
    /// ```
    MethodRulesLayer,
    /// The service built by [`MethodRulesLayer`].
    MethodRules,
    MethodTable
);

impl RequireScopesLayer {
    /// Require every one of `scopes`. With no scopes, any verified token passes.
    pub fn all<I: IntoIterator<Item = S>, S: Into<String>>(scopes: I) -> Self {
        Self(RequireLayer::new(ScopeRule::new(Policy::scopes_all(
            scopes,
        ))))
    }

    /// Require at least one of `scopes`. With no scopes, nothing passes.
    pub fn any<I: IntoIterator<Item = S>, S: Into<String>>(scopes: I) -> Self {
        Self(RequireLayer::new(ScopeRule::new(Policy::scopes_any(
            scopes,
        ))))
    }
}

impl RequireRolesLayer {
    /// Require every one of `roles` (exact match).
    pub fn all<I: IntoIterator<Item = S>, S: Into<String>>(roles: I) -> Self {
        Self(RequireLayer::new(RoleRule::new(Policy::roles_all(roles))))
    }

    /// Require at least one of `roles`. With no roles, nothing passes.
    pub fn any<I: IntoIterator<Item = S>, S: Into<String>>(roles: I) -> Self {
        Self(RequireLayer::new(RoleRule::new(Policy::roles_any(roles))))
    }
}

impl RequirePolicyLayer {
    /// Require `policy`.
    pub fn new(policy: Policy) -> Self {
        Self(RequireLayer::new(PolicyRule::new(policy)))
    }
}

impl MethodRulesLayer {
    /// An empty table: every method is denied until named.
    pub fn new() -> Self {
        Self(RequireLayer::new(MethodTable::default()))
    }

    /// Apply `policy` to the method at `path` (`/package.Service/Method`,
    /// exact match). Naming a method again replaces its policy.
    #[must_use]
    pub fn method(self, path: impl Into<String>, policy: Policy) -> Self {
        Self(RequireLayer::new(self.table().method(path.into(), policy)))
    }

    /// Apply `policy` to every method the table does not name. Defaults to
    /// [`Policy::deny`].
    #[must_use]
    pub fn default_policy(self, policy: Policy) -> Self {
        Self(RequireLayer::new(self.table().default_policy(policy)))
    }

    fn table(self) -> MethodTable {
        Arc::try_unwrap(self.0.rule).unwrap_or_else(|shared| (*shared).clone())
    }
}

impl Default for MethodRulesLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl RequireTenantLayer {
    /// The tenant is the `index`-th path segment (0-based, after the
    /// leading `/`), percent-decoded: for `/tenants/{tenant}/orders`, 1.
    pub fn path_segment(index: usize) -> Self {
        Self(RequireLayer::new(TenantRule::segment(index)))
    }

    /// The tenant is the value of header `name`. Two values are refused
    /// with 400 `invalid_request`.
    pub fn header(name: HeaderName) -> Self {
        Self(RequireLayer::new(TenantRule::header(name)))
    }

    /// The tenant is the first label of the host: `acme.shop.example` names
    /// `acme` (ASCII case-insensitive, port ignored). The host is read from
    /// every place a framework or proxy may take it (`Forwarded` `host=`,
    /// `X-Forwarded-Host`, the URI's authority, `Host`): when those present
    /// disagree, or one lists several hosts that disagree, the request is
    /// refused with 400 `invalid_request`
    /// ([`AmbiguousTenant`](crate::Reason::AmbiguousTenant)).
    pub fn host() -> Self {
        Self(RequireLayer::new(TenantRule::host()))
    }

    /// Binds the tenant to its issuer: the token must also come from
    /// `issuer`, where `{tenantid}` stands for the tenant
    /// (`https://login.microsoftonline.com/{tenantid}/v2.0`), or an exact
    /// issuer name. Call it again to allow several. Needed when you trust
    /// several issuers whose tenants are different namespaces: a tenant is
    /// only a name, and one issuer may name another's customer. Defaults
    /// to any issuer the verifier trusts.
    ///
    /// ```
    /// use authlayer::{RequireTenant, RequireTenantLayer};
    ///
    /// let rule = RequireTenantLayer::host().issued_by("https://login.example/{tenantid}/v2.0");
    /// # let _ = rule;
    /// ```
    #[must_use]
    pub fn issued_by(self, issuer: impl Into<String>) -> Self {
        let rule = Arc::try_unwrap(self.0.rule).unwrap_or_else(|shared| (*shared).clone());
        Self(RequireLayer::new(rule.issued_by(issuer.into())))
    }
}

impl<S, P, ReqBody, ResBody> Service<Request<ReqBody>> for Require<S, P>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    P: Rule,
    ResBody: Default + 'static,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, ResBody, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<ReqBody>) -> Self::Future {
        let claims = req.extensions().get::<Claims>();
        let marker = req.extensions().get::<Authenticated>();
        let view = RuleRequest {
            uri: req.uri(),
            headers: req.headers(),
            extensions: req.extensions(),
            claims_type: marker.and_then(|m| m.claims_type),
        };
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
        let response = render(&req, marker, &err, realm.as_deref().unwrap_or(""));
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

    fn ok(_: Request<()>) -> Ready {
        std::future::ready(Ok(Response::new(())))
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

    async fn status<L>(layer: &L, req: Request<()>) -> Response<()>
    where
        L: Layer<Inner>,
        L::Service: Service<Request<()>, Response = Response<()>, Error = ()>,
    {
        let svc = layer.layer(tower::service_fn(ok as fn(_) -> _));
        svc.oneshot(req).await.unwrap()
    }

    #[tokio::test]
    async fn all_requires_every_scope() {
        let res = status(&RequireScopesLayer::all(["a", "b"]), with_scopes("a b c")).await;
        assert_eq!(res.status(), 200);
        let res = status(&RequireScopesLayer::all(["a", "b"]), with_scopes("a")).await;
        assert_eq!(res.status(), 403);
        let challenge = res.headers()["www-authenticate"].to_str().unwrap();
        assert!(challenge.contains("insufficient_scope"), "{challenge}");
        assert!(challenge.contains("scope=\"a b\""), "{challenge}");
    }

    #[tokio::test]
    async fn any_requires_one_scope() {
        assert_eq!(
            status(&RequireScopesLayer::any(["a", "b"]), with_scopes("b"))
                .await
                .status(),
            200
        );
        assert_eq!(
            status(&RequireScopesLayer::any(["a", "b"]), with_scopes("c"))
                .await
                .status(),
            403
        );
    }

    #[tokio::test]
    async fn look_alike_scope_is_403() {
        let res = status(
            &RequireScopesLayer::all(["orders:read"]),
            with_scopes("orders:reader orders:rea orders"),
        )
        .await;
        assert_eq!(res.status(), 403);
    }

    #[tokio::test]
    async fn missing_role_is_a_plain_403_without_insufficient_scope() {
        let layer = RequireRolesLayer::all(["admin"]);
        let res = status(&layer, with_claims(r#"{"roles":["buyer"]}"#)).await;
        assert_eq!(res.status(), 403);
        let challenge = res.headers()["www-authenticate"].to_str().unwrap();
        assert!(!challenge.contains("error="), "{challenge}");
        assert!(challenge.contains("required role missing"), "{challenge}");
        let res = status(&layer, with_claims(r#"{"roles":["buyer","admin"]}"#)).await;
        assert_eq!(res.status(), 200);
        assert_eq!(
            status(
                &RequireRolesLayer::any(["a", "admin"]),
                with_claims(r#"{"roles":["admin"]}"#)
            )
            .await
            .status(),
            200
        );
    }

    #[tokio::test]
    async fn policy_closures_decide() {
        let layer =
            RequirePolicyLayer::new(Policy::claims("alice only", |c| c.sub() == Some("alice")));
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
        let layer = RequireTenantLayer::path_segment(1);
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
        let res = status(&RequireScopesLayer::all(["a"]), Request::new(())).await;
        assert_eq!(res.status(), 500);
        let mut req = Request::new(());
        req.headers_mut()
            .insert("content-type", "application/grpc".parse().unwrap());
        let res = status(&RequireRolesLayer::all(["a"]), req).await;
        assert_eq!(res.headers()["grpc-status"], "13");
    }

    #[tokio::test]
    async fn grpc_refusals_are_permission_denied() {
        for layer in [RequireScopesLayer::all(["a"])] {
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
        let res = status(&RequireRolesLayer::all(["a"]), req).await;
        assert_eq!(res.headers()["grpc-status"], "7");
    }

    #[test]
    fn services_and_futures_are_send_sync_static() {
        fn check<T: Send + Sync + 'static>() {}
        fn send<T: Send + 'static>() {}
        check::<RequireScopesLayer>();
        check::<RequireScopes<Inner>>();
        check::<RequireRoles<Inner>>();
        check::<RequireTenant<Inner>>();
        check::<MethodRules<Inner>>();
        check::<MethodRulesLayer>();
        send::<<RequirePolicy<Inner> as Service<Request<()>>>::Future>();
    }
}
