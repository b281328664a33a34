//! Key sets: parsing JWKS documents, fetching them over HTTP, and keeping
//! them fresh.
//!
//! A [`Verifier`](crate::Verifier) holds one key source per trusted issuer.
//! Each source keeps an immutable snapshot of its keys behind an
//! [`ArcSwap`](arc_swap): requests load it without a lock, and a refresh
//! builds a new snapshot and swaps it in. A fetch that fails or brings
//! nothing usable never replaces the keys in force.

use std::time::Duration;

mod fetch;
mod keyset;
mod source;

pub(crate) use fetch::{FetchSettings, check_url, parse_url};
pub use keyset::AlgSet;
pub(crate) use keyset::{KeySet, Origin, VerifyKey, parse_alg, secret_key};
pub(crate) use source::{KeySource, Lifecycle, Location, Remote, Shared, Trigger};

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

/// Verifies the signature of a compact JWS against a JWK Set — the signature
/// layer only: the same header checks, key selection and algorithm rules as
/// for tokens, but no claims. Returns the decoded payload.
///
/// For conformance suites (Wycheproof) and tools. The set may hold `oct`
/// keys (as a static set may); HMAC still needs an HS algorithm in `allowed`.
/// Fails with [`Reason::KeysUnavailable`](crate::Reason::KeysUnavailable) only
/// when no crypto backend is compiled in.
///
/// ```
/// use authlayer::jwks::{AlgSet, verify_jws};
/// use authlayer::{Algorithm, Reason};
///
/// let jwks = r#"{"keys":[{"kty":"oct","kid":"k","k":"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"}]}"#;
/// let allowed = AlgSet::of([Algorithm::HS256]);
/// // The header `{}` names no algorithm.
/// assert_eq!(verify_jws("e30.e30.AAAA", jwks, allowed), Err(Reason::Malformed));
/// // `{"alg":"none"}` is never accepted.
/// assert_eq!(
///     verify_jws("eyJhbGciOiJub25lIn0.e30.AAAA", jwks, allowed),
///     Err(Reason::AlgorithmNotAllowed)
/// );
/// ```
pub fn verify_jws(token: &str, jwks: &str, allowed: AlgSet) -> Result<Vec<u8>, crate::Reason> {
    use crate::Reason;
    // As `build()` does: choose the crypto provider before any verification
    // (with no backend at all, nothing can be verified).
    crate::verifier::ensure_crypto_provider().map_err(|_| Reason::KeysUnavailable)?;
    let set = KeySet::from_json(jwks.as_bytes(), allowed, 64, Origin::Static)
        .map_err(|_| Reason::UnknownKey)?;
    let compact = crate::jws::parse(token, 64 * 1024, allowed, crate::TypPolicy::Any)?;
    crate::jws::verify_with(&set, &compact).map_err(|miss| match miss {
        crate::jws::KeyMiss::Mismatch => Reason::KeyAlgorithmMismatch,
        crate::jws::KeyMiss::BadSignature { .. } => Reason::BadSignature,
        _ => Reason::UnknownKey,
    })?;
    crate::jws::payload(&compact)
}
