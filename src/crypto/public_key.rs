//! Public keys parsed once, when their key set is read, and the signature
//! checks that use them.
//!
//! `jsonwebtoken::crypto::verify` takes a `DecodingKey` and rebuilds the
//! backend's key from the JWK's components on every call (for RSA: `n` and
//! `e` into big numbers, then the Montgomery constants on first use). A
//! [`PublicKey`] holds the backend's own parsed key instead, so a token seen
//! for the first time costs one signature check and little else:
//!
//! - aws-lc (feature `aws-lc-rs`, also chosen when both backends are on):
//!   `ParsedPublicKey`. aws-lc binds a parsed key to one verification
//!   algorithm (padding and hash), so an RSA key holds one per algorithm it
//!   may verify. They are all parsed with the key set, not on first use: a
//!   parse costs a few microseconds once per key set fetch, it keeps every
//!   failure at load time (where the key is skipped and logged) and the
//!   request path never waits for another request's parse. A JWK that names
//!   its `alg`, as most issuers publish them, is parsed once.
//! - RustCrypto (feature `rust-crypto` alone): `rsa::PublicKey` (padding
//!   and hash are chosen per call), `p256`/`p384` and `ed25519-dalek`
//!   verifying keys.
//!
//! Each backend is called exactly as jsonwebtoken's provider calls it, so
//! what verifies is what verified before; only the parsing moved.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::algorithm::Algorithm;

/// The RSA algorithms, in the order of a key's parsed variants.
pub(crate) const RSA_ALGORITHMS: [Algorithm; 6] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
];

/// The longest signature decoded: an RSA signature is as long as the
/// modulus, and no backend verifies with a modulus over 8192 bits. Bounds
/// the stack buffer a signature is decoded into.
const MAX_SIGNATURE: usize = 8192 / 8;

/// A public key, parsed once, and the algorithms it verifies.
pub(crate) struct PublicKey {
    /// The JWK's components, kept to tell an unchanged key on a refetch.
    material: Material,
    /// The algorithms this key was parsed for, as bits of `Algorithm::index`.
    algs: u16,
    parsed: backend::Parsed,
}

/// What a key is made of, as the JWK gave it. Compared, never parsed.
#[derive(PartialEq, Eq)]
enum Material {
    Rsa {
        n: Box<[u8]>,
        e: Box<[u8]>,
    },
    /// The uncompressed SEC1 point `04 ‖ x ‖ y`; the curve is the algorithm's.
    Ec {
        alg: Algorithm,
        point: Box<[u8]>,
    },
    Ed25519 {
        x: Box<[u8]>,
    },
}

/// Why a key cannot be used: a fixed text, never key material.
pub(crate) type Rejected = &'static str;

const fn bit(alg: Algorithm) -> u16 {
    1 << alg.index()
}

impl PublicKey {
    /// An RSA key from the big-endian `n` and `e` of a JWK, parsed for each
    /// of `algs` (RS256/384/512, PS256/384/512; others are refused).
    ///
    /// The caller checks sizes and exponent first (the key set's rules); the
    /// backend then refuses what it cannot use, as it did on every
    /// verification before.
    pub(crate) fn rsa(
        n: &[u8],
        e: &[u8],
        algs: impl IntoIterator<Item = Algorithm>,
    ) -> Result<Self, Rejected> {
        let mut mask = 0;
        for alg in algs {
            if !RSA_ALGORITHMS.contains(&alg) {
                return Err("not an RSA algorithm");
            }
            mask |= bit(alg);
        }
        if mask == 0 {
            return Err("no algorithm to parse the RSA key for");
        }
        Ok(PublicKey {
            parsed: backend::rsa(n, e, mask)?,
            material: Material::Rsa {
                n: n.into(),
                e: e.into(),
            },
            algs: mask,
        })
    }

    /// An EC key for `alg` from the JWK's coordinates: ES256 takes a P-256
    /// point, ES384 a P-384 point, and nothing else.
    ///
    /// SECURITY: the curve follows from the algorithm, which the key set
    /// took from the JWK's `crv`; a key is never used on another curve.
    pub(crate) fn ec(alg: Algorithm, x: &[u8], y: &[u8]) -> Result<Self, Rejected> {
        let len = match alg {
            Algorithm::ES256 => 32,
            Algorithm::ES384 => 48,
            _ => return Err("not an ECDSA algorithm"),
        };
        if x.len() != len || y.len() != len {
            return Err("EC coordinates of the wrong length for the curve");
        }
        let point: Box<[u8]> = [&[4], x, y].concat().into();
        Ok(PublicKey {
            parsed: backend::ec(alg, &point)?,
            material: Material::Ec { alg, point },
            algs: bit(alg),
        })
    }

