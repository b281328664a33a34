//! CVE-2020-26160: `aud` as string or array, exact entries.

use authlayer::Reason;
use serde_json::{Value, json};

use super::builders::{claims_with, claims_without, rs256_header, rsa};
use super::{AUD, Corpus, Keys, Reject};

pub fn cases(corpus: &mut Corpus, keys: &Keys) {
    const C: &str = "aud missing, empty, look-alike";
    let h = rs256_header();
    corpus.token(
        C,
        "aud missing",
        rsa(keys, &h, &claims_without("aud")),
        Reject(Reason::WrongAudience),
    );
    for (name, value) in [
        ("empty array", json!([])),
        ("empty string", json!("")),
        ("prefix look-alike", json!("urn:orders-evil")),
        ("truncated", json!("urn:order")),
        ("upper case", json!("URN:ORDERS")),
        ("trailing space", json!("urn:orders ")),
        ("space-joined list", json!("urn:orders urn:other")),
        ("comma-joined list", json!("urn:orders,urn:other")),
        ("array of others", json!(["urn:other", "urn:orders2"])),
    ] {
        corpus.token(
            C,
            format!("aud {name}"),
            rsa(keys, &h, &claims_with("aud", value)),
            Reject(Reason::WrongAudience),
        );
    }
    for (name, value) in [
        ("null", Value::Null),
        ("number", json!(1)),
        ("nested array", json!([[AUD]])),
        ("array with a number", json!([AUD, 1])),
        ("object", json!({"aud": AUD})),
    ] {
        corpus.token(
            C,
            format!("aud {name}"),
            rsa(keys, &h, &claims_with("aud", value)),
            Reject(Reason::InvalidClaim),
        );
    }
}
