//! An immutable snapshot of one issuer's verification keys.

use std::collections::HashMap;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::DecodingKey;
use serde::Deserialize;
use serde::de::IgnoredAny;

use super::FetchError;
use crate::algorithm::Algorithm;
use crate::crypto::{PublicKey, RSA_ALGORITHMS};

/// A set of [`Algorithm`]s as a bit set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AlgSet(u16);

impl AlgSet {
    /// The default allow-list: every asymmetric algorithm jsonwebtoken verifies
    /// (RS256/384/512, PS256/384/512, ES256/384, EdDSA). No HMAC.
    pub const ASYMMETRIC: AlgSet = AlgSet(
        bit(Algorithm::RS256)
            | bit(Algorithm::RS384)
            | bit(Algorithm::RS512)
            | bit(Algorithm::PS256)
            | bit(Algorithm::PS384)
            | bit(Algorithm::PS512)
            | bit(Algorithm::ES256)
            | bit(Algorithm::ES384)
            | bit(Algorithm::EdDSA),
    );
    const RSA: AlgSet = AlgSet(
        bit(Algorithm::RS256)
            | bit(Algorithm::RS384)
            | bit(Algorithm::RS512)
            | bit(Algorithm::PS256)
            | bit(Algorithm::PS384)
            | bit(Algorithm::PS512),
    );
    pub(crate) const HMAC: AlgSet =
        AlgSet(bit(Algorithm::HS256) | bit(Algorithm::HS384) | bit(Algorithm::HS512));

    /// The set holding exactly these algorithms.
    pub fn of(algs: impl IntoIterator<Item = Algorithm>) -> Self {
        AlgSet(algs.into_iter().fold(0, |acc, a| acc | bit(a)))
    }

    /// Whether `alg` is in the set.
    pub fn contains(self, alg: Algorithm) -> bool {
        self.0 & bit(alg) != 0
    }

    /// Intersection.
    #[must_use]
    pub fn and(self, other: AlgSet) -> AlgSet {
        AlgSet(self.0 & other.0)
    }

    /// Union.
    #[must_use]
    pub fn or(self, other: AlgSet) -> AlgSet {
        AlgSet(self.0 | other.0)
    }

    /// Whether the set is empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
}

const fn bit(alg: Algorithm) -> u16 {
    1 << alg.index()
}

/// Parses the `alg` of a JOSE header or JWK. Exact, case-sensitive names
/// only: `none`, `None`, `rs256` and unknown names are `None`.
pub(crate) fn parse_alg(name: &str) -> Option<Algorithm> {
    Algorithm::from_name(name)
}

/// One verification key and the algorithms it may verify.
pub(crate) struct VerifyKey {
    pub(crate) kid: Option<Box<str>>,
    pub(crate) key: Key,
    pub(crate) algs: AlgSet,
    /// Only tokens naming `kid` may use this key: a shared secret configured
    /// with a kid is never a candidate for a token without one.
    pub(crate) kid_bound: bool,
}

/// The material of a [`VerifyKey`].
pub(crate) enum Key {
    /// RSA, EC or Ed25519: parsed once, with its key set.
    Public(PublicKey),
    /// An HMAC secret, checked by jsonwebtoken's provider (which compares
    /// in constant time); there is nothing to parse.
    Secret(DecodingKey),
}

impl VerifyKey {
    /// Whether `signature` (the base64url third segment of a compact JWS) is
    /// a valid `alg` signature of `message` (`header.payload`) by this key.
    ///
    /// SECURITY (RFC 8725 §3.1): `false` unless `alg` is one of the key's own
    /// algorithms, whatever the caller checked before.
    pub(crate) fn verifies(&self, alg: Algorithm, message: &[u8], signature: &str) -> bool {
        if !self.algs.contains(alg) {
            return false;
        }
        match &self.key {
            Key::Public(key) => key.verify(alg, message, signature),
            Key::Secret(key) => matches!(
                jsonwebtoken::crypto::verify(signature, message, key, alg.to_jwt()),
                Ok(true)
            ),
        }
    }
}

/// The keys of one issuer, indexed by `kid`. Immutable once built: a refresh
/// builds a new one and swaps it in.
#[derive(Default)]
pub(crate) struct KeySet {
    keys: Vec<Arc<VerifyKey>>,
    by_kid: HashMap<Box<str>, Vec<Arc<VerifyKey>>>,
}

