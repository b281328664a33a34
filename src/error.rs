//! The errors and the one table of refusal reasons: [`BuildError`] when a
//! [`Verifier`](crate::Verifier) cannot be built, [`FetchError`] when keys
//! cannot be fetched, [`AuthError`] when a request is refused, with its
//! [`Reason`] (code, description and [`ErrorKind`] defined once, by the
//! `reasons!` table). How a refusal becomes a response (RFC 6750, gRPC)
//! lives in `crate::reject`. The user's documentation is on the types.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;

/// What went wrong while building a [`Verifier`](crate::Verifier), a
/// [`ClientCredentials`](crate::outbound::ClientCredentials) or a
/// [`TokenExchange`](crate::outbound::TokenExchange).
///
/// A refused value is an [`InvalidSetting`](Self::InvalidSetting) or, for a
/// URL, a [`Url`](Self::Url): both name the setting to fix, as its setter is
/// spelled ([`setting`](Self::setting)). Every variant names what to fix;
/// none of them ever carries key material or a secret.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// A setting has a value that cannot work, alone or with another one.
    #[error("invalid setting {setting}{}: {reason}", of_issuer(issuer.as_deref()))]
    InvalidSetting {
        /// The setting, spelled as its setter: `fetch_timeout`, `audience`,
        /// `introspection.timeout`, `client_credentials.timeout`,
        /// `token_exchange.cache_bytes`.
        setting: &'static str,
        /// The issuer whose setting it is, for a per-issuer setting.
        issuer: Option<String>,
        /// What is wrong and how to fix it.
        reason: String,
    },
    /// A URL was refused before any request was made.
    #[error("refusing URL {url} ({setting}): {reason}")]
    Url {
        /// The setting that gave the URL, spelled as its setter: `issuer`,
        /// `jwks_url`, `tenant_template`, `introspection.endpoint`,
        /// `resource_metadata`, `client_credentials.token_url`,
        /// `token_exchange.token_url`.
        setting: &'static str,
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
        cause: FetchError,
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
    /// `build()` ran outside a tokio runtime, which the key refreshers need.
    #[error("build() must run inside a tokio runtime")]
    NoRuntime,
}

impl BuildError {
    /// The setting to fix, spelled as its setter (`fetch_timeout`,
    /// `introspection.timeout`), when one value is to blame.
    pub fn setting(&self) -> Option<&'static str> {
        match self {
            Self::InvalidSetting { setting, .. } | Self::Url { setting, .. } => Some(setting),
            _ => None,
        }
    }

    /// An [`InvalidSetting`](Self::InvalidSetting) of no issuer.
    pub(crate) fn setting_error(setting: &'static str, reason: impl Into<String>) -> Self {
        Self::InvalidSetting {
            setting,
            issuer: None,
            reason: reason.into(),
        }
    }

    /// An [`InvalidSetting`](Self::InvalidSetting) of the issuer `iss`.
    pub(crate) fn issuer_setting(
        setting: &'static str,
        iss: &str,
        reason: impl Into<String>,
    ) -> Self {
        Self::InvalidSetting {
            setting,
            issuer: Some(iss.to_owned()),
            reason: reason.into(),
        }
    }
}

/// ` of issuer "…"`, or nothing.
fn of_issuer(issuer: Option<&str>) -> String {
    issuer
        .map(|iss| format!(" of issuer {iss:?}"))
        .unwrap_or_default()
}

