//! CVE-2018-0114: a key embedded in the header (`jwk`), with the attacker's
//! and with the real kid.

use authlayer::test_util::kids;
use authlayer::{Algorithm, Reason};
use serde_json::json;

use super::builders::{header_with, sign, valid_claims};
use super::{Corpus, Keys, Reject};

pub fn cases(corpus: &mut Corpus, keys: &Keys) {
    const C: &str = "embedded jwk header";
    let payload = valid_claims();
    for (alg, kid) in [
        (Algorithm::RS256, kids::RSA),
        (Algorithm::ES256, kids::EC),
        (Algorithm::EdDSA, kids::ED),
    ] {
        let name = format!("{alg:?}");
        let mut jwk = keys.attacker.jwk(kid).expect("attacker JWK");
        for (header_kid, expect) in [
            (Some("attacker-1"), Reason::UnknownKey),
            (Some(kid), Reason::BadSignature),
            (None, Reason::BadSignature),
        ] {
            if let Some(hk) = header_kid {
                jwk["kid"] = json!(hk);
            }
            let h = header_with(&name, header_kid, "jwk", jwk.clone());
            let t = sign(&keys.attacker, &h, &payload, kid, alg);
            let label = format!("{name}, embedded jwk, kid {header_kid:?}");
            // Kid-less RS256 is ambiguous here (two RSA keys).
            let expect = if header_kid.is_none() && alg == Algorithm::RS256 {
                Reason::UnknownKey
            } else {
                expect
            };
            corpus.token(C, label, t, Reject(expect));
        }
    }
}
