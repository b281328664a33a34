//! RFC 9728 protected-resource metadata over HTTP: the document a verifier
//! with `ResourceMetadata` serves (mounted in axum with `route_service`),
//! and the `resource_metadata` (and `scope`) its challenges carry, by
//! default and from a handler of the user's own.

use authlayer::test_util::TestIssuer;
use authlayer::{
    Claims, Policy, RequirePolicyLayer, RequireRolesLayer, RequireScopesLayer, ResourceMetadata,
    Verifier, VerifyLayer,
};
use axum::Router;
use axum::routing::{get, post};
use http::StatusCode;

use crate::common::{AUDIENCE, challenge, http_get, orders_token, serve_axum};

const ISSUER: &str = "https://id.example";

async fn verifier(issuer: &TestIssuer, metadata: Option<ResourceMetadata>) -> Verifier {
    let mut builder = Verifier::builder()
        .issuer(issuer.issuer())
        .jwks_json(issuer.jwks_json())
        .audience(AUDIENCE)
        .realm("orders");
    if let Some(metadata) = metadata {
        builder = builder.resource_metadata(metadata);
    }
    builder.build().await.unwrap()
}

/// Protected routes behind `VerifyLayer`, and the metadata document outside
/// it, as a user mounts them.
fn app(verifier: &Verifier, verify: impl FnOnce(Router) -> Router) -> Router {
    let protected = Router::new()
        .route(
            "/orders",
            post(|| async { StatusCode::CREATED })
                .route_layer(RequireScopesLayer::all(["orders:write", "orders:admin"])),
        )
        .route(
            "/me",
            get(
                |claims: Claims| async move { claims.sub().map(str::to_owned).unwrap_or_default() },
            ),
        )
        .route(
            "/admin",
            get(|| async { "admin" }).route_layer(RequireRolesLayer::all(["admin"])),
        )
        .route(
            "/reports",
            get(|| async { "reports" }).route_layer(RequirePolicyLayer::new(Policy::scopes_any([
                "reports:read",
            ]))),
        )
        .route("/maybe", get(|_: Claims| async { "reached" }));
    let protected = verify(protected);
    match verifier.resource_metadata() {
        Some(metadata) => protected.route_service(metadata.path(), metadata.clone()),
        None => protected,
    }
}

async fn serve(verifier: &Verifier) -> String {
    let layer = VerifyLayer::new(verifier.clone());
    format!(
        "http://{}",
        serve_axum(app(verifier, |r| r.route_layer(layer))).await
    )
}

#[tokio::test]
async fn a_verifier_with_metadata_serves_the_exact_document_at_the_well_known_path() {
    let issuer = TestIssuer::new(ISSUER);
    let v = verifier(
        &issuer,
        Some(
            ResourceMetadata::new("https://api.example")
                .scopes_supported(["orders:read", "orders:write"])
                .resource_name("Orders")
                .resource_documentation("https://docs.example/orders"),
        ),
    )
    .await;
    let base = serve(&v).await;
    let http = reqwest::Client::new();
    let res = http_get(
        &http,
        &format!("{base}/.well-known/oauth-protected-resource"),
        None,
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["content-type"], "application/json");
    assert_eq!(res.headers()["cache-control"], "public, max-age=3600");
    assert_eq!(
        res.text().await.unwrap(),
        r#"{"resource":"https://api.example","authorization_servers":["https://id.example"],"scopes_supported":["orders:read","orders:write"],"bearer_methods_supported":["header"],"resource_name":"Orders","resource_documentation":"https://docs.example/orders"}"#
    );
    let head = http
        .head(format!("{base}/.well-known/oauth-protected-resource"))
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), StatusCode::OK);
    assert_eq!(head.headers()["content-type"], "application/json");
}

