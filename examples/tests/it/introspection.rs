//! Introspection (RFC 7662) against the bundled issuer, in process: opaque
//! tokens, revocation within the cache TTL, endpoint trouble, single-flight
//! and the bounds on calls. A counting proxy sits in front of the issuer's
//! `/introspect`: it counts calls, can hold them, and can rewrite answers.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::Duration;

use authlayer::{AuthError, Introspection, Reason, Verifier};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::sync::{Notify, Semaphore};

use crate::common::{
    AUDIENCE, LogBuffer, challenge, grpc_client, serve_axum, serve_grpc, with_token,
};
use crate::e2e::client;
use crate::examples;
use crate::issuer;
use crate::issuer::config::{Config, GRANT_CLIENT_CREDENTIALS};
use crate::orders;
use crate::orders_grpc;
use crate::orders_grpc::pb::GetOrderRequest;

/// A verification in flight, boxed so that others can join the list.
type Verification<'a> = Pin<Box<dyn Future<Output = Result<authlayer::Claims, AuthError>> + 'a>>;

type Rewrite = Box<dyn Fn(Value) -> String + Send + Sync>;

/// A stand-in for the issuer's `/introspect` that forwards to it.
struct Proxy {
    upstream: String,
    http: reqwest::Client,
    hits: AtomicUsize,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    arrived: Notify,
    hold: AtomicBool,
    gate: Semaphore,
    rewrite: Mutex<Option<Rewrite>>,
}

impl Proxy {
    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    /// Waits until `n` calls have arrived.
    async fn wait_hits(&self, n: usize) {
        loop {
            let notified = self.arrived.notified();
            if self.hits() >= n {
                return;
            }
            notified.await;
        }
    }

    /// Lets held calls (and every later one) through.
    fn release(&self) {
        self.hold.store(false, Ordering::SeqCst);
        self.gate.add_permits(10_000);
    }

    fn rewrite(&self, f: impl Fn(Value) -> String + Send + Sync + 'static) {
        *self.rewrite.lock().unwrap() = Some(Box::new(f));
    }
}

