//! Errors: [`BuildError`] when a [`Verifier`](crate::Verifier) cannot be built,
//! [`AuthError`] when a request is refused, and how a refusal is rendered for
//! HTTP (RFC 6750) and gRPC.
//!
//! # Example
//!
//! ```
//! use authlayer::{AuthError, ErrorKind};
//!
//! let err = AuthError::missing_token();
//! assert_eq!(err.kind(), ErrorKind::MissingToken);
//! assert_eq!(err.status(), http::StatusCode::UNAUTHORIZED);
//!
//! let res: http::Response<String> = err.to_response("orders", false);
//! assert_eq!(res.headers()["www-authenticate"], r#"Bearer realm="orders""#);
//! ```

use std::fmt;
use std::sync::Arc;

use http::{HeaderValue, Response, StatusCode, header};

/// What went wrong while building a [`Verifier`](crate::Verifier).
///
/// Every variant names what to fix; none of them ever carries key material.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// A setting has a value that cannot work.
    #[error("invalid configuration: {reason}")]
    Config {
        /// What is wrong and how to fix it.
        reason: String,
    },
    /// A URL was rejected before any request was made.
    #[error("refusing key URL {url}: {reason}")]
    Url {
        /// The configured URL.
        url: String,
        /// Why it was refused.
        reason: String,
    },
    /// Fetching keys or the discovery document failed.
    #[error("fetching {url} failed: {cause}")]
    Fetch {
        /// The URL that was requested.
        url: String,
        /// What went wrong (timeout, status, body, parse error).
        cause: crate::jwks::FetchError,
    },
    /// The discovery document names another issuer than the one configured.
    #[error(
        "discovery document at {url} names issuer {found:?}, expected exactly {expected:?} (OIDC Discovery 1.0 §4.3)"
    )]
    IssuerMismatch {
        /// The discovery URL.
        url: String,
        /// The configured issuer.
        expected: String,
        /// The issuer the document names.
        found: String,
    },
    /// No crypto provider is available for jsonwebtoken.
    #[error(
        "no jsonwebtoken crypto provider: enable feature \"aws-lc-rs\" or \"rust-crypto\", or install one with jsonwebtoken::crypto::CryptoProvider::install_default"
    )]
    NoCryptoProvider,
}

/// The class of an [`AuthError`]; decides the status code and the
/// `WWW-Authenticate` error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// No credential in the request: 401 without an error code.
    MissingToken,
    /// The request itself is malformed (e.g. two credentials): 400 `invalid_request`.
    InvalidRequest,
    /// The token is malformed, forged, expired or meant for someone else: 401 `invalid_token`.
    InvalidToken,
    /// The token is valid but lacks a required scope: 403 `insufficient_scope`.
    InsufficientScope,
    /// No usable keys (never fetched, or stale beyond `max_stale`): 503.
    KeysUnavailable,
    /// The service is wired wrongly (e.g. `RequireScopes` without `VerifyLayer`).
    Misconfigured,
}

/// Why a request was refused. The [`description`](Reason::description) is a
/// fixed text: it never contains anything taken from the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Reason {
    /// No token in the request.
    MissingToken,
    /// More than one credential (two `Authorization` headers, or header and cookie).
    MultipleCredentials,
    /// An `Authorization: Bearer` header without a token.
    EmptyBearer,
    /// The token exceeds the configured maximum length.
    TooLong,
    /// The token is not three base64url segments, or its JSON is invalid.
    Malformed,
    /// The header names an algorithm that is not allowed.
    AlgorithmNotAllowed,
    /// The header uses a feature this crate refuses (`crit`, `b64`, nested JWT, JWE).
    UnsupportedHeader,
    /// The `typ` header does not match the configured policy.
    WrongType,
    /// No key with the token's `kid` (or no single key for a token without `kid`).
    UnknownKey,
    /// The key exists but cannot verify this algorithm.
    KeyAlgorithmMismatch,
    /// The signature does not verify.
    BadSignature,
    /// `exp` is in the past (beyond the leeway).
    Expired,
    /// `nbf` is in the future (beyond the leeway).
    NotYetValid,
    /// A required claim is absent.
    MissingClaim,
    /// A claim has the wrong type (e.g. `exp` as a string).
    InvalidClaim,
    /// `iss` is not a configured issuer.
    UnknownIssuer,
    /// `aud` does not contain a configured audience.
    WrongAudience,
    /// A required scope is missing.
    InsufficientScope,
    /// The key set has never been loaded, or is older than `max_stale`.
    KeysUnavailable,
    /// `RequireScopes` or the extractor ran without `VerifyLayer` before it.
    LayerMissing,
}

