//! How a refused request is answered: an RFC 6750 challenge for HTTP, a
//! trailers-only status for gRPC ([`DefaultReject`]), or whatever the
//! handler of [`VerifyLayer::on_reject`](crate::VerifyLayer::on_reject)
//! builds ([`RejectFn`]).
//!
//! Every layer of this crate renders its refusals here, with the handler
//! `VerifyLayer` hands on in the request, so a `VerifyLayer`, a
//! `RequireScopes` and the `Claims` extractor answer alike.
//!
//! The user's documentation is on [`AuthError`] and
//! [`VerifyLayer::on_reject`](crate::VerifyLayer::on_reject).

use std::any::Any;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use http::{HeaderValue, Request, Response, header};

use crate::error::{AuthError, ErrorKind};
use crate::metadata::ResourceMetadataService;
use crate::verifier::Verifier;

/// What a rejection handler knows about the refused request, and what the
/// challenge it renders names: pass it on to
/// [`AuthError::www_authenticate`] or [`AuthError::to_response`].
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct RejectContext<'a> {
    /// Whether the request is gRPC (`content-type: application/grpc…`).
    pub grpc: bool,
    /// The realm configured on the verifier.
    pub realm: &'a str,
    /// The URL of the verifier's RFC 9728 metadata document
    /// ([`ResourceMetadataService::url`](crate::ResourceMetadataService::url)),
    /// named by every challenge as `resource_metadata`; `None` without
    /// [`VerifierBuilder::resource_metadata`](crate::VerifierBuilder::resource_metadata).
    pub resource_metadata: Option<&'a str>,
    /// The algorithms of the `DPoP` challenge (space-separated), when the
    /// verifier accepts DPoP ([`VerifierBuilder::dpop`](crate::VerifierBuilder::dpop));
    /// `None`: no `DPoP` challenge.
    pub dpop_algs: Option<&'a str>,
    /// DPoP is required here: no `Bearer` challenge is offered.
    pub dpop_required: bool,
    /// The request presented its token under the `DPoP` scheme: the error
    /// goes on the `DPoP` challenge (as it does for a proof's faults).
    pub dpop_used: bool,
}

impl<'a> RejectContext<'a> {
    /// A context for an HTTP request and `realm`, without metadata: set the
    /// other fields on it, e.g. to render a refusal outside the layers or
    /// to test your handler.
    ///
    /// ```
    /// use authlayer::{AuthError, RejectContext};
    ///
    /// let mut ctx = RejectContext::new("orders");
    /// ctx.resource_metadata = Some("https://api.example/.well-known/oauth-protected-resource");
    /// assert_eq!(
    ///     AuthError::missing_token().www_authenticate(&ctx),
    ///     r#"Bearer realm="orders", resource_metadata="https://api.example/.well-known/oauth-protected-resource""#
    /// );
    /// ```
    pub fn new(realm: &'a str) -> Self {
        Self {
            grpc: false,
            realm,
            resource_metadata: None,
            dpop_algs: None,
            dpop_required: false,
            dpop_used: false,
        }
    }

    /// The context of `req` refused by `verifier`'s layers: its realm, its
    /// metadata document and its DPoP challenge. `dpop`: the request's
    /// DPoP facts (mode and scheme), when known.
    pub(crate) fn of<B>(req: &Request<B>, verifier: &'a Verifier, dpop: DpopFacts) -> Self {
        let settings = verifier.dpop();
        Self {
            grpc: is_grpc(req.headers()),
            realm: verifier.realm(),
            resource_metadata: metadata_url(verifier),
            dpop_algs: settings.map(|s| &*s.algs_text),
            dpop_required: settings.is_some() && dpop.required,
            dpop_used: dpop.used,
        }
    }
}

/// What a refusal's challenge needs to know of a request's DPoP: whether
/// DPoP is required on its route and whether it used the `DPoP` scheme.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct DpopFacts {
    pub(crate) required: bool,
    pub(crate) used: bool,
}

/// The header a server nonce travels in (RFC 9449 §8.1).
pub(crate) static DPOP_NONCE: header::HeaderName = header::HeaderName::from_static("dpop-nonce");