/// The smallest RSA modulus accepted, in bytes (2048 bits, RFC 7518 §3.3).
const MIN_RSA_MODULUS: usize = 256;
/// The largest RSA modulus accepted, in bytes (8192 bits): bounds the cost
/// of one verify, and neither backend verifies with a larger one.
const MAX_RSA_MODULUS: usize = 1024;
/// The largest RSA public exponent accepted, 2^33 - 1: a larger one makes
/// every verification slow (aws-lc and the rsa crate both refuse it).
const MAX_RSA_EXPONENT: u64 = (1 << 33) - 1;

#[derive(Deserialize)]
struct RawSet {
    keys: Vec<serde_json::Value>,
}

#[derive(Deserialize)]
struct RawJwk {
    kty: String,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default, rename = "use")]
    use_: Option<String>,
    #[serde(default)]
    key_ops: Option<Vec<String>>,
    #[serde(default)]
    alg: Option<String>,
    #[serde(default)]
    crv: Option<String>,
    #[serde(default)]
    n: Option<String>,
    #[serde(default)]
    e: Option<String>,
    #[serde(default)]
    x: Option<String>,
    #[serde(default)]
    y: Option<String>,
    #[serde(default)]
    k: Option<String>,
    #[serde(default)]
    d: Option<IgnoredAny>,
}

/// Where a key set comes from decides what it may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Origin {
    /// Fetched from a URL: public keys only.
    Remote,
    /// Configured in code: symmetric (`oct`) keys allowed for HMAC algorithms.
    Static,
}

impl KeySet {
    /// Parses a JWKS document. Unusable keys are skipped one by one (and
    /// logged); the document as a whole fails only if it is not a JWKS, has
    /// more than `max_keys` keys, or has no usable key at all.
    pub(crate) fn from_json(
        body: &[u8],
        allowed: AlgSet,
        max_keys: usize,
        origin: Origin,
    ) -> Result<KeySet, FetchError> {
        let raw: RawSet = serde_json::from_slice(body).map_err(|e| FetchError::Parse {
            reason: format!("not a JWK Set: {e}"),
        })?;
        if raw.keys.len() > max_keys {
            return Err(FetchError::TooManyKeys {
                count: raw.keys.len(),
                limit: max_keys,
            });
        }
        // SECURITY (ambiguity): two signing keys under one kid leave the choice
        // of key to the token; drop them all rather than guess. Every entry
        // meant for signatures counts, even one this crate cannot use (a
        // lenient verifier elsewhere may use it); keys for encryption do not
        // (RFC 7517 §4.5 lets an encryption and a signing key share a kid).
        let mut signing_kids: HashMap<String, usize> = HashMap::new();
        for kid in raw.keys.iter().filter_map(signing_kid) {
            *signing_kids.entry(kid).or_default() += 1;
        }
        let mut keys = Vec::with_capacity(raw.keys.len());
        for (index, value) in raw.keys.into_iter().enumerate() {
            match parse_jwk(value, allowed, origin) {
                Ok(key) => keys.push(key),
                Err(why) => tracing::warn!(index, reason = why, "skipping JWK"),
            }
        }
        let mut set = KeySet::default();
        let mut dropped = 0_usize;
        for key in keys {
            if key
                .kid
                .as_deref()
                .is_some_and(|kid| signing_kids.get(kid).is_some_and(|n| *n > 1))
            {
                dropped += 1;
                continue;
            }
            set.insert(key);
        }
        if dropped > 0 {
            tracing::warn!(dropped, "skipping JWKs that share a kid with another key");
        }
        if set.keys.is_empty() {
            return Err(FetchError::NoUsableKeys);
        }
        Ok(set)
    }

    pub(crate) fn insert(&mut self, key: VerifyKey) {
        self.insert_arc(Arc::new(key));
    }

    fn insert_arc(&mut self, key: Arc<VerifyKey>) {
        if let Some(kid) = &key.kid {
            self.by_kid
                .entry(kid.clone())
                .or_default()
                .push(Arc::clone(&key));
        }
        self.keys.push(key);
    }