/// Why fetching or parsing a key set or discovery document failed.
///
/// The message names the cause; it never contains the response body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FetchError {
    /// The whole fetch (connect, headers and body) took longer than the timeout.
    #[error("timed out after {after:?}")]
    Timeout {
        /// The configured fetch timeout.
        after: Duration,
    },
    /// The request could not be made (connection refused, TLS, redirect refused…).
    #[error("request failed: {reason}")]
    Request {
        /// The transport's description.
        reason: String,
    },
    /// The server answered with a status other than 200 (or 304 to a conditional request).
    #[error("unexpected HTTP status {status}")]
    Status {
        /// The status code.
        status: u16,
    },
    /// The response is not JSON.
    #[error(
        "unexpected content-type {found:?} (want application/json or application/jwk-set+json)"
    )]
    ContentType {
        /// The content type received (truncated).
        found: String,
    },
    /// The body is larger than the configured limit.
    #[error("response body larger than {limit} bytes")]
    TooLarge {
        /// The configured limit.
        limit: usize,
    },
    /// The body is not a JWK Set or discovery document.
    #[error("{reason}")]
    Parse {
        /// What is wrong with it.
        reason: String,
    },
    /// The JWK Set has more keys than the configured limit.
    #[error("JWK Set has {count} keys, more than the limit of {limit}")]
    TooManyKeys {
        /// Keys in the document.
        count: usize,
        /// The configured limit.
        limit: usize,
    },
    /// The JWK Set parsed but holds no key this verifier can use.
    #[error("JWK Set holds no usable signing key")]
    NoUsableKeys,
    /// The discovery document names another issuer.
    #[error("discovery document names issuer {found:?}, expected exactly {expected:?}")]
    IssuerMismatch {
        /// The configured issuer.
        expected: String,
        /// The issuer in the document.
        found: String,
    },
    /// The discovery document points at a URL the policy refuses.
    #[error("jwks_uri refused: {reason}")]
    InsecureUrl {
        /// Why it was refused.
        reason: String,
    },
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
    /// The token is valid but a rule other than scopes refuses it (roles,
    /// tenant, policy): a plain 403 with a fixed description, no challenge.
    Forbidden,
    /// The introspection endpoint could not confirm the token (down, slow,
    /// overloaded or answering garbage): 503, the server's fault.
    IntrospectionUnavailable,
    /// The DPoP proof is missing or fails a check (RFC 9449 §4.3), or was
    /// used before: 401 `invalid_dpop_proof` on the `DPoP` challenge.
    InvalidDpopProof,
    /// The DPoP proof must carry a fresh server nonce: 401
    /// `use_dpop_nonce` with the nonce in `DPoP-Nonce` (RFC 9449 §9).
    UseDpopNonce,
    /// DPoP proofs cannot be checked now (the replay store does not
    /// answer): 503, never an unchecked proof accepted.
    DpopUnavailable,
}