/// The URL of `verifier`'s metadata document, for
/// [`RejectContext::resource_metadata`].
pub(crate) fn metadata_url(verifier: &Verifier) -> Option<&str> {
    verifier
        .resource_metadata()
        .map(ResourceMetadataService::url)
}

/// The default rendering of refusals: [`AuthError::to_response`], an RFC 6750
/// challenge for HTTP and a trailers-only status for gRPC. What a
/// [`VerifyLayer`](crate::VerifyLayer) renders with until
/// [`on_reject`](crate::VerifyLayer::on_reject) installs a [`RejectFn`].
#[derive(Debug, Clone, Copy, Default)]
pub struct DefaultReject;

/// Your rejection handler, for responses with body `B`, as
/// [`VerifyLayer::on_reject`](crate::VerifyLayer::on_reject) installs it:
/// the type to name a layer by (`VerifyLayer<(), RejectFn<axum::body::Body>>`).
///
/// The stack renders every refusal with it: `VerifyLayer`'s own, every rule
/// layer's and [`RequireActiveLayer`](crate::RequireActiveLayer)'s behind
/// it, and the axum extractors' (feature `axum`).
pub struct RejectFn<B>(Arc<Handler<B>>);

type HandlerFn<B> = dyn Fn(&AuthError, &RejectContext<'_>) -> Response<B> + Send + Sync;

/// The handler behind a [`RejectFn`]: a sized type, so that the layers
/// behind `VerifyLayer`, which know the response body type but not the
/// handler's, can find it in a `dyn Any`.
struct Handler<B>(Box<HandlerFn<B>>);

/// The stack's handler with its type erased, as the request carries it to
/// the layers and extractors behind `VerifyLayer`.
pub(crate) type Erased = Arc<dyn Any + Send + Sync>;

impl<B> Clone for RejectFn<B> {
    fn clone(&self) -> Self {
        Self(Arc::clone(&self.0))
    }
}

impl<B> fmt::Debug for RejectFn<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("RejectFn")
            .field(&std::any::type_name::<B>())
            .finish()
    }
}

impl<B: 'static> RejectFn<B> {
    pub(crate) fn new<F>(handler: F) -> Self
    where
        F: Fn(&AuthError, &RejectContext<'_>) -> Response<B> + Send + Sync + 'static,
    {
        Self(Arc::new(Handler(Box::new(handler))))
    }
}

/// How a layer renders its refusals and what it hands on to the layers
/// behind it: [`DefaultReject`] or a [`RejectFn`].
pub(crate) trait Render<B> {
    fn render(&self, err: &AuthError, ctx: &RejectContext<'_>) -> Response<B>;

    /// The handler for the layers behind, `None` for the default (which
    /// they know): the common case costs the request nothing.
    fn erased(&self) -> Option<Erased>;
}

impl<B: Default> Render<B> for DefaultReject {
    fn render(&self, err: &AuthError, ctx: &RejectContext<'_>) -> Response<B> {
        err.to_response(ctx)
    }

    fn erased(&self) -> Option<Erased> {
        None
    }
}

impl<B: 'static> Render<B> for RejectFn<B> {
    fn render(&self, err: &AuthError, ctx: &RejectContext<'_>) -> Response<B> {
        (self.0.0)(err, ctx)
    }

    fn erased(&self) -> Option<Erased> {
        Some(Arc::clone(&self.0) as Erased)
    }
}

/// Renders `err` with the stack's handler when there is one for body `B`,
/// otherwise by default.
///
/// A handler for another body type means a layer between `VerifyLayer` and
/// this one changed the body type: that refusal falls back to the default
/// rendering, and the first such refusal is logged.
pub(crate) fn render<B: Default + 'static>(
    handler: Option<&(dyn Any + Send + Sync)>,
    err: &AuthError,
    ctx: &RejectContext<'_>,
) -> Response<B> {
    static WARNED: AtomicBool = AtomicBool::new(false);
    if let Some(handler) = handler {
        if let Some(handler) = handler.downcast_ref::<Handler<B>>() {
            return (handler.0)(err, ctx);
        }
        if !WARNED.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                body = std::any::type_name::<B>(),
                "the VerifyLayer::on_reject handler renders another response body type than \
                 this layer answers with (a layer between them maps the body): this refusal \
                 and others like it use the default rendering"
            );
        }
    }
    err.to_response(ctx)
}