    /// This set, with every key that is identical (kid, material,
    /// algorithms) to one of `old` replaced by `old`'s own `Arc`: the token
    /// cache remembers keys by identity, so unchanged keys keep their cached
    /// tokens across refreshes and changed or removed keys lose them.
    pub(crate) fn reuse_unchanged(self, old: &KeySet) -> KeySet {
        let mut set = KeySet::default();
        for key in self.keys {
            let same = old.keys.iter().find(|o| {
                o.kid == key.kid && o.algs == key.algs && same_material(&o.key, &key.key)
            });
            match same {
                Some(o) => set.insert_arc(Arc::clone(o)),
                None => set.insert_arc(key),
            }
        }
        set
    }

    /// Number of usable keys.
    pub(crate) fn len(&self) -> usize {
        self.keys.len()
    }

    /// The keys a token with this `kid` may be verified with.
    pub(crate) fn by_kid(&self, kid: &str) -> &[Arc<VerifyKey>] {
        self.by_kid.get(kid).map_or(&[], Vec::as_slice)
    }

    /// Keys able to verify `alg`, for a token without `kid`.
    pub(crate) fn for_alg(&self, alg: Algorithm) -> impl Iterator<Item = &Arc<VerifyKey>> {
        self.keys
            .iter()
            .filter(move |k| !k.kid_bound && k.algs.contains(alg))
    }

    /// The key ids in this set.
    pub(crate) fn kids(&self) -> impl Iterator<Item = &str> {
        self.by_kid.keys().map(AsRef::as_ref)
    }
}

/// The `kid` of a JWK Set entry meant for signatures (`use` absent or
/// "sig", `key_ops` absent or with "verify"), usable or not.
fn signing_kid(value: &serde_json::Value) -> Option<String> {
    let kid = value.get("kid")?.as_str()?;
    // `"use": null` (or any non-string) counts as absent here, as the parser
    // reads it: such a key signs, so it must not escape the duplicate rule.
    let other_use = value
        .get("use")
        .and_then(serde_json::Value::as_str)
        .is_some_and(|u| u != "sig");
    let no_verify = value
        .get("key_ops")
        .and_then(serde_json::Value::as_array)
        .is_some_and(|ops| !ops.iter().any(|op| op == "verify"));
    (!other_use && !no_verify).then(|| kid.to_owned())
}

/// Whether two keys are made of the same material: the JWK's components
/// (or the secret), never what a backend parsed from them.
fn same_material(a: &Key, b: &Key) -> bool {
    use jsonwebtoken::DecodingKeyKind as K;
    match (a, b) {
        (Key::Public(a), Key::Public(b)) => a.same_material(b),
        (Key::Secret(a), Key::Secret(b)) => match (a.kind(), b.kind()) {
            (K::SecretOrDer(x), K::SecretOrDer(y)) => a.family() == b.family() && x == y,
            _ => false,
        },
        _ => false,
    }
}

fn decode_b64(field: Option<&str>, name: &'static str) -> Result<Vec<u8>, String> {
    let value = field.ok_or_else(|| format!("missing `{name}`"))?;
    URL_SAFE_NO_PAD
        .decode(value)
        .map_err(|_| format!("`{name}` is not base64url"))
}

