//! Outbound identity: the caller's token, an exchanged one or the service's
//! own on calls to other services, through a tonic client, a hyper client
//! and reqwest, against the example issuer and the orders services.

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use authlayer::outbound::{
    AttachTokenLayer, ClientCredentials, OutboundError, OutboundToken, TokenExchange,
};
use authlayer::{AccessToken, CacheSize, VerifyLayer};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use tokio::time::Instant;
use tonic::transport::Channel;
use tower::{ServiceBuilder, ServiceExt};

use crate::common::{b64_decode, orders_token, serve_axum, serve_grpc, setup};
use crate::gateway::{ORDERS, System, issuer_config};
use crate::issuer;
use crate::issuer::config::{GATEWAY_AUDIENCE, GRANT_CLIENT_CREDENTIALS};
use crate::orders;
use crate::orders_grpc;
use crate::orders_grpc::pb::GetOrderRequest;
use crate::orders_grpc::pb::orders_client::OrdersClient;

fn payload(token: &str) -> Value {
    let part = token.split('.').nth(1).expect("a JWS payload");
    serde_json::from_slice(&b64_decode(part).expect("base64url")).expect("JSON")
}

type HyperClient = Client<HttpConnector, Full<Bytes>>;

fn hyper_client() -> HyperClient {
    Client::builder(TokioExecutor::new()).build_http()
}

