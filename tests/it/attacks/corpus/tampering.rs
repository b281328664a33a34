//! Tampered header or payload under the original signature.

use authlayer::Reason;
use authlayer::test_util::kids;
use serde_json::{Value, json};

use super::builders::{
    b64, claims, claims_with, header_with, now, rs256_header, rsa, segments, valid,
};
use super::{Corpus, Keys, Reject};

pub fn cases(corpus: &mut Corpus, keys: &Keys) {
    const C: &str = "tampered header or payload";
    let token = valid(keys);
    let (h, p, s) = segments(&token);
    let header_tampered =
        b64(header_with("RS256", Some(kids::RSA), "typ", json!("at+jwt")).as_bytes());
    corpus.token(
        C,
        "header changed",
        format!("{header_tampered}.{p}.{s}"),
        Reject(Reason::BadSignature),
    );
    for (name, key, value) in [
        (
            "scope escalated",
            "scope",
            json!("orders:read orders:write admin"),
        ),
        ("sub changed", "sub", json!("admin")),
        ("exp extended", "exp", json!(now() + 86_400 * 365)),
        ("aud changed", "aud", json!("urn:admin")),
    ] {
        let payload = b64(claims_with(key, value).as_bytes());
        corpus.token(
            C,
            name,
            format!("{h}.{payload}.{s}"),
            Reject(Reason::BadSignature),
        );
    }
    // Same JSON, other bytes: the signature covers the encoding.
    let spaced = b64(serde_json::to_string_pretty(&Value::Object(claims()))
        .expect("JSON")
        .as_bytes());
    corpus.token(
        C,
        "payload re-serialized",
        format!("{h}.{spaced}.{s}"),
        Reject(Reason::BadSignature),
    );
    // Header and payload of two different genuine tokens.
    let other = rsa(
        keys,
        &rs256_header(),
        &claims_with("scope", json!("orders:write")),
    );
    let (_, other_p, _) = segments(&other);
    corpus.token(
        C,
        "payload of another genuine token",
        format!("{h}.{other_p}.{s}"),
        Reject(Reason::BadSignature),
    );
}
