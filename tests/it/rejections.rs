//! How the stack refuses: one `VerifyLayer::on_reject` handler renders every
//! refusal (verify, rule layers, `RequireActive`, the axum extractors and
//! gRPC), a handler or a policy asking for another claims type, and a
//! claims type the token does not fit.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use authlayer::test_util::TestIssuer;
use authlayer::{
    AccessToken, Claims, Policy, RejectFn, RequireActiveLayer, RequirePolicyLayer,
    RequireRolesLayer, RequireScopesLayer, RequireTenantLayer, Verifier, VerifyLayer,
};
use axum::Router;
use axum::body::Body;
use axum::routing::get;
use http::StatusCode;
use serde_json::{Value, json};
use tower::Layer as _;

use crate::common::{LogBuffer, http_get, serve_axum};

const AUDIENCE: &str = "urn:rejections";

/// An issuer and a verifier holding its keys (no discovery needed here).
async fn verifier() -> (TestIssuer, Verifier) {
    let issuer = TestIssuer::new("https://id.rejections.test");
    let verifier = Verifier::builder()
        .issuer(issuer.issuer())
        .jwks_json(issuer.jwks_json())
        .audience(AUDIENCE)
        .build()
        .await
        .unwrap();
    (issuer, verifier)
}

/// A `VerifyLayer` answering every refusal with an RFC 9457 problem body
/// that names the reason and the realm. The closure has no type annotations.
fn problem_layer(verifier: Verifier) -> VerifyLayer<(), RejectFn<Body>> {
    VerifyLayer::new(verifier).on_reject(|err, ctx| {
        let body = json!({
            "type": "about:blank",
            "title": err.reason().description(),
            "status": err.status().as_u16(),
            "code": err.reason().code(),
            "realm": ctx.realm,
        });
        http::Response::builder()
            .status(err.status())
            .header("content-type", "application/problem+json")
            .body(Body::from(body.to_string()))
            .unwrap()
    })
}

#[derive(Debug, serde::Deserialize)]
struct Other {
    #[allow(dead_code)] // only its type matters here
    plan: Option<String>,
}

/// The problem body of a refusal, after checking it is one.
async fn problem(res: reqwest::Response, status: StatusCode) -> Value {
    assert_eq!(res.status(), status);
    assert_eq!(
        res.headers()["content-type"],
        "application/problem+json",
        "rendered by the handler"
    );
    res.json().await.unwrap()
}

#[tokio::test]
async fn every_refusal_of_the_stack_is_rendered_by_the_one_on_reject_handler() {
    let (issuer, verifier) = verifier().await;
    let realm = verifier.realm().to_owned();
    let app = Router::new()
        .route(
            "/scoped",
            get(|| async { "ok" }).route_layer(RequireScopesLayer::all(["orders:read"])),
        )
        .route(
            "/tenants/{tenant}/orders",
            get(|| async { "ok" }).route_layer(RequireTenantLayer::path_segment(1)),
        )
        .route(
            "/roles",
            get(|| async { "ok" }).route_layer(RequireRolesLayer::all(["admin"])),
        )
        .route("/other", get(|_: Claims<Other>| async { "ok" }))
        .layer(problem_layer(verifier));
    let base = format!("http://{}", serve_axum(app).await);
    let http = reqwest::Client::new();
    let token = issuer
        .token()
        .audience(AUDIENCE)
        .scope("orders:write")
        .claim("tenant", "acme")
        .sign();

    // VerifyLayer's own refusal.
    let res = http_get(&http, &format!("{base}/scoped"), None).await;
    let body = problem(res, StatusCode::UNAUTHORIZED).await;
    assert_eq!(body["code"], "missing_token");
    assert_eq!(body["realm"], realm.as_str());
    let res = http_get(&http, &format!("{base}/scoped"), Some("garbage")).await;
    assert_eq!(
        problem(res, StatusCode::UNAUTHORIZED).await["code"],
        "malformed"
    );

    // The rule layers'.
    let res = http_get(&http, &format!("{base}/scoped"), Some(&token)).await;
    let body = problem(res, StatusCode::FORBIDDEN).await;
    assert_eq!(body["code"], "insufficient_scope");
    assert_eq!(body["realm"], realm.as_str());
    let res = http_get(
        &http,
        &format!("{base}/tenants/globex/orders"),
        Some(&token),
    )
    .await;
    assert_eq!(
        problem(res, StatusCode::FORBIDDEN).await["code"],
        "tenant_mismatch"
    );
    let res = http_get(&http, &format!("{base}/roles"), Some(&token)).await;
    assert_eq!(
        problem(res, StatusCode::FORBIDDEN).await["code"],
        "missing_role"
    );

    // The extractor's, with the verifier's realm.
    let res = http_get(&http, &format!("{base}/other"), Some(&token)).await;
    let body = problem(res, StatusCode::INTERNAL_SERVER_ERROR).await;
    assert_eq!(body["code"], "claims_type_mismatch");
    assert_eq!(body["realm"], realm.as_str());

    // Allowed requests are untouched.
    let res = http_get(&http, &format!("{base}/tenants/acme/orders"), Some(&token)).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.text().await.unwrap(), "ok");
}

