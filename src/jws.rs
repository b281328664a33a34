//! The JWS compact serialization: split, header checks (including the
//! [`TypPolicy`]), key selection and signature verification. Used by the
//! [`Verifier`](crate::Verifier) for every token, and by [`verify_jws`]
//! (public as `test_util::verify_jws`) for the signature layer alone.

use std::borrow::Cow;
use std::sync::Arc;

use crate::algorithm::Algorithm;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use serde::de::IgnoredAny;

use crate::error::Reason;
use crate::jwks::{AlgSet, KeySet, VerifyKey, parse_alg};

/// Largest decoded JOSE header accepted: bounds the JSON work done before
/// any signature check (real headers are under 200 bytes).
const MAX_HEADER_LEN: usize = 4096;

/// What the `typ` header of a token must say; set with
/// [`VerifierBuilder::typ`](crate::VerifierBuilder::typ).
///
/// [`AccessToken`](Self::AccessToken) is RFC 9068's defence against token
/// confusion: an ID token (or any other JWT the issuer signs with the same
/// keys, for the same audience) is refused. Use it when your issuer marks
/// its access tokens `at+jwt` (the bundled example issuer does; look at a
/// token's header); Keycloak, Authentik and most providers send `JWT`, so
/// the default is [`Any`](Self::Any).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use authlayer::test_util::TestIssuer;
/// use authlayer::{Reason, TypPolicy, Verifier};
///
/// let issuer = TestIssuer::new("https://id.example");
/// let verifier = Verifier::builder()
///     .issuer(issuer.issuer())
///     .jwks_json(issuer.jwks_json())
///     .audience("urn:orders")
///     .typ(TypPolicy::AccessToken)
///     .build()
///     .await?;
/// let access = issuer.token().audience("urn:orders").header("typ", "at+jwt").sign();
/// assert!(verifier.verify(&access).await.is_ok());
/// let id_token = issuer.token().audience("urn:orders").header("typ", "JWT").sign();
/// assert_eq!(verifier.verify(&id_token).await.unwrap_err().reason(), Reason::WrongType);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum TypPolicy {
    /// Any `typ`, or none. Keycloak, Authentik and most providers send `JWT`.
    #[default]
    Any,
    /// RFC 9068 access tokens only: `typ` must be `at+jwt` (or
    /// `application/at+jwt`), case-insensitively. Refuses ID tokens and other
    /// JWTs signed by the same keys.
    AccessToken,
}

/// A token split into its parts, with its header checked.
pub(crate) struct Compact<'t> {
    /// `header.payload`: what the signature covers.
    pub(crate) message: &'t str,
    pub(crate) payload_b64: &'t str,
    pub(crate) signature: &'t str,
    pub(crate) alg: Algorithm,
    /// The decoded header, which the `kid` is usually a slice of.
    header: String,
    kid: Option<Kid>,
}

/// Where the `kid` is: a slice of the decoded header, or (when the JSON
/// string had escapes to resolve) its own copy. Most headers have no
/// escapes, and then reading the kid allocates nothing.
enum Kid {
    At(std::ops::Range<usize>),
    Unescaped(String),
}

impl Compact<'_> {
    /// Ignores the `kid` header: the caller names the one key to use (a
    /// DPoP proof carries its key).
    pub(crate) fn forget_kid(&mut self) {
        self.kid = None;
    }

    /// The `kid` header, if any.
    pub(crate) fn kid(&self) -> Option<&str> {
        match self.kid.as_ref()? {
            Kid::At(range) => self.header.get(range.clone()),
            Kid::Unescaped(kid) => Some(kid),
        }
    }
}

#[derive(Deserialize)]
struct WireHeader<'a> {
    #[serde(borrow)]
    alg: Cow<'a, str>,
    #[serde(borrow, default)]
    kid: Option<Text<'a>>,
    #[serde(borrow, default)]
    typ: Option<Text<'a>>,
    #[serde(borrow, default)]
    cty: Option<Text<'a>>,
    #[serde(default)]
    crit: Present,
    #[serde(default)]
    b64: Present,
    #[serde(default)]
    enc: Present,
    #[serde(default)]
    zip: Present,
}

/// A string member, borrowed from the header unless it has escapes to
/// resolve: serde borrows a `Cow` field, but not one inside an `Option`.
struct Text<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Cow<'de, str>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Cow::Borrowed(v))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Cow::Owned(v.to_owned()))
            }
            fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
                Ok(Cow::Owned(v))
            }
        }
        deserializer.deserialize_str(Visitor).map(Text)
    }
}

/// Whether a header member is there at all, whatever its value: `Option`
/// would read `"crit": null` as absent, where other libraries refuse it.
#[derive(Default)]
struct Present(bool);

