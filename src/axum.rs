//! axum integration (feature `axum`): [`Claims`] and
//! [`AccessToken`](crate::AccessToken) as extractors, and their rejection.
//! The user's documentation is on [`Claims`].

use axum_core::extract::{FromRequestParts, OptionalFromRequestParts};
use axum_core::response::{IntoResponse, Response};
use http::request::Parts;

use crate::claims::Claims;
use crate::error::{AuthError, Reason};
use crate::layer::Authenticated;

/// Why the `Claims` extractor failed: the request is anonymous (401) or
/// `VerifyLayer` is not installed (500, logged).
#[derive(Debug)]
pub struct ClaimsRejection {
    error: AuthError,
    realm: Option<std::sync::Arc<str>>,
}

impl ClaimsRejection {
    /// The underlying error.
    pub fn error(&self) -> &AuthError {
        &self.error
    }
}

impl IntoResponse for ClaimsRejection {
    fn into_response(self) -> Response {
        self.error
            .to_response(self.realm.as_deref().unwrap_or(""), false)
    }
}

fn layer_missing() -> ClaimsRejection {
    tracing::error!(
        "Claims extractor used on a route without VerifyLayer: add .layer(VerifyLayer::new(verifier)) to the router"
    );
    ClaimsRejection {
        error: AuthError::new(Reason::LayerMissing),
        realm: None,
    }
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
            Some(marker) if marker.claims_type.is_some() => Err(type_mismatch::<E>(marker)),
            Some(marker) => Err(ClaimsRejection {
                error: AuthError::missing_token(),
                realm: Some(marker.refuse(Reason::MissingToken)),
            }),
            None => Err(layer_missing()),
        }
    }
}

/// The request was verified, but into another claims type than the handler
/// asks for: the service's wiring mistake, not the client's (500).
fn type_mismatch<E>(marker: &Authenticated) -> ClaimsRejection {
    tracing::error!(
        layer_claims = marker.claims_type.unwrap_or("()"),
        handler_claims = std::any::type_name::<Claims<E>>(),
        "the handler extracts another claims type than VerifyLayer was configured with: \
         use VerifyLayer::with_claims::<T>() with the same T, or extract Claims (the \
         standard view, always present)"
    );
    ClaimsRejection {
        error: AuthError::new(Reason::ClaimsTypeMismatch),
        realm: None,
    }
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
            Some(marker) if marker.claims_type.is_some() => Err(type_mismatch::<E>(marker)),
            Some(_) => Ok(None),
            None => Err(layer_missing()),
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
            Some(marker) => Err(ClaimsRejection {
                error: AuthError::missing_token(),
                realm: Some(marker.refuse(Reason::MissingToken)),
            }),
            None => Err(layer_missing()),
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
            Err(layer_missing())
        }
    }
}
