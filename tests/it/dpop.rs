//! DPoP (RFC 9449) over HTTP: a real axum server on loopback, proofs signed
//! by a client's ES256 key, tokens bound to it with `cnf.jkt`. The checks
//! of RFC 9449 §4.3 one by one are the unit tests of `src/dpop`; here each
//! class of fault is seen through the layer once, with the answer a client
//! gets, and the rules only the layer enforces: the downgrade, the schemes,
//! the modes, replay, nonces and the metadata document.

use std::net::SocketAddr;
use std::time::Duration;

use authlayer::test_util::TestIssuer;
use authlayer::{
    Claims, Dpop, ReplayStore, RequireScopesLayer, ResourceMetadata, Verifier, VerifyLayer,
};
use axum::Router;
use axum::routing::{get, post};
use http::StatusCode;

use crate::common::{AUDIENCE, DpopClient, challenge, orders_token, serve_axum};

/// The URL clients call (a proxy in front of the loopback server).
const PUBLIC: &str = "https://api.example";
const NONCE_SECRET: &[u8] = b"a shared nonce secret, 32 bytes+";

async fn verifier(issuer: &TestIssuer, dpop: Option<Dpop>) -> Verifier {
    let mut builder = Verifier::builder()
        .issuer(issuer.issuer())
        .jwks_json(issuer.jwks_json())
        .audience(AUDIENCE)
        .realm("orders");
    if let Some(dpop) = dpop {
        builder = builder.dpop(dpop);
    }
    builder.build().await.unwrap()
}

/// `GET /orders` (any valid token: the subject) and `POST /orders` (scope
/// `orders:write`), behind `layer`.
fn app(layer: VerifyLayer) -> Router {
    let read = get(|c: Claims| async move { c.sub().unwrap_or_default().to_owned() });
    let write = post(|| async { StatusCode::CREATED })
        .route_layer(RequireScopesLayer::all(["orders:write"]));
    Router::new()
        .route("/orders", read.merge(write))
        .layer(layer)
}

struct Server {
    addr: SocketAddr,
    http: reqwest::Client,
}

impl Server {
    async fn start(layer: VerifyLayer) -> Self {
        Self {
            addr: serve_axum(app(layer)).await,
            http: reqwest::Client::new(),
        }
    }

    /// `method path` with each `Authorization` value and each `DPoP` proof.
    async fn send(
        &self,
        method: &str,
        path: &str,
        authorization: &[String],
        proofs: &[String],
    ) -> reqwest::Response {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut request = self
            .http
            .request(method, format!("http://{}{path}", self.addr));
        for value in authorization {
            request = request.header("authorization", value);
        }
        for proof in proofs {
            request = request.header("dpop", proof);
        }
        request.send().await.unwrap()
    }

    /// `GET /orders` as a DPoP client: the token under `DPoP`, a fresh proof.
    async fn dpop_get(&self, client: &DpopClient, token: &str) -> reqwest::Response {
        let proof = client.proof("GET", &format!("{PUBLIC}/orders"), token);
        self.send("GET", "/orders", &[format!("DPoP {token}")], &[proof])
            .await
    }
}

/// A token bound to `client`'s key.
fn bound_token(issuer: &TestIssuer, client: &DpopClient) -> String {
    orders_token(issuer)
        .sub("alice")
        .scope("orders:read")
        .claim("cnf", serde_json::json!({"jkt": client.jkt()}))
        .sign()
}

async fn allowed_server(issuer: &TestIssuer) -> Server {
    let v = verifier(issuer, Some(Dpop::allowed().public_url(PUBLIC))).await;
    Server::start(VerifyLayer::new(v)).await
}

