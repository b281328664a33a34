//! axum services behind `VerifyLayer`, over real HTTP: the test service of
//! `common::orders_app` and routers built in the tests.

use std::time::Duration;

use authlayer::test_util::{TestIssuer, TokenBuilder, kids};
use authlayer::{
    Algorithm, AuthError, Claims, RejectContext, RequireScopesLayer, Verifier, VerifyLayer,
};
use axum::Router;
use axum::routing::get;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{
    self, AUDIENCE, LogBuffer, b64, challenge, http_get, orders_app, orders_token, serve_axum,
    setup,
};

struct Orders {
    setup: common::Setup,
    base: String,
    http: reqwest::Client,
}

async fn orders() -> Orders {
    let setup = setup().await;
    let addr = serve_axum(orders_app(setup.verifier.clone())).await;
    Orders {
        setup,
        base: format!("http://{addr}"),
        http: reqwest::Client::new(),
    }
}

impl Orders {
    /// A token builder for the orders audience with `orders:read`.
    fn reader(&self) -> TokenBuilder {
        orders_token(&self.setup.issuer).scope("orders:read")
    }

    fn token(&self, scope: &str) -> String {
        orders_token(&self.setup.issuer)
            .sub("alice")
            .scope(scope)
            .sign()
    }

    async fn get(&self, path: &str, token: Option<&str>) -> reqwest::Response {
        http_get(&self.http, &format!("{}{path}", self.base), token).await
    }
}

async fn assert_invalid_token(o: &Orders, token: &str, description: &str) {
    let res = o.get("/orders/1", Some(token)).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{description}");
    let c = challenge(&res);
    assert!(c.contains("error=\"invalid_token\""), "{c}");
    assert!(
        c.contains(&format!("error_description=\"{description}\"")),
        "{c}"
    );
}

#[tokio::test]
async fn valid_token_with_scope_gets_the_order() {
    let o = orders().await;
    let res = o.get("/orders/7", Some(&o.token("orders:read"))).await;
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["id"], 7);
    assert_eq!(body["owner"], "alice");
}

#[tokio::test]
async fn missing_token_is_401_with_bare_challenge() {
    let o = orders().await;
    let res = o.get("/orders/1", None).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        challenge(&res),
        format!("Bearer realm=\"{}\"", o.setup.server.issuer_url())
    );
}

#[tokio::test]
async fn health_needs_no_token_and_reports_keys() {
    let o = orders().await;
    let res = o.get("/health", None).await;
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["auth"]["ready"], true);
    assert_eq!(body["auth"]["issuers"][0]["key_count"], 3);
}

#[tokio::test]
async fn me_returns_the_verified_claims() {
    let o = orders().await;
    let token = orders_token(&o.setup.issuer)
        .sub("bob")
        .claim("tenant", "acme")
        .claim("roles", json!(["customer"]))
        .sign();
    let body: Value = o.get("/me", Some(&token)).await.json().await.unwrap();
    assert_eq!(body["sub"], "bob");
    assert_eq!(body["tenant"], "acme");
    assert_eq!(body["roles"][0], "customer");
}

#[tokio::test]
async fn create_needs_write_scope() {
    let o = orders().await;
    let post = |token: String| {
        o.http
            .post(format!("{}/orders", o.base))
            .bearer_auth(token)
            .json(&json!({"item": "widget"}))
            .send()
    };
    let res = post(o.token("orders:read orders:write")).await.unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let res = post(o.token("orders:read")).await.unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        challenge(&res),
        format!(
            "Bearer realm=\"{}\", error=\"insufficient_scope\", error_description=\"insufficient scope\", scope=\"orders:write\"",
            o.setup.server.issuer_url()
        )
    );
}

#[tokio::test]
async fn look_alike_scopes_are_forbidden() {
    let o = orders().await;
    for scope in [
        "orders:reader",
        "orders",
        "orders:rea",
        "ORDERS:READ",
        "orders:read:all",
    ] {
        let res = o.get("/orders/1", Some(&o.token(scope))).await;
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "{scope}");
    }
}