    /// An Ed25519 key (EdDSA) from the JWK's 32-byte `x`.
    pub(crate) fn ed25519(x: &[u8]) -> Result<Self, Rejected> {
        let x: &[u8; 32] = x.try_into().map_err(|_| "an Ed25519 key is 32 bytes")?;
        Ok(PublicKey {
            parsed: backend::ed25519(x)?,
            material: Material::Ed25519 { x: x[..].into() },
            algs: bit(Algorithm::EdDSA),
        })
    }

    /// Whether `signature` (the third segment of a compact JWS, base64url)
    /// is a valid `alg` signature of `message` by this key. `false` for an
    /// algorithm the key was not parsed for.
    ///
    /// SECURITY: the signature is strict base64url (no padding, no
    /// whitespace, no non-canonical trailing bits), and ECDSA signatures are
    /// the fixed-size `r ‖ s` of the curve (RFC 7518 §3.4), never DER.
    pub(crate) fn verify(&self, alg: Algorithm, message: &[u8], signature: &str) -> bool {
        if self.algs & bit(alg) == 0 {
            return false;
        }
        let mut buf = [0; MAX_SIGNATURE];
        // A signature longer than the buffer is no signature of any key here.
        let Ok(len) = URL_SAFE_NO_PAD.decode_slice(signature, &mut buf) else {
            return false;
        };
        buf.get(..len)
            .is_some_and(|signature| self.parsed.verify(alg, message, signature))
    }

    /// Whether both keys are made of the same components (the same JWK key
    /// material), whatever was parsed from them.
    pub(crate) fn same_material(&self, other: &PublicKey) -> bool {
        self.material == other.material
    }
}

/// Counts parses on the current thread, so a test can show that a key is
/// parsed with its key set and never again.
#[cfg(test)]
mod parse_count {
    use std::cell::Cell;

    thread_local!(static PARSES: Cell<usize> = const { Cell::new(0) });

    pub(super) fn one() {
        PARSES.with(|n| n.set(n.get() + 1));
    }

    pub(crate) fn on_this_thread() -> usize {
        PARSES.with(Cell::get)
    }
}

#[cfg(test)]
pub(crate) use parse_count::on_this_thread as parses_on_this_thread;

/// Marks one parse by the backend (tests only).
#[cfg_attr(
    not(any(feature = "aws-lc-rs", feature = "rust-crypto")),
    allow(dead_code)
)]
fn parsed_once() {
    #[cfg(test)]
    parse_count::one();
}

#[cfg(feature = "aws-lc-rs")]
mod backend {
    use aws_lc_rs::signature::{self as sig, ParsedPublicKey, RsaParameters};

    use super::{Algorithm, RSA_ALGORITHMS, Rejected, bit, parsed_once};

    /// The verification algorithm of each RSA algorithm, in the order of
    /// [`RSA_ALGORITHMS`]: the ones jsonwebtoken's aws-lc provider uses.
    const RSA_PARAMETERS: [&RsaParameters; 6] = [
        &sig::RSA_PKCS1_2048_8192_SHA256,
        &sig::RSA_PKCS1_2048_8192_SHA384,
        &sig::RSA_PKCS1_2048_8192_SHA512,
        &sig::RSA_PSS_2048_8192_SHA256,
        &sig::RSA_PSS_2048_8192_SHA384,
        &sig::RSA_PSS_2048_8192_SHA512,
    ];

    /// The modulus sizes, in bits, that the parameters above verify.
    const RSA_BITS: std::ops::RangeInclusive<usize> = 2048..=8192;

    pub(super) enum Parsed {
        /// One parsed key per RSA algorithm the key may verify: aws-lc
        /// binds a parsed key to one padding and hash.
        Rsa(Box<[(Algorithm, ParsedPublicKey)]>),
        /// An EC or Ed25519 key, parsed for its one algorithm.
        One(ParsedPublicKey),
    }

