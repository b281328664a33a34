//! `examples/gateway.rs` in process, in each mode, between the example
//! issuer and the services behind it: the axum `orders` service and an echo
//! backend that records what reached it (a backend that does not verify
//! tokens, as headers mode is for).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use authlayer::Verifier;
use authlayer::outbound::TokenExchange;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::HeaderMap;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::{orders_token, serve_axum, setup};
use crate::gateway_example::limits::{self, Limits};
use crate::gateway_example::{self, Mode};
use crate::issuer;
use crate::issuer::config::{
    Client, Config, GATEWAY_AUDIENCE, GRANT_CLIENT_CREDENTIALS, GRANT_TOKEN_EXCHANGE, User,
};
use crate::orders;

pub const ORDERS: &str = "urn:orders";

/// Argon2id at its minimum cost: behaviour, not hashing strength.
fn cheap_hash(secret: &str) -> String {
    let params = argon2::Params::new(8, 1, 1, None).expect("valid Argon2 parameters");
    issuer::credentials::hash_secret_with(secret, params).expect("hashing")
}

/// The bundled issuer's seed (demo user, orders-service and gateway
/// clients) with cheap hashes: what `cargo run --example issuer` starts with.
pub fn issuer_config() -> Config {
    Config {
        port: 0,
        users: vec![User {
            username: "demo".into(),
            password_hash: cheap_hash("demo-password"),
            scopes: vec!["orders:read".into(), "orders:write".into()],
            roles: vec!["customer".into()],
            tenant: Some("acme".into()),
            audiences: Some(vec![ORDERS.into(), GATEWAY_AUDIENCE.into()]),
        }],
        clients: vec![
            Client {
                client_id: "orders-service".into(),
                secret_hash: cheap_hash("orders-secret"),
                scopes: vec!["orders:read".into(), "orders:write".into()],
                audiences: None,
                grant_types: vec![GRANT_CLIENT_CREDENTIALS.into(), GRANT_TOKEN_EXCHANGE.into()],
                roles: vec!["service".into()],
                tenant: Some("acme".into()),
                exchange: BTreeMap::new(),
                admin: false,
                opaque_access_tokens: false,
            },
            Client {
                client_id: "gateway".into(),
                secret_hash: cheap_hash("gateway-secret"),
                scopes: vec!["orders:read".into(), "orders:write".into()],
                audiences: None,
                grant_types: vec![GRANT_TOKEN_EXCHANGE.into()],
                roles: Vec::new(),
                tenant: None,
                exchange: BTreeMap::from([(GATEWAY_AUDIENCE.into(), vec![ORDERS.into()])]),
                admin: false,
                opaque_access_tokens: false,
            },
        ],
        rotate_every: None,
        ..Config::default()
    }
}

/// The issuer, `orders` and an echo backend, each on 127.0.0.1:0.
pub struct System {
    pub issuer: issuer::server::Running,
    pub orders: SocketAddr,
    pub echo: Echo,
    pub http: reqwest::Client,
}

impl System {
    pub async fn start() -> Self {
        let issuer = issuer::server::start(issuer_config())
            .await
            .expect("issuer starts");
        let orders_verifier = verifier(issuer.issuer(), ORDERS).await;
        let orders = serve_axum(orders::app(orders_verifier)).await;
        Self {
            issuer,
            orders,
            echo: Echo::start().await,
            http: reqwest::Client::new(),
        }
    }

    pub fn token_url(&self) -> String {
        format!("{}/token", self.issuer.issuer())
    }

    /// `/login` as the demo user for `audience`.
    pub async fn login(&self, audience: &str) -> String {
        let res = self
            .http
            .post(format!("{}/login", self.issuer.issuer()))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form(&[
                ("username", "demo"),
                ("password", "demo-password"),
                ("audience", audience),
            ]))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "login for {audience}");
        let body: Value = res.json().await.unwrap();
        body["access_token"].as_str().unwrap().to_owned()
    }

    pub fn exchange(&self) -> TokenExchange {
        TokenExchange::builder(self.token_url(), "gateway", "gateway-secret")
            .build()
            .unwrap()
    }

    /// A gateway in `mode` in front of `upstream`, verifying `audience`.
    pub async fn gateway(&self, mode: Mode, audience: &str, upstream: SocketAddr) -> String {
        let verifier = verifier(self.issuer.issuer(), audience).await;
        let app = gateway_example::app(verifier, &format!("http://{upstream}"), mode);
        format!("http://{}", serve_limited(app, Limits::default()).await)
    }
}