#[tokio::test]
async fn anonymous_requests_are_refused_by_every_layer_and_extractor_in_the_handlers_format() {
    let (_issuer, verifier) = verifier().await;
    let app = Router::new()
        .route(
            "/scoped",
            get(|| async { "ok" }).route_layer(RequireScopesLayer::all(["orders:read"])),
        )
        .route(
            "/active",
            get(|| async { "ok" }).route_layer(RequireActiveLayer::new(Duration::from_secs(5))),
        )
        .route("/claims", get(|_: Claims| async { "ok" }))
        .route("/token", get(|_: AccessToken| async { "ok" }))
        .route(
            "/maybe",
            get(|c: Option<Claims>| async move { format!("{}", c.is_some()) }),
        )
        .layer(problem_layer(verifier).optional(true));
    let base = format!("http://{}", serve_axum(app).await);
    let http = reqwest::Client::new();
    for path in ["/scoped", "/active", "/claims", "/token"] {
        let res = http_get(&http, &format!("{base}{path}"), None).await;
        let body = problem(res, StatusCode::UNAUTHORIZED).await;
        assert_eq!(body["code"], "missing_token", "{path}");
    }
    let res = http_get(&http, &format!("{base}/maybe"), None).await;
    assert_eq!(res.text().await.unwrap(), "false");
}

#[tokio::test]
async fn a_handler_asking_for_another_claims_type_gets_500_with_the_verifiers_realm_and_a_log_naming_both_types()
 {
    let (issuer, verifier) = verifier().await;
    let realm = verifier.realm().to_owned();
    let app = Router::new()
        .route("/other", get(|_: Claims<Other>| async { "ok" }))
        .route(
            "/maybe",
            get(|c: Option<Claims<Other>>| async move { format!("{}", c.is_some()) }),
        )
        .route("/standard", get(|_: Claims| async { "ok" }))
        .layer(VerifyLayer::new(verifier.clone()));
    let base = format!("http://{}", serve_axum(app).await);
    let http = reqwest::Client::new();
    let token = issuer.token().audience(AUDIENCE).sign();
    let logs = LogBuffer::default();
    let _guard = logs.install();
    for path in ["/other", "/maybe"] {
        let res = http_get(&http, &format!("{base}{path}"), Some(&token)).await;
        assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR, "{path}");
        assert_eq!(
            res.headers()["www-authenticate"],
            format!("Bearer realm=\"{realm}\"").as_str(),
            "{path}"
        );
    }
    let logs = logs.contents();
    assert!(
        logs.contains("extracts Claims<it::rejections::Other> but VerifyLayer parses Claims<()>"),
        "{logs}"
    );
    assert!(
        logs.contains("with_claims::<it::rejections::Other>()"),
        "{logs}"
    );
    assert_eq!(
        verifier
            .metrics()
            .rejected(authlayer::Reason::ClaimsTypeMismatch),
        2
    );
    let res = http_get(&http, &format!("{base}/standard"), Some(&token)).await;
    assert_eq!(res.status(), StatusCode::OK);
}

/// A gRPC service that answers every call it receives with NOT_FOUND
/// "reached": a refusal never gets that far.
#[derive(Clone)]
struct Reached;

