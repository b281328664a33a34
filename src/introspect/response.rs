//! The RFC 7662 envelope of an answer: `active`, `iss` and the members
//! naming the kind of token (`token_type`, `token_use`, `typ`). The claims
//! inside go through the verifier's JWT claim checks.

use serde::{Deserialize, Deserializer};
use serde_json::Value;

use crate::error::Reason;

/// What the envelope says about the token.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// `active: true`, from this issuer, an access token: check its claims.
    Active,
    /// Not a token this service may accept, and why.
    Refused(Reason),
}

/// The members `judge` reads. `Some(Value::Null)` is a member present as
/// `null`; `None` is an absent one.
#[derive(Deserialize)]
struct Envelope {
    active: Value,
    #[serde(default, deserialize_with = "present")]
    iss: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    token_type: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    token_use: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    typ: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    cnf: Option<Value>,
}

/// SECURITY: a member present as `null` is present (serde would read it as
/// absent): an `iss` or a kind of `null` is refused, not skipped.
fn present<'de, D: Deserializer<'de>>(de: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(de).map(Some)
}

/// The members that may name the kind of token, each with the names it gives
/// an access token usable as a bearer token (compared ASCII
/// case-insensitively, as RFC 6749 §7.1 compares `token_type`).
const KINDS: [(&str, &[&str]); 3] = [
    // RFC 7662 §2.2 (and RFC 8693 token type identifiers).
    (
        "token_type",
        &[
            "bearer",
            // RFC 9449 §6.2: a DPoP-bound access token (its `cnf.jkt` is
            // then required, see `judge`).
            "dpop",
            "access_token",
            "urn:ietf:params:oauth:token-type:access_token",
        ],
    ),
    // Ory Hydra: `access_token` or `refresh_token` (its `token_type` is
    // `Bearer` for both); AWS Cognito spells the first `access`.
    ("token_use", &["access_token", "access"]),
    // Keycloak: `Bearer` for an access token; `Refresh`, `Offline`, `ID`,
    // `Logout`, … for the others.
    ("typ", &["bearer"]),
];

/// Judges an answer's envelope; with `require_kind`, an answer naming no
/// kind of token is refused. `Err`: not an RFC 7662 response at all, the
/// endpoint's fault (503), with a description fit for logs (no token, no
/// body).
pub(crate) fn judge(body: &[u8], issuer: &str, require_kind: bool) -> Result<Verdict, String> {
    // SECURITY: JSON is UTF-8 (RFC 8259 §8.1), and serde does not check the
    // strings of members it skips: a body that is not UTF-8 as a whole is
    // broken, never half-read.
    let Ok(text) = std::str::from_utf8(body) else {
        return Err("not an RFC 7662 response: not UTF-8".into());
    };
    // SECURITY: serde refuses a repeated member (`active`, `iss` or a kind),
    // so an answer cannot say both; a string "true" or a 1 is not `true`;
    // only an object is an answer (serde would read `[true]` as one).
    if !text.trim_start().starts_with('{') {
        return Err("not an RFC 7662 response: not a JSON object".into());
    }
    let envelope: Envelope = serde_json::from_str(text)
        .map_err(|e| format!("not an RFC 7662 response: {}", e.classify_text()))?;
    // SECURITY: serde skips the members the envelope does not name without
    // checking their `\u` escapes (a lone surrogate passes); a full read
    // refuses what a strict JSON reader would, so the claims parser and any
    // later reader see a well-formed answer. Only on a cache miss, after a
    // network call: the second parse is cheap by comparison.
    serde_json::from_str::<Value>(text)
        .map_err(|e| format!("not an RFC 7662 response: {}", e.classify_text()))?;
    match envelope.active {
        Value::Bool(true) => {}
        Value::Bool(false) => return Ok(Verdict::Refused(Reason::Inactive)),
        _ => return Err("not an RFC 7662 response: `active` is not a JSON boolean".into()),
    }
    // SECURITY (RFC 7662 §4, mix-up): an `iss` must be exactly the issuer
    // whose endpoint we asked.
    if let Some(iss) = envelope.iss
        && iss.as_str() != Some(issuer)
    {
        return Ok(Verdict::Refused(Reason::UnknownIssuer));
    }
    // SECURITY: a refresh token or an ID token is not an access token,
    // however active. Every member that names the kind must name an access token:
    // one that says otherwise, or is not a string, refuses the answer, so
    // members that contradict each other refuse it too.
    // SECURITY (RFC 9449 §6.2): an answer saying the token is DPoP-bound
    // must say to which key (`cnf.jkt`); without it the binding could not
    // be checked, and the token would pass as a bearer token.
    let dpop_kind = envelope
        .token_type
        .as_ref()
        .and_then(Value::as_str)
        .is_some_and(|k| k.eq_ignore_ascii_case("dpop"));
    let bound = envelope
        .cnf
        .as_ref()
        .and_then(|cnf| cnf.get("jkt"))
        .is_some_and(Value::is_string);
    if dpop_kind && !bound {
        tracing::debug!("introspection: token_type DPoP without cnf.jkt");
        return Ok(Verdict::Refused(Reason::WrongType));
    }
    let named = [envelope.token_type, envelope.token_use, envelope.typ];
    let mut any = false;
    for (value, (member, access)) in named.iter().zip(KINDS) {
        let Some(value) = value else { continue };
        any = true;
        let ok = value
            .as_str()
            .is_some_and(|k| access.iter().any(|a| a.eq_ignore_ascii_case(k)));
        if !ok {
            tracing::debug!(
                member,
                "introspection: the answer is not about an access token"
            );
            return Ok(Verdict::Refused(Reason::WrongType));
        }
    }
    if require_kind && !any {
        tracing::debug!("introspection: the answer names no kind of token, and one is required");
        return Ok(Verdict::Refused(Reason::WrongType));
    }
    Ok(Verdict::Active)
}