impl Reason {
    /// A fixed, human-readable description (used as `error_description`).
    pub fn description(self) -> &'static str {
        match self {
            Reason::MissingToken => "no bearer token",
            Reason::MultipleCredentials => "more than one credential in the request",
            Reason::EmptyBearer => "empty bearer token",
            Reason::TooLong => "token too long",
            Reason::Malformed => "malformed token",
            Reason::AlgorithmNotAllowed => "algorithm not allowed",
            Reason::UnsupportedHeader => "unsupported token header",
            Reason::WrongType => "wrong token type",
            Reason::UnknownKey => "unknown signing key",
            Reason::KeyAlgorithmMismatch => "algorithm does not match the key",
            Reason::BadSignature => "invalid signature",
            Reason::Expired => "token expired",
            Reason::NotYetValid => "token not yet valid",
            Reason::MissingClaim => "required claim missing",
            Reason::InvalidClaim => "invalid claim",
            Reason::UnknownIssuer => "untrusted issuer",
            Reason::WrongAudience => "wrong audience",
            Reason::InsufficientScope => "insufficient scope",
            Reason::KeysUnavailable => "signing keys unavailable",
            Reason::LayerMissing => "authentication layer missing",
        }
    }

    /// A short stable label for logs and metrics (`snake_case`).
    pub fn label(self) -> &'static str {
        match self {
            Reason::MissingToken => "missing_token",
            Reason::MultipleCredentials => "multiple_credentials",
            Reason::EmptyBearer => "empty_bearer",
            Reason::TooLong => "too_long",
            Reason::Malformed => "malformed",
            Reason::AlgorithmNotAllowed => "algorithm_not_allowed",
            Reason::UnsupportedHeader => "unsupported_header",
            Reason::WrongType => "wrong_type",
            Reason::UnknownKey => "unknown_key",
            Reason::KeyAlgorithmMismatch => "key_algorithm_mismatch",
            Reason::BadSignature => "bad_signature",
            Reason::Expired => "expired",
            Reason::NotYetValid => "not_yet_valid",
            Reason::MissingClaim => "missing_claim",
            Reason::InvalidClaim => "invalid_claim",
            Reason::UnknownIssuer => "unknown_issuer",
            Reason::WrongAudience => "wrong_audience",
            Reason::InsufficientScope => "insufficient_scope",
            Reason::KeysUnavailable => "keys_unavailable",
            Reason::LayerMissing => "layer_missing",
        }
    }

    /// Every reason, in a fixed order (used to index counters).
    pub const ALL: [Reason; 20] = [
        Reason::MissingToken,
        Reason::MultipleCredentials,
        Reason::EmptyBearer,
        Reason::TooLong,
        Reason::Malformed,
        Reason::AlgorithmNotAllowed,
        Reason::UnsupportedHeader,
        Reason::WrongType,
        Reason::UnknownKey,
        Reason::KeyAlgorithmMismatch,
        Reason::BadSignature,
        Reason::Expired,
        Reason::NotYetValid,
        Reason::MissingClaim,
        Reason::InvalidClaim,
        Reason::UnknownIssuer,
        Reason::WrongAudience,
        Reason::InsufficientScope,
        Reason::KeysUnavailable,
        Reason::LayerMissing,
    ];

    pub(crate) fn index(self) -> usize {
        self as usize
    }

    fn kind(self) -> ErrorKind {
        match self {
            Reason::MissingToken => ErrorKind::MissingToken,
            Reason::MultipleCredentials | Reason::EmptyBearer => ErrorKind::InvalidRequest,
            Reason::InsufficientScope => ErrorKind::InsufficientScope,
            Reason::KeysUnavailable => ErrorKind::KeysUnavailable,
            Reason::LayerMissing => ErrorKind::Misconfigured,
            _ => ErrorKind::InvalidToken,
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.description())
    }
}

