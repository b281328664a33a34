//! [`AccessToken`]: the verified raw token of a request, for handlers that
//! call other services on the caller's behalf.
//!
//! # Example
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use authlayer::{AccessToken, Verifier, VerifyLayer};
//! use authlayer::test_util::TestIssuer;
//! use http::{Request, Response};
//! use tower::{ServiceBuilder, ServiceExt, service_fn};
//!
//! let issuer = TestIssuer::new("https://id.example");
//! let verifier = Verifier::builder()
//!     .issuer(issuer.issuer())
//!     .jwks_json(issuer.jwks_json())
//!     .audience("urn:orders")
//!     .build()
//!     .await?;
//! let service = ServiceBuilder::new()
//!     .layer(VerifyLayer::new(verifier))
//!     .service(service_fn(|req: Request<()>| async move {
//!         let token = req.extensions().get::<AccessToken>().cloned();
//!         // Debug never shows the token itself.
//!         Ok::<_, std::convert::Infallible>(Response::new(format!("{token:?}")))
//!     }));
//! let token = issuer.token().audience("urn:orders").sign();
//! let req = Request::builder()
//!     .header("authorization", format!("Bearer {token}"))
//!     .body(())?;
//! let res = service.oneshot(req).await?;
//! assert_eq!(res.body(), "Some(AccessToken(<redacted>))");
//! # Ok(()) }
//! ```

use std::fmt;
use std::sync::Arc;

use http::HeaderValue;

/// The raw token a request was verified with, as
/// [`VerifyLayer`](crate::VerifyLayer) found it (without the `Bearer`
/// scheme). The layer puts it into the request extensions next to the
/// [`Claims`](crate::Claims); cheap to clone (one `Arc`).
///
/// Its `Debug` never prints the token: it can be logged by accident without
/// leaking a credential.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct AccessToken(Arc<str>);

impl AccessToken {
    /// Wraps a token, e.g. one a token endpoint returned.
    pub fn new(token: impl Into<Arc<str>>) -> Self {
        Self(token.into())
    }

    /// The token itself. Handle with care: it is a credential.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `Bearer <token>`, marked sensitive (HTTP/2 never indexes it, and
    /// `http`'s `Debug` hides it). `None` if the token holds bytes a header
    /// cannot carry.
    pub fn bearer_header(&self) -> Option<HeaderValue> {
        let mut value = HeaderValue::try_from(format!("Bearer {}", self.0)).ok()?;
        value.set_sensitive(true);
        Some(value)
    }
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // SECURITY: a token in a log line is a stolen credential.
        f.write_str("AccessToken(<redacted>)")
    }
}

impl From<String> for AccessToken {
    fn from(token: String) -> Self {
        Self(token.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_prints_the_token() {
        let token = AccessToken::new("eyJhbGciOi.secret.sig");
        let shown = format!("{token:?} {:#?}", Some(token.clone()));
        assert!(!shown.contains("secret"), "{shown}");
        assert!(shown.contains("<redacted>"));
    }

    #[test]
    fn bearer_header_is_sensitive() {
        let value = AccessToken::new("abc").bearer_header().unwrap();
        assert_eq!(value, "Bearer abc");
        assert!(value.is_sensitive());
    }

    #[test]
    fn a_token_with_a_line_break_gives_no_header() {
        assert!(AccessToken::new("a\r\nx-evil: 1").bearer_header().is_none());
    }
}