#[tokio::test]
async fn a_bound_token_with_its_proof_is_accepted_and_a_plain_bearer_token_still_is() {
    let issuer = TestIssuer::new("https://id.example");
    let server = allowed_server(&issuer).await;
    let client = DpopClient::new();
    let token = bound_token(&issuer, &client);

    let res = server.dpop_get(&client, &token).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.headers().get("dpop-nonce").is_none());
    assert_eq!(res.text().await.unwrap(), "alice");

    // The scheme in any case; the cache serves the token, the proof is new.
    let proof = client.proof("GET", &format!("{PUBLIC}/orders"), &token);
    let res = server
        .send("GET", "/orders", &[format!("dpop {token}")], &[proof])
        .await;
    assert_eq!(res.status(), StatusCode::OK);

    let bearer = orders_token(&issuer).sub("bob").sign();
    let res = server
        .send("GET", "/orders", &[format!("Bearer {bearer}")], &[])
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.text().await.unwrap(), "bob");
}

#[tokio::test]
async fn without_a_token_both_challenges_are_offered() {
    let issuer = TestIssuer::new("https://id.example");
    let server = allowed_server(&issuer).await;
    let res = server.send("GET", "/orders", &[], &[]).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        challenge(&res),
        r#"Bearer realm="orders", DPoP algs="ES256 ES384 RS256 RS384 RS512 PS256 PS384 PS512 EdDSA""#
    );
}

