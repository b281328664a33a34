//! [`DpopKey`]: the client's side of DPoP (RFC 9449): a key pair whose
//! public half the tokens are bound to, a fresh signed proof per request,
//! and the server nonces it was asked to echo. The user's documentation is
//! on the type.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use jsonwebtoken::EncodingKey;
use jsonwebtoken::jwk::Jwk;
use serde::Serialize;
use url::Url;

use super::OutboundError;
use crate::algorithm::Algorithm;
use crate::error::BuildError;
use crate::layer::AccessToken;

/// The `DPoP` request header (the proof).
pub(crate) const DPOP: HeaderName = HeaderName::from_static("dpop");
/// The `DPoP-Nonce` response header (RFC 9449 §8).
pub(crate) const DPOP_NONCE: HeaderName = HeaderName::from_static("dpop-nonce");

/// The setting key errors name.
const SETTING: &str = "dpop_key";

/// SECURITY (memory): a client talks to a handful of servers; a hostile or
/// a huge set of them cannot grow the nonce memory beyond this many origins.
const MAX_ORIGINS: usize = 256;
/// SECURITY (memory, header injection): a nonce is an opaque token of
/// visible ASCII (RFC 9449 §8.1 `NQCHAR`); longer or other ones are not kept.
const MAX_NONCE_LEN: usize = 1024;

/// A DPoP proof key: the key pair an outbound client proves possession of
/// (RFC 9449). Give it to
/// [`ClientCredentialsBuilder::dpop`](super::ClientCredentialsBuilder::dpop)
/// or [`TokenExchangeBuilder::dpop`](super::TokenExchangeBuilder::dpop):
/// the token endpoint then binds the tokens it issues to this key
/// (`cnf.jkt` = [`thumbprint`](Self::thumbprint)), and every request that
/// carries such a token carries a fresh proof signed with it.
///
/// Cheap to clone: clones share the key and the nonces servers asked it
/// to echo (one per origin, from the `DPoP-Nonce` header of their
/// answers), so every client using the same key sends the latest one.
///
/// ES256 (P-256) keys are generated in memory
/// ([`generate_es256`](Self::generate_es256)); ES256, ES384 and EdDSA
/// (Ed25519) keys load from PKCS#8 (`-----BEGIN PRIVATE KEY-----`). The
/// private key never appears in `Debug` output or a log line.
///
/// # Example
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use authlayer::outbound::DpopKey;
///
/// let key = DpopKey::generate_es256()?;
/// // What an issuer puts in `cnf.jkt` of the tokens bound to this key.
/// assert_eq!(key.thumbprint().len(), 43);
/// let proof = key.proof(&http::Method::GET, "https://api.example/orders?id=1", None)?;
/// assert_eq!(proof.to_str()?.split('.').count(), 3);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct DpopKey {
    inner: Arc<Inner>,
}

struct Inner {
    alg: Algorithm,
    encoding: EncodingKey,
    /// The public key only (RFC 7517), as the proof's `jwk` header carries it.
    jwk: Jwk,
    thumbprint: String,
    /// The last nonce each origin sent.
    nonces: Mutex<HashMap<String, String>>,
}

impl fmt::Debug for DpopKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // SECURITY: the private key never reaches a log line.
        f.debug_struct("DpopKey")
            .field("alg", &self.inner.alg)
            .field("thumbprint", &self.inner.thumbprint)
            .finish_non_exhaustive()
    }
}

/// The claims of a proof (RFC 9449 §4.2).
#[derive(Serialize)]
struct ProofClaims<'a> {
    jti: &'a str,
    htm: &'a str,
    htu: &'a str,
    iat: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    ath: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    nonce: Option<&'a str>,
}

/// `N` random bytes from the crypto backend compiled in.
#[cfg(feature = "aws-lc-rs")]
fn random<const N: usize>() -> Option<[u8; N]> {
    let mut out = [0; N];
    aws_lc_rs::rand::fill(&mut out).ok()?;
    Some(out)
}

