//! CVE-2022-21449 ("psychic signatures") and malformed ECDSA signatures.

use authlayer::test_util::kids;
use authlayer::{Algorithm, Reason};
use serde_json::Value;

use super::builders::{b64, b64_decode, der, der_uint, header, hex, segments, sign, valid_claims};
/// The order of the P-256 group.
const P256_N: &str = "ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551";

use super::{Corpus, Keys, Reject};

pub fn cases(corpus: &mut Corpus, keys: &Keys) {
    const C: &str = "ES256 special signatures";
    let h = Value::Object(header("ES256", Some(kids::EC))).to_string();
    let token = sign(
        &keys.issuer,
        &h,
        &valid_claims(),
        kids::EC,
        Algorithm::ES256,
    );
    let (hs, ps, ss) = segments(&token);
    let sig = b64_decode(ss).expect("signature");
    assert_eq!(sig.len(), 64);
    let (r, s) = sig.split_at(32);
    let order = hex(P256_N);
    let one = {
        let mut one = vec![0u8; 32];
        one[31] = 1;
        one
    };
    let zero = vec![0u8; 32];
    let mut high_r = r.to_vec();
    high_r[0] ^= 0x80;
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("r = s = 0", [zero.clone(), zero.clone()].concat()),
        ("r = s = n", [order.clone(), order.clone()].concat()),
        ("r = 0, s = real", [zero.as_slice(), s].concat()),
        ("r = real, s = 0", [r, zero.as_slice()].concat()),
        ("r = n, s = real", [order.as_slice(), s].concat()),
        ("r = 1, s = 1", [one.clone(), one].concat()),
        ("r = s = 0xff…", vec![0xff; 64]),
        ("r altered", [high_r.as_slice(), s].concat()),
        (
            "DER-encoded real signature",
            der(0x30, &[der_uint(r), der_uint(s)].concat()),
        ),
        ("63 bytes", sig[..63].to_vec()),
        ("65 bytes (zero appended)", [sig.as_slice(), &[0]].concat()),
        ("65 bytes (zero prepended)", [&[0], sig.as_slice()].concat()),
        ("32 bytes (r only)", r.to_vec()),
        ("1 byte", vec![0]),
        (
            "128 bytes (doubled)",
            [sig.as_slice(), sig.as_slice()].concat(),
        ),
    ];
    for (name, signature) in cases {
        corpus.token(
            C,
            name,
            format!("{hs}.{ps}.{}", b64(&signature)),
            Reject(Reason::BadSignature),
        );
    }
}
