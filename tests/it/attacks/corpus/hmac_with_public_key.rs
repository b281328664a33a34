//! CVE-2016-10555, CVE-2022-29217: HS256/384/512 "signed" with the public
//! key in every encoding an attacker can find.

use authlayer::test_util::kids;
use authlayer::{Algorithm, Reason};
use serde_json::Value;

use super::builders::{b64_decode, der, der_uint, header, pem, sign, valid_claims};
use super::{Corpus, Keys, Profile, Reject};

pub fn cases(corpus: &mut Corpus, keys: &Keys) {
    const C: &str = "HMAC signed with the public key";
    let jwk = keys.issuer.jwk(kids::RSA).expect("rsa-1 JWK");
    let n = b64_decode(jwk["n"].as_str().expect("n")).expect("n is base64url");
    let e = b64_decode(jwk["e"].as_str().expect("e")).expect("e is base64url");
    let spki = keys.issuer.public_key_der(kids::RSA).expect("SPKI DER");
    let pkcs1 = der(0x30, &[der_uint(&n), der_uint(&e)].concat());
    assert!(spki.ends_with(&pkcs1), "PKCS#1 is the SPKI's key bits");
    let spki_pem = pem("PUBLIC KEY", &spki);
    let mut spki_pem_no_newline = spki_pem.clone();
    spki_pem_no_newline.pop();
    let encodings: Vec<(&str, Vec<u8>)> = vec![
        ("SPKI PEM", spki_pem),
        ("SPKI PEM without final newline", spki_pem_no_newline),
        ("PKCS#1 PEM", pem("RSA PUBLIC KEY", &pkcs1)),
        ("SPKI DER", spki),
        ("PKCS#1 DER", pkcs1),
        ("JWK JSON", jwk.to_string().into_bytes()),
        ("JWK Set JSON", keys.issuer.jwks_json().into_bytes()),
        ("raw modulus", n),
        (
            "modulus base64url text",
            jwk["n"].as_str().expect("n").as_bytes().to_vec(),
        ),
    ];
    let payload = valid_claims();
    for (i, (encoding, key)) in encodings.iter().enumerate() {
        for alg in [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512] {
            let name = format!("{alg:?}");
            let kid = format!("hmac-{i}-{name}");
            keys.attacker.add_secret(&kid, alg, key);
            let forge = |header_kid: Option<&str>| {
                let h = Value::Object(header(&name, header_kid)).to_string();
                sign(&keys.attacker, &h, &payload, &kid, alg)
            };
            let with_kid = forge(Some(kids::RSA));
            let label = format!("{name} with {encoding}");
            corpus.token(
                C,
                format!("{label}, kid rsa-1"),
                with_kid.clone(),
                Reject(Reason::AlgorithmNotAllowed),
            );
            // Even with HMAC allowed (a secret configured), the RSA key never verifies HMAC.
            corpus.token_on(
                Profile::Hmac,
                C,
                format!("{label}, kid rsa-1, HMAC allowed"),
                with_kid,
                Reject(Reason::KeyAlgorithmMismatch),
            );
            // The profile's secret is bound to its kid: a kid-less token
            // finds no key at all (it used to be tried, and fail, with it).
            corpus.token_on(
                Profile::Hmac,
                C,
                format!("{label}, no kid, HMAC allowed"),
                forge(None),
                Reject(Reason::UnknownKey),
            );
        }
    }
    // The EC and Ed25519 public keys (raw points) as HMAC keys.
    for (kid, name) in [(kids::EC, "P-256 point"), (kids::ED, "Ed25519 key")] {
        let key = keys.issuer.public_key_der(kid).expect("public key");
        let secret_kid = format!("hmac-{kid}");
        keys.attacker
            .add_secret(&secret_kid, Algorithm::HS256, &key);
        let h = Value::Object(header("HS256", Some(kid))).to_string();
        let t = sign(&keys.attacker, &h, &payload, &secret_kid, Algorithm::HS256);
        corpus.token(
            C,
            format!("HS256 with the {name}"),
            t.clone(),
            Reject(Reason::AlgorithmNotAllowed),
        );
        corpus.token_on(
            Profile::Hmac,
            C,
            format!("HS256 with the {name}, HMAC allowed"),
            t,
            Reject(Reason::KeyAlgorithmMismatch),
        );
    }
}
