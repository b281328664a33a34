//! The attack suite: forged, malformed and policy-violating tokens and
//! requests, one group per attack class of the JWT CVE history, each case
//! with its exact expected outcome.
//!
//! The corpus is generated here from `TestIssuer` keys (the issuer's and an
//! attacker's), then every case runs three ways:
//! - `Verifier::verify` (the exact [`Reason`]),
//! - HTTP through the real `VerifyLayer` in the `orders` axum example
//!   (401 `invalid_token` or 400 `invalid_request`, with the exact
//!   `WWW-Authenticate` challenge),
//! - gRPC through the real `VerifyLayer` in the `orders_grpc` tonic example
//!   (`UNAUTHENTICATED` or `INVALID_ARGUMENT`, with the exact message).
//!
//! Servers listen on 127.0.0.1:0. Where the outcome is a policy choice
//! (typ, leeway, fractional dates, issuer spelling, length cap, HMAC) the
//! case runs against the default verifier and a stricter or differently
//! configured one (see [`Profile`]).

use crate::orders;
use crate::orders_grpc;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use authlayer::test_util::{TestIssuer, kids};
use authlayer::{Algorithm, Reason, TypPolicy, Verifier, VerifyLayer};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use orders_grpc::pb::GetOrderRequest;
use orders_grpc::pb::orders_client::OrdersClient;
use orders_grpc::pb::orders_server::OrdersServer;
use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, HeaderValue, WWW_AUTHENTICATE};
use serde_json::{Map, Value, json};
use tonic::Code;
use tonic::metadata::MetadataValue;
use tonic::transport::Channel;

const ISS: &str = "https://id.attack.test";
const AUD: &str = "urn:orders";
/// The HMAC shared secret of [`Profile::Hmac`] (64 bytes: enough for HS512).
const SECRET: &[u8; 64] = b"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
const HS_KID: &str = "hs-1";
/// A second RSA key in the issuer's set: kid-less RS256 tokens are ambiguous.
const RSA_2: &str = "rsa-2";
/// The token cap of [`Profile::BigTokens`].
const BIG_CAP: usize = 12 * 1024;
/// The default token cap.
const CAP: usize = 8 * 1024;
/// The order of the P-256 group.
const P256_N: &str = "ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551";

/// One verifier configuration; each gets its own HTTP and gRPC server.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Profile {
    /// The defaults: asymmetric algorithms only, leeway 60 s, `typ` not
    /// checked, 8 KiB token cap, `exp` required.
    Default,
    /// RFC 9068 strict: `TypPolicy::AccessToken`, leeway 0, and `sub`,
    /// `iat`, `jti`, `client_id` required.
    Strict,
    /// HS256/384/512 allowed, with a 64-byte shared secret (kid `hs-1`)
    /// next to the public keys.
    Hmac,
    /// The issuer configured as `https://id.attack.test/` (trailing slash).
    SlashIssuer,
    /// `max_token_len` raised to 12 KiB.
    BigTokens,
}

const PROFILES: [Profile; 5] = [
    Profile::Default,
    Profile::Strict,
    Profile::Hmac,
    Profile::SlashIssuer,
    Profile::BigTokens,
];

impl Profile {
    fn issuer(self) -> String {
        match self {
            Profile::SlashIssuer => format!("{ISS}/"),
            _ => ISS.to_owned(),
        }
    }
}

