//! The Wycheproof JOSE vectors (C2SP Wycheproof, `testvectors_v1`): every
//! JWS vector of `json_web_signature_test.json` and every key-set vector of
//! `json_web_key_test.json`, run through the signature layer
//! ([`verify_jws`]: the same header checks, key selection and algorithm
//! rules as for tokens, without claims).
//!
//! Every `invalid` vector must be rejected and every `valid` one accepted,
//! except the deviations listed below, each with its reason (also listed in
//! SECURITY.md). The test fails if any other vector deviates, and also if a
//! listed deviation no longer deviates, so the list stays exact.
//!
//! The data lives in `../shared/testdata/wycheproof` (read-only, Apache-2.0).

use std::collections::BTreeMap;
use std::path::PathBuf;

use authlayer::test_util::verify_jws;
use authlayer::{Algorithm, Reason};
use serde_json::{Value, json};

use crate::common::b64_decode;

/// Vectors of `json_web_signature_test.json` where this crate disagrees
/// with Wycheproof. All but two are `valid` vectors that are refused (the
/// crate is stricter); the two `invalid` ones accepted are byte-identical to
/// a `valid` vector (checked in
/// `wycheproof_padding_vectors_are_copies_of_a_valid_vector`).
const JWS_DEVIATIONS: &[(u64, &str)] = &[
    // "invalidBase64Padding" / "invalidBase64PaddingInPayload": in this copy
    // of the data the padding is gone and the token is byte for byte the
    // valid tcId 357, so no verifier can refuse them and accept 357. Padded
    // variants are refused (see the test named above).
    (
        367,
        "identical to valid tcId 357 (padding missing from the vector)",
    ),
    (
        370,
        "identical to valid tcId 357 (padding missing from the vector)",
    ),
    // Empty payload segment (`header..signature`). RFC 7515 allows it, but a
    // JWT always has a JSON payload; the parser requires three non-empty
    // segments before any crypto work, so these are Malformed.
    (
        259,
        "empty payload (RS256): three non-empty segments required",
    ),
    (
        264,
        "empty payload (RS384): three non-empty segments required",
    ),
    (
        268,
        "empty payload (RS512): three non-empty segments required",
    ),
    (
        272,
        "empty payload (PS256): three non-empty segments required",
    ),
    (
        320,
        "empty payload (PS384): three non-empty segments required",
    ),
    (
        325,
        "empty payload (PS512): three non-empty segments required",
    ),
    // RFC 7520 figure 20 is signed PS384, but the vector's JWK says
    // `"alg":"PS256"`. RFC 8725 §3.1: a key is used only with its own
    // algorithm, so the token is refused (KeyAlgorithmMismatch).
    (
        346,
        "PS384 token under a JWK pinned to PS256 (RFC 8725 §3.1)",
    ),
    (
        350,
        "PS384 token under a JWK pinned to PS256 (RFC 8725 §3.1)",
    ),
    // ES512 over P-521: jsonwebtoken has no ES512, so P-521 keys are skipped.
    (347, "ES512 / P-521 is not supported"),
    (351, "ES512 / P-521 is not supported"),
    // A '?' inserted into the header or payload segment, marked valid by
    // Wycheproof (lenient decoders skip it); strict base64url refuses it.
    (372, "'?' in the header: strict base64url"),
    // The payload segment is what the signature covers, so the '?' makes the
    // signature fail before the payload is even decoded.
    (373, "'?' in the payload: the signed segment differs"),
];

/// Vectors of `json_web_key_test.json` where this crate disagrees. Both are
/// `invalid` vectors that are accepted; see the reasons.
const JWK_DEVIATIONS: &[(u64, &str)] = &[
    // A key set holding an HMAC secret next to an EC public key. Sets fetched
    // from a URL never hold `oct` keys (Origin::Remote), so this only happens
    // with a static set written into the configuration by its owner, who
    // also has to allow HS256 explicitly; the secret in it is not published.
    (
        1,
        "mixed symmetric/asymmetric static set: oct keys are only accepted in static sets",
    ),
    // A 2048-bit RSA key with the ROCA (CVE-2017-15361) structure. Detecting
    // it needs the ROCA fingerprint test, which the crate does not run; the
    // key is a valid RSA key of allowed size.
    (7, "ROCA-vulnerable RSA key: not detected"),
];

fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/testdata/wycheproof")
}

fn load(name: &str) -> Value {
    let path = data_dir().join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name} is not JSON: {e}"))
}

/// Every asymmetric algorithm (the verifier's default allow-list).
const ASYMMETRIC: &[Algorithm] = crate::common::EVERY_ALGORITHM.split_at(9).0;

