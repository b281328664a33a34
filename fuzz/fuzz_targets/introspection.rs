//! The RFC 7662 answer parser: any bytes as the body of an introspection
//! endpoint's answer, judged with and without `require_token_kind`. Nothing
//! may panic, and an answer judged active must, by an independent reading
//! of the same bytes, be a UTF-8 JSON object whose `active` is `true`,
//! whose `iss` (if present) is the issuer, and whose every kind member
//! (`token_type`, `token_use`, `typ`) present is a string naming an access
//! token (with `require_token_kind`, at least one is present).

#![no_main]

use authlayer::test_util::judge_introspection_answer as judge_answer;
use authlayer::{Claims, Reason};
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value};

const ISS: &str = "https://id.example";

/// The names of an access token, per member: the policy as documented, kept
/// apart from the crate's own table.
const ACCESS: [(&str, &[&str]); 3] = [
    (
        "token_type",
        &[
            "bearer",
            "access_token",
            "urn:ietf:params:oauth:token-type:access_token",
        ],
    ),
    ("token_use", &["access_token", "access"]),
    ("typ", &["bearer"]),
];

fn names_an_access_token(member: &str, value: &Value) -> bool {
    let names = ACCESS
        .iter()
        .find(|(m, _)| *m == member)
        .map(|(_, names)| *names)
        .unwrap_or_default();
    value
        .as_str()
        .is_some_and(|v| names.iter().any(|n| n.eq_ignore_ascii_case(v)))
}

/// The answer as an independent reader sees it, if it is a JSON object.
fn object(data: &[u8]) -> Option<Map<String, Value>> {
    let text = std::str::from_utf8(data).ok()?;
    match serde_json::from_str::<Value>(text).ok()? {
        Value::Object(map) => Some(map),
        _ => None,
    }
}

fn check_active(data: &[u8], strict: bool) {
    let map = object(data).expect("judged active, but not a UTF-8 JSON object");
    assert_eq!(map.get("active"), Some(&Value::Bool(true)), "active");
    if let Some(iss) = map.get("iss") {
        assert_eq!(iss.as_str(), Some(ISS), "judged active from another issuer");
    }
    let mut named = false;
    for (member, _) in ACCESS {
        if let Some(value) = map.get(member) {
            named = true;
            assert!(
                names_an_access_token(member, value),
                "judged active with {member} = {value}"
            );
        }
    }
    assert!(named || !strict, "judged active naming no kind, one required");
    // The claims parser sees every active answer next: it must not panic
    // either (its verdict is the verifier's business).
    let _ = Claims::<()>::from_json(std::str::from_utf8(data).expect("UTF-8"));
}

fuzz_target!(|data: &[u8]| {
    let lenient = judge_answer(data, ISS, false);
    let strict = judge_answer(data, ISS, true);
    for (result, is_strict) in [(&lenient, false), (&strict, true)] {
        match result {
            Ok(None) => check_active(data, is_strict),
            Ok(Some(Reason::Inactive)) => {
                let map = object(data).expect("judged inactive, but not a JSON object");
                assert_eq!(map.get("active"), Some(&Value::Bool(false)));
            }
            Ok(Some(reason)) => assert!(
                matches!(reason, Reason::UnknownIssuer | Reason::WrongType),
                "unexpected reason {reason:?}"
            ),
            Err(description) => {
                // A fixed text: never a piece of the body.
                assert!(
                    description.starts_with("not an RFC 7662 response: ")
                        && description.len() < 80,
                    "{description}"
                );
            }
        }
    }
    // Requiring a kind only ever refuses more.
    if strict == Ok(None) {
        assert_eq!(lenient, Ok(None), "strict accepted what lenient refused");
    }
    if lenient != Ok(None) {
        assert_eq!(strict, lenient, "the strict verdict differs beyond the kind");
    }
});