async fn forward(
    State(p): State<Arc<Proxy>>,
    headers: HeaderMap,
    body: Bytes,
) -> ([(header::HeaderName, &'static str); 1], String) {
    p.hits.fetch_add(1, Ordering::SeqCst);
    let now = p.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    p.max_in_flight.fetch_max(now, Ordering::SeqCst);
    p.arrived.notify_waiters();
    if p.hold.load(Ordering::SeqCst) {
        p.gate.acquire().await.unwrap().forget();
    }
    let mut req = p
        .http
        .post(&p.upstream)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(body);
    if let Some(auth) = headers.get(header::AUTHORIZATION) {
        req = req.header(header::AUTHORIZATION, auth);
    }
    let answer: Value = req.send().await.unwrap().json().await.unwrap();
    let text = match &*p.rewrite.lock().unwrap() {
        Some(f) => f(answer),
        None => answer.to_string(),
    };
    p.in_flight.fetch_sub(1, Ordering::SeqCst);
    ([(header::CONTENT_TYPE, "application/json")], text)
}

/// The bundled issuer, its clients, and the proxy in front of `/introspect`.
struct Rig {
    _issuer: issuer::server::Running,
    iss: String,
    proxy: Arc<Proxy>,
    proxy_url: String,
    http: reqwest::Client,
}

fn opaque_client(id: &str, secret: &str, scopes: &[&str]) -> issuer::config::Client {
    let mut c = client(id, secret, scopes, &[GRANT_CLIENT_CREDENTIALS], false);
    c.opaque_access_tokens = true;
    c
}

/// `orders-service` introspects and gets JWTs; `opaque-app` (read, write)
/// and `opaque-reader` (read) get opaque tokens.
fn config() -> Config {
    Config {
        port: 0,
        clients: vec![
            client(
                "orders-service",
                "orders-secret",
                &["orders:read", "orders:write"],
                &[GRANT_CLIENT_CREDENTIALS],
                false,
            ),
            opaque_client("opaque-app", "app-secret", &["orders:read", "orders:write"]),
            opaque_client("opaque-reader", "reader-secret", &["orders:read"]),
        ],
        rotate_every: None,
        ..Config::default()
    }
}

async fn rig() -> Rig {
    let running = issuer::server::start(config())
        .await
        .expect("issuer starts");
    let iss = running.issuer().to_owned();
    let proxy = Arc::new(Proxy {
        upstream: format!("{iss}/introspect"),
        http: reqwest::Client::new(),
        hits: AtomicUsize::new(0),
        in_flight: AtomicUsize::new(0),
        max_in_flight: AtomicUsize::new(0),
        arrived: Notify::new(),
        hold: AtomicBool::new(false),
        gate: Semaphore::new(0),
        rewrite: Mutex::new(None),
    });
    let app = axum::Router::new()
        .route("/introspect", axum::routing::post(forward))
        .with_state(Arc::clone(&proxy));
    let addr = serve_axum(app).await;
    Rig {
        _issuer: running,
        iss,
        proxy,
        proxy_url: format!("http://{addr}/introspect"),
        http: reqwest::Client::new(),
    }
}

fn introspection() -> Introspection {
    Introspection::new("orders-service", "orders-secret")
}

impl Rig {
    /// A verifier introspecting through the proxy.
    async fn verifier(&self, settings: Introspection) -> Verifier {
        Verifier::builder()
            .issuer(&self.iss)
            .audience(AUDIENCE)
            .introspection(settings.endpoint(&self.proxy_url))
            .build()
            .await
            .expect("verifier")
    }

    async fn token(&self, id: &str, secret: &str, scope: Option<&str>) -> String {
        let mut form = vec![("grant_type", GRANT_CLIENT_CREDENTIALS)];
        if let Some(scope) = scope {
            form.push(("scope", scope));
        }
        let body: Value = self
            .http
            .post(format!("{}/token", self.iss))
            .basic_auth(id, Some(secret))
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(form_body(&form))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        body["access_token"].as_str().expect("a token").to_owned()
    }

    async fn opaque(&self) -> String {
        self.token("opaque-app", "app-secret", None).await
    }

    async fn revoke(&self, token: &str, id: &str, secret: &str) {
        let res = self
            .http
            .post(format!("{}/revoke", self.iss))
            .basic_auth(id, Some(secret))
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(form_body(&[("token", token)]))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
    }

    async fn call(&self, method: reqwest::Method, url: &str, token: &str) -> reqwest::Response {
        let mut req = self.http.request(method.clone(), url).bearer_auth(token);
        if method == reqwest::Method::POST {
            req = req.json(&json!({"item": "widget"}));
        }
        req.send().await.unwrap()
    }
}

fn form_body(pairs: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

/// Skips virtual time forward by `d`, then lets the clock run again.
async fn skip(d: Duration) {
    tokio::time::pause();
    tokio::time::advance(d).await;
    tokio::time::resume();
}

/// Polls every future once before any of them can finish, then drives them
/// all to the end: they are all in flight at once, deterministically.
async fn all_at_once<T>(mut futures: Vec<Pin<Box<dyn Future<Output = T> + '_>>>) -> Vec<T> {
    let mut out: Vec<Option<T>> = futures.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        for (slot, future) in out.iter_mut().zip(&mut futures) {
            if slot.is_none()
                && let Poll::Ready(v) = future.as_mut().poll(cx)
            {
                *slot = Some(v);
            }
        }
        if out.iter().all(Option::is_some) {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
    .await;
    out.into_iter().map(Option::unwrap).collect()
}

fn reason(result: Result<authlayer::Claims, AuthError>) -> Reason {
    result.expect_err("refused").reason()
}

#[tokio::test]
async fn opaque_token_is_accepted_on_every_route_with_the_same_scope_rules() {
    let rig = rig().await;
    // The endpoint comes from discovery here (no proxy).
    let verifier = Verifier::builder()
        .issuer(&rig.iss)
        .audience(AUDIENCE)
        .introspection(introspection())
        .build()
        .await
        .unwrap();
    assert_eq!(
        verifier.health().introspection[0].endpoint.as_deref(),
        Some(format!("{}/introspect", rig.iss).as_str())
    );
    let base = format!("http://{}", serve_axum(orders::app(verifier.clone())).await);
    let token = rig.opaque().await;
    assert!(!token.contains('.'), "an opaque token");

    let res = rig
        .call(reqwest::Method::GET, &format!("{base}/orders/7"), &token)
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let res = rig
        .call(reqwest::Method::POST, &format!("{base}/orders"), &token)
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let me: Value = rig
        .call(reqwest::Method::GET, &format!("{base}/me"), &token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["sub"], "opaque-app");
    assert_eq!(me["iss"], rig.iss.as_str());
    assert_eq!(me["client_id"], "opaque-app");
    assert_eq!(me["scopes"], json!(["orders:read", "orders:write"]));
    let res = rig
        .call(reqwest::Method::DELETE, &format!("{base}/orders/7"), &token)
        .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);

    // The same scope rules: a read-only opaque token cannot write.
    let reader = rig.token("opaque-reader", "reader-secret", None).await;
    let res = rig
        .call(reqwest::Method::POST, &format!("{base}/orders"), &reader)
        .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert!(challenge(&res).contains("insufficient_scope"));
    let res = rig
        .call(
            reqwest::Method::DELETE,
            &format!("{base}/orders/7"),
            &reader,
        )
        .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);

    // An unknown opaque token: not active.
    let res = rig
        .call(
            reqwest::Method::GET,
            &format!("{base}/orders/7"),
            "no-such-token",
        )
        .await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert!(
        challenge(&res).contains("error=\"invalid_token\", error_description=\"token not active\"")
    );

    // gRPC takes the same path.
    let grpc = serve_grpc(orders_grpc::router(verifier.clone())).await;
    let order = grpc_client(grpc)
        .await
        .get_order(with_token(GetOrderRequest { id: 7 }, &token))
        .await
        .expect("gRPC accepts the opaque token");
    assert_eq!(order.into_inner().id, 7);

    // JWTs are still verified locally.
    let jwt = rig.token("orders-service", "orders-secret", None).await;
    let before = verifier.metrics().introspections;
    let res = rig
        .call(reqwest::Method::GET, &format!("{base}/orders/7"), &jwt)
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(verifier.metrics().introspections, before);
}

#[tokio::test]
async fn without_introspection_an_opaque_token_is_invalid_as_before() {
    let rig = rig().await;
    let verifier = Verifier::builder()
        .issuer(&rig.iss)
        .audience(AUDIENCE)
        .build()
        .await
        .unwrap();
    let base = format!("http://{}", serve_axum(orders::app(verifier)).await);
    let token = rig.opaque().await;
    let res = rig
        .call(reqwest::Method::GET, &format!("{base}/orders/7"), &token)
        .await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert!(challenge(&res).contains("error=\"invalid_token\""));
    assert_eq!(rig.proxy.hits(), 0);
}

#[tokio::test]
async fn revoked_opaque_token_is_refused_once_the_cache_ttl_has_passed() {
    let rig = rig().await;
    let verifier = rig
        .verifier(introspection().cache_ttl(Duration::from_secs(10)))
        .await;
    let token = rig.opaque().await;
    verifier.verify(&token).await.expect("active");
    rig.revoke(&token, "opaque-app", "app-secret").await;
    // Within the TTL the cached answer stands: one call so far.
    verifier.verify(&token).await.expect("cached");
    assert_eq!(rig.proxy.hits(), 1);
    assert_eq!(verifier.metrics().introspection_cache_hits, 1);

    skip(Duration::from_secs(10)).await;
    assert_eq!(reason(verifier.verify(&token).await), Reason::Inactive);
    assert_eq!(rig.proxy.hits(), 2);
    // The refusal is cached (briefly) too.
    assert_eq!(reason(verifier.verify(&token).await), Reason::Inactive);
    assert_eq!(rig.proxy.hits(), 2);
}

#[tokio::test]
async fn revoked_jwt_is_refused_on_the_revocation_sensitive_route_within_its_ttl() {
    let rig = rig().await;
    let verifier = rig.verifier(introspection()).await;
    // `orders::app` reads AUTH_ACTIVE_TTL, unset here: 5 s.
    let base = format!("http://{}", serve_axum(orders::app(verifier)).await);
    let jwt = rig.token("orders-service", "orders-secret", None).await;
    let order = format!("{base}/orders/7");
    let delete = || rig.call(reqwest::Method::DELETE, &order, &jwt);

    assert_eq!(delete().await.status(), StatusCode::NO_CONTENT);
    assert_eq!(rig.proxy.hits(), 1, "a JWT, introspected on this route");
    rig.revoke(&jwt, "orders-service", "orders-secret").await;
    assert_eq!(delete().await.status(), StatusCode::NO_CONTENT, "cached");

    skip(Duration::from_secs(5)).await;
    let res = delete().await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert!(challenge(&res).contains("token not active"));
    assert_eq!(rig.proxy.hits(), 2);
    // Routes without the layer verify the JWT locally, as before.
    let res = rig.call(reqwest::Method::GET, &order, &jwt).await;
    assert_eq!(res.status(), StatusCode::OK);
}

#[tokio::test]
async fn endpoint_down_gives_503_with_retry_after_and_grpc_unavailable() {
    let rig = rig().await;
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let verifier = Verifier::builder()
        .issuer(&rig.iss)
        .audience(AUDIENCE)
        .introspection(introspection().endpoint(format!("http://{closed}/introspect")))
        .build()
        .await
        .unwrap();
    let base = format!("http://{}", serve_axum(orders::app(verifier.clone())).await);
    let token = rig.opaque().await;

    let res = rig
        .call(reqwest::Method::GET, &format!("{base}/orders/7"), &token)
        .await;
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(res.headers()["retry-after"], "5");
    assert!(
        !challenge(&res).contains("error="),
        "never blames the client"
    );

    let jwt = rig.token("orders-service", "orders-secret", None).await;
    let res = rig
        .call(reqwest::Method::DELETE, &format!("{base}/orders/7"), &jwt)
        .await;
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);

    let grpc = serve_grpc(orders_grpc::router(verifier.clone())).await;
    let status = grpc_client(grpc)
        .await
        .get_order(with_token(GetOrderRequest { id: 7 }, &token))
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unavailable);

    let m = verifier.metrics();
    assert_eq!(m.introspection_failures, 3, "{m:?}");
    assert_eq!(m.rejected(Reason::IntrospectionUnavailable), 3);
    let health = verifier.health();
    assert!(health.ready, "JWTs still verify");
    let endpoint = &health.introspection[0];
    assert_eq!(endpoint.consecutive_failures, 3);
    assert!(
        endpoint
            .last_error
            .as_deref()
            .unwrap()
            .contains("request failed")
    );
}