/// Everything the crate can verify: the key's own type then decides.
fn every_algorithm() -> &'static [Algorithm] {
    &crate::common::EVERY_ALGORITHM
}

#[derive(Default)]
struct Tally {
    total: usize,
    pass: usize,
    deviations: Vec<u64>,
    failures: Vec<String>,
    /// Why invalid vectors were refused, by reason label.
    reasons: BTreeMap<&'static str, usize>,
}

impl Tally {
    /// Records one vector. `keys` is the JWK Set the vector is checked against.
    fn check(&mut self, deviations: &[(u64, &str)], test: &Value, keys: &str) {
        let tc_id = test["tcId"].as_u64().expect("tcId");
        let jws = test["jws"].as_str().expect("jws is a compact string");
        let result = test["result"].as_str().expect("result");
        let outcome = verify_jws(jws, keys, every_algorithm());
        if let Ok(payload) = &outcome {
            // Accepted: the payload returned is the signed one, decoded.
            let segment = jws.split('.').nth(1).expect("payload segment");
            assert_eq!(
                Some(payload),
                b64_decode(segment).ok().as_ref(),
                "tcId {tc_id}: returned payload differs from the signed one"
            );
        }
        if let Err(reason) = outcome {
            *self.reasons.entry(reason.code()).or_default() += 1;
        }
        let agrees = match (result, &outcome) {
            ("valid", Ok(_)) | ("invalid", Err(_)) | ("acceptable", _) => true,
            ("valid" | "invalid", _) => false,
            (other, _) => panic!("tcId {tc_id}: unknown result {other:?}"),
        };
        let listed = deviations.iter().any(|(id, _)| *id == tc_id);
        self.total += 1;
        match (agrees, listed) {
            (true, false) => self.pass += 1,
            (false, true) => self.deviations.push(tc_id),
            (false, false) => self.failures.push(format!(
                "tcId {tc_id} ({}): expected {result}, got {outcome:?}",
                test["comment"].as_str().unwrap_or_default()
            )),
            (true, true) => self.failures.push(format!(
                "tcId {tc_id}: listed as a deviation but now agrees ({result}); update the list and SECURITY.md"
            )),
        }
    }

    fn finish(self, what: &str, expected_total: u64, deviations: &[(u64, &str)]) {
        println!(
            "wycheproof {what}: {} vectors: {} pass, {} fail, {} deviation(s) {:?}",
            self.total,
            self.pass,
            self.failures.len(),
            self.deviations.len(),
            self.deviations
        );
        println!(
            "wycheproof {what}: rejections by reason: {:?}",
            self.reasons
        );
        for (id, why) in deviations {
            println!("  deviation tcId {id}: {why}");
        }
        assert_eq!(
            self.total as u64, expected_total,
            "{what}: numberOfTests does not match the vectors run"
        );
        assert!(
            self.failures.is_empty(),
            "{what}: {} unexpected result(s):\n{}",
            self.failures.len(),
            self.failures.join("\n")
        );
        assert_eq!(
            self.deviations.len(),
            deviations.len(),
            "{what}: every listed deviation must still deviate"
        );
    }
}

/// A key of a JWS group as a one-key JWK Set: the public key where there is
/// one (the private JWK carries `d`, which the crate refuses), else the
/// symmetric key.
fn jws_group_keys(group: &Value) -> String {
    let key = if group["public"].is_object() {
        &group["public"]
    } else {
        &group["private"]
    };
    assert!(key.is_object(), "group {:?} has no key", group["comment"]);
    json!({ "keys": [key] }).to_string()
}

#[test]
fn wycheproof_jws_vectors() {
    let file = load("json_web_signature_test.json");
    let groups = file["testGroups"].as_array().expect("testGroups");
    let mut tally = Tally::default();
    for group in groups {
        assert_eq!(group["type"], "JsonWebSignature");
        let keys = jws_group_keys(group);
        for test in group["tests"].as_array().expect("tests") {
            tally.check(JWS_DEVIATIONS, test, &keys);
        }
    }
    tally.finish(
        "JWS",
        file["numberOfTests"].as_u64().expect("numberOfTests"),
        JWS_DEVIATIONS,
    );
}

