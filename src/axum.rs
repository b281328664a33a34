//! axum integration (feature `axum`): [`Claims`] as an extractor.
//!
//! # Example
//!
//! ```
//! use authlayer::Claims;
//!
//! // Needs `VerifyLayer` on the router; without it the extractor answers 500.
//! async fn me(claims: Claims) -> String {
//!     claims.sub().unwrap_or("anonymous").to_owned()
//! }
//!
//! // In mixed routers (`VerifyLayer::optional(true)`), `Option<Claims>`
//! // is `None` for anonymous requests.
//! async fn greet(claims: Option<Claims>) -> String {
//!     format!("hello {}", claims.as_ref().and_then(|c| c.sub()).unwrap_or("stranger"))
//! }
//! # let _ = (me, greet);
//! ```

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
