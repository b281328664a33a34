//! OAuth error responses (RFC 6749 §5.2), and the no-store headers they
//! share with token responses.

use std::time::Duration;

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::super::keys::KeyError;
use super::super::store::StoreError;
use super::LOG_TARGET;

/// An OAuth error response: the status, the `error` code and a
/// description, with `Retry-After` or a Basic challenge where they apply.
#[derive(Debug)]
pub(super) struct OAuthError {
    status: StatusCode,
    error: &'static str,
    description: String,
    retry_after: Option<Duration>,
    basic_challenge: bool,
}

impl OAuthError {
    pub(super) fn new(
        status: StatusCode,
        error: &'static str,
        description: impl Into<String>,
    ) -> Self {
        Self {
            status,
            error,
            description: description.into(),
            retry_after: None,
            basic_challenge: false,
        }
    }

    /// The response status.
    pub(super) fn status(&self) -> StatusCode {
        self.status
    }

    /// The OAuth `error` code, also the audit record's reason.
    pub(super) fn code(&self) -> &'static str {
        self.error
    }

    pub(super) fn invalid_request(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", description)
    }

    pub(super) fn invalid_client(basic: bool) -> Self {
        Self {
            basic_challenge: true,
            ..Self::new(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                if basic {
                    "client authentication failed"
                } else {
                    "client authentication failed or missing (use HTTP Basic or client_id + client_secret)"
                },
            )
        }
    }

    pub(super) fn invalid_grant(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_grant", description)
    }

    pub(super) fn invalid_scope(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_scope", description)
    }

    pub(super) fn invalid_target(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_target", description)
    }

    pub(super) fn unauthorized_client(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "unauthorized_client", description)
    }

    pub(super) fn too_many(retry_after: Duration) -> Self {
        Self {
            retry_after: Some(retry_after),
            ..Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_attempts",
                "too many failed attempts; retry later",
            )
        }
    }

    pub(super) fn unavailable(description: impl Into<String>) -> Self {
        Self {
            retry_after: Some(Duration::from_secs(5)),
            ..Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
                description,
            )
        }
    }
}

impl From<KeyError> for OAuthError {
    fn from(e: KeyError) -> Self {
        tracing::error!(target: LOG_TARGET, error = %e, "cannot issue a token");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "the issuer cannot sign tokens right now",
        )
    }
}

impl From<StoreError> for OAuthError {
    fn from(e: StoreError) -> Self {
        tracing::error!(target: LOG_TARGET, error = %e, "the store cannot answer");
        // SECURITY (availability): a database outage is the issuer's
        // trouble, not the client's: 503 with Retry-After, never a 4xx that
        // would make a client drop a good refresh token, never a 500.
        Self::unavailable("the issuer's database is unavailable; retry shortly")
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let body = json!({"error": self.error, "error_description": self.description});
        let mut res = no_store((self.status, Json(body)).into_response());
        if self.basic_challenge {
            res.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"authlayer-issuer\""),
            );
        }
        if let Some(after) = self.retry_after
            && let Ok(v) = HeaderValue::from_str(&after.as_secs().max(1).to_string())
        {
            res.headers_mut().insert(header::RETRY_AFTER, v);
        }
        res
    }
}

/// Token responses and errors must not be cached (RFC 6749 §5.1).
pub(super) fn no_store(mut res: Response) -> Response {
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res.headers_mut()
        .insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    res
}

/// At most this many characters of a client-supplied value in a message.
pub(super) fn shorten(value: &str) -> String {
    value.chars().take(64).collect()
}

/// A client-supplied value made fit for a text log line: shortened like
/// [`shorten`], with control characters and backslashes escaped.
// SECURITY (log injection): names come from the request; a raw CR or LF
// would let a caller end the real line and forge one of their own, and
// other control characters (ESC) could rewrite a terminal. Backslashes are
// escaped too, so an escaped `\n` cannot be confused with a typed one.
pub(super) fn log_safe(value: &str) -> String {
    let mut out = String::new();
    for c in value.chars().take(64) {
        if c.is_control() || c == '\\' {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::log_safe;

    #[test]
    fn log_safe_escapes_line_breaks_and_control_characters() {
        assert_eq!(log_safe("alice"), "alice");
        assert_eq!(
            log_safe("x\r\nINFO forged\u{1b}[2J\\n"),
            "x\\r\\nINFO forged\\u{1b}[2J\\\\n"
        );
    }
}
