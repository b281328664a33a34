//! axum integration (feature `axum`): [`Claims`] and
//! [`AccessToken`](crate::AccessToken) as extractors, and their rejection.
//! The user's documentation is on [`Claims`].

use std::fmt;

use axum_core::extract::{FromRequestParts, OptionalFromRequestParts};
use axum_core::response::{IntoResponse, Response};
use http::StatusCode;
use http::request::Parts;

use crate::claims::Claims;
use crate::error::{AuthError, Reason};
use crate::layer::Authenticated;
use crate::reject::{self, DpopFacts, Erased, RejectContext};
use crate::verifier::Verifier;

/// Why the [`Claims`] or [`AccessToken`](crate::AccessToken) extractor
/// refused the request: it is anonymous (401, `VerifyLayer` in optional
/// mode), the handler asks for another claims type than `VerifyLayer`
/// parses (500, logged), or no `VerifyLayer` runs before it (500, logged).
///
/// Like axum's own rejections it has a [`status`](Self::status), a
/// `Display` and `std::error::Error`. As a response it is rendered as the
/// stack renders every refusal: with the handler of
/// [`VerifyLayer::on_reject`](crate::VerifyLayer::on_reject), or as an RFC
/// 6750 challenge with the verifier's realm (a gRPC status for gRPC
/// requests).
pub struct ClaimsRejection {
    error: AuthError,
    /// The verifier that challenges (realm, metadata); `None` without
    /// `VerifyLayer`.
    verifier: Option<Verifier>,
    grpc: bool,
    /// `VerifyLayer`'s own handler, if it has one.
    on_reject: Option<Erased>,
    dpop: DpopFacts,
}

impl ClaimsRejection {
    fn new(error: AuthError, parts: &Parts, marker: Option<&Authenticated>) -> Self {
        Self {
            verifier: marker.map(|m| {
                m.refuse(error.reason());
                m.verifier.clone()
            }),
            error,
            grpc: reject::is_grpc(&parts.headers),
            on_reject: marker.and_then(|m| m.on_reject.clone()),
            dpop: marker.map(|m| m.dpop).unwrap_or_default(),
        }
    }

    /// The underlying error.
    pub fn error(&self) -> &AuthError {
        &self.error
    }

    /// The HTTP status of this refusal: 401 for an anonymous request, 500
    /// for a wiring mistake ([`AuthError::status`]). A handler installed
    /// with [`on_reject`](crate::VerifyLayer::on_reject) may answer with
    /// another.
    pub fn status(&self) -> StatusCode {
        self.error.status()
    }
}

impl fmt::Debug for ClaimsRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClaimsRejection")
            .field("error", &self.error)
            .field("realm", &self.verifier.as_ref().map(Verifier::realm))
            .field("grpc", &self.grpc)
            .field("on_reject", &self.on_reject.is_some())
            .field("dpop", &self.dpop)
            .finish()
    }
}

/// The description of the error (`no bearer token`, `claims type mismatch`…).
impl fmt::Display for ClaimsRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.error, f)
    }
}

impl std::error::Error for ClaimsRejection {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        std::error::Error::source(&self.error)
    }
}

impl IntoResponse for ClaimsRejection {
    fn into_response(self) -> Response {
        let mut ctx = RejectContext::new(self.verifier.as_ref().map_or("", Verifier::realm));
        ctx.grpc = self.grpc;
        ctx.resource_metadata = self.verifier.as_ref().and_then(reject::metadata_url);
        if let Some(settings) = self.verifier.as_ref().and_then(Verifier::dpop) {
            ctx.dpop_algs = Some(&settings.algs_text);
            ctx.dpop_required = self.dpop.required;
            ctx.dpop_used = self.dpop.used;
        }
        reject::render(self.on_reject.as_deref(), &self.error, &ctx)
    }
}