impl ErrorKind {
    /// The HTTP status for this class.
    pub fn status(self) -> StatusCode {
        match self {
            ErrorKind::MissingToken
            | ErrorKind::InvalidToken
            | ErrorKind::InvalidDpopProof
            | ErrorKind::UseDpopNonce => StatusCode::UNAUTHORIZED,
            ErrorKind::InvalidRequest => StatusCode::BAD_REQUEST,
            ErrorKind::InsufficientScope | ErrorKind::Forbidden => StatusCode::FORBIDDEN,
            ErrorKind::KeysUnavailable
            | ErrorKind::IntrospectionUnavailable
            | ErrorKind::DpopUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorKind::Misconfigured => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The gRPC status code: 16 UNAUTHENTICATED, 7 `PERMISSION_DENIED`,
    /// 14 UNAVAILABLE, 3 `INVALID_ARGUMENT` or 13 INTERNAL.
    pub fn grpc_code(self) -> u16 {
        match self {
            ErrorKind::MissingToken
            | ErrorKind::InvalidToken
            | ErrorKind::InvalidDpopProof
            | ErrorKind::UseDpopNonce => 16,
            ErrorKind::InvalidRequest => 3,
            ErrorKind::InsufficientScope | ErrorKind::Forbidden => 7,
            ErrorKind::KeysUnavailable
            | ErrorKind::IntrospectionUnavailable
            | ErrorKind::DpopUnavailable => 14,
            ErrorKind::Misconfigured => 13,
        }
    }

    /// The RFC 6750 `error` code, if the challenge carries one.
    pub(crate) fn challenge_code(self) -> Option<&'static str> {
        match self {
            ErrorKind::MissingToken
            | ErrorKind::KeysUnavailable
            | ErrorKind::Misconfigured
            | ErrorKind::Forbidden
            | ErrorKind::IntrospectionUnavailable
            | ErrorKind::DpopUnavailable => None,
            ErrorKind::InvalidRequest => Some("invalid_request"),
            ErrorKind::InvalidDpopProof => Some("invalid_dpop_proof"),
            ErrorKind::UseDpopNonce => Some("use_dpop_nonce"),
            ErrorKind::InvalidToken => Some("invalid_token"),
            ErrorKind::InsufficientScope => Some("insufficient_scope"),
        }
    }
}

/// Defines [`Reason`] and its table in one place: each row is a variant with
/// its doc, its stable code, its fixed description and its [`ErrorKind`]
/// (which decides the status). Adding a reason is adding a row.
macro_rules! reasons {
    ($( $(#[doc = $doc:literal])* $name:ident => $code:literal, $description:literal, $kind:ident; )*) => {
        /// Why a request was refused. The [`description`](Reason::description)
        /// is a fixed text: it never contains anything taken from the request.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum Reason {
            $( $(#[doc = $doc])* $name, )*
        }

        impl Reason {
            /// Every reason, in declaration order.
            pub(crate) const EVERY: &[Reason] = &[ $( Reason::$name, )* ];

            /// Its row of the table: code, description, kind.
            fn row(self) -> (&'static str, &'static str, ErrorKind) {
                match self {
                    $( Reason::$name => ($code, $description, ErrorKind::$kind), )*
                }
            }
        }
    };
}

reasons! {
    /// No token in the request.
    MissingToken => "missing_token", "no bearer token", MissingToken;
    /// More than one credential (two `Authorization` headers, or header and cookie).
    MultipleCredentials => "multiple_credentials", "more than one credential in the request", InvalidRequest;
    /// An `Authorization: Bearer` header without a token.
    EmptyBearer => "empty_bearer", "empty bearer token", InvalidRequest;
    /// The token exceeds the configured maximum length.
    TooLong => "too_long", "token too long", InvalidToken;
    /// The token is not three base64url segments, or its JSON is invalid.
    Malformed => "malformed", "malformed token", InvalidToken;
    /// The header names an algorithm that is not allowed.
    AlgorithmNotAllowed => "algorithm_not_allowed", "algorithm not allowed", InvalidToken;
    /// The header uses a feature this crate refuses (`crit`, `b64`, nested JWT, JWE).
    UnsupportedHeader => "unsupported_header", "unsupported token header", InvalidToken;
    /// The `typ` header does not match the configured policy.
    WrongType => "wrong_type", "wrong token type", InvalidToken;
    /// No key with the token's `kid` (or no single key for a token without `kid`).
    UnknownKey => "unknown_key", "unknown signing key", InvalidToken;
    /// The key exists but cannot verify this algorithm.
    KeyAlgorithmMismatch => "key_algorithm_mismatch", "algorithm does not match the key", InvalidToken;
    /// The signature does not verify.
    BadSignature => "bad_signature", "invalid signature", InvalidToken;
    /// `exp` is in the past (beyond the leeway).
    Expired => "expired", "token expired", InvalidToken;
    /// `nbf` is in the future (beyond the leeway).
    NotYetValid => "not_yet_valid", "token not yet valid", InvalidToken;
    /// A required claim is absent.
    MissingClaim => "missing_claim", "required claim missing", InvalidToken;
    /// A claim has the wrong type (e.g. `exp` as a string).
    InvalidClaim => "invalid_claim", "invalid claim", InvalidToken;
    /// `iss` is not a configured issuer.
    UnknownIssuer => "unknown_issuer", "untrusted issuer", InvalidToken;
    /// A tenant-templated issuer's tenant is not the token's tenant claim.
    IssuerTenantMismatch => "issuer_tenant_mismatch", "issuer does not match the token's tenant", InvalidToken;
    /// `aud` does not contain a configured audience.
    WrongAudience => "wrong_audience", "wrong audience", InvalidToken;
    /// A required scope is missing.
    InsufficientScope => "insufficient_scope", "insufficient scope", InsufficientScope;
    /// The key set has never been loaded, or is older than `max_stale`.
    KeysUnavailable => "keys_unavailable", "signing keys unavailable", KeysUnavailable;
    /// A rule layer or the extractor ran without `VerifyLayer` before it: a
    /// wiring mistake of the service, answered with 500.
    LayerMissing => "layer_missing", "authentication layer missing", Misconfigured;
    /// A handler asked for a claims type other than the one `VerifyLayer` was
    /// configured with: a wiring mistake of the service, answered with 500.
    ClaimsTypeMismatch => "claims_type_mismatch", "claims type mismatch", Misconfigured;
    /// A required role is missing.
    MissingRole => "missing_role", "required role missing", Forbidden;
    /// The tenant the request names is not the token's tenant.
    TenantMismatch => "tenant_mismatch", "tenant mismatch", Forbidden;
    /// The request names its tenant in several places that disagree (the
    /// `Host`, `X-Forwarded-Host` and `Forwarded` hosts, or several values
    /// of the tenant header), so which tenant it asks for is ambiguous.
    AmbiguousTenant => "ambiguous_tenant", "the request names its tenant ambiguously", InvalidRequest;
    /// A rule needs the token's tenant and the token has none.
    TenantMissing => "tenant_missing", "token has no tenant", Forbidden;
    /// The token's tenant is not one the rule allows.
    TenantNotAllowed => "tenant_not_allowed", "tenant not allowed", Forbidden;
    /// A claim a rule needs has an unexpected shape (e.g. `roles` as a
    /// string where an array is configured), so the rule cannot grant it.
    ClaimShape => "claim_shape", "claim has an unexpected shape", Forbidden;
    /// A policy refused the request.
    PolicyDenied => "policy_denied", "access denied by policy", Forbidden;
    /// The gRPC method is not listed and the default is to deny.
    MethodNotAllowed => "method_not_allowed", "method not allowed", Forbidden;
    /// The introspection endpoint says the token is not active (revoked,
    /// expired, unknown), or its answer describes a token this service must
    /// not accept (a refresh token, say).
    Inactive => "inactive", "token not active", InvalidToken;
    /// The introspection endpoint is down, too slow, overloaded or answered
    /// something that is not an RFC 7662 response: 503, never 401.
    IntrospectionUnavailable => "introspection_unavailable", "token introspection unavailable", IntrospectionUnavailable;
    /// `RequireActive` ran for a token whose issuer has no introspection
    /// configured: a wiring mistake of the service, answered with 500.
    IntrospectionMissing => "introspection_missing", "token introspection not configured", Misconfigured;
    /// A token bound to a key (`cnf.jkt`) came as a bearer token, or to a
    /// verifier without DPoP: whoever holds a bound token without its key
    /// must not use it (RFC 9449 §7.2).
    BoundTokenAsBearer => "bound_token_as_bearer", "token bound to a key presented as a bearer token", InvalidToken;
    /// A bearer token where DPoP is required.
    DpopRequired => "dpop_required", "a DPoP-bound token is required", InvalidToken;
    /// The `DPoP` scheme with a token not bound to a key (no `cnf.jkt`):
    /// nothing ties the proof to the token.
    UnboundDpopToken => "unbound_dpop_token", "token under the DPoP scheme is not bound to a key", InvalidToken;
    /// The DPoP proof is missing, fails a check or was used before; which
    /// check is in the audit record and the log.
    InvalidDpopProof => "invalid_dpop_proof", "invalid DPoP proof", InvalidDpopProof;
    /// The DPoP proof lacks a fresh nonce of this server; the answer
    /// carries one in `DPoP-Nonce`.
    UseDpopNonce => "use_dpop_nonce", "a DPoP nonce from this server is required", UseDpopNonce;
    /// The DPoP replay store does not answer: 503.
    DpopUnavailable => "dpop_unavailable", "DPoP proofs cannot be checked now", DpopUnavailable;
}

impl Reason {
    /// A short stable code for logs and metrics (`snake_case`).
    pub fn code(self) -> &'static str {
        self.row().0
    }

    /// A fixed, human-readable description (used as `error_description`).
    pub fn description(self) -> &'static str {
        self.row().1
    }

    /// The class of this reason.
    pub fn kind(self) -> ErrorKind {
        self.row().2
    }

    /// The HTTP status a refusal for this reason gets.
    pub fn status(self) -> StatusCode {
        self.kind().status()
    }

    /// The position in declaration order (indexes counters).
    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.description())
    }
}

