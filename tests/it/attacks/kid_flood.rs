//! The random-`kid` `DoS`: a flood of tokens naming unknown keys costs at most
//! one JWKS fetch per cooldown window, and every one is refused promptly.

use std::time::Duration;

use authlayer::test_util::{TestIssuer, kids};
use authlayer::{Algorithm, Verifier};
use reqwest::StatusCode;
use reqwest::header::WWW_AUTHENTICATE;
use serde_json::{Value, json};

use super::corpus::builders::{claims_with, header, now, sign};
use super::corpus::{AUD, ISS};
use crate::common::{http_get, orders_app, serve_axum};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_kid_flood_costs_at_most_one_fetch() {
    let issuer = TestIssuer::new(ISS);
    let server = issuer.serve().await;
    let verifier = Verifier::builder()
        .issuer(server.issuer_url())
        .jwks_url(server.jwks_url())
        .audience(AUD)
        .fetch_timeout(Duration::from_secs(2))
        .build()
        .await
        .expect("verifier");
    let fetches_at_start = server.requests();
    assert_eq!(fetches_at_start, 1, "one fetch at build time");
    let addr = serve_axum(orders_app(verifier.clone())).await;
    let url = format!("http://{addr}/orders/1");
    let http = reqwest::Client::new();
    let payload = claims_with("iss", json!(server.issuer_url()));
    let mut flood = tokio::task::JoinSet::new();
    for i in 0..64 {
        let h = Value::Object(header("RS256", Some(&format!("random-{i}-{}", now())))).to_string();
        let token = sign(&issuer, &h, &payload, kids::RSA, Algorithm::RS256);
        let (http, url) = (http.clone(), url.clone());
        flood.spawn(async move {
            let response = http_get(&http, &url, Some(&token)).await;
            (
                response.status(),
                response.headers().get(WWW_AUTHENTICATE).cloned(),
            )
        });
    }
    let want = r#"error="invalid_token", error_description="unknown signing key""#;
    let mut refused = 0;
    while let Some(result) = flood.join_next().await {
        let (status, challenge) = result.expect("task");
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        let challenge = challenge.expect("challenge");
        assert!(
            challenge.to_str().expect("ASCII").ends_with(want),
            "{challenge:?}"
        );
        refused += 1;
    }
    let fetches = server.requests() - fetches_at_start;
    println!("random-kid flood: {refused} requests refused, {fetches} JWKS fetch(es)");
    assert_eq!(refused, 64);
    assert!(fetches <= 1, "{fetches} fetches for one cooldown window");
    // The real keys still work.
    let h = Value::Object(header("RS256", Some(kids::RSA))).to_string();
    let good = sign(&issuer, &h, &payload, kids::RSA, Algorithm::RS256);
    let response = http_get(&http, &url, Some(&good)).await;
    assert_eq!(response.status(), StatusCode::OK);
}