impl AuthError {
    /// The `WWW-Authenticate` challenges (RFC 6750 §3, RFC 9449 §7.1) for
    /// the context: `Bearer` with the realm, the error code and its fixed
    /// description when there is one, the required `scope` of an
    /// `insufficient_scope` refusal, and `resource_metadata` (RFC 9728
    /// §5.1) when the verifier has metadata; then, when the verifier
    /// accepts DPoP, `DPoP algs="…"`. The error goes on the scheme the
    /// request used (a proof's faults on `DPoP`); where DPoP is required,
    /// only the `DPoP` challenge is sent, with the realm and metadata.
    /// What the default rendering sends, for a handler of your own to send
    /// too.
    ///
    /// Values from configuration are quoted: quotes and backslashes
    /// escaped, anything but visible ASCII dropped.
    pub fn www_authenticate(&self, ctx: &RejectContext<'_>) -> String {
        let mut challenge = Challenges::default();
        let dpop_kind = matches!(
            self.kind(),
            ErrorKind::InvalidDpopProof | ErrorKind::UseDpopNonce | ErrorKind::DpopUnavailable
        );
        let on_dpop = ctx.dpop_algs.is_some() && (ctx.dpop_used || ctx.dpop_required || dpop_kind);
        let bearer = ctx.dpop_algs.is_none() || !ctx.dpop_required;
        if bearer {
            challenge.scheme("Bearer").param("realm", ctx.realm);
            if !on_dpop {
                self.error_params(&mut challenge);
            }
            if let Some(url) = ctx.resource_metadata {
                challenge.param("resource_metadata", url);
            }
        }
        if let Some(algs) = ctx.dpop_algs {
            challenge.scheme("DPoP");
            if !bearer {
                challenge.param("realm", ctx.realm);
            }
            challenge.param("algs", algs);
            if on_dpop {
                self.error_params(&mut challenge);
            }
            if let (false, Some(url)) = (bearer, ctx.resource_metadata) {
                challenge.param("resource_metadata", url);
            }
        }
        challenge.finish()
    }

    /// `error`, `error_description` and `scope`, as the kind has them.
    fn error_params(&self, challenge: &mut Challenges) {
        let description = self
            .proof_description()
            .unwrap_or_else(|| self.reason().description());
        if let Some(code) = self.kind().challenge_code() {
            challenge
                .param("error", code)
                .param("error_description", description);
            if let Some(scope) = self.required_scope() {
                challenge.param("scope", scope);
            }
        } else if self.kind() == ErrorKind::Forbidden {
            // RFC 6750 has no error code for "valid token, but not
            // allowed by roles / tenant / policy": a fixed description only.
            challenge.param("error_description", description);
        }
    }

    /// The default rendering: RFC 6750 for HTTP (the challenge of
    /// [`www_authenticate`](Self::www_authenticate), `Retry-After` on a
    /// 503), a trailers-only status for gRPC; both with the
    /// [`dpop_nonce`](Self::dpop_nonce) in `DPoP-Nonce` when there is one.
    ///
    /// gRPC answers are HTTP 200 with `content-type: application/grpc`,
    /// `grpc-status` and a percent-encoded `grpc-message` in the headers and an
    /// empty body, as the gRPC spec allows for errors before any message.
    pub fn to_response<B: Default>(&self, ctx: &RejectContext<'_>) -> Response<B> {
        let mut res = Response::new(B::default());
        if let Some(nonce) = self.dpop_nonce()
            && let Ok(value) = HeaderValue::from_str(nonce)
        {
            res.headers_mut().insert(&DPOP_NONCE, value);
        }
        if ctx.grpc {
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
        if let Ok(value) = HeaderValue::from_str(&self.www_authenticate(ctx)) {
            headers.insert(header::WWW_AUTHENTICATE, value);
        }
        if matches!(
            self.kind(),
            ErrorKind::KeysUnavailable
                | ErrorKind::IntrospectionUnavailable
                | ErrorKind::DpopUnavailable
        ) {
            headers.insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        }
        res
    }
}

/// A `WWW-Authenticate` value of one or more challenges (RFC 9110 §11.6.1):
/// `Bearer realm="a", error="b", DPoP algs="c"`. Each [`scheme`](Self::scheme)
/// starts a challenge, each [`param`](Self::param) adds a quoted parameter
/// to the current one.
#[derive(Default)]
pub(crate) struct Challenges {
    out: String,
    /// Whether the current challenge has a parameter yet.
    params: bool,
}

impl Challenges {
    pub(crate) fn scheme(&mut self, scheme: &str) -> &mut Self {
        if !self.out.is_empty() {
            self.out.push_str(", ");
        }
        self.out.push_str(scheme);
        self.params = false;
        self
    }