    pub(super) fn rsa(n: &[u8], e: &[u8], algs: u16) -> Result<Parsed, Rejected> {
        // aws-lc checks the modulus size when it verifies, not when it
        // parses: check it here, so a key that could never verify is
        // skipped with its key set rather than failing every token.
        if !RSA_BITS.contains(&bit_length(n)) {
            return Err("RSA modulus size outside 2048 to 8192 bits");
        }
        // `n` and `e` as given: aws-lc refuses leading zero bytes, as it did
        // on every verification before.
        let components = sig::RsaPublicKeyComponents { n, e };
        let mut parsed = Vec::with_capacity(algs.count_ones() as usize);
        for (alg, params) in RSA_ALGORITHMS.into_iter().zip(RSA_PARAMETERS) {
            if algs & bit(alg) != 0 {
                let key = components
                    .to_parsed_public_key(params)
                    .map_err(|_| "RSA key refused by aws-lc")?;
                parsed_once();
                parsed.push((alg, key));
            }
        }
        Ok(Parsed::Rsa(parsed.into()))
    }

    /// The size of a big-endian unsigned number, in bits.
    fn bit_length(n: &[u8]) -> usize {
        let Some(first) = n.iter().position(|b| *b != 0) else {
            return 0;
        };
        let top = n.get(first).map_or(0, |b| b.leading_zeros() as usize);
        (n.len() - first) * 8 - top
    }

    pub(super) fn ec(alg: Algorithm, point: &[u8]) -> Result<Parsed, Rejected> {
        let params: &'static dyn sig::VerificationAlgorithm = match alg {
            Algorithm::ES256 => &sig::ECDSA_P256_SHA256_FIXED,
            Algorithm::ES384 => &sig::ECDSA_P384_SHA384_FIXED,
            _ => return Err("not an ECDSA algorithm"),
        };
        let key = ParsedPublicKey::new(params, point).map_err(|_| "EC point not on the curve")?;
        parsed_once();
        Ok(Parsed::One(key))
    }

    pub(super) fn ed25519(x: &[u8; 32]) -> Result<Parsed, Rejected> {
        let key = ParsedPublicKey::new(&sig::ED25519, x).map_err(|_| "Ed25519 key refused")?;
        parsed_once();
        Ok(Parsed::One(key))
    }

    impl Parsed {
        /// The caller checked that `alg` is one this key was parsed for.
        pub(super) fn verify(&self, alg: Algorithm, message: &[u8], signature: &[u8]) -> bool {
            let key = match self {
                Parsed::Rsa(keys) => keys.iter().find(|(a, _)| *a == alg).map(|(_, key)| key),
                Parsed::One(key) => Some(key),
            };
            key.is_some_and(|key| key.verify_sig(message, signature).is_ok())
        }
    }
}

#[cfg(all(feature = "rust-crypto", not(feature = "aws-lc-rs")))]
mod backend {
    use p256::ecdsa::signature::Verifier as _;
    use rsa::sha2::{Digest, Sha256, Sha384, Sha512};
    use rsa::traits::SignatureScheme;
    use rsa::{BoxedUint, Pkcs1v15Sign, Pss};

    use super::{Algorithm, Rejected, parsed_once};

    pub(super) enum Parsed {
        /// Padding and hash are chosen per verification: one key serves
        /// every RSA algorithm.
        Rsa(rsa::PublicKey),
        P256(p256::ecdsa::VerifyingKey),
        P384(p384::ecdsa::VerifyingKey),
        Ed25519(ed25519_dalek::VerifyingKey),
    }

    pub(super) fn rsa(n: &[u8], e: &[u8], _algs: u16) -> Result<Parsed, Rejected> {
        // As jsonwebtoken's RustCrypto provider builds it: leading zero
        // bytes are harmless here; the modulus must be 1024 to 8192 bits
        // and the exponent odd, at least 3 and below 2^33.
        let key = rsa::PublicKey::new(
            BoxedUint::from_be_slice_vartime(n),
            BoxedUint::from_be_slice_vartime(e),
        )
        .map_err(|_| "RSA key refused by the rsa crate")?;
        parsed_once();
        Ok(Parsed::Rsa(key))
    }

    pub(super) fn ec(alg: Algorithm, point: &[u8]) -> Result<Parsed, Rejected> {
        let parsed = match alg {
            Algorithm::ES256 => p256::ecdsa::VerifyingKey::from_sec1_bytes(point).map(Parsed::P256),
            Algorithm::ES384 => p384::ecdsa::VerifyingKey::from_sec1_bytes(point).map(Parsed::P384),
            _ => return Err("not an ECDSA algorithm"),
        }
        .map_err(|_| "EC point not on the curve")?;
        parsed_once();
        Ok(parsed)
    }

