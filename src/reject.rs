//! How a refused request is answered: an RFC 6750 challenge for HTTP, a
//! trailers-only status for gRPC, or whatever an [`OnReject`] handler builds.
//!
//! Every layer of this crate renders its refusals here, so a `VerifyLayer`
//! and a `RequireScopes` answer alike.
//!
//! The user's documentation is on [`AuthError`] and [`OnReject`].

use http::{HeaderValue, Request, Response, header};

use crate::error::{AuthError, ErrorKind};

/// Renders a rejection as a response. Implemented by [`DefaultReject`] and by
/// any `Fn(&AuthError, &RejectContext) -> Response<B>`.
pub trait OnReject<B> {
    /// Builds the response for `err`.
    fn on_reject(&self, err: &AuthError, ctx: &RejectContext<'_>) -> Response<B>;
}

/// What a rejection handler knows about the refused request.
#[derive(Debug)]
#[non_exhaustive]
pub struct RejectContext<'a> {
    /// Whether the request is gRPC (`content-type: application/grpc…`).
    pub grpc: bool,
    /// The realm configured on the verifier.
    pub realm: &'a str,
}

impl<'a> RejectContext<'a> {
    pub(crate) fn of<B>(req: &Request<B>, realm: &'a str) -> Self {
        Self {
            grpc: is_grpc(req),
            realm,
        }
    }
}

/// The default rendering: [`AuthError::to_response`].
#[derive(Debug, Clone, Copy, Default)]
pub struct DefaultReject;

impl<B: Default> OnReject<B> for DefaultReject {
    fn on_reject(&self, err: &AuthError, ctx: &RejectContext<'_>) -> Response<B> {
        err.to_response(ctx.realm, ctx.grpc)
    }
}

impl<B, F> OnReject<B> for F
where
    F: Fn(&AuthError, &RejectContext<'_>) -> Response<B>,
{
    fn on_reject(&self, err: &AuthError, ctx: &RejectContext<'_>) -> Response<B> {
        self(err, ctx)
    }
}

impl AuthError {
    /// The `WWW-Authenticate` challenge (RFC 6750 §3) for `realm`.
    ///
    /// `realm` comes from configuration; quotes and backslashes in it are escaped.
    pub fn www_authenticate(&self, realm: &str) -> String {
        let mut out = String::from("Bearer realm=\"");
        push_quoted(&mut out, realm);
        out.push('"');
        let Some(code) = self.kind().challenge_code() else {
            if self.kind() == ErrorKind::Forbidden {
                // RFC 6750 has no error code for "valid token, but not
                // allowed by roles / tenant / policy": a fixed description only.
                out.push_str(", error_description=\"");
                out.push_str(self.reason().description());
                out.push('"');
            }
            return out;
        };
        out.push_str(", error=\"");
        out.push_str(code);
        out.push_str("\", error_description=\"");
        out.push_str(self.reason().description());
        out.push('"');
        if let Some(scope) = self.required_scope() {
            out.push_str(", scope=\"");
            push_quoted(&mut out, scope);
            out.push('"');
        }
        out
    }

    /// The default rendering: RFC 6750 for HTTP, trailers-only status for gRPC.
    ///
    /// gRPC answers are HTTP 200 with `content-type: application/grpc`,
    /// `grpc-status` and a percent-encoded `grpc-message` in the headers and an
    /// empty body, as the gRPC spec allows for errors before any message.
    pub fn to_response<B: Default>(&self, realm: &str, grpc: bool) -> Response<B> {
        let mut res = Response::new(B::default());
        if grpc {
            let headers = res.headers_mut();
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/grpc"),
            );
            headers.insert("grpc-status", HeaderValue::from(self.grpc_code()));
            headers.insert(
                "grpc-message",
                HeaderValue::from_str(&percent_encode(self.reason().description()))
                    .unwrap_or_else(|_| HeaderValue::from_static("unauthenticated")),
            );
            return res;
        }
        *res.status_mut() = self.status();
        let headers = res.headers_mut();
        if let Ok(value) = HeaderValue::from_str(&self.www_authenticate(realm)) {
            headers.insert(header::WWW_AUTHENTICATE, value);
        }
        if matches!(
            self.kind(),
            ErrorKind::KeysUnavailable | ErrorKind::IntrospectionUnavailable
        ) {
            headers.insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        }
        res
    }
}