#[test]
fn wycheproof_jwk_vectors() {
    let file = load("json_web_key_test.json");
    let groups = file["testGroups"].as_array().expect("testGroups");
    let mut tally = Tally::default();
    for group in groups {
        assert_eq!(group["type"], "JsonWebKey");
        // Key-set vectors: the public set where there is one, else the
        // (symmetric) private set, as a verifier would be configured.
        let keys = if group["public"].is_object() {
            &group["public"]
        } else {
            &group["private"]
        };
        assert!(keys["keys"].is_array(), "group {:?}", group["comment"]);
        let keys = keys.to_string();
        for test in group["tests"].as_array().expect("tests") {
            tally.check(JWK_DEVIATIONS, test, &keys);
        }
    }
    tally.finish(
        "JWK",
        file["numberOfTests"].as_u64().expect("numberOfTests"),
        JWK_DEVIATIONS,
    );
}

/// The deviations are refusals for the stated reasons, not accidents: check
/// the exact reason of each refused `valid` vector.
#[test]
fn wycheproof_refused_valid_vectors_fail_for_the_documented_reason() {
    let file = load("json_web_signature_test.json");
    let expected: BTreeMap<u64, Reason> = [
        (259, Reason::Malformed),
        (264, Reason::Malformed),
        (268, Reason::Malformed),
        (272, Reason::Malformed),
        (320, Reason::Malformed),
        (325, Reason::Malformed),
        (346, Reason::KeyAlgorithmMismatch),
        (350, Reason::KeyAlgorithmMismatch),
        // The only key of the set (P-521) is skipped: no usable key at all.
        (347, Reason::UnknownKey),
        (351, Reason::UnknownKey),
        (372, Reason::Malformed),
        (373, Reason::BadSignature),
    ]
    .into_iter()
    .collect();
    let mut seen = 0;
    for group in file["testGroups"].as_array().expect("testGroups") {
        let keys = jws_group_keys(group);
        for test in group["tests"].as_array().expect("tests") {
            let tc_id = test["tcId"].as_u64().expect("tcId");
            if let Some(reason) = expected.get(&tc_id) {
                let jws = test["jws"].as_str().expect("jws");
                assert_eq!(
                    verify_jws(jws, &keys, every_algorithm()),
                    Err(*reason),
                    "tcId {tc_id}"
                );
                seen += 1;
            }
        }
    }
    assert_eq!(seen, expected.len());
}

/// The mixed-set deviation (JWK tcId 1) exists only because the harness
/// allows every algorithm: with the default allow-list (no HMAC) the same
/// set and token are refused.
#[test]
fn wycheproof_mixed_key_set_is_refused_under_the_default_allow_list() {
    let file = load("json_web_key_test.json");
    let group = &file["testGroups"][0];
    assert_eq!(group["comment"], "jws_mixedSymmetryKeyset");
    let test = &group["tests"][0];
    assert_eq!(test["tcId"], 1);
    let keys = group["private"].to_string();
    let jws = test["jws"].as_str().expect("jws");
    assert_eq!(
        verify_jws(jws, &keys, ASYMMETRIC),
        Err(Reason::AlgorithmNotAllowed)
    );
}

/// JWS tcId 367 and 370 ("invalid base64 padding") are, in this copy of the
/// vectors, the very token of the valid tcId 357. Prove that, and prove
/// that the padded variants they describe are refused.
#[test]
fn wycheproof_padding_vectors_are_copies_of_a_valid_vector() {
    let file = load("json_web_signature_test.json");
    let mut by_id = BTreeMap::new();
    let mut keys = String::new();
    for group in file["testGroups"].as_array().expect("testGroups") {
        for test in group["tests"].as_array().expect("tests") {
            let tc_id = test["tcId"].as_u64().expect("tcId");
            if [357, 367, 370].contains(&tc_id) {
                by_id.insert(tc_id, test["jws"].as_str().expect("jws").to_owned());
                keys = jws_group_keys(group);
            }
        }
    }
    let valid = &by_id[&357];
    assert_eq!(&by_id[&367], valid);
    assert_eq!(&by_id[&370], valid);
    assert_eq!(
        verify_jws(valid, &keys, every_algorithm()),
        Ok(b"Test".to_vec())
    );
    let (header, rest) = valid.split_once('.').expect("three segments");
    let (payload, signature) = rest.split_once('.').expect("three segments");
    for (padded, reason) in [
        (format!("{valid}="), Reason::BadSignature),
        (
            format!("{header}.{payload}.{signature}=="),
            Reason::BadSignature,
        ),
        (
            format!("{header}.{payload}==.{signature}"),
            Reason::BadSignature,
        ),
        (
            format!("{header}=.{payload}.{signature}"),
            Reason::Malformed,
        ),
    ] {
        assert_eq!(
            verify_jws(&padded, &keys, every_algorithm()),
            Err(reason),
            "{padded}"
        );
    }
}