/// `N` random bytes from the crypto backend compiled in.
#[cfg(all(feature = "rust-crypto", not(feature = "aws-lc-rs")))]
fn random<const N: usize>() -> Option<[u8; N]> {
    use p256::elliptic_curve::Generate as _;
    <[u8; N]>::try_generate().ok()
}

/// Without a backend feature there is no randomness to draw from.
#[cfg(not(any(feature = "aws-lc-rs", feature = "rust-crypto")))]
fn random<const N: usize>() -> Option<[u8; N]> {
    None
}

/// The DER of a PKCS#8 PEM document (RFC 7468 §10, `PRIVATE KEY`).
fn pem_to_der(pem: &str) -> Result<Vec<u8>, BuildError> {
    const BEGIN: &str = "-----BEGIN PRIVATE KEY-----";
    const END: &str = "-----END PRIVATE KEY-----";
    let refused = |reason: &str| BuildError::setting_error(SETTING, reason);
    let start = pem.find(BEGIN).ok_or_else(|| {
        refused("no \"-----BEGIN PRIVATE KEY-----\" line (a PKCS#8 key is needed; convert an \"EC PRIVATE KEY\" with `openssl pkcs8 -topk8 -nocrypt`)")
    })?;
    let body = &pem[start + BEGIN.len()..];
    let end = body
        .find(END)
        .ok_or_else(|| refused("no \"-----END PRIVATE KEY-----\" line"))?;
    let b64: String = body[..end]
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    STANDARD
        .decode(b64)
        .map_err(|_| refused("the PEM body is not base64"))
}