/// `GET url` through `AttachTokenLayer(policy)` on a hyper client, with
/// `caller` as the request's AccessToken; the status and JSON body.
async fn hyper_get(policy: OutboundToken, url: &str, caller: Option<AccessToken>) -> (u16, Value) {
    let client = ServiceBuilder::new()
        .layer(AttachTokenLayer::new(policy))
        .service(hyper_client());
    let mut req = http::Request::get(url)
        .body(Full::new(Bytes::new()))
        .unwrap();
    if let Some(token) = caller {
        req.extensions_mut().insert(token);
    }
    let res = client.oneshot(req).await.expect("the call goes through");
    let status = res.status().as_u16();
    let body = res.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

#[tokio::test]
async fn the_callers_token_reaches_a_grpc_service_through_a_tonic_client() {
    let s = setup().await;
    let grpc = serve_grpc(orders_grpc::router(s.verifier.clone())).await;
    let channel = Channel::from_shared(format!("http://{grpc}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let client = OrdersClient::new(
        ServiceBuilder::new()
            .layer(AttachTokenLayer::new(OutboundToken::forward()))
            .service(channel),
    );
    // A front service that looks orders up on its caller's behalf.
    let front = Router::new()
        .route(
            "/orders/{id}",
            get(move |token: AccessToken, Path(id): Path<u64>| {
                let mut client = client.clone();
                async move {
                    let mut req = tonic::Request::new(GetOrderRequest { id });
                    req.extensions_mut().insert(token);
                    match client.get_order(req).await {
                        Ok(order) => (StatusCode::OK, order.into_inner().owner),
                        Err(status) => (StatusCode::BAD_GATEWAY, format!("{:?}", status.code())),
                    }
                }
            }),
        )
        .layer(VerifyLayer::new(s.verifier.clone()));
    let front = serve_axum(front).await;
    let http = reqwest::Client::new();
    let call = |token: String| {
        let http = http.clone();
        async move {
            let res = http
                .get(format!("http://{front}/orders/5"))
                .bearer_auth(token)
                .send()
                .await
                .unwrap();
            (res.status().as_u16(), res.text().await.unwrap())
        }
    };
    let reader = orders_token(&s.issuer)
        .sub("alice")
        .scope("orders:read")
        .sign();
    assert_eq!(call(reader).await, (200, "alice".to_owned()));
    // The downstream judges the forwarded token itself: without its scope,
    // the gRPC service refuses.
    let writer = orders_token(&s.issuer)
        .sub("bob")
        .scope("orders:write")
        .sign();
    assert_eq!(call(writer).await, (502, "PermissionDenied".to_owned()));
}

#[tokio::test]
async fn the_callers_token_reaches_an_http_service_through_a_hyper_client_and_reqwest() {
    let s = setup().await;
    let orders = serve_axum(orders::app(s.verifier.clone())).await;
    let me = format!("http://{orders}/me");
    let token = AccessToken::new(orders_token(&s.issuer).sub("alice").sign());

    let (status, claims) = hyper_get(OutboundToken::forward(), &me, Some(token.clone())).await;
    assert_eq!((status, &claims["sub"]), (200, &json!("alice")));

    // reqwest: the same policy through `authorize`.
    let http = reqwest::Client::new();
    let mut request = http.get(&me).build().unwrap();
    OutboundToken::forward()
        .authorize(request.headers_mut(), Some(&token))
        .await
        .unwrap();
    let res = http.execute(request).await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<Value>().await.unwrap()["sub"], "alice");

    // Nothing to forward: an error, and no request.
    let client = ServiceBuilder::new()
        .layer(AttachTokenLayer::new(OutboundToken::forward()))
        .service(hyper_client());
    let err = client
        .oneshot(
            http::Request::get(&me)
                .body(Full::new(Bytes::new()))
                .unwrap(),
        )
        .await
        .unwrap_err();
    assert_eq!(
        err.downcast_ref::<OutboundError>(),
        Some(&OutboundError::NoToken)
    );
    let mut request = http.get(&me).build().unwrap();
    let err = OutboundToken::forward()
        .authorize(request.headers_mut(), None)
        .await
        .unwrap_err();
    assert_eq!(err, OutboundError::NoToken);
    assert!(request.headers().get("authorization").is_none());
}

/// A `/token` endpoint in front of `target` that counts the requests it
/// passes on.
async fn counting_token_endpoint(target: String) -> (String, Arc<AtomicUsize>) {
    let calls: Arc<AtomicUsize> = Arc::default();
    let state = (target, calls.clone(), reqwest::Client::new());
    let app = Router::new()
        .route(
            "/token",
            post(
                |State((target, calls, http)): State<(
                    String,
                    Arc<AtomicUsize>,
                    reqwest::Client,
                )>,
                 headers: HeaderMap,
                 body: Bytes| async move {
                    calls.fetch_add(1, Ordering::SeqCst);
                    let mut req = http.post(&target).body(body);
                    for name in ["authorization", "content-type"] {
                        if let Some(v) = headers.get(name) {
                            req = req.header(name, v);
                        }
                    }
                    let res = req.send().await.unwrap();
                    let status = StatusCode::from_u16(res.status().as_u16()).unwrap();
                    (
                        status,
                        [("content-type", "application/json")],
                        res.bytes().await.unwrap(),
                    )
                        .into_response()
                },
            ),
        )
        .with_state(state);
    let addr = serve_axum(app).await;
    (format!("http://{addr}/token"), calls)
}

#[tokio::test]
async fn an_exchanged_token_carries_the_downstream_audience_and_is_cached() {
    let sys = System::start().await;
    let (url, calls) = counting_token_endpoint(sys.token_url()).await;
    let exchange = TokenExchange::builder(&url, "gateway", "gateway-secret")
        .build()
        .unwrap();
    let subject = AccessToken::new(sys.login(GATEWAY_AUDIENCE).await);
    let first = exchange.exchange(&subject, ORDERS).await.unwrap();
    assert_ne!(first, subject);
    let claims = payload(first.as_str());
    assert_eq!(claims["aud"], ORDERS);
    assert_eq!(claims["sub"], "demo");
    assert_eq!(claims["client_id"], "gateway");
    assert!(claims["exp"].as_i64() <= payload(subject.as_str())["exp"].as_i64());
    // The downstream service accepts it.
    let (status, me) = hyper_get(
        OutboundToken::forward(),
        &format!("http://{}/me", sys.orders),
        Some(first.clone()),
    )
    .await;
    assert_eq!((status, &me["aud"]), (200, &json!([ORDERS])));

    // Cached: the same token, no second issuer call.
    assert_eq!(exchange.exchange(&subject, ORDERS).await.unwrap(), first);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(exchange.stats().cache_hits, 1);

    // Per subject token; concurrent exchanges of one share a single call.
    let other = AccessToken::new(sys.login(GATEWAY_AUDIENCE).await);
    let many = (0..8).map(|_| exchange.exchange(&other, ORDERS));
    let results = futures_join_all(many).await;
    assert!(
        results
            .iter()
            .all(|r| r.as_ref().unwrap() == results[0].as_ref().unwrap())
    );
    assert_ne!(results[0].as_ref().unwrap(), &first);
    assert_eq!(calls.load(Ordering::SeqCst), 2, "single flight per token");

    // Without the cache every exchange asks the issuer.
    let uncached = TokenExchange::builder(&url, "gateway", "gateway-secret")
        .cache_bytes(CacheSize::Off)
        .build()
        .unwrap();
    uncached.exchange(&subject, ORDERS).await.unwrap();
    uncached.exchange(&subject, ORDERS).await.unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 4);
}

