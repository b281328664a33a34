//! CVE-2025-30204: length caps and deep JSON, before the expensive work.

use authlayer::test_util::kids;
use authlayer::{Algorithm, Reason};
use serde_json::json;

use super::builders::{claims_with, header_with, rs256_header, rsa, sign, valid, valid_claims};
use super::{Accept, BIG_CAP, CAP, Corpus, Keys, Profile, Reject};

pub fn cases(corpus: &mut Corpus, keys: &Keys) {
    const C: &str = "token length cap, header cap, deep JSON";
    for (cap, profile) in [(CAP, Profile::Default), (BIG_CAP, Profile::BigTokens)] {
        let (largest, smallest_over) = around_cap(keys, cap);
        corpus.token_on(
            profile,
            C,
            format!("{} bytes, cap {cap}", largest.len()),
            largest.clone(),
            Accept,
        );
        corpus.token_on(
            profile,
            C,
            format!("{} bytes, cap {cap}", smallest_over.len()),
            smallest_over.clone(),
            Reject(Reason::TooLong),
        );
        if profile == Profile::BigTokens {
            // The same token the larger cap accepts is refused by default.
            corpus.token(
                C,
                format!("{} bytes under the default cap", largest.len()),
                largest,
                Reject(Reason::TooLong),
            );
        }
    }
    let big_header = header_with("RS256", Some(kids::RSA), "x", json!("a".repeat(5000)));
    corpus.token(
        C,
        "5 KB header",
        rsa(keys, &big_header, &valid_claims()),
        Reject(Reason::Malformed),
    );
    let deep = format!("{}{}", "[".repeat(1000), "]".repeat(1000));
    let h = format!(r#"{{"alg":"RS256","kid":"rsa-1","x":{deep}}}"#);
    // Unknown header members are ignored (RFC 7515 §4) by skipping, without
    // recursion, inside the 4 KiB header cap: a genuine token with one is
    // fine; a forged one fails on its signature.
    corpus.token(
        C,
        "header nested 1000 deep (unknown member)",
        rsa(keys, &h, &valid_claims()),
        Accept,
    );
    let forged = sign(
        &keys.attacker,
        &h,
        &valid_claims(),
        kids::RSA,
        Algorithm::RS256,
    );
    corpus.token(
        C,
        "header nested 1000 deep, forged",
        forged,
        Reject(Reason::BadSignature),
    );
    let h = format!(r#"{{"alg":"RS256","kid":{deep}}}"#);
    corpus.token(
        C,
        "kid nested 1000 deep",
        rsa(keys, &h, &valid_claims()),
        Reject(Reason::Malformed),
    );
    let deep = format!("{}{}", "[".repeat(2400), "]".repeat(2400));
    let base = valid_claims();
    let payload = format!(r#"{},"x":{deep}}}"#, &base[..base.len() - 1]);
    corpus.token(
        C,
        "payload nested 2400 deep",
        rsa(keys, &rs256_header(), &payload),
        Reject(Reason::Malformed),
    );
    let deep_object = format!("{}1{}", r#"{"a":"#.repeat(600), "}".repeat(600));
    let payload = format!(r#"{},"x":{deep_object}}}"#, &base[..base.len() - 1]);
    corpus.token(
        C,
        "payload objects nested 600 deep",
        rsa(keys, &rs256_header(), &payload),
        Reject(Reason::Malformed),
    );
}

/// The largest valid token of at most `cap` bytes and the smallest over it.
fn around_cap(keys: &Keys, cap: usize) -> (String, String) {
    let h = rs256_header();
    let overhead = valid(keys).len();
    let mut pad = (cap - overhead) * 3 / 4 - 16;
    let mut last_fit = None;
    loop {
        let t = rsa(keys, &h, &claims_with("pad", json!("p".repeat(pad))));
        if t.len() > cap {
            return (last_fit.expect("started below the cap"), t);
        }
        last_fit = Some(t);
        pad += 1;
    }
}