    /// `name="value"`; `name` is a fixed token of this crate.
    pub(crate) fn param(&mut self, name: &str, value: &str) -> &mut Self {
        self.out.push_str(if self.params { ", " } else { " " });
        self.params = true;
        self.out.push_str(name);
        self.out.push_str("=\"");
        push_quoted(&mut self.out, value);
        self.out.push('"');
        self
    }

    pub(crate) fn finish(self) -> String {
        self.out
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

/// Is the request with these headers gRPC (`content-type: application/grpc…`)?
pub(crate) fn is_grpc(headers: &http::HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"))
}

#[cfg(test)]
mod tests {
    use http::StatusCode;

    use super::*;
    use crate::error::Reason;

    fn http_ctx() -> RejectContext<'static> {
        RejectContext::new("api")
    }

    fn grpc_ctx() -> RejectContext<'static> {
        let mut ctx = RejectContext::new("api");
        ctx.grpc = true;
        ctx
    }

    const METADATA: &str = "https://api.example/.well-known/oauth-protected-resource";

    fn with_metadata() -> RejectContext<'static> {
        let mut ctx = RejectContext::new("api");
        ctx.resource_metadata = Some(METADATA);
        ctx
    }

    #[test]
    fn every_challenge_names_the_metadata_document_when_there_is_one() {
        let missing = AuthError::missing_token().www_authenticate(&with_metadata());
        assert_eq!(
            missing,
            format!(r#"Bearer realm="api", resource_metadata="{METADATA}""#)
        );
        let invalid = AuthError::new(Reason::Expired).www_authenticate(&with_metadata());
        assert_eq!(
            invalid,
            format!(
                r#"Bearer realm="api", error="invalid_token", error_description="token expired", resource_metadata="{METADATA}""#
            )
        );
        let scope = AuthError::insufficient_scope("orders:write orders:read".into())
            .www_authenticate(&with_metadata());
        assert_eq!(
            scope,
            format!(
                r#"Bearer realm="api", error="insufficient_scope", error_description="insufficient scope", scope="orders:write orders:read", resource_metadata="{METADATA}""#
            )
        );
        let role = AuthError::new(Reason::MissingRole).www_authenticate(&with_metadata());
        assert_eq!(
            role,
            format!(
                r#"Bearer realm="api", error_description="required role missing", resource_metadata="{METADATA}""#
            )
        );
        let res: Response<()> = AuthError::missing_token().to_response(&with_metadata());
        assert_eq!(res.headers()["www-authenticate"], missing.as_str());
        // gRPC answers carry no challenge, with or without metadata.
        let mut grpc = with_metadata();
        grpc.grpc = true;
        let res: Response<()> = AuthError::missing_token().to_response(&grpc);
        assert!(res.headers().get("www-authenticate").is_none());
    }

    #[test]
    fn challenges_follow_one_another_each_with_its_parameters() {
        let mut two = Challenges::default();
        two.scheme("Bearer")
            .param("realm", "a")
            .param("error", "invalid_token")
            .scheme("DPoP")
            .param("algs", "ES256 EdDSA");
        assert_eq!(
            two.finish(),
            r#"Bearer realm="a", error="invalid_token", DPoP algs="ES256 EdDSA""#
        );
        let mut bare = Challenges::default();
        bare.scheme("Bearer").scheme("DPoP");
        assert_eq!(bare.finish(), "Bearer, DPoP");
    }

    #[test]
    fn missing_token_challenge_has_no_error_code() {
        let res: Response<()> = AuthError::missing_token().to_response(&http_ctx());
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(res.headers()["www-authenticate"], "Bearer realm=\"api\"");
    }

    #[test]
    fn invalid_token_challenge_names_error_and_description() {
        let res: Response<()> = AuthError::new(Reason::Expired).to_response(&http_ctx());
        assert_eq!(
            res.headers()["www-authenticate"],
            "Bearer realm=\"api\", error=\"invalid_token\", error_description=\"token expired\""
        );
    }

    #[test]
    fn insufficient_scope_is_403_with_scope() {
        let err = AuthError::insufficient_scope("orders:read".into());
        let res: Response<()> = err.to_response(&http_ctx());
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
        let res: Response<()> = AuthError::new(Reason::KeysUnavailable).to_response(&http_ctx());
        assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(res.headers()["retry-after"], "5");
    }

    #[test]
    fn introspection_unavailable_is_503_with_retry_after_and_no_error_code() {
        let err = AuthError::new(Reason::IntrospectionUnavailable);
        let res: Response<()> = err.to_response(&http_ctx());
        assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(res.headers()["retry-after"], "5");
        assert_eq!(res.headers()["www-authenticate"], "Bearer realm=\"api\"");
        let res: Response<()> = err.to_response(&grpc_ctx());
        assert_eq!(res.headers()["grpc-status"], "14");
    }

    #[test]
    fn layer_missing_is_500_without_error_code() {
        let res: Response<()> = AuthError::new(Reason::LayerMissing).to_response(&http_ctx());
        assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(res.headers()["www-authenticate"], "Bearer realm=\"api\"");
        let res: Response<()> = AuthError::new(Reason::LayerMissing).to_response(&grpc_ctx());
        assert_eq!(res.headers()["grpc-status"], "13");
    }

    #[test]
    fn grpc_rejection_is_trailers_only_200() {
        let res: Response<()> = AuthError::new(Reason::BadSignature).to_response(&grpc_ctx());
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(res.headers()["grpc-status"], "16");
        assert_eq!(res.headers()["grpc-message"], "invalid signature");
        let res: Response<()> = AuthError::insufficient_scope("a".into()).to_response(&grpc_ctx());
        assert_eq!(res.headers()["grpc-status"], "7");
        let res: Response<()> = AuthError::new(Reason::KeysUnavailable).to_response(&grpc_ctx());
        assert_eq!(res.headers()["grpc-status"], "14");
    }

    #[test]
    fn realm_quotes_are_escaped() {
        let challenge =
            AuthError::missing_token().www_authenticate(&RejectContext::new("a\"b\\c\r\n"));
        assert_eq!(challenge, "Bearer realm=\"a\\\"b\\\\c\"");
    }

    #[test]
    fn the_stacks_handler_renders_for_its_body_type_and_the_default_for_another() {
        let handler = RejectFn::new(|err: &AuthError, ctx: &RejectContext<'_>| {
            let mut res = Response::new(format!("{} in {}", err.reason().code(), ctx.realm));
            *res.status_mut() = StatusCode::IM_A_TEAPOT;
            res
        });
        let erased = Render::<String>::erased(&handler).unwrap();
        let ctx = http_ctx();
        let err = AuthError::missing_token();
        let res: Response<String> = render(Some(&*erased), &err, &ctx);
        assert_eq!(res.status(), StatusCode::IM_A_TEAPOT);
        assert_eq!(res.body(), "missing_token in api");
        // A layer answering with another body type cannot use it.
        let res: Response<()> = render(Some(&*erased), &err, &ctx);
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(res.headers()["www-authenticate"], "Bearer realm=\"api\"");
        let res: Response<String> = render(None, &err, &ctx);
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
        assert!(Render::<String>::erased(&DefaultReject).is_none());
    }

    #[test]
    fn grpc_message_is_percent_encoded() {
        assert_eq!(percent_encode("a%b é"), "a%25b %C3%A9");
    }
}