#[tokio::test]
async fn each_class_of_proof_fault_is_refused_with_invalid_dpop_proof() {
    let issuer = TestIssuer::new("https://id.example");
    let server = allowed_server(&issuer).await;
    let client = DpopClient::new();
    let other = DpopClient::new();
    let token = bound_token(&issuer, &client);
    let url = format!("{PUBLIC}/orders");
    let cases: Vec<(&str, Vec<String>, &str)> = vec![
        ("no proof", vec![], "the request carries no DPoP proof"),
        (
            "two proofs",
            vec![
                client.proof("GET", &url, &token),
                client.proof("GET", &url, &token),
            ],
            "the request carries more than one DPoP proof",
        ),
        ("not a JWT", vec!["not.a.jwt".into()], ""),
        (
            "typ",
            vec![client.proof_with("GET", &url, &token, |h, _| h["typ"] = "JWT".into())],
            "",
        ),
        (
            "signature",
            vec![{
                let p = client.proof("GET", &url, &token);
                let (rest, _) = p.rsplit_once('.').unwrap();
                format!("{rest}.{}", crate::common::b64([7u8; 64]))
            }],
            "",
        ),
        ("htm", vec![client.proof("POST", &url, &token)], ""),
        (
            "htu",
            vec![client.proof("GET", "https://other.example/orders", &token)],
            "",
        ),
        (
            "iat",
            vec![client.proof_with("GET", &url, &token, |_, c| {
                c["iat"] = (crate::common::now() - 3600).into();
            })],
            "",
        ),
        ("ath", vec![client.proof("GET", &url, "another token")], ""),
        ("key", vec![other.proof("GET", &url, &token)], ""),
    ];
    for (name, proofs, description) in cases {
        let res = server
            .send("GET", "/orders", &[format!("DPoP {token}")], &proofs)
            .await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{name}");
        let challenge = challenge(&res);
        assert!(
            challenge.starts_with(r#"Bearer realm="orders", DPoP algs=""#)
                && challenge.contains(r#"error="invalid_dpop_proof""#)
                && !challenge.contains(r#"Bearer realm="orders", error"#),
            "{name}: {challenge}"
        );
        if !description.is_empty() {
            assert!(
                challenge.contains(&format!(r#"error_description="{description}""#)),
                "{name}: {challenge}"
            );
        }
    }
}

#[tokio::test]
async fn a_bound_token_presented_as_bearer_is_refused_in_every_mode() {
    let issuer = TestIssuer::new("https://id.example");
    let client = DpopClient::new();
    let token = bound_token(&issuer, &client);
    for dpop in [
        None,
        Some(Dpop::allowed().public_url(PUBLIC)),
        Some(Dpop::required().public_url(PUBLIC)),
    ] {
        let label = format!("{dpop:?}");
        let server = Server::start(VerifyLayer::new(verifier(&issuer, dpop).await)).await;
        // Even with a valid proof next to it.
        let proof = client.proof("GET", &format!("{PUBLIC}/orders"), &token);
        let res = server
            .send("GET", "/orders", &[format!("Bearer {token}")], &[proof])
            .await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{label}");
        assert!(
            challenge(&res).contains(r#"error="invalid_token""#),
            "{label}: {}",
            challenge(&res)
        );
    }
}

#[tokio::test]
async fn the_dpop_scheme_with_an_unbound_token_is_refused() {
    let issuer = TestIssuer::new("https://id.example");
    let server = allowed_server(&issuer).await;
    let client = DpopClient::new();
    let token = orders_token(&issuer).sub("alice").sign();
    let res = server.dpop_get(&client, &token).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        challenge(&res),
        concat!(
            r#"Bearer realm="orders", DPoP algs="ES256 ES384 RS256 RS384 RS512 PS256 PS384 PS512 EdDSA", "#,
            r#"error="invalid_token", error_description="token under the DPoP scheme is not bound to a key""#
        )
    );
}

#[tokio::test]
async fn both_schemes_or_two_authorization_values_are_a_bad_request() {
    let issuer = TestIssuer::new("https://id.example");
    let server = allowed_server(&issuer).await;
    let client = DpopClient::new();
    let token = bound_token(&issuer, &client);
    let proof = client.proof("GET", &format!("{PUBLIC}/orders"), &token);
    for values in [
        vec![format!("DPoP {token}"), format!("Bearer {token}")],
        vec![format!("DPoP {token}"), format!("DPoP {token}")],
        vec![format!("DPoP {token}"), "Basic dXNlcjpwdw==".to_owned()],
    ] {
        let res = server
            .send("GET", "/orders", &values, std::slice::from_ref(&proof))
            .await;
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{values:?}");
        assert!(challenge(&res).contains(r#"error="invalid_request""#));
    }
}

#[tokio::test]
async fn required_mode_refuses_bearer_and_offers_only_the_dpop_challenge() {
    let issuer = TestIssuer::new("https://id.example");
    let v = verifier(
        &issuer,
        Some(
            Dpop::required()
                .public_url(PUBLIC)
                .algorithms([authlayer::Algorithm::ES256]),
        ),
    )
    .await;
    let server = Server::start(VerifyLayer::new(v)).await;
    let bearer = orders_token(&issuer).sign();
    let res = server
        .send("GET", "/orders", &[format!("Bearer {bearer}")], &[])
        .await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        challenge(&res),
        r#"DPoP realm="orders", algs="ES256", error="invalid_token", error_description="a DPoP-bound token is required""#
    );
    let res = server.send("GET", "/orders", &[], &[]).await;
    assert_eq!(challenge(&res), r#"DPoP realm="orders", algs="ES256""#);

    let client = DpopClient::new();
    let res = server
        .dpop_get(&client, &bound_token(&issuer, &client))
        .await;
    assert_eq!(res.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_route_can_require_dpop_where_the_verifier_allows_both() {
    let issuer = TestIssuer::new("https://id.example");
    let v = verifier(&issuer, Some(Dpop::allowed().public_url(PUBLIC))).await;
    let strict = Server::start(VerifyLayer::new(v.clone()).dpop_required(true)).await;
    let relaxed = Server::start(VerifyLayer::new(v)).await;
    let bearer = orders_token(&issuer).sign();
    let auth = [format!("Bearer {bearer}")];
    assert_eq!(
        strict.send("GET", "/orders", &auth, &[]).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        relaxed.send("GET", "/orders", &auth, &[]).await.status(),
        StatusCode::OK
    );
    let client = DpopClient::new();
    let token = bound_token(&issuer, &client);
    assert_eq!(
        strict.dpop_get(&client, &token).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_replayed_proof_is_refused_by_the_layer() {
    let issuer = TestIssuer::new("https://id.example");
    let server = allowed_server(&issuer).await;
    let client = DpopClient::new();
    let token = bound_token(&issuer, &client);
    let proof = client.proof("GET", &format!("{PUBLIC}/orders"), &token);
    let auth = [format!("DPoP {token}")];
    let first = server
        .send("GET", "/orders", &auth, std::slice::from_ref(&proof))
        .await;
    assert_eq!(first.status(), StatusCode::OK);
    let again = server.send("GET", "/orders", &auth, &[proof]).await;
    assert_eq!(again.status(), StatusCode::UNAUTHORIZED);
    assert!(challenge(&again).contains(r#"error="invalid_dpop_proof""#));
}

#[tokio::test]
async fn a_bound_token_lacking_the_scope_gets_403_on_the_dpop_challenge() {
    let issuer = TestIssuer::new("https://id.example");
    let server = allowed_server(&issuer).await;
    let client = DpopClient::new();
    let token = bound_token(&issuer, &client);
    let proof = client.proof("POST", &format!("{PUBLIC}/orders"), &token);
    let res = server
        .send("POST", "/orders", &[format!("DPoP {token}")], &[proof])
        .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let challenge = challenge(&res);
    assert!(
        challenge.starts_with(r#"Bearer realm="orders", DPoP algs=""#)
            && challenge.ends_with(r#"error="insufficient_scope", error_description="insufficient scope", scope="orders:write""#),
        "{challenge}"
    );
}

/// The nonce a refusal asks for.
fn nonce_of(res: &reqwest::Response) -> String {
    res.headers()["dpop-nonce"].to_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_nonce_is_asked_for_then_accepted_and_replicas_sharing_the_secret_accept_each_others() {
    let issuer = TestIssuer::new("https://id.example");
    let dpop = || Dpop::allowed().public_url(PUBLIC).nonces(NONCE_SECRET);
    let a = Server::start(VerifyLayer::new(verifier(&issuer, Some(dpop())).await)).await;
    let b = Server::start(VerifyLayer::new(verifier(&issuer, Some(dpop())).await)).await;
    let client = DpopClient::new();
    let token = bound_token(&issuer, &client);
    let url = format!("{PUBLIC}/orders");
    let auth = [format!("DPoP {token}")];

    let first = a.dpop_get(&client, &token).await;
    assert_eq!(first.status(), StatusCode::UNAUTHORIZED);
    assert!(
        challenge(&first).contains(r#"error="use_dpop_nonce""#),
        "{}",
        challenge(&first)
    );
    let nonce = nonce_of(&first);

    let with_nonce = |n: &str| {
        let n = n.to_owned();
        client.proof_with("GET", &url, &token, move |_, c| c["nonce"] = n.into())
    };
    let ok = a.send("GET", "/orders", &auth, &[with_nonce(&nonce)]).await;
    assert_eq!(ok.status(), StatusCode::OK);
    // The other replica accepts the nonce the first one issued.
    let ok = b.send("GET", "/orders", &auth, &[with_nonce(&nonce)]).await;
    assert_eq!(ok.status(), StatusCode::OK);
    // A forged nonce is refused with a fresh one.
    let forged = a
        .send("GET", "/orders", &auth, &[with_nonce("forged")])
        .await;
    assert_eq!(forged.status(), StatusCode::UNAUTHORIZED);
    assert!(challenge(&forged).contains(r#"error="use_dpop_nonce""#));
    assert_ne!(nonce_of(&forged), "forged");
}

#[tokio::test]
async fn the_metadata_document_states_the_dpop_algorithms_and_mode() {
    let issuer = TestIssuer::new("https://id.example");
    for (dpop, required) in [(Dpop::allowed(), false), (Dpop::required(), true)] {
        let v = Verifier::builder()
            .issuer(issuer.issuer())
            .jwks_json(issuer.jwks_json())
            .audience(AUDIENCE)
            .resource_metadata(ResourceMetadata::new(PUBLIC))
            .dpop(dpop.algorithms([authlayer::Algorithm::ES256, authlayer::Algorithm::EdDSA]))
            .build()
            .await
            .unwrap();
        let doc: serde_json::Value =
            serde_json::from_str(v.resource_metadata().unwrap().json()).unwrap();
        assert_eq!(
            doc["dpop_signing_alg_values_supported"],
            serde_json::json!(["ES256", "EdDSA"])
        );
        assert_eq!(doc["dpop_bound_access_tokens_required"], required);
    }
}

#[tokio::test]
async fn build_refuses_dpop_settings_that_cannot_work() {
    let issuer = TestIssuer::new("https://id.example");
    let build = |dpop: Dpop| {
        Verifier::builder()
            .issuer(issuer.issuer())
            .jwks_json(issuer.jwks_json())
            .audience(AUDIENCE)
            .dpop(dpop)
            .build()
    };
    let cases = [
        (Dpop::allowed(), "dpop.public_url"),
        (
            Dpop::allowed()
                .public_url(PUBLIC)
                .algorithms([authlayer::Algorithm::HS256]),
            "dpop.algorithms",
        ),
        (
            Dpop::allowed()
                .public_url(PUBLIC)
                .iat_window(Duration::from_secs(3600), Duration::from_secs(5)),
            "dpop.iat_window",
        ),
        (
            Dpop::allowed().public_url(PUBLIC).nonces(b"short".to_vec()),
            "dpop.nonces",
        ),
        (
            Dpop::allowed()
                .public_url(PUBLIC)
                .replay_store(ReplayStore::memory(0)),
            "dpop.replay_store",
        ),
        (
            Dpop::allowed().public_url("http://api.example"),
            "dpop.public_url",
        ),
        (
            Dpop::allowed().public_url("https://api.example/?q=1"),
            "dpop.public_url",
        ),
    ];
    for (dpop, setting) in cases {
        let label = format!("{dpop:?}");
        let err = build(dpop).await.unwrap_err();
        assert_eq!(err.setting(), Some(setting), "{label}: {err}");
    }
    // Forwarded headers alone are enough (behind a proxy that sets them).
    assert!(
        build(Dpop::allowed().trust_forwarded_headers(true))
            .await
            .is_ok()
    );
}

#[cfg(feature = "redis")]
#[tokio::test]
async fn a_proof_accepted_by_one_replica_is_refused_by_another_sharing_redis() {
    let Ok(url) = std::env::var("REDIS_URL") else {
        eprintln!("REDIS_URL is not set (bash .ci/run starts a Redis): skipping");
        return;
    };
    let issuer = TestIssuer::new("https://id.example");
    let dpop = || {
        Dpop::allowed()
            .public_url(PUBLIC)
            .replay_store(ReplayStore::redis(url.clone()))
    };
    let a = Server::start(VerifyLayer::new(verifier(&issuer, Some(dpop())).await)).await;
    let b = Server::start(VerifyLayer::new(verifier(&issuer, Some(dpop())).await)).await;
    let client = DpopClient::new();
    let token = bound_token(&issuer, &client);
    let proof = client.proof("GET", &format!("{PUBLIC}/orders"), &token);
    let auth = [format!("DPoP {token}")];
    let first = a
        .send("GET", "/orders", &auth, std::slice::from_ref(&proof))
        .await;
    assert_eq!(first.status(), StatusCode::OK);
    let replayed = b.send("GET", "/orders", &auth, &[proof]).await;
    assert_eq!(replayed.status(), StatusCode::UNAUTHORIZED);
    assert!(challenge(&replayed).contains(r#"error="invalid_dpop_proof""#));
}

#[cfg(feature = "redis")]
#[tokio::test]
async fn a_bad_redis_url_fails_the_build_naming_the_setting() {
    {
        let issuer = TestIssuer::new("https://id.example");
        let err = Verifier::builder()
            .issuer(issuer.issuer())
            .jwks_json(issuer.jwks_json())
            .audience(AUDIENCE)
            .dpop(
                Dpop::allowed()
                    .public_url(PUBLIC)
                    .replay_store(ReplayStore::redis("not a url")),
            )
            .build()
            .await
            .unwrap_err();
        assert_eq!(err.setting(), Some("dpop.replay_store"), "{err}");
        assert!(!err.to_string().contains("not a url"), "{err}");
    }
}

/// What the audit writer wrote, read back by the test.
#[derive(Clone, Default)]
struct Sink(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Sink {
    fn take(&self, guard: &authlayer::audit::AuditLogGuard) -> Vec<serde_json::Value> {
        guard.flush().unwrap();
        let text = String::from_utf8(std::mem::take(&mut *self.0.lock().unwrap())).unwrap();
        text.lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

#[tokio::test]
async fn the_audit_record_names_the_scheme_and_the_refused_proof_check() {
    use tracing_subscriber::layer::SubscriberExt as _;

    let sink = Sink::default();
    let (recorder, guard) = authlayer::audit::AuditLog::writer(sink.clone())
        .start()
        .unwrap();
    // This thread only: the server runs on this current-thread runtime.
    let _default = tracing::subscriber::set_default(tracing_subscriber::registry().with(recorder));
    let issuer = TestIssuer::new("https://id.example");
    let server = allowed_server(&issuer).await;
    // Hit the audit callsites, recompute their interest, start afresh.
    server.send("GET", "/orders", &[], &[]).await;
    tracing::callsite::rebuild_interest_cache();
    sink.take(&guard);

    let client = DpopClient::new();
    let token = bound_token(&issuer, &client);
    assert_eq!(
        server.dpop_get(&client, &token).await.status(),
        StatusCode::OK
    );
    let proof = client.proof("GET", "https://other.example/orders", &token);
    let res = server
        .send("GET", "/orders", &[format!("DPoP {token}")], &[proof])
        .await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let bearer = orders_token(&issuer).sub("bob").sign();
    let res = server
        .send("GET", "/orders", &[format!("Bearer {bearer}")], &[])
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let records = sink.take(&guard);
    assert_eq!(records.len(), 3, "{records:?}");
    let (allowed, refused, plain) = (&records[0], &records[1], &records[2]);
    assert_eq!(
        (
            &allowed["decision"],
            &allowed["scheme"],
            allowed.get("dpop_proof")
        ),
        (&"allow".into(), &"dpop".into(), None),
        "{allowed}"
    );
    assert_eq!(
        (
            &refused["reason"],
            &refused["scheme"],
            &refused["dpop_proof"]
        ),
        (&"invalid_dpop_proof".into(), &"dpop".into(), &"htu".into()),
        "{refused}"
    );
    assert_eq!(plain["scheme"], "bearer", "{plain}");
}

#[tokio::test]
async fn trusted_forwarded_headers_name_the_url_and_are_ignored_unless_trusted() {
    let issuer = TestIssuer::new("https://id.example");
    let client = DpopClient::new();
    let token = bound_token(&issuer, &client);
    let proxied = "https://edge.example/orders";
    let send = |server: &Server, headers: &[(&str, &str)]| {
        let mut request = server
            .http
            .get(format!("http://{}/orders", server.addr))
            .header("authorization", format!("DPoP {token}"))
            .header("dpop", client.proof("GET", proxied, &token));
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        request.send()
    };
    let forwarded = [
        ("x-forwarded-proto", "https"),
        ("x-forwarded-host", "edge.example"),
    ];

    let trusting = Dpop::allowed().trust_forwarded_headers(true);
    let trusting = Server::start(VerifyLayer::new(verifier(&issuer, Some(trusting)).await)).await;
    assert_eq!(
        send(&trusting, &forwarded).await.unwrap().status(),
        StatusCode::OK
    );
    let res = send(&trusting, &[("forwarded", "proto=https;host=edge.example")])
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    // Two hops' worth of hosts: ambiguous, refused.
    let res = send(
        &trusting,
        &[
            ("x-forwarded-proto", "https"),
            ("x-forwarded-host", "edge.example, evil.example"),
        ],
    )
    .await
    .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    // No forwarded headers and no public URL: the URL cannot be told.
    assert_eq!(
        send(&trusting, &[]).await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );

    // Not trusted: the headers change nothing, the public URL counts.
    let server = allowed_server(&issuer).await;
    let res = send(&server, &forwarded).await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert!(challenge(&res).contains(r#"error="invalid_dpop_proof""#));
}

#[tokio::test]
async fn a_route_requiring_dpop_on_a_verifier_without_it_refuses_every_token() {
    let issuer = TestIssuer::new("https://id.example");
    let v = verifier(&issuer, None).await;
    let server = Server::start(VerifyLayer::new(v).dpop_required(true)).await;
    let bearer = orders_token(&issuer).sign();
    let res = server
        .send("GET", "/orders", &[format!("Bearer {bearer}")], &[])
        .await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        challenge(&res),
        r#"Bearer realm="orders", error="invalid_token", error_description="a DPoP-bound token is required""#
    );
    // The DPoP scheme is not understood there: no token at all.
    let client = DpopClient::new();
    let res = server
        .dpop_get(&client, &bound_token(&issuer, &client))
        .await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(challenge(&res), r#"Bearer realm="orders""#);
}

#[cfg(feature = "redis")]
#[tokio::test]
async fn when_the_shared_replay_store_stops_answering_proofs_are_refused_with_503() {
    use std::io::{BufRead as _, BufReader};
    use std::process::{Child, Command, Stdio};

    /// A redis-server of this test's own, to stop in the middle; killed
    /// and reaped when dropped.
    struct OwnRedis(Child);
    impl Drop for OwnRedis {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    if std::env::var("REDIS_URL").is_err() {
        eprintln!("REDIS_URL is not set (bash .ci/run installs and starts Redis): skipping");
        return;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = Command::new("redis-server")
        .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
        .args(["--save", "", "--appendonly", "no", "--loglevel", "notice"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("redis-server on PATH (.ci/redis.sh installs it)");
    let stdout = child.stdout.take().unwrap();
    let mut redis = OwnRedis(child);
    // Ready when it says so (a signal, not a sleep).
    let ready = BufReader::new(stdout)
        .lines()
        .any(|line| line.unwrap().contains("Ready to accept connections"));
    assert!(ready, "redis-server exited before it was ready");

    let issuer = TestIssuer::new("https://id.example");
    let dpop = Dpop::allowed()
        .public_url(PUBLIC)
        .replay_store(ReplayStore::redis(format!("redis://127.0.0.1:{port}")));
    let server = Server::start(VerifyLayer::new(verifier(&issuer, Some(dpop)).await)).await;
    let client = DpopClient::new();
    let token = bound_token(&issuer, &client);
    assert_eq!(
        server.dpop_get(&client, &token).await.status(),
        StatusCode::OK
    );

    redis.0.kill().unwrap();
    redis.0.wait().unwrap();
    for _ in 0..2 {
        let res = server.dpop_get(&client, &token).await;
        assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(res.headers()["retry-after"], "5");
    }
    // Bearer tokens need no store.
    let bearer = orders_token(&issuer).sign();
    let res = server
        .send("GET", "/orders", &[format!("Bearer {bearer}")], &[])
        .await;
    assert_eq!(res.status(), StatusCode::OK);
}

#[tokio::test]
async fn verify_outside_the_layer_refuses_a_bound_token() {
    let issuer = TestIssuer::new("https://id.example");
    let v = verifier(&issuer, Some(Dpop::allowed().public_url(PUBLIC))).await;
    let client = DpopClient::new();
    let err = v.verify(&bound_token(&issuer, &client)).await.unwrap_err();
    assert_eq!(err.reason(), authlayer::Reason::BoundTokenAsBearer);
    assert!(v.verify(&orders_token(&issuer).sign()).await.is_ok());
}