fn layer_missing(parts: &Parts) -> ClaimsRejection {
    tracing::error!(
        "Claims extractor used on a route without VerifyLayer: add .layer(VerifyLayer::new(verifier)) to the router"
    );
    ClaimsRejection::new(AuthError::new(Reason::LayerMissing), parts, None)
}

fn anonymous(parts: &Parts, marker: &Authenticated) -> ClaimsRejection {
    ClaimsRejection::new(AuthError::missing_token(), parts, Some(marker))
}

impl<S, E> FromRequestParts<S> for Claims<E>
where
    S: Send + Sync,
    E: Send + Sync + 'static,
{
    type Rejection = ClaimsRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        if let Some(claims) = parts.extensions.get::<Claims<E>>() {
            return Ok(claims.clone());
        }
        match parts.extensions.get::<Authenticated>() {
            Some(marker) => match marker.claims_type {
                Some(configured) => Err(type_mismatch::<E>(parts, marker, configured)),
                None => Err(anonymous(parts, marker)),
            },
            None => Err(layer_missing(parts)),
        }
    }
}

/// The request was verified, but into another claims type than the handler
/// asks for: the service's wiring mistake, not the client's (500).
fn type_mismatch<E>(parts: &Parts, marker: &Authenticated, configured: &str) -> ClaimsRejection {
    let requested = std::any::type_name::<E>();
    tracing::error!(
        configured,
        requested,
        "the handler extracts Claims<{requested}> but VerifyLayer parses Claims<{configured}>: \
         configure VerifyLayer::with_claims::<{requested}>(), or extract Claims<{configured}> \
         or Claims (the standard view, always present)"
    );
    ClaimsRejection::new(
        AuthError::new(Reason::ClaimsTypeMismatch),
        parts,
        Some(marker),
    )
}

impl<S, E> OptionalFromRequestParts<S> for Claims<E>
where
    S: Send + Sync,
    E: Send + Sync + 'static,
{
    type Rejection = ClaimsRejection;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        if let Some(claims) = parts.extensions.get::<Claims<E>>() {
            return Ok(Some(claims.clone()));
        }
        match parts.extensions.get::<Authenticated>() {
            Some(marker) => match marker.claims_type {
                Some(configured) => Err(type_mismatch::<E>(parts, marker, configured)),
                None => Ok(None),
            },
            None => Err(layer_missing(parts)),
        }
    }
}

/// The verified raw token, for handlers that call other services on the
/// caller's behalf (see [`crate::outbound`]). Rejects like [`Claims`].
impl<S> FromRequestParts<S> for crate::layer::AccessToken
where
    S: Send + Sync,
{
    type Rejection = ClaimsRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        if let Some(token) = parts.extensions.get::<Self>() {
            return Ok(token.clone());
        }
        match parts.extensions.get::<Authenticated>() {
            Some(marker) => Err(anonymous(parts, marker)),
            None => Err(layer_missing(parts)),
        }
    }
}

impl<S> OptionalFromRequestParts<S> for crate::layer::AccessToken
where
    S: Send + Sync,
{
    type Rejection = ClaimsRejection;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        if let Some(token) = parts.extensions.get::<Self>() {
            return Ok(Some(token.clone()));
        }
        if parts.extensions.get::<Authenticated>().is_some() {
            Ok(None)
        } else {
            Err(layer_missing(parts))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_rejection_has_a_status_a_display_and_is_an_error_like_axums() {
        let (mut parts, ()) = http::Request::new(()).into_parts();
        let rejection = <Claims as FromRequestParts<()>>::from_request_parts(&mut parts, &())
            .await
            .unwrap_err();
        assert_eq!(rejection.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(rejection.error().reason(), Reason::LayerMissing);
        assert_eq!(rejection.to_string(), "authentication layer missing");
        let as_error: &(dyn std::error::Error + Send + Sync + 'static) = &rejection;
        assert!(as_error.source().is_none());
        let res = rejection.into_response();
        assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }
}