pub fn form(pairs: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

pub async fn verifier(issuer: &str, audience: &str) -> Verifier {
    Verifier::builder()
        .issuer(issuer)
        .audience(audience)
        .build()
        .await
        .expect("verifier builds")
}

/// What reached the echo backend.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub uri: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

type Record = (Arc<Mutex<Vec<Seen>>>, Arc<AtomicUsize>);

/// A backend that verifies nothing and records every request.
#[derive(Clone)]
pub struct Echo {
    pub addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    hits: Arc<AtomicUsize>,
}

impl Echo {
    pub async fn start() -> Self {
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let hits: Arc<AtomicUsize> = Arc::default();
        let state = (seen.clone(), hits.clone());
        let app = axum::Router::new()
            .fallback(
                |State((seen, hits)): State<Record>, req: Request| async move {
                    hits.fetch_add(1, Ordering::SeqCst);
                    let (parts, body) = req.into_parts();
                    let body = axum::body::to_bytes(body, 1 << 20).await.unwrap();
                    seen.lock().unwrap().push(Seen {
                        method: parts.method.to_string(),
                        uri: parts.uri.to_string(),
                        headers: parts.headers.clone(),
                        body,
                    });
                    (
                        [
                            ("x-upstream", "echo"),
                            ("connection", "x-secret-hop"),
                            ("x-secret-hop", "1"),
                        ],
                        axum::Json(json!({"ok": true})),
                    )
                },
            )
            .with_state(state);
        Self {
            addr: serve_axum(app).await,
            seen,
            hits,
        }
    }

    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    /// The request targets that reached the backend, in order.
    pub fn uris(&self) -> Vec<String> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .map(|seen| seen.uri.clone())
            .collect()
    }

    pub fn last(&self) -> Seen {
        self.seen
            .lock()
            .unwrap()
            .last()
            .cloned()
            .expect("a request reached the echo backend")
    }
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).map(|v| v.to_str().unwrap())
}

async fn get_json(http: &reqwest::Client, url: &str, token: &str) -> (u16, Value) {
    let res = http.get(url).bearer_auth(token).send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn forward_mode_passes_the_callers_token_to_orders() {
    let sys = System::start().await;
    let gw = sys.gateway(Mode::Forward, ORDERS, sys.orders).await;
    let token = sys.login(ORDERS).await;
    let (status, me) = get_json(&sys.http, &format!("{gw}/me"), &token).await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["sub"], "demo");
    assert_eq!(me["aud"], json!([ORDERS]));
    assert_eq!(me["client_id"], "login", "the caller's own token");
    let (status, order) = get_json(&sys.http, &format!("{gw}/orders/7"), &token).await;
    assert_eq!(
        (status, &order["id"], &order["owner"]),
        (200, &json!(7), &json!("demo"))
    );
}

