//! The `orders.v1.Orders` tonic service of the `orders_grpc` example behind
//! `VerifyLayer`, with its per-method rule table, over real gRPC.

use authlayer::test_util::TestIssuer;
use authlayer::{ClaimSources, RequireScopesLayer, Verifier, VerifyLayer};
use tonic::Code;
use tonic::transport::{Channel, Server};
use tower::Layer;

use crate::common::{AUDIENCE, Setup, grpc_client, orders_token, serve_grpc, setup, with_token};
use crate::orders_grpc;
use crate::orders_grpc::OrdersService;
use crate::orders_grpc::pb::orders_client::OrdersClient;
use crate::orders_grpc::pb::orders_server::OrdersServer;
use crate::orders_grpc::pb::{CreateOrderRequest, GetOrderRequest};

/// A client of the `orders_grpc` example's server, verifying with `s`.
async fn orders(s: &Setup) -> OrdersClient<Channel> {
    grpc_client(serve_grpc(orders_grpc::router(s.verifier.clone())).await).await
}

#[tokio::test]
async fn valid_token_calls_get_order() {
    let s = setup().await;
    let mut c = orders(&s).await;
    let token = orders_token(&s.issuer)
        .sub("alice")
        .scope("orders:read")
        .sign();
    let order = c
        .get_order(with_token(GetOrderRequest { id: 9 }, &token))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(order.id, 9);
    assert_eq!(order.owner, "alice");
}

#[tokio::test]
async fn missing_token_is_unauthenticated() {
    let s = setup().await;
    let mut c = orders(&s).await;
    let status = c.get_order(GetOrderRequest { id: 1 }).await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    assert_eq!(status.message(), "no bearer token");
}

#[tokio::test]
async fn invalid_tokens_are_unauthenticated() {
    let s = setup().await;
    let mut c = orders(&s).await;
    let expired = orders_token(&s.issuer)
        .scope("orders:read")
        .expired_for(std::time::Duration::from_secs(600))
        .sign();
    let wrong_aud = s
        .issuer
        .token()
        .audience("urn:other")
        .scope("orders:read")
        .sign();
    for (token, message) in [
        ("garbage", "malformed token"),
        (expired.as_str(), "token expired"),
        (wrong_aud.as_str(), "wrong audience"),
    ] {
        let status = c
            .get_order(with_token(GetOrderRequest { id: 1 }, token))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::Unauthenticated, "{message}");
        assert_eq!(status.message(), message);
    }
}

