//! [`AccessToken`]: the verified raw token of a request, kept as a slice of
//! the header it came from so that the hot path copies nothing. The user's
//! documentation is on the type.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use http::HeaderValue;

/// The raw token a request was verified with, as
/// [`VerifyLayer`](crate::VerifyLayer) found it (without the `Bearer`
/// scheme). The layer puts it into the request extensions next to the
/// [`Claims`](crate::Claims); cheap to clone.
///
/// Its `Debug` never prints the token: it can be logged by accident without
/// leaking a credential.
///
/// For handlers that call other services on the caller's behalf: extract
/// it like the claims (with feature `axum` it is an extractor, and
/// `Option<AccessToken>` too) and hand it to
/// [`outbound::OutboundToken`](crate::outbound::OutboundToken), which
/// forwards it, exchanges it for a token meant for the downstream service,
/// or uses the service's own token instead.
///
/// # Example
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use authlayer::{AccessToken, Verifier, VerifyLayer};
/// use authlayer::test_util::TestIssuer;
/// use http::{Request, Response};
/// use tower::{ServiceBuilder, ServiceExt, service_fn};
///
/// let issuer = TestIssuer::new("https://id.example");
/// let verifier = Verifier::builder()
///     .issuer(issuer.issuer())
///     .jwks_json(issuer.jwks_json())
///     .audience("urn:orders")
///     .build()
///     .await?;
/// let service = ServiceBuilder::new()
///     .layer(VerifyLayer::new(verifier))
///     .service(service_fn(|req: Request<()>| async move {
///         let token = req.extensions().get::<AccessToken>().cloned();
///         // Debug never shows the token itself.
///         Ok::<_, std::convert::Infallible>(Response::new(format!("{token:?}")))
///     }));
/// let token = issuer.token().audience("urn:orders").sign();
/// let req = Request::builder()
///     .header("authorization", format!("Bearer {token}"))
///     .body(())?;
/// let res = service.oneshot(req).await?;
/// assert_eq!(res.body(), "Some(AccessToken(<redacted>))");
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct AccessToken(Repr);

#[derive(Clone)]
enum Repr {
    Owned(Arc<str>),
    /// A slice of the request header the token came from: sharing the
    /// header's bytes costs no copy and, for headers read by hyper, no
    /// allocation.
    Header {
        value: HeaderValue,
        start: usize,
        end: usize,
    },
}

impl AccessToken {
    /// Wraps a token, e.g. one a token endpoint returned.
    pub fn new(token: impl Into<Arc<str>>) -> Self {
        Self(Repr::Owned(token.into()))
    }

    /// The token `token`, found in the header value `value`: a slice of it,
    /// sharing its bytes (a copy if `token` is not a slice of `value`).
    pub(crate) fn from_value(value: &HeaderValue, token: &str) -> Self {
        Self(Self::slice_of(value, token).unwrap_or_else(|| Repr::Owned(Arc::from(token))))
    }

    fn slice_of(value: &HeaderValue, token: &str) -> Option<Repr> {
        let addr = token.as_ptr().addr();
        let base = value.as_bytes().as_ptr().addr();
        (addr >= base && addr + token.len() <= base + value.len()).then(|| Repr::Header {
            value: value.clone(),
            start: addr - base,
            end: addr - base + token.len(),
        })
    }

    /// The token itself. Handle with care: it is a credential.
    pub fn as_str(&self) -> &str {
        match &self.0 {
            Repr::Owned(token) => token,
            // The layer took the token from this value as `&str`, so the
            // slice is valid UTF-8; checked again rather than assumed.
            Repr::Header { value, start, end } => value
                .as_bytes()
                .get(*start..*end)
                .and_then(|b| std::str::from_utf8(b).ok())
                .unwrap_or(""),
        }
    }

    /// `Bearer <token>`, marked sensitive (HTTP/2 never indexes it, and
    /// `http`'s `Debug` hides it). `None` if the token holds bytes a header
    /// cannot carry.
    pub fn bearer_header(&self) -> Option<HeaderValue> {
        let mut value = HeaderValue::try_from(format!("Bearer {}", self.as_str())).ok()?;
        value.set_sensitive(true);
        Some(value)
    }
}

impl PartialEq for AccessToken {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for AccessToken {}

impl Hash for AccessToken {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
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
        Self::new(token)
    }
}

#[cfg(test)]
mod tests {
    use http::Request;

    use super::*;

    /// The token `token`, a slice of one of `req`'s header values, as the
    /// layer would find it: Authorization first, then the other headers; a
    /// copy if none holds it.
    fn from_request<B>(req: &Request<B>, token: &str) -> AccessToken {
        let found = req
            .headers()
            .get_all(http::header::AUTHORIZATION)
            .iter()
            .find_map(|value| AccessToken::slice_of(value, token))
            .or_else(|| {
                req.headers()
                    .values()
                    .find_map(|value| AccessToken::slice_of(value, token))
            });
        AccessToken(found.unwrap_or_else(|| Repr::Owned(Arc::from(token))))
    }

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
    fn a_token_from_a_header_shares_its_bytes_and_equals_an_owned_one() {
        let req = Request::builder()
            .header("cookie", "a=1; at=tok-from-cookie")
            .header("authorization", "Bearer tok-123")
            .body(())
            .unwrap();
        let value = req.headers()["authorization"].to_str().unwrap();
        let token = from_request(&req, &value[7..]);
        assert!(matches!(token.0, Repr::Header { .. }));
        assert_eq!(token.as_str(), "tok-123");
        assert_eq!(token, AccessToken::new("tok-123"));
        let cookie = req.headers()["cookie"].to_str().unwrap();
        let from_cookie = from_request(&req, &cookie[8..]);
        assert_eq!(from_cookie.as_str(), "tok-from-cookie");
        // Not a slice of any header: copied.
        let elsewhere = from_request(&req, "tok-123");
        assert!(matches!(elsewhere.0, Repr::Owned(_)));
        assert_eq!(elsewhere, token);
        let value = &req.headers()["authorization"];
        let from_value = AccessToken::from_value(value, &value.to_str().unwrap()[7..]);
        assert!(matches!(from_value.0, Repr::Header { .. }));
        assert_eq!(from_value, token);
        assert!(matches!(
            AccessToken::from_value(value, "tok-123").0,
            Repr::Owned(_)
        ));
    }

    #[test]
    fn a_token_with_a_line_break_gives_no_header() {
        assert!(AccessToken::new("a\r\nx-evil: 1").bearer_header().is_none());
    }
}