/// Builds one key from one JWK (a member of a JWK Set's `keys`), or says
/// why it is unusable. Public keys are parsed here, once, for the
/// algorithms the key may verify: pass as `allowed` only the algorithms the
/// key will be used with (an RSA key is parsed once per algorithm with
/// aws-lc).
///
/// SECURITY (RFC 8725 §3.1): the algorithms a key may verify are the
/// intersection of the allow-list, the key type's own family and the JWK's
/// `alg` if present, so an RSA key can never verify an HMAC signature and a
/// token's header alone never chooses how a key is used. Keys marked for
/// encryption (`use`, `key_ops`) never verify anything.
pub(crate) fn parse_jwk(
    value: serde_json::Value,
    allowed: AlgSet,
    origin: Origin,
) -> Result<VerifyKey, String> {
    let jwk: RawJwk = serde_json::from_value(value).map_err(|e| format!("invalid JWK: {e}"))?;
    // SECURITY: a published set holding private keys is compromised; using
    // its public half would hide that from the operator.
    if jwk.d.is_some() {
        return Err("private key material (`d`) in a public key set".into());
    }
    if let Some(use_) = &jwk.use_
        && use_ != "sig"
    {
        return Err(format!("`use` is {use_:?}, not \"sig\""));
    }
    if let Some(ops) = &jwk.key_ops
        && !ops.iter().any(|op| op == "verify")
    {
        return Err("`key_ops` does not include \"verify\"".into());
    }
    let decoded = match (jwk.kty.as_str(), jwk.crv.as_deref()) {
        ("RSA", _) => {
            let n = decode_b64(jwk.n.as_deref(), "n")?;
            let e = decode_b64(jwk.e.as_deref(), "e")?;
            check_rsa(&n, &e)?;
            Decoded::Rsa { n, e }
        }
        ("EC", Some(crv @ ("P-256" | "P-384"))) => {
            let (alg, len) = if crv == "P-256" {
                (Algorithm::ES256, 32)
            } else {
                (Algorithm::ES384, 48)
            };
            let x = decode_b64(jwk.x.as_deref(), "x")?;
            let y = decode_b64(jwk.y.as_deref(), "y")?;
            if x.len() != len || y.len() != len {
                return Err(format!("{crv} coordinates must be {len} bytes"));
            }
            Decoded::Ec { alg, x, y }
        }
        ("OKP", Some("Ed25519")) => {
            let x = decode_b64(jwk.x.as_deref(), "x")?;
            if x.len() != 32 {
                return Err("Ed25519 key must be 32 bytes".into());
            }
            Decoded::Ed25519 { x }
        }
        ("oct", _) if origin == Origin::Static => {
            let k = decode_b64(jwk.k.as_deref(), "k")?;
            if k.len() < 32 {
                return Err("symmetric key shorter than 32 bytes".into());
            }
            Decoded::Secret { k }
        }
        (kty, crv) => {
            return Err(format!(
                "unsupported key type {kty:?}{}",
                crv.map(|c| format!(" curve {c:?}")).unwrap_or_default()
            ));
        }
    };
    let family = match &decoded {
        Decoded::Rsa { .. } => AlgSet::RSA,
        Decoded::Ec { alg, .. } => AlgSet::of([*alg]),
        Decoded::Ed25519 { .. } => AlgSet::of([Algorithm::EdDSA]),
        Decoded::Secret { k } => hmac_algs_for(k.len()),
    };
    let mut algs = family.and(allowed);
    if let Some(alg) = &jwk.alg {
        let alg = parse_alg(alg).ok_or_else(|| format!("unsupported `alg` {alg:?}"))?;
        algs = algs.and(AlgSet::of([alg]));
    }
    if algs.is_empty() {
        return Err("no allowed algorithm fits this key".into());
    }
    // Parsed for exactly the algorithms the key may verify.
    let key = match decoded {
        Decoded::Rsa { n, e } => {
            let rsa_algs = RSA_ALGORITHMS.into_iter().filter(|a| algs.contains(*a));
            Key::Public(PublicKey::rsa(&n, &e, rsa_algs)?)
        }
        Decoded::Ec { alg, x, y } => Key::Public(PublicKey::ec(alg, &x, &y)?),
        Decoded::Ed25519 { x } => Key::Public(PublicKey::ed25519(&x)?),
        Decoded::Secret { k } => {
            Key::Secret(DecodingKey::from_secret(&k).map_err(|e| e.to_string())?)
        }
    };
    Ok(VerifyKey {
        kid: jwk.kid.map(String::into_boxed_str),
        key,
        algs,
        kid_bound: false,
    })
}

/// A key carried by a message rather than published in a set (a DPoP
/// proof's `jwk` header), checked as a fetched set's keys are: public keys
/// only, verifying only `allowed` algorithms that fit its type.
pub(crate) fn public_key_from_jwk(
    value: serde_json::Value,
    allowed: AlgSet,
) -> Result<VerifyKey, String> {
    parse_jwk(value, allowed, Origin::Remote)
}

/// A JWK's key material, decoded and checked, not yet parsed.
enum Decoded {
    Rsa {
        n: Vec<u8>,
        e: Vec<u8>,
    },
    Ec {
        alg: Algorithm,
        x: Vec<u8>,
        y: Vec<u8>,
    },
    Ed25519 {
        x: Vec<u8>,
    },
    Secret {
        k: Vec<u8>,
    },
}

