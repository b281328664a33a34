//! Token and verifier set-ups: claims, headers, signatures and encodings
//! the corpus is made of, and the verifier of each [`Profile`].

use std::fmt::Write as _;
use std::time::Duration;

use authlayer::test_util::{TestIssuer, kids};
use authlayer::{Algorithm, TypPolicy, Verifier};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value, json};

use super::{AUD, BIG_CAP, HS_KID, ISS, Keys, Profile, SECRET};
pub use crate::common::{b64, b64_decode, now};

/// Claims every profile accepts (RFC 9068 complete).
pub fn claims() -> Map<String, Value> {
    let now = now();
    let Value::Object(map) = json!({
        "iss": ISS, "aud": AUD, "sub": "mallory", "scope": "orders:read",
        "client_id": "cli-1", "iat": now, "exp": now + 300, "jti": "jti-1",
    }) else {
        unreachable!()
    };
    map
}

pub fn claims_with(key: &str, value: Value) -> String {
    let mut map = claims();
    map.insert(key.to_owned(), value);
    Value::Object(map).to_string()
}

pub fn claims_without(key: &str) -> String {
    let mut map = claims();
    map.remove(key);
    Value::Object(map).to_string()
}

/// A JSON number from its text (e.g. a fractional `NumericDate`).
pub fn number(text: &str) -> Value {
    let value: Value = serde_json::from_str(text).expect("a JSON number");
    assert!(value.is_number());
    value
}

pub fn valid_claims() -> String {
    Value::Object(claims()).to_string()
}

pub fn header(alg: &str, kid: Option<&str>) -> Map<String, Value> {
    let mut map = Map::new();
    map.insert("alg".into(), json!(alg));
    if let Some(kid) = kid {
        map.insert("kid".into(), json!(kid));
    }
    map.insert("typ".into(), json!("JWT"));
    map
}

pub fn header_with(alg: &str, kid: Option<&str>, key: &str, value: Value) -> String {
    let mut map = header(alg, kid);
    map.insert(key.to_owned(), value);
    Value::Object(map).to_string()
}

pub fn rs256_header() -> String {
    Value::Object(header("RS256", Some(kids::RSA))).to_string()
}

/// `header` and `payload` JSON texts signed by `kid` of `signer` with `alg`.
pub fn sign(signer: &TestIssuer, header: &str, payload: &str, kid: &str, alg: Algorithm) -> String {
    signer
        .sign_raw(header.as_bytes(), payload.as_bytes(), kid, alg)
        .unwrap_or_else(|| panic!("{kid} cannot sign {alg:?}"))
}

/// Signed with the issuer's rsa-1 key, RS256.
pub fn rsa(keys: &Keys, header: &str, payload: &str) -> String {
    sign(&keys.issuer, header, payload, kids::RSA, Algorithm::RS256)
}

/// The given segments, exactly as written, with a valid rsa-1 signature over them.
pub fn rsa_segments(keys: &Keys, header_segment: &str, payload_segment: &str) -> String {
    let message = format!("{header_segment}.{payload_segment}");
    let signature = keys
        .issuer
        .signature(message.as_bytes(), kids::RSA, Algorithm::RS256)
        .expect("rsa-1 signs");
    format!("{message}.{}", b64(&signature))
}

/// A valid RS256 token of the issuer.
pub fn valid(keys: &Keys) -> String {
    rsa(keys, &rs256_header(), &valid_claims())
}

pub fn segments(token: &str) -> (&str, &str, &str) {
    let mut parts = token.splitn(3, '.');
    let (Some(h), Some(p), Some(s)) = (parts.next(), parts.next(), parts.next()) else {
        panic!("not three segments: {token}")
    };
    (h, p, s)
}

/// `token` with its signature replaced by `signature` (raw bytes).
pub fn resigned(token: &str, signature: &[u8]) -> String {
    let (h, p, _) = segments(token);
    format!("{h}.{p}.{}", b64(signature))
}

pub fn hex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex"))
        .collect()
}

/// A DER TLV.
pub fn der(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(u8::try_from(len).expect("short length"));
    } else {
        let bytes: Vec<u8> = len
            .to_be_bytes()
            .into_iter()
            .skip_while(|b| *b == 0)
            .collect();
        out.push(0x80 | u8::try_from(bytes.len()).expect("length of length"));
        out.extend(bytes);
    }
    out.extend_from_slice(content);
    out
}

/// A DER INTEGER of the unsigned big-endian `value`.
pub fn der_uint(value: &[u8]) -> Vec<u8> {
    let trimmed: Vec<u8> = value.iter().copied().skip_while(|b| *b == 0).collect();
    let mut content = Vec::new();
    if trimmed.first().is_none_or(|b| b & 0x80 != 0) {
        content.push(0);
    }
    content.extend(trimmed);
    der(0x02, &content)
}

pub fn pem(label: &str, der: &[u8]) -> Vec<u8> {
    let body = STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in body.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
        out.push('\n');
    }
    let _ = writeln!(out, "-----END {label}-----");
    out.into_bytes()
}

pub async fn verifier(profile: Profile, issuer: &TestIssuer) -> Verifier {
    let builder = Verifier::builder()
        .issuer(profile.issuer())
        .jwks_json(issuer.jwks_json())
        .audience(AUD);
    let builder = match profile {
        Profile::Default | Profile::SlashIssuer => builder,
        Profile::Strict => builder
            .typ(TypPolicy::AccessToken)
            .leeway(Duration::ZERO)
            .require_claims(["sub", "iat", "jti", "client_id"]),
        Profile::Hmac => builder
            .algorithms(crate::common::EVERY_ALGORITHM)
            .shared_secret_with_kid(HS_KID, SECRET.to_vec()),
        Profile::BigTokens => builder.max_token_bytes(BIG_CAP),
    };
    builder.build().await.expect("verifier builds")
}
