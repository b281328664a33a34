//! `gateway`: an edge reverse proxy that verifies every request once and
//! passes the identity to the service behind it (axum + reqwest).
//!
//! ```text
//! cargo run --example gateway                          # forward mode, upstream http://127.0.0.1:3000
//! GATEWAY_MODE=exchange cargo run --example gateway    # callers log in with audience=urn:gateway
//! ```
//!
//! Environment (all optional):
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `PORT` | 8080 | listen on 127.0.0.1:PORT |
//! | `UPSTREAM` | `http://127.0.0.1:3000` | the service behind the gateway |
//! | `GATEWAY_MODE` | `forward` | `forward`: the caller's `Authorization` unchanged; `exchange`: a token for `UPSTREAM_AUDIENCE` (RFC 8693); `headers`: no `Authorization`, only `x-auth-*` identity headers |
//! | `UPSTREAM_AUDIENCE` | `urn:orders` | audience of exchanged tokens |
//! | `GATEWAY_CLIENT_ID`, `GATEWAY_CLIENT_SECRET` | `gateway`, `gateway-secret` | the gateway's client at the issuer (exchange mode; the bundled issuer seeds this one) |
//! | `GATEWAY_TOKEN_URL` | `AUTH_ISSUER` + `/token` | the issuer's token endpoint (plain http only to loopback unless `AUTH_ALLOW_HTTP=1`) |
//! | `AUTH_AUDIENCE` | `urn:orders`; `urn:gateway` in exchange mode | the audience callers' tokens must carry |
//! | `AUTH_ISSUER`, `AUTH_JWKS_URL`, … | as for `orders` | see `examples/common/auth_env.rs` |
//!
//! Logging as for `orders`: audit JSON lines at `AUDIT_LOG` (unset: stdout;
//! a path; `off`), the human log on stderr.
//!
//! `GET /health` answers here, without a token, with readiness only
//! (`{"status":"ok"}` 200 or `{"status":"unavailable"}` 503; the details go
//! to the log). Every other request is verified: a missing or bad token
//! gets 401/403 here and the upstream is not contacted. Verified requests
//! are forwarded below `UPSTREAM`'s path with method, path, query, headers
//! and body; an unreachable upstream gives 502, one that does not answer in
//! 30 s 504, a response body over 8 MiB 502. In exchange mode a refused
//! exchange gives 502 and an unreachable issuer 503.
//!
//! - Paths: a path with `\`, `;`, a dot segment or an encoded `/` or `\`
//!   (also double-encoded) gets 400, see `examples/common/upstream_path.rs`.
//! - Headers: hop-by-hop headers, inbound `x-auth-*` and the client's
//!   `Forwarded`, `X-Forwarded-*` and `X-Real-IP` are dropped; the gateway
//!   sets its own `X-Forwarded-For` (the peer's IP), `X-Forwarded-Proto`
//!   (`http`) and `X-Forwarded-Host` (the host the client asked for).
//! - Connections: a request head must arrive within 10 s, a request is
//!   answered within 60 s (else 503), at most 512 connections are served at
//!   once (`examples/common/limits.rs`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use authlayer::outbound::{IdentityHeadersLayer, OutboundError, OutboundToken, TokenExchange};
use authlayer::{AccessToken, Verifier, VerifyLayer};
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::header::{AUTHORIZATION, CONNECTION, CONTENT_LENGTH, HOST};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};
use upstream_path::Base;

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");

#[path = "common/auth_env.rs"]
#[allow(clippy::duplicate_mod)] // the demo includes the order services too
mod auth_env;
#[path = "common/limits.rs"]
#[allow(clippy::duplicate_mod, dead_code)] // shared by every example
pub mod limits;
#[path = "common/observability.rs"]
#[allow(clippy::duplicate_mod, dead_code)] // shared by every example
mod observability;
#[path = "common/upstream_path.rs"]
pub mod upstream_path;

