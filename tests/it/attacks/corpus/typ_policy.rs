//! RFC 9068 `typ`: a policy choice. Off by default (providers send `JWT`);
//! `TypPolicy::AccessToken` in the strict profile.

use authlayer::Reason;
use authlayer::test_util::kids;
use serde_json::{Value, json};

use super::builders::{claims_without, header, header_with, rsa, valid_claims};
use super::{Accept, Corpus, Expect, Keys, Profile, Reject};

pub fn cases(corpus: &mut Corpus, keys: &Keys) {
    const C: &str = "typ policy (default and strict)";
    let payload = valid_claims();
    let cases: [(&str, Option<&str>, Expect); 9] = [
        ("typ JWT", Some("JWT"), Reject(Reason::WrongType)),
        ("no typ", None, Reject(Reason::WrongType)),
        ("typ at+jwt", Some("at+jwt"), Accept),
        ("typ application/at+jwt", Some("application/at+jwt"), Accept),
        ("typ AT+JWT", Some("AT+JWT"), Accept),
        (
            "typ at+jwt with space",
            Some("at+jwt "),
            Reject(Reason::WrongType),
        ),
        ("typ jwt+at", Some("jwt+at"), Reject(Reason::WrongType)),
        (
            "typ application/jwt",
            Some("application/jwt"),
            Reject(Reason::WrongType),
        ),
        (
            "typ secevent+jwt",
            Some("secevent+jwt"),
            Reject(Reason::WrongType),
        ),
    ];
    for (name, typ, strict) in cases {
        let mut h = header("RS256", Some(kids::RSA));
        match typ {
            Some(typ) => h.insert("typ".into(), json!(typ)),
            None => h.remove("typ"),
        };
        let t = rsa(keys, &Value::Object(h).to_string(), &payload);
        corpus.token(C, format!("{name}, default"), t.clone(), Accept);
        corpus.token_on(Profile::Strict, C, format!("{name}, strict"), t, strict);
    }
    // typ as a non-string is malformed under either policy.
    let h = header_with("RS256", Some(kids::RSA), "typ", json!(1));
    corpus.token(
        C,
        "typ as number",
        rsa(keys, &h, &payload),
        Reject(Reason::Malformed),
    );
    // RFC 9068 §2.2 claims, required in the strict profile only.
    let strict_header = header_with("RS256", Some(kids::RSA), "typ", json!("at+jwt"));
    for claim in ["sub", "iat", "jti", "client_id"] {
        let t = rsa(keys, &strict_header, &claims_without(claim));
        corpus.token(C, format!("{claim} missing, default"), t.clone(), Accept);
        corpus.token_on(
            Profile::Strict,
            C,
            format!("{claim} missing, strict"),
            t,
            Reject(Reason::MissingClaim),
        );
    }
}