    pub(super) fn ed25519(x: &[u8; 32]) -> Result<Parsed, Rejected> {
        let key = ed25519_dalek::VerifyingKey::from_bytes(x).map_err(|_| "Ed25519 key refused")?;
        parsed_once();
        Ok(Parsed::Ed25519(key))
    }

    fn rsa_ok<H: Digest>(
        key: &rsa::PublicKey,
        scheme: impl SignatureScheme,
        message: &[u8],
        signature: &[u8],
    ) -> bool {
        key.verify(scheme, &H::digest(message), signature).is_ok()
    }

    impl Parsed {
        /// The caller checked that `alg` is one this key was parsed for.
        pub(super) fn verify(&self, alg: Algorithm, message: &[u8], signature: &[u8]) -> bool {
            use Algorithm as A;
            match (self, alg) {
                (Parsed::Rsa(k), A::RS256) => {
                    rsa_ok::<Sha256>(k, Pkcs1v15Sign::new::<Sha256>(), message, signature)
                }
                (Parsed::Rsa(k), A::RS384) => {
                    rsa_ok::<Sha384>(k, Pkcs1v15Sign::new::<Sha384>(), message, signature)
                }
                (Parsed::Rsa(k), A::RS512) => {
                    rsa_ok::<Sha512>(k, Pkcs1v15Sign::new::<Sha512>(), message, signature)
                }
                (Parsed::Rsa(k), A::PS256) => {
                    rsa_ok::<Sha256>(k, Pss::<Sha256>::new(), message, signature)
                }
                (Parsed::Rsa(k), A::PS384) => {
                    rsa_ok::<Sha384>(k, Pss::<Sha384>::new(), message, signature)
                }
                (Parsed::Rsa(k), A::PS512) => {
                    rsa_ok::<Sha512>(k, Pss::<Sha512>::new(), message, signature)
                }
                // Fixed-size r ‖ s only: `from_slice` takes exactly 64 (96)
                // bytes and refuses r or s of 0 or not below the order.
                (Parsed::P256(k), A::ES256) => p256::ecdsa::Signature::from_slice(signature)
                    .is_ok_and(|s| k.verify(message, &s).is_ok()),
                (Parsed::P384(k), A::ES384) => p384::ecdsa::Signature::from_slice(signature)
                    .is_ok_and(|s| k.verify(message, &s).is_ok()),
                (Parsed::Ed25519(k), A::EdDSA) => ed25519_dalek::Signature::from_slice(signature)
                    .is_ok_and(|s| k.verify(message, &s).is_ok()),
                _ => false,
            }
        }
    }
}

/// Without a crypto backend no public key can be used (and `build()` fails
/// with `BuildError::NoCryptoProvider` before any request).
#[cfg(not(any(feature = "aws-lc-rs", feature = "rust-crypto")))]
mod backend {
    use super::{Algorithm, Rejected};

    const NO_BACKEND: Rejected =
        "no crypto backend: enable feature \"aws-lc-rs\" or \"rust-crypto\"";

    pub(super) enum Parsed {}

    pub(super) fn rsa(_: &[u8], _: &[u8], _: u16) -> Result<Parsed, Rejected> {
        Err(NO_BACKEND)
    }

    pub(super) fn ec(_: Algorithm, _: &[u8]) -> Result<Parsed, Rejected> {
        Err(NO_BACKEND)
    }

    pub(super) fn ed25519(_: &[u8; 32]) -> Result<Parsed, Rejected> {
        Err(NO_BACKEND)
    }