/// Request bodies larger than this are refused (413): the gateway buffers them.
const MAX_BODY: usize = 4 * 1024 * 1024;
/// Upstream response bodies larger than this give 502: the gateway buffers them.
pub const MAX_UPSTREAM_BODY: usize = 8 * 1024 * 1024;
/// Bound on one upstream exchange (connect, request, response).
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(30);

/// What reaches the upstream.
#[derive(Clone, Debug)]
pub enum Mode {
    /// The caller's verified token, as the one `Authorization` (no other
    /// value the caller sent).
    Forward,
    /// A token for `audience`, exchanged for the caller's.
    Exchange {
        /// The token-exchange client (the gateway's client at the issuer).
        exchange: TokenExchange,
        /// The upstream's audience.
        audience: String,
    },
    /// No `Authorization`; the identity in `x-auth-*` headers.
    Headers,
}

impl Mode {
    /// The mode's name, as `GATEWAY_MODE` spells it.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Forward => "forward",
            Self::Exchange { .. } => "exchange",
            Self::Headers => "headers",
        }
    }
}

struct Gateway {
    /// `None` when `UPSTREAM` is not a usable URL: every request gets 502.
    upstream: Option<Base>,
    mode: Mode,
    policy: Option<OutboundToken>,
    identity: IdentityHeadersLayer,
    http: reqwest::Client,
}

/// The gateway's router: `GET /health` here, everything else verified with
/// `verifier` and forwarded to `upstream` (e.g. `http://127.0.0.1:3000`).
pub fn app(verifier: Verifier, upstream: &str, mode: Mode) -> Router {
    let policy = match &mode {
        Mode::Exchange { exchange, audience } => {
            Some(OutboundToken::exchange(exchange.clone(), audience.as_str()))
        }
        _ => None,
    };
    let identity = IdentityHeadersLayer::new();
    let headers_mode = matches!(mode, Mode::Headers);
    let http = reqwest::Client::builder()
        // A proxy passes redirects on; it does not follow them.
        .redirect(reqwest::redirect::Policy::none())
        .timeout(UPSTREAM_TIMEOUT)
        .build()
        .unwrap_or_default();
    let upstream = Base::parse(upstream)
        .inspect_err(|e| tracing::error!(error = %e, "the upstream URL is unusable"))
        .ok();
    let gateway = Arc::new(Gateway {
        upstream,
        mode,
        policy,
        identity: identity.clone(),
        http,
    });
    let mut protected = Router::new().fallback(proxy).with_state(gateway);
    if headers_mode {
        protected = protected.layer(identity);
    }
    let protected = protected.layer(VerifyLayer::new(verifier.clone()));
    Router::new()
        .route(
            "/health",
            get(health)
                .with_state(verifier)
                .fallback_service(protected.clone()),
        )
        .fallback_service(protected)
}

/// `GET /health`: readiness only. SECURITY: this route is public, so it
/// shows neither the issuers' URLs nor their errors; those go to the log.
async fn health(State(verifier): State<Verifier>) -> (StatusCode, Json<Value>) {
    let health = verifier.health();
    if health.ready {
        (StatusCode::OK, Json(json!({"status": "ok"})))
    } else {
        tracing::warn!(auth = ?health, "not ready");
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "unavailable"})),
        )
    }
}

fn error(status: StatusCode, code: &str, description: &str) -> Response {
    (
        status,
        Json(json!({"error": code, "error_description": description})),
    )
        .into_response()
}

/// Hop-by-hop headers (RFC 9110 §7.6.1), never forwarded, and those the
/// `Connection` header names, except the ones for `keep(name)`.
fn hop_by_hop(headers: &HeaderMap, keep: impl Fn(&HeaderName) -> bool) -> Vec<HeaderName> {
    let mut names: Vec<HeaderName> = [
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    ]
    .into_iter()
    .map(HeaderName::from_static)
    .collect();
    for value in headers.get_all(CONNECTION) {
        for token in value.as_bytes().split(|&b| b == b',') {
            // SECURITY: a client may not drop, through `Connection`, the
            // headers this gateway sets for the backend (the identity
            // headers, `Authorization`).
            if let Ok(name) = HeaderName::from_bytes(token.trim_ascii())
                && !keep(&name)
            {
                names.push(name);
            }
        }
    }
    names
}

