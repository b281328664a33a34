//! `jku`, `x5u`, `x5c` headers pointing at the attacker's keys. The
//! attacker's JWKS server counts requests: it must see none.

use authlayer::test_util::kids;
use authlayer::{Algorithm, Reason};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::json;

use super::builders::{header_with, rsa, sign, valid_claims};
use super::{Accept, Corpus, Keys, Reject};

pub fn cases(corpus: &mut Corpus, keys: &Keys) {
    const C: &str = "jku / x5u / x5c headers";
    let payload = valid_claims();
    let attacker_spki = keys
        .attacker
        .public_key_der(kids::RSA)
        .expect("attacker SPKI");
    let headers = [
        ("jku", json!(keys.attacker_jwks)),
        ("x5u", json!(keys.attacker_jwks)),
        ("x5c", json!([STANDARD.encode(&attacker_spki)])),
        ("jwk_set_url", json!(keys.attacker_jwks)),
    ];
    for (param, value) in headers {
        for (kid, expect) in [
            ("attacker-1", Reason::UnknownKey),
            (kids::RSA, Reason::BadSignature),
        ] {
            let h = header_with("RS256", Some(kid), param, value.clone());
            let t = sign(&keys.attacker, &h, &payload, kids::RSA, Algorithm::RS256);
            corpus.token(C, format!("{param}, kid {kid}"), t, Reject(expect));
        }
    }
    let h = header_with("RS256", Some(kids::RSA), "jku", json!(keys.attacker_jwks));
    corpus.token(
        C,
        "jku on a genuine token is ignored",
        rsa(keys, &h, &payload),
        Accept,
    );
}
