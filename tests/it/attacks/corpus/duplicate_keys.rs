//! CVE-2022-39227-style confusion: duplicate members, in header and payload.

use authlayer::Reason;

use super::builders::{now, rs256_header, rsa, valid_claims};
use super::{Corpus, Keys, Reject};

pub fn cases(corpus: &mut Corpus, keys: &Keys) {
    const C: &str = "duplicate JSON keys";
    let payload = valid_claims();
    for (name, h) in [
        (
            "alg twice (RS256, none)",
            r#"{"alg":"RS256","alg":"none","kid":"rsa-1"}"#.to_owned(),
        ),
        (
            "alg twice (none, RS256)",
            r#"{"alg":"none","alg":"RS256","kid":"rsa-1"}"#.to_owned(),
        ),
        (
            "kid twice",
            r#"{"alg":"RS256","kid":"ec-1","kid":"rsa-1"}"#.to_owned(),
        ),
        (
            "typ twice",
            r#"{"alg":"RS256","kid":"rsa-1","typ":"JWT","typ":"at+jwt"}"#.to_owned(),
        ),
        (
            "alg twice, one escaped",
            r#"{"alg":"RS256","a\u006cg":"HS256","kid":"rsa-1"}"#.to_owned(),
        ),
        (
            "crit twice",
            r#"{"alg":"RS256","kid":"rsa-1","crit":[],"crit":[]}"#.to_owned(),
        ),
    ] {
        corpus.token(
            C,
            format!("header: {name}"),
            rsa(keys, &h, &payload),
            Reject(Reason::Malformed),
        );
    }
    let base = valid_claims();
    let body = &base[1..base.len() - 1];
    for (name, extra) in [
        ("sub twice", r#""sub":"admin""#.to_owned()),
        ("aud twice", r#""aud":"urn:other""#.to_owned()),
        ("exp twice", format!(r#""exp":{}"#, now() + 86_400)),
        ("iss twice", r#""iss":"https://evil.example""#.to_owned()),
        ("scope twice", r#""scope":"admin""#.to_owned()),
        ("escaped sub twice", r#""s\u0075b":"admin""#.to_owned()),
    ] {
        let payload = format!("{{{body},{extra}}}");
        corpus.token(
            C,
            format!("payload: {name}"),
            rsa(keys, &rs256_header(), &payload),
            Reject(Reason::InvalidClaim),
        );
    }
}