/// Awaits every future (concurrently, on this task).
async fn futures_join_all<F: std::future::Future>(
    futures: impl Iterator<Item = F>,
) -> Vec<F::Output> {
    let mut set = Vec::new();
    for f in futures {
        set.push(Box::pin(f));
    }
    let mut out: Vec<Option<F::Output>> = set.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (f, slot) in set.iter_mut().zip(out.iter_mut()) {
            if slot.is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => *slot = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    out.into_iter().map(Option::unwrap).collect()
}

#[tokio::test]
async fn an_exchange_the_issuer_refuses_is_a_clear_error_and_is_not_cached() {
    let sys = System::start().await;
    let (url, calls) = counting_token_endpoint(sys.token_url()).await;
    let exchange = TokenExchange::builder(&url, "gateway", "gateway-secret")
        .build()
        .unwrap();
    let subject = AccessToken::new(sys.login(GATEWAY_AUDIENCE).await);
    for attempt in 1..=2 {
        let err = tokio::time::timeout(
            Duration::from_secs(10),
            exchange.exchange(&subject, "urn:billing"),
        )
        .await
        .expect("an answer, not a hang")
        .unwrap_err();
        assert_eq!(err.oauth_code(), Some("invalid_target"), "{err}");
        assert!(err.to_string().contains("urn:billing"), "{err}");
        assert!(!err.to_string().contains(subject.as_str()));
        assert_eq!(
            calls.load(Ordering::SeqCst),
            attempt,
            "refusals are not cached"
        );
    }
    // A token meant for orders is not the gateway's to exchange.
    let orders_token = AccessToken::new(sys.login(ORDERS).await);
    let err = exchange.exchange(&orders_token, ORDERS).await.unwrap_err();
    assert_eq!(err.oauth_code(), Some("invalid_request"), "{err}");
    // Wrong client secret.
    let bad = TokenExchange::builder(&url, "gateway", "wrong")
        .build()
        .unwrap();
    let err = bad.exchange(&subject, ORDERS).await.unwrap_err();
    assert_eq!(err.oauth_code(), Some("invalid_client"), "{err}");
    assert_eq!(exchange.stats().failures, 3);
}

#[tokio::test]
async fn the_services_own_token_can_act_for_the_caller_in_an_exchange() {
    let mut config = issuer_config();
    let gateway = config
        .clients
        .iter_mut()
        .find(|c| c.client_id == "gateway")
        .unwrap();
    gateway.grant_types.push(GRANT_CLIENT_CREDENTIALS.into());
    let running = issuer::server::start(config).await.unwrap();
    let token_url = format!("{}/token", running.issuer());
    let http = reqwest::Client::new();
    let login = http
        .post(format!("{}/login", running.issuer()))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("username=demo&password=demo-password&resource=urn%3Agateway")
        .send()
        .await
        .unwrap();
    let body: Value = login.json().await.unwrap();
    let subject = AccessToken::new(body["access_token"].as_str().unwrap());
    assert_eq!(payload(subject.as_str())["aud"], GATEWAY_AUDIENCE);

    let own = ClientCredentials::builder(&token_url, "gateway", "gateway-secret")
        .build()
        .unwrap();
    let exchange = TokenExchange::builder(&token_url, "gateway", "gateway-secret")
        .actor(own.clone())
        .build()
        .unwrap();
    let token = exchange.exchange(&subject, ORDERS).await.unwrap();
    let claims = payload(token.as_str());
    assert_eq!(claims["sub"], "demo");
    assert_eq!(claims["act"], json!({"sub": "gateway"}));
    assert_eq!(own.health().renewals, 1);
}

#[tokio::test]
async fn the_services_own_token_reaches_orders() {
    let sys = System::start().await;
    let source = ClientCredentials::builder(sys.token_url(), "orders-service", "orders-secret")
        .scope("orders:read")
        .build()
        .unwrap();
    let me = format!("http://{}/me", sys.orders);
    // No caller token needed: the service speaks for itself.
    let (status, claims) = hyper_get(OutboundToken::service(source.clone()), &me, None).await;
    assert_eq!(status, 200, "{claims}");
    assert_eq!(claims["sub"], "orders-service");
    assert_eq!(claims["scopes"], json!(["orders:read"]));
    // A caller's token on the request does not change that.
    let caller = AccessToken::new(sys.login(ORDERS).await);
    let (_, claims) = hyper_get(OutboundToken::service(source.clone()), &me, Some(caller)).await;
    assert_eq!(claims["sub"], "orders-service");
    let health = source.health();
    assert!(health.ready && health.renewals == 1, "{health:?}");
}

/// A token endpoint whose answers the test controls: tokens of a
/// `TestIssuer` living 100 s, and failures on demand.
#[derive(Clone)]
struct FakeEndpoint {
    issuer: Arc<authlayer::test_util::TestIssuer>,
    calls: Arc<std::sync::Mutex<Vec<Instant>>>,
    fail_next: Arc<AtomicUsize>,
    /// The `expires_in` answered (100 unless a test changes it).
    expires_in: Arc<std::sync::atomic::AtomicU64>,
}

impl FakeEndpoint {
    async fn start() -> (Self, String) {
        let fake = Self {
            issuer: Arc::new(authlayer::test_util::TestIssuer::new("https://id.test")),
            calls: Arc::default(),
            fail_next: Arc::default(),
            expires_in: Arc::new(std::sync::atomic::AtomicU64::new(100)),
        };
        let app = Router::new()
            .route(
                "/token",
                post(|State(fake): State<FakeEndpoint>, body: String| async move {
                    assert!(body.contains("grant_type=client_credentials"), "{body}");
                    let n = {
                        let mut calls = fake.calls.lock().unwrap();
                        calls.push(Instant::now());
                        calls.len()
                    };
                    if fake
                        .fail_next
                        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |f| f.checked_sub(1))
                        .is_ok()
                    {
                        return (StatusCode::SERVICE_UNAVAILABLE, axum::Json(json!({"error": "temporarily_unavailable"})));
                    }
                    let token = fake.issuer.token().sub("svc").claim("n", n).sign();
                    (
                        StatusCode::OK,
                        axum::Json(json!({"access_token": token, "token_type": "Bearer", "expires_in": fake.expires_in.load(Ordering::SeqCst)})),
                    )
                }),
            )
            .with_state(fake.clone());
        let addr = serve_axum(app).await;
        (fake, format!("http://{addr}/token"))
    }

    fn calls(&self) -> Vec<Instant> {
        self.calls.lock().unwrap().clone()
    }
}