/// Whether `name` says where a request came from or what it asked for
/// before a proxy: `Forwarded`, `X-Forwarded`, `X-Forwarded-*`,
/// `X-Real-IP`, `True-Client-IP`, `X-Client-IP`, `CF-Connecting-IP`,
/// `X-Original-URL`, `X-Rewrite-URL`; with `_` read as `-` (CGI-style
/// servers fold them into one name).
///
/// SECURITY: frameworks (Symfony, Laminas, IIS's URL Rewrite) route by
/// `X-Original-URL` and `X-Rewrite-URL`: from the client, either would take
/// the backend out of the path the gateway checked.
fn forwarding_header(name: &HeaderName) -> bool {
    let name = name.as_str().replace('_', "-");
    matches!(
        name.as_str(),
        "forwarded"
            | "x-forwarded"
            | "x-real-ip"
            | "true-client-ip"
            | "x-client-ip"
            | "cf-connecting-ip"
            | "x-original-url"
            | "x-rewrite-url"
    ) || name.starts_with("x-forwarded-")
}

/// The headers to send on: without hop-by-hop ones, those the client sets
/// itself (`host`, `content-length`), the client's `Authorization` (each
/// mode sets its own), the client's forwarding headers and,
/// unless `identity_set` (headers mode: the layer has just set them), any
/// identity header.
fn forwardable(
    headers: &HeaderMap,
    identity: &IdentityHeadersLayer,
    identity_set: bool,
) -> HeaderMap {
    let mut drop = hop_by_hop(headers, |name| {
        *name == AUTHORIZATION || identity.owns(name)
    });
    drop.extend([HOST, CONTENT_LENGTH, AUTHORIZATION]);
    let mut out = HeaderMap::with_capacity(headers.len());
    for (name, value) in headers {
        if !drop.contains(name)
            && !forwarding_header(name)
            && (identity_set || !identity.owns(name))
        {
            out.append(name.clone(), value.clone());
        }
    }
    out
}

/// Sets the gateway's own `X-Forwarded-For` (the peer's IP address, when
/// the server recorded it), `X-Forwarded-Proto` (`http`: the gateway serves
/// plain HTTP) and `X-Forwarded-Host` (the host the client asked for).
///
/// SECURITY: the gateway is the edge: no forwarding header from the client
/// is trusted or passed on (a backend would take `X-Forwarded-For:
/// 10.0.0.1` for an internal caller), so the upstream sees only these.
/// `Forwarded` (RFC 7239) is not set: one set of headers, the one most
/// frameworks read, and never two that could disagree.
fn set_forwarding(headers: &mut HeaderMap, parts: &axum::http::request::Parts) {
    if let Some(ConnectInfo(peer)) = parts.extensions.get::<ConnectInfo<SocketAddr>>()
        && let Ok(value) = HeaderValue::try_from(peer.ip().to_string())
    {
        headers.insert(X_FORWARDED_FOR, value);
    }
    headers.insert(X_FORWARDED_PROTO, HeaderValue::from_static("http"));
    let host = match parts.uri.authority() {
        Some(authority) => HeaderValue::try_from(authority.as_str()).ok(),
        None => parts.headers.get(HOST).cloned(),
    };
    if let Some(host) = host {
        headers.insert(X_FORWARDED_HOST, host);
    }
}