impl DpopKey {
    /// A new P-256 key pair for ES256 proofs, from the system's random
    /// source. It lives in memory only: tokens bound to it are useless once
    /// the process ends, which is what a service's own tokens want.
    #[cfg(any(feature = "aws-lc-rs", feature = "rust-crypto"))]
    #[cfg_attr(docsrs, doc(cfg(any(feature = "aws-lc-rs", feature = "rust-crypto"))))]
    pub fn generate_es256() -> Result<Self, BuildError> {
        let failed = || BuildError::setting_error(SETTING, "cannot generate a P-256 key");
        #[cfg(feature = "aws-lc-rs")]
        let der = {
            use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
            let pair =
                EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).map_err(|_| failed())?;
            pair.to_pkcs8v1().map_err(|_| failed())?.as_ref().to_vec()
        };
        #[cfg(all(feature = "rust-crypto", not(feature = "aws-lc-rs")))]
        let der = {
            use p256::elliptic_curve::Generate as _;
            use p256::pkcs8::EncodePrivateKey as _;
            let secret = p256::SecretKey::try_generate().map_err(|_| failed())?;
            secret
                .to_pkcs8_der()
                .map_err(|_| failed())?
                .as_bytes()
                .to_vec()
        };
        Self::from_pkcs8_der(&der, Algorithm::ES256)
    }

    /// A key from its PKCS#8 DER encoding, for proofs signed with `alg`:
    /// ES256 (a P-256 key), ES384 (P-384) or EdDSA (Ed25519). A key that
    /// does not parse as one for `alg`, or another algorithm, is a
    /// [`BuildError`] naming `dpop_key`.
    pub fn from_pkcs8_der(der: &[u8], alg: Algorithm) -> Result<Self, BuildError> {
        // jsonwebtoken panics without a provider: choose one first.
        crate::crypto::ensure_provider()?;
        let encoding = match alg {
            Algorithm::ES256 | Algorithm::ES384 => EncodingKey::from_ec_der(der),
            Algorithm::EdDSA => EncodingKey::from_ed_der(der),
            other => {
                return Err(BuildError::setting_error(
                    SETTING,
                    format!("{other:?} is not offered for DPoP proofs: use ES256, ES384 or EdDSA"),
                ));
            }
        };
        let jwt_alg = alg.to_jwt();
        let jwk = Jwk::from_encoding_key(&encoding, jwt_alg).map_err(|_| {
            BuildError::setting_error(SETTING, format!("not a PKCS#8 private key for {alg:?}"))
        })?;
        let Ok(serde_json::Value::Object(members)) = serde_json::to_value(&jwk) else {
            return Err(BuildError::setting_error(SETTING, "no public JWK"));
        };
        let thumbprint = crate::dpop::thumbprint(&members)
            .map_err(|_| BuildError::setting_error(SETTING, "no RFC 7638 thumbprint"))?;
        // SECURITY: fail here, once, rather than send proofs whose `jti`
        // is not random.
        if random::<16>().is_none() {
            return Err(BuildError::setting_error(
                SETTING,
                "no random source: enable feature \"aws-lc-rs\" or \"rust-crypto\"",
            ));
        }
        // SECURITY: prove the key signs before any request depends on it
        // (a P-384 key handed in as ES256 fails here, not on each call).
        let probe = Self {
            inner: Arc::new(Inner {
                alg,
                encoding,
                jwk,
                thumbprint,
                nonces: Mutex::new(HashMap::new()),
            }),
        };
        probe
            .sign(&Method::GET, "https://probe.invalid/", None, None)
            .map_err(|_| {
                BuildError::setting_error(SETTING, format!("cannot sign {alg:?} with this key"))
            })?;
        Ok(probe)
    }

    /// A key from a PKCS#8 PEM document (`-----BEGIN PRIVATE KEY-----`);
    /// see [`from_pkcs8_der`](Self::from_pkcs8_der).
    pub fn from_pkcs8_pem(pem: &str, alg: Algorithm) -> Result<Self, BuildError> {
        Self::from_pkcs8_der(&pem_to_der(pem)?, alg)
    }

    /// The algorithm proofs are signed with.
    pub fn algorithm(&self) -> Algorithm {
        self.inner.alg
    }

    /// The RFC 7638 SHA-256 thumbprint of the public key, base64url: what
    /// the `cnf.jkt` claim of a token bound to this key holds.
    pub fn thumbprint(&self) -> &str {
        &self.inner.thumbprint
    }

    /// A fresh proof for one request (`DPoP` header value): `method`, the
    /// target `uri` (absolute; its query and fragment are left out of
    /// `htu`), a random `jti`, `iat` now, `ath` when `access_token` goes
    /// with it, and the last nonce `uri`'s origin sent, if any.
    ///
    /// The layers and builders call this for you; it is public for clients
    /// that sign their own requests.
    pub fn proof(
        &self,
        method: &Method,
        uri: &str,
        access_token: Option<&AccessToken>,
    ) -> Result<HeaderValue, OutboundError> {
        let target = Target::parse(uri)?;
        let nonce = self.nonce_for(&target.origin);
        self.sign(
            method,
            &target.htu,
            access_token.map(AccessToken::as_str),
            nonce.as_deref(),
        )
    }

    /// Reads a server's answer to a request sent to `uri`: remembers the
    /// `DPoP-Nonce` it carries (any status: servers hand out fresh nonces
    /// on successes too) for the next proof to that origin, and says
    /// whether the answer asks for exactly that: a `use_dpop_nonce` error
    /// (`400` from a token endpoint, `401` with `WWW-Authenticate: DPoP
    /// error="use_dpop_nonce"` from a resource server, RFC 9449 §8–9) with
    /// a new nonce. Then sending the request once more, with a new proof,
    /// is worth it; retrying is the caller's business (only it knows
    /// whether the request may be sent twice). The token endpoint
    /// requests of this crate retry once on their own.
    pub fn observe_response(&self, uri: &str, status: StatusCode, headers: &HeaderMap) -> bool {
        let Ok(target) = Target::parse(uri) else {
            return false;
        };
        let Some(nonce) = usable_nonce(headers) else {
            return false;
        };
        let changed = self.remember(&target.origin, nonce);
        let challenged = match status {
            StatusCode::UNAUTHORIZED => headers
                .get_all(http::header::WWW_AUTHENTICATE)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .any(|v| v.contains("use_dpop_nonce")),
            // The token endpoint's error is in its JSON body: the caller
            // (`Endpoint`) reads it; a 400 with a new nonce is the signal.
            StatusCode::BAD_REQUEST => true,
            _ => false,
        };
        challenged && changed
    }

    /// Remembers `nonce` for `origin`; whether it differs from the one held.
    pub(crate) fn remember(&self, origin: &str, nonce: &str) -> bool {
        let mut nonces = self
            .inner
            .nonces
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if nonces.get(origin).is_some_and(|held| held == nonce) {
            return false;
        }
        if nonces.len() >= MAX_ORIGINS && !nonces.contains_key(origin) {
            // Any one makes room: a dropped nonce costs one more challenge.
            if let Some(evicted) = nonces.keys().next().cloned() {
                nonces.remove(&evicted);
            }
        }
        nonces.insert(origin.to_owned(), nonce.to_owned());
        true
    }

    fn nonce_for(&self, origin: &str) -> Option<String> {
        self.inner
            .nonces
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(origin)
            .cloned()
    }

    fn sign(
        &self,
        method: &Method,
        htu: &str,
        access_token: Option<&str>,
        nonce: Option<&str>,
    ) -> Result<HeaderValue, OutboundError> {
        let failed = |reason: &str| OutboundError::Dpop {
            reason: reason.to_owned(),
        };
        let jti = random::<16>().ok_or_else(|| failed("no random source for jti"))?;
        let jti = URL_SAFE_NO_PAD.encode(jti);
        let iat = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let ath = match access_token {
            Some(token) => Some(
                crate::dpop::sha256_b64(token.as_bytes())
                    .map_err(|_| failed("no SHA-256 for ath"))?,
            ),
            None => None,
        };
        let claims = ProofClaims {
            jti: &jti,
            htm: method.as_str(),
            htu,
            iat,
            ath,
            nonce,
        };
        let mut header = jsonwebtoken::Header::new(self.inner.alg.to_jwt());
        header.typ = Some("dpop+jwt".to_owned());
        header.jwk = Some(self.inner.jwk.clone());
        let proof = jsonwebtoken::encode(&header, &claims, &self.inner.encoding)
            .map_err(|_| failed("signing failed"))?;
        HeaderValue::try_from(proof).map_err(|_| failed("the proof is not a header value"))
    }
}