#[tokio::test]
async fn exchange_mode_gives_orders_a_token_for_its_own_audience() {
    let sys = System::start().await;
    let exchange = sys.exchange();
    let mode = Mode::Exchange {
        exchange: exchange.clone(),
        audience: ORDERS.into(),
    };
    let gw = sys.gateway(mode, GATEWAY_AUDIENCE, sys.orders).await;
    let token = sys.login(GATEWAY_AUDIENCE).await;
    // Orders itself refuses the gateway's token…
    let (status, _) = get_json(&sys.http, &format!("http://{}/me", sys.orders), &token).await;
    assert_eq!(status, 401);
    // …and accepts what the gateway exchanged it for.
    let (status, me) = get_json(&sys.http, &format!("{gw}/me"), &token).await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["sub"], "demo");
    assert_eq!(me["aud"], json!([ORDERS]));
    assert_eq!(me["client_id"], "gateway");
    assert_eq!(me["tenant"], "acme");
    // A second request reuses the exchanged token.
    let (status, _) = get_json(&sys.http, &format!("{gw}/orders/1"), &token).await;
    assert_eq!(status, 200);
    assert_eq!(exchange.stats().issuer_calls, 1, "{:?}", exchange.stats());
    // A token for orders is not one for the gateway in this mode.
    let orders_token = sys.login(ORDERS).await;
    let (status, _) = get_json(&sys.http, &format!("{gw}/me"), &orders_token).await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn exchange_refused_by_the_issuer_is_a_502_naming_the_reason() {
    let sys = System::start().await;
    let mode = Mode::Exchange {
        exchange: sys.exchange(),
        audience: "urn:billing".into(),
    };
    let gw = sys.gateway(mode, GATEWAY_AUDIENCE, sys.echo.addr).await;
    let token = sys.login(GATEWAY_AUDIENCE).await;
    let (status, body) = get_json(&sys.http, &format!("{gw}/anything"), &token).await;
    assert_eq!(status, 502, "{body}");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("invalid_target"),
        "{body}"
    );
    assert_eq!(sys.echo.hits(), 0);
}

#[tokio::test]
async fn headers_mode_sends_identity_headers_and_no_token() {
    let sys = System::start().await;
    let gw = sys.gateway(Mode::Headers, ORDERS, sys.echo.addr).await;
    let token = sys.login(ORDERS).await;
    let res = sys
        .http
        .get(format!("{gw}/reports?year=2026"))
        .bearer_auth(&token)
        .header("x-auth-sub", "admin")
        .header("x-auth-roles", "admin")
        .header("X-Auth-Tenant", "other")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let seen = sys.echo.last();
    assert_eq!(seen.uri, "/reports?year=2026");
    assert_eq!(header(&seen.headers, "authorization"), None);
    assert_eq!(header(&seen.headers, "x-auth-sub"), Some("demo"));
    assert_eq!(header(&seen.headers, "x-auth-client-id"), Some("login"));
    assert_eq!(header(&seen.headers, "x-auth-tenant"), Some("acme"));
    assert_eq!(
        header(&seen.headers, "x-auth-scopes"),
        Some("orders:read orders:write")
    );
    assert_eq!(header(&seen.headers, "x-auth-roles"), Some("customer"));
    assert_eq!(
        header(&seen.headers, "x-auth-iss"),
        Some(sys.issuer.issuer())
    );
    for name in ["x-auth-sub", "x-auth-roles", "x-auth-tenant"] {
        assert_eq!(seen.headers.get_all(name).iter().count(), 1, "{name}");
    }
}

#[tokio::test]
async fn spoofed_identity_headers_never_reach_the_upstream_in_any_mode() {
    let sys = System::start().await;
    let token = sys.login(ORDERS).await;
    for mode in [Mode::Forward, Mode::Headers] {
        let name = mode.name();
        let headers_mode = matches!(mode, Mode::Headers);
        let gw = sys.gateway(mode, ORDERS, sys.echo.addr).await;
        let res = sys
            .http
            .get(format!("{gw}/x"))
            .bearer_auth(&token)
            .header("x-auth-sub", "admin")
            .header("x-auth-roles", "admin,root")
            .header("x-auth-iss", "https://evil.example")
            .header("x-auth-admin", "true")
            .header("x_auth_sub", "admin")
            // A client must not remove, through Connection, what the
            // gateway sets.
            .header("connection", "x-auth-tenant, x-auth-roles, authorization")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{name}");
        let seen = sys.echo.last();
        if headers_mode {
            assert!(
                seen.headers.contains_key("x-auth-tenant"),
                "{name}: {:?}",
                seen.headers
            );
            assert!(
                seen.headers.contains_key("x-auth-sub"),
                "{name}: {:?}",
                seen.headers
            );
        } else {
            assert!(
                seen.headers.contains_key("authorization"),
                "{name}: {:?}",
                seen.headers
            );
        }
        for (spoofed, value) in [
            ("x-auth-sub", "admin"),
            ("x-auth-roles", "admin,root"),
            ("x-auth-iss", "https://evil.example"),
            ("x-auth-admin", "true"),
            ("x_auth_sub", "admin"),
        ] {
            assert!(
                seen.headers.get_all(spoofed).iter().all(|v| v != value),
                "{name}: {spoofed} reached the upstream: {:?}",
                seen.headers
            );
        }
    }
}