async fn proxy(State(gw): State<Arc<Gateway>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let Some(upstream) = &gw.upstream else {
        return error(
            StatusCode::BAD_GATEWAY,
            "bad_gateway",
            "the upstream is misconfigured",
        );
    };
    // SECURITY: the joined URL must stay under the upstream's base path:
    // `upstream_path` refuses dot segments, `\`, `;` and encoded
    // separators, and checks the URL it built. Checked before the body is
    // read or a token exchanged.
    let path = parts.uri.path_and_query().map_or("/", |pq| pq.as_str());
    let url = match upstream.join(path) {
        Ok(url) => url,
        Err(refused) => {
            tracing::debug!(?refused, "request path refused");
            return error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "the request path must be absolute, without . or .. segments, \\, ; or encoded / or \\",
            );
        }
    };
    let Ok(body) = axum::body::to_bytes(body, MAX_BODY).await else {
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "the request body is larger than the gateway accepts",
        );
    };
    // SECURITY: identity headers come only from this gateway: in headers
    // mode IdentityHeadersLayer has replaced them; in the other modes any
    // inbound ones are dropped, so no backend can be misled by them.
    let mut headers = forwardable(
        &parts.headers,
        &gw.identity,
        matches!(gw.mode, Mode::Headers),
    );
    set_forwarding(&mut headers, &parts);
    match (&gw.mode, &gw.policy) {
        (Mode::Exchange { .. }, Some(policy)) => {
            let inbound = parts.extensions.get::<AccessToken>();
            match policy.token(inbound).await {
                Ok(token) => match token.bearer_header() {
                    Some(value) => {
                        headers.insert(AUTHORIZATION, value);
                    }
                    None => {
                        return error(
                            StatusCode::BAD_GATEWAY,
                            "bad_gateway",
                            "the exchanged token cannot be sent",
                        );
                    }
                },
                Err(e) => return exchange_failed(&e),
            }
        }
        // SECURITY: exactly the token VerifyLayer accepted goes on, as the
        // request's one `Authorization`: any other value the client sent
        // (`Basic` credentials, a second token) stays here.
        (Mode::Forward, _) => {
            if let Some(value) = parts
                .extensions
                .get::<AccessToken>()
                .and_then(AccessToken::bearer_header)
            {
                headers.insert(AUTHORIZATION, value);
            }
        }
        // SECURITY: the backend trusts the x-auth-* headers; the token is
        // not its business (`forwardable` dropped the client's).
        (Mode::Headers | Mode::Exchange { .. }, _) => {}
    }
    let sent = gw
        .http
        .request(parts.method, url)
        .headers(headers)
        .body(body)
        .send()
        .await;
    match sent {
        Ok(res) => respond(res).await,
        Err(e) if e.is_timeout() => error(
            StatusCode::GATEWAY_TIMEOUT,
            "gateway_timeout",
            "the upstream did not answer in time",
        ),
        Err(e) => {
            // SECURITY: without the URL: its query is the client's and may carry secrets.
            tracing::warn!(error = %e.without_url(), "upstream unreachable");
            error(
                StatusCode::BAD_GATEWAY,
                "bad_gateway",
                "the upstream is unreachable",
            )
        }
    }
}

fn exchange_failed(e: &OutboundError) -> Response {
    tracing::warn!(error = %e, "token exchange failed");
    match e {
        OutboundError::Unavailable { .. } | OutboundError::Timeout { .. } => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
            "the issuer cannot exchange the token right now",
        ),
        _ => error(
            StatusCode::BAD_GATEWAY,
            "bad_gateway",
            &format!("no token for the upstream: {e}"),
        ),
    }
}

async fn respond(res: reqwest::Response) -> Response {
    let status = res.status();
    let drop = hop_by_hop(res.headers(), |_| false);
    let mut headers = HeaderMap::with_capacity(res.headers().len());
    for (name, value) in res.headers() {
        if !drop.contains(name) && *name != CONTENT_LENGTH {
            headers.append(name.clone(), value.clone());
        }
    }
    let body = match capped_body(res, MAX_UPSTREAM_BODY).await {
        Ok(body) => body,
        Err(UpstreamBody::TooLarge) => {
            tracing::warn!(
                cap = MAX_UPSTREAM_BODY,
                "upstream response body over the cap"
            );
            return error(
                StatusCode::BAD_GATEWAY,
                "bad_gateway",
                "the upstream's response is larger than the gateway accepts",
            );
        }
        Err(UpstreamBody::BrokeOff) => {
            return error(
                StatusCode::BAD_GATEWAY,
                "bad_gateway",
                "the upstream's response broke off",
            );
        }
    };
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    response
}

enum UpstreamBody {
    TooLarge,
    BrokeOff,
}

