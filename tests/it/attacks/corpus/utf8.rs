//! RFC 8725 §3.7: not UTF-8 inside the JSON, validly signed: in an ignored
//! header member, in a member name, in a claim.

use authlayer::test_util::kids;
use authlayer::{Algorithm, Reason};

use super::builders::{rs256_header, valid_claims};
use super::{Corpus, Keys, Reject};

pub fn cases(corpus: &mut Corpus, keys: &Keys) {
    const C: &str = "invalid UTF-8 inside the JSON";
    let claims_text = valid_claims();
    for (name, header_json, payload_json, reason) in [
        (
            "invalid UTF-8 in an unknown header member",
            b"{\"alg\":\"RS256\",\"kid\":\"rsa-1\",\"x\":\"\x8a\x90\"}".to_vec(),
            claims_text.as_bytes().to_vec(),
            Reason::Malformed,
        ),
        (
            "invalid UTF-8 in a header member name",
            b"{\"alg\":\"RS256\",\"kid\":\"rsa-1\",\"\xff\":1}".to_vec(),
            claims_text.as_bytes().to_vec(),
            Reason::Malformed,
        ),
        (
            "invalid UTF-8 in an unknown claim",
            rs256_header().into_bytes(),
            [
                &claims_text.as_bytes()[..claims_text.len() - 1],
                b",\"x\":\"\xc3\x28\"}",
            ]
            .concat(),
            Reason::Malformed,
        ),
        (
            "invalid UTF-8 in sub",
            rs256_header().into_bytes(),
            [
                &claims_text.as_bytes()[..claims_text.len() - 1],
                b",\"sub\":\"\xed\xa0\x80\"}",
            ]
            .concat(),
            // The payload is not UTF-8 text, wherever the bad bytes sit.
            Reason::Malformed,
        ),
    ] {
        let token = keys
            .issuer
            .sign_raw(&header_json, &payload_json, kids::RSA, Algorithm::RS256)
            .expect("rsa-1 signs");
        corpus.token(C, name, token, Reject(reason));
    }
}