#[tokio::test]
async fn dot_segments_cannot_climb_out_of_the_upstreams_path() {
    let sys = System::start().await;
    let token = sys.login(ORDERS).await;
    let gw = sys.gateway(Mode::Forward, ORDERS, sys.echo.addr).await;
    let before = sys.echo.hits();
    for path in [
        "/a/../secret",
        "/a/%2e%2e/secret",
        "/a/%2E%2E/secret",
        "/./x",
    ] {
        let url = format!("{gw}{path}");
        // reqwest would normalise the dots away: send the raw path.
        let res = raw_get(&url, &token).await;
        assert_eq!(res, 400, "{path}");
    }
    assert_eq!(sys.echo.hits(), before, "the upstream was contacted");
}

/// The status of a GET with this exact request target (no normalisation).
async fn raw_get(url: &str, token: &str) -> u16 {
    let rest = url.strip_prefix("http://").unwrap();
    let (authority, path) = rest.split_at(rest.find('/').unwrap());
    let mut stream = tokio::net::TcpStream::connect(authority).await.unwrap();
    let request = format!(
        "GET {path} HTTP/1.1\r\nhost: {authority}\r\nauthorization: Bearer {token}\r\nconnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
    let text = String::from_utf8_lossy(&response);
    text.split(' ').nth(1).unwrap().parse().unwrap()
}

#[tokio::test]
async fn bad_or_missing_tokens_are_refused_at_the_edge_without_contacting_the_upstream() {
    let sys = System::start().await;
    let gw = sys.gateway(Mode::Forward, ORDERS, sys.echo.addr).await;
    let wrong_audience = sys.login(GATEWAY_AUDIENCE).await;
    let res = sys.http.get(format!("{gw}/orders/1")).send().await.unwrap();
    assert_eq!(res.status(), 401);
    for token in ["garbage", "a.b.c", wrong_audience.as_str()] {
        let res = sys
            .http
            .post(format!("{gw}/orders"))
            .bearer_auth(token)
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 401, "{token}");
        assert!(
            res.headers()["www-authenticate"]
                .to_str()
                .unwrap()
                .contains("invalid_token")
        );
    }
    // Health is answered by the gateway itself, without a token.
    let res = sys.http.get(format!("{gw}/health")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    // Other methods on /health are verified like any request.
    let res = sys.http.post(format!("{gw}/health")).send().await.unwrap();
    assert_eq!(res.status(), 401);
    assert_eq!(sys.echo.hits(), 0, "the upstream was contacted");
}

#[tokio::test]
async fn method_path_query_headers_and_body_are_forwarded_but_not_hop_by_hop_headers() {
    let sys = System::start().await;
    let gw = sys.gateway(Mode::Forward, ORDERS, sys.echo.addr).await;
    let token = sys.login(ORDERS).await;
    let res = sys
        .http
        .put(format!("{gw}/a/b%20c?x=1&y=two"))
        .bearer_auth(&token)
        .header("x-custom", "kept")
        .header("connection", "x-private")
        .header("x-private", "dropped")
        .header("te", "trailers")
        .header("proxy-authorization", "Basic Zm9vOmJhcg==")
        .body("hello body")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["x-upstream"], "echo");
    assert!(
        res.headers().get("x-secret-hop").is_none(),
        "response hop-by-hop header"
    );
    let seen = sys.echo.last();
    assert_eq!(seen.method, "PUT");
    assert_eq!(seen.uri, "/a/b%20c?x=1&y=two");
    assert_eq!(&seen.body[..], b"hello body");
    assert_eq!(header(&seen.headers, "x-custom"), Some("kept"));
    assert_eq!(
        header(&seen.headers, "authorization"),
        Some(format!("Bearer {token}").as_str())
    );
    for hop in ["x-private", "te", "proxy-authorization"] {
        assert!(seen.headers.get(hop).is_none(), "{hop} was forwarded");
    }
}