#[tokio::test(flavor = "current_thread")]
async fn slow_endpoint_gives_503_logged_in_the_audit_without_the_token() {
    let logs = LogBuffer::default();
    let _guard = logs.install();
    let rig = rig().await;
    let verifier = rig
        .verifier(introspection().timeout(Duration::from_millis(200)))
        .await;
    let token = rig.opaque().await;
    let base = format!("http://{}", serve_axum(orders::app(verifier.clone())).await);
    // tracing caches whether a log line is wanted when its callsite is first
    // hit, and another test's thread (without this subscriber) may be the
    // first: hit the audit line once, then recompute with this subscriber.
    let warm_up = rig
        .http
        .get(format!("{base}/orders/7"))
        .send()
        .await
        .unwrap();
    assert_eq!(warm_up.status(), StatusCode::UNAUTHORIZED);
    tracing::callsite::rebuild_interest_cache();
    rig.proxy.hold.store(true, Ordering::SeqCst);
    let res = rig
        .call(reqwest::Method::GET, &format!("{base}/orders/7"), &token)
        .await;
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    let text = logs.contents();
    assert!(
        text.contains("authlayer::audit") && text.contains("introspection_unavailable"),
        "{text}"
    );
    assert!(!text.contains(&token), "a token reached a log line");
    assert!(
        verifier.health().introspection[0]
            .last_error
            .as_deref()
            .unwrap()
            .contains("timed out")
    );
    rig.proxy.release();
}

