//! CVE-2025-59420: `crit` and `b64`; JWE parameters.

use authlayer::Reason;
use authlayer::test_util::kids;
use serde_json::{Value, json};

use super::builders::{header_with, rsa, valid_claims};
use super::{Corpus, Keys, Reject};

pub fn cases(corpus: &mut Corpus, keys: &Keys) {
    const C: &str = "crit / b64 / JWE header parameters";
    let payload = valid_claims();
    for (name, key, value) in [
        ("unknown crit", "crit", json!(["urn:x"])),
        ("crit naming exp", "crit", json!(["exp"])),
        ("empty crit", "crit", json!([])),
        ("crit not an array", "crit", json!("b64")),
        ("b64 false", "b64", json!(false)),
        ("b64 true", "b64", json!(true)),
        ("enc (JWE)", "enc", json!("A256GCM")),
        ("zip", "zip", json!("DEF")),
        // Present, even as null: other libraries refuse these.
        ("crit null", "crit", Value::Null),
        ("b64 null", "b64", Value::Null),
        ("enc null", "enc", Value::Null),
        ("zip null", "zip", Value::Null),
    ] {
        let h = header_with("RS256", Some(kids::RSA), key, value);
        corpus.token(
            C,
            name,
            rsa(keys, &h, &payload),
            Reject(Reason::UnsupportedHeader),
        );
    }
    let h = json!({"alg": "RS256", "kid": kids::RSA, "b64": false, "crit": ["b64"]}).to_string();
    corpus.token(
        C,
        "b64 false with crit b64",
        rsa(keys, &h, &payload),
        Reject(Reason::UnsupportedHeader),
    );
}