impl<'de> Deserialize<'de> for Present {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        IgnoredAny::deserialize(deserializer).map(|_| Present(true))
    }
}

/// Splits `token` and checks its header. Everything here is bounded and
/// happens before any key lookup or signature work.
pub(crate) fn parse(
    token: &str,
    max_len: usize,
    allowed: AlgSet,
    typ: TypPolicy,
) -> Result<Compact<'_>, Reason> {
    // SECURITY (CVE-2025-30204-style DoS): bound the token before any
    // decoding or JSON work.
    if token.len() > max_len {
        return Err(Reason::TooLong);
    }
    let (message, signature) = token.rsplit_once('.').ok_or(Reason::Malformed)?;
    let (header_b64, payload_b64) = message.split_once('.').ok_or(Reason::Malformed)?;
    // Exactly three non-empty segments: JWE (five), unsecured JWS with an
    // empty signature and trailing-dot variants all stop here.
    if header_b64.is_empty()
        || payload_b64.is_empty()
        || signature.is_empty()
        || payload_b64.contains('.')
        || header_b64.len() > MAX_HEADER_LEN * 4 / 3 + 4
    {
        return Err(Reason::Malformed);
    }
    // Strict base64url: no padding, no whitespace, no non-canonical trailing bits.
    let header_json = URL_SAFE_NO_PAD
        .decode(header_b64)
        .map_err(|_| Reason::Malformed)?;
    // A JOSE header is a JSON object (RFC 7515 §4). serde would also read
    // the struct from an array (`["RS256"]`), which no other JOSE library
    // accepts: refuse anything else before parsing.
    if header_json.trim_ascii_start().first() != Some(&b'{') {
        return Err(Reason::Malformed);
    }
    // The header must be UTF-8 as a whole (RFC 8725 §3.7): serde_json does
    // not check the strings of members it skips.
    let header_json = String::from_utf8(header_json).map_err(|_| Reason::Malformed)?;
    // Duplicate members among the fields below fail here (serde refuses
    // duplicate fields), so a header cannot say two things at once.
    let header: WireHeader<'_> =
        serde_json::from_str(&header_json).map_err(|_| Reason::Malformed)?;

    // SECURITY (RFC 8725 §3.1, CVE-2015-9235): the algorithm must be one we
    // allow, by exact name; `none` and unknown names never parse.
    let alg = parse_alg(&header.alg).ok_or(Reason::AlgorithmNotAllowed)?;
    if !allowed.contains(alg) {
        return Err(Reason::AlgorithmNotAllowed);
    }
    // SECURITY (RFC 7515 §4.1.11, CVE-2025-59420): we understand no critical
    // extension, so any `crit` fails; `b64` changes what is signed;
    // `enc`/`zip` mean JWE; `cty: JWT` is a nested token whose inner claims
    // nobody validated (CVE-2024-33664).
    if header.crit.0 || header.b64.0 || header.enc.0 || header.zip.0 {
        return Err(Reason::UnsupportedHeader);
    }
    if header
        .cty
        .as_ref()
        .is_some_and(|cty| cty.0.eq_ignore_ascii_case("JWT"))
    {
        return Err(Reason::UnsupportedHeader);
    }
    if typ == TypPolicy::AccessToken
        && !header.typ.as_ref().map(|t| &*t.0).is_some_and(|t| {
            t.eq_ignore_ascii_case("at+jwt") || t.eq_ignore_ascii_case("application/at+jwt")
        })
    {
        return Err(Reason::WrongType);
    }
    let kid = header.kid.map(|Text(kid)| match kid {
        Cow::Borrowed(kid) => {
            // A borrowed string is a slice of `header_json`: find where (and
            // copy it should serde ever lend from elsewhere).
            let at = kid
                .as_ptr()
                .addr()
                .checked_sub(header_json.as_ptr().addr())
                .map(|start| start..start + kid.len())
                .filter(|range| header_json.get(range.clone()) == Some(kid));
            at.map_or_else(|| Kid::Unescaped(kid.to_owned()), Kid::At)
        }
        Cow::Owned(kid) => Kid::Unescaped(kid),
    });
    Ok(Compact {
        message,
        payload_b64,
        signature,
        alg,
        header: header_json,
        kid,
    })
}

/// Why no key verified the signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyMiss {
    /// No key with this kid (or, without kid, no key for the alg): a refetch may help.
    Unknown,
    /// The kid exists but its key cannot verify this alg.
    Mismatch,
    /// No kid and several keys fit the alg.
    Ambiguous,
    /// The key's signature check failed; `kidless` tokens may be explained by rotation.
    BadSignature { kidless: bool },
}

