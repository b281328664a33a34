//! Non-base64url characters, padding and whitespace, in segments whose
//! signature is otherwise valid (so only the encoding is at fault).

use authlayer::Reason;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::json;

use super::builders::{b64, b64_decode, claims_with, rs256_header, rsa_segments, segments, valid};
use super::{Corpus, Keys, Reject};

pub fn cases(corpus: &mut Corpus, keys: &Keys) {
    const C: &str = "non-base64url characters, padding, whitespace";
    const ALPHABET: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let h = b64(rs256_header().as_bytes());
    // A payload whose standard base64 has '+' or '/' and whose last
    // character carries unused bits (length not a multiple of 3).
    let payload = (0..64)
        .map(|n| claims_with("x", json!("~".repeat(n))))
        .find(|p| p.len() % 3 == 1 && STANDARD.encode(p).contains(['+', '/']))
        .expect("some padding works");
    let p = b64(payload.as_bytes());
    let std_p = STANDARD.encode(payload.as_bytes());
    let last = p.chars().last().expect("non-empty");
    let index = ALPHABET.find(last).expect("base64url");
    let nudged = format!("{}{}", &p[..p.len() - 1], &ALPHABET[index + 1..=index + 1]);
    let variants = [
        ("padded header", format!("{h}="), p.clone()),
        ("padded payload", h.clone(), std_p.replace(['+', '/'], "A")),
        (
            "standard alphabet ('+', '/') payload",
            h.clone(),
            std_p.trim_end_matches('=').to_owned(),
        ),
        ("non-canonical trailing bits in payload", h.clone(), nudged),
        (
            "space in payload",
            h.clone(),
            format!("{} {}", &p[..10], &p[10..]),
        ),
        (
            "tab in payload",
            h.clone(),
            format!("{}\t{}", &p[..10], &p[10..]),
        ),
        (
            "space in header",
            format!("{} {}", &h[..8], &h[8..]),
            p.clone(),
        ),
        (
            "'*' in header",
            format!("{}*{}", &h[..8], &h[8..]),
            p.clone(),
        ),
        (
            "'?' in header",
            format!("{}?{}", &h[..8], &h[8..]),
            p.clone(),
        ),
    ];
    for (name, header_segment, payload_segment) in variants {
        corpus.token(
            C,
            name,
            rsa_segments(keys, &header_segment, &payload_segment),
            Reject(Reason::Malformed),
        );
    }
    let token = valid(keys);
    let (_, _, s) = segments(&token);
    let sig = b64_decode(s).expect("signature");
    corpus.token(
        C,
        "padded signature",
        format!("{token}="),
        Reject(Reason::BadSignature),
    );
    corpus.token(
        C,
        "standard alphabet signature",
        resigned_std(&token, &sig),
        Reject(Reason::BadSignature),
    );
    corpus.token(
        C,
        "space in signature",
        format!(
            "{} {}",
            &token[..token.len() - 5],
            &token[token.len() - 5..]
        ),
        Reject(Reason::BadSignature),
    );
    // Not ASCII at all: the header value is not even text.
    let mut value = b"Bearer ".to_vec();
    value.extend_from_slice(token.as_bytes());
    value.extend_from_slice("é".as_bytes());
    corpus.raw(
        C,
        "non-ASCII byte in the header value",
        vec![value],
        Reject(Reason::Malformed),
    );
}

/// `token` with its signature in the standard base64 alphabet (with
/// padding), forcing '+', '/' or '=' into it.
fn resigned_std(token: &str, sig: &[u8]) -> String {
    let (h, p, _) = segments(token);
    let mut s = STANDARD.encode(sig);
    if !s.contains(['+', '/', '=']) {
        s.push('=');
    }
    format!("{h}.{p}.{s}")
}