/// The key set's own rules for an RSA public key, the same with either
/// backend.
///
/// SECURITY (RFC 7518 §3.3, RFC 8017 §3.1): a modulus of 2048 to 8192 bits
/// (leading zero bytes are not counted), odd; an exponent that is odd, at
/// least 3 and below 2^33 (e = 1 makes every "signature" its own message;
/// a huge one makes each verification a denial of service).
fn check_rsa(n: &[u8], e: &[u8]) -> Result<(), String> {
    let n_len = n.iter().skip_while(|b| **b == 0).count();
    if !(MIN_RSA_MODULUS..=MAX_RSA_MODULUS).contains(&n_len) {
        return Err(format!("RSA modulus of {} bits is not allowed", n_len * 8));
    }
    if n.last().is_some_and(|b| b % 2 == 0) {
        return Err("RSA modulus is even".into());
    }
    let e_trimmed = e.iter().skip_while(|b| **b == 0);
    let exponent = (e_trimmed.clone().count() <= 8)
        .then(|| e_trimmed.fold(0_u64, |acc, b| acc << 8 | u64::from(*b)));
    if !exponent.is_some_and(|e| e >= 3 && e % 2 == 1 && e <= MAX_RSA_EXPONENT) {
        return Err("RSA exponent is invalid".into());
    }
    Ok(())
}

/// The HMAC algorithms a secret of `len` bytes may verify.
///
/// SECURITY (RFC 7518 §3.2): "a key of the same size as the hash output or
/// larger MUST be used": 32 bytes for HS256, 48 for HS384, 64 for HS512.
fn hmac_algs_for(len: usize) -> AlgSet {
    let mut algs = AlgSet::default();
    for (alg, min) in [
        (Algorithm::HS256, 32),
        (Algorithm::HS384, 48),
        (Algorithm::HS512, 64),
    ] {
        if len >= min {
            algs = algs.or(AlgSet::of([alg]));
        }
    }
    algs
}

