//! The library's legs of a case: `Verifier::verify` (bearer tokens only)
//! and HTTP, against the base URL of a `common::orders_app` server.

use authlayer::Reason;
use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, HeaderValue, WWW_AUTHENTICATE};

use super::corpus::{Accept, Case, Credential, Reject, Target, header_values, is_invalid_request};

/// Runs `case` through `Verifier::verify` (bearer tokens only) and HTTP;
/// returns what went wrong.
pub async fn check(http: &reqwest::Client, target: &Target<String>, case: &Case) -> Vec<String> {
    let mut problems = Vec::new();
    if let Credential::Bearer(token) = &case.credential {
        let outcome = target
            .verifier
            .verify(token)
            .await
            .map(|_| ())
            .map_err(|e| e.reason());
        problems.extend(check_verify(case, outcome).err());
    }
    problems.extend(check_http(http, target, case).await.err());
    problems
}

fn check_verify(case: &Case, outcome: Result<(), Reason>) -> Result<(), String> {
    match (case.expect, outcome) {
        (Accept, Ok(())) => Ok(()),
        (Reject(want), Err(got)) if want == got => Ok(()),
        (want, got) => Err(format!("verify(): want {want:?}, got {got:?}")),
    }
}

async fn check_http(
    http: &reqwest::Client,
    target: &Target<String>,
    case: &Case,
) -> Result<(), String> {
    let mut request = http.get(format!("{}/orders/7", target.client));
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
            let realm = case.profile.issuer();
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
