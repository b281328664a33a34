//! Configuration as a user writes it: what each setting means over HTTP.

use axum::Router;
use axum::routing::get;
use http::StatusCode;

use authlayer::{Claims, VerifyLayer};

use crate::common::{http_get, orders_token, serve_axum, setup};

/// `GET /x` answering the token's `sub`, behind `layer`.
async fn serve(layer: VerifyLayer) -> String {
    let app = Router::new()
        .route(
            "/x",
            get(|c: Claims| async move { c.sub().unwrap_or_default().to_owned() }),
        )
        .layer(layer);
    format!("http://{}/x", serve_axum(app).await)
}

#[tokio::test]
async fn authorization_header_false_reads_only_the_other_sources() {
    let s = setup().await;
    let token = orders_token(&s.issuer).sub("erin").sign();
    let http = reqwest::Client::new();

    // The default reads `Authorization: Bearer`.
    let url = serve(VerifyLayer::new(s.verifier.clone())).await;
    let res = http_get(&http, &url, Some(&token)).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.text().await.unwrap(), "erin");

    // `false`: the header is ignored (a request with only it has no token),
    // the cookie is read, and both together are not two credentials.
    let url = serve(
        VerifyLayer::new(s.verifier.clone())
            .authorization_header(false)
            .token_from_cookie("access_token"),
    )
    .await;
    let res = http_get(&http, &url, Some(&token)).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert!(
        !res.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("error="),
        "a missing token, not an invalid one"
    );
    let res = http
        .get(&url)
        .bearer_auth(&token)
        .header("cookie", format!("access_token={token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.text().await.unwrap(), "erin");
}