    impl Parsed {
        pub(super) fn verify(&self, _: Algorithm, _: &[u8], _: &[u8]) -> bool {
            match *self {}
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::LazyLock;

    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    use super::*;
    use crate::test_util::{TestIssuer, kids};

    const MESSAGE: &[u8] = b"eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ1c2VyIn0";
    const EC384: &str = "ec-384";
    const OTHER_RSA: &str = "rsa-other";

    /// One issuer for every test: RSA (signs every RS and PS algorithm),
    /// P-256, P-384, Ed25519, and a second RSA key.
    static ISSUER: LazyLock<TestIssuer> = LazyLock::new(|| {
        let issuer = TestIssuer::new("https://keys.test");
        issuer.add_key(EC384, Algorithm::ES384);
        issuer.add_key(OTHER_RSA, Algorithm::RS256);
        issuer
    });

    fn component(kid: &str, name: &str) -> Vec<u8> {
        let jwk = ISSUER.jwk(kid).expect("published key");
        URL_SAFE_NO_PAD
            .decode(jwk[name].as_str().expect("component"))
            .expect("base64url")
    }

    /// The key `kid`, parsed for `alg` (every RSA algorithm for RSA keys).
    fn key(kid: &str, alg: Algorithm) -> PublicKey {
        match alg {
            Algorithm::ES256 | Algorithm::ES384 => {
                PublicKey::ec(alg, &component(kid, "x"), &component(kid, "y"))
            }
            Algorithm::EdDSA => PublicKey::ed25519(&component(kid, "x")),
            _ => PublicKey::rsa(&component(kid, "n"), &component(kid, "e"), RSA_ALGORITHMS),
        }
        .expect("a valid key")
    }

    /// The kid that signs `alg`.
    fn signer(alg: Algorithm) -> &'static str {
        match alg {
            Algorithm::ES256 => kids::EC,
            Algorithm::ES384 => EC384,
            Algorithm::EdDSA => kids::ED,
            _ => kids::RSA,
        }
    }

    fn signature(kid: &str, alg: Algorithm) -> Vec<u8> {
        ISSUER.signature(MESSAGE, kid, alg).expect("signature")
    }

    fn b64(bytes: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(bytes)
    }

    const EVERY_ALGORITHM: [Algorithm; 9] = [
        Algorithm::RS256,
        Algorithm::RS384,
        Algorithm::RS512,
        Algorithm::PS256,
        Algorithm::PS384,
        Algorithm::PS512,
        Algorithm::ES256,
        Algorithm::ES384,
        Algorithm::EdDSA,
    ];

    #[test]
    fn every_algorithm_verifies_a_good_signature() {
        for alg in EVERY_ALGORITHM {
            let key = key(signer(alg), alg);
            let sig = b64(&signature(signer(alg), alg));
            assert!(key.verify(alg, MESSAGE, &sig), "{alg}");
        }
    }

    #[test]
    fn a_flipped_bit_in_message_or_signature_is_refused() {
        for alg in EVERY_ALGORITHM {
            let key = key(signer(alg), alg);
            let sig = signature(signer(alg), alg);
            let mut message = MESSAGE.to_vec();
            message[3] ^= 1;
            assert!(!key.verify(alg, &message, &b64(&sig)), "{alg}: message");
            for i in [0, sig.len() / 2, sig.len() - 1] {
                let mut flipped = sig.clone();
                flipped[i] ^= 0x10;
                assert!(!key.verify(alg, MESSAGE, &b64(&flipped)), "{alg}: byte {i}");
            }
        }
    }

    #[test]
    fn a_signature_by_another_key_is_refused() {
        let other = |alg| match alg {
            Algorithm::ES256 | Algorithm::ES384 | Algorithm::EdDSA => {
                // A new issuer: its keys are all new.
                let issuer = TestIssuer::new("https://other.test");
                issuer.add_key(EC384, Algorithm::ES384);
                issuer
                    .signature(MESSAGE, signer(alg), alg)
                    .expect("signature")
            }
            _ => signature(OTHER_RSA, alg),
        };
        for alg in EVERY_ALGORITHM {
            let key = key(signer(alg), alg);
            assert!(!key.verify(alg, MESSAGE, &b64(&other(alg))), "{alg}");
        }
    }

    #[test]
    fn a_signature_for_another_algorithm_is_refused() {
        let rsa = key(kids::RSA, Algorithm::RS256);
        for (signed, claimed) in [
            (Algorithm::RS256, Algorithm::PS256),
            (Algorithm::PS256, Algorithm::RS256),
            (Algorithm::RS256, Algorithm::RS384),
            (Algorithm::PS512, Algorithm::PS384),
        ] {
            let sig = b64(&signature(kids::RSA, signed));
            assert!(rsa.verify(signed, MESSAGE, &sig), "{signed}");
            assert!(!rsa.verify(claimed, MESSAGE, &sig), "{signed} as {claimed}");
        }
        // An EC key verifies its one algorithm only.
        let ec = key(kids::EC, Algorithm::ES256);
        let sig = b64(&signature(kids::EC, Algorithm::ES256));
        for alg in [Algorithm::ES384, Algorithm::EdDSA, Algorithm::RS256] {
            assert!(!ec.verify(alg, MESSAGE, &sig), "{alg}");
        }
    }