impl tonic::server::NamedService for Reached {
    const NAME: &'static str = "test.Reached";
}

impl tower::Service<http::Request<tonic::body::Body>> for Reached {
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = std::future::Ready<Result<Self::Response, Infallible>>;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Infallible>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: http::Request<tonic::body::Body>) -> Self::Future {
        std::future::ready(Ok(
            tonic::Status::new(tonic::Code::NotFound, "reached").into_http()
        ))
    }
}

/// The codec of a call without messages worth encoding: `()` both ways.
#[derive(Clone, Copy, Default)]
struct Empty;

impl tonic::codec::Codec for Empty {
    type Encode = ();
    type Decode = ();
    type Encoder = Empty;
    type Decoder = Empty;

    fn encoder(&mut self) -> Empty {
        Empty
    }

    fn decoder(&mut self) -> Empty {
        Empty
    }
}

impl tonic::codec::Encoder for Empty {
    type Item = ();
    type Error = tonic::Status;

    fn encode(&mut self, (): (), _: &mut tonic::codec::EncodeBuf<'_>) -> Result<(), tonic::Status> {
        Ok(())
    }
}

impl tonic::codec::Decoder for Empty {
    type Item = ();
    type Error = tonic::Status;

    fn decode(&mut self, _: &mut tonic::codec::DecodeBuf<'_>) -> Result<Option<()>, tonic::Status> {
        Ok(Some(()))
    }
}

async fn call_reached(addr: SocketAddr, token: Option<&str>) -> tonic::Status {
    let channel = tonic::transport::Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.unwrap();
    let mut req = tonic::Request::new(());
    if let Some(token) = token {
        req.metadata_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
    }
    let path = http::uri::PathAndQuery::from_static("/test.Reached/Call");
    grpc.unary::<(), (), _>(req, path, Empty)
        .await
        .expect_err("every call ends in a status")
}

#[tokio::test]
async fn the_on_reject_handler_renders_grpc_refusals_as_grpc_statuses() {
    let (issuer, verifier) = verifier().await;
    // For gRPC requests (all of them here), a status whose message says it
    // came from this handler.
    let layer = VerifyLayer::new(verifier).on_reject(|err, ctx| {
        assert!(ctx.grpc, "a tonic client's call is gRPC");
        let code = tonic::Code::from_i32(i32::from(err.grpc_code()));
        tonic::Status::new(code, format!("problem: {}", err.reason().code()))
            .into_http::<tonic::body::Body>()
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tonic::transport::Server::builder()
        .layer(layer)
        .add_service(RequireScopesLayer::all(["orders:read"]).layer(Reached));
    tokio::spawn(async move {
        server
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener))
            .await
            .unwrap();
    });

    let status = call_reached(addr, None).await;
    assert_eq!(status.code(), tonic::Code::Unauthenticated);
    assert_eq!(status.message(), "problem: missing_token");

    let writer = issuer
        .token()
        .audience(AUDIENCE)
        .scope("orders:write")
        .sign();
    let status = call_reached(addr, Some(&writer)).await;
    assert_eq!(status.code(), tonic::Code::PermissionDenied);
    assert_eq!(status.message(), "problem: insufficient_scope");

    let reader = issuer
        .token()
        .audience(AUDIENCE)
        .scope("orders:read")
        .sign();
    let status = call_reached(addr, Some(&reader)).await;
    assert_eq!(
        (status.code(), status.message()),
        (tonic::Code::NotFound, "reached")
    );
}