#[tokio::test]
async fn garbage_answers_give_503_and_a_string_true_is_not_active() {
    let rig = rig().await;
    let verifier = rig.verifier(introspection()).await;
    let token = rig.opaque().await;
    for garbage in [
        (|mut v: Value| {
            v["active"] = json!("true");
            v.to_string()
        }) as fn(Value) -> String,
        |_: Value| "<html>oops</html>".to_owned(),
        |_: Value| "[true]".to_owned(),
    ] {
        rig.proxy.rewrite(garbage);
        assert_eq!(
            reason(verifier.verify(&token).await),
            Reason::IntrospectionUnavailable
        );
    }
    assert_eq!(verifier.metrics().introspection_failures, 3);
}

#[tokio::test]
async fn wrong_iss_or_aud_in_the_answer_is_refused() {
    let rig = rig().await;
    for (patch, expected) in [
        (
            (|mut v: Value| {
                v["iss"] = json!("http://evil.example");
                v.to_string()
            }) as fn(Value) -> String,
            Reason::UnknownIssuer,
        ),
        (
            |mut v: Value| {
                v["aud"] = json!(["urn:billing"]);
                v.to_string()
            },
            Reason::WrongAudience,
        ),
        (
            |mut v: Value| {
                v["token_type"] = json!("refresh_token");
                v.to_string()
            },
            Reason::WrongType,
        ),
        (
            |mut v: Value| {
                v["exp"] = json!(1);
                v.to_string()
            },
            Reason::Expired,
        ),
    ] {
        let verifier = rig.verifier(introspection()).await;
        let token = rig.opaque().await;
        rig.proxy.rewrite(patch);
        assert_eq!(reason(verifier.verify(&token).await), expected);
    }
}