#[tokio::test]
async fn an_upstream_that_is_down_gives_502() {
    let sys = System::start().await;
    let closed = {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        listener.local_addr().unwrap()
    };
    let gw = sys.gateway(Mode::Forward, ORDERS, closed).await;
    let token = sys.login(ORDERS).await;
    let (status, body) = get_json(&sys.http, &format!("{gw}/orders/1"), &token).await;
    assert_eq!(status, 502, "{body}");
    assert_eq!(body["error"], "bad_gateway");
}

#[tokio::test]
async fn claims_with_line_breaks_reach_the_backend_percent_encoded() {
    let s = setup().await;
    let echo = Echo::start().await;
    let app = gateway_example::app(
        s.verifier.clone(),
        &format!("http://{}", echo.addr),
        Mode::Headers,
    );
    let gw = serve_axum(app).await;
    let token = s
        .issuer
        .token()
        .audience(ORDERS)
        .sub("eve\r\nx-auth-roles: admin")
        .claim("roles", json!(["a,b", "c\nd"]))
        .claim("tenant", "t\u{0}x")
        .sign();
    let res = reqwest::Client::new()
        .get(format!("http://{gw}/x"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let seen = echo.last();
    assert_eq!(
        header(&seen.headers, "x-auth-sub"),
        Some("eve%0D%0Ax-auth-roles:%20admin")
    );
    assert_eq!(header(&seen.headers, "x-auth-roles"), Some("a%2Cb,c%0Ad"));
    assert_eq!(header(&seen.headers, "x-auth-tenant"), Some("t%00x"));
    assert_eq!(seen.headers.get_all("x-auth-roles").iter().count(), 1);
}

/// A gateway in forward mode in front of `upstream` (a URL, maybe with a
/// base path), verifying tokens of `s`'s issuer.
async fn gateway_to(s: &crate::common::Setup, upstream: &str) -> String {
    let app = gateway_example::app(s.verifier.clone(), upstream, Mode::Forward);
    format!("http://{}", serve_limited(app, Limits::default()).await)
}

#[tokio::test]
async fn backslashes_encoded_separators_and_dot_segments_never_leave_the_base_path() {
    let s = setup().await;
    let echo = Echo::start().await;
    let gw = gateway_to(&s, &format!("http://{}/api", echo.addr)).await;
    let token = orders_token(&s.issuer).sign();
    for path in [
        "/..\\admin",
        "/.%2e\\admin",
        "/a\\..\\..\\admin",
        "/..%5cadmin",
        "/..%5Cadmin",
        "/%2e%2e%5Cadmin",
        "/..%2fadmin",
        "/..%2Fadmin",
        "/x/..%2F..%2Fadmin",
        "/..;/admin",
        "/admin;jsessionid=1",
        "/%2e%2e/admin",
        "/%2E%2e/admin",
        "/.%2E/admin",
        "/%2e/admin",
        "/%252e%252e/admin",
        "/%25252E%25252E/admin",
        "/%252f..%252fadmin",
        "/a/%00/b",
        "/a/..?next=/b",
        // Not valid UTF-8 once decoded (an overlong `..`), a `%` that
        // starts no escape (IIS's `%u`), dots and spaces only, non-ASCII
        // (fullwidth `．．`, NFKC-normalised to `..`), empty segments.
        "/%c0%ae%c0%ae/admin",
        "/%25c0%25ae%25c0%25ae/admin",
        "/%u002e%u002e/admin",
        "/%2525u002e%2525u002e/admin",
        "/a%/b",
        "/a%2/b",
        "/.../admin",
        "/..%20/admin",
        "/.%20./admin",
        "/%20/admin",
        "/%ef%bc%8e%ef%bc%8e/admin",
        "/caf%C3%A9",
        "//evil.example/x",
        "/a//b",
        "//",
    ] {
        let status = raw_get(&format!("{gw}{path}"), &token).await;
        assert_eq!(status, 400, "{path}");
    }
    assert_eq!(
        echo.hits(),
        0,
        "refused paths reached the upstream: {:?}",
        echo.uris()
    );
    // Legitimate paths, percent-encoded characters included, are forwarded
    // below the base path, unchanged.
    for (path, forwarded) in [
        ("/orders/7", "/api/orders/7"),
        ("/a/b%20c/%41?q=%2e%2e/..", "/api/a/b%20c/%41?q=%2e%2e/.."),
        ("/100%25/x", "/api/100%25/x"),
        ("/orders/", "/api/orders/"),
        ("/a.b/.c/d./%2e%2ex", "/api/a.b/.c/d./%2e%2ex"),
        ("/", "/api/"),
    ] {
        let status = raw_get(&format!("{gw}{path}"), &token).await;
        assert_eq!(status, 200, "{path}");
        assert_eq!(echo.last().uri, forwarded, "{path}");
    }
    for uri in echo.uris() {
        assert!(uri.starts_with("/api/"), "the upstream saw {uri}");
    }
}

#[tokio::test]
async fn the_upstream_sees_only_the_gateways_forwarding_headers() {
    let s = setup().await;
    let echo = Echo::start().await;
    let gw = gateway_to(&s, &format!("http://{}", echo.addr)).await;
    let authority = gw.strip_prefix("http://").unwrap().to_owned();
    let res = reqwest::Client::new()
        .get(format!("{gw}/x"))
        .bearer_auth(orders_token(&s.issuer).sign())
        .header("x-forwarded-for", "203.0.113.9")
        .header("x-forwarded-host", "admin.internal")
        .header("x-forwarded-proto", "https")
        .header("x-forwarded-port", "443")
        .header("x-forwarded-prefix", "/admin")
        .header("x_forwarded_for", "203.0.113.10")
        .header(
            "forwarded",
            "for=203.0.113.9;host=admin.internal;proto=https",
        )
        .header("x-real-ip", "203.0.113.9")
        .header("x-original-url", "/admin")
        .header("x-rewrite-url", "/admin")
        .header("x_original_url", "/admin")
        .header("x-forwarded", "for=203.0.113.9")
        .header("true-client-ip", "203.0.113.9")
        .header("x-client-ip", "203.0.113.9")
        .header("x_client_ip", "203.0.113.9")
        .header("cf-connecting-ip", "203.0.113.9")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let seen = echo.last();
    let all = |name: &str| -> Vec<&str> {
        seen.headers
            .get_all(name)
            .iter()
            .map(|v| v.to_str().unwrap())
            .collect()
    };
    assert_eq!(all("x-forwarded-for"), ["127.0.0.1"]);
    assert_eq!(all("x-forwarded-proto"), ["http"]);
    assert_eq!(all("x-forwarded-host"), [authority.as_str()]);
    for spoofed in [
        "x-forwarded-port",
        "x-forwarded-prefix",
        "x_forwarded_for",
        "forwarded",
        "x-real-ip",
        "x-original-url",
        "x-rewrite-url",
        "x_original_url",
        "x-forwarded",
        "true-client-ip",
        "x-client-ip",
        "x_client_ip",
        "cf-connecting-ip",
    ] {
        assert!(all(spoofed).is_empty(), "{spoofed}: {:?}", all(spoofed));
    }
}

#[tokio::test]
async fn public_health_shows_readiness_only() {
    let s = setup().await;
    let echo = Echo::start().await;
    let gw = gateway_to(&s, &format!("http://{}", echo.addr)).await;
    let res = reqwest::get(format!("{gw}/health")).await.unwrap();
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body, json!({"status": "ok"}));

    // Not ready: keys never loaded from an issuer that is down. Neither its
    // URL nor the error is shown.
    let closed = {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        listener.local_addr().unwrap()
    };
    let down = format!("http://{closed}");
    let verifier = Verifier::builder()
        .issuer(down.as_str())
        .audience(ORDERS)
        .lazy(true)
        .build()
        .await
        .unwrap();
    let app = gateway_example::app(verifier, &format!("http://{}", echo.addr), Mode::Forward);
    let gw = format!("http://{}", serve_axum(app).await);
    let res = reqwest::get(format!("{gw}/health")).await.unwrap();
    assert_eq!(res.status(), 503);
    let text = res.text().await.unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(&text).unwrap(),
        json!({"status": "unavailable"})
    );
    assert!(!text.contains(&closed.port().to_string()), "{text}");
    assert_eq!(echo.hits(), 0);
}