/// Why a request was refused, and how to answer it.
///
/// Rendered by [`to_response`](AuthError::to_response) as RFC 6750 for HTTP or
/// as a trailers-only gRPC status. A rejection by the layers is always an
/// `Ok(response)`, never a service error.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AuthError {
    reason: Reason,
    scope: Option<Arc<str>>,
}

impl AuthError {
    pub(crate) fn new(reason: Reason) -> Self {
        Self {
            reason,
            scope: None,
        }
    }

    /// No credential was presented.
    pub fn missing_token() -> Self {
        Self::new(Reason::MissingToken)
    }

    pub(crate) fn insufficient_scope(scope: Arc<str>) -> Self {
        Self {
            reason: Reason::InsufficientScope,
            scope: Some(scope),
        }
    }

    /// The class of this error.
    pub fn kind(&self) -> ErrorKind {
        self.reason.kind()
    }

    /// The precise reason.
    pub fn reason(&self) -> Reason {
        self.reason
    }

    /// For [`ErrorKind::InsufficientScope`]: the space-separated scopes the route requires.
    pub fn required_scope(&self) -> Option<&str> {
        self.scope.as_deref()
    }

    /// The HTTP status for this error.
    pub fn status(&self) -> StatusCode {
        match self.kind() {
            ErrorKind::MissingToken | ErrorKind::InvalidToken => StatusCode::UNAUTHORIZED,
            ErrorKind::InvalidRequest => StatusCode::BAD_REQUEST,
            ErrorKind::InsufficientScope => StatusCode::FORBIDDEN,
            ErrorKind::KeysUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorKind::Misconfigured => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The gRPC status code: 16 UNAUTHENTICATED, 7 `PERMISSION_DENIED`,
    /// 14 UNAVAILABLE, 3 `INVALID_ARGUMENT` or 13 INTERNAL.
    pub fn grpc_code(&self) -> u16 {
        match self.kind() {
            ErrorKind::MissingToken | ErrorKind::InvalidToken => 16,
            ErrorKind::InvalidRequest => 3,
            ErrorKind::InsufficientScope => 7,
            ErrorKind::KeysUnavailable => 14,
            ErrorKind::Misconfigured => 13,
        }
    }

    /// The `WWW-Authenticate` challenge (RFC 6750 §3) for `realm`.
    ///
    /// `realm` comes from configuration; quotes and backslashes in it are escaped.
    pub fn www_authenticate(&self, realm: &str) -> String {
        let mut out = String::from("Bearer realm=\"");
        push_quoted(&mut out, realm);
        out.push('"');
        let code = match self.kind() {
            ErrorKind::MissingToken | ErrorKind::KeysUnavailable | ErrorKind::Misconfigured => {
                return out;
            }
            ErrorKind::InvalidRequest => "invalid_request",
            ErrorKind::InvalidToken => "invalid_token",
            ErrorKind::InsufficientScope => "insufficient_scope",
        };
        out.push_str(", error=\"");
        out.push_str(code);
        out.push_str("\", error_description=\"");
        out.push_str(self.reason.description());
        out.push('"');
        if let Some(scope) = &self.scope {
            out.push_str(", scope=\"");
            push_quoted(&mut out, scope);
            out.push('"');
        }
        out
    }

    /// The default rendering: RFC 6750 for HTTP, trailers-only status for gRPC.
    ///
    /// gRPC answers are HTTP 200 with `content-type: application/grpc`,
    /// `grpc-status` and a percent-encoded `grpc-message` in the headers and an
    /// empty body, as the gRPC spec allows for errors before any message.
    pub fn to_response<B: Default>(&self, realm: &str, grpc: bool) -> Response<B> {
        let mut res = Response::new(B::default());
        if grpc {
            let headers = res.headers_mut();
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/grpc"),
            );
            headers.insert("grpc-status", HeaderValue::from(self.grpc_code()));
            headers.insert(
                "grpc-message",
                HeaderValue::from_str(&percent_encode(self.reason.description()))
                    .unwrap_or_else(|_| HeaderValue::from_static("unauthenticated")),
            );
            return res;
        }
        *res.status_mut() = self.status();
        let headers = res.headers_mut();
        if let Ok(value) = HeaderValue::from_str(&self.www_authenticate(realm)) {
            headers.insert(header::WWW_AUTHENTICATE, value);
        }
        if self.kind() == ErrorKind::KeysUnavailable {
            headers.insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        }
        res
    }
}

impl fmt::Display for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.reason.description())?;
        if let Some(scope) = &self.scope {
            write!(f, " (requires {scope})")?;
        }
        Ok(())
    }
}

