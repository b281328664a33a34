//! One DPoP proof, checked as RFC 9449 §4.3 lists, short of the replay
//! store: everything here is synchronous, bounded and pure (the time comes
//! in as an argument).

use std::borrow::Cow;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::HeaderValue;
use serde::Deserialize;
use serde_json::Value;

use super::error::ProofReason;
use super::hash::sha256_b64;
use super::htu;
use super::jkt::{NoThumbprint, thumbprint};
use super::nonce::NonceFault;
use super::replay::ReplayKey;
use super::{ProofPolicy, ProofRequest};
use crate::error::Reason;
use crate::jwks::{AlgSet, KeySet, public_key_from_jwk};
use crate::jws::{self, TypPolicy};

/// The longest proof looked at. A proof carries its public key: an RSA key
/// of 16384 bits (the largest the key parser takes) makes a proof of about
/// 6.5 KiB; ES256 proofs are under 1 KiB.
pub(crate) const MAX_PROOF_LEN: usize = 8 * 1024;
/// The longest `jti`: RFC 9449 asks for 96 bits of randomness, a UUID is 36
/// characters; this leaves room for any sane generator and no more.
pub(crate) const MAX_JTI_LEN: usize = 256;

/// JOSE members a private or symmetric JWK has and a public one never has
/// (RFC 7518 §6.2.2, §6.3.2, §6.4; RFC 8037 §2).
const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// A proof that passed every check but the replay store.
#[derive(Debug)]
pub(crate) struct Checked {
    /// The RFC 7638 thumbprint of the proof's key.
    pub(crate) jkt: String,
    pub(crate) replay_key: ReplayKey,
    /// How long the `jti` must be remembered: until its `iat` leaves the window.
    pub(crate) replay_ttl: Duration,
    /// When the proof's nonce was issued, when nonces are on.
    pub(crate) nonce_issued: Option<i64>,
}

/// The members of the proof's header this module reads; the rest (`alg`,
/// `crit`, …) are [`jws::parse`]'s.
#[derive(Deserialize)]
struct Header<'a> {
    #[serde(borrow, default)]
    typ: Option<Cow<'a, str>>,
    #[serde(default)]
    jwk: Option<Value>,
}

#[derive(Deserialize)]
struct Claims<'a> {
    #[serde(borrow, default)]
    jti: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    htm: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    htu: Option<Cow<'a, str>>,
    #[serde(default)]
    iat: Option<serde_json::Number>,
    #[serde(borrow, default)]
    ath: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    nonce: Option<Cow<'a, str>>,
}

/// The one `DPoP` header value of a request (RFC 9449 §4.3 check 1).
pub(crate) fn single_value<'h>(
    values: impl IntoIterator<Item = &'h HeaderValue>,
) -> Result<&'h str, ProofReason> {
    let mut values = values.into_iter();
    let value = values.next().ok_or(ProofReason::Missing)?;
    if values.next().is_some() {
        return Err(ProofReason::Multiple);
    }
    // SECURITY: bound before any other work.
    if value.len() > MAX_PROOF_LEN {
        return Err(ProofReason::TooLarge);
    }
    let value = value.to_str().map_err(|_| ProofReason::Malformed)?;
    // A proxy that folds repeated headers into one joins them with commas,
    // which a compact JWS never holds: that is two proofs.
    if value.contains(',') {
        return Err(ProofReason::Multiple);
    }
    Ok(value)
}

/// JSON text of a base64url segment: strict base64url, an object, UTF-8 as
/// a whole (serde does not check the members it skips).
fn json_segment(b64: &str) -> Result<String, ProofReason> {
    let bytes = URL_SAFE_NO_PAD
        .decode(b64)
        .map_err(|_| ProofReason::Malformed)?;
    if bytes.trim_ascii_start().first() != Some(&b'{') {
        return Err(ProofReason::Malformed);
    }
    String::from_utf8(bytes).map_err(|_| ProofReason::Malformed)
}

/// Whether `typ` names the media type `application/dpop+jwt`: media types
/// are case-insensitive (RFC 9110 §8.3.1) and a `typ` without `/` means
/// `application/` before it (RFC 7515 §4.1.9), so `DPoP+JWT` and
/// `application/dpop+jwt` are the same type as `dpop+jwt`.
fn is_dpop_typ(typ: &str) -> bool {
    let typ = match typ.split_once('/') {
        Some((top, sub)) if top.eq_ignore_ascii_case("application") => sub,
        Some(_) => return false,
        None => typ,
    };
    typ.eq_ignore_ascii_case("dpop+jwt")
}