/// Why a request was refused.
///
/// Rendered by [`to_response`](AuthError::to_response) as RFC 6750 for HTTP or
/// as a trailers-only gRPC status. A rejection
/// by the layers is always an `Ok(response)`, never a service error.
///
/// Each refusal has a [`Reason`] (a stable code for logs, metrics and the
/// audit record, and a fixed description that never echoes the request),
/// and the reason an [`ErrorKind`], which decides the status: 401 for a
/// missing or invalid token, 400 for a malformed request, 403 for a rule
/// that refuses (`insufficient_scope` only when scopes are missing), 503
/// when keys or the introspection endpoint are unavailable (the server's
/// fault, never 401), 500 for a wiring mistake. The layers render it with
/// [`DefaultReject`](crate::DefaultReject) unless you give
/// [`VerifyLayer::on_reject`](crate::VerifyLayer::on_reject) a handler of
/// your own.
///
/// # Example
///
/// ```
/// use authlayer::{AuthError, ErrorKind, Reason, RejectContext};
///
/// let err = AuthError::missing_token();
/// assert_eq!(err.kind(), ErrorKind::MissingToken);
/// assert_eq!(err.status(), http::StatusCode::UNAUTHORIZED);
/// assert_eq!(Reason::Expired.code(), "expired");
/// assert_eq!(Reason::Expired.description(), "token expired");
/// assert_eq!(Reason::Expired.status(), http::StatusCode::UNAUTHORIZED);
///
/// // The default rendering: an RFC 6750 challenge for HTTP…
/// let mut ctx = RejectContext::new("orders");
/// let res: http::Response<String> = err.to_response(&ctx);
/// assert_eq!(res.headers()["www-authenticate"], r#"Bearer realm="orders""#);
/// // …and for gRPC: HTTP 200, the status in the headers, an empty body.
/// ctx.grpc = true;
/// let res: http::Response<String> = err.to_response(&ctx);
/// assert_eq!(res.headers()["grpc-status"], "16");
/// ```
///
/// With feature `tonic`, an `AuthError` converts into a `tonic::Status`
/// (for handlers that check scopes themselves, with `?`):
///
/// ```
/// # #[cfg(feature = "tonic")] {
/// use authlayer::{AuthError, Reason};
///
/// let status = tonic::Status::from(AuthError::missing_token());
/// assert_eq!(status.code(), tonic::Code::Unauthenticated);
/// assert_eq!(status.message(), Reason::MissingToken.description());
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AuthError {
    reason: Reason,
    scope: Option<Arc<str>>,
    /// A refused DPoP proof's own reason: its code and description.
    proof: Option<(&'static str, &'static str)>,
    /// A fresh nonce for the `DPoP-Nonce` header.
    dpop_nonce: Option<Arc<str>>,
}