    #[test]
    fn an_rsa_key_verifies_only_the_algorithms_it_was_parsed_for() {
        let (n, e) = (component(kids::RSA, "n"), component(kids::RSA, "e"));
        let rs256 = PublicKey::rsa(&n, &e, [Algorithm::RS256]).expect("key");
        let ps256 = b64(&signature(kids::RSA, Algorithm::PS256));
        let good = b64(&signature(kids::RSA, Algorithm::RS256));
        assert!(rs256.verify(Algorithm::RS256, MESSAGE, &good));
        assert!(!rs256.verify(Algorithm::PS256, MESSAGE, &ps256));
        assert!(PublicKey::rsa(&n, &e, []).is_err());
        assert!(PublicKey::rsa(&n, &e, [Algorithm::ES256]).is_err());
    }

    #[test]
    fn ec_keys_are_used_on_their_own_curve_only() {
        let (x, y) = (component(EC384, "x"), component(EC384, "y"));
        assert!(PublicKey::ec(Algorithm::ES256, &x, &y).is_err());
        assert!(PublicKey::ec(Algorithm::EdDSA, &x, &y).is_err());
        let (x, y) = (component(kids::EC, "x"), component(kids::EC, "y"));
        assert!(PublicKey::ec(Algorithm::ES384, &x, &y).is_err());
        // A point off the curve is refused when parsed, not on use.
        let mut bad_y = y.clone();
        bad_y[31] ^= 1;
        assert!(PublicKey::ec(Algorithm::ES256, &x, &bad_y).is_err());
    }

    #[test]
    fn a_der_encoded_ecdsa_signature_is_refused() {
        /// DER INTEGER of an unsigned big-endian number.
        fn integer(bytes: &[u8]) -> Vec<u8> {
            let bytes = &bytes[bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len())..];
            let pad = bytes.first().is_some_and(|b| b & 0x80 != 0);
            let len = u8::try_from(bytes.len() + usize::from(pad)).expect("short");
            [&[2, len][..], if pad { &[0] } else { &[] }, bytes].concat()
        }
        for alg in [Algorithm::ES256, Algorithm::ES384] {
            let key = key(signer(alg), alg);
            let sig = signature(signer(alg), alg);
            let (r, s) = sig.split_at(sig.len() / 2);
            let body = [integer(r), integer(s)].concat();
            let der = [&[0x30, u8::try_from(body.len()).expect("short")][..], &body].concat();
            assert!(key.verify(alg, MESSAGE, &b64(&sig)), "{alg}: fixed form");
            assert!(!key.verify(alg, MESSAGE, &b64(&der)), "{alg}: DER form");
        }
    }

    #[test]
    fn only_strict_base64url_signatures_are_decoded() {
        for alg in EVERY_ALGORITHM {
            let key = key(signer(alg), alg);
            let sig = signature(signer(alg), alg);
            let good = b64(&sig);
            assert!(key.verify(alg, MESSAGE, &good), "{alg}");
            let mut bad = vec![
                format!("{good}="),
                format!("{good}=="),
                format!(" {good}"),
                format!("{good}\n"),
                String::new(),
            ];
            // Padded, and the standard alphabet, where they differ.
            for other in [
                base64::engine::general_purpose::URL_SAFE.encode(&sig),
                base64::engine::general_purpose::STANDARD.encode(&sig),
            ] {
                if other != good {
                    bad.push(other);
                }
            }
            // Non-canonical trailing bits: the last character's unused low
            // bits set (the next character of the alphabet), the same bytes
            // to a lenient decoder.
            if !sig.len().is_multiple_of(3) {
                let mut chars = good.clone().into_bytes();
                *chars.last_mut().expect("non-empty") += 1;
                let lenient = base64::engine::GeneralPurpose::new(
                    &base64::alphabet::URL_SAFE,
                    base64::engine::general_purpose::NO_PAD.with_decode_allow_trailing_bits(true),
                );
                assert_eq!(lenient.decode(&chars).expect("lenient"), sig);
                bad.push(String::from_utf8(chars).expect("ascii"));
            }
            for bad in bad {
                assert!(!key.verify(alg, MESSAGE, &bad), "{alg}: {bad:?}");
            }
        }
    }

