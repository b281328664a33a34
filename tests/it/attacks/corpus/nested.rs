//! CVE-2024-33664: nested tokens and JWE.

use authlayer::Reason;
use authlayer::test_util::kids;
use serde_json::{Value, json};

use super::builders::{b64, header_with, rs256_header, rsa, rsa_segments, valid, valid_claims};
use super::{Corpus, Keys, Reject};

pub fn cases(corpus: &mut Corpus, keys: &Keys) {
    const C: &str = "cty JWT / nested tokens";
    let inner = valid(keys);
    for cty in ["JWT", "jwt", "Jwt"] {
        let h = header_with("RS256", Some(kids::RSA), "cty", json!(cty));
        corpus.token(
            C,
            format!("cty {cty}"),
            rsa(keys, &h, &valid_claims()),
            Reject(Reason::UnsupportedHeader),
        );
    }
    // A nested token without cty: the payload is not a claims object.
    corpus.token(
        C,
        "token as the payload",
        rsa_segments(
            keys,
            &b64(rs256_header().as_bytes()),
            &b64(inner.as_bytes()),
        ),
        Reject(Reason::Malformed),
    );
    let as_string = Value::String(inner.clone()).to_string();
    corpus.token(
        C,
        "token as a JSON string payload",
        rsa(keys, &rs256_header(), &as_string),
        Reject(Reason::InvalidClaim),
    );
    let h = header_with("RS256", Some(kids::RSA), "cty", json!("application/jwt"));
    corpus.token(
        C,
        "cty application/jwt, token payload",
        rsa_segments(keys, &b64(h.as_bytes()), &b64(inner.as_bytes())),
        Reject(Reason::Malformed),
    );
    let jwe_header = b64(
        json!({"alg": "RSA-OAEP", "enc": "A256GCM", "kid": kids::RSA})
            .to_string()
            .as_bytes(),
    );
    corpus.token(
        C,
        "JWE compact (5 segments)",
        format!("{jwe_header}.AAAA.AAAA.AAAA.AAAA"),
        Reject(Reason::Malformed),
    );
    corpus.token(
        C,
        "JWE header, 3 segments",
        format!("{jwe_header}.AAAA.AAAA"),
        Reject(Reason::AlgorithmNotAllowed),
    );
}