impl AuthError {
    pub(crate) fn new(reason: Reason) -> Self {
        Self {
            reason,
            scope: None,
            proof: None,
            dpop_nonce: None,
        }
    }

    /// The refusal of a DPoP proof for `reason`, by the check of `code`
    /// (described as `description`), with a fresh nonce for the client.
    pub(crate) fn dpop_proof(
        reason: Reason,
        code: &'static str,
        description: &'static str,
        nonce: Option<String>,
    ) -> Self {
        Self {
            reason,
            scope: None,
            proof: Some((code, description)),
            dpop_nonce: nonce.map(Arc::from),
        }
    }

    /// For a refused DPoP proof: the code of the check that refused it.
    pub(crate) fn proof_code(&self) -> Option<&'static str> {
        self.proof.map(|(code, _)| code)
    }

    /// For a refused DPoP proof: the description of the check that refused it.
    pub(crate) fn proof_description(&self) -> Option<&'static str> {
        self.proof.map(|(_, description)| description)
    }

    /// A nonce for the `DPoP-Nonce` header of this refusal (RFC 9449 §9),
    /// when server nonces are on ([`Dpop::nonces`](crate::Dpop::nonces)):
    /// always with [`ErrorKind::UseDpopNonce`], and with other refusals of
    /// the proof so the client's next one carries it. The default rendering
    /// sends it; a handler of your own should too.
    pub fn dpop_nonce(&self) -> Option<&str> {
        self.dpop_nonce.as_deref()
    }

    /// No credential was presented.
    pub fn missing_token() -> Self {
        Self::new(Reason::MissingToken)
    }

    pub(crate) fn insufficient_scope(scope: Arc<str>) -> Self {
        Self {
            scope: Some(scope),
            ..Self::new(Reason::InsufficientScope)
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
        self.kind().status()
    }

    /// The gRPC status code: 16 UNAUTHENTICATED, 7 `PERMISSION_DENIED`,
    /// 14 UNAVAILABLE, 3 `INVALID_ARGUMENT` or 13 INTERNAL.
    pub fn grpc_code(&self) -> u16 {
        self.kind().grpc_code()
    }
}

