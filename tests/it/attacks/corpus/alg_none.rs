//! CVE-2015-9235, CVE-2018-1000531, CVE-2022-23540: `alg: none`.

use authlayer::Reason;
use authlayer::test_util::kids;
use serde_json::json;

use super::builders::{b64, segments, valid};
use super::{Corpus, Keys, Profile, Reject};

pub fn cases(corpus: &mut Corpus, keys: &Keys) {
    const C: &str = "alg none and its spellings";
    let real = valid(keys);
    let (_, payload, signature) = segments(&real);
    for alg in ["none", "None", "NONE", "nOnE"] {
        let h = b64(json!({"alg": alg, "typ": "JWT"}).to_string().as_bytes());
        // The unsecured form: empty signature segment.
        corpus.token(
            C,
            format!("{alg}, empty signature"),
            format!("{h}.{payload}."),
            Reject(Reason::Malformed),
        );
        // With a signature anyway (the real one, or garbage).
        let t = format!("{h}.{payload}.{signature}");
        corpus.token(
            C,
            format!("{alg}, real signature"),
            t.clone(),
            Reject(Reason::AlgorithmNotAllowed),
        );
        corpus.token_on(
            Profile::Hmac,
            C,
            format!("{alg}, HMAC allowed"),
            t,
            Reject(Reason::AlgorithmNotAllowed),
        );
        let h = b64(json!({"alg": alg, "kid": kids::RSA}).to_string().as_bytes());
        corpus.token(
            C,
            format!("{alg} with kid, junk signature"),
            format!("{h}.{payload}.AAAA"),
            Reject(Reason::AlgorithmNotAllowed),
        );
    }
}