#[tokio::test]
async fn hundred_concurrent_requests_with_one_new_token_make_one_call() {
    let rig = rig().await;
    let verifier = rig.verifier(introspection()).await;
    let token = rig.opaque().await;
    rig.proxy.hold.store(true, Ordering::SeqCst);
    let proxy = Arc::clone(&rig.proxy);
    let release = async move {
        proxy.wait_hits(1).await;
        proxy.release();
        Ok(authlayer::Claims::from_json("{}").unwrap())
    };
    let mut futures: Vec<Verification<'_>> = (0..100)
        .map(|_| Box::pin(verifier.verify(&token)) as Pin<Box<dyn Future<Output = _>>>)
        .collect();
    futures.push(Box::pin(release));
    let results = all_at_once(futures).await;
    assert!(results.iter().all(Result::is_ok));
    assert_eq!(rig.proxy.hits(), 1);
    let m = verifier.metrics();
    assert_eq!((m.introspections, m.accepted), (1, 100), "{m:?}");
}

#[tokio::test]
async fn a_waiter_takes_over_when_the_caller_that_started_the_call_goes_away() {
    let rig = rig().await;
    let verifier = rig.verifier(introspection()).await;
    let token = rig.opaque().await;
    rig.proxy.hold.store(true, Ordering::SeqCst);
    let mut first: Verification<'_> = Box::pin(verifier.verify(&token));
    let mut second: Verification<'_> = Box::pin(verifier.verify(&token));
    // Both are in flight; the first one's call reaches the endpoint.
    let mut arrived = std::pin::pin!(rig.proxy.wait_hits(1));
    std::future::poll_fn(|cx| {
        assert!(first.as_mut().poll(cx).is_pending());
        assert!(second.as_mut().poll(cx).is_pending());
        arrived.as_mut().poll(cx)
    })
    .await;
    // The client that started the call disconnects: its call is dropped.
    drop(first);
    rig.proxy.release();
    second
        .await
        .expect("the waiter asked again and got its answer");
    assert_eq!(rig.proxy.hits(), 2);
    verifier.verify(&token).await.expect("cached");
    assert_eq!(
        rig.proxy.hits(),
        2,
        "the flight left and the cache holds the answer"
    );
}