trait Classify {
    fn classify_text(&self) -> &'static str;
}

impl Classify for serde_json::Error {
    /// The kind of error only: serde's message may quote the body.
    fn classify_text(&self) -> &'static str {
        match self.classify() {
            serde_json::error::Category::Io => "I/O error",
            serde_json::error::Category::Syntax | serde_json::error::Category::Eof => {
                "invalid JSON"
            }
            serde_json::error::Category::Data => "no `active`, or a member repeated",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ISS: &str = "https://id.example";

    fn judged(json: &str) -> Result<Verdict, String> {
        judge(json.as_bytes(), ISS, false)
    }

    #[test]
    fn active_true_from_our_issuer_is_active() {
        assert_eq!(judged(r#"{"active":true}"#), Ok(Verdict::Active));
        assert_eq!(
            judged(r#"{"active":true,"iss":"https://id.example","token_type":"Bearer"}"#),
            Ok(Verdict::Active)
        );
    }

    #[test]
    fn active_false_is_inactive() {
        assert_eq!(
            judged(r#"{"active":false}"#),
            Ok(Verdict::Refused(Reason::Inactive))
        );
    }

    #[test]
    fn active_that_is_not_a_json_boolean_is_a_broken_answer() {
        for body in [
            r#"{"active":"true"}"#,
            r#"{"active":1}"#,
            r#"{"active":null}"#,
            r#"{"scope":"a"}"#,
            r#"{"active":true,"active":true}"#,
            r#"{"active":true,"token_use":"access_token","token_use":"refresh_token"}"#,
            r#"{"active":true,"typ":"Bearer","typ":"Refresh"}"#,
            r#"{"active":true,"iss":"https://id.example","iss":"https://evil.example"}"#,
            "[true]",
            "<html>",
        ] {
            assert!(judged(body).is_err(), "{body}");
        }
    }

    #[test]
    fn another_issuer_is_refused() {
        for body in [
            r#"{"active":true,"iss":"https://evil.example"}"#,
            r#"{"active":true,"iss":"https://id.example/"}"#,
            r#"{"active":true,"iss":["https://id.example"]}"#,
        ] {
            assert_eq!(
                judged(body),
                Ok(Verdict::Refused(Reason::UnknownIssuer)),
                "{body}"
            );
        }
    }

    #[test]
    fn token_type_dpop_is_an_access_token_only_with_its_cnf_jkt() {
        assert_eq!(
            judged(
                r#"{"active":true,"token_type":"DPoP","cnf":{"jkt":"0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"}}"#
            ),
            Ok(Verdict::Active)
        );
        for body in [
            r#"{"active":true,"token_type":"DPoP"}"#,
            r#"{"active":true,"token_type":"dpop","cnf":{}}"#,
            r#"{"active":true,"token_type":"DPoP","cnf":{"jkt":7}}"#,
        ] {
            assert_eq!(
                judged(body),
                Ok(Verdict::Refused(Reason::WrongType)),
                "{body}"
            );
        }
    }

    #[test]
    fn a_token_type_other_than_an_access_token_is_refused() {
        for kind in ["refresh_token", "DPoP", "N_A"] {
            let body = format!(r#"{{"active":true,"token_type":"{kind}"}}"#);
            assert_eq!(judged(&body), Ok(Verdict::Refused(Reason::WrongType)));
        }
        assert_eq!(
            judged(r#"{"active":true,"token_type":"access_token"}"#),
            Ok(Verdict::Active)
        );
    }

    /// What Ory Hydra answers for one of its refresh tokens (`ory_rt_…`):
    /// `token_type` says Bearer, only `token_use` tells the kinds apart.
    const HYDRA_REFRESH: &str = r#"{
        "active": true,
        "client_id": "orders-app",
        "sub": "2a9c1c7e-3a43-4f4e-9a64-5f1b5c0e7d21",
        "scope": "offline_access orders:read",
        "exp": 4102444800,
        "iat": 1767225600,
        "nbf": 1767225600,
        "aud": ["urn:orders"],
        "iss": "https://id.example",
        "token_type": "Bearer",
        "token_use": "refresh_token",
        "obfuscated_subject": "",
        "username": "",
        "ext": {"tenant": "acme", "roles": ["admin"]}
    }"#;

    #[test]
    fn a_hydra_refresh_token_is_refused() {
        assert_eq!(
            judged(HYDRA_REFRESH),
            Ok(Verdict::Refused(Reason::WrongType))
        );
    }

    #[test]
    fn a_hydra_access_token_is_active() {
        let access = HYDRA_REFRESH.replace(
            r#""token_use": "refresh_token""#,
            r#""token_use": "access_token""#,
        );
        assert_ne!(access, HYDRA_REFRESH);
        assert_eq!(judged(&access), Ok(Verdict::Active));
    }

    /// Keycloak's answer names the kind in `typ` only.
    fn keycloak(typ: &str) -> String {
        format!(
            r#"{{"active":true,"exp":4102444800,"iat":1767225600,"jti":"8f0c","iss":"https://id.example",
            "aud":"account","sub":"f1e2","typ":"{typ}","azp":"orders-app","sid":"5d1c",
            "scope":"openid profile","client_id":"orders-app","username":"alice"}}"#
        )
    }

    #[test]
    fn a_keycloak_access_token_is_active() {
        assert_eq!(judged(&keycloak("Bearer")), Ok(Verdict::Active));
    }

    #[test]
    fn keycloak_refresh_offline_and_id_tokens_are_refused() {
        for typ in ["Refresh", "Offline", "ID", "Logout", "Serialized-ID"] {
            assert_eq!(
                judged(&keycloak(typ)),
                Ok(Verdict::Refused(Reason::WrongType)),
                "{typ}"
            );
        }
    }

    #[test]
    fn a_kind_field_that_is_not_a_string_is_refused() {
        for field in ["token_type", "token_use", "typ"] {
            for value in ["null", "true", "1", r#"["access_token"]"#, r#"{"a":1}"#] {
                let body = format!(r#"{{"active":true,"{field}":{value}}}"#);
                assert_eq!(
                    judged(&body),
                    Ok(Verdict::Refused(Reason::WrongType)),
                    "{body}"
                );
            }
        }
    }

    #[test]
    fn contradictory_kind_fields_are_refused() {
        for body in [
            r#"{"active":true,"token_type":"Bearer","token_use":"refresh_token"}"#,
            r#"{"active":true,"token_type":"refresh_token","token_use":"access_token"}"#,
            r#"{"active":true,"token_use":"access_token","typ":"Refresh"}"#,
            r#"{"active":true,"token_type":"Bearer","typ":"ID"}"#,
        ] {
            assert_eq!(
                judged(body),
                Ok(Verdict::Refused(Reason::WrongType)),
                "{body}"
            );
        }
        assert_eq!(
            judged(
                r#"{"active":true,"token_type":"Bearer","token_use":"access_token","typ":"Bearer"}"#
            ),
            Ok(Verdict::Active)
        );
    }

    #[test]
    fn an_iss_of_null_is_another_issuer() {
        assert_eq!(
            judged(r#"{"active":true,"iss":null}"#),
            Ok(Verdict::Refused(Reason::UnknownIssuer))
        );
    }

    #[test]
    fn an_answer_that_is_not_utf8_is_a_broken_answer() {
        let mut body = br#"{"active":true,"x":"?"}"#.to_vec();
        let at = body.iter().position(|&b| b == b'?').unwrap();
        body[at] = 0xff;
        assert!(judge(&body, ISS, false).is_err());
    }

    #[test]
    fn with_a_kind_required_an_answer_naming_none_is_refused() {
        let none = r#"{"active":true,"iss":"https://id.example","sub":"a"}"#;
        assert_eq!(judge(none.as_bytes(), ISS, false), Ok(Verdict::Active));
        assert_eq!(
            judge(none.as_bytes(), ISS, true),
            Ok(Verdict::Refused(Reason::WrongType))
        );
        for named in [
            r#"{"active":true,"token_type":"Bearer"}"#,
            r#"{"active":true,"token_use":"access_token"}"#,
            r#"{"active":true,"typ":"Bearer"}"#,
        ] {
            assert_eq!(
                judge(named.as_bytes(), ISS, true),
                Ok(Verdict::Active),
                "{named}"
            );
        }
        assert_eq!(
            judge(HYDRA_REFRESH.as_bytes(), ISS, true),
            Ok(Verdict::Refused(Reason::WrongType))
        );
    }

    #[test]
    fn an_answer_with_a_lone_surrogate_in_a_skipped_member_is_a_broken_answer() {
        for body in [
            r#"{"active":true,"x":"\ud800"}"#,
            r#"{"active":true,"ext":{"a":["\udc00"]}}"#,
        ] {
            assert!(judged(body).is_err(), "{body}");
        }
        assert_eq!(
            judged(r#"{"active":true,"x":"\ud83d\ude00"}"#),
            Ok(Verdict::Active)
        );
    }

    #[test]
    fn failure_description_never_quotes_the_body() {
        let err = judged(r#"{"active":"secret-looking-value"}"#).unwrap_err();
        assert!(!err.contains("secret-looking-value"), "{err}");
        let err = judged("secret-looking-garbage").unwrap_err();
        assert!(!err.contains("secret"), "{err}");
    }
}