#[tokio::test]
async fn a_token_that_does_not_fit_your_claims_type_is_401_and_the_field_is_logged_never_its_value()
{
    #[derive(Debug, serde::Deserialize)]
    struct Mine {
        plan: u64,
    }
    let (issuer, verifier) = verifier().await;
    let app = Router::new()
        .route(
            "/plan",
            get(|c: Claims<Mine>| async move { c.extra().plan.to_string() }),
        )
        .layer(VerifyLayer::new(verifier).with_claims::<Mine>());
    let base = format!("http://{}", serve_axum(app).await);
    let http = reqwest::Client::new();
    let good = issuer.token().audience(AUDIENCE).claim("plan", 3).sign();
    let res = http_get(&http, &format!("{base}/plan"), Some(&good)).await;
    assert_eq!(res.text().await.unwrap(), "3");

    let logs = LogBuffer::default();
    let _guard = logs.install();
    let wrong = issuer
        .token()
        .audience(AUDIENCE)
        .claim("plan", "value-that-must-stay-secret")
        .sign();
    let missing = issuer.token().audience(AUDIENCE).sign();
    for (token, problem) in [(&wrong, "wrong type"), (&missing, "missing")] {
        let res = http_get(&http, &format!("{base}/plan"), Some(token)).await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
        assert!(
            res.headers()["www-authenticate"]
                .to_str()
                .unwrap()
                .contains(r#"error="invalid_token", error_description="invalid claim""#)
        );
        let log = logs.contents();
        let line = log
            .lines()
            .find(|l| l.contains(&format!(r#"problem="{problem}""#)))
            .unwrap_or_else(|| panic!("no {problem} line in {log}"));
        assert!(line.contains("WARN"), "{line}");
        assert!(line.contains(r#"field="plan""#), "{line}");
        assert!(line.contains("rejections::"), "names the type: {line}");
    }
    let log = logs.contents();
    assert!(!log.contains("value-that-must-stay-secret"), "{log}");
    assert!(!log.contains(&wrong) && !log.contains(&missing), "{log}");
}

#[tokio::test]
async fn policies_over_your_own_claims_type_decide_in_the_rule_layers_and_a_wrong_type_never_allows()
 {
    #[derive(Debug, serde::Deserialize)]
    struct Mine {
        plan: String,
    }
    let pro = || Policy::claims_as::<Mine>("pro plan", |c| c.extra().plan == "pro");
    let wrong = || Policy::claims_as::<Other>("other type", |_| true);
    let (issuer, verifier) = verifier().await;
    let ok = || get(|| async { "ok" });
    let app = Router::new()
        .route("/pro", ok().route_layer(RequirePolicyLayer::new(pro())))
        .route(
            "/not-pro",
            ok().route_layer(RequirePolicyLayer::new(Policy::not(pro()))),
        )
        .route("/wrong", ok().route_layer(RequirePolicyLayer::new(wrong())))
        .route(
            "/not-wrong",
            ok().route_layer(RequirePolicyLayer::new(Policy::not(wrong()))),
        )
        .route(
            "/twice-wrong",
            ok().route_layer(RequirePolicyLayer::new(Policy::all([
                wrong(),
                Policy::not(wrong()),
            ]))),
        )
        .layer(VerifyLayer::new(verifier).with_claims::<Mine>());
    let base = format!("http://{}", serve_axum(app).await);
    let http = reqwest::Client::new();
    let token = |plan: &str| issuer.token().audience(AUDIENCE).claim("plan", plan).sign();
    let (pro_token, free_token) = (token("pro"), token("free"));
    let status = |path: &'static str, token: String| {
        let http = http.clone();
        let url = format!("{base}{path}");
        async move { http_get(&http, &url, Some(&token)).await.status() }
    };
    assert_eq!(status("/pro", pro_token.clone()).await, StatusCode::OK);
    assert_eq!(
        status("/pro", free_token.clone()).await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(status("/not-pro", free_token.clone()).await, StatusCode::OK);
    assert_eq!(
        status("/not-pro", pro_token.clone()).await,
        StatusCode::FORBIDDEN
    );

    let logs = LogBuffer::default();
    let _guard = logs.install();
    for path in ["/wrong", "/not-wrong", "/twice-wrong"] {
        let res = http_get(&http, &format!("{base}{path}"), Some(&pro_token)).await;
        assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR, "{path}");
    }
    let log = logs.contents();
    let wiring = log
        .lines()
        .filter(|l| l.contains("has no Claims<it::rejections::Other> to read"))
        .collect::<Vec<_>>();
    // One line per request, even where the policy names the type twice.
    assert_eq!(wiring.len(), 3, "{log}");
    assert!(
        wiring.iter().all(|l| l.contains("ERROR")
            && l.contains("claims are Claims<it::rejections::policies_over")
            && l.contains("with_claims::<it::rejections::Other>()")),
        "{log}"
    );
}
