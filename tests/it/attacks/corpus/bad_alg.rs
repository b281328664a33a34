//! Missing, empty, mis-cased or unknown `alg` (validly signed by rsa-1).

use authlayer::test_util::kids;
use authlayer::{Algorithm, Reason};
use serde_json::{Value, json};

use super::builders::{now, rs256_header, rsa, sign, valid_claims};
use super::{AUD, Corpus, ISS, Keys, Reject};

pub fn cases(corpus: &mut Corpus, keys: &Keys) {
    const C: &str = "missing / empty / lowercase / unknown alg";
    let payload = valid_claims();
    let malformed = [
        ("missing alg", json!({"kid": kids::RSA, "typ": "JWT"})),
        ("alg null", json!({"alg": null, "kid": kids::RSA})),
        ("alg number", json!({"alg": 256, "kid": kids::RSA})),
        ("alg array", json!({"alg": ["RS256"], "kid": kids::RSA})),
        ("header is an array", json!(["RS256"])),
        ("header is a string", json!("RS256")),
        (
            "header is an array of all fields",
            json!(["RS256", "rsa-1", "JWT"]),
        ),
        ("header is null", Value::Null),
    ];
    for (name, h) in malformed {
        corpus.token(
            C,
            name,
            rsa(keys, &h.to_string(), &payload),
            Reject(Reason::Malformed),
        );
    }
    // The same for the payload: a claims set is a JSON object.
    for (name, p) in [
        (
            "payload is an array",
            json!([ISS, AUD, "mallory", now() + 300]),
        ),
        ("payload is a string", json!("claims")),
        ("payload is null", Value::Null),
        ("payload is a number", json!(1)),
    ] {
        corpus.token(
            C,
            name,
            rsa(keys, &rs256_header(), &p.to_string()),
            Reject(Reason::InvalidClaim),
        );
    }
    for alg in [
        "",
        "rs256",
        "Rs256",
        "RS256 ",
        " RS256",
        "RS256\u{0}",
        "RSA256",
        "ES256K",
        "ES512",
        "PS256K",
        "HS256",
    ] {
        let h = json!({"alg": alg, "kid": kids::RSA}).to_string();
        corpus.token(
            C,
            format!("alg {alg:?}"),
            rsa(keys, &h, &payload),
            Reject(Reason::AlgorithmNotAllowed),
        );
    }
    // The allow-list can be narrowed: the key's family alone is not enough.
    let h = json!({"alg": "ES384", "kid": kids::EC}).to_string();
    let t = sign(&keys.issuer, &h, &payload, kids::EC, Algorithm::ES256);
    corpus.token(
        C,
        "ES384 header on the P-256 key",
        t,
        Reject(Reason::KeyAlgorithmMismatch),
    );
}
