//! The layers: [`VerifyLayer`] authenticates every request, and rule layers
//! such as [`RequireScopesLayer`] authorize it from the verified claims.
//!
//! What they share lives here: the marker a verified request carries, and
//! the response future. Rejections are rendered by [`crate::reject`] and
//! recorded by [`crate::audit`].

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use http::{HeaderValue, Request, Response};
use pin_project_lite::pin_project;

use crate::audit::{Pending, Trail};
use crate::error::{AuthError, Reason};
use crate::reject::{self, DpopFacts, Erased, RejectContext};
use crate::verifier::Verifier;

mod access_token;
mod active;
mod require;
mod verify;

pub use access_token::AccessToken;
pub use active::{RequireActive, RequireActiveLayer};
pub use require::{
    MethodRules, MethodRulesLayer, RequirePolicy, RequirePolicyLayer, RequireRoles,
    RequireRolesLayer, RequireScopes, RequireScopesLayer, RequireTenant, RequireTenantLayer,
};
pub use verify::{Verify, VerifyLayer};

/// Marks a request that went through [`VerifyLayer`], with or without claims
/// (optional mode), so later layers can tell "anonymous" from "misordered",
/// challenge with the same realm and count their refusals in the same
/// [`Verifier::metrics`].
#[derive(Debug, Clone)]
pub(crate) struct Authenticated {
    pub(crate) verifier: Verifier,
    /// The claims type `VerifyLayer` was configured with, when it put claims
    /// into the request (`None`: an anonymous request in optional mode).
    #[cfg_attr(not(feature = "axum"), allow(dead_code))] // read by the extractor
    pub(crate) claims_type: Option<&'static str>,
    /// The request's audit record so far, which rule layers add to.
    pub(crate) trail: Trail,
    /// `VerifyLayer`'s rejection handler, when it has one of its own
    /// (`None`: the default rendering), so that every refusal of the stack
    /// is rendered alike.
    pub(crate) on_reject: Option<Erased>,
    /// The request's DPoP facts, for the challenges of later refusals.
    pub(crate) dpop: DpopFacts,
}

impl Authenticated {
    /// Counts a refusal and returns the realm to challenge with.
    pub(crate) fn refuse(&self, reason: Reason) -> Arc<str> {
        self.verifier.count_rejection(reason);
        self.verifier.realm_arc()
    }
}

/// Renders a refusal of a layer behind `VerifyLayer` as the stack does:
/// with `VerifyLayer`'s handler when the request carries one (`marker`),
/// otherwise by default.
pub(crate) fn render<B: Default + 'static, ReqBody>(
    req: &Request<ReqBody>,
    marker: Option<&Authenticated>,
    err: &AuthError,
    realm: &str,
) -> Response<B> {
    let ctx = if let Some(m) = marker {
        RejectContext::of(req, &m.verifier, m.dpop)
    } else {
        let mut ctx = RejectContext::new(realm);
        ctx.grpc = reject::is_grpc(req.headers());
        ctx
    };
    reject::render(marker.and_then(|m| m.on_reject.as_deref()), err, &ctx)
}

/// How a token was presented.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scheme {
    /// `Authorization: Bearer`, or a cookie or header of the user's.
    Bearer,
    /// `Authorization: DPoP`, with a proof in the `DPoP` header.
    Dpop,
}

impl Scheme {
    /// Its name in the audit record.
    pub(crate) fn code(self) -> &'static str {
        match self {
            Scheme::Bearer => "bearer",
            Scheme::Dpop => "dpop",
        }
    }
}

/// The token of an `Authorization` header value, `Bearer` or, when `dpop`,
/// `DPoP` (schemes case-insensitive); `Ok(None)` for another scheme, which
/// is not ours to judge (Basic, or DPoP on a verifier without it).
pub(crate) fn credential(
    value: &HeaderValue,
    dpop: bool,
) -> Result<Option<(Scheme, &str)>, Reason> {
    let value = value.to_str().map_err(|_| Reason::Malformed)?;
    let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
    let scheme = if scheme.eq_ignore_ascii_case("bearer") {
        Scheme::Bearer
    } else if dpop && scheme.eq_ignore_ascii_case("dpop") {
        Scheme::Dpop
    } else {
        return Ok(None);
    };
    let token = rest.trim_matches(' ');
    if token.is_empty() {
        return Err(Reason::EmptyBearer);
    }
    Ok(Some((scheme, token)))
}

pub(crate) type Waiting<B, E> = Pin<Box<dyn Future<Output = Result<Response<B>, E>> + Send>>;