/// A key for HMAC algorithms from an explicitly configured shared secret.
///
/// SECURITY (RFC 7518 §3.2): a secret shorter than 32 bytes is refused, and the
/// key can only verify the HMAC algorithms of the allow-list whose hash
/// output is not longer than the secret.
pub(crate) fn secret_key(
    kid: Option<String>,
    secret: &[u8],
    allowed: AlgSet,
) -> Result<VerifyKey, String> {
    if secret.len() < 32 {
        return Err("a shared secret must be at least 32 bytes".into());
    }
    if allowed.and(AlgSet::HMAC).is_empty() {
        return Err(
            "a shared secret needs HS256, HS384 or HS512 in the algorithm allow-list".into(),
        );
    }
    let algs = allowed.and(hmac_algs_for(secret.len()));
    if algs.is_empty() {
        return Err(format!(
            "a shared secret of {} bytes is too short for the allowed HMAC algorithms \
             (HS384 needs 48 bytes, HS512 64)",
            secret.len()
        ));
    }
    Ok(VerifyKey {
        kid_bound: kid.is_some(),
        kid: kid.map(String::into_boxed_str),
        key: Key::Secret(DecodingKey::from_secret(secret).map_err(|e| e.to_string())?),
        algs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const RSA_N: &str = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";

    fn rsa_jwk(extra: &str) -> String {
        format!(r#"{{"kty":"RSA","kid":"r1","n":"{RSA_N}","e":"AQAB"{extra}}}"#)
    }

    fn set(keys: &[String]) -> Result<KeySet, FetchError> {
        KeySet::from_json(
            format!(r#"{{"keys":[{}]}}"#, keys.join(",")).as_bytes(),
            AlgSet::ASYMMETRIC,
            16,
            Origin::Remote,
        )
    }

    #[test]
    fn rsa_key_verifies_only_rsa_algorithms() {
        let s = set(&[rsa_jwk("")]).unwrap();
        let k = &s.by_kid("r1")[0];
        assert!(k.algs.contains(Algorithm::RS256));
        assert!(k.algs.contains(Algorithm::PS512));
        assert!(!k.algs.contains(Algorithm::HS256));
        assert!(!k.algs.contains(Algorithm::ES256));
    }

    #[test]
    fn jwk_alg_narrows_the_algorithms() {
        let s = set(&[rsa_jwk(r#","alg":"PS256""#)]).unwrap();
        let k = &s.by_kid("r1")[0];
        assert!(k.algs.contains(Algorithm::PS256));
        assert!(!k.algs.contains(Algorithm::RS256));
    }

    #[test]
    fn encryption_keys_are_skipped_not_fatal() {
        let s = set(&[
            rsa_jwk(r#","use":"enc""#).replace("r1", "enc"),
            rsa_jwk(r#","key_ops":["encrypt"]"#).replace("r1", "ops"),
            rsa_jwk(""),
        ])
        .unwrap();
        assert_eq!(s.len(), 1);
        assert!(s.by_kid("enc").is_empty());
    }

    #[test]
    fn bad_keys_are_skipped_one_by_one() {
        let s = set(&[
            r#"{"kty":"oct","k":"c2VjcmV0","kid":"h"}"#.into(),
            r#"{"kty":"EC","crv":"P-521","x":"AA","y":"AA","kid":"p521"}"#.into(),
            r#"{"kty":"EC","crv":"P-256","x":"AA","y":"AA","kid":"short"}"#.into(),
            r#"{"kty":"RSA","n":"AQAB","e":"AQAB","kid":"tiny"}"#.into(),
            r#""not an object""#.into(),
            rsa_jwk(r#","alg":"RSA-OAEP""#).replace("r1", "oaep"),
            rsa_jwk(""),
        ])
        .unwrap();
        assert_eq!(s.len(), 1);
        assert_eq!(s.kids().collect::<Vec<_>>(), ["r1"]);
    }

    #[test]
    fn a_set_without_usable_keys_is_an_error() {
        assert!(matches!(set(&[]), Err(FetchError::NoUsableKeys)));
        assert!(matches!(
            KeySet::from_json(b"garbage", AlgSet::ASYMMETRIC, 16, Origin::Remote),
            Err(FetchError::Parse { .. })
        ));
    }

    #[test]
    fn too_many_keys_fail_the_document() {
        let keys: Vec<String> = (0..17).map(|_| rsa_jwk("")).collect();
        assert!(matches!(set(&keys), Err(FetchError::TooManyKeys { .. })));
    }

    #[test]
    fn disallowed_algorithm_family_is_skipped() {
        let err = KeySet::from_json(
            format!(r#"{{"keys":[{}]}}"#, rsa_jwk("")).as_bytes(),
            AlgSet::of([Algorithm::ES256]),
            16,
            Origin::Remote,
        );
        assert!(matches!(err, Err(FetchError::NoUsableKeys)));
    }

    #[test]
    fn duplicate_kids_are_dropped() {
        let s = set(&[rsa_jwk(""), rsa_jwk(""), rsa_jwk("").replace("r1", "r2")]).unwrap();
        assert!(s.by_kid("r1").is_empty());
        assert_eq!(s.by_kid("r2").len(), 1);
    }

    #[test]
    fn a_kid_shared_with_an_unusable_signing_key_is_dropped() {
        // The second key's `n` is not canonical base64url (trailing bits):
        // unusable here, but a lenient verifier would use it.
        let bad = rsa_jwk("").replace(r#"qDKgw""#, r#"qDKgx""#);
        assert!(
            set(&[rsa_jwk(""), bad, rsa_jwk("").replace("r1", "r2")])
                .unwrap()
                .by_kid("r1")
                .is_empty()
        );
        // An encryption key may share the kid of a signing key.
        let enc = rsa_jwk(r#","use":"enc""#);
        let ops = rsa_jwk(r#","key_ops":["encrypt"]"#);
        assert_eq!(set(&[enc, ops, rsa_jwk("")]).unwrap().by_kid("r1").len(), 1);
    }

    #[test]
    fn use_null_counts_as_a_signing_key_for_the_duplicate_rule() {
        // `"use": null` parses as no `use`: that key signs, so it shares the
        // kid with the other one and both are dropped.
        let s = set(&[
            rsa_jwk(r#","use":null"#),
            rsa_jwk(""),
            rsa_jwk("").replace("r1", "r2"),
        ])
        .unwrap();
        assert!(s.by_kid("r1").is_empty());
        let s = set(&[
            rsa_jwk(r#","use":null"#),
            rsa_jwk(r#","use":"sig""#).replace("r1", "r2"),
        ])
        .unwrap();
        assert_eq!(s.by_kid("r1").len(), 1, "alone, a use:null key is usable");
    }

    #[test]
    fn a_secret_with_a_kid_is_never_a_candidate_without_kid() {
        let secret = [7u8; 32];
        let hs = AlgSet::of([Algorithm::HS256]);
        let mut s = KeySet::default();
        s.insert(secret_key(Some("h".into()), &secret, hs).unwrap());
        assert_eq!(s.for_alg(Algorithm::HS256).count(), 0);
        assert_eq!(s.by_kid("h").len(), 1);
        let mut s = KeySet::default();
        s.insert(secret_key(None, &secret, hs).unwrap());
        assert_eq!(s.for_alg(Algorithm::HS256).count(), 1);
    }

    #[test]
    fn private_keys_and_weak_exponents_are_skipped() {
        let err = set(&[
            rsa_jwk(r#","d":"AQAB""#),
            rsa_jwk("").replace("AQAB", "AQ").replace("r1", "e1"),
            rsa_jwk("").replace("AQAB", "AQAA").replace("r1", "even"),
        ]);
        assert!(matches!(err, Err(FetchError::NoUsableKeys)));
    }

    /// Keys that passed the old checks and then failed every token: now
    /// refused when the set is read, with either backend.
    #[test]
    fn keys_no_backend_verifies_with_are_skipped_with_their_set() {
        // RFC 7517 appendix A.1's P-256 key.
        let ec = |y: &str| {
            format!(
                r#"{{"kty":"EC","crv":"P-256","kid":"ec","x":"MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4","y":"{y}"}}"#
            )
        };
        let y = "4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM";
        assert_eq!(set(&[ec(y)]).unwrap().len(), 1, "the point itself is fine");
        let off_curve = ec(&y.replace("IFyM", "IFyA"));
        let mut n = URL_SAFE_NO_PAD.decode(RSA_N).unwrap();
        *n.last_mut().unwrap() &= 0xfe;
        let even_n = rsa_jwk("").replace(RSA_N, &URL_SAFE_NO_PAD.encode(&n));
        let mut n = vec![0xc5_u8; 8192 / 8 + 1];
        n[0] = 0x80;
        let huge_n = rsa_jwk("").replace(RSA_N, &URL_SAFE_NO_PAD.encode(&n));
        let e = URL_SAFE_NO_PAD.encode(((1_u64 << 33) + 1).to_be_bytes());
        let huge_e = rsa_jwk("").replace("AQAB", &e);
        let s = set(&[
            off_curve,
            even_n.replace("r1", "even-n"),
            huge_n.replace("r1", "huge-n"),
            huge_e.replace("r1", "huge-e"),
            rsa_jwk(""),
        ])
        .unwrap();
        assert_eq!(s.kids().collect::<Vec<_>>(), ["r1"]);
    }

    #[test]
    fn keys_are_parsed_with_their_set_and_never_for_a_token() {
        use crate::crypto::parses_on_this_thread;
        use crate::test_util::{TestIssuer, kids};

        let issuer = TestIssuer::new("https://keys.test");
        let before = parses_on_this_thread();
        let s = KeySet::from_json(
            issuer.jwks_json().as_bytes(),
            AlgSet::ASYMMETRIC,
            16,
            Origin::Remote,
        )
        .unwrap();
        let parsed = parses_on_this_thread();
        assert!(parsed - before >= 3, "one parse per key at least");
        for (kid, alg) in [
            (kids::RSA, Algorithm::RS256),
            (kids::RSA, Algorithm::PS256),
            (kids::EC, Algorithm::ES256),
            (kids::ED, Algorithm::EdDSA),
        ] {
            let key = &s.by_kid(kid)[0];
            for _ in 0..20 {
                let token = issuer.token().key(kid).alg(alg).sign();
                let (message, signature) = token.rsplit_once('.').unwrap();
                assert!(key.verifies(alg, message.as_bytes(), signature), "{alg}");
            }
        }
        assert_eq!(parses_on_this_thread(), parsed, "no parse per token");
    }

    #[test]
    fn a_key_verifies_only_its_own_algorithms() {
        use crate::test_util::{TestIssuer, kids};

        let issuer = TestIssuer::new("https://keys.test");
        let mut jwk = issuer.jwk(kids::RSA).unwrap();
        jwk["alg"] = "PS256".into();
        let key = parse_jwk(jwk, AlgSet::ASYMMETRIC, Origin::Remote).unwrap();
        let ps = issuer.token().alg(Algorithm::PS256).sign();
        let (message, signature) = ps.rsplit_once('.').unwrap();
        assert!(key.verifies(Algorithm::PS256, message.as_bytes(), signature));
        let rs = issuer.token().alg(Algorithm::RS256).sign();
        let (message, signature) = rs.rsplit_once('.').unwrap();
        assert!(!key.verifies(Algorithm::RS256, message.as_bytes(), signature));
    }

    #[test]
    fn an_unchanged_key_keeps_its_identity_across_a_refetch() {
        use crate::test_util::{TestIssuer, kids};

        let issuer = TestIssuer::new("https://keys.test");
        let read = |issuer: &TestIssuer| {
            KeySet::from_json(
                issuer.jwks_json().as_bytes(),
                AlgSet::ASYMMETRIC,
                16,
                Origin::Remote,
            )
            .unwrap()
        };
        let old = read(&issuer);
        issuer.add_key(kids::EC, Algorithm::ES256); // a new key under the old kid
        let new = read(&issuer).reuse_unchanged(&old);
        for kid in [kids::RSA, kids::ED] {
            assert!(
                Arc::ptr_eq(&new.by_kid(kid)[0], &old.by_kid(kid)[0]),
                "{kid}"
            );
        }
        assert!(!Arc::ptr_eq(
            &new.by_kid(kids::EC)[0],
            &old.by_kid(kids::EC)[0]
        ));
    }

    #[test]
    fn symmetric_keys_only_in_static_sets() {
        let oct = r#"{"keys":[{"kty":"oct","kid":"h","k":"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"}]}"#;
        let hs = AlgSet::of([Algorithm::HS256]);
        assert!(KeySet::from_json(oct.as_bytes(), hs, 16, Origin::Remote).is_err());
        let s = KeySet::from_json(oct.as_bytes(), hs, 16, Origin::Static).unwrap();
        assert!(s.by_kid("h")[0].algs.contains(Algorithm::HS256));
        assert!(KeySet::from_json(oct.as_bytes(), AlgSet::ASYMMETRIC, 16, Origin::Static).is_err());
    }

    #[test]
    fn hmac_keys_verify_only_algorithms_their_length_allows() {
        // 47 bytes: enough for HS256, too short for HS384 (RFC 7518 §3.2).
        let k47 = URL_SAFE_NO_PAD.encode([7u8; 47]);
        let k64 = URL_SAFE_NO_PAD.encode([7u8; 64]);
        let doc = |k: &str, alg: &str| {
            format!(r#"{{"keys":[{{"kty":"oct","kid":"h","k":"{k}"{alg}}}]}}"#)
        };
        let s =
            KeySet::from_json(doc(&k47, "").as_bytes(), AlgSet::HMAC, 16, Origin::Static).unwrap();
        let algs = s.by_kid("h")[0].algs;
        assert!(algs.contains(Algorithm::HS256));
        assert!(!algs.contains(Algorithm::HS384));
        assert!(!algs.contains(Algorithm::HS512));
        let pinned = doc(&k47, r#","alg":"HS384""#);
        assert!(KeySet::from_json(pinned.as_bytes(), AlgSet::HMAC, 16, Origin::Static).is_err());
        let s =
            KeySet::from_json(doc(&k64, "").as_bytes(), AlgSet::HMAC, 16, Origin::Static).unwrap();
        assert!(s.by_kid("h")[0].algs.contains(Algorithm::HS512));

        let hs512 = AlgSet::of([Algorithm::HS512]);
        assert!(secret_key(None, &[7; 63], hs512).is_err());
        assert!(secret_key(None, &[7; 64], hs512).is_ok());
        let key = secret_key(None, &[7; 32], AlgSet::HMAC).unwrap();
        assert_eq!(key.algs, AlgSet::of([Algorithm::HS256]));
    }

    #[test]
    fn alg_names_are_exact() {
        assert_eq!(parse_alg("RS256"), Some(Algorithm::RS256));
        for bad in ["none", "None", "NONE", "rs256", "", "HS256 ", "ES256K"] {
            assert_eq!(parse_alg(bad), None, "{bad}");
        }
    }
}