enum Credential {
    /// `Authorization: Bearer <token>`; also checked with `Verifier::verify`.
    Bearer(String),
    /// These raw `Authorization` header values, in order (one header each).
    Raw(Vec<Vec<u8>>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expect {
    Accept,
    Reject(Reason),
}
use Expect::{Accept, Reject};

struct Case {
    class: &'static str,
    name: String,
    profile: Profile,
    credential: Credential,
    expect: Expect,
}

/// The keys the corpus is made from.
struct Keys {
    /// The trusted issuer: rsa-1, ec-1, ed-1, rsa-2 published, hs-1 secret.
    issuer: TestIssuer,
    /// Someone else's keys, and a place to put HMAC keys made of public keys.
    attacker: TestIssuer,
    /// The attacker's JWKS URL, served on loopback (must never be fetched).
    attacker_jwks: String,
}

#[derive(Default)]
struct Corpus {
    cases: Vec<Case>,
}

impl Corpus {
    fn token(
        &mut self,
        class: &'static str,
        name: impl Into<String>,
        token: String,
        expect: Expect,
    ) {
        self.token_on(Profile::Default, class, name, token, expect);
    }

    fn token_on(
        &mut self,
        profile: Profile,
        class: &'static str,
        name: impl Into<String>,
        token: String,
        expect: Expect,
    ) {
        self.cases.push(Case {
            class,
            name: name.into(),
            profile,
            credential: Credential::Bearer(token),
            expect,
        });
    }

    fn raw(&mut self, class: &'static str, name: &str, values: Vec<Vec<u8>>, expect: Expect) {
        self.cases.push(Case {
            class,
            name: name.to_owned(),
            profile: Profile::Default,
            credential: Credential::Raw(values),
            expect,
        });
    }
}

// ---------------------------------------------------------------------------
// Token construction
// ---------------------------------------------------------------------------

fn now() -> i64 {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs();
    i64::try_from(secs).expect("time fits i64")
}

fn b64(data: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(data)
}

/// Claims every profile accepts (RFC 9068 complete).
fn claims() -> Map<String, Value> {
    let now = now();
    let Value::Object(map) = json!({
        "iss": ISS, "aud": AUD, "sub": "mallory", "scope": "orders:read",
        "client_id": "cli-1", "iat": now, "exp": now + 300, "jti": "jti-1",
    }) else {
        unreachable!()
    };
    map
}

fn claims_with(key: &str, value: Value) -> String {
    let mut map = claims();
    map.insert(key.to_owned(), value);
    Value::Object(map).to_string()
}

fn claims_without(key: &str) -> String {
    let mut map = claims();
    map.remove(key);
    Value::Object(map).to_string()
}

/// A JSON number from its text (e.g. a fractional `NumericDate`).
fn number(text: &str) -> Value {
    let value: Value = serde_json::from_str(text).expect("a JSON number");
    assert!(value.is_number());
    value
}

fn valid_claims() -> String {
    Value::Object(claims()).to_string()
}

fn header(alg: &str, kid: Option<&str>) -> Map<String, Value> {
    let mut map = Map::new();
    map.insert("alg".into(), json!(alg));
    if let Some(kid) = kid {
        map.insert("kid".into(), json!(kid));
    }
    map.insert("typ".into(), json!("JWT"));
    map
}

fn header_with(alg: &str, kid: Option<&str>, key: &str, value: Value) -> String {
    let mut map = header(alg, kid);
    map.insert(key.to_owned(), value);
    Value::Object(map).to_string()
}

fn rs256_header() -> String {
    Value::Object(header("RS256", Some(kids::RSA))).to_string()
}

/// `header` and `payload` JSON texts signed by `kid` of `signer` with `alg`.
fn sign(signer: &TestIssuer, header: &str, payload: &str, kid: &str, alg: Algorithm) -> String {
    signer
        .sign_raw(header.as_bytes(), payload.as_bytes(), kid, alg)
        .unwrap_or_else(|| panic!("{kid} cannot sign {alg:?}"))
}

/// Signed with the issuer's rsa-1 key, RS256.
fn rsa(keys: &Keys, header: &str, payload: &str) -> String {
    sign(&keys.issuer, header, payload, kids::RSA, Algorithm::RS256)
}

/// The given segments, exactly as written, with a valid rsa-1 signature over them.
fn rsa_segments(keys: &Keys, header_segment: &str, payload_segment: &str) -> String {
    let message = format!("{header_segment}.{payload_segment}");
    let signature = keys
        .issuer
        .signature(message.as_bytes(), kids::RSA, Algorithm::RS256)
        .expect("rsa-1 signs");
    format!("{message}.{}", b64(&signature))
}

/// A valid RS256 token of the issuer.
fn valid(keys: &Keys) -> String {
    rsa(keys, &rs256_header(), &valid_claims())
}

fn segments(token: &str) -> (&str, &str, &str) {
    let mut parts = token.splitn(3, '.');
    let (Some(h), Some(p), Some(s)) = (parts.next(), parts.next(), parts.next()) else {
        panic!("not three segments: {token}")
    };
    (h, p, s)
}

/// `token` with its signature replaced by `signature` (raw bytes).
fn resigned(token: &str, signature: &[u8]) -> String {
    let (h, p, _) = segments(token);
    format!("{h}.{p}.{}", b64(signature))
}

fn hex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex"))
        .collect()
}

/// A DER TLV.
fn der(tag: u8, content: &[u8]) -> Vec<u8> {
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
fn der_uint(value: &[u8]) -> Vec<u8> {
    let trimmed: Vec<u8> = value.iter().copied().skip_while(|b| *b == 0).collect();
    let mut content = Vec::new();
    if trimmed.first().is_none_or(|b| b & 0x80 != 0) {
        content.push(0);
    }
    content.extend(trimmed);
    der(0x02, &content)
}

fn pem(label: &str, der: &[u8]) -> Vec<u8> {
    let body = STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in body.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
        out.push('\n');
    }
    let _ = writeln!(out, "-----END {label}-----");
    out.into_bytes()
}

// ---------------------------------------------------------------------------
// The corpus, one function per attack class
// ---------------------------------------------------------------------------

/// Controls: the corpus proves nothing if valid tokens fail too.
fn controls(corpus: &mut Corpus, keys: &Keys) {
    const C: &str = "control: valid tokens are accepted";
    corpus.token(C, "RS256 rsa-1", valid(keys), Accept);
    let payload = valid_claims();
    for (kid, alg) in [
        (kids::RSA, Algorithm::PS256),
        (kids::RSA, Algorithm::RS512),
        (kids::EC, Algorithm::ES256),
        (kids::ED, Algorithm::EdDSA),
        (RSA_2, Algorithm::RS256),
    ] {
        let name = format!("{alg:?}");
        let h = Value::Object(header(&name, Some(kid))).to_string();
        corpus.token(
            C,
            format!("{name} {kid}"),
            sign(&keys.issuer, &h, &payload, kid, alg),
            Accept,
        );
    }
    // Without kid, accepted only when exactly one key fits the algorithm:
    // one EC key, but two RSA keys (never tried one after the other).
    let h = Value::Object(header("ES256", None)).to_string();
    let es = sign(&keys.issuer, &h, &payload, kids::EC, Algorithm::ES256);
    corpus.token(C, "kid-less ES256 (one P-256 key)", es, Accept);
    let h = Value::Object(header("RS256", None)).to_string();
    let rs = sign(&keys.issuer, &h, &payload, kids::RSA, Algorithm::RS256);
    corpus.token(
        "kid-less token with several candidate keys",
        "kid-less RS256 (two RSA keys)",
        rs,
        Reject(Reason::UnknownKey),
    );
    let aud = claims_with("aud", json!(["urn:other", AUD]));
    corpus.token(
        C,
        "aud array containing the audience",
        rsa(keys, &rs256_header(), &aud),
        Accept,
    );
    // HMAC with the configured shared secret, every HS algorithm.
    for alg in [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512] {
        let name = format!("{alg:?}");
        let h = Value::Object(header(&name, Some(HS_KID))).to_string();
        let t = sign(&keys.issuer, &h, &payload, HS_KID, alg);
        corpus.token_on(
            Profile::Hmac,
            C,
            format!("{name} shared secret"),
            t.clone(),
            Accept,
        );
        // Without the secret configured, HMAC is simply not allowed.
        corpus.token(
            "HMAC without a configured secret",
            format!("{name} under defaults"),
            t,
            Reject(Reason::AlgorithmNotAllowed),
        );
    }
}

/// CVE-2015-9235, CVE-2018-1000531, CVE-2022-23540: `alg: none`.
fn alg_none(corpus: &mut Corpus, keys: &Keys) {
    const C: &str = "alg none and its spellings";
    let real = valid(keys);
    let (_, payload, signature) = segments(&real);
    for alg in ["none", "None", "NONE", "nOnE"] {
        let h = b64(json!({"alg": alg, "typ": "JWT"}).to_string().as_bytes());
        // The unsecured form: empty signature segment.
        corpus.token(
            C,
            format!("{alg}, empty signature"),
            format!("{h}.{payload}."),
            Reject(Reason::Malformed),
        );
        // With a signature anyway (the real one, or garbage).
        let t = format!("{h}.{payload}.{signature}");
        corpus.token(
            C,
            format!("{alg}, real signature"),
            t.clone(),
            Reject(Reason::AlgorithmNotAllowed),
        );
        corpus.token_on(
            Profile::Hmac,
            C,
            format!("{alg}, HMAC allowed"),
            t,
            Reject(Reason::AlgorithmNotAllowed),
        );
        let h = b64(json!({"alg": alg, "kid": kids::RSA}).to_string().as_bytes());
        corpus.token(
            C,
            format!("{alg} with kid, junk signature"),
            format!("{h}.{payload}.AAAA"),
            Reject(Reason::AlgorithmNotAllowed),
        );
    }
}

/// Missing, empty, mis-cased or unknown `alg` (validly signed by rsa-1).
fn bad_alg(corpus: &mut Corpus, keys: &Keys) {
    const C: &str = "missing / empty / lowercase / unknown alg";
    let payload = valid_claims();
    let malformed = [
        ("missing alg", json!({"kid": kids::RSA, "typ": "JWT"})),
        ("alg null", json!({"alg": null, "kid": kids::RSA})),
        ("alg number", json!({"alg": 256, "kid": kids::RSA})),
        ("alg array", json!({"alg": ["RS256"], "kid": kids::RSA})),
        ("header is an array", json!(["RS256"])),
        ("header is a string", json!("RS256")),
        (
            "header is an array of all fields",
            json!(["RS256", "rsa-1", "JWT"]),
        ),
        ("header is null", Value::Null),
    ];
    for (name, h) in malformed {
        corpus.token(
            C,
            name,
            rsa(keys, &h.to_string(), &payload),
            Reject(Reason::Malformed),
        );
    }
    // The same for the payload: a claims set is a JSON object.
    for (name, p) in [
        (
            "payload is an array",
            json!([ISS, AUD, "mallory", now() + 300]),
        ),
        ("payload is a string", json!("claims")),
        ("payload is null", Value::Null),
        ("payload is a number", json!(1)),
    ] {
        corpus.token(
            C,
            name,
            rsa(keys, &rs256_header(), &p.to_string()),
            Reject(Reason::InvalidClaim),
        );
    }
    for alg in [
        "",
        "rs256",
        "Rs256",
        "RS256 ",
        " RS256",
        "RS256\u{0}",
        "RSA256",
        "ES256K",
        "ES512",
        "PS256K",
        "HS256",
    ] {
        let h = json!({"alg": alg, "kid": kids::RSA}).to_string();
        corpus.token(
            C,
            format!("alg {alg:?}"),
            rsa(keys, &h, &payload),
            Reject(Reason::AlgorithmNotAllowed),
        );
    }
    // The allow-list can be narrowed: the key's family alone is not enough.
    let h = json!({"alg": "ES384", "kid": kids::EC}).to_string();
    let t = sign(&keys.issuer, &h, &payload, kids::EC, Algorithm::ES256);
    corpus.token(
        C,
        "ES384 header on the P-256 key",
        t,
        Reject(Reason::KeyAlgorithmMismatch),
    );
}

/// CVE-2016-10555, CVE-2022-29217: HS256/384/512 "signed" with the public
/// key in every encoding an attacker can find.
fn hmac_with_public_key(corpus: &mut Corpus, keys: &Keys) {
    const C: &str = "HMAC signed with the public key";
    let jwk = keys.issuer.jwk(kids::RSA).expect("rsa-1 JWK");
    let n = URL_SAFE_NO_PAD
        .decode(jwk["n"].as_str().expect("n"))
        .expect("n is base64url");
    let e = URL_SAFE_NO_PAD
        .decode(jwk["e"].as_str().expect("e"))
        .expect("e is base64url");
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
            corpus.token_on(
                Profile::Hmac,
                C,
                format!("{label}, no kid, HMAC allowed"),
                forge(None),
                Reject(Reason::BadSignature),
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

/// CVE-2018-0114: a key embedded in the header (`jwk`), with the attacker's
/// and with the real kid.
fn embedded_jwk(corpus: &mut Corpus, keys: &Keys) {
    const C: &str = "embedded jwk header";
    let payload = valid_claims();
    for (alg, kid) in [
        (Algorithm::RS256, kids::RSA),
        (Algorithm::ES256, kids::EC),
        (Algorithm::EdDSA, kids::ED),
    ] {
        let name = format!("{alg:?}");
        let mut jwk = keys.attacker.jwk(kid).expect("attacker JWK");
        for (header_kid, expect) in [
            (Some("attacker-1"), Reason::UnknownKey),
            (Some(kid), Reason::BadSignature),
            (None, Reason::BadSignature),
        ] {
            if let Some(hk) = header_kid {
                jwk["kid"] = json!(hk);
            }
            let h = header_with(&name, header_kid, "jwk", jwk.clone());
            let t = sign(&keys.attacker, &h, &payload, kid, alg);
            let label = format!("{name}, embedded jwk, kid {header_kid:?}");
            // Kid-less RS256 is ambiguous here (two RSA keys).
            let expect = if header_kid.is_none() && alg == Algorithm::RS256 {
                Reason::UnknownKey
            } else {
                expect
            };
            corpus.token(C, label, t, Reject(expect));
        }
    }
}

/// `jku`, `x5u`, `x5c` headers pointing at the attacker's keys. The
/// attacker's JWKS server counts requests: it must see none.
fn key_url_headers(corpus: &mut Corpus, keys: &Keys) {
    const C: &str = "jku / x5u / x5c headers";
    let payload = valid_claims();
    let attacker_spki = keys
        .attacker
        .public_key_der(kids::RSA)
        .expect("attacker SPKI");
    let headers = [
        ("jku", json!(keys.attacker_jwks)),
        ("x5u", json!(keys.attacker_jwks)),
        ("x5c", json!([STANDARD.encode(&attacker_spki)])),
        ("jwk_set_url", json!(keys.attacker_jwks)),
    ];
    for (param, value) in headers {
        for (kid, expect) in [
            ("attacker-1", Reason::UnknownKey),
            (kids::RSA, Reason::BadSignature),
        ] {
            let h = header_with("RS256", Some(kid), param, value.clone());
            let t = sign(&keys.attacker, &h, &payload, kids::RSA, Algorithm::RS256);
            corpus.token(C, format!("{param}, kid {kid}"), t, Reject(expect));
        }
    }
    let h = header_with("RS256", Some(kids::RSA), "jku", json!(keys.attacker_jwks));
    corpus.token(
        C,
        "jku on a genuine token is ignored",
        rsa(keys, &h, &payload),
        Accept,
    );
}

/// `kid` used as a path, query, or with near-miss spellings: an exact map
/// lookup, nothing else.
fn kid_injection(corpus: &mut Corpus, keys: &Keys) {
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

/// A real kid with someone else's signature.
fn foreign_signature(corpus: &mut Corpus, keys: &Keys) {
    const C: &str = "real kid, foreign signature";
    let payload = valid_claims();
    for (kid, alg) in [
        (kids::RSA, Algorithm::RS256),
        (kids::RSA, Algorithm::PS256),
        (kids::RSA, Algorithm::RS512),
        (kids::EC, Algorithm::ES256),
        (kids::ED, Algorithm::EdDSA),
    ] {
        let name = format!("{alg:?}");
        let h = Value::Object(header(&name, Some(kid))).to_string();
        corpus.token(
            C,
            format!("{name} kid {kid}"),
            sign(&keys.attacker, &h, &payload, kid, alg),
            Reject(Reason::BadSignature),
        );
    }
    // The issuer's own key, but the kid of another of its keys.
    let h = Value::Object(header("RS256", Some(RSA_2))).to_string();
    corpus.token(
        C,
        "rsa-1 signature under kid rsa-2",
        rsa(keys, &h, &payload),
        Reject(Reason::BadSignature),
    );
}

/// CVE-2022-21449 ("psychic signatures") and malformed ECDSA signatures.
fn ecdsa_signatures(corpus: &mut Corpus, keys: &Keys) {
    const C: &str = "ES256 special signatures";
    let h = Value::Object(header("ES256", Some(kids::EC))).to_string();
    let token = sign(
        &keys.issuer,
        &h,
        &valid_claims(),
        kids::EC,
        Algorithm::ES256,
    );
    let (hs, ps, ss) = segments(&token);
    let sig = URL_SAFE_NO_PAD.decode(ss).expect("signature");
    assert_eq!(sig.len(), 64);
    let (r, s) = sig.split_at(32);
    let order = hex(P256_N);
    let one = {
        let mut one = vec![0u8; 32];
        one[31] = 1;
        one
    };
    let zero = vec![0u8; 32];
    let mut high_r = r.to_vec();
    high_r[0] ^= 0x80;
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("r = s = 0", [zero.clone(), zero.clone()].concat()),
        ("r = s = n", [order.clone(), order.clone()].concat()),
        ("r = 0, s = real", [zero.as_slice(), s].concat()),
        ("r = real, s = 0", [r, zero.as_slice()].concat()),
        ("r = n, s = real", [order.as_slice(), s].concat()),
        ("r = 1, s = 1", [one.clone(), one].concat()),
        ("r = s = 0xff…", vec![0xff; 64]),
        ("r altered", [high_r.as_slice(), s].concat()),
        (
            "DER-encoded real signature",
            der(0x30, &[der_uint(r), der_uint(s)].concat()),
        ),
        ("63 bytes", sig[..63].to_vec()),
        ("65 bytes (zero appended)", [sig.as_slice(), &[0]].concat()),
        ("65 bytes (zero prepended)", [&[0], sig.as_slice()].concat()),
        ("32 bytes (r only)", r.to_vec()),
        ("1 byte", vec![0]),
        (
            "128 bytes (doubled)",
            [sig.as_slice(), sig.as_slice()].concat(),
        ),
    ];
    for (name, signature) in cases {
        corpus.token(
            C,
            name,
            format!("{hs}.{ps}.{}", b64(&signature)),
            Reject(Reason::BadSignature),
        );
    }
}

/// CVE-2020-28042 and friends: empty, truncated, bit-flipped, spliced signatures.
fn mangled_signatures(corpus: &mut Corpus, keys: &Keys) {
    const C: &str = "empty / truncated / bit-flipped / spliced signatures";
    let token = valid(keys);
    let (h, p, s) = segments(&token);
    let sig = URL_SAFE_NO_PAD.decode(s).expect("signature");
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

/// Tampered header or payload under the original signature.
fn tampering(corpus: &mut Corpus, keys: &Keys) {
    const C: &str = "tampered header or payload";
    let token = valid(keys);
    let (h, p, s) = segments(&token);
    let header_tampered =
        b64(header_with("RS256", Some(kids::RSA), "typ", json!("at+jwt")).as_bytes());
    corpus.token(
        C,
        "header changed",
        format!("{header_tampered}.{p}.{s}"),
        Reject(Reason::BadSignature),
    );
    for (name, key, value) in [
        (
            "scope escalated",
            "scope",
            json!("orders:read orders:write admin"),
        ),
        ("sub changed", "sub", json!("admin")),
        ("exp extended", "exp", json!(now() + 86_400 * 365)),
        ("aud changed", "aud", json!("urn:admin")),
    ] {
        let payload = b64(claims_with(key, value).as_bytes());
        corpus.token(
            C,
            name,
            format!("{h}.{payload}.{s}"),
            Reject(Reason::BadSignature),
        );
    }
    // Same JSON, other bytes: the signature covers the encoding.
    let spaced = b64(serde_json::to_string_pretty(&Value::Object(claims()))
        .expect("JSON")
        .as_bytes());
    corpus.token(
        C,
        "payload re-serialized",
        format!("{h}.{spaced}.{s}"),
        Reject(Reason::BadSignature),
    );
    // Header and payload of two different genuine tokens.
    let other = rsa(
        keys,
        &rs256_header(),
        &claims_with("scope", json!("orders:write")),
    );
    let (_, other_p, _) = segments(&other);
    corpus.token(
        C,
        "payload of another genuine token",
        format!("{h}.{other_p}.{s}"),
        Reject(Reason::BadSignature),
    );
}

/// 2, 4 and 5 segments, stray dots, empty tokens.
fn segment_count(corpus: &mut Corpus, keys: &Keys) {
    const C: &str = "wrong number of segments";
    let token = valid(keys);
    let (h, p, s) = segments(&token);
    for (name, t) in [
        ("2 segments", format!("{h}.{p}")),
        ("4 segments", format!("{token}.{s}")),
        ("5 segments (JWE shape)", format!("{h}.{p}.{s}.{s}.{s}")),
        ("trailing dot", format!("{token}.")),
        ("two trailing dots", format!("{token}..")),
        ("leading dot", format!(".{token}")),
        ("empty header", format!(".{p}.{s}")),
        ("empty payload", format!("{h}..{s}")),
        ("double dot inside", format!("{h}..{p}.{s}")),
        ("only dots", "..".to_owned()),
        ("one dot", ".".to_owned()),
        ("one segment", h.to_owned()),
        ("garbage", "not-a-token".to_owned()),
    ] {
        corpus.token(C, name, t, Reject(Reason::Malformed));
    }
}

/// Non-base64url characters, padding and whitespace, in segments whose
/// signature is otherwise valid (so only the encoding is at fault).
fn encoding(corpus: &mut Corpus, keys: &Keys) {
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
    let sig = URL_SAFE_NO_PAD.decode(s).expect("signature");
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

/// RFC 8725 §3.7: not UTF-8 inside the JSON, validly signed: in an ignored
/// header member, in a member name, in a claim.
fn utf8(corpus: &mut Corpus, keys: &Keys) {
    const C: &str = "invalid UTF-8 inside the JSON";
    let claims_text = valid_claims();
    for (name, header_json, payload_json, reason) in [
        (
            "invalid UTF-8 in an unknown header member",
            b"{\"alg\":\"RS256\",\"kid\":\"rsa-1\",\"x\":\"\x8a\x90\"}".to_vec(),
            claims_text.as_bytes().to_vec(),
            Reason::Malformed,
        ),
        (
            "invalid UTF-8 in a header member name",
            b"{\"alg\":\"RS256\",\"kid\":\"rsa-1\",\"\xff\":1}".to_vec(),
            claims_text.as_bytes().to_vec(),
            Reason::Malformed,
        ),
        (
            "invalid UTF-8 in an unknown claim",
            rs256_header().into_bytes(),
            [
                &claims_text.as_bytes()[..claims_text.len() - 1],
                b",\"x\":\"\xc3\x28\"}",
            ]
            .concat(),
            Reason::Malformed,
        ),
        (
            "invalid UTF-8 in sub",
            rs256_header().into_bytes(),
            [
                &claims_text.as_bytes()[..claims_text.len() - 1],
                b",\"sub\":\"\xed\xa0\x80\"}",
            ]
            .concat(),
            Reason::InvalidClaim,
        ),
    ] {
        let token = keys
            .issuer
            .sign_raw(&header_json, &payload_json, kids::RSA, Algorithm::RS256)
            .expect("rsa-1 signs");
        corpus.token(C, name, token, Reject(reason));
    }
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

/// `exp`, `nbf`, `iat` of the wrong type, null, fractional, missing; leeway.
fn dates(corpus: &mut Corpus, keys: &Keys) {
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

/// CVE-2024-53861: `iss` compared exactly.
fn issuer_claim(corpus: &mut Corpus, keys: &Keys) {
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

/// CVE-2020-26160: `aud` as string or array, exact entries.
fn audience(corpus: &mut Corpus, keys: &Keys) {
    const C: &str = "aud missing, empty, look-alike";
    let h = rs256_header();
    corpus.token(
        C,
        "aud missing",
        rsa(keys, &h, &claims_without("aud")),
        Reject(Reason::WrongAudience),
    );
    for (name, value) in [
        ("empty array", json!([])),
        ("empty string", json!("")),
        ("prefix look-alike", json!("urn:orders-evil")),
        ("truncated", json!("urn:order")),
        ("upper case", json!("URN:ORDERS")),
        ("trailing space", json!("urn:orders ")),
        ("space-joined list", json!("urn:orders urn:other")),
        ("comma-joined list", json!("urn:orders,urn:other")),
        ("array of others", json!(["urn:other", "urn:orders2"])),
    ] {
        corpus.token(
            C,
            format!("aud {name}"),
            rsa(keys, &h, &claims_with("aud", value)),
            Reject(Reason::WrongAudience),
        );
    }
    for (name, value) in [
        ("null", Value::Null),
        ("number", json!(1)),
        ("nested array", json!([[AUD]])),
        ("array with a number", json!([AUD, 1])),
        ("object", json!({"aud": AUD})),
    ] {
        corpus.token(
            C,
            format!("aud {name}"),
            rsa(keys, &h, &claims_with("aud", value)),
            Reject(Reason::InvalidClaim),
        );
    }
}

/// CVE-2022-39227-style confusion: duplicate members, in header and payload.
fn duplicate_keys(corpus: &mut Corpus, keys: &Keys) {
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

/// CVE-2025-59420: `crit` and `b64`; JWE parameters.
fn crit_and_b64(corpus: &mut Corpus, keys: &Keys) {
    const C: &str = "crit / b64 / JWE header parameters";
    let payload = valid_claims();
    for (name, key, value) in [
        ("unknown crit", "crit", json!(["urn:x"])),
        ("crit naming exp", "crit", json!(["exp"])),
        ("empty crit", "crit", json!([])),
        ("crit not an array", "crit", json!("b64")),
        ("b64 false", "b64", json!(false)),
        ("b64 true", "b64", json!(true)),
        ("enc (JWE)", "enc", json!("A256GCM")),
        ("zip", "zip", json!("DEF")),
        // Present, even as null: other libraries refuse these.
        ("crit null", "crit", Value::Null),
        ("b64 null", "b64", Value::Null),
        ("enc null", "enc", Value::Null),
        ("zip null", "zip", Value::Null),
    ] {
        let h = header_with("RS256", Some(kids::RSA), key, value);
        corpus.token(
            C,
            name,
            rsa(keys, &h, &payload),
            Reject(Reason::UnsupportedHeader),
        );
    }
    let h = json!({"alg": "RS256", "kid": kids::RSA, "b64": false, "crit": ["b64"]}).to_string();
    corpus.token(
        C,
        "b64 false with crit b64",
        rsa(keys, &h, &payload),
        Reject(Reason::UnsupportedHeader),
    );
}

/// CVE-2024-33664: nested tokens and JWE.
fn nested(corpus: &mut Corpus, keys: &Keys) {
    const C: &str = "cty JWT / nested tokens";
    let inner = valid(keys);
    for cty in ["JWT", "jwt", "Jwt"] {
        let h = header_with("RS256", Some(kids::RSA), "cty", json!(cty));
        corpus.token(
            C,
            format!("cty {cty}"),
            rsa(keys, &h, &valid_claims()),
            Reject(Reason::UnsupportedHeader),
        );
    }
    // A nested token without cty: the payload is not a claims object.
    corpus.token(
        C,
        "token as the payload",
        rsa_segments(
            keys,
            &b64(rs256_header().as_bytes()),
            &b64(inner.as_bytes()),
        ),
        Reject(Reason::Malformed),
    );
    let as_string = Value::String(inner.clone()).to_string();
    corpus.token(
        C,
        "token as a JSON string payload",
        rsa(keys, &rs256_header(), &as_string),
        Reject(Reason::InvalidClaim),
    );
    let h = header_with("RS256", Some(kids::RSA), "cty", json!("application/jwt"));
    corpus.token(
        C,
        "cty application/jwt, token payload",
        rsa_segments(keys, &b64(h.as_bytes()), &b64(inner.as_bytes())),
        Reject(Reason::Malformed),
    );
    let jwe_header = b64(
        json!({"alg": "RSA-OAEP", "enc": "A256GCM", "kid": kids::RSA})
            .to_string()
            .as_bytes(),
    );
    corpus.token(
        C,
        "JWE compact (5 segments)",
        format!("{jwe_header}.AAAA.AAAA.AAAA.AAAA"),
        Reject(Reason::Malformed),
    );
    corpus.token(
        C,
        "JWE header, 3 segments",
        format!("{jwe_header}.AAAA.AAAA"),
        Reject(Reason::AlgorithmNotAllowed),
    );
}

/// CVE-2025-30204: length caps and deep JSON, before the expensive work.
fn sizes(corpus: &mut Corpus, keys: &Keys) {
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

/// RFC 6750 §2: one credential; and the typ policy.
fn request_shape(corpus: &mut Corpus, keys: &Keys) {
    const C: &str = "malformed requests (400 invalid_request)";
    const P: &str = "credential policy";
    let token = valid(keys);
    let bearer = format!("Bearer {token}").into_bytes();
    corpus.raw(
        C,
        "two Authorization: Bearer headers",
        vec![bearer.clone(), bearer.clone()],
        Reject(Reason::MultipleCredentials),
    );
    let other = format!(
        "Bearer {}",
        rsa(keys, &rs256_header(), &claims_with("sub", json!("alice")))
    )
    .into_bytes();
    corpus.raw(
        C,
        "two different bearer tokens",
        vec![bearer.clone(), other],
        Reject(Reason::MultipleCredentials),
    );
    corpus.raw(
        C,
        "empty bearer",
        vec![b"Bearer ".to_vec()],
        Reject(Reason::EmptyBearer),
    );
    corpus.raw(
        C,
        "scheme only",
        vec![b"Bearer".to_vec()],
        Reject(Reason::EmptyBearer),
    );
    corpus.raw(
        C,
        "empty bearer next to a token",
        vec![bearer.clone(), b"Bearer ".to_vec()],
        Reject(Reason::EmptyBearer),
    );
    // Policy: the scheme is case-insensitive (RFC 7235 §2.1); other schemes
    // are not ours to judge and are ignored.
    corpus.raw(
        P,
        "scheme in lower case",
        vec![format!("bearer {token}").into_bytes()],
        Accept,
    );
    corpus.raw(
        P,
        "scheme in upper case",
        vec![format!("BEARER {token}").into_bytes()],
        Accept,
    );
    corpus.raw(
        P,
        "Basic next to Bearer",
        vec![b"Basic YTpi".to_vec(), bearer],
        Accept,
    );
    corpus.raw(
        P,
        "Basic only",
        vec![b"Basic YTpi".to_vec()],
        Reject(Reason::MissingToken),
    );
    corpus.raw(
        P,
        "DPoP scheme only",
        vec![format!("DPoP {token}").into_bytes()],
        Reject(Reason::MissingToken),
    );
}

/// RFC 9068 `typ`: a policy choice. Off by default (providers send `JWT`);
/// `TypPolicy::AccessToken` in the strict profile.
fn typ_policy(corpus: &mut Corpus, keys: &Keys) {
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

// ---------------------------------------------------------------------------
// Servers and the runner
// ---------------------------------------------------------------------------

async fn verifier(profile: Profile, issuer: &TestIssuer) -> Verifier {
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
            .algorithms([
                Algorithm::RS256,
                Algorithm::RS384,
                Algorithm::RS512,
                Algorithm::PS256,
                Algorithm::PS384,
                Algorithm::PS512,
                Algorithm::ES256,
                Algorithm::ES384,
                Algorithm::EdDSA,
                Algorithm::HS256,
                Algorithm::HS384,
                Algorithm::HS512,
            ])
            .shared_secret(Some(HS_KID), SECRET.to_vec()),
        Profile::BigTokens => builder.max_token_len(BIG_CAP),
    };
    builder.build().await.expect("verifier builds")
}

async fn serve_http(verifier: Verifier) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, orders::app(verifier)).await });
    addr
}

async fn serve_grpc(verifier: Verifier) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let incoming = tonic::transport::server::TcpIncoming::from(listener);
    tokio::spawn(
        tonic::transport::Server::builder()
            .layer(VerifyLayer::new(verifier))
            .add_service(OrdersServer::new(orders_grpc::OrdersService))
            .serve_with_incoming(incoming),
    );
    addr
}

struct Target {
    verifier: Verifier,
    http: String,
    grpc: OrdersClient<Channel>,
    realm: String,
}

async fn target(profile: Profile, issuer: &TestIssuer) -> Target {
    let verifier = verifier(profile, issuer).await;
    let http = format!("http://{}", serve_http(verifier.clone()).await);
    let grpc_addr = serve_grpc(verifier.clone()).await;
    let channel = Channel::from_shared(format!("http://{grpc_addr}"))
        .expect("URI")
        .connect()
        .await
        .expect("gRPC connects");
    Target {
        verifier,
        http,
        grpc: OrdersClient::new(channel),
        realm: profile.issuer(),
    }
}

fn header_values(credential: &Credential) -> Vec<Vec<u8>> {
    match credential {
        Credential::Bearer(token) => vec![format!("Bearer {token}").into_bytes()],
        Credential::Raw(values) => values.clone(),
    }
}

fn is_invalid_request(reason: Reason) -> bool {
    matches!(reason, Reason::MultipleCredentials | Reason::EmptyBearer)
}

fn check_verify(case: &Case, outcome: Result<(), Reason>) -> Result<(), String> {
    match (case.expect, outcome) {
        (Accept, Ok(())) => Ok(()),
        (Reject(want), Err(got)) if want == got => Ok(()),
        (want, got) => Err(format!("verify(): want {want:?}, got {got:?}")),
    }
}

async fn check_http(http: &reqwest::Client, target: &Target, case: &Case) -> Result<(), String> {
    let mut request = http.get(format!("{}/orders/7", target.http));
    for value in header_values(&case.credential) {
        let value = HeaderValue::from_bytes(&value).map_err(|e| format!("header value: {e}"))?;
        request = request.header(AUTHORIZATION, value);
    }
    let response = request.send().await.map_err(|e| format!("HTTP: {e}"))?;
    let status = response.status();
    let challenge = response
        .headers()
        .get(WWW_AUTHENTICATE)
        .map(|v| v.to_str().unwrap_or("<not ASCII>").to_owned());
    match case.expect {
        Accept if status == StatusCode::OK => Ok(()),
        Accept => Err(format!("HTTP: want 200, got {status} {challenge:?}")),
        Reject(reason) => {
            let realm = &target.realm;
            let (want_status, want_challenge) = if reason == Reason::MissingToken {
                (
                    StatusCode::UNAUTHORIZED,
                    format!(r#"Bearer realm="{realm}""#),
                )
            } else {
                let (status, code) = if is_invalid_request(reason) {
                    (StatusCode::BAD_REQUEST, "invalid_request")
                } else {
                    (StatusCode::UNAUTHORIZED, "invalid_token")
                };
                let description = reason.description();
                (
                    status,
                    format!(
                        r#"Bearer realm="{realm}", error="{code}", error_description="{description}""#
                    ),
                )
            };
            if status == want_status && challenge.as_deref() == Some(want_challenge.as_str()) {
                Ok(())
            } else {
                Err(format!(
                    "HTTP: want {want_status} {want_challenge:?}, got {status} {challenge:?}"
                ))
            }
        }
    }
}

async fn check_grpc(target: &Target, case: &Case) -> Result<(), String> {
    let mut request = tonic::Request::new(GetOrderRequest { id: 7 });
    for value in header_values(&case.credential) {
        let value =
            MetadataValue::try_from(value.as_slice()).map_err(|e| format!("metadata: {e}"))?;
        request.metadata_mut().append("authorization", value);
    }
    let result = target.grpc.clone().get_order(request).await;
    match (case.expect, result) {
        (Accept, Ok(response)) if response.get_ref().id == 7 => Ok(()),
        (Accept, other) => Err(format!("gRPC: want OK, got {other:?}")),
        (Reject(reason), Err(status)) => {
            let want_code = if is_invalid_request(reason) {
                Code::InvalidArgument
            } else {
                Code::Unauthenticated
            };
            if status.code() == want_code && status.message() == reason.description() {
                Ok(())
            } else {
                Err(format!(
                    "gRPC: want {want_code:?} {:?}, got {:?} {:?}",
                    reason.description(),
                    status.code(),
                    status.message()
                ))
            }
        }
        (Reject(reason), Ok(_)) => Err(format!("gRPC: want {reason:?}, got OK")),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_attack_is_refused_over_http_and_grpc() {
    let issuer = TestIssuer::new(ISS);
    issuer.add_key(RSA_2, Algorithm::RS256);
    issuer.add_secret(HS_KID, Algorithm::HS256, SECRET);
    let attacker = TestIssuer::new(ISS);
    let attacker_server = attacker.serve().await;
    let keys = Keys {
        issuer: issuer.clone(),
        attacker,
        attacker_jwks: attacker_server.jwks_url(),
    };

    let mut corpus = Corpus::default();
    let classes: [fn(&mut Corpus, &Keys); 21] = [
        controls,
        alg_none,
        bad_alg,
        hmac_with_public_key,
        embedded_jwk,
        key_url_headers,
        kid_injection,
        foreign_signature,
        ecdsa_signatures,
        mangled_signatures,
        tampering,
        segment_count,
        encoding,
        utf8,
        dates,
        issuer_claim,
        audience,
        duplicate_keys,
        crit_and_b64,
        nested,
        sizes,
    ];
    for class in classes {
        class(&mut corpus, &keys);
    }
    request_shape(&mut corpus, &keys);
    typ_policy(&mut corpus, &keys);

    let mut targets = BTreeMap::new();
    for profile in PROFILES {
        targets.insert(profile, target(profile, &issuer).await);
    }
    let http = reqwest::Client::new();
    let mut failures = Vec::new();
    let mut per_class: BTreeMap<&str, usize> = BTreeMap::new();
    let mut names = BTreeSet::new();
    for case in &corpus.cases {
        assert!(
            names.insert((case.profile, case.class, case.name.as_str())),
            "duplicate case name: {}",
            case.name
        );
        *per_class.entry(case.class).or_default() += 1;
        let target = &targets[&case.profile];
        let mut problems = Vec::new();
        if let Credential::Bearer(token) = &case.credential {
            let outcome = target
                .verifier
                .verify::<()>(token)
                .await
                .map(|_| ())
                .map_err(|e| e.reason());
            problems.extend(check_verify(case, outcome).err());
        }
        problems.extend(check_http(&http, target, case).await.err());
        problems.extend(check_grpc(target, case).await.err());
        if !problems.is_empty() {
            failures.push(format!(
                "[{:?}] {} / {}: {}",
                case.profile,
                case.class,
                case.name,
                problems.join("; ")
            ));
        }
    }

    let rejections = corpus.cases.iter().filter(|c| c.expect != Accept).count();
    println!(
        "attack corpus: {} cases ({} rejections, {} acceptance controls) in {} classes, each run through verify(), HTTP and gRPC",
        corpus.cases.len(),
        rejections,
        corpus.cases.len() - rejections,
        per_class.len()
    );
    for (class, count) in &per_class {
        println!("  {count:4}  {class}");
    }
    assert!(
        failures.is_empty(),
        "{} case(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    // No key was ever fetched from a URL named in a token.
    assert_eq!(attacker_server.requests(), 0, "a jku/x5u URL was fetched");
    // Every profile saw traffic, and only the controls got through.
    let accepted: u64 = targets
        .values()
        .map(|t| t.verifier.metrics().accepted)
        .sum();
    assert!(accepted > 0);
}

/// The random-`kid` `DoS`: a flood of tokens naming unknown keys costs at most
/// one JWKS fetch per cooldown window, and every one is refused promptly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_kid_flood_costs_at_most_one_fetch() {
    let issuer = TestIssuer::new(ISS);
    let server = issuer.serve().await;
    let verifier = Verifier::builder()
        .issuer(server.issuer_url())
        .jwks_url(server.jwks_url())
        .audience(AUD)
        .fetch_timeout(Duration::from_secs(2))
        .build()
        .await
        .expect("verifier");
    let fetches_at_start = server.requests();
    assert_eq!(fetches_at_start, 1, "one fetch at build time");
    let addr = serve_http(verifier.clone()).await;
    let http = reqwest::Client::new();
    let payload = claims_with("iss", json!(server.issuer_url()));
    let mut flood = tokio::task::JoinSet::new();
    for i in 0..64 {
        let h = Value::Object(header("RS256", Some(&format!("random-{i}-{}", now())))).to_string();
        let token = sign(&issuer, &h, &payload, kids::RSA, Algorithm::RS256);
        let request = http
            .get(format!("http://{addr}/orders/1"))
            .bearer_auth(token)
            .send();
        flood.spawn(async move {
            let response = request.await.expect("HTTP");
            (
                response.status(),
                response.headers().get(WWW_AUTHENTICATE).cloned(),
            )
        });
    }
    let want = r#"error="invalid_token", error_description="unknown signing key""#;
    let mut refused = 0;
    while let Some(result) = flood.join_next().await {
        let (status, challenge) = result.expect("task");
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        let challenge = challenge.expect("challenge");
        assert!(
            challenge.to_str().expect("ASCII").ends_with(want),
            "{challenge:?}"
        );
        refused += 1;
    }
    let fetches = server.requests() - fetches_at_start;
    println!("random-kid flood: {refused} requests refused, {fetches} JWKS fetch(es)");
    assert_eq!(refused, 64);
    assert!(fetches <= 1, "{fetches} fetches for one cooldown window");
    // The real keys still work.
    let h = Value::Object(header("RS256", Some(kids::RSA))).to_string();
    let good = sign(&issuer, &h, &payload, kids::RSA, Algorithm::RS256);
    let response = http
        .get(format!("http://{addr}/orders/1"))
        .bearer_auth(good)
        .send()
        .await
        .expect("HTTP");
    assert_eq!(response.status(), StatusCode::OK);
}