/// Checks `proof` for `request` at `now` (seconds since the epoch).
pub(crate) fn check(
    proof: &str,
    request: &ProofRequest<'_>,
    now: i64,
    policy: &ProofPolicy,
) -> Result<Checked, ProofReason> {
    // Check 2: a well-formed compact JWS. The strict splitting, base64 and
    // header rules of access tokens (no `crit`, `b64`, `enc`, `zip`,
    // nested `cty`); check 5: `alg` on the allow-list, by exact name.
    let mut compact =
        jws::parse(proof, MAX_PROOF_LEN, policy.algs, TypPolicy::Any).map_err(|r| match r {
            Reason::TooLong => ProofReason::TooLarge,
            Reason::AlgorithmNotAllowed => ProofReason::Alg,
            _ => ProofReason::Malformed,
        })?;
    let header_b64 = compact
        .message
        .split_once('.')
        .map_or(compact.message, |(h, _)| h);
    let header_json = json_segment(header_b64)?;
    let header: Header<'_> =
        serde_json::from_str(&header_json).map_err(|_| ProofReason::Malformed)?;

    // Check 4: `typ`.
    if !header.typ.as_deref().is_some_and(is_dpop_typ) {
        return Err(ProofReason::Typ);
    }

    // Check 7: `jwk` is a public key (check 6 is the signature with it).
    let Some(Value::Object(jwk)) = header.jwk else {
        return Err(ProofReason::Jwk);
    };
    // SECURITY: a proof carrying private (or symmetric) key material is
    // refused outright, whatever else it holds: the client leaked its key,
    // and a symmetric "key" would let anyone who reads the proof forge one.
    if PRIVATE_MEMBERS.iter().any(|m| jwk.contains_key(*m)) {
        return Err(ProofReason::Jwk);
    }
    let jkt = thumbprint(&jwk).map_err(|e| match e {
        NoThumbprint::Key => ProofReason::Jwk,
        NoThumbprint::Digest => ProofReason::Crypto,
    })?;
    // SECURITY (RFC 8725 §3.1): the key verifies the header's `alg` only if
    // its type fits it (an EC P-384 key never verifies ES256, an RSA key
    // never EdDSA, an `oct` key nothing), by the key parser of JWK Sets.
    let key = public_key_from_jwk(Value::Object(jwk), AlgSet::of([compact.alg]))
        .map_err(|_| ProofReason::Jwk)?;
    let mut one_key = KeySet::default();
    one_key.insert(key);
    // The proof's key is the only candidate; a `kid` in the header means
    // nothing here.
    compact.forget_kid();
    // Check 6: the signature, by the proof's key.
    jws::verify_with(&one_key, &compact).map_err(|_| ProofReason::Signature)?;

    // Check 3: the claims (each required one is checked below).
    let claims_json = json_segment(compact.payload_b64)?;
    let claims: Claims<'_> =
        serde_json::from_str(&claims_json).map_err(|_| ProofReason::Malformed)?;

    let jti = claims.jti.as_deref().unwrap_or_default();
    if jti.is_empty() || jti.len() > MAX_JTI_LEN {
        return Err(ProofReason::Jti);
    }
    // Check 8: the method, exactly (methods are case-sensitive, RFC 9110 §9.1).
    let htm = claims.htm.as_deref().ok_or(ProofReason::Htm)?;
    if htm != request.method.as_str() {
        return Err(ProofReason::Htm);
    }
    // Check 9: the URI, normalized, without query and fragment.
    let target = htu::normalize(request.uri).ok_or(ProofReason::Htu)?;
    let htu = claims.htu.as_deref().ok_or(ProofReason::Htu)?;
    if htu::normalize(htu).as_deref() != Some(target.as_str()) {
        return Err(ProofReason::Htu);
    }
    // Check 11: `iat` inside the window.
    let iat = claims
        .iat
        .as_ref()
        .and_then(numeric_date)
        .ok_or(ProofReason::Iat)?;
    let past = secs(policy.iat_past);
    let future = secs(policy.iat_future);
    if iat < now.saturating_sub(past) || iat > now.saturating_add(future) {
        return Err(ProofReason::Iat);
    }
    // Check 12: `ath`, whenever an access token comes with the proof.
    if let Some(token) = request.access_token {
        let expected = sha256_b64(token.as_bytes()).map_err(|_| ProofReason::Crypto)?;
        if claims.ath.as_deref() != Some(expected.as_str()) {
            return Err(ProofReason::Ath);
        }
    }
    // Check 12 too: the token's binding (`cnf.jkt`, RFC 9449 §6.1) is this key.
    if let Some(expected) = request.expected_jkt
        && expected != jkt
    {
        return Err(ProofReason::JktMismatch);
    }
    // Check 10: the server nonce, when nonces are on.
    let nonce_issued = match &policy.nonces {
        None => None,
        Some(keys) => {
            let nonce = claims.nonce.as_deref().ok_or(ProofReason::NonceMissing)?;
            Some(keys.check(nonce, now).map_err(|fault| match fault {
                NonceFault::Invalid => ProofReason::NonceInvalid,
                NonceFault::Stale => ProofReason::NonceStale,
            })?)
        }
    };

    let replay_key = ReplayKey::new(&jkt, jti, htm, &target).map_err(|_| ProofReason::Crypto)?;
    // Remembered while a proof with this `iat` would still be accepted
    // (until `iat + past`), plus the second `now` is truncated to.
    let remaining = iat
        .saturating_add(past)
        .saturating_sub(now)
        .saturating_add(1);
    let replay_ttl = Duration::from_secs(u64::try_from(remaining).unwrap_or(1).max(1));
    Ok(Checked {
        jkt,
        replay_key,
        replay_ttl,
        nonce_issued,
    })
}

fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

/// A NumericDate (RFC 7519 §2): a JSON number of seconds, fractions allowed
/// (and truncated toward the past).
fn numeric_date(n: &serde_json::Number) -> Option<i64> {
    if let Some(i) = n.as_i64() {
        return Some(i);
    }
    let f = n.as_f64()?;
    // Beyond ±2^53 a float is no precise date; none is in any window.
    (f.is_finite() && f.abs() < 9_007_199_254_740_992.0).then(|| {
        #[allow(clippy::cast_possible_truncation)] // bounded just above
        let secs = f.floor() as i64;
        secs
    })
}