/// The nonce in a `DPoP-Nonce` header, if there is exactly one and it is
/// one a proof may carry.
pub(crate) fn usable_nonce(headers: &HeaderMap) -> Option<&str> {
    let mut values = headers.get_all(DPOP_NONCE).iter();
    let value = values.next()?;
    if values.next().is_some() {
        return None;
    }
    let nonce = value.to_str().ok()?;
    // RFC 9449 §8.1: nonce = 1*NQCHAR, NQCHAR = %x21 / %x23-5B / %x5D-7E.
    let valid = !nonce.is_empty()
        && nonce.len() <= MAX_NONCE_LEN
        && nonce
            .bytes()
            .all(|b| matches!(b, 0x21 | 0x23..=0x5B | 0x5D..=0x7E));
    valid.then_some(nonce)
}

/// What a proof for one URI names: the `htu` and the origin (whose nonce
/// goes with it).
pub(crate) struct Target {
    pub(crate) htu: String,
    pub(crate) origin: String,
}

impl Target {
    pub(crate) fn parse(uri: &str) -> Result<Self, OutboundError> {
        let refused = || {
            OutboundError::Dpop {
            reason: "a DPoP proof needs the request's absolute http(s) URI (scheme and host): set it on the request".into(),
        }
        };
        let mut url = Url::parse(uri).map_err(|_| refused())?;
        if !matches!(url.scheme(), "http" | "https") || !url.has_host() {
            return Err(refused());
        }
        // RFC 9449 §4.2: `htu` is the target URI without query and fragment.
        url.set_query(None);
        url.set_fragment(None);
        Ok(Self {
            origin: url.origin().ascii_serialization(),
            htu: url.into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;
    use crate::dpop::{ProofPolicy, ProofRequest, check_proof};

    fn now() -> i64 {
        i64::try_from(
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_secs(),
        )
        .unwrap()
    }

    fn claims(proof: &HeaderValue) -> Value {
        let part = proof.to_str().unwrap().split('.').nth(1).unwrap();
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
    }

    fn header(proof: &HeaderValue) -> Value {
        let part = proof.to_str().unwrap().split('.').next().unwrap();
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
    }

    #[tokio::test]
    async fn a_proof_passes_the_crates_own_checks_with_ath_and_the_bound_thumbprint() {
        let key = DpopKey::generate_es256().unwrap();
        let token = AccessToken::new("eyJ.the.token");
        let proof = key
            .proof(
                &Method::POST,
                "https://api.example/orders?x=1#top",
                Some(&token),
            )
            .unwrap();
        let request = ProofRequest {
            method: &Method::POST,
            uri: "https://api.example/orders",
            access_token: Some(token.as_str()),
            expected_jkt: Some(key.thumbprint()),
        };
        let info = check_proof([&proof], &request, now(), &ProofPolicy::new())
            .await
            .unwrap();
        assert_eq!(info.jkt, key.thumbprint());
        let c = claims(&proof);
        assert_eq!(
            c["htu"], "https://api.example/orders",
            "no query, no fragment"
        );
        assert_eq!(c["htm"], "POST");
        assert!(c.get("nonce").is_none());
        let h = header(&proof);
        assert_eq!(h["typ"], "dpop+jwt");
        assert_eq!(h["alg"], "ES256");
        assert!(h["jwk"].get("d").is_none(), "public key only: {h}");
        // Another method or another token: the same proof is refused.
        let other = ProofRequest {
            method: &Method::GET,
            ..request
        };
        assert!(
            check_proof([&proof], &other, now(), &ProofPolicy::new())
                .await
                .is_err()
        );
    }

    #[test]
    fn every_proof_has_a_fresh_jti() {
        let key = DpopKey::generate_es256().unwrap();
        let jtis: std::collections::HashSet<String> = (0..50)
            .map(|_| {
                let proof = key.proof(&Method::GET, "https://a.example/", None).unwrap();
                claims(&proof)["jti"].as_str().unwrap().to_owned()
            })
            .collect();
        assert_eq!(jtis.len(), 50);
        assert!(jtis.iter().all(|j| j.len() == 22), "128 bits, base64url");
    }

    #[test]
    fn a_nonce_is_echoed_to_its_origin_only() {
        let key = DpopKey::generate_es256().unwrap();
        let mut headers = HeaderMap::new();
        headers.insert(DPOP_NONCE, HeaderValue::from_static("n-1"));
        headers.insert(
            http::header::WWW_AUTHENTICATE,
            HeaderValue::from_static("DPoP error=\"use_dpop_nonce\""),
        );
        assert!(key.observe_response("https://a.example/x", StatusCode::UNAUTHORIZED, &headers));
        // The same nonce again: no point in retrying.
        assert!(!key.observe_response("https://a.example/y", StatusCode::UNAUTHORIZED, &headers));
        let to_a = key
            .proof(&Method::GET, "https://a.example:443/z", None)
            .unwrap();
        assert_eq!(claims(&to_a)["nonce"], "n-1");
        let to_b = key
            .proof(&Method::GET, "https://b.example/z", None)
            .unwrap();
        assert!(claims(&to_b).get("nonce").is_none());
        // A success carrying a fresh nonce updates it without a retry.
        headers.insert(DPOP_NONCE, HeaderValue::from_static("n-2"));
        assert!(!key.observe_response("https://a.example/", StatusCode::OK, &headers));
        let to_a = key.proof(&Method::GET, "https://a.example/", None).unwrap();
        assert_eq!(claims(&to_a)["nonce"], "n-2");
    }

    #[test]
    fn a_nonce_a_proof_cannot_carry_is_not_kept() {
        let key = DpopKey::generate_es256().unwrap();
        for bad in ["a\"b", "a b", "a\\b", ""] {
            let mut headers = HeaderMap::new();
            headers.insert(DPOP_NONCE, HeaderValue::from_str(bad).unwrap());
            assert!(!key.observe_response("https://a.example/", StatusCode::BAD_REQUEST, &headers));
        }
        let long = "n".repeat(MAX_NONCE_LEN + 1);
        let mut headers = HeaderMap::new();
        headers.insert(DPOP_NONCE, HeaderValue::from_str(&long).unwrap());
        assert!(!key.observe_response("https://a.example/", StatusCode::BAD_REQUEST, &headers));
        let proof = key.proof(&Method::GET, "https://a.example/", None).unwrap();
        assert!(claims(&proof).get("nonce").is_none());
    }

    #[test]
    fn nonce_memory_is_bounded() {
        let key = DpopKey::generate_es256().unwrap();
        for i in 0..MAX_ORIGINS + 10 {
            key.remember(&format!("https://h{i}.example"), "n");
        }
        assert_eq!(key.inner.nonces.lock().unwrap().len(), MAX_ORIGINS);
    }

    #[test]
    fn a_relative_uri_has_no_proof() {
        let key = DpopKey::generate_es256().unwrap();
        for uri in ["/orders/1", "ftp://a.example/", "urn:x"] {
            let err = key.proof(&Method::GET, uri, None).unwrap_err();
            assert!(matches!(err, OutboundError::Dpop { .. }), "{uri}: {err}");
        }
    }

    #[test]
    fn keys_load_from_pkcs8_pem_and_der_and_keep_their_thumbprint() {
        let key = DpopKey::generate_es256().unwrap();
        let der = key_der(&key);
        let pem = format!(
            "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
            STANDARD.encode(&der)
        );
        let loaded = DpopKey::from_pkcs8_pem(&pem, Algorithm::ES256).unwrap();
        assert_eq!(loaded.thumbprint(), key.thumbprint());
        assert_eq!(loaded.algorithm(), Algorithm::ES256);
        // The wrong algorithm for the key, or not a key at all.
        for (der, alg) in [
            (der.as_slice(), Algorithm::ES384),
            (der.as_slice(), Algorithm::EdDSA),
            (der.as_slice(), Algorithm::RS256),
            (b"not a key".as_slice(), Algorithm::ES256),
        ] {
            let err = DpopKey::from_pkcs8_der(der, alg).unwrap_err();
            assert_eq!(err.setting(), Some("dpop_key"), "{alg:?}: {err}");
        }
        let err = DpopKey::from_pkcs8_pem("-----BEGIN EC PRIVATE KEY-----", Algorithm::ES256)
            .unwrap_err();
        assert!(err.to_string().contains("pkcs8"), "{err}");
    }

    #[cfg(feature = "aws-lc-rs")]
    #[tokio::test]
    async fn ed25519_and_p384_keys_sign_proofs_too() {
        use aws_lc_rs::signature::{ECDSA_P384_SHA384_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair};
        let ed = Ed25519KeyPair::generate().unwrap().to_pkcs8v1().unwrap();
        let p384 = EcdsaKeyPair::generate(&ECDSA_P384_SHA384_FIXED_SIGNING)
            .unwrap()
            .to_pkcs8v1()
            .unwrap();
        for (der, alg) in [
            (ed.as_ref(), Algorithm::EdDSA),
            (p384.as_ref(), Algorithm::ES384),
        ] {
            let key = DpopKey::from_pkcs8_der(der, alg).unwrap();
            let proof = key.proof(&Method::GET, "https://a.example/", None).unwrap();
            let request = ProofRequest {
                method: &Method::GET,
                uri: "https://a.example/",
                access_token: None,
                expected_jkt: Some(key.thumbprint()),
            };
            check_proof([&proof], &request, now(), &ProofPolicy::new())
                .await
                .unwrap_or_else(|e| panic!("{alg:?}: {e}"));
        }
    }

    /// The PKCS#8 DER the key was made from (the test reaches into the
    /// encoding key; nothing public hands it out).
    fn key_der(key: &DpopKey) -> Vec<u8> {
        key.inner.encoding.as_bytes().to_vec()
    }

    #[test]
    fn debug_shows_no_private_key() {
        let key = DpopKey::generate_es256().unwrap();
        let der = STANDARD.encode(key_der(&key));
        let shown = format!("{key:?}");
        assert!(shown.contains(key.thumbprint()), "{shown}");
        assert!(!shown.contains(&der[..20]), "{shown}");
        assert!(!shown.contains("encoding"), "{shown}");
    }
}

/// A token endpoint (`/token`) and a resource (`/resource`, any method) on
/// 127.0.0.1 that check DPoP proofs with the crate's own checks, for the
/// outbound tests.
#[cfg(test)]
pub(crate) mod test_server {
    use std::collections::HashMap;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex, OnceLock};

    use axum::Json;
    use axum::extract::State;
    use axum::http::{HeaderMap, Method, StatusCode, Uri};
    use axum::response::{IntoResponse, Response};
    use axum::routing::{any, post};
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use serde_json::{Value, json};

    use crate::dpop::{NonceKeys, ProofErrorKind, ProofPolicy, ProofRequest, check_proof};
    use crate::layer::AccessToken;

    /// How the server behaves.
    #[derive(Clone, Copy)]
    pub(crate) struct Options {
        /// Require server nonces (token endpoint and resource).
        pub(crate) nonces: bool,
        /// The `token_type` the token endpoint answers.
        pub(crate) token_type: &'static str,
    }

    impl Default for Options {
        fn default() -> Self {
            Self {
                nonces: false,
                token_type: "DPoP",
            }
        }
    }

    pub(crate) struct Server {
        pub(crate) base: String,
        state: Arc<St>,
    }

    struct St {
        base: OnceLock<String>,
        policy: ProofPolicy,
        token_type: &'static str,
        /// Issued token -> the thumbprint it is bound to.
        issued: Mutex<HashMap<String, String>>,
        token_requests: AtomicUsize,
        /// The claims of every proof the resource accepted.
        seen: Mutex<Vec<Value>>,
    }

    impl Server {
        pub(crate) async fn start(options: Options) -> Self {
            let mut policy = ProofPolicy::new();
            if options.nonces {
                policy =
                    policy.nonces(NonceKeys::new(b"a nonce secret of 32 bytes or more").unwrap());
            }
            let state = Arc::new(St {
                base: OnceLock::new(),
                policy,
                token_type: options.token_type,
                issued: Mutex::new(HashMap::new()),
                token_requests: AtomicUsize::new(0),
                seen: Mutex::new(Vec::new()),
            });
            let app = axum::Router::new()
                .route("/token", post(token))
                .route("/resource", any(resource))
                .with_state(state.clone());
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let base = format!("http://{}", listener.local_addr().unwrap());
            state.base.set(base.clone()).unwrap();
            tokio::spawn(async move { axum::serve(listener, app).await });
            Self { base, state }
        }

        pub(crate) fn token_url(&self) -> String {
            format!("{}/token", self.base)
        }

        /// The thumbprint `token` was bound to, if this server issued it.
        pub(crate) fn bound_to(&self, token: &str) -> Option<String> {
            self.state.issued.lock().unwrap().get(token).cloned()
        }

        pub(crate) fn token_requests(&self) -> usize {
            self.state.token_requests.load(Ordering::SeqCst)
        }

        /// Accept `token`, bound to `jkt`, at the resource (as if issued here).
        pub(crate) fn trust(&self, token: &AccessToken, jkt: &str) {
            self.state
                .issued
                .lock()
                .unwrap()
                .insert(token.as_str().to_owned(), jkt.to_owned());
        }

        /// The claims of the proofs the resource accepted.
        pub(crate) fn seen(&self) -> Vec<Value> {
            self.state.seen.lock().unwrap().clone()
        }
    }

    fn now() -> i64 {
        i64::try_from(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs(),
        )
        .unwrap()
    }

    fn with_nonce(mut response: Response, nonce: Option<&str>) -> Response {
        if let Some(nonce) = nonce {
            response
                .headers_mut()
                .insert("dpop-nonce", nonce.parse().unwrap());
        }
        response
    }

    async fn token(State(st): State<Arc<St>>, headers: HeaderMap) -> Response {
        st.token_requests.fetch_add(1, Ordering::SeqCst);
        let uri = format!("{}/token", st.base.get().unwrap());
        let request = ProofRequest {
            method: &Method::POST,
            uri: &uri,
            access_token: None,
            expected_jkt: None,
        };
        match check_proof(headers.get_all("dpop").iter(), &request, now(), &st.policy).await {
            Ok(info) => {
                let token = format!("tok-{}", st.token_requests.load(Ordering::SeqCst));
                st.issued
                    .lock()
                    .unwrap()
                    .insert(token.clone(), info.jkt.clone());
                let body = json!({
                    "access_token": token,
                    "token_type": st.token_type,
                    "expires_in": 300,
                    "cnf": {"jkt": info.jkt},
                });
                with_nonce(Json(body).into_response(), info.fresh_nonce.as_deref())
            }
            Err(e) => {
                let code = e.kind().error_code().unwrap_or("server_error");
                let body = json!({"error": code, "error_description": e.to_string()});
                with_nonce(
                    (StatusCode::BAD_REQUEST, Json(body)).into_response(),
                    e.fresh_nonce(),
                )
            }
        }
    }

    async fn resource(
        State(st): State<Arc<St>>,
        method: Method,
        uri: Uri,
        headers: HeaderMap,
    ) -> Response {
        let refuse = |why: String| (StatusCode::UNAUTHORIZED, why).into_response();
        let Some(token) = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("DPoP "))
        else {
            return refuse("no DPoP token".into());
        };
        let Some(jkt) = st.issued.lock().unwrap().get(token).cloned() else {
            return refuse("unknown token".into());
        };
        let target = format!("{}{}", st.base.get().unwrap(), uri.path());
        let request = ProofRequest {
            method: &method,
            uri: &target,
            access_token: Some(token),
            expected_jkt: Some(&jkt),
        };
        let values = headers.get_all("dpop");
        match check_proof(values.iter(), &request, now(), &st.policy).await {
            Ok(info) => {
                let proof = values.iter().next().unwrap().to_str().unwrap();
                let payload = proof.split('.').nth(1).unwrap();
                let claims: Value =
                    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
                st.seen.lock().unwrap().push(claims.clone());
                with_nonce(Json(claims).into_response(), info.fresh_nonce.as_deref())
            }
            Err(e) if e.kind() == ProofErrorKind::UseNonce => {
                let mut response = refuse(e.to_string());
                response.headers_mut().insert(
                    "www-authenticate",
                    "DPoP error=\"use_dpop_nonce\"".parse().unwrap(),
                );
                with_nonce(response, e.fresh_nonce())
            }
            Err(e) => refuse(e.to_string()),
        }
    }
}