#[tokio::test]
async fn missing_method_scope_is_permission_denied() {
    let s = setup().await;
    let mut c = orders(&s).await;
    let token = orders_token(&s.issuer).scope("orders:read").sign();
    let status = c
        .create_order(with_token(
            CreateOrderRequest {
                item: "widget".into(),
                quantity: 1,
            },
            &token,
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    let token = orders_token(&s.issuer).scope("orders:write").sign();
    let order = c
        .create_order(with_token(
            CreateOrderRequest {
                item: "gadget".into(),
                quantity: 2,
            },
            &token,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(order.item, "gadget");
}

#[tokio::test]
async fn require_scopes_wraps_a_generated_server() {
    let s = setup().await;
    // Per-service scopes: RequireScopes wraps one generated server and
    // forwards its NamedService name.
    let read_only = Server::builder()
        .layer(VerifyLayer::new(s.verifier.clone()))
        .add_service(
            RequireScopesLayer::all(["orders:read"]).layer(OrdersServer::new(OrdersService)),
        );
    let mut c = grpc_client(serve_grpc(read_only).await).await;
    let reader = orders_token(&s.issuer).scope("orders:read").sign();
    assert!(
        c.get_order(with_token(GetOrderRequest { id: 1 }, &reader))
            .await
            .is_ok()
    );
    let look_alike = orders_token(&s.issuer).scope("orders:reader").sign();
    let status = c
        .get_order(with_token(GetOrderRequest { id: 1 }, &look_alike))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    assert_eq!(status.message(), "insufficient scope");
}

#[tokio::test]
async fn every_algorithm_over_grpc() {
    use authlayer::Algorithm;
    use authlayer::test_util::kids;
    let s = setup().await;
    let mut c = orders(&s).await;
    for (kid, alg) in [
        (kids::RSA, Algorithm::RS256),
        (kids::RSA, Algorithm::PS256),
        (kids::EC, Algorithm::ES256),
        (kids::ED, Algorithm::EdDSA),
    ] {
        let token = orders_token(&s.issuer)
            .scope("orders:read")
            .key(kid)
            .alg(alg)
            .sign();
        assert!(
            c.get_order(with_token(GetOrderRequest { id: 1 }, &token))
                .await
                .is_ok(),
            "{alg:?}"
        );
    }
}

#[tokio::test]
async fn raw_grpc_rejection_is_trailers_only() {
    let s = setup().await;
    let addr = serve_grpc(orders_grpc::router(s.verifier.clone())).await;
    // An HTTP/2 gRPC request without a token, seen at the wire level.
    let http = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let res = http
        .post(format!("http://{addr}/orders.v1.Orders/GetOrder"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(vec![0u8, 0, 0, 0, 0])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["grpc-status"], "16");
    assert_eq!(res.headers()["content-type"], "application/grpc");
    assert!(res.bytes().await.unwrap().is_empty());
}

#[tokio::test]
async fn grpc_method_table_replaces_handler_checks_with_the_same_statuses() {
    let issuer = TestIssuer::new("https://idp.test");
    let verifier = Verifier::builder()
        .issuer(issuer.issuer())
        .jwks_json(issuer.jwks_json())
        .audience(AUDIENCE)
        .claims(ClaimSources::rfc9068())
        .build()
        .await
        .unwrap();
    let addr = serve_grpc(orders_grpc::router(verifier)).await;
    let mut client = grpc_client(addr).await;
    let reader = orders_token(&issuer)
        .sub("alice")
        .scope("orders:read")
        .sign();
    let order = client
        .get_order(with_token(GetOrderRequest { id: 7 }, &reader))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((order.id, order.owner.as_str()), (7, "alice"));
    let create = CreateOrderRequest {
        item: "x".into(),
        quantity: 1,
    };
    let status = client
        .create_order(with_token(create.clone(), &reader))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    let status = client
        .create_order(tonic::Request::new(create))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
}

/// DPoP over gRPC: `htm` is POST and `htu` the public URL + the method's
/// path; a nonce challenge is UNAUTHENTICATED with `dpop-nonce` in the
/// metadata; a bound token sent as Bearer is UNAUTHENTICATED.
#[tokio::test]
async fn dpop_bound_tokens_call_with_a_proof_of_the_method_path() {
    use crate::common::DpopClient;
    use authlayer::Dpop;

    const PUBLIC: &str = "https://grpc.example";
    let s = setup().await;
    let verifier = Verifier::builder()
        .issuer(s.server.issuer_url())
        .audience(AUDIENCE)
        .dpop(
            Dpop::allowed()
                .public_url(PUBLIC)
                .nonces(b"a nonce secret of at least 32 bytes".to_vec()),
        )
        .build()
        .await
        .unwrap();
    let mut c = grpc_client(serve_grpc(orders_grpc::router(verifier)).await).await;
    let client = DpopClient::new();
    let token = orders_token(&s.issuer)
        .sub("alice")
        .scope("orders:read")
        .claim("cnf", serde_json::json!({"jkt": client.jkt()}))
        .sign();
    let htu = format!("{PUBLIC}/orders.v1.Orders/GetOrder");
    let call = |proof: String| {
        let mut req = tonic::Request::new(GetOrderRequest { id: 4 });
        req.metadata_mut()
            .insert("authorization", format!("DPoP {token}").parse().unwrap());
        req.metadata_mut().insert("dpop", proof.parse().unwrap());
        req
    };

    let status = c
        .get_order(call(client.proof("POST", &htu, &token)))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    let nonce = status
        .metadata()
        .get("dpop-nonce")
        .expect("a nonce")
        .to_str()
        .unwrap()
        .to_owned();

    let with_nonce = |method: &str, htu: &str| {
        let nonce = nonce.clone();
        client.proof_with(method, htu, &token, move |_, claims| {
            claims["nonce"] = nonce.into();
        })
    };
    let order = c
        .get_order(call(with_nonce("POST", &htu)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((order.id, order.owner.as_str()), (4, "alice"));
    // GET is not the method a gRPC call is made with; another method's path is another URI.
    for proof in [
        with_nonce("GET", &htu),
        with_nonce("POST", &format!("{PUBLIC}/orders.v1.Orders/CreateOrder")),
    ] {
        let status = c.get_order(call(proof)).await.unwrap_err();
        assert_eq!(status.code(), Code::Unauthenticated);
        assert_eq!(status.message(), "invalid DPoP proof");
    }
    // The downgrade.
    let status = c
        .get_order(with_token(GetOrderRequest { id: 4 }, &token))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
}