impl fmt::Display for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.reason.description())?;
        if let Some(description) = self.proof_description() {
            write!(f, ": {description}")?;
        }
        if let Some(scope) = &self.scope {
            write!(f, " (requires {scope})")?;
        }
        Ok(())
    }
}

impl std::error::Error for AuthError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_has_a_distinct_code_and_description() {
        let codes: std::collections::HashSet<_> = Reason::EVERY.iter().map(|r| r.code()).collect();
        let descriptions: std::collections::HashSet<_> =
            Reason::EVERY.iter().map(|r| r.description()).collect();
        assert_eq!(codes.len(), Reason::EVERY.len());
        assert_eq!(descriptions.len(), Reason::EVERY.len());
        assert!(
            codes
                .iter()
                .all(|c| c.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'))
        );
    }

    #[test]
    fn reason_index_is_its_position() {
        for (i, r) in Reason::EVERY.iter().enumerate() {
            assert_eq!(r.index(), i);
        }
    }

    #[test]
    fn status_follows_the_kind() {
        assert_eq!(Reason::Expired.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            Reason::MultipleCredentials.status(),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(Reason::InsufficientScope.status(), StatusCode::FORBIDDEN);
        assert_eq!(
            Reason::KeysUnavailable.status(),
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(
            Reason::LayerMissing.status(),
            StatusCode::INTERNAL_SERVER_ERROR
        );
        assert_eq!(AuthError::new(Reason::LayerMissing).grpc_code(), 13);
        assert_eq!(
            Reason::IntrospectionUnavailable.status(),
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(
            AuthError::new(Reason::IntrospectionUnavailable).grpc_code(),
            14
        );
        assert_eq!(Reason::Inactive.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(Reason::InvalidDpopProof.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(Reason::UseDpopNonce.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            Reason::DpopUnavailable.status(),
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(AuthError::new(Reason::DpopUnavailable).grpc_code(), 14);
        assert_eq!(AuthError::new(Reason::UseDpopNonce).grpc_code(), 16);
        assert_eq!(
            ErrorKind::InvalidDpopProof.challenge_code(),
            Some("invalid_dpop_proof")
        );
        assert_eq!(
            ErrorKind::UseDpopNonce.challenge_code(),
            Some("use_dpop_nonce")
        );
        assert_eq!(AuthError::insufficient_scope("a".into()).grpc_code(), 7);
    }
}
