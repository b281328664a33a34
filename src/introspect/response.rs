//! The RFC 7662 envelope of an answer: `active`, `iss` and `token_type`.
//! The claims inside go through the verifier's JWT claim checks.

use serde::Deserialize;
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

#[derive(Deserialize)]
struct Envelope {
    active: Value,
    #[serde(default)]
    iss: Option<Value>,
    #[serde(default)]
    token_type: Option<Value>,
}

/// `token_type` values that name an access token usable as a bearer token.
const ACCESS_TOKEN_TYPES: [&str; 3] = [
    "bearer",
    "access_token",
    "urn:ietf:params:oauth:token-type:access_token",
];

/// Judges an answer's envelope. `Err`: not an RFC 7662 response at all, the
/// endpoint's fault (503), with a description fit for logs (no token, no
/// body).
pub(crate) fn judge(body: &[u8], issuer: &str) -> Result<Verdict, String> {
    // SECURITY: serde refuses a duplicate `active`, so an answer cannot say
    // both; a string "true" or a 1 is not `true`; only an object is an
    // answer (serde would read `[true]` as one).
    if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err("not an RFC 7662 response: not a JSON object".into());
    }
    let envelope: Envelope = serde_json::from_slice(body)
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
    // SECURITY: a refresh token (or a DPoP-bound one, which this crate does
    // not check) is not a bearer access token, however active.
    if let Some(kind) = envelope.token_type {
        let ok = kind
            .as_str()
            .is_some_and(|k| ACCESS_TOKEN_TYPES.iter().any(|a| a.eq_ignore_ascii_case(k)));
        if !ok {
            return Ok(Verdict::Refused(Reason::WrongType));
        }
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
            serde_json::error::Category::Data => "not an object with a boolean `active`",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ISS: &str = "https://id.example";

    fn judged(json: &str) -> Result<Verdict, String> {
        judge(json.as_bytes(), ISS)
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

    #[test]
    fn failure_description_never_quotes_the_body() {
        let err = judged(r#"{"active":"secret-looking-value"}"#).unwrap_err();
        assert!(!err.contains("secret-looking-value"), "{err}");
        let err = judged("secret-looking-garbage").unwrap_err();
        assert!(!err.contains("secret"), "{err}");
    }
}
