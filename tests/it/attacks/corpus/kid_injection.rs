//! `kid` used as a path, query, or with near-miss spellings: an exact map
//! lookup, nothing else.

use authlayer::test_util::kids;
use authlayer::{Algorithm, Reason};
use serde_json::{Value, json};

use super::builders::{header, rsa, sign, valid_claims};
use super::{Corpus, Keys, Profile, Reject};

pub fn cases(corpus: &mut Corpus, keys: &Keys) {
    const C: &str = "kid path traversal and injection";
    let payload = valid_claims();
    let kids_tried = [
        "../../../../../../dev/null",
        "/dev/null",
        "rsa-1/../rsa-1",
        "..\\..\\rsa-1",
        "rsa-1' OR '1'='1",
        "rsa-1\"; --",
        "rsa-1\u{0}",
        "rsa-1\n",
        "RSA-1",
        " rsa-1",
        "rsa-1 ",
        "rsa-１",
        "",
        "*",
        "%72sa-1",
        "http://127.0.0.1:9/jwks.json",
        "rsa-1|ec-1",
    ];
    keys.attacker.add_secret("empty", Algorithm::HS256, b"");
    for kid in kids_tried {
        let h = Value::Object(header("RS256", Some(kid))).to_string();
        corpus.token(
            C,
            format!("kid {kid:?}"),
            rsa(keys, &h, &payload),
            Reject(Reason::UnknownKey),
        );
        // The classic: HS256 "signed" with the (empty) file the kid names.
        let h = Value::Object(header("HS256", Some(kid))).to_string();
        let t = sign(&keys.attacker, &h, &payload, "empty", Algorithm::HS256);
        corpus.token(
            C,
            format!("HS256 empty key, kid {kid:?}"),
            t.clone(),
            Reject(Reason::AlgorithmNotAllowed),
        );
        corpus.token_on(
            Profile::Hmac,
            C,
            format!("HS256 empty key, kid {kid:?}, HMAC allowed"),
            t,
            Reject(Reason::UnknownKey),
        );
    }
    for (name, kid) in [
        ("number", json!(1)),
        ("array", json!([kids::RSA])),
        ("object", json!({"kid": kids::RSA})),
        ("bool", json!(true)),
    ] {
        let h = json!({"alg": "RS256", "kid": kid}).to_string();
        corpus.token(
            C,
            format!("kid as {name}"),
            rsa(keys, &h, &payload),
            Reject(Reason::Malformed),
        );
    }
    // `kid: null` is an absent kid: the token is judged as kid-less.
    let h = json!({"alg": "ES256", "kid": null}).to_string();
    let t = sign(&keys.attacker, &h, &payload, kids::EC, Algorithm::ES256);
    corpus.token(
        C,
        "kid null, foreign ES256 signature",
        t,
        Reject(Reason::BadSignature),
    );
}