/// Verifies the signature of `jws` with a key of `set`.
///
/// SECURITY (RFC 8725 §3.10, CVE-2018-0114): keys come only from the configured
/// key set, by `kid`; `jwk`, `jku`, `x5u` and `x5c` headers are never read.
/// Without a kid, the token is accepted only when exactly one key fits its
/// alg: keys are never tried one after another.
pub(crate) fn verify_with<'s>(
    set: &'s KeySet,
    jws: &Compact<'_>,
) -> Result<&'s Arc<VerifyKey>, KeyMiss> {
    if let Some(kid) = jws.kid() {
        let candidates = set.by_kid(kid);
        if candidates.is_empty() {
            return Err(KeyMiss::Unknown);
        }
        let key = candidates
            .iter()
            .find(|k| k.algs.contains(jws.alg))
            .ok_or(KeyMiss::Mismatch)?;
        return if signature_ok(jws, key) {
            Ok(key)
        } else {
            Err(KeyMiss::BadSignature { kidless: false })
        };
    }
    let mut fitting = set.for_alg(jws.alg);
    match (fitting.next(), fitting.next()) {
        (None, _) => Err(KeyMiss::Unknown),
        (Some(key), None) if signature_ok(jws, key) => Ok(key),
        (Some(_), None) => Err(KeyMiss::BadSignature { kidless: true }),
        (Some(_), Some(_)) => Err(KeyMiss::Ambiguous),
    }
}

fn signature_ok(jws: &Compact<'_>, key: &VerifyKey) -> bool {
    // The key checks the algorithm is one of its own again, then verifies
    // with what it parsed when its key set was read (HMAC: in constant time).
    key.verifies(jws.alg, jws.message.as_bytes(), jws.signature)
}

/// Decodes the payload segment.
pub(crate) fn payload(jws: &Compact<'_>) -> Result<Vec<u8>, Reason> {
    URL_SAFE_NO_PAD
        .decode(jws.payload_b64)
        .map_err(|_| Reason::Malformed)
}

/// The signature layer alone, for conformance suites and fuzzing (see
/// [`crate::test_util::verify_jws`]).
#[cfg(feature = "test-util")]
pub(crate) fn verify_jws(token: &str, jwks: &str, allowed: AlgSet) -> Result<Vec<u8>, Reason> {
    // As `build()` does: choose the crypto provider before any verification
    // (with no backend at all, nothing can be verified).
    crate::crypto::ensure_provider().map_err(|_| Reason::KeysUnavailable)?;
    let set = KeySet::from_json(jwks.as_bytes(), allowed, 64, crate::jwks::Origin::Static)
        .map_err(|_| Reason::UnknownKey)?;
    let compact = parse(token, 64 * 1024, allowed, TypPolicy::Any)?;
    verify_with(&set, &compact).map_err(|miss| match miss {
        KeyMiss::Mismatch => Reason::KeyAlgorithmMismatch,
        KeyMiss::BadSignature { .. } => Reason::BadSignature,
        _ => Reason::UnknownKey,
    })?;
    payload(&compact)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token_with_header(header: &str) -> String {
        format!("{}.e30.c2ln", URL_SAFE_NO_PAD.encode(header))
    }

    fn kid_of(header: &str) -> Option<String> {
        let token = token_with_header(header);
        let jws = parse(
            &token,
            64 * 1024,
            AlgSet::of([Algorithm::RS256]),
            TypPolicy::Any,
        )
        .unwrap();
        jws.kid().map(str::to_owned)
    }

    #[test]
    fn kid_is_read_from_the_header_with_or_without_escapes() {
        assert_eq!(
            kid_of(r#"{"alg":"RS256","kid":"k-1"}"#).as_deref(),
            Some("k-1")
        );
        assert_eq!(
            kid_of(r#"{"kid":"k\u002d1\"","alg":"RS256"}"#).as_deref(),
            Some("k-1\"")
        );
        assert_eq!(kid_of(r#"{"alg":"RS256","kid":""}"#).as_deref(), Some(""));
        assert_eq!(kid_of(r#"{"alg":"RS256"}"#), None);
    }

    #[test]
    fn a_plain_kid_is_a_slice_of_the_header() {
        let token = token_with_header(r#"{"alg":"RS256","kid":"rsa-1"}"#);
        let jws = parse(
            &token,
            64 * 1024,
            AlgSet::of([Algorithm::RS256]),
            TypPolicy::Any,
        )
        .unwrap();
        assert!(matches!(jws.kid, Some(Kid::At(_))));
        assert_eq!(jws.kid(), Some("rsa-1"));
    }
}