#[tokio::test]
async fn a_flood_of_random_tokens_is_bounded_and_keeps_the_good_answers() {
    let rig = rig().await;
    let verifier = rig
        .verifier(introspection().max_concurrency(2).max_pending(4))
        .await;
    let good = rig.opaque().await;
    verifier.verify(&good).await.expect("active");
    assert_eq!(rig.proxy.hits(), 1);

    rig.proxy.hold.store(true, Ordering::SeqCst);
    let random: Vec<String> = (0..20).map(|i| format!("random-{i:04}")).collect();
    let proxy = Arc::clone(&rig.proxy);
    let (verifier2, good2) = (verifier.clone(), good.clone());
    let observe = async move {
        // Two calls reach the endpoint; the rest queue or are shed.
        proxy.wait_hits(3).await;
        let m = verifier2.metrics();
        assert_eq!(m.introspection_shed, 16, "{m:?}");
        // The good token is still answered from the cache meanwhile.
        verifier2.verify(&good2).await.expect("still cached");
        proxy.release();
        Err(AuthError::missing_token())
    };
    let mut futures: Vec<Verification<'_>> = random
        .iter()
        .map(|t| Box::pin(verifier.verify(t)) as Pin<Box<dyn Future<Output = _>>>)
        .collect();
    futures.push(Box::pin(observe));
    let results = all_at_once(futures).await;
    let shed = results
        .iter()
        .filter(|r| matches!(r, Err(e) if e.reason() == Reason::IntrospectionUnavailable))
        .count();
    let inactive = results
        .iter()
        .filter(|r| matches!(r, Err(e) if e.reason() == Reason::Inactive))
        .count();
    assert_eq!((shed, inactive), (16, 4));
    assert_eq!(
        rig.proxy.hits(),
        1 + 4,
        "only the admitted tokens were asked about"
    );
    assert_eq!(rig.proxy.max_in_flight.load(Ordering::SeqCst), 2);
    verifier
        .verify(&good)
        .await
        .expect("the good answer survived");
    assert_eq!(rig.proxy.hits(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_example_honours_the_introspection_environment() {
    let rig = rig().await;
    let opaque = rig.opaque().await;
    let reader = rig.token("opaque-reader", "reader-secret", None).await;
    let jwt = rig.token("orders-service", "orders-secret", None).await;

    // Without the variables: opaque tokens are invalid, as before.
    let plain = examples::start("orders", &[("AUTH_ISSUER", &rig.iss)]);
    let base = format!("http://{}", plain.addr);
    let res = rig
        .call(reqwest::Method::GET, &format!("{base}/orders/1"), &opaque)
        .await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert!(challenge(&res).contains("invalid_token"));
    drop(plain);

    let orders = examples::start(
        "orders",
        &[
            ("AUTH_ISSUER", &rig.iss),
            ("AUTH_INTROSPECTION_CLIENT_ID", "orders-service"),
            ("AUTH_INTROSPECTION_CLIENT_SECRET", "orders-secret"),
            ("AUTH_ACTIVE_TTL", "0"),
        ],
    );
    let base = format!("http://{}", orders.addr);
    let get = format!("{base}/orders/1");
    let res = rig.call(reqwest::Method::GET, &get, &opaque).await;
    assert_eq!(res.status(), StatusCode::OK);
    let res = rig
        .call(reqwest::Method::POST, &format!("{base}/orders"), &opaque)
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    assert_eq!(
        rig.call(reqwest::Method::DELETE, &get, &opaque)
            .await
            .status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        rig.call(reqwest::Method::DELETE, &get, &reader)
            .await
            .status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        rig.call(reqwest::Method::DELETE, &get, &jwt).await.status(),
        StatusCode::NO_CONTENT
    );
    // AUTH_ACTIVE_TTL=0: the next DELETE asks the endpoint again.
    rig.revoke(&jwt, "orders-service", "orders-secret").await;
    rig.revoke(&opaque, "opaque-app", "app-secret").await;
    for token in [&jwt, &opaque] {
        let res = rig.call(reqwest::Method::DELETE, &get, token).await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
        assert!(challenge(&res).contains("token not active"));
    }
    let health: Value = rig
        .http
        .get(format!("{base}/health"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        health["auth"]["introspection"][0]["endpoint"],
        format!("{}/introspect", rig.iss)
    );
}

#[tokio::test]
async fn a_claims_type_that_does_not_fit_the_answer_is_not_a_cached_refusal_for_other_routes() {
    #[derive(Debug, serde::Deserialize)]
    struct NeedsPlan {
        #[allow(dead_code)]
        plan: String,
    }
    let rig = rig().await;
    let verifier = rig.verifier(introspection()).await;
    let token = rig.opaque().await;
    // A route whose own type needs a claim the answer lacks refuses...
    let err = verifier.verify_as::<NeedsPlan>(&token).await.unwrap_err();
    assert_eq!(err.reason(), Reason::InvalidClaim);
    // ...but the answer itself was good: the standard view is accepted,
    // from the cache.
    assert!(verifier.verify(&token).await.is_ok());
    assert_eq!(rig.proxy.hits(), 1);
}

#[tokio::test]
async fn a_redirecting_introspection_endpoint_is_unavailable_and_its_target_gets_nothing() {
    let issuer = authlayer::test_util::TestIssuer::new("https://id.example");
    for status in crate::outbound::REDIRECTS {
        for supplied in [true, false] {
            let trap = crate::outbound::RedirectTrap::start(status).await;
            let mut builder = Verifier::builder()
                .issuer(issuer.issuer())
                .jwks_json(issuer.jwks_json())
                .audience(AUDIENCE)
                .introspection(
                    Introspection::new("orders-service", "introspection-secret")
                        .endpoint(&trap.url)
                        .client_auth(authlayer::ClientAuth::Post),
                );
            if supplied {
                // reqwest's default policy follows up to 10 redirects.
                builder = builder.http_client(reqwest::Client::new());
            }
            let verifier = builder.build().await.unwrap();
            let token = format!("opaque-token-{status}-{supplied}");
            assert_eq!(
                reason(verifier.verify(&token).await),
                Reason::IntrospectionUnavailable,
                "HTTP {status}, supplied {supplied}"
            );
            let error = verifier.health().introspection[0]
                .last_error
                .clone()
                .unwrap();
            assert!(
                error.contains("redirect"),
                "HTTP {status}, supplied {supplied}: {error}"
            );
            trap.assert_target_got_nothing(
                status,
                &[&token, "introspection-secret", "client_secret"],
            );
        }
    }
}

/// The issuer's answer reshaped as Ory Hydra writes one: the same claims
/// (so only the kind decides), Hydra's extra members, `token_type` Bearer
/// for both kinds and the kind in `token_use`.
fn hydra(answer: &Value, token_use: &str) -> String {
    json!({
        "active": true,
        "client_id": answer["client_id"],
        "sub": answer["sub"],
        "scope": answer["scope"],
        "exp": answer["exp"],
        "iat": answer["iat"],
        "nbf": answer["iat"],
        "aud": answer["aud"],
        "iss": answer["iss"],
        "token_type": "Bearer",
        "token_use": token_use,
        "obfuscated_subject": "",
        "username": "",
        "ext": {"tenant": "acme"},
    })
    .to_string()
}

#[tokio::test]
async fn a_hydra_refresh_token_is_refused_through_the_layer_and_its_access_token_accepted() {
    let rig = rig().await;
    let verifier = rig.verifier(introspection()).await;
    let base = format!("http://{}", serve_axum(orders::app(verifier)).await);
    let order = format!("{base}/orders/7");

    rig.proxy.rewrite(|v| hydra(&v, "refresh_token"));
    let refresh = rig.opaque().await;
    let res = rig.call(reqwest::Method::GET, &order, &refresh).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert!(
        challenge(&res).contains("error=\"invalid_token\", error_description=\"wrong token type\""),
        "{}",
        challenge(&res)
    );

    rig.proxy.rewrite(|v| hydra(&v, "access_token"));
    let access = rig.opaque().await;
    let res = rig.call(reqwest::Method::GET, &order, &access).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(rig.proxy.hits(), 2);
}

#[tokio::test]
async fn keycloak_kinds_are_told_apart_by_typ_through_the_layer() {
    let rig = rig().await;
    let verifier = rig.verifier(introspection()).await;
    let base = format!("http://{}", serve_axum(orders::app(verifier)).await);
    let order = format!("{base}/orders/7");
    for (typ, status) in [
        ("Bearer", StatusCode::OK),
        ("Refresh", StatusCode::UNAUTHORIZED),
        ("Offline", StatusCode::UNAUTHORIZED),
        ("ID", StatusCode::UNAUTHORIZED),
    ] {
        // Keycloak sends `typ` and no `token_type`.
        rig.proxy.rewrite(move |mut v| {
            v.as_object_mut().unwrap().remove("token_type");
            v["typ"] = json!(typ);
            v.to_string()
        });
        let token = rig.opaque().await;
        let res = rig.call(reqwest::Method::GET, &order, &token).await;
        assert_eq!(res.status(), status, "{typ}");
        if status == StatusCode::UNAUTHORIZED {
            assert!(challenge(&res).contains("wrong token type"), "{typ}");
        }
    }
}

#[tokio::test]
async fn with_a_kind_required_an_answer_naming_none_is_refused() {
    let rig = rig().await;
    let lenient = rig.verifier(introspection()).await;
    let strict = rig.verifier(introspection().require_token_kind(true)).await;
    // The bundled issuer names the kind (`token_type: Bearer`): accepted.
    let token = rig.opaque().await;
    strict.verify(&token).await.expect("a named access token");
    // The same answer without it is accepted only where it is not required.
    rig.proxy.rewrite(|mut v| {
        v.as_object_mut().unwrap().remove("token_type");
        v.to_string()
    });
    let token = rig.opaque().await;
    assert_eq!(reason(strict.verify(&token).await), Reason::WrongType);
    lenient.verify(&token).await.expect("no kind required");
}

/// An opaque DPoP-bound token: the introspection answer says `token_type:
/// DPoP` and binds it with `cnf.jkt`; the layer then needs the `DPoP`
/// scheme and a proof by that key, and refuses it as a bearer token.
#[tokio::test]
async fn an_introspected_cnf_jkt_binds_the_opaque_token_to_its_key() {
    use crate::common::DpopClient;

    const PUBLIC: &str = "https://orders.example";
    let rig = rig().await;
    let verifier = Verifier::builder()
        .issuer(&rig.iss)
        .audience(AUDIENCE)
        .introspection(introspection().endpoint(&rig.proxy_url))
        .dpop(authlayer::Dpop::allowed().public_url(PUBLIC))
        .build()
        .await
        .expect("verifier");
    let base = format!("http://{}", serve_axum(orders::app(verifier)).await);
    let client = DpopClient::new();
    let jkt = client.jkt();
    rig.proxy.rewrite(move |mut v| {
        v["token_type"] = json!("DPoP");
        v["cnf"] = json!({"jkt": jkt});
        v.to_string()
    });
    let token = rig.opaque().await;

    let res = rig
        .http
        .get(format!("{base}/orders/7"))
        .header("authorization", format!("DPoP {token}"))
        .header(
            "dpop",
            client.proof("GET", &format!("{PUBLIC}/orders/7"), &token),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);

    let res = rig
        .call(reqwest::Method::GET, &format!("{base}/orders/7"), &token)
        .await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert!(
        challenge(&res).contains(r#"error="invalid_token""#),
        "{}",
        challenge(&res)
    );

    // Another key's proof.
    let other = DpopClient::new();
    let res = rig
        .http
        .get(format!("{base}/orders/7"))
        .header("authorization", format!("DPoP {token}"))
        .header(
            "dpop",
            other.proof("GET", &format!("{PUBLIC}/orders/7"), &token),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert!(challenge(&res).contains(r#"error="invalid_dpop_proof""#));
}
