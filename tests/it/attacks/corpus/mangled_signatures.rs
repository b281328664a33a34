//! CVE-2020-28042 and friends: empty, truncated, bit-flipped, spliced signatures.

use authlayer::test_util::kids;
use authlayer::{Algorithm, Reason};
use serde_json::json;

use super::builders::{b64_decode, claims_with, resigned, rs256_header, rsa, segments, valid};
use super::{Corpus, Keys, Reject};

pub fn cases(corpus: &mut Corpus, keys: &Keys) {
    const C: &str = "empty / truncated / bit-flipped / spliced signatures";
    let token = valid(keys);
    let (h, p, s) = segments(&token);
    let sig = b64_decode(s).expect("signature");
    corpus.token(
        C,
        "empty signature",
        format!("{h}.{p}."),
        Reject(Reason::Malformed),
    );
    corpus.token(
        C,
        "signature truncated by 1 char",
        format!("{h}.{p}.{}", &s[..s.len() - 1]),
        Reject(Reason::BadSignature),
    );
    corpus.token(
        C,
        "signature truncated by 1 byte",
        resigned(&token, &sig[..sig.len() - 1]),
        Reject(Reason::BadSignature),
    );
    corpus.token(
        C,
        "signature halved",
        resigned(&token, &sig[..sig.len() / 2]),
        Reject(Reason::BadSignature),
    );
    corpus.token(
        C,
        "signature of zeros",
        resigned(&token, &vec![0; sig.len()]),
        Reject(Reason::BadSignature),
    );
    for (name, index, bit) in [
        ("first bit", 0, 0x80),
        ("last bit", sig.len() - 1, 0x01),
        ("middle bit", sig.len() / 2, 0x10),
    ] {
        let mut flipped = sig.clone();
        flipped[index] ^= bit;
        corpus.token(
            C,
            format!("{name} flipped"),
            resigned(&token, &flipped),
            Reject(Reason::BadSignature),
        );
    }
    // The signature of one token on another.
    let other = rsa(keys, &rs256_header(), &claims_with("sub", json!("alice")));
    let (_, _, other_sig) = segments(&other);
    corpus.token(
        C,
        "spliced: signature of another token",
        format!("{h}.{p}.{other_sig}"),
        Reject(Reason::BadSignature),
    );
    // A PS256 signature under an RS256 header (same key, other padding).
    let message = format!("{h}.{p}");
    let pss = keys
        .issuer
        .signature(message.as_bytes(), kids::RSA, Algorithm::PS256)
        .expect("PS256");
    corpus.token(
        C,
        "PS256 signature under RS256",
        resigned(&token, &pss),
        Reject(Reason::BadSignature),
    );
    let rs512 = keys
        .issuer
        .signature(message.as_bytes(), kids::RSA, Algorithm::RS512)
        .expect("RS512");
    corpus.token(
        C,
        "RS512 signature under RS256",
        resigned(&token, &rs512),
        Reject(Reason::BadSignature),
    );
    corpus.token(
        C,
        "signature doubled",
        resigned(&token, &[sig.as_slice(), &sig].concat()),
        Reject(Reason::BadSignature),
    );
}