fn push_quoted(out: &mut String, value: &str) {
    for c in value.chars() {
        // SECURITY (header injection): only visible ASCII may enter a quoted
        // string; quotes and backslashes are escaped, anything else is dropped.
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            ' '..='~' => out.push(c),
            _ => {}
        }
    }
}

/// Percent-encodes a `grpc-message` as the gRPC HTTP/2 spec asks: every byte
/// outside printable ASCII, and `%` itself.
fn percent_encode(message: &str) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(message.len());
    for b in message.bytes() {
        if (0x20..=0x7e).contains(&b) && b != b'%' {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// Is this request gRPC (`content-type: application/grpc…`)?
pub(crate) fn is_grpc<B>(req: &Request<B>) -> bool {
    req.headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"))
}

#[cfg(test)]
mod tests {
    use http::StatusCode;

    use super::*;
    use crate::error::Reason;

    #[test]
    fn missing_token_challenge_has_no_error_code() {
        let res: Response<()> = AuthError::missing_token().to_response("api", false);
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(res.headers()["www-authenticate"], "Bearer realm=\"api\"");
    }

    #[test]
    fn invalid_token_challenge_names_error_and_description() {
        let res: Response<()> = AuthError::new(Reason::Expired).to_response("api", false);
        assert_eq!(
            res.headers()["www-authenticate"],
            "Bearer realm=\"api\", error=\"invalid_token\", error_description=\"token expired\""
        );
    }

    #[test]
    fn insufficient_scope_is_403_with_scope() {
        let err = AuthError::insufficient_scope("orders:read".into());
        let res: Response<()> = err.to_response("api", false);
        assert_eq!(res.status(), StatusCode::FORBIDDEN);
        assert!(
            res.headers()["www-authenticate"]
                .to_str()
                .unwrap()
                .ends_with("error=\"insufficient_scope\", error_description=\"insufficient scope\", scope=\"orders:read\"")
        );
    }

    #[test]
    fn keys_unavailable_is_503_with_retry_after() {
        let res: Response<()> = AuthError::new(Reason::KeysUnavailable).to_response("api", false);
        assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(res.headers()["retry-after"], "5");
    }

    #[test]
    fn introspection_unavailable_is_503_with_retry_after_and_no_error_code() {
        let err = AuthError::new(Reason::IntrospectionUnavailable);
        let res: Response<()> = err.to_response("api", false);
        assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(res.headers()["retry-after"], "5");
        assert_eq!(res.headers()["www-authenticate"], "Bearer realm=\"api\"");
        let res: Response<()> = err.to_response("api", true);
        assert_eq!(res.headers()["grpc-status"], "14");
    }

    #[test]
    fn layer_missing_is_500_without_error_code() {
        let res: Response<()> = AuthError::new(Reason::LayerMissing).to_response("api", false);
        assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(res.headers()["www-authenticate"], "Bearer realm=\"api\"");
        let res: Response<()> = AuthError::new(Reason::LayerMissing).to_response("api", true);
        assert_eq!(res.headers()["grpc-status"], "13");
    }

    #[test]
    fn grpc_rejection_is_trailers_only_200() {
        let res: Response<()> = AuthError::new(Reason::BadSignature).to_response("api", true);
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(res.headers()["grpc-status"], "16");
        assert_eq!(res.headers()["grpc-message"], "invalid signature");
        let res: Response<()> = AuthError::insufficient_scope("a".into()).to_response("api", true);
        assert_eq!(res.headers()["grpc-status"], "7");
        let res: Response<()> = AuthError::new(Reason::KeysUnavailable).to_response("api", true);
        assert_eq!(res.headers()["grpc-status"], "14");
    }

    #[test]
    fn realm_quotes_are_escaped() {
        let challenge = AuthError::missing_token().www_authenticate("a\"b\\c\r\n");
        assert_eq!(challenge, "Bearer realm=\"a\\\"b\\\\c\"");
    }

    #[test]
    fn grpc_message_is_percent_encoded() {
        assert_eq!(percent_encode("a%b é"), "a%25b %C3%A9");
    }
}
