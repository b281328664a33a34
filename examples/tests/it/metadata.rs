//! The RFC 9728 contract of the `orders` binary: `AUTH_PUBLIC_URL` (default
//! `http://127.0.0.1:$PORT`, the port bound) is the resource of
//! `GET /.well-known/oauth-protected-resource`, whose authorization server
//! is `AUTH_ISSUER`, and every challenge names that document.

use std::process::Command;

use authlayer::test_util::TestIssuer;
use serde_json::json;

use crate::common::{challenge, http_get, orders_token};
use crate::examples::{example, start};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_serves_its_metadata_at_its_bound_address_and_names_it_in_challenges() {
    let issuer = TestIssuer::new("pending");
    let server = issuer.serve().await;
    let orders = start("orders", &[("AUTH_ISSUER", server.issuer_url())]);
    let base = format!("http://{}", orders.addr);
    let http = reqwest::Client::new();

    let document = format!("{base}/.well-known/oauth-protected-resource");
    let res = http_get(&http, &document, None).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "application/json");
    let metadata: serde_json::Value = res.json().await.unwrap();
    assert_eq!(
        metadata,
        json!({
            "resource": base,
            "authorization_servers": [server.issuer_url()],
            "scopes_supported": ["orders:read", "orders:write"],
            "bearer_methods_supported": ["header"],
            "dpop_signing_alg_values_supported":
                ["ES256", "ES384", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "EdDSA"],
            "dpop_bound_access_tokens_required": false,
        })
    );

    let res = http_get(&http, &format!("{base}/orders/1"), None).await;
    assert_eq!(res.status(), 401);
    let challenge_401 = challenge(&res);
    assert!(
        challenge_401.starts_with("Bearer ")
            && challenge_401.contains(&format!("resource_metadata=\"{document}\"")),
        "{challenge_401}"
    );

    let read = orders_token(&issuer).scope("orders:read").sign();
    let res = http
        .post(format!("{base}/orders"))
        .bearer_auth(&read)
        .json(&json!({"item": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    let challenge_403 = challenge(&res);
    for part in [
        "error=\"insufficient_scope\"".to_owned(),
        "scope=\"orders:write\"".to_owned(),
        format!("resource_metadata=\"{document}\""),
    ] {
        assert!(challenge_403.contains(&part), "{challenge_403}");
    }

    let res = http.post(&document).send().await.unwrap();
    assert_eq!(res.status(), 405);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_takes_its_resource_from_auth_public_url_path_included() {
    let issuer = TestIssuer::new("pending");
    let server = issuer.serve().await;
    let public = "https://orders.example/api";
    let orders = start(
        "orders",
        &[
            ("AUTH_ISSUER", server.issuer_url()),
            ("AUTH_PUBLIC_URL", public),
        ],
    );
    let base = format!("http://{}", orders.addr);
    let http = reqwest::Client::new();

    // RFC 9728 §3.1: the resource's path follows the well-known path.
    let res = http_get(
        &http,
        &format!("{base}/.well-known/oauth-protected-resource/api"),
        None,
    )
    .await;
    assert_eq!(res.status(), 200);
    let metadata: serde_json::Value = res.json().await.unwrap();
    assert_eq!(metadata["resource"], public);
    assert_eq!(
        metadata["authorization_servers"],
        json!([server.issuer_url()])
    );

    let res = http_get(&http, &format!("{base}/me"), None).await;
    assert_eq!(res.status(), 401);
    let challenge = challenge(&res);
    assert!(
        challenge.contains(
            "resource_metadata=\"https://orders.example/.well-known/oauth-protected-resource/api\""
        ),
        "{challenge}"
    );
}

#[test]
fn orders_refuses_to_start_with_a_plain_http_public_url_on_another_host() {
    let out = Command::new(example("orders"))
        .env("AUTH_ISSUER", "http://127.0.0.1:9")
        .env("AUTH_PUBLIC_URL", "http://orders.example")
        .env("PORT", "0")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("http://orders.example") && stderr.contains("(resource_metadata)"),
        "{stderr}"
    );
}
