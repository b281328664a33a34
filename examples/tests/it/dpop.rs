//! The DPoP contract of the `orders` binary: `AUTH_DPOP` (`allowed` by
//! default, `required`, `off`), `AUTH_DPOP_NONCE`, and `AUTH_PUBLIC_URL` as
//! the URL proofs name; a request without a token is challenged with both
//! schemes and the metadata document; a bound token without
//! `orders:write` gets 403 on `POST /orders`.

use authlayer::test_util::TestIssuer;
use serde_json::json;

use crate::common::{DpopClient, challenge, http_get, orders_token};
use crate::examples::start;

const ALGS: &str = "ES256 ES384 RS256 RS384 RS512 PS256 PS384 PS512 EdDSA";

fn bound(issuer: &TestIssuer, client: &DpopClient, scope: &str) -> String {
    orders_token(issuer)
        .sub("alice")
        .scope(scope)
        .claim("cnf", json!({"jkt": client.jkt()}))
        .sign()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_allows_dpop_by_default_and_challenges_with_both_schemes() {
    let issuer = TestIssuer::new("pending");
    let server = issuer.serve().await;
    let orders = start("orders", &[("AUTH_ISSUER", server.issuer_url())]);
    let base = format!("http://{}", orders.addr);
    let document = format!("{base}/.well-known/oauth-protected-resource");
    let http = reqwest::Client::new();

    let res = http_get(&http, &format!("{base}/orders/1"), None).await;
    assert_eq!(res.status(), 401);
    assert_eq!(
        challenge(&res),
        format!(
            r#"Bearer realm="{}", resource_metadata="{document}", DPoP algs="{ALGS}""#,
            server.issuer_url()
        )
    );
    let metadata: serde_json::Value = http_get(&http, &document, None).await.json().await.unwrap();
    assert_eq!(metadata["dpop_bound_access_tokens_required"], false);
    assert_eq!(metadata["dpop_signing_alg_values_supported"][0], "ES256");

    let client = DpopClient::new();
    let read = bound(&issuer, &client, "orders:read");
    let get = |proof: String| {
        http.get(format!("{base}/orders/1"))
            .header("authorization", format!("DPoP {read}"))
            .header("dpop", proof)
            .send()
    };
    let res = get(client.proof("GET", &format!("{base}/orders/1"), &read))
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    // The same token as Bearer: the downgrade is refused.
    let res = http_get(&http, &format!("{base}/orders/1"), Some(&read)).await;
    assert_eq!(res.status(), 401);
    // A proof for another URL than AUTH_PUBLIC_URL's.
    let res = get(client.proof("GET", "https://elsewhere.example/orders/1", &read))
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    assert!(challenge(&res).contains(r#"error="invalid_dpop_proof""#));

    // A bound token without orders:write: 403, as for a bearer token.
    let res = http
        .post(format!("{base}/orders"))
        .header("authorization", format!("DPoP {read}"))
        .header(
            "dpop",
            client.proof("POST", &format!("{base}/orders"), &read),
        )
        .json(&json!({"item": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    assert!(challenge(&res).contains(r#"error="insufficient_scope""#));
    // Bearer tokens without a binding still work.
    let plain = orders_token(&issuer).scope("orders:read").sign();
    let res = http_get(&http, &format!("{base}/orders/1"), Some(&plain)).await;
    assert_eq!(res.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_with_auth_dpop_required_refuses_bearer_and_says_so_in_its_metadata() {
    let issuer = TestIssuer::new("pending");
    let server = issuer.serve().await;
    let public = "https://orders.example";
    let orders = start(
        "orders",
        &[
            ("AUTH_ISSUER", server.issuer_url()),
            ("AUTH_PUBLIC_URL", public),
            ("AUTH_DPOP", "required"),
        ],
    );
    let base = format!("http://{}", orders.addr);
    let http = reqwest::Client::new();
    let metadata: serde_json::Value = http_get(
        &http,
        &format!("{base}/.well-known/oauth-protected-resource"),
        None,
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(metadata["dpop_bound_access_tokens_required"], true);

    let plain = orders_token(&issuer).scope("orders:read").sign();
    let res = http_get(&http, &format!("{base}/orders/1"), Some(&plain)).await;
    assert_eq!(res.status(), 401);
    assert!(challenge(&res).starts_with("DPoP "), "{}", challenge(&res));

    // Proofs name AUTH_PUBLIC_URL, not the address the server bound.
    let client = DpopClient::new();
    let read = bound(&issuer, &client, "orders:read");
    let res = http
        .get(format!("{base}/orders/1"))
        .header("authorization", format!("DPoP {read}"))
        .header(
            "dpop",
            client.proof("GET", &format!("{public}/orders/1"), &read),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_with_auth_dpop_off_has_no_dpop_challenge_and_refuses_bound_tokens() {
    let issuer = TestIssuer::new("pending");
    let server = issuer.serve().await;
    let orders = start(
        "orders",
        &[("AUTH_ISSUER", server.issuer_url()), ("AUTH_DPOP", "off")],
    );
    let base = format!("http://{}", orders.addr);
    let http = reqwest::Client::new();
    let res = http_get(&http, &format!("{base}/orders/1"), None).await;
    assert!(!challenge(&res).contains("DPoP"), "{}", challenge(&res));
    let client = DpopClient::new();
    let read = bound(&issuer, &client, "orders:read");
    let res = http_get(&http, &format!("{base}/orders/1"), Some(&read)).await;
    assert_eq!(res.status(), 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_with_auth_dpop_nonce_asks_for_a_nonce_then_accepts_it() {
    let issuer = TestIssuer::new("pending");
    let server = issuer.serve().await;
    let orders = start(
        "orders",
        &[
            ("AUTH_ISSUER", server.issuer_url()),
            ("AUTH_DPOP_NONCE", "1"),
        ],
    );
    let base = format!("http://{}", orders.addr);
    let url = format!("{base}/orders/1");
    let http = reqwest::Client::new();
    let client = DpopClient::new();
    let read = bound(&issuer, &client, "orders:read");
    let send = |proof: String| {
        http.get(&url)
            .header("authorization", format!("DPoP {read}"))
            .header("dpop", proof)
            .send()
    };
    let res = send(client.proof("GET", &url, &read)).await.unwrap();
    assert_eq!(res.status(), 401);
    assert!(challenge(&res).contains(r#"error="use_dpop_nonce""#));
    let nonce = res.headers()["dpop-nonce"].to_str().unwrap().to_owned();
    let proof = client.proof_with("GET", &url, &read, |_, c| c["nonce"] = nonce.into());
    assert_eq!(send(proof).await.unwrap().status(), 200);
}
