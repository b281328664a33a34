//! CVE-2024-53861: `iss` compared exactly.

use authlayer::Reason;
use serde_json::{Value, json};

use super::builders::{claims_with, claims_without, rs256_header, rsa, valid};
use super::{Accept, Corpus, ISS, Keys, Profile, Reject};

pub fn cases(corpus: &mut Corpus, keys: &Keys) {
    const C: &str = "iss spelling and type";
    let h = rs256_header();
    for (name, value) in [
        ("trailing slash", json!(format!("{ISS}/"))),
        ("upper case", json!(ISS.to_uppercase())),
        ("host upper case", json!("https://ID.attack.test")),
        ("http scheme", json!("http://id.attack.test")),
        ("suffix", json!(format!("{ISS}.evil.example"))),
        ("prefix", json!("https://id.attack")),
        ("path appended", json!(format!("{ISS}/realms/x"))),
        ("default port", json!("https://id.attack.test:443")),
        ("whitespace", json!(format!(" {ISS}"))),
        ("other issuer", json!("https://evil.example")),
        ("empty", json!("")),
    ] {
        corpus.token(
            C,
            format!("iss {name}"),
            rsa(keys, &h, &claims_with("iss", value)),
            Reject(Reason::UnknownIssuer),
        );
    }
    corpus.token(
        C,
        "iss as array",
        rsa(keys, &h, &claims_with("iss", json!([ISS]))),
        Reject(Reason::InvalidClaim),
    );
    corpus.token(
        C,
        "iss as number",
        rsa(keys, &h, &claims_with("iss", json!(1))),
        Reject(Reason::InvalidClaim),
    );
    corpus.token(
        C,
        "iss as object",
        rsa(keys, &h, &claims_with("iss", json!({"iss": ISS}))),
        Reject(Reason::InvalidClaim),
    );
    corpus.token(
        C,
        "iss missing",
        rsa(keys, &h, &claims_without("iss")),
        Reject(Reason::MissingClaim),
    );
    corpus.token(
        C,
        "iss null (absent)",
        rsa(keys, &h, &claims_with("iss", Value::Null)),
        Reject(Reason::MissingClaim),
    );
    // Policy: exact match both ways. A verifier configured with the slash
    // accepts only the slash.
    let with_slash = claims_with("iss", json!(format!("{ISS}/")));
    corpus.token_on(
        Profile::SlashIssuer,
        C,
        "issuer configured with slash, iss with slash",
        rsa(keys, &h, &with_slash),
        Accept,
    );
    corpus.token_on(
        Profile::SlashIssuer,
        C,
        "issuer configured with slash, iss without",
        valid(keys),
        Reject(Reason::UnknownIssuer),
    );
}