/// Lets paused time run in small steps until `done` holds.
async fn until(mut done: impl FnMut() -> bool) {
    for _ in 0..2_000 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("condition not reached");
}

#[tokio::test]
async fn callers_waiting_on_a_failing_fetch_share_its_error_instead_of_queueing() {
    let (fake, url) = FakeEndpoint::start().await;
    fake.fail_next.store(100, Ordering::SeqCst);
    let source = ClientCredentials::builder(url, "svc", "secret")
        .build()
        .unwrap();
    let results = futures_join_all((0..8).map(|_| source.token())).await;
    assert!(results.iter().all(Result::is_err), "{results:?}");
    assert_eq!(fake.calls().len(), 1, "one request for eight callers");
    // A later caller asks again.
    assert!(source.token().await.is_err());
    assert_eq!(fake.calls().len(), 2);
}

#[tokio::test(start_paused = true)]
async fn absurd_lifetimes_from_the_endpoint_neither_panic_nor_spin() {
    let (fake, url) = FakeEndpoint::start().await;
    fake.expires_in.store(u64::MAX, Ordering::SeqCst);
    let huge = ClientCredentials::builder(url.clone(), "svc", "secret")
        .build()
        .unwrap();
    assert!(huge.token().await.is_ok());
    fake.expires_in.store(0, Ordering::SeqCst);
    let zero = ClientCredentials::builder(url, "svc", "secret")
        .build()
        .unwrap();
    // Served once (a zero lifetime is not cached), then renewed at most
    // once a second, not in a tight loop.
    let _ = zero.token().await;
    let before = fake.calls().len();
    tokio::time::sleep(Duration::from_secs(10)).await;
    let renewals = fake.calls().len() - before;
    assert!(renewals <= 11, "{renewals} renewals in 10 s");
}

