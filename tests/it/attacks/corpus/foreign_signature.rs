//! A real kid with someone else's signature.

use authlayer::test_util::kids;
use authlayer::{Algorithm, Reason};
use serde_json::Value;

use super::builders::{header, rsa, sign, valid_claims};
use super::{Corpus, Keys, RSA_2, Reject};

pub fn cases(corpus: &mut Corpus, keys: &Keys) {
    const C: &str = "real kid, foreign signature";
    let payload = valid_claims();
    for (kid, alg) in [
        (kids::RSA, Algorithm::RS256),
        (kids::RSA, Algorithm::PS256),
        (kids::RSA, Algorithm::RS512),
        (kids::EC, Algorithm::ES256),
        (kids::ED, Algorithm::EdDSA),
    ] {
        let name = format!("{alg:?}");
        let h = Value::Object(header(&name, Some(kid))).to_string();
        corpus.token(
            C,
            format!("{name} kid {kid}"),
            sign(&keys.attacker, &h, &payload, kid, alg),
            Reject(Reason::BadSignature),
        );
    }
    // The issuer's own key, but the kid of another of its keys.
    let h = Value::Object(header("RS256", Some(RSA_2))).to_string();
    corpus.token(
        C,
        "rsa-1 signature under kid rsa-2",
        rsa(keys, &h, &payload),
        Reject(Reason::BadSignature),
    );
}