#[tokio::test]
async fn a_resource_with_a_path_is_described_at_the_path_suffixed_well_known_url() {
    let issuer = TestIssuer::new(ISSUER);
    let v = verifier(
        &issuer,
        Some(ResourceMetadata::new("https://api.example/api/v1")),
    )
    .await;
    let base = serve(&v).await;
    let http = reqwest::Client::new();
    let res = http_get(
        &http,
        &format!("{base}/.well-known/oauth-protected-resource/api/v1"),
        None,
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    let doc: serde_json::Value = res.json().await.unwrap();
    assert_eq!(doc["resource"], "https://api.example/api/v1");
    // RFC 9728 §3.3: a client that fetched the unsuffixed well-known URL would
    // find another resource than the one it asked about; not served.
    let unsuffixed = http_get(
        &http,
        &format!("{base}/.well-known/oauth-protected-resource"),
        None,
    )
    .await;
    assert_eq!(unsuffixed.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_document_refuses_other_methods_with_405() {
    let issuer = TestIssuer::new(ISSUER);
    let v = verifier(&issuer, Some(ResourceMetadata::new("https://api.example"))).await;
    let base = serve(&v).await;
    let http = reqwest::Client::new();
    for method in [http::Method::POST, http::Method::PUT, http::Method::DELETE] {
        let res = http
            .request(
                method.clone(),
                format!("{base}/.well-known/oauth-protected-resource"),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::METHOD_NOT_ALLOWED, "{method}");
        assert_eq!(res.headers()["allow"], "GET, HEAD", "{method}");
    }
}

const DOCUMENT: &str = "https://api.example/.well-known/oauth-protected-resource";

#[tokio::test]
async fn every_challenge_names_the_document_and_a_scope_refusal_its_scopes() {
    let issuer = TestIssuer::new(ISSUER);
    let v = verifier(&issuer, Some(ResourceMetadata::new("https://api.example"))).await;
    let base = serve(&v).await;
    let http = reqwest::Client::new();

    let res = http_get(&http, &format!("{base}/me"), None).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        challenge(&res),
        format!(r#"Bearer realm="orders", resource_metadata="{DOCUMENT}""#)
    );

    let expired = orders_token(&issuer)
        .expired_for(std::time::Duration::from_secs(3600))
        .sign();
    let res = http_get(&http, &format!("{base}/me"), Some(&expired)).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        challenge(&res),
        format!(
            r#"Bearer realm="orders", error="invalid_token", error_description="token expired", resource_metadata="{DOCUMENT}""#
        )
    );

    let reader = orders_token(&issuer).scope("orders:read").sign();
    let res = http
        .post(format!("{base}/orders"))
        .bearer_auth(&reader)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        challenge(&res),
        format!(
            r#"Bearer realm="orders", error="insufficient_scope", error_description="insufficient scope", scope="orders:write orders:admin", resource_metadata="{DOCUMENT}""#
        )
    );

    // A policy of scopes refuses alike; a rule of roles has no scope to name.
    let res = http_get(&http, &format!("{base}/reports"), Some(&reader)).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        challenge(&res),
        format!(
            r#"Bearer realm="orders", error="insufficient_scope", error_description="insufficient scope", scope="reports:read", resource_metadata="{DOCUMENT}""#
        )
    );
    let res = http_get(&http, &format!("{base}/admin"), Some(&reader)).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        challenge(&res),
        format!(
            r#"Bearer realm="orders", error_description="required role missing", resource_metadata="{DOCUMENT}""#
        )
    );

    let ok = orders_token(&issuer).sub("alice").sign();
    let res = http_get(&http, &format!("{base}/me"), Some(&ok)).await;
    assert_eq!(res.status(), StatusCode::OK);
}

#[tokio::test]
async fn the_claims_extractor_of_an_anonymous_request_challenges_with_the_document_too() {
    let issuer = TestIssuer::new(ISSUER);
    let v = verifier(&issuer, Some(ResourceMetadata::new("https://api.example"))).await;
    let layer = VerifyLayer::new(v.clone()).optional(true);
    let base = format!(
        "http://{}",
        serve_axum(app(&v, |r| r.route_layer(layer))).await
    );
    let http = reqwest::Client::new();
    let res = http_get(&http, &format!("{base}/maybe"), None).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        challenge(&res),
        format!(r#"Bearer realm="orders", resource_metadata="{DOCUMENT}""#)
    );
}

#[tokio::test]
async fn without_metadata_challenges_are_as_before() {
    let issuer = TestIssuer::new(ISSUER);
    let v = verifier(&issuer, None).await;
    assert!(v.resource_metadata().is_none());
    let base = serve(&v).await;
    let http = reqwest::Client::new();
    let res = http_get(&http, &format!("{base}/me"), None).await;
    assert_eq!(challenge(&res), r#"Bearer realm="orders""#);
    let res = http_get(
        &http,
        &format!("{base}/.well-known/oauth-protected-resource"),
        None,
    )
    .await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_handler_of_the_users_own_renders_the_same_challenge_from_its_context() {
    let issuer = TestIssuer::new(ISSUER);
    let v = verifier(&issuer, Some(ResourceMetadata::new("https://api.example"))).await;
    let layer = VerifyLayer::new(v.clone()).on_reject(|err, ctx| {
        let mut res = axum::response::Response::new(axum::body::Body::from(format!(
            "{} {}",
            err.reason().code(),
            ctx.resource_metadata.unwrap_or("none")
        )));
        *res.status_mut() = err.status();
        res.headers_mut().insert(
            http::header::WWW_AUTHENTICATE,
            err.www_authenticate(ctx).parse().unwrap(),
        );
        res
    });
    let base = format!(
        "http://{}",
        serve_axum(app(&v, |r| r.route_layer(layer))).await
    );
    let http = reqwest::Client::new();

    let res = http_get(&http, &format!("{base}/me"), None).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        challenge(&res),
        format!(r#"Bearer realm="orders", resource_metadata="{DOCUMENT}""#)
    );
    assert_eq!(
        res.text().await.unwrap(),
        format!("missing_token {DOCUMENT}")
    );

    // The rule layer behind renders with the same handler and context.
    let reader = orders_token(&issuer).scope("orders:read").sign();
    let res = http
        .post(format!("{base}/orders"))
        .bearer_auth(&reader)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        challenge(&res),
        format!(
            r#"Bearer realm="orders", error="insufficient_scope", error_description="insufficient scope", scope="orders:write orders:admin", resource_metadata="{DOCUMENT}""#
        )
    );
    assert_eq!(
        res.text().await.unwrap(),
        format!("insufficient_scope {DOCUMENT}")
    );
}