#[test]
fn service_token_requests_and_failures_are_counted_in_metrics() {
    // A recorder of this thread only, and a runtime on this thread: other
    // tests' metrics cannot reach it.
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    metrics::with_local_recorder(&recorder, || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .start_paused(true)
            .build()
            .unwrap();
        rt.block_on(async {
            let (fake, url) = FakeEndpoint::start().await;
            let source = ClientCredentials::builder(url, "svc", "secret")
                .retry_backoff(Duration::from_secs(8))
                .build()
                .unwrap();
            source.token().await.unwrap();
            fake.fail_next.store(1, Ordering::SeqCst);
            until(|| source.health().renewal_failures == 1).await;
        });
    });
    let text = handle.render();
    for line in [
        r#"authlayer_service_token_requests_total{outcome="issued"} 1"#,
        r#"authlayer_service_token_requests_total{outcome="error"} 1"#,
    ] {
        assert!(text.lines().any(|l| l == line), "{line} not in {text}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_service_token_is_renewed_before_expiry_and_survives_a_failed_renewal() {
    let (fake, url) = FakeEndpoint::start().await;
    let source = ClientCredentials::builder(url, "svc", "secret")
        .retry_backoff(Duration::from_secs(8))
        .build()
        .unwrap();
    let start = Instant::now();

    // Single flight: concurrent first callers share one request.
    let first = futures_join_all((0..5).map(|_| source.token())).await;
    assert!(
        first
            .iter()
            .all(|t| t.as_ref().unwrap() == first[0].as_ref().unwrap())
    );
    let first = first[0].clone().unwrap();
    assert_eq!(fake.calls().len(), 1);

    // Served from memory until 80 % of its 100 s.
    tokio::time::sleep(Duration::from_secs(70)).await;
    assert_eq!(source.token().await.unwrap(), first);
    assert_eq!(fake.calls().len(), 1);

    // The renewal at 80 s fails: the current token is still served, and the
    // failure shows in health.
    fake.fail_next.store(1, Ordering::SeqCst);
    until(|| source.health().renewal_failures == 1).await;
    let renewal = fake.calls()[1] - start;
    assert!(
        renewal >= Duration::from_secs(80) && renewal < Duration::from_secs(81),
        "renewed at {renewal:?}"
    );
    let health = source.health();
    assert!(health.ready, "{health:?}");
    assert_eq!(health.consecutive_failures, 1);
    assert!(
        health
            .last_error
            .as_deref()
            .unwrap()
            .contains("unavailable"),
        "{health:?}"
    );
    assert_eq!(source.token().await.unwrap(), first);

    // The jittered retry (4–8 s later) succeeds, before the old token expires.
    until(|| source.health().renewals == 2).await;
    let retry = fake.calls()[2] - fake.calls()[1];
    assert!(
        retry >= Duration::from_secs(4) && retry <= Duration::from_secs(8),
        "retried after {retry:?}"
    );
    assert!(Instant::now() - start < Duration::from_secs(95));
    let second = source.token().await.unwrap();
    assert_ne!(second, first);
    assert_eq!(payload(second.as_str())["n"], 3);
    let health = source.health();
    assert_eq!(
        (health.consecutive_failures, health.renewal_failures),
        (0, 1)
    );
    assert_eq!(fake.calls().len(), 3);
}

/// Two real servers: the first answers every request with `status` and a
/// `Location` on the second, which records every request it receives and
/// answers as a token (or introspection) endpoint would.
pub(crate) struct RedirectTrap {
    /// The first server's endpoint URL.
    pub(crate) url: String,
    /// Requests with a `Content-Length` the first server answered.
    pub(crate) redirected: Arc<AtomicUsize>,
    /// Every request the second server received: method, URI, headers and
    /// body, as text.
    pub(crate) received: Arc<std::sync::Mutex<Vec<String>>>,
}

impl RedirectTrap {
    pub(crate) async fn start(status: u16) -> Self {
        let received: Arc<std::sync::Mutex<Vec<String>>> = Arc::default();
        let record = received.clone();
        let target = Router::new().fallback(
            move |method: http::Method, uri: http::Uri, headers: HeaderMap, body: Bytes| {
                let record = record.clone();
                async move {
                    let mut seen = format!("{method} {uri}\n");
                    for (name, value) in &headers {
                        let value = String::from_utf8_lossy(value.as_bytes());
                        let _ = writeln!(seen, "{name}: {value}");
                    }
                    seen.push_str(&String::from_utf8_lossy(&body));
                    record.lock().unwrap().push(seen);
                    axum::Json(json!({
                        "access_token": "handed-out-by-the-redirect-target",
                        "token_type": "Bearer",
                        "expires_in": 60,
                        "active": true,
                    }))
                }
            },
        );
        let target = serve_axum(target).await;
        let redirected: Arc<AtomicUsize> = Arc::default();
        let count = redirected.clone();
        let location = format!("http://{target}/collect");
        let first = Router::new().fallback(move |headers: HeaderMap| {
            // Counted only when the form came with its length (some token
            // endpoints refuse a chunked body).
            if headers.contains_key(http::header::CONTENT_LENGTH) {
                count.fetch_add(1, Ordering::SeqCst);
            }
            let location = location.clone();
            async move {
                (
                    StatusCode::from_u16(status).unwrap(),
                    [(http::header::LOCATION, location)],
                )
            }
        });
        let first = serve_axum(first).await;
        Self {
            url: format!("http://{first}/token"),
            redirected,
            received,
        }
    }

    /// Asserts that the second server saw none of `secrets`, no
    /// `Authorization` and no body; on a 307/308 (which would resend the
    /// body), no request at all.
    pub(crate) fn assert_target_got_nothing(&self, status: u16, secrets: &[&str]) {
        assert!(
            self.redirected.load(Ordering::SeqCst) > 0,
            "the endpoint was asked, with a Content-Length"
        );
        let received = self.received.lock().unwrap();
        if matches!(status, 307 | 308) {
            assert!(received.is_empty(), "HTTP {status}: {received:#?}");
        }
        for request in received.iter() {
            for secret in secrets {
                assert!(
                    !request.contains(secret),
                    "HTTP {status}: {secret:?} reached {request}"
                );
            }
            let lower = request.to_ascii_lowercase();
            assert!(
                !lower.contains("authorization:"),
                "HTTP {status}: {request}"
            );
            assert!(request.starts_with("GET "), "HTTP {status}: {request}");
            assert!(
                request.ends_with('\n'),
                "HTTP {status}: a body reached {request}"
            );
        }
    }
}

/// The redirect statuses a client may follow.
pub(crate) const REDIRECTS: [u16; 5] = [301, 302, 303, 307, 308];

#[tokio::test]
async fn a_redirecting_token_endpoint_is_an_error_and_its_target_gets_nothing() {
    for status in REDIRECTS {
        // A caller-supplied client that follows redirects (reqwest's
        // default), and the crate's own client.
        for supplied in [true, false] {
            let trap = RedirectTrap::start(status).await;
            let mut service = ClientCredentials::builder(&trap.url, "svc", "service-secret");
            let mut exchange = TokenExchange::builder(&trap.url, "gw", "exchange-secret");
            if supplied {
                service = service.http_client(reqwest::Client::new());
                exchange = exchange.http_client(reqwest::Client::new());
            }
            let err = service.build().unwrap().token().await.unwrap_err();
            assert!(
                matches!(&err, OutboundError::InvalidResponse { reason } if reason.contains("redirect")),
                "HTTP {status}, supplied {supplied}: {err}"
            );
            let subject = AccessToken::new("the-callers-subject-token");
            let err = exchange
                .build()
                .unwrap()
                .exchange(&subject, "urn:orders")
                .await
                .unwrap_err();
            assert!(
                matches!(&err, OutboundError::InvalidResponse { reason } if reason.contains("redirect")),
                "HTTP {status}, supplied {supplied}: {err}"
            );
            trap.assert_target_got_nothing(
                status,
                &[
                    "service-secret",
                    "exchange-secret",
                    "the-callers-subject-token",
                    "subject_token",
                    "grant_type",
                ],
            );
        }
    }
}

#[tokio::test]
async fn a_renamed_identity_header_is_stripped_in_any_spelling() {
    use authlayer::outbound::{IdentityField, IdentityHeadersLayer};
    let s = setup().await;
    // The backend echoes every header whose name is `x-my-sub` give or
    // take `_` and case.
    let backend = Router::new()
        .route(
            "/whoami",
            get(|headers: HeaderMap| async move {
                let seen: Vec<String> = headers
                    .iter()
                    .filter(|(name, _)| name.as_str().replace('_', "-") == "x-my-sub")
                    .map(|(name, value)| format!("{name}: {}", value.to_str().unwrap()))
                    .collect();
                axum::Json(seen)
            }),
        )
        .layer(
            ServiceBuilder::new()
                .layer(VerifyLayer::new(s.verifier.clone()))
                .layer(IdentityHeadersLayer::new().name(
                    IdentityField::Sub,
                    http::HeaderName::from_static("x-my-sub"),
                )),
        );
    let addr = serve_axum(backend).await;
    let token = orders_token(&s.issuer).sub("alice").sign();
    let seen: Vec<String> = reqwest::Client::new()
        .get(format!("http://{addr}/whoami"))
        .bearer_auth(token)
        .header("X_My_Sub", "admin")
        .header("x-my_sub", "root")
        .header("x-my-sub", "eve")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(seen, ["x-my-sub: alice"]);
}

#[tokio::test]
async fn forwarding_sends_exactly_the_verified_token_and_no_other_authorization() {
    // The downstream service echoes every Authorization value it receives.
    let echo = Router::new().route(
        "/echo",
        get(|headers: HeaderMap| async move {
            let all: Vec<String> = headers
                .get_all(http::header::AUTHORIZATION)
                .iter()
                .map(|v| v.to_str().unwrap().to_owned())
                .collect();
            axum::Json(all)
        }),
    );
    let url = format!("http://{}/echo", serve_axum(echo).await);
    let caller = AccessToken::new("the-verified-token");
    let extra = ["Basic dXNlcjpwdw==", "Bearer another-token", "Digest x"];

    // A tower client (hyper): the outbound request already carries other
    // Authorization values, e.g. copied from the inbound request.
    let mut req = http::Request::get(&url)
        .body(Full::new(Bytes::new()))
        .unwrap();
    for value in extra {
        req.headers_mut()
            .append(http::header::AUTHORIZATION, value.parse().unwrap());
    }
    req.extensions_mut().insert(caller.clone());
    let client = ServiceBuilder::new()
        .layer(AttachTokenLayer::new(OutboundToken::forward()))
        .service(hyper_client());
    let res = client.oneshot(req).await.unwrap();
    let body = res.into_body().collect().await.unwrap().to_bytes();
    let seen: Vec<String> = serde_json::from_slice(&body).unwrap();
    assert_eq!(seen, ["Bearer the-verified-token"], "hyper");

    // reqwest, through `authorize`.
    let http = reqwest::Client::new();
    let mut request = http.get(&url);
    for value in extra {
        request = request.header(http::header::AUTHORIZATION, value);
    }
    let mut request = request.build().unwrap();
    OutboundToken::forward()
        .authorize(request.headers_mut(), Some(&caller))
        .await
        .unwrap();
    let seen: Vec<String> = http.execute(request).await.unwrap().json().await.unwrap();
    assert_eq!(seen, ["Bearer the-verified-token"], "reqwest");
}