/// A bare HTTP/1.1 upstream answering every connection with `head` and
/// then `body_len` bytes in chunks of 64 KiB (chunked encoding when `head`
/// says so).
async fn raw_upstream(head: String, body_len: usize, chunked: bool) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let head = head.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let mut request = Vec::new();
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                if stream.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                let chunk = vec![b'x'; 64 * 1024];
                let mut left = body_len;
                while left > 0 {
                    let n = left.min(chunk.len());
                    let written = if chunked {
                        let mut framed = format!("{n:x}\r\n").into_bytes();
                        framed.extend_from_slice(&chunk[..n]);
                        framed.extend_from_slice(b"\r\n");
                        stream.write_all(&framed).await
                    } else {
                        stream.write_all(&chunk[..n]).await
                    };
                    if written.is_err() {
                        return;
                    }
                    left -= n;
                }
                if chunked {
                    let _ = stream.write_all(b"0\r\n\r\n").await;
                }
            });
        }
    });
    addr
}

#[tokio::test]
async fn an_upstream_body_over_the_cap_gives_502() {
    let s = setup().await;
    let token = orders_token(&s.issuer).sign();
    let cap = gateway_example::MAX_UPSTREAM_BODY;
    let http = reqwest::Client::new();
    for (what, len, chunked) in [
        ("declared length at the cap", cap, false),
        ("declared length over the cap", cap + 1, false),
        ("chunked at the cap", cap, true),
        ("chunked over the cap", cap + 1, true),
    ] {
        let head = if chunked {
            "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n".to_owned()
        } else {
            format!("HTTP/1.1 200 OK\r\ncontent-length: {len}\r\nconnection: close\r\n\r\n")
        };
        let upstream = raw_upstream(head, len, chunked).await;
        let gw = gateway_to(&s, &format!("http://{upstream}")).await;
        let res = http
            .get(format!("{gw}/big"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        if len > cap {
            assert_eq!(res.status(), 502, "{what}");
            let body: Value = res.json().await.unwrap();
            assert_eq!(body["error"], "bad_gateway", "{what}");
        } else {
            assert_eq!(res.status(), 200, "{what}");
            assert_eq!(res.bytes().await.unwrap().len(), len, "{what}");
        }
    }
}

/// Serves `app` through the examples' server (`examples/common/limits.rs`)
/// on 127.0.0.1:0, until the test ends.
async fn serve_limited(app: axum::Router, limits: Limits) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(limits::serve(listener, app, limits, std::future::pending()));
    addr
}

fn ok_app() -> axum::Router {
    axum::Router::new().route("/ok", axum::routing::get(|| async { "ok" }))
}

/// Sends one whole `GET /ok` on `stream` and returns the response's text.
async fn get_ok(stream: &mut tokio::net::TcpStream) -> String {
    stream
        .write_all(b"GET /ok HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response).await;
    String::from_utf8_lossy(&response).into_owned()
}

#[tokio::test(start_paused = true)]
async fn a_client_that_sends_half_a_request_head_is_disconnected_after_the_header_read_timeout() {
    let timeout = Duration::from_secs(2);
    let addr = serve_limited(ok_app(), Limits::default().header_read_timeout(timeout)).await;
    for partial in [
        "",
        "G",
        "GET /ok HTTP/1.1\r\nhost: x\r\n",
        "PRI * HTTP/2.0\r\n",
    ] {
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        stream.write_all(partial.as_bytes()).await.unwrap();
        let start = tokio::time::Instant::now();
        let mut rest = Vec::new();
        let closed =
            tokio::time::timeout(Duration::from_secs(600), stream.read_to_end(&mut rest)).await;
        assert!(closed.is_ok(), "{partial:?}: still open after 600 s");
        assert!(
            start.elapsed() >= timeout,
            "{partial:?}: closed after {:?}",
            start.elapsed()
        );
        assert!(
            !String::from_utf8_lossy(&rest).contains("200"),
            "{partial:?}"
        );
    }
    // A client that sends its request in time is answered.
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    assert!(get_ok(&mut stream).await.starts_with("HTTP/1.1 200"));
}

#[tokio::test(start_paused = true)]
async fn a_request_not_answered_within_the_request_timeout_gets_503() {
    let app = axum::Router::new().route(
        "/slow",
        axum::routing::get(|| async {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            "late"
        }),
    );
    let timeout = Duration::from_secs(5);
    let addr = serve_limited(app, Limits::default().request_timeout(timeout)).await;
    let start = tokio::time::Instant::now();
    let res = reqwest::get(format!("http://{addr}/slow")).await.unwrap();
    assert_eq!(res.status(), 503);
    let elapsed = start.elapsed();
    assert!(
        elapsed >= timeout && elapsed < Duration::from_secs(3600),
        "{elapsed:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn connections_over_the_cap_wait_until_one_closes() {
    let addr = serve_limited(
        ok_app(),
        Limits::default()
            .max_connections(1)
            .header_read_timeout(Duration::from_secs(3600)),
    )
    .await;
    let idle = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut second = tokio::net::TcpStream::connect(addr).await.unwrap();
    let waiting = tokio::time::timeout(Duration::from_secs(60), get_ok(&mut second)).await;
    assert!(waiting.is_err(), "answered over the cap: {waiting:?}");
    // The waiting request was sent; it is answered once a slot is free.
    drop(idle);
    let mut response = Vec::new();
    let _ = second.read_to_end(&mut response).await;
    assert!(String::from_utf8_lossy(&response).starts_with("HTTP/1.1 200"));
}

/// Reads from `stream` until the server closes it; how long that took, or
/// `None` when it is still open after 600 s.
async fn time_to_close(stream: &mut tokio::net::TcpStream) -> Option<Duration> {
    let start = tokio::time::Instant::now();
    let mut sink = Vec::new();
    tokio::time::timeout(Duration::from_secs(600), stream.read_to_end(&mut sink))
        .await
        .ok()
        .map(|_| start.elapsed())
}

#[tokio::test(start_paused = true)]
async fn a_connection_idle_after_its_first_request_is_closed_and_frees_its_slot() {
    let idle = Duration::from_secs(5);
    let addr = serve_limited(
        ok_app(),
        Limits::default()
            .max_connections(1)
            .header_read_timeout(Duration::from_secs(3600))
            .idle_timeout(idle),
    )
    .await;
    // HTTP/1.1 keep-alive: one request, answered, then nothing.
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"GET /ok HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).await.unwrap();
    assert_eq!(&head, b"HTTP/1.1 200");
    let closed = time_to_close(&mut stream).await;
    assert!(closed.is_some_and(|t| t >= idle), "HTTP/1.1: {closed:?}");
    // HTTP/2 (prior knowledge): the preface, empty SETTINGS, then
    // `GET /` (HPACK static table: :method GET, :scheme http, :path /),
    // END_STREAM | END_HEADERS on stream 1; then nothing.
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut hello = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    hello.extend([0, 0, 0, 4, 0, 0, 0, 0, 0]);
    hello.extend([0, 0, 3, 1, 5, 0, 0, 0, 1, 0x82, 0x86, 0x84]);
    stream.write_all(&hello).await.unwrap();
    let closed = time_to_close(&mut stream).await;
    assert!(closed.is_some(), "HTTP/2: still open");
    // The slot is free again.
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let answer = tokio::time::timeout(Duration::from_secs(60), get_ok(&mut stream)).await;
    assert!(
        answer
            .as_deref()
            .is_ok_and(|a| a.starts_with("HTTP/1.1 200")),
        "{answer:?}"
    );
}

#[tokio::test]
async fn forward_mode_sends_exactly_the_verified_token_and_no_other_authorization() {
    let s = setup().await;
    let echo = Echo::start().await;
    let gw = gateway_to(&s, &format!("http://{}", echo.addr)).await;
    let token = orders_token(&s.issuer).sign();
    let res = reqwest::Client::new()
        .get(format!("{gw}/x"))
        .header("authorization", format!("Bearer {token}"))
        .header("authorization", "Basic YWRtaW46aHVudGVyMg==")
        .header("authorization", "Custom something-else")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let seen = echo.last();
    let sent: Vec<&str> = seen
        .headers
        .get_all("authorization")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    assert_eq!(sent, [format!("Bearer {token}")]);
}