/// The upstream's body, at most `cap` bytes. SECURITY (DoS): the gateway
/// buffers the body, so an upstream (or whoever answers in its place) must
/// not make it hold more than `cap` per request: a declared length over the
/// cap is refused before reading, a chunked body as soon as it passes it.
async fn capped_body(mut res: reqwest::Response, cap: usize) -> Result<Bytes, UpstreamBody> {
    let declared = res.content_length();
    if declared.is_some_and(|len| len > cap as u64) {
        return Err(UpstreamBody::TooLarge);
    }
    let mut body =
        Vec::with_capacity(declared.map_or(0, |len| usize::try_from(len).unwrap_or(cap)));
    while let Some(chunk) = res.chunk().await.map_err(|_| UpstreamBody::BrokeOff)? {
        if body.len() + chunk.len() > cap {
            return Err(UpstreamBody::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(body))
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// The mode from `GATEWAY_MODE` (and for `exchange`, its client settings).
pub fn mode_from_env() -> Result<Mode, String> {
    match env("GATEWAY_MODE").as_deref().unwrap_or("forward") {
        "forward" => Ok(Mode::Forward),
        "headers" => Ok(Mode::Headers),
        "exchange" => {
            let issuer = env("AUTH_ISSUER").unwrap_or_else(|| "http://127.0.0.1:4000".into());
            let token_url = env("GATEWAY_TOKEN_URL")
                .unwrap_or_else(|| format!("{}/token", issuer.trim_end_matches('/')));
            let exchange = TokenExchange::builder(
                token_url,
                env("GATEWAY_CLIENT_ID").unwrap_or_else(|| "gateway".into()),
                env("GATEWAY_CLIENT_SECRET").unwrap_or_else(|| "gateway-secret".into()),
            )
            .allow_insecure_http(
                env("AUTH_ALLOW_HTTP").is_some_and(|v| v == "1" || v.eq_ignore_ascii_case("true")),
            )
            .build()
            .map_err(|e| e.to_string())?;
            Ok(Mode::Exchange {
                exchange,
                audience: env("UPSTREAM_AUDIENCE").unwrap_or_else(|| "urn:orders".into()),
            })
        }
        other => Err(format!(
            "GATEWAY_MODE={other:?} is not one of forward, exchange, headers"
        )),
    }
}

/// The default of `AUTH_AUDIENCE` in `mode`.
pub fn default_audience(mode: &Mode) -> &'static str {
    match mode {
        Mode::Exchange { .. } => "urn:gateway",
        Mode::Forward | Mode::Headers => "urn:orders",
    }
}

/// Serves on 127.0.0.1:`port` (0: any free port); prints the address when ready.
pub async fn serve(
    verifier: Verifier,
    upstream: &str,
    mode: Mode,
    port: u16,
) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    observability::announce(listener.local_addr()?);
    limits::serve(
        listener,
        app(verifier, upstream, mode),
        limits::Limits::default(),
        observability::stop_signal(),
    )
    .await
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The same logging as the other examples: audit JSON lines at
    // `AUDIT_LOG` (stdout when unset, `off` for none), the human log on stderr.
    let audit = observability::AuditDestination::from_env();
    let _audit_log = observability::init_logging(&audit, "info")?;
    let port = env("PORT").and_then(|p| p.parse().ok()).unwrap_or(8080);
    let upstream = env("UPSTREAM").unwrap_or_else(|| "http://127.0.0.1:3000".into());
    if let Err(e) = Base::parse(&upstream) {
        eprintln!("gateway: cannot start: UPSTREAM={e}");
        return Err(e.into());
    }
    let mode = mode_from_env().map_err(|e| {
        eprintln!("gateway: cannot start: {e}");
        e
    })?;
    let verifier = auth_env::verifier_from_env_for(default_audience(&mode))
        .await
        .map_err(|e| {
            eprintln!("gateway: cannot start: {e}");
            e
        })?;
    eprintln!("gateway: mode {}, upstream {upstream}", mode.name());
    serve(verifier, &upstream, mode, port).await?;
    Ok(())
}