pin_project! {
    /// Response future of [`Verify`], the rule layers' services and [`RequireActive`].
    pub struct ResponseFuture<F, B, E> {
        #[pin]
        state: State<F, B, E>,
        // The allowed request's audit record, written with the answer.
        audit: Option<Pending>,
        // A fresh DPoP nonce for the answer's `DPoP-Nonce` header.
        nonce: Option<HeaderValue>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F, B, E> {
        Inner { #[pin] future: F },
        Reject { response: Option<Response<B>> },
        Waiting { future: Waiting<B, E> },
    }
}

impl<F, B, E> ResponseFuture<F, B, E> {
    pub(crate) fn inner(future: F) -> Self {
        Self {
            state: State::Inner { future },
            audit: None,
            nonce: None,
        }
    }

    pub(crate) fn audited(future: F, audit: Pending) -> Self {
        Self {
            state: State::Inner { future },
            audit: Some(audit),
            nonce: None,
        }
    }

    pub(crate) fn reject(response: Response<B>) -> Self {
        Self {
            state: State::Reject {
                response: Some(response),
            },
            audit: None,
            nonce: None,
        }
    }

    /// Sends `nonce` in the answer's `DPoP-Nonce` header.
    pub(crate) fn with_dpop_nonce(mut self, nonce: Option<HeaderValue>) -> Self {
        self.nonce = nonce;
        self
    }

    pub(crate) fn waiting(future: Waiting<B, E>) -> Self {
        Self {
            state: State::Waiting { future },
            audit: None,
            nonce: None,
        }
    }
}

impl<F, B, E> Future for ResponseFuture<F, B, E>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<B>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        match this.state.project() {
            StateProj::Inner { future } => {
                let mut result = ready!(future.poll(cx));
                if let (Some(nonce), Ok(response)) = (this.nonce.take(), result.as_mut()) {
                    response.headers_mut().insert(&reject::DPOP_NONCE, nonce);
                }
                if let Some(mut audit) = this.audit.take() {
                    audit.finish(result.as_ref().ok());
                }
                Poll::Ready(result)
            }
            StateProj::Reject { response } => match response.take() {
                Some(response) => Poll::Ready(Ok(response)),
                None => Poll::Pending,
            },
            StateProj::Waiting { future } => Poll::Ready(ready!(future.as_mut().poll(cx))),
        }
    }
}

impl<F, B, E> fmt::Debug for ResponseFuture<F, B, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

#[cfg(all(test, feature = "test-util"))]
mod tests {
    use http::{Request, Response, StatusCode};
    use tower::{ServiceBuilder, ServiceExt, service_fn};

    use super::*;
    use crate::test_util::TestIssuer;

    #[tokio::test]
    async fn every_refusal_of_the_layers_is_counted_in_the_verifiers_metrics() {
        let issuer = TestIssuer::new("https://t.test");
        let verifier = Verifier::builder()
            .issuer(issuer.issuer())
            .jwks_json(issuer.jwks_json())
            .audience("a")
            .build()
            .await
            .unwrap();
        let svc = ServiceBuilder::new()
            .layer(VerifyLayer::new(verifier.clone()))
            .layer(RequireScopesLayer::all(["orders:read"]))
            .service(service_fn(|_: Request<()>| async {
                Ok::<_, std::convert::Infallible>(Response::new(()))
            }));
        let call = |auth: Option<String>| {
            let svc = svc.clone();
            async move {
                let mut req = Request::new(());
                if let Some(token) = auth {
                    req.headers_mut()
                        .insert("authorization", format!("Bearer {token}").parse().unwrap());
                }
                svc.oneshot(req).await.unwrap().status()
            }
        };
        assert_eq!(call(None).await, StatusCode::UNAUTHORIZED);
        let no_scope = issuer.token().audience("a").scope("orders:write").sign();
        assert_eq!(call(Some(no_scope)).await, StatusCode::FORBIDDEN);
        let good = issuer.token().audience("a").scope("orders:read").sign();
        assert_eq!(call(Some(good)).await, StatusCode::OK);
        assert_eq!(call(Some(String::new())).await, StatusCode::BAD_REQUEST);
        let m = verifier.metrics();
        assert_eq!(m.rejected(Reason::MissingToken), 1, "{m:?}");
        assert_eq!(m.rejected(Reason::EmptyBearer), 1, "{m:?}");
        assert_eq!(m.rejected(Reason::InsufficientScope), 1, "{m:?}");
        assert_eq!(m.accepted, 2);
        assert_eq!(m.rejections.iter().map(|(_, n)| n).sum::<u64>(), 3);
    }
}