#[tokio::test]
async fn every_asymmetric_algorithm_verifies() {
    let o = orders().await;
    for (kid, alg) in [
        (kids::RSA, Algorithm::RS256),
        (kids::RSA, Algorithm::RS384),
        (kids::RSA, Algorithm::RS512),
        (kids::RSA, Algorithm::PS256),
        (kids::RSA, Algorithm::PS512),
        (kids::EC, Algorithm::ES256),
        (kids::ED, Algorithm::EdDSA),
    ] {
        let token = o.reader().key(kid).alg(alg).sign();
        let res = o.get("/orders/1", Some(&token)).await;
        assert_eq!(res.status(), StatusCode::OK, "{alg:?}");
    }
}

#[tokio::test]
async fn hs256_only_with_an_explicit_shared_secret() {
    let secret = b"0123456789abcdef0123456789abcdef-shared";
    let issuer = TestIssuer::new("https://hmac.test");
    issuer.add_secret("hs", Algorithm::HS256, secret);
    let token = orders_token(&issuer).scope("orders:read").key("hs").sign();

    // Default allow-list: HMAC refused even though the kid is unknown anyway.
    let strict = Verifier::builder()
        .issuer("https://hmac.test")
        .jwks_json(issuer.jwks_json())
        .audience(AUDIENCE)
        .build()
        .await
        .unwrap();
    let err = strict.verify(&token).await.unwrap_err();
    assert_eq!(err.reason(), authlayer::Reason::AlgorithmNotAllowed);

    let with_secret = Verifier::builder()
        .issuer("https://hmac.test")
        .shared_secret_with_kid("hs", secret.to_vec())
        .jwks_json(r#"{"keys":[]}"#)
        .algorithms([Algorithm::HS256])
        .audience(AUDIENCE)
        .build()
        .await
        .unwrap();
    let addr = serve_axum(orders_app(with_secret)).await;
    let res = http_get(
        &reqwest::Client::new(),
        &format!("http://{addr}/orders/1"),
        Some(&token),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
}

#[tokio::test]
async fn short_shared_secret_is_a_build_error() {
    let err = Verifier::builder()
        .issuer("https://hmac.test")
        .shared_secret(b"short".to_vec())
        .jwks_json(r#"{"keys":[]}"#)
        .algorithms([Algorithm::HS256])
        .audience(AUDIENCE)
        .build()
        .await
        .unwrap_err();
    assert!(err.to_string().contains("at least 32 bytes"), "{err}");
}

fn forge(header: &Value, payload: &Value, signature: &[u8]) -> String {
    format!(
        "{}.{}.{}",
        b64(header.to_string()),
        b64(payload.to_string()),
        b64(signature)
    )
}

fn hmac(key: &[u8], message: &str) -> Vec<u8> {
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, key);
    aws_lc_rs::hmac::sign(&key, message.as_bytes())
        .as_ref()
        .to_vec()
}

#[tokio::test]
async fn alg_none_is_refused() {
    let o = orders().await;
    let payload = o.reader().payload();
    for alg in ["none", "None", "NONE", "nOnE"] {
        let header = json!({"alg": alg, "kid": kids::RSA});
        let token = format!("{}.{}.", b64(header.to_string()), b64(payload.to_string()));
        let res = o.get("/orders/1", Some(&token)).await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{alg}");
        // With a (garbage) signature segment too.
        let token = forge(&header, &payload, b"x");
        assert_invalid_token(&o, &token, "algorithm not allowed").await;
    }
}

#[tokio::test]
async fn hs256_signed_with_the_public_key_is_refused() {
    let o = orders().await;
    let payload = o.reader().payload();
    let header = json!({"alg": "HS256", "kid": kids::RSA, "typ": "JWT"});
    let message = format!("{}.{}", b64(header.to_string()), b64(payload.to_string()));
    let der = o.setup.issuer.public_key_der(kids::RSA).unwrap();
    let jwk = o.setup.issuer.jwk(kids::RSA).unwrap().to_string();
    for key in [der.as_slice(), jwk.as_bytes()] {
        let token = format!("{message}.{}", b64(hmac(key, &message)));
        assert_invalid_token(&o, &token, "algorithm not allowed").await;
    }
}

#[tokio::test]
async fn embedded_jwk_and_jku_headers_are_never_used() {
    let o = orders().await;
    let attacker = TestIssuer::new(o.setup.issuer.issuer());
    let attacker_jwk = attacker.jwk(kids::RSA).unwrap();
    // Attacker signs with its own key and embeds it (with its own kid and with the real kid).
    for kid in ["attacker-key", kids::RSA] {
        let token = orders_token(&attacker)
            .scope("orders:read")
            .header_kid(Some(kid))
            .header("jwk", attacker_jwk.clone())
            .header(
                "jku",
                format!("{}/.well-known/jwks.json", o.setup.server.issuer_url()),
            )
            .header("x5u", "https://attacker.invalid/cert.pem")
            .sign();
        let res = o.get("/orders/1", Some(&token)).await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{kid}");
        assert!(challenge(&res).contains("invalid_token"));
    }
}

#[tokio::test]
async fn expired_and_not_yet_valid_tokens_are_refused() {
    let o = orders().await;
    let issuer = &o.setup.issuer;
    let expired = orders_token(issuer)
        .scope("orders:read")
        .expired_for(Duration::from_secs(120))
        .sign();
    assert_invalid_token(&o, &expired, "token expired").await;
    // Within the default 60 s leeway: accepted.
    let just_expired = orders_token(issuer)
        .scope("orders:read")
        .expired_for(Duration::from_secs(10))
        .sign();
    assert_eq!(o.get("/orders/1", Some(&just_expired)).await.status(), 200);
    let future = orders_token(issuer)
        .scope("orders:read")
        .claim("nbf", 4_000_000_000_i64)
        .sign();
    assert_invalid_token(&o, &future, "token not yet valid").await;
    let no_exp = orders_token(issuer)
        .scope("orders:read")
        .without("exp")
        .sign();
    assert_invalid_token(&o, &no_exp, "required claim missing").await;
}

#[tokio::test]
async fn exp_as_string_is_refused() {
    let o = orders().await;
    let token = o.reader().claim("exp", "4000000000").sign();
    assert_invalid_token(&o, &token, "invalid claim").await;
}

#[tokio::test]
async fn wrong_issuer_and_audience_are_refused() {
    let o = orders().await;
    let issuer = &o.setup.issuer;
    let real = o.setup.server.issuer_url().to_owned();
    for iss in [
        format!("{real}/"),
        real.to_uppercase(),
        format!("{real}.evil"),
        "https://other.example".into(),
    ] {
        let token = orders_token(issuer)
            .scope("orders:read")
            .claim("iss", iss.clone())
            .sign();
        assert_invalid_token(&o, &token, "untrusted issuer").await;
    }
    for aud in [
        json!("urn:other"),
        json!([]),
        json!("urn:orders2"),
        json!(["urn:order"]),
    ] {
        let token = issuer
            .token()
            .claim("aud", aud.clone())
            .scope("orders:read")
            .sign();
        assert_invalid_token(&o, &token, "wrong audience").await;
    }
    let no_aud = issuer.token().scope("orders:read").sign();
    assert_invalid_token(&o, &no_aud, "wrong audience").await;
    let array = issuer
        .token()
        .claim("aud", json!(["urn:other", AUDIENCE]))
        .scope("orders:read")
        .sign();
    assert_eq!(o.get("/orders/1", Some(&array)).await.status(), 200);
}

#[tokio::test]
async fn unknown_kid_is_refused() {
    let o = orders().await;
    let stranger = TestIssuer::new(o.setup.issuer.issuer());
    stranger.add_key("not-published", Algorithm::ES256);
    let token = orders_token(&stranger)
        .scope("orders:read")
        .key("not-published")
        .sign();
    assert_invalid_token(&o, &token, "unknown signing key").await;
    // A real kid with a foreign signature.
    let token = orders_token(&stranger)
        .scope("orders:read")
        .key(kids::EC)
        .sign();
    assert_invalid_token(&o, &token, "invalid signature").await;
}

#[tokio::test]
async fn two_credentials_are_a_bad_request() {
    let o = orders().await;
    let token = o.token("orders:read");
    let res = o
        .http
        .get(format!("{}/orders/1", o.base))
        .header("authorization", format!("Bearer {token}"))
        .header("authorization", format!("Bearer {token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert!(challenge(&res).contains("error=\"invalid_request\""));
}

#[tokio::test]
async fn oversized_token_is_refused_before_decoding() {
    let o = orders().await;
    let token = o.reader().claim("pad", "x".repeat(9000)).sign();
    assert!(token.len() > 8 * 1024);
    assert_invalid_token(&o, &token, "token too long").await;
}

#[tokio::test]
async fn scheme_is_case_insensitive() {
    let o = orders().await;
    let res = o
        .http
        .get(format!("{}/orders/1", o.base))
        .header(
            "authorization",
            format!("bEaReR {}", o.token("orders:read")),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
}

#[tokio::test]
async fn rejections_never_echo_the_token() {
    let o = orders().await;
    let logs = LogBuffer::default();
    let _guard = logs.install();
    let good = o.token("orders:read");
    let mut bad = good.clone();
    bad.push_str("AAAA");
    let res = o.get("/orders/1", Some(&bad)).await;
    let headers = format!("{:?}", res.headers());
    let text = format!("{headers}{}", res.text().await.unwrap());
    assert!(!text.contains(&bad[..40]));
    o.get("/orders/1", Some(&good)).await;
    let logs = logs.contents();
    assert!(logs.contains("authlayer::audit"), "{logs}");
    assert!(
        logs.contains("decision=\"deny\"") || logs.contains("decision=deny"),
        "{logs}"
    );
    assert!(
        logs.contains("sub=\"alice\"") || logs.contains("sub=alice"),
        "{logs}"
    );
    let signature = good.rsplit('.').next().unwrap();
    assert!(!logs.contains(signature), "a signature reached the log");
    assert!(!logs.contains(&good[..30]), "a token reached the log");
}

#[tokio::test]
async fn optional_mode_lets_anonymous_requests_through_but_not_bad_tokens() {
    async fn hello(claims: Option<Claims>) -> String {
        claims
            .and_then(|c| c.sub().map(str::to_owned))
            .unwrap_or_else(|| "anonymous".into())
    }
    let s = setup().await;
    let app = Router::new()
        .route("/hello", get(hello))
        .route(
            "/private",
            get(|| async { "secret" }).route_layer(RequireScopesLayer::all(["orders:read"])),
        )
        .layer(VerifyLayer::new(s.verifier.clone()).optional(true));
    let base = format!("http://{}", serve_axum(app).await);
    let http = reqwest::Client::new();
    let res = http_get(&http, &format!("{base}/hello"), None).await;
    assert_eq!(res.text().await.unwrap(), "anonymous");
    let token = orders_token(&s.issuer)
        .sub("carol")
        .scope("orders:read")
        .sign();
    let res = http_get(&http, &format!("{base}/hello"), Some(&token)).await;
    assert_eq!(res.text().await.unwrap(), "carol");
    let res = http_get(&http, &format!("{base}/hello"), Some("garbage")).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    // An anonymous request to a scoped route is asked for a token.
    let res = http_get(&http, &format!("{base}/private"), None).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert!(!challenge(&res).contains("error="));
    let res = http_get(&http, &format!("{base}/private"), Some(&token)).await;
    assert_eq!(res.status(), StatusCode::OK);
}

#[tokio::test]
async fn extractor_without_the_layer_is_a_500() {
    let app = Router::new().route(
        "/me",
        get(|c: Claims| async move { c.sub().unwrap_or_default().to_owned() }),
    );
    let base = format!("http://{}", serve_axum(app).await);
    let logs = LogBuffer::default();
    let _guard = logs.install();
    let res = reqwest::get(format!("{base}/me")).await.unwrap();
    assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert!(logs.contents().contains("without VerifyLayer"));
}

#[tokio::test]
async fn require_scopes_without_the_layer_is_500_and_logged() {
    let app = Router::new().route(
        "/x",
        get(|| async { "x" }).route_layer(RequireScopesLayer::all(["a"])),
    );
    let base = format!("http://{}", serve_axum(app).await);
    let logs = LogBuffer::default();
    let _guard = logs.install();
    let res = reqwest::get(format!("{base}/x")).await.unwrap();
    // A wiring mistake of the service, like the extractor without the layer.
    assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert!(logs.contents().contains("VerifyLayer must run before it"));
}

#[tokio::test]
async fn custom_rejection_hook_renders_the_response() {
    let s = setup().await;
    let layer = VerifyLayer::new(s.verifier.clone()).on_reject(
        |err: &AuthError, _ctx: &RejectContext<'_>| {
            let body = json!({"error": err.reason().code(), "status": err.status().as_u16()});
            let mut res = axum::response::Response::new(axum::body::Body::from(body.to_string()));
            *res.status_mut() = err.status();
            res.headers_mut()
                .insert("content-type", "application/json".parse().unwrap());
            res
        },
    );
    let app = Router::new()
        .route("/x", get(|| async { "x" }))
        .layer(layer);
    let base = format!("http://{}", serve_axum(app).await);
    let res = reqwest::get(format!("{base}/x")).await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"], "missing_token");
}

#[tokio::test]
async fn custom_claims_type_is_extracted() {
    #[derive(Debug, serde::Deserialize)]
    struct Mine {
        plan: String,
    }
    let s = setup().await;
    let app = Router::new()
        .route(
            "/plan",
            get(|c: Claims<Mine>| async move { c.extra().plan.clone() }),
        )
        .route(
            "/scoped",
            get(|c: Claims| async move { c.sub().unwrap_or_default().to_owned() })
                .route_layer(RequireScopesLayer::all(["orders:read"])),
        )
        .layer(VerifyLayer::new(s.verifier.clone()).with_claims::<Mine>());
    let base = format!("http://{}", serve_axum(app).await);
    let token = orders_token(&s.issuer)
        .sub("dave")
        .scope("orders:read")
        .claim("plan", "pro")
        .sign();
    let http = reqwest::Client::new();
    let res = http_get(&http, &format!("{base}/plan"), Some(&token)).await;
    assert_eq!(res.text().await.unwrap(), "pro");
    let res = http_get(&http, &format!("{base}/scoped"), Some(&token)).await;
    assert_eq!(res.text().await.unwrap(), "dave");
    // A token whose custom claims do not parse is refused.
    let bad = orders_token(&s.issuer).claim("plan", 5).sign();
    let res = http_get(&http, &format!("{base}/plan"), Some(&bad)).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn token_from_cookie() {
    let s = setup().await;
    let app = Router::new()
        .route(
            "/x",
            get(|c: Claims| async move { c.sub().unwrap_or_default().to_owned() }),
        )
        .layer(VerifyLayer::new(s.verifier.clone()).token_from_cookie("access_token"));
    let base = format!("http://{}", serve_axum(app).await);
    let token = orders_token(&s.issuer).sub("erin").sign();
    let res = reqwest::Client::new()
        .get(format!("{base}/x"))
        .header("cookie", format!("theme=dark; access_token={token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.text().await.unwrap(), "erin");
}

#[tokio::test]
async fn typ_policy_access_token_is_strict() {
    let issuer = TestIssuer::new("https://typ.test");
    let verifier = Verifier::builder()
        .issuer("https://typ.test")
        .jwks_json(issuer.jwks_json())
        .audience(AUDIENCE)
        .typ(authlayer::TypPolicy::AccessToken)
        .build()
        .await
        .unwrap();
    let jwt = orders_token(&issuer).sign();
    let err = verifier.verify(&jwt).await.unwrap_err();
    assert_eq!(err.reason(), authlayer::Reason::WrongType);
    for typ in ["at+jwt", "AT+JWT", "application/at+jwt"] {
        let at = orders_token(&issuer).header("typ", typ).sign();
        assert!(verifier.verify(&at).await.is_ok(), "{typ}");
    }
}