impl std::error::Error for AuthError {}

fn push_quoted(out: &mut String, value: &str) {
    for c in value.chars() {
        // SAFETY (header injection): only visible ASCII may enter a quoted
        // string; quotes and backslashes are escaped, anything else is dropped.
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            ' '..='~' => out.push(c),
            _ => {}
        }
    }
}

/// Percent-encodes a `grpc-message` as the gRPC HTTP/2 spec asks: every byte
/// outside printable ASCII, and `%` itself.
fn percent_encode(message: &str) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(message.len());
    for b in message.bytes() {
        if (0x20..=0x7e).contains(&b) && b != b'%' {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

#[cfg(feature = "tonic")]
#[cfg_attr(docsrs, doc(cfg(feature = "tonic")))]
impl From<AuthError> for tonic::Status {
    /// UNAUTHENTICATED, `PERMISSION_DENIED`, UNAVAILABLE, `INVALID_ARGUMENT` or
    /// INTERNAL, with the fixed description as message.
    fn from(err: AuthError) -> Self {
        tonic::Status::new(
            tonic::Code::from_i32(i32::from(err.grpc_code())),
            err.to_string(),
        )
    }
}

/// Is this request gRPC (`content-type: application/grpc…`)?
pub(crate) fn is_grpc<B>(req: &http::Request<B>) -> bool {
    req.headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_token_challenge_has_no_error_code() {
        let res: Response<()> = AuthError::missing_token().to_response("api", false);
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(res.headers()["www-authenticate"], "Bearer realm=\"api\"");
    }

    #[test]
    fn invalid_token_challenge_names_error_and_description() {
        let res: Response<()> = AuthError::new(Reason::Expired).to_response("api", false);
        assert_eq!(
            res.headers()["www-authenticate"],
            "Bearer realm=\"api\", error=\"invalid_token\", error_description=\"token expired\""
        );
    }

    #[test]
    fn insufficient_scope_is_403_with_scope() {
        let err = AuthError::insufficient_scope("orders:read".into());
        let res: Response<()> = err.to_response("api", false);
        assert_eq!(res.status(), StatusCode::FORBIDDEN);
        assert!(
            res.headers()["www-authenticate"]
                .to_str()
                .unwrap()
                .ends_with("error=\"insufficient_scope\", error_description=\"insufficient scope\", scope=\"orders:read\"")
        );
    }

    #[test]
    fn keys_unavailable_is_503_with_retry_after() {
        let res: Response<()> = AuthError::new(Reason::KeysUnavailable).to_response("api", false);
        assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(res.headers()["retry-after"], "5");
    }

    #[test]
    fn grpc_rejection_is_trailers_only_200() {
        let res: Response<()> = AuthError::new(Reason::BadSignature).to_response("api", true);
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(res.headers()["grpc-status"], "16");
        assert_eq!(res.headers()["grpc-message"], "invalid signature");
        let res: Response<()> = AuthError::insufficient_scope("a".into()).to_response("api", true);
        assert_eq!(res.headers()["grpc-status"], "7");
        let res: Response<()> = AuthError::new(Reason::KeysUnavailable).to_response("api", true);
        assert_eq!(res.headers()["grpc-status"], "14");
    }

    #[test]
    fn realm_quotes_are_escaped() {
        let challenge = AuthError::missing_token().www_authenticate("a\"b\\c\r\n");
        assert_eq!(challenge, "Bearer realm=\"a\\\"b\\\\c\"");
    }

    #[test]
    fn grpc_message_is_percent_encoded() {
        assert_eq!(percent_encode("a%b é"), "a%25b %C3%A9");
    }

    #[test]
    fn reason_index_matches_all_order() {
        for (i, r) in Reason::ALL.iter().enumerate() {
            assert_eq!(r.index(), i);
        }
    }
}