    #[test]
    fn an_oversized_signature_is_refused_without_panicking() {
        let key = key(kids::RSA, Algorithm::RS256);
        for len in [MAX_SIGNATURE, MAX_SIGNATURE + 1, 64 * 1024] {
            assert!(!key.verify(Algorithm::RS256, MESSAGE, &b64(&vec![0x5a; len])));
        }
    }

    #[test]
    fn a_key_is_parsed_once_for_many_verifications() {
        let before = parses_on_this_thread();
        let rsa = key(kids::RSA, Algorithm::RS256);
        // aws-lc parses an RSA key once per algorithm it may verify; the
        // rsa crate once.
        let rsa_parses = parses_on_this_thread() - before;
        assert!(
            rsa_parses == 1 || rsa_parses == RSA_ALGORITHMS.len(),
            "{rsa_parses}"
        );
        let ec = key(kids::EC, Algorithm::ES256);
        let ed = key(kids::ED, Algorithm::EdDSA);
        let parsed = parses_on_this_thread();
        assert_eq!(parsed - before, rsa_parses + 2);
        let sigs: Vec<(&PublicKey, Algorithm, String)> = vec![
            (
                &rsa,
                Algorithm::RS256,
                b64(&signature(kids::RSA, Algorithm::RS256)),
            ),
            (
                &rsa,
                Algorithm::PS512,
                b64(&signature(kids::RSA, Algorithm::PS512)),
            ),
            (
                &ec,
                Algorithm::ES256,
                b64(&signature(kids::EC, Algorithm::ES256)),
            ),
            (
                &ed,
                Algorithm::EdDSA,
                b64(&signature(kids::ED, Algorithm::EdDSA)),
            ),
        ];
        for _ in 0..50 {
            for (key, alg, sig) in &sigs {
                assert!(key.verify(*alg, MESSAGE, sig), "{alg}");
            }
        }
        assert_eq!(
            parses_on_this_thread(),
            parsed,
            "verification parses nothing"
        );
    }

    #[test]
    fn keys_are_compared_by_their_components() {
        let a = key(kids::RSA, Algorithm::RS256);
        let (n, e) = (component(kids::RSA, "n"), component(kids::RSA, "e"));
        // Parsed for other algorithms, the same material.
        let a_ps = PublicKey::rsa(&n, &e, [Algorithm::PS256]).expect("key");
        assert!(a.same_material(&a_ps));
        assert!(!a.same_material(&key(OTHER_RSA, Algorithm::RS256)));
        let ec = key(kids::EC, Algorithm::ES256);
        assert!(ec.same_material(&key(kids::EC, Algorithm::ES256)));
        assert!(!ec.same_material(&key(EC384, Algorithm::ES384)));
        assert!(!ec.same_material(&a));
        let ed = key(kids::ED, Algorithm::EdDSA);
        assert!(ed.same_material(&key(kids::ED, Algorithm::EdDSA)));
        assert!(!ed.same_material(&ec));
    }

    /// A leading zero byte of `n` is refused by aws-lc (it was on every
    /// verification before) and accepted by the rsa crate: the backends keep
    /// their own rules.
    #[test]
    fn a_zero_byte_before_the_modulus_is_as_each_backend_takes_it() {
        let (n, e) = (component(kids::RSA, "n"), component(kids::RSA, "e"));
        let padded = [&[0][..], &n].concat();
        let key = PublicKey::rsa(&padded, &e, [Algorithm::RS256]);
        if cfg!(feature = "aws-lc-rs") {
            assert!(key.is_err());
        } else {
            let sig = b64(&signature(kids::RSA, Algorithm::RS256));
            assert!(
                key.expect("rsa crate")
                    .verify(Algorithm::RS256, MESSAGE, &sig)
            );
        }
    }

    /// aws-lc verifies with moduli of 2048 to 8192 bits: a key outside is
    /// refused when parsed rather than failing every token.
    #[cfg(feature = "aws-lc-rs")]
    #[test]
    fn aws_lc_refuses_a_modulus_it_would_not_verify_with_when_parsed() {
        let e = component(kids::RSA, "e");
        let mut n = component(kids::RSA, "n");
        n[0] = 0x7f; // 2047 bits
        assert!(PublicKey::rsa(&n, &e, [Algorithm::RS256]).is_err());
        let mut n = vec![0xc5; 8192 / 8 + 1]; // 8200 bits
        n[0] = 0x80;
        assert!(PublicKey::rsa(&n, &e, [Algorithm::RS256]).is_err());
    }
}
