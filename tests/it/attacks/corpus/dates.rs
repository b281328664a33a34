//! `exp`, `nbf`, `iat` of the wrong type, null, fractional, missing; leeway.

use authlayer::Reason;
use authlayer::test_util::kids;
use serde_json::{Value, json};

use super::builders::{claims_with, claims_without, header_with, now, number, rs256_header, rsa};
use super::{Accept, Corpus, Keys, Profile, Reject};

pub fn cases(corpus: &mut Corpus, keys: &Keys) {
    const C: &str = "exp / nbf / iat type and value";
    let h = rs256_header();
    let now = now();
    for claim in ["exp", "nbf", "iat"] {
        for (name, value) in [
            ("string", json!((now + 300).to_string())),
            ("null", Value::Null),
            ("bool", json!(true)),
            ("array", json!([now + 300])),
            ("object", json!({"$date": now + 300})),
            ("1e300", json!(1e300)),
            ("u64::MAX", json!(u64::MAX)),
        ] {
            let t = rsa(keys, &h, &claims_with(claim, value));
            corpus.token(
                C,
                format!("{claim} as {name}"),
                t,
                Reject(Reason::InvalidClaim),
            );
        }
    }
    corpus.token(
        C,
        "exp missing",
        rsa(keys, &h, &claims_without("exp")),
        Reject(Reason::MissingClaim),
    );
    corpus.token(
        C,
        "exp negative",
        rsa(keys, &h, &claims_with("exp", json!(-1))),
        Reject(Reason::Expired),
    );
    corpus.token(
        C,
        "exp zero",
        rsa(keys, &h, &claims_with("exp", json!(0))),
        Reject(Reason::Expired),
    );
    corpus.token(
        C,
        "exp an hour ago",
        rsa(keys, &h, &claims_with("exp", json!(now - 3600))),
        Reject(Reason::Expired),
    );
    corpus.token(
        C,
        "nbf in an hour",
        rsa(keys, &h, &claims_with("nbf", json!(now + 3600))),
        Reject(Reason::NotYetValid),
    );
    // Policy: leeway 60 s by default, 0 in the strict profile.
    let strict_header = header_with("RS256", Some(kids::RSA), "typ", json!("at+jwt"));
    for (name, key, value, strict) in [
        ("exp 30 s ago", "exp", json!(now - 30), Reason::Expired),
        ("nbf in 30 s", "nbf", json!(now + 30), Reason::NotYetValid),
        // Policy: fractional NumericDates are allowed (RFC 7519 §2) and
        // truncated toward the past.
        (
            "exp 30.5 s ago (fractional)",
            "exp",
            number(&format!("{}.5", now - 31)),
            Reason::Expired,
        ),
    ] {
        let payload = claims_with(key, value);
        corpus.token(
            C,
            format!("{name}, leeway 60 s"),
            rsa(keys, &h, &payload),
            Accept,
        );
        corpus.token_on(
            Profile::Strict,
            C,
            format!("{name}, leeway 0"),
            rsa(keys, &strict_header, &payload),
            Reject(strict),
        );
    }
    let payload = claims_with("exp", number(&format!("{}.9", now + 300)));
    corpus.token(
        C,
        "exp fractional in the future",
        rsa(keys, &h, &payload),
        Accept,
    );
    corpus.token_on(
        Profile::Strict,
        C,
        "exp fractional in the future, strict",
        rsa(keys, &strict_header, &payload),
        Accept,
    );
    let payload = claims_with("exp", number(&format!("{}.5", now - 1)));
    corpus.token_on(
        Profile::Strict,
        C,
        "exp half a second ago, leeway 0",
        rsa(keys, &strict_header, &payload),
        Reject(Reason::Expired),
    );
}
