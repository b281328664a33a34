#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]
// No input may panic the request path: these are errors in library code
// (unit tests and the test-util module, whose panics are documented, opt out).
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

mod cache;
pub mod claims;
pub mod error;
pub mod health;
pub mod jwks;
mod jws;
pub mod scopes;
pub mod verifier;
pub mod verify;

#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
pub mod extract;
#[cfg(feature = "test-util")]
#[cfg_attr(docsrs, doc(cfg(feature = "test-util")))]
#[allow(clippy::expect_used, clippy::panic, clippy::indexing_slicing)]
pub mod test_util;

pub use claims::{Claims, Scopes, StandardClaims};
pub use error::{AuthError, BuildError, ErrorKind, Reason};
#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
pub use extract::ClaimsRejection;
pub use health::{Health, IssuerHealth, Metrics};
pub use jsonwebtoken::Algorithm;
pub use scopes::{RequireScopes, RequireScopesService};
pub use verifier::{Issuer, TypPolicy, Verifier, VerifierBuilder};
pub use verify::{DefaultReject, OnReject, RejectContext, ResponseFuture, Verify, VerifyLayer};
