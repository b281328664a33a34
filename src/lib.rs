#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod claims;
mod error;
mod health;
pub mod jwks;
mod jws;
mod scopes;
mod verifier;
mod verify;

#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
mod extract;
#[cfg(feature = "test-util")]
#[cfg_attr(docsrs, doc(cfg(feature = "test-util")))]
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
